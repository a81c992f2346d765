//! Query routes of views (`query-api.md` §2–§5). What a route answers is the view driver's
//! business ([`ViewQuery`]); these handlers do auth, readiness, parameters and on-demand jobs.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use fustor_core::Now;
use fustor_core::view::{
    Answer, QueryError, QueryRoute, StatsQuery, SuspectEntry, SuspectUpdate, TreeQuery, ViewQuery,
};
use serde_json::{Map, Value, json};

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::extract::{self, QueryParams, bool_param, int_param, tree_options};
use super::lossless_json::LosslessJson;
use crate::sessions::Readiness;
use crate::state::{Generation, ViewEntry};

const NOT_FOUND_PATH: &str = "路径未找到或尚未同步";

fn answer(a: Answer) -> Response {
    match a {
        Answer::Bytes(bytes) => {
            ([(header::CONTENT_TYPE, "application/json")], bytes).into_response()
        }
        Answer::Value(v) => LosslessJson(v).into_response(),
    }
}

/// Auth, then the view (404 for a view that is not configured).
fn view(
    st: &AppState,
    headers: &HeaderMap,
    name: &str,
) -> ApiResult<(Arc<Generation>, String, Option<Arc<ViewEntry>>)> {
    let generation = st.fusion.current();
    let resolved = extract::resolve(headers, &generation)?;
    if !generation.cfg.views.contains_key(name) {
        return Err(ApiError::not_found("Not Found"));
    }
    let entry = generation.views.get(name).cloned();
    Ok((generation, resolved, entry))
}

fn ready(st: &AppState, name: &str) -> ApiResult<()> {
    match st.fusion.sessions.readiness(name) {
        Readiness::Ready => Ok(()),
        Readiness::NoLeader => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("View '{name}': No active leader session. Ensure at least one agent is running."),
        )
        .retry_after(10)),
        Readiness::Snapshotting => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("View '{name}': Initial snapshot sync phase in progress (Leader is scanning storage)"),
        )
        .retry_after(5)),
    }
}

/// The view entry that answers `route`, behind the readiness gate when the route has one and
/// the driver does not answer per member. A route the driver does not support keeps its gate and
/// then answers 404, as the fs-only routes always did for forest views.
fn driver_for(
    st: &AppState,
    name: &str,
    entry: Option<Arc<ViewEntry>>,
    route: QueryRoute,
) -> ApiResult<Arc<ViewEntry>> {
    let gated = route.readiness_gated()
        && entry
            .as_ref()
            .is_none_or(|e| e.driver.readiness_gated() || !e.driver.supports(route));
    if gated {
        ready(st, name)?;
    }
    let entry = entry.ok_or_else(|| ApiError::not_found(format!("View '{name}' not found")))?;
    if !entry.driver.supports(route) {
        return Err(ApiError::not_found("Not Found"));
    }
    Ok(entry)
}

fn query_error(name: &str, entry: &ViewEntry, e: QueryError) -> ApiError {
    match e {
        QueryError::NotFound => ApiError::not_found(NOT_FOUND_PATH),
        QueryError::LimitExceeded { limit, .. } => limit_error(name, entry, limit),
        QueryError::Unsupported => ApiError::not_found("Not Found"),
    }
}

fn invalid_at(loc: &[String], msg: &str) -> ApiError {
    let loc: Vec<&str> = loc.iter().map(String::as_str).collect();
    ApiError::invalid(&loc, msg)
}

/// `GET /views/{view}/diff?path=`: forest views only.
pub async fn diff(
    State(st): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    QueryParams(p): QueryParams,
) -> ApiResult<LosslessJson<Value>> {
    let (_, _, entry) = view(&st, &headers, &name)?;
    let entry = entry.ok_or_else(|| ApiError::not_found("Not Found"))?;
    let entry = driver_for(&st, &name, Some(entry), QueryRoute::Diff)?;
    let path = p.get("path").cloned().unwrap_or_else(|| "/".to_string());
    let max = int_param(&p, "max_items")?
        .map(|n| n.max(0) as usize)
        .or(Some(10_000));
    query(&name, entry, move |d| d.diff(&path, max))
        .await
        .map(LosslessJson)
}

fn limit_error(name: &str, entry: &ViewEntry, limit: usize) -> ApiError {
    ApiError::with_detail(
        StatusCode::BAD_REQUEST,
        json!({
            "error": "Metadata retrieval limit exceeded",
            "view": name,
            "current_count": entry.driver.node_count(),
            "limit": limit,
            "suggestion": "Try a more specific path or reduce recursion depth.",
        }),
    )
}

pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))
}

pub async fn tree(
    State(st): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    QueryParams(p): QueryParams,
) -> ApiResult<Response> {
    let (_, resolved, entry) = view(&st, &headers, &name)?;
    let entry = driver_for(&st, &name, entry, QueryRoute::Tree)?;
    let raw_path = p.get("path").cloned().unwrap_or_else(|| "/".to_string());
    let opts = tree_options(&p)?;
    let best = p.get("best").cloned();
    let (mut on_demand, mut job_id, mut job_pending) = (false, None, None);
    let mut extra = Vec::new();
    if entry.driver.supports(QueryRoute::OnDemandScan) {
        on_demand = bool_param(&p, "on_demand_scan", false)?;
        if bool_param(&p, "dry_run", false)? {
            return Ok(
                LosslessJson(json!({"message": "dry-run", "view_id": resolved})).into_response(),
            );
        }
        if on_demand {
            job_id = request_scan(&st, &name, &raw_path, opts.recursive);
        }
        job_pending = st
            .fusion
            .jobs
            .pending(&name, &raw_path, &|s| st.fusion.sessions.get(s).is_some());
        extra = vec![
            ("job_id", json!(job_id.clone().or(job_pending.clone()))),
            ("job_pending", json!(job_pending.is_some())),
        ];
    }
    let e2 = entry.clone();
    let limit = entry.max_tree_items;
    let found = blocking(move || {
        e2.driver.tree(&TreeQuery {
            path: &raw_path,
            options: opts,
            best: best.as_deref(),
            limit,
            extra: &extra,
        })
    })
    .await?;
    match found {
        Ok(a) => Ok(answer(a)),
        Err(QueryError::NotFound) => match (on_demand, job_pending.or(job_id)) {
            (true, Some(id)) => Ok(LosslessJson(json!({
                "job_id": id, "job_pending": true,
                "message": "Path not found, but a find has been triggered and is pending.",
            }))
            .into_response()),
            _ => Err(ApiError::not_found(NOT_FOUND_PATH)),
        },
        Err(e) => Err(query_error(&name, &entry, e)),
    }
}

/// Creates an on-demand scan job for the sessions of `name` and sends them its command; `None`
/// when the view has no session.
fn request_scan(st: &AppState, name: &str, raw_path: &str, recursive: bool) -> Option<String> {
    let sessions: Vec<String> = st
        .fusion
        .sessions
        .of_view(name)
        .into_iter()
        .map(|s| s.id)
        .collect();
    if sessions.is_empty() {
        return None;
    }
    let epoch = Now::system().epoch;
    let id = st.fusion.jobs.create(name, raw_path, &sessions, epoch);
    let mut cmd = Map::new();
    cmd.insert("type".into(), "scan".into());
    cmd.insert("path".into(), raw_path.into());
    cmd.insert("recursive".into(), recursive.into());
    cmd.insert("job_id".into(), id.clone().into());
    cmd.insert("created_at".into(), epoch.into());
    st.fusion.sessions.push_command(&sessions, &cmd);
    tracing::info!(view = %name, path = %crate::limits::for_log(raw_path), job = %id, sessions = sessions.len(), "on-demand scan requested");
    Some(id)
}

/// Runs a read-only query of the view's driver off the async threads.
async fn query<T: Send + 'static>(
    name: &str,
    entry: Arc<ViewEntry>,
    f: impl FnOnce(&dyn ViewQuery) -> Result<T, QueryError> + Send + 'static,
) -> ApiResult<T> {
    let e2 = entry.clone();
    blocking(move || f(&*e2.driver))
        .await?
        .map_err(|e| query_error(name, &entry, e))
}

pub async fn metadata(
    State(st): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    QueryParams(p): QueryParams,
) -> ApiResult<LosslessJson<Value>> {
    let (_, _, entry) = view(&st, &headers, &name)?;
    let entry = driver_for(&st, &name, entry, QueryRoute::Metadata)?;
    let path = p
        .get("path")
        .cloned()
        .ok_or_else(|| ApiError::not_found(NOT_FOUND_PATH))?;
    query(&name, entry, move |d| d.metadata(&path))
        .await
        .map(LosslessJson)
}

pub async fn search(
    State(st): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    QueryParams(p): QueryParams,
) -> ApiResult<Response> {
    let (_, _, entry) = view(&st, &headers, &name)?;
    let pattern = p
        .get("pattern")
        .cloned()
        .ok_or_else(|| ApiError::invalid(&["query", "pattern"], "Field required"))?;
    let entry = driver_for(&st, &name, entry, QueryRoute::Search)?;
    let limit = entry.max_tree_items;
    query(&name, entry, move |d| d.search(&pattern, limit))
        .await
        .map(answer)
}

pub async fn stats(
    State(st): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    QueryParams(p): QueryParams,
) -> ApiResult<LosslessJson<Value>> {
    let (_, _, entry) = view(&st, &headers, &name)?;
    let entry = driver_for(&st, &name, entry, QueryRoute::Stats)?;
    let (path, best) = (p.get("path").cloned(), p.get("best").cloned());
    query(&name, entry, move |d| {
        d.stats(&StatsQuery {
            path: path.as_deref(),
            best: best.as_deref(),
            now: Now::system(),
        })
    })
    .await
    .map(LosslessJson)
}

pub async fn blind_spots(
    State(st): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> ApiResult<LosslessJson<Value>> {
    let (_, _, entry) = view(&st, &headers, &name)?;
    let entry = driver_for(&st, &name, entry, QueryRoute::BlindSpots)?;
    query(&name, entry, |d| d.blind_spots())
        .await
        .map(LosslessJson)
}

pub async fn suspect_list(
    State(st): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> ApiResult<LosslessJson<Vec<SuspectEntry>>> {
    let (_, _, entry) = view(&st, &headers, &name)?;
    let entry = driver_for(&st, &name, entry, QueryRoute::Suspects)?;
    query(&name, entry, |d| d.suspect_list())
        .await
        .map(LosslessJson)
}

pub async fn put_suspect_list(
    State(st): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    mut body: Body,
) -> ApiResult<LosslessJson<Value>> {
    let found = view(&st, &headers, &name)
        .and_then(|(_, r, e)| Ok((r, driver_for(&st, &name, e, QueryRoute::PutSuspects)?)));
    let (resolved, entry) = super::body::refused(found, &mut body, &headers).await?;
    // Paths may carry PEP 383 escapes (`\udce9`), which a `Value` cannot hold as such.
    let raw = st.control_body(body, &headers).await?;
    let body: Value = extract::json(&fustor_core::lossless::json_text(&raw))?;
    let items = match body.get("updates") {
        Some(Value::Array(items)) => items.clone(),
        None | Some(Value::Null) => Vec::new(),
        Some(_) => {
            return Err(ApiError::invalid(
                &["body", "updates"],
                "Input should be a valid list",
            ));
        }
    };
    let mut updates = Vec::with_capacity(items.len());
    for (i, u) in items.iter().enumerate() {
        let loc = |k: &'static str| -> [String; 4] {
            ["body".into(), "updates".into(), i.to_string(), k.into()]
        };
        let path = match u.get("path") {
            Some(Value::String(p)) => p.clone(),
            None | Some(Value::Null) => continue,
            Some(_) => return Err(invalid_at(&loc("path"), "Input should be a valid string")),
        };
        let mtime = match u.get("mtime").or_else(|| u.get("current_mtime")) {
            Some(Value::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
            None | Some(Value::Null) => continue,
            Some(_) => return Err(invalid_at(&loc("mtime"), "Input should be a valid number")),
        };
        updates.push(SuspectUpdate {
            path,
            mtime,
            size: None,
        });
    }
    let n = updates.len();
    blocking(move || entry.driver.update_suspects(&updates, Now::system())).await?;
    Ok(LosslessJson(
        json!({"view_id": resolved, "updated_count": n, "status": "ok"}),
    ))
}

pub async fn reset(
    State(st): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let (generation, resolved, _) = view(&st, &headers, &name)?;
    let views = generation.views_for(&resolved);
    blocking(move || views.iter().for_each(|v| v.driver.reset())).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Scope check of `query-api.md` §1: the key must resolve to this view (or, an extension, to a
/// pipe that feeds it).
fn scoped(st: &AppState, headers: &HeaderMap, name: &str) -> ApiResult<()> {
    let generation = st.fusion.current();
    let resolved = extract::resolve(headers, &generation)?;
    let ok = resolved == name
        || generation
            .pipes
            .get(&resolved)
            .is_some_and(|p| p.views.iter().any(|v| v == name));
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "API Key not authorized for this view",
        ))
    }
}

pub async fn sessions(
    State(st): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> ApiResult<LosslessJson<Value>> {
    scoped(&st, &headers, &name)?;
    let list: Vec<Value> = st
        .fusion
        .sessions
        .of_view(&name)
        .iter()
        .map(|s| serde_json::to_value(st.fusion.sessions.info(s)).unwrap_or(Value::Null))
        .collect();
    Ok(LosslessJson(
        json!({"view_id": name, "count": list.len(), "active_sessions": list}),
    ))
}

pub async fn jobs(
    State(st): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> ApiResult<LosslessJson<Value>> {
    scoped(&st, &headers, &name)?;
    Ok(LosslessJson(json!({"jobs": st.fusion.jobs.list(&name)})))
}

pub async fn job(
    State(st): State<AppState>,
    Path((name, job_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<LosslessJson<Value>> {
    scoped(&st, &headers, &name)?;
    match st.fusion.jobs.get(&job_id) {
        Some(j) if j.view_id == name => {
            Ok(LosslessJson(serde_json::to_value(j).unwrap_or(Value::Null)))
        }
        Some(_) => Err(ApiError::not_found(format!(
            "Job '{job_id}' not found in view {name}"
        ))),
        None => Err(ApiError::not_found(format!(
            "Agent job '{job_id}' not found"
        ))),
    }
}

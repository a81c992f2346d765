//! Query routes of fs views (`query-api.md` §2–§4).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use fustor_core::Now;
use fustor_core::path::normalize_query_path;
use fustor_core::view::SuspectUpdate;
use fustor_view_fs::fs::QueryError;
use fustor_view_fs::{ForestView, FsView};
use serde_json::{Value, json};

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::extract::{self, QueryParams, bool_param, int_param, tree_options};
use super::lossless_json::LosslessJson;
use crate::pipe::Control;
use crate::sessions::Readiness;
use crate::state::{Generation, ViewEntry, ViewKind};

const NOT_FOUND_PATH: &str = "路径未找到或尚未同步";

fn json_bytes(bytes: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], bytes).into_response()
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

/// The fs engine behind a readiness-gated route.
fn fs_ready(
    st: &AppState,
    name: &str,
    entry: Option<Arc<ViewEntry>>,
) -> ApiResult<(Arc<FsView>, Option<usize>)> {
    ready(st, name)?;
    let entry = entry.ok_or_else(|| ApiError::not_found(format!("View '{name}' not found")))?;
    match &entry.kind {
        ViewKind::Fs(v) => Ok((v.clone(), entry.max_tree_items)),
        ViewKind::Forest(_) => Err(ApiError::not_found("Not Found")),
    }
}

fn fs_any(name: &str, entry: Option<Arc<ViewEntry>>) -> ApiResult<Arc<FsView>> {
    let entry = entry.ok_or_else(|| ApiError::not_found(format!("View '{name}' not found")))?;
    match &entry.kind {
        ViewKind::Fs(v) => Ok(v.clone()),
        ViewKind::Forest(_) => Err(ApiError::not_found("Not Found")),
    }
}

fn invalid_at(loc: &[String], msg: &str) -> ApiError {
    let loc: Vec<&str> = loc.iter().map(String::as_str).collect();
    ApiError::invalid(&loc, msg)
}

fn forest_of(entry: &Option<Arc<ViewEntry>>) -> Option<Arc<ForestView>> {
    match entry.as_deref().map(|e| &e.kind) {
        Some(ViewKind::Forest(f)) => Some(f.clone()),
        _ => None,
    }
}

fn entry_limit(entry: &Option<Arc<ViewEntry>>) -> Option<usize> {
    entry.as_ref().and_then(|e| e.max_tree_items)
}

/// `GET /views/{view}/diff?path=`: forest views only.
pub async fn diff(
    State(st): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    QueryParams(p): QueryParams,
) -> ApiResult<LosslessJson<Value>> {
    let (_, _, entry) = view(&st, &headers, &name)?;
    let forest = forest_of(&entry).ok_or_else(|| ApiError::not_found("Not Found"))?;
    let path = p.get("path").cloned().unwrap_or_else(|| "/".to_string());
    let max = int_param(&p, "max_items")?
        .map(|n| n.max(0) as usize)
        .or(Some(10_000));
    Ok(LosslessJson(
        blocking(move || forest.diff(&path, max)).await?,
    ))
}

fn limit_error(name: &str, view: &FsView, limit: usize) -> ApiError {
    ApiError::with_detail(
        StatusCode::BAD_REQUEST,
        json!({
            "error": "Metadata retrieval limit exceeded",
            "view": name,
            "current_count": view.read().node_count(),
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
    if let Some(forest) = forest_of(&entry) {
        return super::forest::tree(forest, entry_limit(&entry), &p).await;
    }
    let (fs, limit) = fs_ready(&st, &name, entry)?;
    let raw_path = p.get("path").cloned().unwrap_or_else(|| "/".to_string());
    let opts = tree_options(&p)?;
    let on_demand = bool_param(&p, "on_demand_scan", false)?;
    let dry_run = bool_param(&p, "dry_run", false)?;
    let path = normalize_query_path(&raw_path);
    if dry_run {
        return Ok(
            LosslessJson(json!({"message": "dry-run", "view_id": resolved})).into_response(),
        );
    }
    let job_id = on_demand
        .then(|| st.fusion.request_scan(&name, &raw_path, opts.recursive))
        .flatten();
    let f = st.fusion.clone();
    let pending = {
        let name = name.clone();
        let raw = raw_path.clone();
        move || {
            f.jobs
                .pending(&name, &raw, &|s| f.sessions.get(s).is_some())
        }
    };
    let job_pending = pending();
    let answer = match path {
        None => Err(QueryError::NotFound),
        Some(path) => {
            let extra = vec![
                ("job_id", json!(job_id.clone().or(job_pending.clone()))),
                ("job_pending", json!(job_pending.is_some())),
            ];
            let fs2 = fs.clone();
            blocking(move || {
                let extra: Vec<(&str, Value)> = extra;
                fs2.read().tree_json(&path, &opts, limit, &extra)
            })
            .await?
        }
    };
    match answer {
        Ok(bytes) => Ok(json_bytes(bytes)),
        Err(QueryError::LimitExceeded { limit, .. }) => Err(limit_error(&name, &fs, limit)),
        Err(QueryError::NotFound) => match (on_demand, job_pending.or(job_id)) {
            (true, Some(id)) => Ok(LosslessJson(json!({
                "job_id": id, "job_pending": true,
                "message": "Path not found, but a find has been triggered and is pending.",
            }))
            .into_response()),
            _ => Err(ApiError::not_found(NOT_FOUND_PATH)),
        },
    }
}

pub async fn metadata(
    State(st): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    QueryParams(p): QueryParams,
) -> ApiResult<LosslessJson<Value>> {
    let (_, _, entry) = view(&st, &headers, &name)?;
    let (fs, _) = fs_ready(&st, &name, entry)?;
    let path = p
        .get("path")
        .and_then(|s| normalize_query_path(s))
        .ok_or_else(|| ApiError::not_found(NOT_FOUND_PATH))?;
    let answer = blocking(move || {
        let st = fs.read();
        let node = st.metadata_value(&path)?;
        let sub = st.subtree_stats(&path);
        Some((node, sub))
    })
    .await?;
    let (mut node, sub) = answer.ok_or_else(|| ApiError::not_found(NOT_FOUND_PATH))?;
    if let (Some(obj), Some(sub)) = (node.as_object_mut(), sub) {
        obj.insert(
            "subtree".into(),
            serde_json::to_value(sub).unwrap_or(Value::Null),
        );
    }
    Ok(LosslessJson(node))
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
    if let Some(forest) = forest_of(&entry) {
        let limit = entry_limit(&entry);
        return Ok(
            LosslessJson(blocking(move || forest.search(&pattern, limit)).await?).into_response(),
        );
    }
    let (fs, limit) = fs_ready(&st, &name, entry)?;
    let fs2 = fs.clone();
    match blocking(move || fs2.read().search_json(&pattern, limit)).await? {
        Ok(bytes) => Ok(json_bytes(bytes)),
        Err(QueryError::LimitExceeded { limit, .. }) => Err(limit_error(&name, &fs, limit)),
        Err(QueryError::NotFound) => Err(ApiError::not_found(NOT_FOUND_PATH)),
    }
}

pub async fn stats(
    State(st): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    QueryParams(p): QueryParams,
) -> ApiResult<LosslessJson<Value>> {
    let (_, _, entry) = view(&st, &headers, &name)?;
    if let Some(forest) = forest_of(&entry) {
        let path = p.get("path").cloned().unwrap_or_else(|| "/".to_string());
        let best = p.get("best").cloned();
        return Ok(LosslessJson(
            blocking(move || forest.stats(&path, best.as_deref())).await?,
        ));
    }
    let (fs, _) = fs_ready(&st, &name, entry)?;
    let path = p.get("path").cloned();
    let out = blocking(move || {
        let st = fs.read();
        let mut v = serde_json::to_value(st.stats(Now::system().epoch)).unwrap_or(Value::Null);
        if let (Some(raw), Some(obj)) = (path, v.as_object_mut()) {
            let sub = normalize_query_path(&raw).and_then(|p| st.subtree_stats(&p));
            obj.insert("path".into(), raw.into());
            obj.insert(
                "subtree".into(),
                serde_json::to_value(sub).unwrap_or(Value::Null),
            );
        }
        v
    })
    .await?;
    Ok(LosslessJson(out))
}

pub async fn blind_spots(
    State(st): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> ApiResult<LosslessJson<Value>> {
    let (_, _, entry) = view(&st, &headers, &name)?;
    let fs = fs_any(&name, entry)?;
    Ok(LosslessJson(
        blocking(move || fs.read().blind_spots_value()).await?,
    ))
}

pub async fn suspect_list(
    State(st): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> ApiResult<LosslessJson<Value>> {
    let (_, _, entry) = view(&st, &headers, &name)?;
    let fs = fs_any(&name, entry)?;
    let list = blocking(move || fs.read().suspect_list()).await?;
    Ok(LosslessJson(Value::Array(
        list.into_iter()
            .map(|(p, t)| json!({"path": p, "suspect_until": t}))
            .collect(),
    )))
}

pub async fn put_suspect_list(
    State(st): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    mut body: Body,
) -> ApiResult<LosslessJson<Value>> {
    let found = view(&st, &headers, &name).and_then(|(g, r, e)| {
        fs_any(&name, e.clone())?;
        Ok((g, r, e))
    });
    let (generation, resolved, entry) = super::body::refused(found, &mut body, &headers).await?;
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
    let op = Control::UpdateSuspects(updates.into());
    st.fusion
        .write_views(&generation, &Vec::from_iter(entry), op)
        .await;
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
    st.fusion
        .write_views(&generation, &views, Control::Reset)
        .await;
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

//! Query routes of views (`query-api.md` §2–§5). What a route answers is the view driver's
//! business ([`fustor_core::view::ViewQuery`]); these handlers do auth, readiness, parameters
//! and on-demand jobs.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use fustor_core::Now;
use fustor_core::view::{
    QueryError, QueryRoute, SearchQuery, StatsQuery, SuspectEntry, SuspectUpdate, TreeQuery,
};
use serde_json::{Value, json};

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::extract::{self, QueryParams, bool_param, int_param, tree_options};
use super::lossless_json::LosslessJson;
use super::view_ref::{ViewRef, answer, query_error, run};
use crate::pipe::Control;

fn invalid_at(loc: &[String], msg: &str) -> ApiError {
    let loc: Vec<&str> = loc.iter().map(String::as_str).collect();
    ApiError::invalid(&loc, msg)
}

/// `GET /views/{view}/diff?path=`: forest views only.
pub async fn diff(
    State(st): State<AppState>,
    QueryParams(p): QueryParams,
    v: ViewRef,
) -> ApiResult<LosslessJson<Value>> {
    if v.entry.is_none() {
        return Err(ApiError::not_found("Not Found"));
    }
    let entry = v.driver(&st, QueryRoute::Diff)?;
    let path = p.get("path").cloned().unwrap_or_else(|| "/".to_string());
    let max = int_param(&p, "max_items")?
        .map(|n| n.max(0) as usize)
        .or(Some(10_000));
    run(&v.name, entry, move |d| d.diff(&path, max))
        .await
        .map(LosslessJson)
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
    QueryParams(p): QueryParams,
    v: ViewRef,
) -> ApiResult<Response> {
    let (name, resolved) = (&v.name, &v.resolved);
    let entry = v.driver(&st, QueryRoute::Tree)?;
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
            job_id = st.fusion.request_scan(name, &raw_path, opts.recursive);
        }
        job_pending = st
            .fusion
            .jobs
            .pending(name, &raw_path, &|s| st.fusion.sessions.get(s).is_some());
        extra = vec![
            ("job_id", json!(job_id.clone().or(job_pending.clone()))),
            ("job_pending", json!(job_pending.is_some())),
        ];
    }
    let e2 = entry.clone();
    let limit = entry.max_tree_items;
    let asked = raw_path.clone();
    let dir_stats = bool_param(&p, "dir_stats", false)?;
    let who = v.identity();
    let found = blocking(move || {
        e2.driver.tree(&TreeQuery {
            path: &asked,
            options: opts,
            best: best.as_deref(),
            limit,
            extra: &extra,
            dir_stats,
            identity: who.as_deref(),
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
            _ => Err(ApiError::path_not_found(name).at_path(name, Some(&raw_path))),
        },
        Err(e) => Err(query_error(name, &entry, e)),
    }
}

pub async fn metadata(
    State(st): State<AppState>,
    QueryParams(p): QueryParams,
    v: ViewRef,
) -> ApiResult<LosslessJson<Value>> {
    let entry = v.driver(&st, QueryRoute::Metadata)?;
    let Some(path) = p.get("path").cloned() else {
        return Err(ApiError::path_not_found(&v.name).at_path(&v.name, None));
    };
    let shown = path.clone();
    let who = v.identity();
    run(&v.name, entry, move |d| {
        if let Some(who) = who {
            let normal = fustor_core::path::normalize_query_path(&path).unwrap_or_default();
            if !d
                .visible_paths(&[normal], &who)
                .first()
                .copied()
                .unwrap_or(false)
            {
                return Err(QueryError::NotFound);
            }
        }
        d.metadata(&path)
    })
    .await
    .map(LosslessJson)
    .map_err(|e| e.at_path(&v.name, Some(&shown)))
}

pub async fn search(
    State(st): State<AppState>,
    QueryParams(p): QueryParams,
    v: ViewRef,
) -> ApiResult<Response> {
    let pattern = p
        .get("pattern")
        .cloned()
        .ok_or_else(|| ApiError::invalid(&["query", "pattern"], "Field required"))?;
    let limit = int_param(&p, "limit")?.map(|n| n.max(0) as usize);
    let entry = v.driver(&st, QueryRoute::Search)?;
    let max_items = entry.max_tree_items;
    let who = v.identity();
    run(&v.name, entry, move |d| {
        d.search(&SearchQuery {
            pattern: &pattern,
            max_items,
            limit,
            identity: who.as_deref(),
        })
    })
    .await
    .map(answer)
}

pub async fn stats(
    State(st): State<AppState>,
    QueryParams(p): QueryParams,
    v: ViewRef,
) -> ApiResult<LosslessJson<Value>> {
    let (path, best) = (p.get("path").cloned(), p.get("best").cloned());
    let shown = path.clone();
    let who = v.identity();
    let mut stats = v
        .query(&st, QueryRoute::Stats, move |d| {
            d.stats(&StatsQuery {
                path: path.as_deref(),
                best: best.as_deref(),
                now: Now::system(),
                identity: who.as_deref(),
            })
        })
        .await
        .map_err(|e| e.at_path(&v.name, shown.as_deref()))?;
    // Persisted views say whether they serve restored content not yet reconciled.
    if let Some(store) = v.generation.stores.get(&v.name)
        && let Value::Object(m) = &mut stats
    {
        let status = store.status();
        m.insert("persisted".into(), Value::Bool(true));
        m.insert(
            "restored_at".into(),
            status.restored_at.map_or(Value::Null, Value::from),
        );
        m.insert("reconciling".into(), Value::Bool(status.reconciling));
    }
    Ok(LosslessJson(stats))
}

pub async fn blind_spots(State(st): State<AppState>, v: ViewRef) -> ApiResult<LosslessJson<Value>> {
    let who = v.identity();
    v.query(&st, QueryRoute::BlindSpots, move |d| {
        let all = d.blind_spots()?;
        Ok(match who {
            Some(who) => super::as_user::blind_spots(d, all, &who),
            None => all,
        })
    })
    .await
    .map(LosslessJson)
}

pub async fn suspect_list(
    State(st): State<AppState>,
    v: ViewRef,
) -> ApiResult<LosslessJson<Vec<SuspectEntry>>> {
    let who = v.identity();
    v.query(&st, QueryRoute::Suspects, move |d| {
        let all = d.suspect_list()?;
        Ok(match who {
            Some(who) => {
                let paths: Vec<String> = all.iter().map(|s| s.path.clone()).collect();
                let shown = d.visible_paths(&paths, &who);
                all.into_iter()
                    .zip(shown)
                    .filter_map(|(s, ok)| ok.then_some(s))
                    .collect()
            }
            None => all,
        })
    })
    .await
    .map(LosslessJson)
}

pub async fn put_suspect_list(
    State(st): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    mut body: Body,
) -> ApiResult<LosslessJson<Value>> {
    let found = ViewRef::resolve(&st, &headers, name).and_then(|v| {
        let entry = v.driver(&st, QueryRoute::PutSuspects)?;
        Ok((entry, v.resolved, v.generation))
    });
    let (entry, resolved, generation) = super::body::refused(found, &mut body, &headers).await?;
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
    st.fusion.write_views(&generation, &[entry], op).await;
    Ok(LosslessJson(
        json!({"view_id": resolved, "updated_count": n, "status": "ok"}),
    ))
}

pub async fn reset(State(st): State<AppState>, v: ViewRef) -> ApiResult<StatusCode> {
    let views = v.generation.views_for(&v.resolved);
    st.fusion
        .write_views(&v.generation, &views, Control::Reset)
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

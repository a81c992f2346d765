//! Remote actions on agents (issue 15): `POST /api/v1/admin/agents/{id}/actions` records one
//! and queues it for the agent's next heartbeat; `GET /api/v1/admin/actions` lists them with
//! their delivery and outcome.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::AppState;
use super::admin::{admin, ready};
use super::error::{ApiError, ApiResult};
use crate::registry::actions::{ActionKind, ActionList, ActionRecord, ActionRequest};

const MAX_LIMIT: u32 = 1000;
const DEFAULT_LIMIT: u32 = 100;
/// Longest accepted re-scan path: the agent walks it; the bound keeps the record small.
const MAX_PATH_BYTES: usize = 4096;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/admin/agents/{id}/actions", post(request))
        .route("/api/v1/admin/actions", get(list))
}

async fn request(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Json<ActionRequest>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<(StatusCode, Json<ActionRecord>)> {
    let who = admin(&st, &headers)?;
    ready(&st)?;
    let Json(req) = body.map_err(|e| ApiError::invalid(&["body"], e.body_text()))?;
    let agent = st
        .fusion
        .registry
        .agent(&id)
        .ok_or_else(|| ApiError::not_found(format!("Agent {id} not found")))?;
    match (&req.pipe, req.action) {
        (None, k) if k.needs_pipe() => {
            return Err(ApiError::invalid(
                &["body", "pipe"],
                format!("{} needs the pipe's id", k.as_str()),
            ));
        }
        // A pipe that never ran here may be started: it is checked by the agent.
        (Some(p), ActionKind::StartPipe) if !crate::registry::configs::Target::is_group_name(p) => {
            return Err(ApiError::invalid(&["body", "pipe"], "not a pipe id"));
        }
        (Some(p), k) if k != ActionKind::StartPipe && !agent.pipes.contains_key(p) => {
            return Err(ApiError::invalid(
                &["body", "pipe"],
                format!("agent {id} has no pipe {p:?}"),
            ));
        }
        _ => {}
    }
    match (&req.path, req.action) {
        (None, ActionKind::Rescan) => {
            return Err(ApiError::invalid(&["body", "path"], "rescan needs a path"));
        }
        (Some(p), ActionKind::Rescan) if !p.starts_with('/') || p.len() > MAX_PATH_BYTES => {
            return Err(ApiError::invalid(
                &["body", "path"],
                "an absolute path in the view, as in queries",
            ));
        }
        (Some(_), k) if k != ActionKind::Rescan => {
            return Err(ApiError::invalid(
                &["body", "path"],
                "only rescan takes a path",
            ));
        }
        _ => {}
    }
    let rec = st.fusion.registry.request_action(&who, &id, req).await?;
    tracing::info!(who = %crate::limits::for_log(&who), agent = %crate::limits::for_log(&id),
        action = rec.action.as_str(), id = rec.id, "admin: action requested");
    Ok((StatusCode::ACCEPTED, Json(rec)))
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    agent: Option<String>,
    limit: Option<u32>,
}

async fn list(
    State(st): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<ActionList>> {
    admin(&st, &headers)?;
    ready(&st)?;
    let Query(q) = q.map_err(|e| ApiError::invalid(&["query"], e.body_text()))?;
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let actions = st.fusion.registry.actions(q.agent, limit).await?;
    Ok(Json(ActionList { actions }))
}

//! Consistency routes (`wire-protocol.md` §5): audit start/end and the sentinel.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use fustor_core::wire::SentinelFeedback;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiResult;
use super::extract;
use super::lossless_json::LosslessJson;

/// Audit start/end and sentinel feedback change the views: agent keys only, as for sessions.
pub async fn audit_start(State(st): State<AppState>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    let id = super::auth::main_writer_pipe(&headers, &st.fusion.current())?;
    let n = st.fusion.audit_start(&id).await;
    Ok(Json(
        json!({"status": "audit_started", "drivers_handled": n}),
    ))
}

pub async fn audit_end(State(st): State<AppState>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    let id = super::auth::main_writer_pipe(&headers, &st.fusion.current())?;
    let n = st.fusion.audit_end(&id).await;
    Ok(Json(json!({"status": "audit_ended", "drivers_handled": n})))
}

pub async fn sentinel_tasks(
    State(st): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<LosslessJson<Value>> {
    let id = extract::resolve(&headers, &st.fusion.current())?;
    let paths = st.fusion.sentinel_paths(&id).await;
    if paths.is_empty() {
        return Ok(LosslessJson(json!({})));
    }
    // Lossless: the agent reopens these paths by their raw bytes.
    Ok(LosslessJson(
        json!({"type": "suspect_check", "paths": paths, "view_id": id}),
    ))
}

pub async fn sentinel_feedback(
    State(st): State<AppState>,
    headers: HeaderMap,
    mut body: Body,
) -> ApiResult<Json<Value>> {
    let id = super::auth::main_writer_pipe(&headers, &st.fusion.current());
    let id = super::body::refused(id, &mut body, &headers).await?;
    let fb: SentinelFeedback = extract::json(&st.control_body(body, &headers).await?)?;
    match st.fusion.sentinel_feedback(&id, fb).await {
        Some(n) => Ok(Json(json!({"status": "processed", "drivers_updated": n}))),
        None => Ok(Json(json!({"status": "ignored", "reason": "unknown_type"}))),
    }
}

//! Event ingestion (`wire-protocol.md` §4).
//!
//! The whole batch is validated before anything is queued: a malformed event or a hostile
//! path refuses the batch with a precise 4xx and leaves the view untouched.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use fustor_core::EventBatch;
use serde_json::{Value, json};

use super::AppState;
use super::body::{discard, refused};
use super::error::{ApiError, ApiResult};
use super::extract;
use crate::service::{Ingested, check_batch};

pub async fn ingest(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    mut body: Body,
) -> ApiResult<Json<Value>> {
    // Key, then session, then body: nothing is buffered for a request that will be refused.
    let key_pipe = super::auth::ingest_pipe(&st, &headers);
    let key_pipe = refused(key_pipe, &mut body, &headers).await?;
    let route = st
        .fusion
        .route(&id)
        .filter(|r| r.pipe_id == key_pipe)
        .ok_or_else(|| ApiError::not_found(format!("Session {id} not found or expired")));
    let route = refused(route, &mut body, &headers).await?;
    let bytes = st.ingest_body(body, &headers).await?;
    // Parsing a large batch takes a millisecond or more: keep it off the async workers so
    // queries stay responsive while agents push.
    let fusion = st.fusion.clone();
    let batch = super::views::blocking(move || -> ApiResult<EventBatch> {
        let batch: EventBatch = extract::json(&bytes)?;
        drop(bytes);
        check_batch(&batch, &fusion.limits)?;
        Ok(batch)
    })
    .await??;
    match st.fusion.ingest(&id, &route, batch).await? {
        Ingested::JobComplete => Ok(Json(json!({"status": "ok", "phase": "job_complete"}))),
        Ingested::Accepted { count } => Ok(Json(json!({"status": "ok", "count": count}))),
    }
}

/// Legacy `POST /api/v1/pipe/{session_id}/events` (main app): malformed events are skipped
/// one by one instead of refusing the batch.
pub async fn legacy(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    mut body: Body,
) -> ApiResult<Json<Value>> {
    let key_pipe = super::auth::main_writer_pipe(&headers, &st.fusion.current());
    let key_pipe = refused(key_pipe, &mut body, &headers).await?;
    let Some(route) = st.fusion.route(&id).filter(|r| r.pipe_id == key_pipe) else {
        discard(&mut body, &headers).await;
        return Ok(Json(json!({"success": false})));
    };
    let mut value: Value = extract::json(&st.ingest_body(body, &headers).await?)?;
    let raw = match value.get_mut("events").map(Value::take) {
        Some(Value::Array(a)) => a,
        _ => Vec::new(),
    };
    let max_events = st.fusion.limits.max_events_per_batch;
    if raw.len() > max_events {
        return Err(ApiError::too_large(format!(
            "batch holds {} events; the limit is {max_events}",
            raw.len()
        )));
    }
    let ok = st.fusion.ingest_legacy(&id, route, raw).await;
    Ok(Json(json!({"success": ok})))
}

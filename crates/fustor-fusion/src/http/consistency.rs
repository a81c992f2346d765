//! Consistency routes (`wire-protocol.md` §5): audit start/end and the sentinel.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use fustor_core::view::SuspectUpdate;
use fustor_core::wire::SentinelFeedback;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiResult;
use super::extract;
use super::lossless_json::LosslessJson;
use crate::pipe::Control;

/// Audit start/end and sentinel feedback change the views: agent keys only, as for sessions.
pub async fn audit_start(State(st): State<AppState>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    let generation = st.fusion.current();
    let id = super::sessions::main_writer_pipe(&headers, &generation)?;
    let views = generation.views_for(&id);
    let n = views.len();
    st.fusion
        .write_views(&generation, &views, Control::AuditStart)
        .await;
    Ok(Json(
        json!({"status": "audit_started", "drivers_handled": n}),
    ))
}

pub async fn audit_end(State(st): State<AppState>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    let generation = st.fusion.current();
    let id = super::sessions::main_writer_pipe(&headers, &generation)?;
    let views = generation.views_for(&id);
    // After every batch queued before it, in every pipe that feeds these views.
    let n = views.len();
    st.fusion
        .write_views(&generation, &views, Control::AuditEnd)
        .await;
    Ok(Json(json!({"status": "audit_ended", "drivers_handled": n})))
}

pub async fn sentinel_tasks(
    State(st): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<LosslessJson<Value>> {
    let generation = st.fusion.current();
    let id = extract::resolve(&headers, &generation)?;
    let views = generation.views_for(&id);
    let paths = tokio::task::spawn_blocking(move || {
        let mut all: Vec<String> = views
            .iter()
            .flat_map(|v| v.driver.suspect_paths())
            .collect();
        all.sort();
        all.dedup();
        all
    })
    .await
    .unwrap_or_default();
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
    let generation = st.fusion.current();
    let id = super::sessions::main_writer_pipe(&headers, &generation);
    let id = super::body::refused(id, &mut body, &headers).await?;
    let fb: SentinelFeedback = extract::json(&st.control_body(body, &headers).await?)?;
    if fb.kind != "suspect_update" {
        return Ok(Json(json!({"status": "ignored", "reason": "unknown_type"})));
    }
    let updates: Vec<SuspectUpdate> = fb
        .updates
        .into_iter()
        .filter_map(|u| match (u.path, u.mtime) {
            (Some(path), Some(mtime)) if mtime.is_finite() => Some(SuspectUpdate {
                path,
                mtime,
                size: u.size,
            }),
            _ => None,
        })
        .collect();
    let views = generation.views_for(&id);
    let n = views.len();
    st.fusion
        .write_views(&generation, &views, Control::UpdateSuspects(updates.into()))
        .await;
    Ok(Json(json!({"status": "processed", "drivers_updated": n})))
}

//! Event ingestion (`wire-protocol.md` §4).
//!
//! The whole batch is validated before anything is queued: a malformed event or a hostile
//! path refuses the batch with a precise 4xx and leaves the view untouched.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use fustor_core::{BatchKind, Event, EventBatch, FsRow, Now, normalize_path};
use serde_json::{Value, json};

use super::AppState;
use super::body::{discard, refused};
use super::error::{ApiError, ApiResult};
use super::extract;
use crate::limits::{Limits, MAX_ID_BYTES};
use crate::pipe::Control;

/// Refuses a batch over the row or event bounds (an event with `rows: []` still costs memory),
/// a hostile path, or an oversized pipe id in event metadata.
fn check_batch(batch: &EventBatch, limits: &Limits) -> ApiResult<()> {
    let (max_rows, max_events) = (limits.max_rows_per_batch, limits.max_events_per_batch);
    if batch.events.len() > max_events {
        return Err(ApiError::too_large(format!(
            "batch holds {} events; the limit is {max_events}",
            batch.events.len()
        )));
    }
    let rows: usize = batch.events.iter().map(|e| e.rows.len()).sum();
    if rows > max_rows {
        return Err(ApiError::too_large(format!(
            "batch holds {rows} rows; the limit is {max_rows}"
        )));
    }
    for (i, ev) in batch.events.iter().enumerate() {
        if ev
            .metadata
            .get("pipe_id")
            .and_then(Value::as_str)
            .is_some_and(|p| p.len() > MAX_ID_BYTES)
        {
            let loc = ["body", "events", &i.to_string(), "metadata", "pipe_id"];
            return Err(ApiError::invalid(
                &loc,
                format!("longer than {MAX_ID_BYTES} bytes"),
            ));
        }
        for (j, row) in ev.rows.iter().enumerate() {
            for (field, value) in [("path", &row.path), ("parent_path", &row.parent_path)] {
                if let Some(p) = value.as_deref()
                    && let Err(e) = normalize_path(p)
                {
                    let loc = [
                        "body",
                        "events",
                        &i.to_string(),
                        "rows",
                        &j.to_string(),
                        field,
                    ];
                    return Err(ApiError::invalid(&loc, e.to_string()));
                }
            }
        }
    }
    Ok(())
}

/// Fusion, not the agent, says who sent an event (lineage, `consistency.md` §3): a lineage the
/// agent wrote into an event is dropped, and the session's travels once with the batch
/// ([`fustor_core::view::ViewContext`]) instead of being copied into every event. Events without
/// rows change nothing and are dropped too.
fn own_lineage(events: Vec<Event<FsRow>>) -> Vec<Event<FsRow>> {
    let mut events: Vec<Event<FsRow>> = events.into_iter().filter(|e| !e.rows.is_empty()).collect();
    for ev in &mut events {
        ev.metadata.remove("agent_id");
        ev.metadata.remove("source_uri");
    }
    events
}

pub async fn ingest(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    mut body: Body,
) -> ApiResult<Json<Value>> {
    // Key, then session, then body: nothing is buffered for a request that will be refused.
    let key_pipe = if st.main {
        super::sessions::main_writer_pipe(&headers, &st.fusion.current())
    } else {
        super::sessions::receiver_pipe(&st, &headers).map(|p| p.id.clone())
    };
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
    let generation = st.fusion.current();
    let pipe = generation
        .pipes
        .get(&route.pipe_id)
        .cloned()
        .ok_or_else(|| ApiError::internal("Failed to process events"))?;
    let count = batch.events.len();
    let kind = batch.kind();
    let has_meta = batch.metadata.as_ref().is_some_and(|m| !m.is_empty());
    match kind {
        BatchKind::JobComplete | BatchKind::OnDemandJob if has_meta => {
            let meta = batch.metadata.unwrap_or_default();
            if let Some(path) = meta.get("scan_path").and_then(Value::as_str) {
                let job_id = meta.get("job_id").and_then(Value::as_str);
                let f = st.fusion.clone();
                st.fusion.jobs.complete(
                    &id,
                    path,
                    job_id,
                    &|s| f.sessions.get(s).is_some(),
                    Now::system().epoch,
                );
            }
            return Ok(Json(json!({"status": "ok", "phase": "job_complete"})));
        }
        BatchKind::ConfigReport => {
            if let Some(yaml) = batch
                .metadata
                .as_ref()
                .and_then(|m| m.get("config_yaml"))
                .and_then(Value::as_str)
            {
                st.fusion.sessions.set_config_report(&id, yaml.to_string());
            }
            return Ok(Json(json!({"status": "ok", "count": count})));
        }
        _ => {}
    }
    let events = own_lineage(batch.events);
    if !events.is_empty() {
        pipe.pipe
            .enqueue(
                events,
                &id,
                route.agent_id.clone(),
                route.source_uri.clone(),
            )
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?;
    }
    if batch.is_end {
        match kind {
            BatchKind::Snapshot => st.fusion.snapshot_end(&pipe, &id).await,
            BatchKind::Audit => {
                st.fusion.write_pipe(&pipe, Control::AuditEnd).await;
            }
            _ => {}
        }
    }
    Ok(Json(json!({"status": "ok", "count": count})))
}

/// Legacy `POST /api/v1/pipe/{session_id}/events` (main app): malformed events are skipped
/// one by one instead of refusing the batch.
pub async fn legacy(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    mut body: Body,
) -> ApiResult<Json<Value>> {
    let key_pipe = super::sessions::main_writer_pipe(&headers, &st.fusion.current());
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
    let events: Vec<Event<FsRow>> = raw
        .into_iter()
        .filter_map(|e| serde_json::from_value::<Event<FsRow>>(e).ok())
        .filter(|e| {
            e.rows
                .iter()
                .all(|r| r.path.as_deref().is_none_or(|p| normalize_path(p).is_ok()))
        })
        .collect();
    let events = own_lineage(events);
    let generation = st.fusion.current();
    let Some(pipe) = generation.pipes.get(&route.pipe_id) else {
        return Ok(Json(json!({"success": false})));
    };
    let ok = events.is_empty()
        || pipe
            .pipe
            .enqueue(events, &id, route.agent_id, route.source_uri)
            .await
            .is_ok();
    Ok(Json(json!({"success": ok})))
}

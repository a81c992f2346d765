//! Health, pipe info and metrics routes (`wire-protocol.md` §10, `query-api.md` §6).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::extract;
use crate::state::{Generation, PipeDto, PipeEntry, pipe_dto};

pub async fn root() -> Json<Value> {
    Json(json!({"message": "Welcome to Fusion Storage Engine Ingest API"}))
}

/// The OpenAPI document of the query API (`api/openapi.json`, kept in sync by a test).
pub const OPENAPI: &str = include_str!("../../api/openapi.json");

pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// The id a presented key resolves to, if any (these routes need no key: wire §10).
fn caller(headers: &HeaderMap, generation: &Generation) -> Option<String> {
    extract::api_key(headers).and_then(|k| generation.resolve_key(k))
}

/// Whether the caller may see the pipe's session ids: its key is the pipe's or one of its
/// views'. A session id is what a writer addresses, so strangers do not get it.
fn may_see_sessions(caller: Option<&str>, p: &PipeEntry) -> bool {
    caller.is_some_and(|c| c == p.id || p.views.iter().any(|v| v == c))
}

pub async fn pipes(
    State(st): State<AppState>,
    headers: HeaderMap,
) -> Json<BTreeMap<String, PipeDto>> {
    let generation = st.fusion.current();
    let who = caller(&headers, &generation);
    let out = generation
        .pipes
        .iter()
        .map(|(id, p)| {
            let show = may_see_sessions(who.as_deref(), p);
            (id.clone(), pipe_dto(&st.fusion, p, show))
        })
        .collect();
    Json(out)
}

pub async fn pipe(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<PipeDto>> {
    let generation = st.fusion.current();
    let p = generation
        .pipes
        .get(&id)
        .ok_or_else(|| ApiError::not_found("Pipe not found"))?;
    let show = may_see_sessions(caller(&headers, &generation).as_deref(), p);
    Ok(Json(pipe_dto(&st.fusion, p, show)))
}

pub async fn pipe_stats(State(st): State<AppState>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    let generation = st.fusion.current();
    let id = extract::resolve(&headers, &generation)?;
    Ok(Json(match generation.pipes.get(&id) {
        Some(p) => {
            let s = p.pipe.stats.view();
            json!({"events_received": s.events_received, "events_processed": s.events_processed, "errors": s.errors})
        }
        None => json!({"events_received": 0, "events_processed": 0, "active_sessions": 0}),
    }))
}

/// Prometheus text exposition of sessions, pipes, views and request latencies.
pub async fn metrics(State(st): State<AppState>) -> Response {
    let generation = st.fusion.current();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP fustor_sessions_active Agent sessions currently open."
    );
    let _ = writeln!(out, "# TYPE fustor_sessions_active gauge");
    let _ = writeln!(out, "fustor_sessions_active {}", st.fusion.sessions.count());
    let counters = [
        (
            "fustor_pipe_events_received_total",
            "Events accepted by the pipe's receiver.",
            0,
        ),
        (
            "fustor_pipe_events_processed_total",
            "Events applied to the pipe's views.",
            1,
        ),
        (
            "fustor_pipe_rows_applied_total",
            "Rows applied to views.",
            2,
        ),
        (
            "fustor_pipe_rows_rejected_total",
            "Rows refused by views (bad paths).",
            3,
        ),
        (
            "fustor_pipe_sessions_created_total",
            "Sessions created on the pipe.",
            4,
        ),
    ];
    for (name, help, which) in counters {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (id, p) in &generation.pipes {
            let s = &p.pipe.stats;
            let v = match which {
                0 => s.events_received.load(Ordering::Relaxed),
                1 => s.events_processed.load(Ordering::Relaxed),
                2 => s.rows_applied.load(Ordering::Relaxed),
                3 => s.rows_rejected.load(Ordering::Relaxed),
                _ => s.sessions_created.load(Ordering::Relaxed),
            };
            let _ = writeln!(out, "{name}{{pipe=\"{}\"}} {v}", escape(id));
        }
    }
    let _ = writeln!(
        out,
        "# HELP fustor_pipe_queue_batches Batches waiting in the pipe queue.\n# TYPE fustor_pipe_queue_batches gauge"
    );
    for (id, p) in &generation.pipes {
        let _ = writeln!(
            out,
            "fustor_pipe_queue_batches{{pipe=\"{}\"}} {}",
            escape(id),
            p.pipe.queue_len()
        );
    }
    let _ = writeln!(
        out,
        "# HELP fustor_view_nodes Nodes held by the view.\n# TYPE fustor_view_nodes gauge"
    );
    for (id, v) in &generation.views {
        let _ = writeln!(
            out,
            "fustor_view_nodes{{view=\"{}\"}} {}",
            escape(id),
            v.driver.node_count()
        );
    }
    st.metrics.render(&mut out);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

pub fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

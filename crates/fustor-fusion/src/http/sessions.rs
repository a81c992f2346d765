//! Session routes (`wire-protocol.md` §3), in the receiver-port and main-port variants.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use fustor_core::Now;
use fustor_core::view::ViewContext;
use fustor_core::wire::{CreateSessionRequest, HeartbeatRequest};
use serde_json::{Value, json};

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::extract::{self, api_key};
use crate::sessions::{SessionSpec, agent_id_of};
use crate::state::{Fusion, IngestRoute, PipeEntry};

/// Receiver port: a key must belong to a pipe served on this port.
pub fn receiver_pipe(st: &AppState, headers: &HeaderMap) -> ApiResult<Arc<PipeEntry>> {
    let key = api_key(headers).ok_or_else(|| ApiError::unauthorized("API key required"))?;
    let generation = st.fusion.current();
    match generation.pipe_for_key(st.port, key) {
        Some(p) => Ok(p),
        None => {
            // A key configured for a pipe that does not run is a server-side problem (400).
            let configured = generation
                .cfg
                .receivers
                .values()
                .filter(|r| r.port == st.port)
                .flat_map(|r| r.api_keys.iter())
                .find(|e| e.key == key);
            match configured {
                Some(e) => Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("FusionPipe {} not found", e.pipe_id),
                )),
                None => Err(ApiError::unauthorized("Invalid API key")),
            }
        }
    }
}

/// Any agent request on a receiver port carries a key of that receiver.
fn check_receiver_key(st: &AppState, headers: &HeaderMap) -> ApiResult<()> {
    let key = api_key(headers).ok_or_else(|| ApiError::unauthorized("API key required"))?;
    let generation = st.fusion.current();
    let known = generation
        .receiver_keys
        .get(&st.port)
        .is_some_and(|m| m.contains_key(key))
        || generation
            .cfg
            .receivers
            .values()
            .any(|r| r.port == st.port && r.api_keys.iter().any(|e| e.key == key));
    if known {
        Ok(())
    } else {
        Err(ApiError::unauthorized("Invalid API key"))
    }
}

/// Creates the session, runs the election and V1; shared by both ports.
async fn open(
    fusion: &Arc<Fusion>,
    pipe: &PipeEntry,
    req: CreateSessionRequest,
    client_ip: Option<String>,
) -> (String, bool, i64) {
    let timeout = match req.session_timeout_seconds {
        Some(t) if t > 0 => t,
        _ => pipe.cfg.session_timeout_seconds as i64,
    };
    let source_uri = req
        .client_info
        .as_ref()
        .and_then(|c| c.get("source_uri"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let spec = SessionSpec {
        task_id: req.task_id.clone(),
        pipe_id: pipe.id.clone(),
        view_id: pipe.views.first().cloned().unwrap_or_default(),
        pipe_views: pipe.views.clone(),
        election_key: pipe.election_key.clone(),
        timeout_secs: timeout as f64,
        source_uri: source_uri.clone(),
        client_ip,
        allow_concurrent_push: pipe.cfg.allow_concurrent_push,
    };
    let now = Now::system();
    let (id, leader) = fusion.sessions.create(spec, now.epoch, now.mono);
    let agent_id = agent_id_of(&req.task_id).to_string();
    fusion.routes.lock().insert(
        id.clone(),
        IngestRoute {
            pipe_id: pipe.id.clone(),
            agent_id: agent_id.clone(),
            source_uri,
            ended_at: None,
        },
    );
    pipe.pipe
        .stats
        .sessions_created
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if let Some(view) = pipe.pipe.primary().cloned() {
        let (sid, pid) = (id.clone(), pipe.id.clone());
        let _ = tokio::task::spawn_blocking(move || {
            view.session_started(&ViewContext {
                pipe_id: &pid,
                session_id: &sid,
                agent_id: &agent_id,
            });
        })
        .await;
    }
    tracing::info!(session = %id, task = %req.task_id, pipe = %pipe.id, leader, timeout, "session created");
    (id, leader, timeout)
}

fn role(leader: bool) -> &'static str {
    if leader { "leader" } else { "follower" }
}

pub async fn create_receiver(
    State(st): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let pipe = receiver_pipe(&st, &headers)?;
    let req: CreateSessionRequest = extract::json(&extract::body(body)?)?;
    let (id, leader, timeout) = open(&st.fusion, &pipe, req, Some(addr.ip().to_string())).await;
    Ok(Json(json!({
        "session_id": id,
        "role": role(leader),
        "session_timeout_seconds": timeout,
        "audit_interval_sec": pipe.cfg.audit_interval_sec,
        "sentinel_interval_sec": pipe.cfg.sentinel_interval_sec,
        "message": "Session created successfully",
    })))
}

pub async fn create_main(
    State(st): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let generation = st.fusion.current();
    let resolved = extract::resolve(&headers, &generation)?;
    let req: CreateSessionRequest = extract::json(&extract::body(body)?)?;
    let pipe = generation.pipes.get(&resolved).cloned().ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            format!("FusionPipe {resolved} not found"),
        )
    })?;
    let (id, leader, timeout) = open(&st.fusion, &pipe, req, Some(addr.ip().to_string())).await;
    Ok(Json(json!({
        "session_id": id,
        "role": role(leader),
        "is_leader": leader,
        "session_timeout_seconds": timeout,
        "audit_interval_sec": pipe.cfg.audit_interval_sec,
        "sentinel_interval_sec": pipe.cfg.sentinel_interval_sec,
    })))
}

pub async fn heartbeat_receiver(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    check_receiver_key(&st, &headers)?;
    let req: HeartbeatRequest = extract::json_or_default(&extract::body(body)?);
    let now = Now::system();
    match st
        .fusion
        .sessions
        .heartbeat(&id, req.can_realtime, req.agent_status, now.mono, false)
    {
        Some((leader, commands)) => Ok(Json(json!({
            "status": "ok", "role": role(leader), "message": null, "can_realtime": null, "commands": commands,
        }))),
        None => Err(ApiError::new(
            StatusCode::from_u16(419).unwrap_or(StatusCode::GONE),
            "Session obsoleted",
        )),
    }
}

pub async fn heartbeat_main(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    extract::resolve(&headers, &st.fusion.current())?;
    let req: HeartbeatRequest = extract::json_or_default(&extract::body(body)?);
    let now = Now::system();
    match st
        .fusion
        .sessions
        .heartbeat(&id, req.can_realtime, req.agent_status, now.mono, true)
    {
        Some((leader, commands)) => Ok(Json(json!({
            "status": "ok",
            "message": format!("Session {id} heartbeat updated successfully"),
            "role": role(leader),
            "is_leader": leader,
            "commands": commands,
        }))),
        None => Err(ApiError::new(
            StatusCode::from_u16(419).unwrap_or(StatusCode::GONE),
            format!("Session {id} not found"),
        )),
    }
}

async fn close(fusion: &Arc<Fusion>, id: &str) -> bool {
    let f = fusion.clone();
    let sid = id.to_string();
    let ended = tokio::task::spawn_blocking(move || f.end_session(&sid, "closed").is_some())
        .await
        .unwrap_or(false);
    fusion.routes.lock().remove(id);
    ended
}

pub async fn close_receiver(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    check_receiver_key(&st, &headers)?;
    close(&st.fusion, &id).await;
    Ok(Json(json!({"status": "terminated", "session_id": id})))
}

pub async fn close_main(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    extract::resolve(&headers, &st.fusion.current())?;
    let message = if close(&st.fusion, &id).await {
        format!("Session {id} terminated successfully")
    } else {
        format!("Session {id} already terminated")
    };
    Ok(Json(json!({"status": "ok", "message": message})))
}

/// `GET /api/v1/pipe/session/`: which view a key maps to.
pub async fn discover(State(st): State<AppState>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    let id = extract::resolve(&headers, &st.fusion.current())?;
    Ok(Json(json!({"view_id": id, "status": "authorized"})))
}

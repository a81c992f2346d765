//! Session routes (`wire-protocol.md` §3), in the receiver-port and main-port variants.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use fustor_core::Now;
use fustor_core::wire::{CreateSessionRequest, HeartbeatRequest};
use serde_json::{Value, json};

use super::AppState;
use super::body::{discard, refused};
use super::error::{ApiError, ApiResult};
use super::extract::{self, api_key};
use crate::limits::{MAX_ID_BYTES, MAX_URI_BYTES};
use crate::state::{Fusion, Generation, PipeEntry};

/// Receiver port: a key must belong to a pipe served on this port.
pub fn receiver_pipe(st: &AppState, headers: &HeaderMap) -> ApiResult<Arc<PipeEntry>> {
    let key = api_key(headers).ok_or_else(|| ApiError::unauthorized("API key required"))?;
    let generation = st.fusion.current();
    match generation.pipe_for_key(st.port, key) {
        Some(p) => Ok(p),
        // A key configured for a pipe that does not run is a server-side problem (400).
        None => match generation.receiver_key_pipe(st.port, key) {
            Some(pipe) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("FusionPipe {pipe} not found"),
            )),
            None => Err(ApiError::unauthorized("Invalid API key")),
        },
    }
}

/// Receiver port: the pipe of the presented agent key (running or not).
fn receiver_key_pipe(st: &AppState, headers: &HeaderMap) -> ApiResult<String> {
    let key = api_key(headers).ok_or_else(|| ApiError::unauthorized("API key required"))?;
    st.fusion
        .current()
        .receiver_key_pipe(st.port, key)
        .ok_or_else(|| ApiError::unauthorized("Invalid API key"))
}

/// Main port, write routes: only an agent key may write, and only to its own pipe's sessions.
/// A valid query key is told so (403) rather than "unknown key".
pub fn main_writer_pipe(headers: &HeaderMap, generation: &Generation) -> ApiResult<String> {
    let key =
        api_key(headers).ok_or_else(|| ApiError::unauthorized("X-API-Key header is missing"))?;
    if let Some(pipe) = generation.agent_pipe(key) {
        return Ok(pipe);
    }
    if generation.resolve_key(key).is_some() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "A query key cannot write; use the pipe's agent key",
        ));
    }
    Err(ApiError::unauthorized("Invalid or inactive X-API-Key"))
}

/// Whether `session` belongs to `pipe`. A session of another pipe is answered exactly like an
/// unknown one: a session id is not a capability.
pub fn owns(fusion: &Fusion, pipe: &str, session: &str) -> bool {
    fusion.session_pipe(session).as_deref() == Some(pipe)
}

/// Ids are copied into sessions, lineage and logs: refuse oversized ones up front.
fn check_ids(req: &CreateSessionRequest) -> ApiResult<()> {
    if req.task_id.len() > MAX_ID_BYTES {
        return Err(ApiError::invalid(
            &["body", "task_id"],
            format!("task_id is longer than {MAX_ID_BYTES} bytes"),
        ));
    }
    let uri = req
        .client_info
        .as_ref()
        .and_then(|c| c.get("source_uri"))
        .and_then(Value::as_str);
    if uri.is_some_and(|u| u.len() > MAX_URI_BYTES) {
        return Err(ApiError::invalid(
            &["body", "client_info", "source_uri"],
            format!("source_uri is longer than {MAX_URI_BYTES} bytes"),
        ));
    }
    Ok(())
}

fn obsoleted(detail: String) -> ApiError {
    ApiError::new(
        StatusCode::from_u16(419).unwrap_or(StatusCode::GONE),
        detail,
    )
}

fn role(leader: bool) -> &'static str {
    if leader { "leader" } else { "follower" }
}

pub async fn create_receiver(
    State(st): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    mut body: Body,
) -> ApiResult<Json<Value>> {
    let pipe = refused(receiver_pipe(&st, &headers), &mut body, &headers).await?;
    let req: CreateSessionRequest = extract::json(&st.control_body(body, &headers).await?)?;
    check_ids(&req)?;
    let opened = st
        .fusion
        .open_session(&pipe, &req, Some(addr.ip().to_string()))
        .await;
    let (id, leader, timeout) = (opened.session_id, opened.leader, opened.timeout_secs);
    Ok(Json(json!({
        "session_id": id,
        "role": role(leader),
        "session_timeout_seconds": timeout,
        "audit_interval_sec": pipe.cfg.audit_interval_sec,
        "sentinel_interval_sec": pipe.cfg.sentinel_interval_sec,
        "lossless_names": true,
        "message": "Session created successfully",
    })))
}

pub async fn create_main(
    State(st): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    mut body: Body,
) -> ApiResult<Json<Value>> {
    let generation = st.fusion.current();
    let resolved = refused(main_writer_pipe(&headers, &generation), &mut body, &headers).await?;
    let req: CreateSessionRequest = extract::json(&st.control_body(body, &headers).await?)?;
    check_ids(&req)?;
    let pipe = generation.pipes.get(&resolved).cloned().ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            format!("FusionPipe {resolved} not found"),
        )
    })?;
    let opened = st
        .fusion
        .open_session(&pipe, &req, Some(addr.ip().to_string()))
        .await;
    let (id, leader, timeout) = (opened.session_id, opened.leader, opened.timeout_secs);
    Ok(Json(json!({
        "session_id": id,
        "role": role(leader),
        "is_leader": leader,
        "session_timeout_seconds": timeout,
        "audit_interval_sec": pipe.cfg.audit_interval_sec,
        "sentinel_interval_sec": pipe.cfg.sentinel_interval_sec,
        "lossless_names": true,
    })))
}

pub async fn heartbeat_receiver(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    mut body: Body,
) -> ApiResult<Json<Value>> {
    let pipe = refused(receiver_key_pipe(&st, &headers), &mut body, &headers).await?;
    if !owns(&st.fusion, &pipe, &id) {
        discard(&mut body, &headers).await;
        return Err(obsoleted("Session obsoleted".into()));
    }
    let req: HeartbeatRequest = extract::json_or_default(&st.control_body(body, &headers).await?);
    let now = Now::system();
    match st
        .fusion
        .sessions
        .heartbeat(&id, req.can_realtime, req.agent_status, now.mono, false)
    {
        Some((leader, commands)) => Ok(Json(json!({
            "status": "ok", "role": role(leader), "message": null, "can_realtime": null, "commands": commands,
        }))),
        None => Err(obsoleted("Session obsoleted".into())),
    }
}

pub async fn heartbeat_main(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    mut body: Body,
) -> ApiResult<Json<Value>> {
    let generation = st.fusion.current();
    let pipe = refused(main_writer_pipe(&headers, &generation), &mut body, &headers).await?;
    if !owns(&st.fusion, &pipe, &id) {
        discard(&mut body, &headers).await;
        return Err(obsoleted(format!("Session {id} not found")));
    }
    let req: HeartbeatRequest = extract::json_or_default(&st.control_body(body, &headers).await?);
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
        None => Err(obsoleted(format!("Session {id} not found"))),
    }
}

pub async fn close_receiver(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let pipe = receiver_key_pipe(&st, &headers)?;
    // Unknown ids are answered 200 (wire §3.3); so are other pipes' sessions, left open.
    if owns(&st.fusion, &pipe, &id) {
        st.fusion.close_session(&id).await;
    }
    Ok(Json(json!({"status": "terminated", "session_id": id})))
}

pub async fn close_main(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let pipe = main_writer_pipe(&headers, &st.fusion.current())?;
    let message = if owns(&st.fusion, &pipe, &id) && st.fusion.close_session(&id).await {
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

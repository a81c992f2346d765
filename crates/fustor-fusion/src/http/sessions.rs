//! Session routes (`wire-protocol.md` §3), in the receiver-port and main-port variants.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use fustor_core::wire::{
    CreateSessionRequest, CreateSessionResponse, HeartbeatRequest, HeartbeatResponse, Role,
};
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

/// The pipe whose agent key was presented, by the rules of the port the request came in on:
/// the receiver port knows only its own keys, the main port also tells a query key apart (403).
fn key_pipe(st: &AppState, headers: &HeaderMap) -> ApiResult<String> {
    if st.main {
        main_writer_pipe(headers, &st.fusion.current())
    } else {
        receiver_key_pipe(st, headers)
    }
}

/// The pipe a new session joins, as far as the key tells before the body is read.
enum Joining {
    /// Receiver port: a key of a pipe that does not run was already refused (400).
    Running(Arc<PipeEntry>),
    /// Main port: whether the pipe runs is checked after the body (409).
    Named(String),
}

fn joining(st: &AppState, headers: &HeaderMap) -> ApiResult<Joining> {
    if st.main {
        main_writer_pipe(headers, &st.fusion.current()).map(Joining::Named)
    } else {
        receiver_pipe(st, headers).map(Joining::Running)
    }
}

impl Joining {
    fn running(self, st: &AppState) -> ApiResult<Arc<PipeEntry>> {
        match self {
            Joining::Running(p) => Ok(p),
            Joining::Named(id) => st.fusion.current().pipes.get(&id).cloned().ok_or_else(|| {
                ApiError::new(StatusCode::CONFLICT, format!("FusionPipe {id} not found"))
            }),
        }
    }
}

/// `POST /api/v1/pipe/session/`. The main port adds `is_leader` and drops `message`.
pub async fn create(
    State(st): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    mut body: Body,
) -> ApiResult<Json<CreateSessionResponse>> {
    let joining = refused(joining(&st, &headers), &mut body, &headers).await?;
    let req: CreateSessionRequest = extract::json(&st.control_body(body, &headers).await?)?;
    check_ids(&req)?;
    let pipe = joining.running(&st)?;
    let opened = st
        .fusion
        .open_session(&pipe, &req, Some(addr.ip().to_string()))
        .await;
    Ok(Json(CreateSessionResponse {
        session_id: opened.session_id,
        role: Role::of(opened.leader),
        is_leader: st.main.then_some(opened.leader),
        session_timeout_seconds: opened.timeout_secs,
        audit_interval_sec: Some(pipe.cfg.audit_interval_sec),
        sentinel_interval_sec: Some(pipe.cfg.sentinel_interval_sec),
        message: (!st.main).then(|| "Session created successfully".to_string()),
        lossless_names: true,
    }))
}

/// `POST /api/v1/pipe/session/{id}/heartbeat`. The main port re-runs the election on every
/// heartbeat, says so in `message` and `is_leader`, and has no `can_realtime` key.
pub async fn heartbeat(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    mut body: Body,
) -> ApiResult<Json<HeartbeatResponse>> {
    let gone = || {
        obsoleted(if st.main {
            format!("Session {id} not found")
        } else {
            "Session obsoleted".into()
        })
    };
    let pipe = refused(key_pipe(&st, &headers), &mut body, &headers).await?;
    if !owns(&st.fusion, &pipe, &id) {
        discard(&mut body, &headers).await;
        return Err(gone());
    }
    let req: HeartbeatRequest = extract::json_or_default(&st.control_body(body, &headers).await?);
    let beat = st.fusion.heartbeat(&id, req, st.main).ok_or_else(gone)?;
    Ok(Json(HeartbeatResponse {
        status: "ok".into(),
        role: Some(beat.role),
        message: st
            .main
            .then(|| format!("Session {id} heartbeat updated successfully")),
        is_leader: st.main.then_some(beat.role.is_leader()),
        can_realtime: (!st.main).then_some(None),
        commands: beat.commands,
    }))
}

/// `DELETE /api/v1/pipe/session/{id}`. Unknown ids are answered 200 (wire §3.3); so are other
/// pipes' sessions, left open.
pub async fn close(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let pipe = key_pipe(&st, &headers)?;
    let ended = owns(&st.fusion, &pipe, &id) && st.fusion.close_session(&id).await;
    if !st.main {
        return Ok(Json(json!({"status": "terminated", "session_id": id})));
    }
    let message = if ended {
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

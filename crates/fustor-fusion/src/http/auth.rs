//! Agent-key authentication of the write routes, by the rules of the port a request came in
//! on. Every check here runs before a body is read (hostile-input rules, `http/body.rs`).

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::extract::api_key;
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
pub fn receiver_key_pipe(st: &AppState, headers: &HeaderMap) -> ApiResult<String> {
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

/// The pipe whose agent key was presented, by the rules of the port the request came in on:
/// the receiver port knows only its own keys, the main port also tells a query key apart (403).
pub fn key_pipe(st: &AppState, headers: &HeaderMap) -> ApiResult<String> {
    if st.main {
        main_writer_pipe(headers, &st.fusion.current())
    } else {
        receiver_key_pipe(st, headers)
    }
}

/// The pipe a new session joins, as far as the key tells before the body is read.
pub enum Joining {
    /// Receiver port: a key of a pipe that does not run was already refused (400).
    Running(Arc<PipeEntry>),
    /// Main port: whether the pipe runs is checked after the body (409).
    Named(String),
}

pub fn joining(st: &AppState, headers: &HeaderMap) -> ApiResult<Joining> {
    if st.main {
        main_writer_pipe(headers, &st.fusion.current()).map(Joining::Named)
    } else {
        receiver_pipe(st, headers).map(Joining::Running)
    }
}

impl Joining {
    pub fn running(self, st: &AppState) -> ApiResult<Arc<PipeEntry>> {
        match self {
            Joining::Running(p) => Ok(p),
            Joining::Named(id) => st.fusion.current().pipes.get(&id).cloned().ok_or_else(|| {
                ApiError::new(StatusCode::CONFLICT, format!("FusionPipe {id} not found"))
            }),
        }
    }
}

/// Ingest: the receiver port serves only keys of running pipes on it; the main port takes any
/// agent key.
pub fn ingest_pipe(st: &AppState, headers: &HeaderMap) -> ApiResult<String> {
    if st.main {
        main_writer_pipe(headers, &st.fusion.current())
    } else {
        receiver_pipe(st, headers).map(|p| p.id.clone())
    }
}

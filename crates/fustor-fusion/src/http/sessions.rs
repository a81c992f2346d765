//! Session routes (`wire-protocol.md` §3), in the receiver-port and main-port variants.

use std::net::SocketAddr;

use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use fustor_core::wire::{
    CreateSessionRequest, CreateSessionResponse, HeartbeatRequest, HeartbeatResponse, Role,
};
use serde_json::{Value, json};

use super::AppState;
use super::auth::{joining, key_pipe, owns};
use super::body::{discard, refused};
use super::error::{ApiError, ApiResult};
use super::extract;
use crate::limits::{MAX_ID_BYTES, MAX_URI_BYTES};

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
        committed_index: opened.committed_index,
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

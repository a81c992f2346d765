//! The registry's admin API on the main port (`/api/v1/admin/…`). Only admin keys may use it:
//! no key or an unknown key is 401, a query or agent key 403.

use std::collections::HashSet;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::extract::api_key;
use crate::registry::audit::AuditFilter;
use crate::registry::model::{AgentList, AgentRecord, AgentView, AuditEntry, AuditList};
use crate::registry::{RegistryError, keys};

/// Most audit entries one answer holds.
const MAX_AUDIT_LIMIT: u32 = 1000;
const DEFAULT_AUDIT_LIMIT: u32 = 100;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/admin/agents", get(agents))
        .route("/api/v1/admin/agents/{id}", get(agent).delete(forget_agent))
        .route("/api/v1/admin/audit", get(audit))
        .merge(super::admin_configs::routes())
        .merge(super::admin_fusion_config::routes())
        .merge(super::admin_config_pages::routes())
        .merge(super::admin_actions::routes())
}

/// The admin key's name (the audit log's "who").
pub(super) fn admin(st: &AppState, headers: &HeaderMap) -> ApiResult<String> {
    let key =
        api_key(headers).ok_or_else(|| ApiError::unauthorized("X-API-Key header is missing"))?;
    let generation = st.fusion.current();
    let admins = keys::from_extra(&generation.cfg.extra).unwrap_or_else(|e| {
        tracing::error!(error = %e, "admin keys unusable; admin routes refused");
        Vec::new()
    });
    if let Some(name) = keys::admin_name(&admins, key) {
        return Ok(name);
    }
    if generation.resolve_key(key).is_some() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "Admin routes need an admin key; query and agent keys cannot use them",
        ));
    }
    Err(ApiError::unauthorized("Invalid or inactive X-API-Key"))
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
    }
}

/// Refuses every admin route while the database is unusable, with its error: an inventory
/// that would be lost on restart must not look persisted.
pub(super) fn ready(st: &AppState) -> ApiResult<()> {
    st.fusion.registry.db().map(|_| ()).map_err(ApiError::from)
}

/// Task ids (`agent:pipe`) with an open session.
fn open_tasks(st: &AppState) -> HashSet<String> {
    let s = &st.fusion.sessions;
    s.ids()
        .iter()
        .filter_map(|id| s.get(id))
        .map(|x| x.spec.task_id)
        .collect()
}

fn view(record: AgentRecord, open: &HashSet<String>) -> AgentView {
    let connected_pipes: Vec<String> = record
        .pipes
        .keys()
        .filter(|p| {
            open.contains(&format!("{}:{p}", record.agent_id))
                || (p.as_str() == record.agent_id && open.contains(p.as_str()))
        })
        .cloned()
        .collect();
    AgentView {
        connected: !connected_pipes.is_empty(),
        connected_pipes,
        record,
    }
}

async fn agents(State(st): State<AppState>, headers: HeaderMap) -> ApiResult<Json<AgentList>> {
    admin(&st, &headers)?;
    ready(&st)?;
    let open = open_tasks(&st);
    let agents = st
        .fusion
        .registry
        .agents()
        .into_iter()
        .map(|a| view(a, &open))
        .collect();
    Ok(Json(AgentList { agents }))
}

async fn agent(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<AgentView>> {
    admin(&st, &headers)?;
    ready(&st)?;
    let a = st
        .fusion
        .registry
        .agent(&id)
        .ok_or_else(|| ApiError::not_found(format!("Agent {id} not found")))?;
    Ok(Json(view(a, &open_tasks(&st))))
}

async fn forget_agent(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<AuditEntry>> {
    let who = admin(&st, &headers)?;
    let entry = st.fusion.registry.forget(&who, &id).await?;
    tracing::info!(who = %crate::limits::for_log(&who), agent = %crate::limits::for_log(&id),
        result = %entry.result, "admin: agent forgotten");
    if entry.result == "not_found" {
        return Err(ApiError::not_found(format!("Agent {id} not found")));
    }
    Ok(Json(entry))
}

#[derive(Debug, Deserialize)]
struct AuditQuery {
    /// Epoch seconds; entries at or after it.
    since: Option<f64>,
    limit: Option<u32>,
    /// The admin key's name, exactly.
    actor: Option<String>,
    /// An action or its prefix (`fusion_config`).
    action: Option<String>,
    /// A target or its prefix (`fusion-config/`).
    target: Option<String>,
}

async fn audit(
    State(st): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<AuditList>> {
    admin(&st, &headers)?;
    let Query(q) = q.map_err(|e| ApiError::invalid(&["query"], e.body_text()))?;
    let since = q.since.filter(|s| s.is_finite()).unwrap_or(0.0);
    let limit = q
        .limit
        .unwrap_or(DEFAULT_AUDIT_LIMIT)
        .clamp(1, MAX_AUDIT_LIMIT);
    let nonempty = |s: Option<String>| s.filter(|s| !s.is_empty());
    let filter = AuditFilter {
        since,
        actor: nonempty(q.actor),
        action: nonempty(q.action),
        target: nonempty(q.target),
        limit,
    };
    let entries = st.fusion.registry.audit_query(filter).await?;
    Ok(Json(AuditList { entries }))
}

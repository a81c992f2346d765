//! Central agent configuration documents and agent groups on the admin API
//! (`/api/v1/admin/agent-configs/{target}`, `/api/v1/admin/agents/{id}/group`).
//!
//! A write is validated first (422 with the problems by file, key and line), then checked
//! against `If-Match` and stored in one database transaction: 428 when an existing document
//! is written without `If-Match`, 412 when it names a version that is no longer the newest.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::admin::{admin, ready};
use super::error::{ApiError, ApiResult};
use crate::registry::configs::{
    self, ConfigDocument, MAX_DOC_BYTES, Problems, PutOutcome, PutRequest, Target, VersionList,
};
use crate::registry::model::AuditNew;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/admin/agent-configs/{target}",
            get(get_config).put(put_config),
        )
        .route(
            "/api/v1/admin/agent-configs/{target}/versions",
            get(list_versions),
        )
        .route("/api/v1/admin/agents/{id}/group", put(put_group))
        .route("/api/v1/admin/agents/{id}/config", get(effective_config))
        .route("/api/v1/agent/config/{id}", get(agent_fetch))
}

/// `fustor-agent start --registry`: an agent fetches the document it runs with its agent key
/// (an agent host holds no admin key). Read-only; query keys are refused.
async fn agent_fetch(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let key = super::extract::api_key(&headers)
        .ok_or_else(|| ApiError::unauthorized("X-API-Key header is missing"))?;
    let generation = st.fusion.current();
    if generation.agent_pipe(key).is_none() {
        return Err(if generation.resolve_key(key).is_some() {
            ApiError::new(StatusCode::FORBIDDEN, "an agent key is needed")
        } else {
            ApiError::unauthorized("Invalid or inactive X-API-Key")
        });
    }
    drop(generation);
    let (agent, doc) = effective(&st, &id).await?;
    let doc =
        doc.ok_or_else(|| ApiError::not_found(format!("No configuration for agent {agent}")))?;
    Ok(with_etag(StatusCode::OK, doc))
}

/// The document an agent runs: its own, else its group's (what `--registry` will fetch).
async fn effective_config(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    admin(&st, &headers)?;
    let (agent, doc) = effective(&st, &id).await?;
    let doc = doc.ok_or_else(|| {
        ApiError::not_found(format!(
            "No configuration for agent {agent} nor for its group"
        ))
    })?;
    Ok(with_etag(StatusCode::OK, doc))
}

/// The agent named by the path `id` and the document it runs (its own, else its group's).
async fn effective(st: &AppState, id: &str) -> ApiResult<(String, Option<ConfigDocument>)> {
    let agent = match target(id)? {
        Target::Agent(a) => a,
        Target::Group(_) => return Err(ApiError::invalid(&["path", "id"], "an agent id")),
    };
    let db = st.fusion.registry.db()?;
    let a = agent.clone();
    let doc = db
        .call(move |c| configs::effective(c, &a))
        .await
        .map_err(crate::registry::RegistryError::from)?;
    Ok((agent, doc))
}

fn target(raw: &str) -> ApiResult<Target> {
    Target::parse(raw).ok_or_else(|| {
        ApiError::invalid(
            &["path", "target"],
            "an agent id or group:<name>, of letters, digits, '.', '_', '-' (at most 128)",
        )
    })
}

/// The quoted ETag of a digest.
pub(super) fn etag(digest: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{digest}\"")).unwrap_or(HeaderValue::from_static("\"\""))
}

/// `If-Match`: one entity tag, quoted or not, or `*`.
pub(super) fn if_match(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(v) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let v = v
        .to_str()
        .map_err(|_| ApiError::invalid(&["header", "If-Match"], "not ASCII"))?;
    let v = v.trim().trim_start_matches("W/").trim_matches('"');
    Ok(Some(v.to_string()))
}

fn with_etag(status: StatusCode, doc: ConfigDocument) -> Response {
    let tag = etag(&doc.info.digest);
    let mut resp = (status, Json(doc)).into_response();
    resp.headers_mut().insert(header::ETAG, tag);
    resp
}

async fn get_config(
    State(st): State<AppState>,
    Path(raw): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    admin(&st, &headers)?;
    let key = target(&raw)?.key();
    let db = st.fusion.registry.db()?;
    let k = key.clone();
    let doc = db.call(move |c| configs::get(c, &k, None)).await;
    let doc = doc
        .map_err(crate::registry::RegistryError::from)?
        .ok_or_else(|| ApiError::not_found(format!("No configuration for {key}")))?;
    Ok(with_etag(StatusCode::OK, doc))
}

async fn list_versions(
    State(st): State<AppState>,
    Path(raw): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<VersionList>> {
    admin(&st, &headers)?;
    let key = target(&raw)?.key();
    let db = st.fusion.registry.db()?;
    let k = key.clone();
    let versions = db
        .call(move |c| configs::versions(c, &k))
        .await
        .map_err(crate::registry::RegistryError::from)?;
    if versions.is_empty() {
        return Err(ApiError::not_found(format!("No configuration for {key}")));
    }
    Ok(Json(VersionList {
        target: key,
        versions,
    }))
}

async fn put_config(
    State(st): State<AppState>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: String,
) -> ApiResult<Response> {
    let who = admin(&st, &headers)?;
    ready(&st)?;
    let key = target(&raw)?.key();
    if body.len() > MAX_DOC_BYTES {
        return Err(ApiError::too_large(format!(
            "a configuration document is at most {MAX_DOC_BYTES} bytes"
        )));
    }
    let if_match = if_match(&headers)?;
    let text = body.clone();
    let problems = tokio::task::spawn_blocking(move || configs::validate(&text))
        .await
        .map_err(|e| ApiError::internal(format!("validation stopped: {e}")))?;
    if !problems.is_empty() {
        // Refused writes are admin actions too: the log says who tried what.
        st.fusion
            .registry
            .audit(AuditNew {
                who: who.clone(),
                action: "agent_config.put".into(),
                target: format!("agent-config/{key}"),
                before_digest: None,
                after_digest: Some(configs::doc_digest(&body)),
                result: "invalid".into(),
            })
            .await?;
        let n = problems.len();
        let detail = Problems {
            message: format!("configuration refused: {n} problem(s)"),
            problems,
        };
        let value = serde_json::to_value(&detail)
            .map_err(|e| ApiError::internal(format!("encoding the problems: {e}")))?;
        return Err(ApiError::with_detail(
            StatusCode::UNPROCESSABLE_ENTITY,
            value,
        ));
    }
    let req = PutRequest {
        target: key.clone(),
        yaml: body,
        author: who.clone(),
        if_match,
        at: fustor_core::Now::system().epoch,
    };
    let db = st.fusion.registry.db()?;
    let outcome = db
        .call(move |c| configs::put(c, req))
        .await
        .map_err(crate::registry::RegistryError::from)?;
    match outcome {
        PutOutcome::Written(doc) => {
            // Agents running this document hear of the version in their next heartbeat.
            st.fusion.registry.steering.config_written(
                &doc.target,
                doc.info.version,
                &doc.info.digest,
            );
            tracing::info!(who = %crate::limits::for_log(&who),
                target = %crate::limits::for_log(&key), version = doc.info.version,
                "admin: agent configuration written");
            let status = if doc.info.version == 1 {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok(with_etag(status, doc))
        }
        PutOutcome::Stale { current } => {
            let mut e = ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                match current.as_deref() {
                    Some(d) => format!(
                        "If-Match names a version of {key} that is no longer the newest \
                         (newest: \"{d}\"); read it again and re-apply your change"
                    ),
                    None => format!("If-Match given but {key} has no configuration yet"),
                },
            )
            .into_response();
            if let Some(d) = current {
                e.headers_mut().insert(header::ETAG, etag(&d));
            }
            Ok(e)
        }
        PutOutcome::Required { current } => {
            let mut e = ApiError::new(
                StatusCode::PRECONDITION_REQUIRED,
                format!(
                    "{key} already has a configuration: send If-Match with its ETag \
                     (\"{current}\") to replace it"
                ),
            )
            .into_response();
            e.headers_mut().insert(header::ETAG, etag(&current));
            Ok(e)
        }
    }
}

#[derive(Debug, Deserialize)]
struct GroupBody {
    /// The group's name; `null` removes the agent from its group.
    group: Option<String>,
}

#[derive(Debug, Serialize)]
struct GroupAnswer {
    agent_id: String,
    group: Option<String>,
    previous: Option<String>,
}

async fn put_group(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Json<GroupBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<GroupAnswer>> {
    let who = admin(&st, &headers)?;
    ready(&st)?;
    let Json(body) = body.map_err(|e| ApiError::invalid(&["body"], e.body_text()))?;
    let agent = match target(&id)? {
        Target::Agent(a) => a,
        Target::Group(_) => return Err(ApiError::invalid(&["path", "id"], "an agent id")),
    };
    if let Some(g) = &body.group
        && !Target::is_group_name(g)
    {
        return Err(ApiError::invalid(
            &["body", "group"],
            "letters, digits, '.', '_', '-' (at most 128)",
        ));
    }
    let audit = AuditNew {
        who,
        action: "agent.group".into(),
        target: format!("agent/{agent}"),
        before_digest: None,
        after_digest: None,
        result: "ok".into(),
    };
    let (a, g) = (agent.clone(), body.group.clone());
    let at = fustor_core::Now::system().epoch;
    let db = st.fusion.registry.db()?;
    let previous = db
        .call(move |c| configs::set_group(c, &a, g.as_deref(), audit, at))
        .await
        .map_err(crate::registry::RegistryError::from)?;
    st.fusion
        .registry
        .steering
        .group_set(&agent, body.group.as_deref());
    Ok(Json(GroupAnswer {
        agent_id: agent,
        group: body.group,
        previous,
    }))
}

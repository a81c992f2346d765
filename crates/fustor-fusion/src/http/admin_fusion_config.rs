//! Fusion's own configuration on the admin API (`/api/v1/admin/fusion-config…`): the files of
//! `fusion-config/` read and written as YAML, guarded by the ETag of the whole set.
//!
//! `PUT`/`DELETE` of a file: 428 without `If-Match`, 412 when the set changed since (through
//! the API or on disk), 422 with the `check-config` problems by file, key and line, 409 when
//! the reload refused a valid set (the file is put back, the running configuration kept).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use super::AppState;
use super::admin::{admin, ready};
use super::admin_configs::{etag, if_match};
use super::error::{ApiError, ApiResult};
use crate::registry::configs::Problems;
use crate::registry::fusion_config::{
    self, ConfigSet, FusionConfigError, Outcome, VersionDoc, VersionList,
};
use crate::registry::fusion_files::{MAX_FILE_BYTES, valid_file_name};
use crate::registry::{RegistryError, db::Db};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/admin/fusion-config", get(get_set))
        .route("/api/v1/admin/fusion-config/versions", get(list_versions))
        .route("/api/v1/admin/fusion-config/versions/{n}", get(get_version))
        .route(
            "/api/v1/admin/fusion-config/{file}",
            axum::routing::put(put_file).delete(delete_file),
        )
}

impl From<FusionConfigError> for ApiError {
    fn from(e: FusionConfigError) -> Self {
        let status = match e {
            FusionConfigError::Io(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::SERVICE_UNAVAILABLE,
        };
        ApiError::new(status, e.to_string())
    }
}

/// The 409 of a valid change the reload refused.
#[derive(Debug, Serialize)]
struct Refused {
    message: String,
    reason: String,
}

fn db(st: &AppState) -> ApiResult<Db> {
    Ok(st.fusion.registry.db()?)
}

fn with_etag(set: ConfigSet) -> Response {
    let tag = etag(&set.digest);
    let mut resp = Json(set).into_response();
    resp.headers_mut().insert(header::ETAG, tag);
    resp
}

async fn get_set(State(st): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    admin(&st, &headers)?;
    let set = st.fusion.registry.fusion_config.current(&db(&st)?).await?;
    Ok(with_etag(set))
}

async fn list_versions(
    State(st): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<VersionList>> {
    admin(&st, &headers)?;
    let versions = db(&st)?
        .call(|c| fusion_config::versions(c))
        .await
        .map_err(RegistryError::from)?;
    Ok(Json(VersionList { versions }))
}

async fn get_version(
    State(st): State<AppState>,
    Path(n): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<VersionDoc>> {
    admin(&st, &headers)?;
    let n: i64 = n
        .parse()
        .map_err(|_| ApiError::invalid(&["path", "n"], "a version number"))?;
    let doc = db(&st)?
        .call(move |c| fusion_config::version(c, n))
        .await
        .map_err(RegistryError::from)?
        .ok_or_else(|| ApiError::not_found(format!("No version {n} of Fusion's configuration")))?;
    Ok(Json(doc))
}

fn file_name(raw: &str) -> ApiResult<String> {
    if valid_file_name(raw) {
        return Ok(raw.to_string());
    }
    Err(ApiError::invalid(
        &["path", "file"],
        "a file name ending in .yaml, of letters, digits, '.', '_', '-' (not starting with '.')",
    ))
}

async fn put_file(
    State(st): State<AppState>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: String,
) -> ApiResult<Response> {
    let who = admin(&st, &headers)?;
    ready(&st)?;
    let name = file_name(&raw)?;
    if body.len() > MAX_FILE_BYTES {
        return Err(ApiError::too_large(format!(
            "a configuration file is at most {MAX_FILE_BYTES} bytes"
        )));
    }
    let m = if_match(&headers)?;
    change(&st, &who, &name, Some(body), m).await
}

async fn delete_file(
    State(st): State<AppState>,
    Path(raw): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let who = admin(&st, &headers)?;
    ready(&st)?;
    let name = file_name(&raw)?;
    let m = if_match(&headers)?;
    change(&st, &who, &name, None, m).await
}

async fn change(
    st: &AppState,
    who: &str,
    name: &str,
    text: Option<String>,
    if_match: Option<String>,
) -> ApiResult<Response> {
    let outcome = st
        .fusion
        .registry
        .fusion_config
        .change(&db(st)?, who, name, text, if_match)
        .await?;
    let precondition = |status: StatusCode, msg: String, current: &str| {
        let mut e = ApiError::new(status, msg).into_response();
        e.headers_mut().insert(header::ETAG, etag(current));
        e
    };
    Ok(match outcome {
        Outcome::Applied(set) => {
            tracing::info!(who = %crate::limits::for_log(who),
                file = %crate::limits::for_log(name), version = ?set.version,
                "admin: Fusion configuration changed and reloaded");
            with_etag(set)
        }
        Outcome::Invalid(problems) => {
            let detail = Problems {
                message: format!("configuration refused: {} problem(s)", problems.len()),
                problems,
            };
            let value = serde_json::to_value(&detail)
                .map_err(|e| ApiError::internal(format!("encoding the problems: {e}")))?;
            ApiError::with_detail(StatusCode::UNPROCESSABLE_ENTITY, value).into_response()
        }
        Outcome::Stale { current } => precondition(
            StatusCode::PRECONDITION_FAILED,
            format!(
                "Fusion's configuration changed since it was read (newest: \"{current}\"); \
                 read it again and re-apply your change"
            ),
            &current,
        ),
        Outcome::Required { current } => precondition(
            StatusCode::PRECONDITION_REQUIRED,
            format!(
                "send If-Match with the ETag of Fusion's configuration (\"{current}\") to \
                 change it"
            ),
            &current,
        ),
        Outcome::Refused { reason } => {
            let detail = Refused {
                message: "the reload refused this configuration; the file was restored and \
                          the previous configuration keeps running"
                    .into(),
                reason,
            };
            let value = serde_json::to_value(&detail)
                .map_err(|e| ApiError::internal(format!("encoding the answer: {e}")))?;
            ApiError::with_detail(StatusCode::CONFLICT, value).into_response()
        }
        Outcome::NoSuchFile => {
            ApiError::not_found(format!("No file {name} in fusion-config/")).into_response()
        }
    })
}

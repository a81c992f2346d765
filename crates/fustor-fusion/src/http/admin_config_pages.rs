//! What the console's Config page needs beyond the document routes: the list of agent
//! configuration targets and the text of any stored version (for the version diff).

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};

use super::AppState;
use super::admin::admin;
use super::error::{ApiError, ApiResult};
use crate::registry::RegistryError;
use crate::registry::config_targets::{self, TargetList};
use crate::registry::configs::{self, ConfigDocument, Target};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/admin/agent-configs", get(list_targets))
        .route(
            "/api/v1/admin/agent-configs/{target}/versions/{n}",
            get(get_version),
        )
}

async fn list_targets(
    State(st): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<TargetList>> {
    admin(&st, &headers)?;
    let db = st.fusion.registry.db()?;
    let targets = db
        .call(|c| config_targets::targets(c))
        .await
        .map_err(RegistryError::from)?;
    Ok(Json(TargetList { targets }))
}

async fn get_version(
    State(st): State<AppState>,
    Path((raw, n)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<ConfigDocument>> {
    admin(&st, &headers)?;
    let key = Target::parse(&raw)
        .ok_or_else(|| ApiError::invalid(&["path", "target"], "an agent id or group:<name>"))?
        .key();
    let n: i64 = n
        .parse()
        .map_err(|_| ApiError::invalid(&["path", "n"], "a version number"))?;
    let db = st.fusion.registry.db()?;
    let k = key.clone();
    let doc = db
        .call(move |c| configs::get(c, &k, Some(n)))
        .await
        .map_err(RegistryError::from)?
        .ok_or_else(|| ApiError::not_found(format!("No version {n} of {key}")))?;
    Ok(Json(doc))
}

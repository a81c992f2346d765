//! Forest view routes (`query-api.md` §5): not readiness-gated; every member answers for
//! itself, so one failing member never fails the request.

use std::sync::Arc;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use fustor_view_fs::ForestView;

use super::error::ApiResult;
use super::extract::{Params, tree_options};
use super::views::blocking;

pub async fn tree(
    forest: Arc<ForestView>,
    limit: Option<usize>,
    p: &Params,
) -> ApiResult<Response> {
    let path = p.get("path").cloned().unwrap_or_else(|| "/".to_string());
    let opts = tree_options(p)?;
    let best = p.get("best").cloned().filter(|b| !b.is_empty());
    let bytes = blocking(move || forest.tree_json(&path, &opts, best.as_deref(), limit)).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], bytes).into_response())
}

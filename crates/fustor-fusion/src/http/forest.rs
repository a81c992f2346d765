//! Forest view routes (`query-api.md` §5): not readiness-gated; every member answers for
//! itself, so one failing member never fails the request.

use std::sync::Arc;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use fustor_view_fs::ForestView;
use fustor_view_fs::fs::TreeOptions;

use super::error::{ApiError, ApiResult};
use super::extract::{Params, bool_param, int_param};
use super::views::blocking;

pub async fn tree(
    forest: Arc<ForestView>,
    limit: Option<usize>,
    p: &Params,
) -> ApiResult<Response> {
    let path = p.get("path").cloned().unwrap_or_else(|| "/".to_string());
    let max_depth = int_param(p, "max_depth")?;
    if max_depth.is_some_and(|d| d < 0) {
        return Err(ApiError::invalid(
            &["query", "max_depth"],
            "Input should be greater than or equal to 0",
        ));
    }
    let opts = TreeOptions {
        recursive: bool_param(p, "recursive", true)?,
        max_depth: max_depth.map(|d| d.min(u32::MAX as i64) as u32),
        only_path: bool_param(p, "only_path", false)?,
    };
    let best = p.get("best").cloned().filter(|b| !b.is_empty());
    let bytes = blocking(move || forest.tree_json(&path, &opts, best.as_deref(), limit)).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], bytes).into_response())
}

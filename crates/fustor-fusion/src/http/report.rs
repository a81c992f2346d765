//! `GET /views/{view}/report` (issue 14): usage by owner, group, size and age. A route of its
//! own so the query routes of `views.rs` stay as the reference has them.

use axum::extract::State;
use fustor_core::Now;
use fustor_core::view::{QueryRoute, ReportBy, ReportQuery};
use serde_json::Value;

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::extract::{QueryParams, int_param};
use super::lossless_json::LosslessJson;
use super::view_ref::ViewRef;

/// Owners, groups and files listed when `top=` is not given.
const DEFAULT_TOP: usize = 10;

pub async fn report(
    State(st): State<AppState>,
    QueryParams(p): QueryParams,
    v: ViewRef,
) -> ApiResult<LosslessJson<Value>> {
    let path = p.get("path").cloned().unwrap_or_else(|| "/".to_string());
    let by = match p.get("by") {
        None => None,
        Some(s) => Some(ReportBy::parse(s).ok_or_else(|| {
            ApiError::invalid(
                &["query", "by"],
                "Input should be 'owner', 'group', 'size' or 'age'",
            )
        })?),
    };
    let top = int_param(&p, "top")?.map_or(DEFAULT_TOP, |n| n.max(0) as usize);
    let best = p.get("best").cloned();
    let identity = v.identity();
    v.query(&st, QueryRoute::Report, move |d| {
        d.report(&ReportQuery {
            path: &path,
            by,
            top,
            best: best.as_deref(),
            now: Now::system(),
            identity: identity.as_deref(),
        })
    })
    .await
    .map(LosslessJson)
}

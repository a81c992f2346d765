//! What every query route of a view does before and after asking its driver: auth, the view
//! lookup, the readiness gate, running the query off the async threads, and mapping
//! [`QueryError`] to the answers of `query-api.md` §1–§3.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use fustor_core::view::{Answer, Identity, QueryError, QueryRoute, ViewQuery};
use serde_json::json;

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::extract;
use super::lossless_json::LosslessJson;
use super::views::blocking;
use crate::sessions::Readiness;
use crate::state::{Generation, ViewEntry};

/// The view a route names, once the key resolved (401 otherwise) and the view is configured
/// (404 otherwise). `entry` is `None` for a configured view that is disabled or failed to build.
pub struct ViewRef {
    pub name: String,
    /// The view or pipe id the key resolved to.
    pub resolved: String,
    pub generation: Arc<Generation>,
    pub entry: Option<Arc<ViewEntry>>,
    /// The user the query key stands for (issue 14); `None`: the whole view.
    identity: Option<Arc<Identity>>,
}

impl FromRequestParts<AppState> for ViewRef {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Response> {
        let Path(name) = Path::<String>::from_request_parts(parts, st)
            .await
            .map_err(IntoResponse::into_response)?;
        ViewRef::resolve(st, &parts.headers, name).map_err(IntoResponse::into_response)
    }
}

/// The 404 of a view name that is not configured. The reference answers `Not Found` (its
/// per-view routes do not exist); naming the view tells a user which name was wrong. The name
/// comes from the URL: at most 100 characters are echoed.
fn unknown_view(name: &str) -> String {
    let shown: String = name.chars().take(100).collect();
    let more = if shown.len() < name.len() { "…" } else { "" };
    format!("View '{shown}{more}' is not configured")
}

impl ViewRef {
    /// For routes with a body, which must see the error before they read it.
    pub fn resolve(st: &AppState, headers: &HeaderMap, name: String) -> ApiResult<ViewRef> {
        let generation = st.fusion.current();
        let resolved = extract::resolve(headers, &generation)?;
        if !generation.cfg.views.contains_key(&name) {
            return Err(ApiError::not_found(unknown_view(&name)));
        }
        let entry = generation.views.get(&name).cloned();
        let identity = extract::api_key(headers)
            .and_then(|k| generation.resolve_query_key(k))
            .and_then(|(_, who)| who)
            .map(Arc::new);
        Ok(ViewRef {
            name,
            resolved,
            generation,
            entry,
            identity,
        })
    }

    /// The user the key stands for, if it is bound to one.
    pub fn identity(&self) -> Option<Arc<Identity>> {
        self.identity.clone()
    }

    /// The view entry that answers `route`, behind the readiness gate when the route has one
    /// and the driver does not answer per member. A route the driver does not support keeps
    /// its gate and then answers 404, as the fs-only routes always did for forest views.
    pub fn driver(&self, st: &AppState, route: QueryRoute) -> ApiResult<Arc<ViewEntry>> {
        let name = &self.name;
        let gated = route.readiness_gated()
            && self
                .entry
                .as_ref()
                .is_none_or(|e| e.driver.readiness_gated() || !e.driver.supports(route));
        if gated && !self.restored() {
            ready(st, name)?;
        }
        let entry = self
            .entry
            .clone()
            .ok_or_else(|| ApiError::not_found(format!("View '{name}' not found")))?;
        if !entry.driver.supports(route) {
            return Err(ApiError::not_found("Not Found"));
        }
        if self.identity.is_some() && !entry.driver.answers_as_user() {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!("View '{name}' cannot answer for a key bound to a user"),
            ));
        }
        Ok(entry)
    }

    /// A view restored from disk answers with its last content at once (issue 11; recorded in
    /// `docs/deviations.md`), instead of 503 until a leader's snapshot.
    pub fn restored(&self) -> bool {
        self.generation
            .stores
            .get(&self.name)
            .is_some_and(|s| s.status().restored_at.is_some())
    }

    /// Runs `f` on the driver of `route` off the async threads.
    pub async fn query<T: Send + 'static>(
        &self,
        st: &AppState,
        route: QueryRoute,
        f: impl FnOnce(&dyn ViewQuery) -> Result<T, QueryError> + Send + 'static,
    ) -> ApiResult<T> {
        let entry = self.driver(st, route)?;
        run(&self.name, entry, f).await
    }
}

/// Runs `f` on `entry`'s driver off the async threads.
pub(super) async fn run<T: Send + 'static>(
    name: &str,
    entry: Arc<ViewEntry>,
    f: impl FnOnce(&dyn ViewQuery) -> Result<T, QueryError> + Send + 'static,
) -> ApiResult<T> {
    let e2 = entry.clone();
    blocking(move || f(&*e2.driver))
        .await?
        .map_err(|e| query_error(name, &entry, e))
}

fn ready(st: &AppState, name: &str) -> ApiResult<()> {
    match st.fusion.sessions.readiness(name) {
        Readiness::Ready => Ok(()),
        Readiness::NoLeader => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("View '{name}': No active leader session. Ensure at least one agent is running."),
        )
        .retry_after(10)),
        Readiness::Snapshotting => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("View '{name}': Initial snapshot sync phase in progress (Leader is scanning storage)"),
        )
        .retry_after(5)),
    }
}

pub(super) fn query_error(name: &str, entry: &ViewEntry, e: QueryError) -> ApiError {
    match e {
        QueryError::NotFound => ApiError::path_not_found(name),
        QueryError::LimitExceeded { limit, .. } => ApiError::with_detail(
            StatusCode::BAD_REQUEST,
            json!({
                "error": "Metadata retrieval limit exceeded",
                "view": name,
                "current_count": entry.driver.node_count(),
                "limit": limit,
                "suggestion": "Try a more specific path or reduce recursion depth.",
            }),
        ),
        QueryError::Unsupported => ApiError::not_found("Not Found"),
    }
}

/// Serialized answers go out as they are; values are written with lossless name escaping.
/// How many items matched a `limit=` answer (a common header name for list totals).
static TOTAL_COUNT: header::HeaderName = header::HeaderName::from_static("x-total-count");
/// Whether `limit=` left matches out.
static TRUNCATED: header::HeaderName = header::HeaderName::from_static("x-fustor-truncated");

pub(super) fn answer(a: Answer) -> Response {
    match a {
        Answer::Bytes(bytes) => {
            ([(header::CONTENT_TYPE, "application/json")], bytes).into_response()
        }
        Answer::Value(v) => LosslessJson(v).into_response(),
        Answer::Parts(parts) => (
            [(header::CONTENT_TYPE, "application/json")],
            axum::body::Body::new(PartsBody(parts.into_iter().map(Bytes::from).collect())),
        )
            .into_response(),
        Answer::Page {
            json,
            total,
            truncated,
        } => (
            [
                (header::CONTENT_TYPE, "application/json".to_string()),
                (TOTAL_COUNT.clone(), total.to_string()),
                (TRUNCATED.clone(), truncated.to_string()),
            ],
            json,
        )
            .into_response(),
    }
}

/// A body sent as the parts of an [`Answer::Parts`], in order, without joining them.
struct PartsBody(std::collections::VecDeque<Bytes>);

impl axum::body::HttpBody for PartsBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Ready(self.0.pop_front().map(|b| Ok(http_body::Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_empty()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.0.iter().map(|b| b.len() as u64).sum())
    }
}

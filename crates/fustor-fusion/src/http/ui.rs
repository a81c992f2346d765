//! The web console: a static single page (HTML, CSS, vanilla JS) compiled into the binary and
//! served under `/ui/`, plus `GET /api/v1/views`, which the console uses to list the views.
//!
//! No build step and no external resources: the page works on closed networks. Every answer of
//! the page carries a `Content-Security-Policy` that allows only this origin, so a file name
//! that looks like markup can never run as script even if the page had a bug.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use fustor_core::Now;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiResult;
use super::extract;

const INDEX_HTML: &str = include_str!("../../web/index.html");

/// The console's files, served under `/ui/` with the same headers.
const ASSETS: [(&str, &str, &str); 7] = [
    ("dom.js", JS, include_str!("../../web/dom.js")),
    ("app.js", JS, include_str!("../../web/app.js")),
    ("agents.js", JS, include_str!("../../web/agents.js")),
    ("usage.js", JS, include_str!("../../web/usage.js")),
    ("configs.js", JS, include_str!("../../web/configs.js")),
    ("audit.js", JS, include_str!("../../web/audit.js")),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../../web/app.css"),
    ),
];
const JS: &str = "text/javascript; charset=utf-8";

/// Self only: no inline script or style, no frames, no plugins, fetches to this origin only.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

pub fn routes() -> Router<AppState> {
    let mut router = Router::new();
    for (name, content_type, body) in ASSETS {
        router = router.route(
            &format!("/ui/{name}"),
            get(move || async move { asset(content_type, body) }),
        );
    }
    router
        .route("/ui", get(|| async { Redirect::temporary("/ui/") }))
        .route(
            "/ui/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/ui/index.html",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route("/api/v1/views", get(list_views))
        .route("/api/v1/ui/clock", get(clock))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // The assets change with the binary only; revalidating is cheap and avoids a stale page
    // after an upgrade.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// `GET /api/v1/views`: the configured (not disabled) views, `[{"view_id", "driver",
/// "loaded"}]` in id order. Any valid key may list them, as any valid key may query any view
/// (`query-api.md` §1). `loaded` is false for a view whose engine could not be built.
pub async fn list_views(State(st): State<AppState>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    let generation = st.fusion.current();
    extract::resolve(&headers, &generation)?;
    let list: Vec<Value> = generation
        .cfg
        .views
        .iter()
        .filter(|(_, v)| !v.disabled)
        .map(|(id, v)| {
            json!({
                "view_id": id,
                "driver": v.driver,
                "loaded": generation.views.contains_key(id),
            })
        })
        .collect();
    Ok(Json(Value::Array(list)))
}

/// `GET /api/v1/ui/clock`: Fusion's clocks, `{"epoch", "monotonic"}`. Session `last_activity`
/// and `suspect_until` are on the monotonic clock; the console turns them into ages with this.
pub async fn clock(State(st): State<AppState>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    extract::resolve(&headers, &st.fusion.current())?;
    let now = Now::system();
    Ok(Json(json!({"epoch": now.epoch, "monotonic": now.mono})))
}

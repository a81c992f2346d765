//! Fusion's HTTP surface: the main app (queries, sessions, consistency, info) and one receiver
//! app per distinct receiver port (agent-facing routes).

mod admin;
mod admin_actions;
mod admin_config_pages;
mod admin_configs;
mod admin_fusion_config;
mod as_user;
mod auth;
pub mod body;
mod client_cert;
mod consistency;
pub mod cors;
pub mod error;
mod extract;
mod info;
mod ingest;
mod lossless_json;
mod metrics;
mod report;
pub mod serve;
mod sessions;
mod ui;
mod view_ref;
mod views;
mod whoami;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::HeaderMap;
use axum::routing::{get, post};

use crate::state::Fusion;
pub use metrics::Metrics;

#[derive(Clone)]
pub struct AppState {
    pub fusion: Arc<Fusion>,
    pub metrics: Arc<Metrics>,
    /// The port this app serves (receiver key maps are per port).
    pub port: u16,
    pub main: bool,
}

impl AppState {
    /// A control route's body (session, heartbeat, consistency, suspect list): small.
    pub async fn control_body(
        &self,
        body: Body,
        headers: &HeaderMap,
    ) -> error::ApiResult<body::Limited> {
        let l = &self.fusion.limits;
        let limit = l.max_control_body_bytes.min(l.max_body_bytes);
        body::read(
            body,
            headers,
            limit,
            &self.fusion.bodies,
            l.body_read_timeout(),
        )
        .await
    }

    /// An event batch body, up to `max_body_bytes`.
    pub async fn ingest_body(
        &self,
        body: Body,
        headers: &HeaderMap,
    ) -> error::ApiResult<body::Limited> {
        let l = &self.fusion.limits;
        body::read(
            body,
            headers,
            l.max_body_bytes,
            &self.fusion.bodies,
            l.body_read_timeout(),
        )
        .await
    }
}

fn consistency_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/pipe/consistency/audit/start",
            post(consistency::audit_start),
        )
        .route(
            "/api/v1/pipe/consistency/audit/end",
            post(consistency::audit_end),
        )
        .route(
            "/api/v1/pipe/consistency/sentinel/tasks",
            get(consistency::sentinel_tasks),
        )
        .route(
            "/api/v1/pipe/consistency/sentinel/feedback",
            post(consistency::sentinel_feedback),
        )
        .route_layer(axum::middleware::from_fn(client_cert::require))
}

/// Heartbeat and close: the same handlers and paths on both ports.
fn session_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/pipe/session/{id}/heartbeat",
            post(sessions::heartbeat),
        )
        .route(
            "/api/v1/pipe/session/{id}",
            axum::routing::delete(sessions::close),
        )
        .route_layer(axum::middleware::from_fn(client_cert::require))
}

fn receiver_routes() -> Router<AppState> {
    session_routes()
        .route("/api/v1/pipe/session/", post(sessions::create))
        .route("/api/v1/pipe/ingest/{id}/events", post(ingest::ingest))
        .route_layer(axum::middleware::from_fn(client_cert::require))
}

fn finish(router: Router<AppState>, state: AppState) -> Router {
    let limit = state.fusion.limits.max_body_bytes;
    router
        .fallback(|| async { error::ApiError::not_found("Not Found") })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            cors::layer,
        ))
        .with_state(state)
}

/// The main app. When a receiver shares the main port its agent routes are mounted here too,
/// behind the main app's own session routes (`wire-protocol.md` §1).
pub fn main_app(
    fusion: Arc<Fusion>,
    metrics: Arc<Metrics>,
    port: u16,
    with_receiver: bool,
) -> Router {
    let state = AppState {
        fusion,
        metrics,
        port,
        main: true,
    };
    let mut r = session_routes()
        .route("/", get(info::root))
        .route("/metrics", get(info::metrics))
        .route("/api/v1/openapi.json", get(info::openapi))
        .route(
            "/api/v1/pipe/session/",
            post(sessions::create)
                .route_layer(axum::middleware::from_fn(client_cert::require))
                .get(sessions::discover),
        )
        .route(
            "/api/v1/pipe/{id}/events",
            post(ingest::legacy).route_layer(axum::middleware::from_fn(client_cert::require)),
        )
        .route("/api/v1/pipe/pipes", get(info::pipes))
        .route("/api/v1/pipe/pipes/{id}", get(info::pipe))
        .route("/api/v1/pipe/stats", get(info::pipe_stats))
        .route("/api/v1/views/{view}/tree", get(views::tree))
        .route("/api/v1/views/{view}/metadata", get(views::metadata))
        .route("/api/v1/views/{view}/search", get(views::search))
        .route("/api/v1/views/{view}/stats", get(views::stats))
        .route("/api/v1/views/{view}/report", get(report::report))
        .route("/api/v1/views/{view}/whoami", get(whoami::whoami))
        .route("/api/v1/views/{view}/blind-spots", get(views::blind_spots))
        .route(
            "/api/v1/views/{view}/suspect-list",
            get(views::suspect_list).put(views::put_suspect_list),
        )
        .route(
            "/api/v1/views/{view}/reset",
            axum::routing::delete(views::reset),
        )
        .route("/api/v1/views/{view}/sessions", get(views::sessions))
        .route("/api/v1/views/{view}/diff", get(views::diff))
        .route("/api/v1/views/{view}/jobs", get(views::jobs))
        .route("/api/v1/views/{view}/jobs/{job_id}", get(views::job))
        .merge(consistency_routes())
        .merge(ui::routes())
        .merge(admin::routes());
    if with_receiver {
        r = r.route(
            "/api/v1/pipe/ingest/{id}/events",
            post(ingest::ingest).route_layer(axum::middleware::from_fn(client_cert::require)),
        );
    }
    finish(r, state)
}

pub fn receiver_app(fusion: Arc<Fusion>, metrics: Arc<Metrics>, port: u16) -> Router {
    let state = AppState {
        fusion,
        metrics,
        port,
        main: false,
    };
    finish(receiver_routes().merge(consistency_routes()), state)
}

/// Serves an app until `shutdown` resolves, under the connection and timeout limits.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: &crate::limits::Limits,
    tls: Option<Arc<crate::tls::TlsCell>>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let opts = serve::ServeOptions {
        header_read_timeout: limits.header_read_timeout(),
        max_connections: limits.max_connections_per_port,
        tls,
    };
    serve::serve(listener, app, opts, shutdown).await
}

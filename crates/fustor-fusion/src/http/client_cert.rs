//! Client-certificate authentication of agents (`tls.client_ca_file`): the agent routes refuse
//! a connection that did not present a certificate the client CA verified. The handshake lets
//! such connections through so that browsers without a certificate still reach the query
//! routes on a shared port, and the agent gets an HTTP answer that says what is missing rather
//! than a bare handshake failure.

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::serve::ClientCert;

pub async fn require(req: Request, next: Next) -> Response {
    match req.extensions().get::<ClientCert>() {
        Some(c) if c.required && !c.verified => ApiError::new(
            StatusCode::FORBIDDEN,
            "a client certificate signed by the configured client CA (tls.client_ca_file) is \
             required on agent routes",
        )
        .into_response(),
        _ => next.run(req).await,
    }
}

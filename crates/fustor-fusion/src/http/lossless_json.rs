//! JSON answers that carry file names.
//!
//! Names live in memory in the lossless form of `fustor_core::lossless`; answers write their
//! undecodable bytes as `\udcXX`, exactly as the Python Fusion serialises `surrogateescape`d
//! names, so both clients see the same distinct names.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::error::ApiError;

/// `axum::Json`, written with [`fustor_core::lossless::LosslessFormatter`].
#[derive(Debug, Clone)]
pub struct LosslessJson<T>(pub T);

impl<T: Serialize> IntoResponse for LosslessJson<T> {
    fn into_response(self) -> Response {
        match fustor_core::lossless::to_vec(&self.0) {
            Ok(bytes) => ([(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
            Err(e) => ApiError::internal(e.to_string()).into_response(),
        }
    }
}

//! Errors in the reference's (FastAPI) shape: `{"detail": <string or object>}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub detail: Value,
    pub retry_after: Option<u32>,
}

impl ApiError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            detail: Value::String(detail.into()),
            retry_after: None,
        }
    }

    pub fn with_detail(status: StatusCode, detail: Value) -> Self {
        ApiError {
            status,
            detail,
            retry_after: None,
        }
    }

    pub fn retry_after(mut self, secs: u32) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// 422 in the validation-error list shape, naming where the problem is.
    pub fn invalid(loc: &[&str], msg: impl Into<String>) -> Self {
        ApiError::with_detail(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!([{"type": "value_error", "loc": loc, "msg": msg.into()}]),
        )
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, detail)
    }

    pub fn too_large(detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, detail)
    }

    pub fn internal(detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, detail)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, axum::Json(json!({ "detail": self.detail }))).into_response();
        if let Some(s) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

impl From<crate::service::ServiceError> for ApiError {
    fn from(e: crate::service::ServiceError) -> Self {
        use crate::service::ServiceError as E;
        match e {
            E::TooLarge(m) => ApiError::too_large(m),
            E::Invalid { loc, message } => {
                let loc: Vec<&str> = loc.iter().map(String::as_str).collect();
                ApiError::invalid(&loc, message)
            }
            E::Internal(m) => ApiError::internal(m),
        }
    }
}

//! Errors in the reference's (FastAPI) shape: `{"detail": <string or object>}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub detail: Value,
    pub retry_after: Option<u32>,
    /// An English explanation beside `detail`, for answers whose `detail` must stay the
    /// reference's text because Python clients compare it.
    pub message: Option<String>,
    /// The 404 of a query path: handlers that know the path name it in `message`.
    path_missing: bool,
}

/// The reference's detail of a query path that is not in the view (`query-api.md` §3.1):
/// Python clients match on it, so it stays; `message` says it in English.
pub const NOT_FOUND_PATH: &str = "路径未找到或尚未同步";

/// At most this many characters of a path from the URL are echoed.
const ECHO_MAX: usize = 200;

impl ApiError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            detail: Value::String(detail.into()),
            retry_after: None,
            message: None,
            path_missing: false,
        }
    }

    pub fn with_detail(status: StatusCode, detail: Value) -> Self {
        ApiError {
            status,
            detail,
            retry_after: None,
            message: None,
            path_missing: false,
        }
    }

    /// A query path that is not in view `view` (or not yet synced there).
    pub fn path_not_found(view: &str) -> Self {
        let mut e = ApiError::not_found(NOT_FOUND_PATH);
        e.path_missing = true;
        e.message = Some(format!(
            "Path not found in view '{}' (or not yet synced)",
            shorten(view)
        ));
        e
    }

    /// Names `path` in the message of a [`ApiError::path_not_found`]; other errors pass.
    pub fn at_path(mut self, view: &str, path: Option<&str>) -> Self {
        if self.path_missing {
            self.message = Some(match path {
                Some(p) => format!(
                    "Path '{}' not found in view '{}' (or not yet synced)",
                    shorten(p),
                    shorten(view)
                ),
                None => format!("No path given: add ?path=/... (view '{}')", shorten(view)),
            });
        }
        self
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

/// Text from the URL, cut to a length fit for an error message.
pub fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(ECHO_MAX).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

/// The body of every error answer.
#[derive(serde::Serialize)]
struct ErrorBody {
    detail: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            detail: self.detail,
            message: self.message,
        };
        let mut resp = (self.status, axum::Json(body)).into_response();
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

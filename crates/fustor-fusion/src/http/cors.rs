//! Cross-origin access to the API (a Rust deviation: the reference answers
//! `access-control-allow-origin: *` to everyone, so any web page a user visits could read the
//! views with a key it guessed or found in the browser).
//!
//! `cors: {allow_origins: [...]}` at the top level of a fusion-config file; absent or empty,
//! only the console's own origin works (a same-origin request needs no CORS header). `"*"`
//! restores the reference's behaviour. Read from the current generation, so a SIGHUP applies a
//! new list without re-binding the ports; only requests carrying `Origin` pay for it.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::AppState;

/// The `cors:` section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorsSettings {
    /// Origins (`scheme://host[:port]`) whose pages may call the API; `"*"` allows any.
    pub allow_origins: Vec<String>,
}

pub const KEYS: &[&str] = &["allow_origins"];

/// What the answer to one origin is.
#[derive(Debug, PartialEq, Eq)]
enum Allowed {
    Any,
    This,
    No,
}

impl CorsSettings {
    pub fn from_extra(extra: &Map<String, Value>) -> Result<CorsSettings, String> {
        match extra.get("cors") {
            None | Some(Value::Null) => Ok(CorsSettings::default()),
            Some(v) => serde_json::from_value(v.clone()).map_err(|e| e.to_string()),
        }
    }

    fn allows(&self, origin: &str) -> Allowed {
        let origin = origin.trim_end_matches('/');
        if self.allow_origins.iter().any(|o| o == "*") {
            Allowed::Any
        } else if self
            .allow_origins
            .iter()
            .any(|o| o.trim_end_matches('/').eq_ignore_ascii_case(origin))
        {
            Allowed::This
        } else {
            Allowed::No
        }
    }
}

const ALLOW_METHODS: HeaderValue = HeaderValue::from_static("GET, POST, PUT, DELETE, OPTIONS");
const MAX_AGE: HeaderValue = HeaderValue::from_static("600");

fn allow_headers(h: &mut HeaderMap, allowed: &Allowed, origin: &HeaderValue) {
    match allowed {
        Allowed::Any => {
            h.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
        }
        Allowed::This => {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            h.append(header::VARY, HeaderValue::from_static("origin"));
        }
        Allowed::No => {}
    }
}

/// Answers preflights and marks answers readable by allowed origins.
pub async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(origin) = req.headers().get(header::ORIGIN).cloned() else {
        return next.run(req).await;
    };
    // `load` refused a malformed section already; should one get here, it allows nothing.
    let settings = CorsSettings::from_extra(&state.fusion.current().cfg.extra).unwrap_or_default();
    let allowed = settings.allows(origin.to_str().unwrap_or_default());
    let preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        let status = if allowed == Allowed::No {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::NO_CONTENT
        };
        let mut resp = (status, Body::empty()).into_response();
        let h = resp.headers_mut();
        if allowed != Allowed::No {
            h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, ALLOW_METHODS);
            if let Some(asked) = req.headers().get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
                h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
            }
            h.insert(header::ACCESS_CONTROL_MAX_AGE, MAX_AGE);
        }
        allow_headers(h, &allowed, &origin);
        return resp;
    }
    let mut resp = next.run(req).await;
    allow_headers(resp.headers_mut(), &allowed, &origin);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_match_exactly_or_by_star() {
        let none = CorsSettings::default();
        assert_eq!(none.allows("http://a.example"), Allowed::No);
        let list = CorsSettings {
            allow_origins: vec!["https://ops.example/".into()],
        };
        assert_eq!(list.allows("https://ops.example"), Allowed::This);
        assert_eq!(list.allows("https://ops.example.evil"), Allowed::No);
        let star = CorsSettings {
            allow_origins: vec!["*".into()],
        };
        assert_eq!(star.allows("http://anything"), Allowed::Any);
    }
}

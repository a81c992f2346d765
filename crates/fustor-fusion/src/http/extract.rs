//! Request parsing with the reference's error semantics: bad JSON or bad parameters are 422,
//! an oversized body is 413, a missing or unknown key is 401.

use std::collections::HashMap;

use axum::http::HeaderMap;
use serde::de::DeserializeOwned;

use super::error::{ApiError, ApiResult};
use crate::state::Generation;

pub type Params = HashMap<String, String>;

pub fn api_key(headers: &HeaderMap) -> Option<&str> {
    headers.get("x-api-key").and_then(|v| v.to_str().ok())
}

/// Main-app key resolution (`query-api.md` §1): the resolved view or pipe id.
pub fn resolve(headers: &HeaderMap, generation: &Generation) -> ApiResult<String> {
    let key =
        api_key(headers).ok_or_else(|| ApiError::unauthorized("X-API-Key header is missing"))?;
    generation
        .resolve_key(key)
        .ok_or_else(|| ApiError::unauthorized("Invalid or inactive X-API-Key"))
}

pub fn json<T: DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::invalid(&["body"], e.to_string()))
}

/// A JSON body that may be absent or invalid (heartbeats treat that as defaults).
pub fn json_or_default<T: DeserializeOwned + Default>(bytes: &[u8]) -> T {
    serde_json::from_slice(bytes).unwrap_or_default()
}

/// Pydantic-compatible boolean query parameter.
pub fn bool_param(p: &Params, name: &str, default: bool) -> ApiResult<bool> {
    match p.get(name).map(|s| s.to_ascii_lowercase()) {
        None => Ok(default),
        Some(v) => match v.as_str() {
            "true" | "1" | "yes" | "on" | "t" | "y" => Ok(true),
            "false" | "0" | "no" | "off" | "f" | "n" => Ok(false),
            _ => Err(ApiError::invalid(
                &["query", name],
                "Input should be a valid boolean",
            )),
        },
    }
}

pub fn int_param(p: &Params, name: &str) -> ApiResult<Option<i64>> {
    match p.get(name) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| ApiError::invalid(&["query", name], "Input should be a valid integer")),
    }
}

/// `recursive`, `max_depth` (≥ 0; forces recursion) and `only_path` of the tree routes.
pub fn tree_options(p: &Params) -> ApiResult<fustor_core::view::TreeOptions> {
    let max_depth = int_param(p, "max_depth")?;
    if max_depth.is_some_and(|d| d < 0) {
        return Err(ApiError::invalid(
            &["query", "max_depth"],
            "Input should be greater than or equal to 0",
        ));
    }
    Ok(fustor_core::view::TreeOptions {
        recursive: bool_param(p, "recursive", true)?,
        max_depth: max_depth.map(|d| d.min(u32::MAX as i64) as u32),
        only_path: bool_param(p, "only_path", false)?,
    })
}

/// Query parameters decoded without loss: a value whose percent-decoded bytes are not UTF-8
/// (`path=/caf%E9.txt`, a Latin-1 name) keeps those bytes in the lossless form of
/// `fustor_core::lossless`, the form the view stores names in; replacing them would turn a path
/// into another. Parameter names must be UTF-8 (422 otherwise).
pub struct QueryParams(pub Params);

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(b[i + 1]), hex(b[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    out
}

pub fn parse_query(q: &str) -> ApiResult<Params> {
    let mut out = Params::new();
    for pair in q.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let key = String::from_utf8(percent_decode(k))
            .map_err(|_| ApiError::invalid(&["query"], "parameter name is not valid UTF-8"))?;
        let value = fustor_core::lossless::escape(&percent_decode(v)).into_owned();
        out.entry(key).or_insert(value);
    }
    Ok(out)
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, ApiError> {
        Ok(QueryParams(parse_query(parts.uri.query().unwrap_or(""))?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_query_decoding() {
        let p = parse_query("path=%2Fdata%2Fa+b&x=1&path=ignored&pct=%zz").unwrap();
        assert_eq!(p["path"], "/data/a b");
        assert_eq!(p["x"], "1");
        assert_eq!(p["pct"], "%zz");
        // Issue 9: undecodable bytes are kept, distinct, instead of refused.
        let e9 = parse_query("path=%2Fcaf%E9.txt").unwrap();
        let e8 = parse_query("path=%2Fcaf%E8.txt").unwrap();
        assert_ne!(e9["path"], e8["path"]);
        assert_eq!(
            fustor_core::lossless::unescape(&e9["path"]).as_ref(),
            b"/caf\xe9.txt"
        );
        assert!(parse_query("%FF=1").is_err());
        assert_eq!(parse_query("q=%C3%A4").unwrap()["q"], "ä");
        assert_eq!(parse_query("q=%4").unwrap()["q"], "%4");
    }
}

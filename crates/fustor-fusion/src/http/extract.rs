//! Request parsing with the reference's error semantics: bad JSON or bad parameters are 422,
//! an oversized body is 413, a missing or unknown key is 401.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
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

pub fn body(b: Result<Bytes, BytesRejection>) -> ApiResult<Bytes> {
    b.map_err(|e| {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large("Request body too large")
        } else {
            ApiError::invalid(&["body"], e.body_text())
        }
    })
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

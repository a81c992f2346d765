//! Reading request bodies under three bounds: the route's size limit, a deadline, and a global
//! budget of body bytes held at once.
//!
//! Handlers check the key (and the session) first and only then call [`read`]: a refused request
//! is answered without a byte of its body being buffered (hyper closes a connection whose body
//! was left unread). A `Content-Length` over the limit is refused before reading; a chunked body
//! is counted as it arrives.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode, header};
use bytes::BytesMut;
use http_body_util::BodyExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::error::{ApiError, ApiResult};

/// The global budget of request-body bytes in flight, shared by every listener.
pub struct BodyBudget {
    bytes: Arc<Semaphore>,
    total: usize,
}

impl BodyBudget {
    pub fn new(total: usize) -> Self {
        let total = total.clamp(1, Semaphore::MAX_PERMITS);
        BodyBudget {
            bytes: Arc::new(Semaphore::new(total)),
            total,
        }
    }

    /// Bytes not held by any body right now.
    pub fn available(&self) -> usize {
        self.bytes.available_permits()
    }

    async fn acquire(&self, n: usize, deadline: Instant) -> ApiResult<OwnedSemaphorePermit> {
        // A body larger than the whole budget takes all of it (it passed the route limit).
        let want = u32::try_from(n.min(self.total)).unwrap_or(u32::MAX);
        match tokio::time::timeout_at(deadline, self.bytes.clone().acquire_many_owned(want)).await {
            Ok(Ok(p)) => Ok(p),
            _ => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Too many request bodies in flight; retry later",
            )
            .retry_after(1)),
        }
    }
}

/// A body read in full; holds its share of the budget until dropped.
pub struct Limited {
    bytes: Bytes,
    _permit: Option<OwnedSemaphorePermit>,
}

impl Deref for Limited {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

fn declared_length(headers: &HeaderMap) -> Option<usize> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
}

/// Largest refused body that is read and dropped before answering. Closing a connection with
/// unread data makes the kernel reset it, and a client still sending a small body would see
/// the reset instead of the answer; a large one is not worth reading.
const DISCARD_MAX: usize = 64 << 10;
const DISCARD_TIME: Duration = Duration::from_secs(1);
/// Longest wait for a share of the in-flight budget (also at most a quarter of the body
/// deadline) before answering 503.
const BUDGET_WAIT: Duration = Duration::from_secs(5);

/// Reads and drops a small body (never buffered, never counted against the budget).
pub async fn discard(body: &mut Body, headers: &HeaderMap) {
    if !declared_length(headers).is_some_and(|n| n > 0 && n <= DISCARD_MAX) {
        return;
    }
    let drain = async { while let Some(Ok(_)) = body.frame().await {} };
    let _ = tokio::time::timeout(DISCARD_TIME, drain).await;
}

/// Passes `r` through; on a refusal, first drops a small body (see [`discard`]).
pub async fn refused<T>(r: ApiResult<T>, body: &mut Body, headers: &HeaderMap) -> ApiResult<T> {
    if r.is_err() {
        discard(body, headers).await;
    }
    r
}

fn too_large(limit: usize) -> ApiError {
    ApiError::too_large(format!(
        "Request body too large (the limit of this route is {limit} bytes)"
    ))
}

/// Reads `body` if it fits `limit` and arrives before `timeout`.
pub async fn read(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
    budget: &BodyBudget,
    timeout: Duration,
) -> ApiResult<Limited> {
    let declared = declared_length(headers);
    let mut body = body;
    if declared.is_some_and(|n| n > limit) {
        discard(&mut body, headers).await;
        return Err(too_large(limit));
    }
    let start = Instant::now();
    let deadline = start + timeout;
    // A short wait for budget: a client refused with 503 retries, one kept waiting holds a
    // connection.
    let budget_deadline = start + (timeout / 4).min(BUDGET_WAIT);
    let mut permit = match declared {
        Some(0) | None => None,
        Some(n) => Some(budget.acquire(n, budget_deadline).await?),
    };
    let mut buf = BytesMut::with_capacity(declared.unwrap_or(0));
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => {
                return Err(ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "Request body not received in time",
                ));
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("Request body could not be read: {e}"),
                ));
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if buf.len().saturating_add(data.len()) > limit {
            return Err(too_large(limit));
        }
        if declared.is_none() && !data.is_empty() {
            let more = budget
                .acquire(data.len(), Instant::now() + (timeout / 4).min(BUDGET_WAIT))
                .await?;
            match permit.as_mut() {
                Some(p) => p.merge(more),
                None => permit = Some(more),
            }
        }
        buf.extend_from_slice(&data);
    }
    Ok(Limited {
        bytes: buf.freeze(),
        _permit: permit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn budget_is_held_until_the_body_is_dropped() {
        let budget = BodyBudget::new(100);
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_LENGTH, 60.into());
        let a = read(
            Body::from(vec![b'x'; 60]),
            &h,
            1000,
            &budget,
            Duration::from_secs(1),
        )
        .await;
        assert!(a.as_ref().is_ok_and(|a| a.len() == 60));
        assert_eq!(budget.available(), 40);
        let b = read(
            Body::from(vec![b'x'; 60]),
            &h,
            1000,
            &budget,
            Duration::from_millis(50),
        )
        .await;
        assert_eq!(
            b.err().map(|e| e.status),
            Some(StatusCode::SERVICE_UNAVAILABLE)
        );
        drop(a);
        assert_eq!(budget.available(), 100);
        h.insert(header::CONTENT_LENGTH, 2000.into());
        let c = read(Body::empty(), &h, 1000, &budget, Duration::from_secs(1)).await;
        assert_eq!(
            c.err().map(|e| e.status),
            Some(StatusCode::PAYLOAD_TOO_LARGE)
        );
        // Chunked (no length): counted as it arrives.
        let d = read(
            Body::from(vec![b'x'; 1001]),
            &HeaderMap::new(),
            1000,
            &budget,
            Duration::from_secs(1),
        )
        .await;
        assert_eq!(
            d.err().map(|e| e.status),
            Some(StatusCode::PAYLOAD_TOO_LARGE)
        );
        assert_eq!(budget.available(), 100);
    }
}

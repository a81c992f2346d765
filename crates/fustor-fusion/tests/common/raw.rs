//! Raw HTTP/1.1 over a TcpStream, for what a well-behaved client cannot do: announce a body and
//! not send it, trickle headers, hold connections open.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `http://127.0.0.1:port` → a connected stream.
pub async fn connect(base: &str) -> TcpStream {
    TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// Request head (no body) with the given extra headers.
pub fn head(method: &str, path: &str, key: Option<&str>, extra: &[(&str, String)]) -> String {
    let mut h = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    if let Some(k) = key {
        h.push_str(&format!("X-API-Key: {k}\r\n"));
    }
    for (n, v) in extra {
        h.push_str(&format!("{n}: {v}\r\n"));
    }
    h.push_str("\r\n");
    h
}

/// Sends a head announcing `content_length` bytes of JSON body and none of the body.
pub async fn announce(
    base: &str,
    path: &str,
    key: Option<&str>,
    content_length: usize,
) -> TcpStream {
    let mut s = connect(base).await;
    let h = head(
        "POST",
        path,
        key,
        &[
            ("Content-Type", "application/json".into()),
            ("Content-Length", content_length.to_string()),
        ],
    );
    s.write_all(h.as_bytes()).await.unwrap();
    s
}

/// The status and body of the response, or `None` if none arrives within `wait`.
pub async fn response(s: &mut TcpStream, wait: Duration) -> Option<(u16, String)> {
    let mut buf = Vec::new();
    let read = async {
        let mut chunk = [0u8; 4096];
        loop {
            let n = s.read(&mut chunk).await.ok()?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf);
            if let Some(end) = text.find("\r\n\r\n") {
                let headers = text[..end].to_ascii_lowercase();
                let len = headers
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if buf.len() >= end + 4 + len {
                    break;
                }
            }
        }
        Some(())
    };
    tokio::time::timeout(wait, read).await.ok()??;
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}

/// Whether the server closes the connection (EOF or reset) within `wait`; data is discarded.
pub async fn closed_within(s: &mut TcpStream, wait: Duration) -> bool {
    let drain = async {
        let mut chunk = [0u8; 4096];
        loop {
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(wait, drain).await.is_ok()
}

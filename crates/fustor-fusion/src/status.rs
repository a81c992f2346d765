//! `fustor-fusion status`: a human summary read from the running daemon's own API.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;

/// GETs a JSON document from the local main API (no client library: one request, loopback).
pub fn get_local(port: u16, path: &str) -> Option<Value> {
    let mut s =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n")?;
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return serde_json::from_str(&dechunk(body)).ok();
    }
    serde_json::from_str(body).ok()
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    out
}

/// Prints pipes, sessions, leaders and counters of the daemon on `port`.
pub fn print_live(port: u16) {
    let Some(Value::Object(pipes)) = get_local(port, "/api/v1/pipe/pipes") else {
        fustor_core::outln!("  (the main API on port {port} did not answer)");
        return;
    };
    if pipes.is_empty() {
        fustor_core::outln!("  no pipes running");
    }
    for (id, p) in pipes {
        let stats = &p["statistics"];
        fustor_core::outln!(
            "  pipe {id}: views={} sessions={} leader={} events received={} applied={} queued={}",
            p["view_handlers"]
                .as_array()
                .map(|v| v
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(","))
                .unwrap_or_default(),
            p["active_sessions"],
            p["leader_session"].as_str().unwrap_or("-"),
            stats["events_received"],
            stats["events_processed"],
            p["queue_size"],
        );
    }
}

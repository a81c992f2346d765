//! CORS (issue 13): by default no `access-control-allow-origin` for any foreign origin (a page
//! on another site cannot read the API), a listed origin gets its own name back, `"*"` restores
//! the reference's answer; a SIGHUP applies a changed list to the running ports.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Fx, f0_yaml};
use reqwest::Method;

const ACAO: &str = "access-control-allow-origin";

async fn from_origin(fx: &Fx, origin: &str) -> (u16, Option<String>) {
    let r =
        fx.c.get(format!("{}/api/v1/views/v1/stats", fx.main))
            .header("X-API-Key", "qk1")
            .header("Origin", origin)
            .send()
            .await
            .unwrap();
    let h = r
        .headers()
        .get(ACAO)
        .map(|v| v.to_str().unwrap().to_string());
    (r.status().as_u16(), h)
}

async fn preflight(fx: &Fx, origin: &str) -> reqwest::Response {
    fx.c.request(
        Method::OPTIONS,
        format!("{}/api/v1/views/v1/suspect-list", fx.main),
    )
    .header("Origin", origin)
    .header("Access-Control-Request-Method", "PUT")
    .header("Access-Control-Request-Headers", "x-api-key, content-type")
    .send()
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_is_same_origin_only() {
    let fx = Fx::f0().await;
    let (_, h) = from_origin(&fx, "https://evil.example").await;
    assert_eq!(h, None, "a foreign origin must not be allowed by default");
    let p = preflight(&fx, "https://evil.example").await;
    assert_eq!(p.status(), 403);
    assert!(p.headers().get(ACAO).is_none());
    // Without Origin (curl, agents, the console's own GETs) nothing changes.
    let r = fx.get_main("/api/v1/views/v1/stats", Some("qk1")).await;
    assert!(r.headers.get(ACAO).is_none());
    assert_ne!(r.status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listed_origins_and_star() {
    let fx = Fx::with_yaml(&f0_yaml(
        "",
        "cors: {allow_origins: [\"https://ops.example\"]}\n",
    ))
    .await;
    let (_, h) = from_origin(&fx, "https://ops.example").await;
    assert_eq!(h.as_deref(), Some("https://ops.example"));
    let (_, h) = from_origin(&fx, "https://ops.example.evil").await;
    assert_eq!(h, None);
    let p = preflight(&fx, "https://ops.example").await;
    assert_eq!(p.status(), 204);
    assert_eq!(p.headers()[ACAO], "https://ops.example");
    let allowed = p.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap();
    assert!(allowed.contains("x-api-key"), "{allowed}");
    assert!(
        p.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("PUT")
    );

    // The Python-compatible setting, applied by a reload to the running ports.
    fx.write_config(&f0_yaml("", "cors: {allow_origins: [\"*\"]}\n"));
    fx.server.reload().await.unwrap();
    let (_, h) = from_origin(&fx, "https://anywhere.example").await;
    assert_eq!(h.as_deref(), Some("*"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_cors_is_refused_by_reload() {
    let fx = Fx::f0().await;
    fx.write_config(&f0_yaml("", "cors: {allow_origin: [\"*\"]}\n"));
    let e = fx.server.reload().await.unwrap_err();
    assert!(e.to_string().contains("error"), "{e}");
    let (_, h) = from_origin(&fx, "https://anywhere.example").await;
    assert_eq!(h, None, "the previous (default) list keeps running");
}

//! The web console routes: `/ui/` and its assets (content types, CSP), `GET /ui` redirect,
//! `GET /api/v1/views` and `GET /api/v1/ui/clock` (keys), and `GET /` still the JSON welcome.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use fustor_fusion::daemon::{FusionServer, Overrides};
use serde_json::{Value, json};

const YAML: &str = r#"
host: 127.0.0.1
port: 0
receivers:
  http-main: {driver: http, bind_host: 127.0.0.1, port: 0, api_keys: [{key: agent-key, pipe_id: research}]}
views:
  research: {driver: fs, api_keys: [query-secret]}
  all-servers: {driver: forest-fs, api_keys: [forest-secret]}
  old: {driver: fs, disabled: true, api_keys: [old-secret]}
pipes:
  research: {receiver: http-main, views: [research]}
"#;

struct Got {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Got {
    fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }
}

async fn get(c: &reqwest::Client, url: &str, key: Option<&str>) -> Got {
    let mut rb = c.get(url);
    if let Some(k) = key {
        rb = rb.header("X-API-Key", k);
    }
    let r = rb.send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
    Got {
        status: r.status().as_u16(),
        headers: r.headers().clone(),
        text: r.text().await.unwrap(),
    }
}

fn assert_strict_csp(g: &Got) {
    let csp = g.header("content-security-policy");
    for part in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(part), "CSP without {part}: {csp}");
    }
    for bad in ["unsafe-inline", "unsafe-eval", "http:", "https:", "*"] {
        assert!(!csp.contains(bad), "CSP allows {bad}: {csp}");
    }
    assert_eq!(g.header("x-content-type-options"), "nosniff");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_is_served_and_lists_views() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("fusion-config");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(cfg.join("default.yaml"), YAML).unwrap();
    let server = FusionServer::start(&cfg, &[], Overrides::default())
        .await
        .expect("fusion starts");
    let base = format!("http://{}", server.main_addr);
    let c = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();

    // the health check is untouched
    let root = get(&c, &format!("{base}/"), None).await;
    assert_eq!(root.status, 200);
    assert_eq!(
        root.json(),
        json!({"message": "Welcome to Fusion Storage Engine Ingest API"})
    );

    // /ui -> /ui/
    let r = get(&c, &format!("{base}/ui"), None).await;
    assert!(
        matches!(r.status, 301 | 302 | 303 | 307 | 308),
        "{}",
        r.status
    );
    assert_eq!(r.header("location"), "/ui/");

    // the page, no key needed (the page asks for one)
    let page = get(&c, &format!("{base}/ui/"), None).await;
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type").starts_with("text/html"),
        "{}",
        page.header("content-type")
    );
    assert_strict_csp(&page);
    assert!(
        page.text.contains("<script src=\"app.js\""),
        "{}",
        page.text
    );
    assert!(page.text.contains("href=\"app.css\""));

    let js = get(&c, &format!("{base}/ui/app.js"), None).await;
    assert_eq!(js.status, 200);
    assert!(
        js.header("content-type").starts_with("text/javascript"),
        "{}",
        js.header("content-type")
    );
    assert_strict_csp(&js);
    assert!(js.text.contains("/api/v1/views"));

    // the Usage page's script (issue 14), under the same rules
    assert!(page.text.contains("<script src=\"usage.js\""));
    let usage = get(&c, &format!("{base}/ui/usage.js"), None).await;
    assert_eq!(usage.status, 200);
    assert!(usage.header("content-type").starts_with("text/javascript"));
    assert_strict_csp(&usage);
    assert!(usage.text.contains("FustorUsage"));
    assert!(!usage.text.contains(".innerHTML ="));

    // the Config and Audit pages' scripts (issue 15), under the same rules
    // and the DOM helpers they share with the Agents page, loaded before them
    for (name, global) in [
        ("dom.js", "FustorDom"),
        ("agents.js", "FustorDom"),
        ("configs.js", "FustorAdmin"),
        ("audit.js", "FustorAudit"),
    ] {
        assert!(page.text.contains(&format!("<script src=\"{name}\"")));
        let r = get(&c, &format!("{base}/ui/{name}"), None).await;
        assert_eq!(r.status, 200, "{name}");
        assert!(r.header("content-type").starts_with("text/javascript"));
        assert_strict_csp(&r);
        assert!(r.text.contains(global), "{name}");
        for bad in [
            ".innerHTML =",
            "insertAdjacentHTML",
            "document.write",
            "http://",
            "https://",
        ] {
            assert!(!r.text.contains(bad), "{name} contains {bad}");
        }
    }

    let dom_at = page.text.find("<script src=\"dom.js\"");
    let agents_at = page.text.find("<script src=\"agents.js\"");
    assert!(
        dom_at < agents_at,
        "dom.js must load before the pages using it"
    );

    let css = get(&c, &format!("{base}/ui/app.css"), None).await;
    assert_eq!(css.status, 200);
    assert!(css.header("content-type").starts_with("text/css"));

    // no external resources (closed networks), no markup built from strings
    for (name, body) in [
        ("index.html", &page.text),
        ("app.js", &js.text),
        ("usage.js", &usage.text),
        ("app.css", &css.text),
    ] {
        assert!(
            !body.contains("http://") && !body.contains("https://"),
            "{name} refers to an external URL"
        );
    }
    assert!(!js.text.contains(".innerHTML ="));
    assert!(!js.text.contains("insertAdjacentHTML"));
    assert!(!js.text.contains("document.write"));

    // unknown assets are 404 JSON like every unknown route
    let missing = get(&c, &format!("{base}/ui/nope.js"), None).await;
    assert_eq!(missing.status, 404);

    // GET /api/v1/views: key required
    let views = format!("{base}/api/v1/views");
    let r = get(&c, &views, None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["detail"], "X-API-Key header is missing");
    let r = get(&c, &views, Some("wrong")).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["detail"], "Invalid or inactive X-API-Key");
    for key in ["query-secret", "forest-secret", "agent-key"] {
        let r = get(&c, &views, Some(key)).await;
        assert_eq!(r.status, 200, "{key}: {}", r.text);
        let list = r.json();
        let ids: Vec<(&str, &str)> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                (
                    v["view_id"].as_str().unwrap(),
                    v["driver"].as_str().unwrap(),
                )
            })
            .collect();
        // configured and not disabled, in id order
        assert_eq!(
            ids,
            vec![("all-servers", "forest-fs"), ("research", "fs")],
            "{list}"
        );
        assert_eq!(list[1]["loaded"], true);
    }

    // GET /api/v1/ui/clock: key required, monotonic and epoch seconds
    let clock = format!("{base}/api/v1/ui/clock");
    assert_eq!(get(&c, &clock, None).await.status, 401);
    let r = get(&c, &clock, Some("query-secret")).await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert!(v["monotonic"].as_f64().unwrap() > 0.0, "{v}");
    assert!(v["epoch"].as_f64().unwrap() > 1.6e9, "{v}");

    server.shutdown().await;
}

//! The README's first command: `fustor demo` (in the directory to watch) starts both daemons on a generated home,
//! prints the console URL and the query key, syncs DIR, and stops cleanly on SIGTERM.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

#[test]
fn readme_demo_command_serves_the_directory_and_the_console() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("watched");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    for i in 0..50 {
        std::fs::write(dir.join("sub").join(format!("f{i}.txt")), "x").unwrap();
    }
    // Exactly the README's command (`fustor demo`, no arguments), run in the directory to watch.
    // It takes 8101/8102 when free and other free ports otherwise; the URL it prints says which.
    let mut child = Command::new(env!("CARGO_BIN_EXE_fustor"))
        .arg("demo")
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut key = None;
    let mut console = None;
    let mut synced = false;
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) {
        if let Some(k) = line.trim().strip_prefix("query key   : ") {
            key = Some(k.to_string());
        }
        if let Some(u) = line.trim().strip_prefix("web console : ") {
            console = Some(u.to_string());
        }
        if line.contains("initial snapshot complete") {
            synced = true;
            break;
        }
    }
    let (key, console) = (
        key.expect("query key printed"),
        console.expect("console URL printed"),
    );
    assert!(synced, "no snapshot progress line");
    let port: u16 = console
        .strip_prefix("http://127.0.0.1:")
        .and_then(|r| r.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected console URL {console}"));
    assert!(console.ends_with(&format!("/ui/#key={key}")), "{console}");

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = reqwest::Client::new();
        let tree: serde_json::Value = c
            .get(format!(
                "http://127.0.0.1:{port}/api/v1/views/demo/tree?path=/sub&max_depth=1"
            ))
            .header("X-API-Key", &key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            tree["children"].as_array().map(Vec::len),
            Some(50),
            "{tree}"
        );
        let page = c
            .get(format!("http://127.0.0.1:{port}/ui/"))
            .send()
            .await
            .unwrap();
        assert!(page.status().is_success());
        assert!(page.text().await.unwrap().contains("<html"));
    });

    rustix::process::kill_process(
        rustix::process::Pid::from_raw(child.id() as i32).unwrap(),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "demo exited with {status}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "demo did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

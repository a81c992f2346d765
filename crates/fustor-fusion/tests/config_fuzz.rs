//! Issue 9: no panic in a fuzz of mutated configurations. The documented Fusion examples,
//! each mutated 100 times (extreme numbers, NaN, huge strings, wrong types, deleted, renamed
//! and duplicated keys), go through `check-config`'s load and validation and through a real
//! `FusionServer::start` (ports 0), whose maintenance tasks convert the configured durations.
//! A panic in any thread, spawned tasks included, fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../fustor-core/tests/support/mutate.rs"]
mod mutate;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fustor_core::config::FusionConfig;
use fustor_core::time::duration_from_secs;
use fustor_fusion::daemon::{self, FusionServer, Overrides};
use fustor_fusion::limits::Limits;
use mutate::{Rng, mutate, yaml_blocks};

const MUTATIONS: usize = 100;

fn examples() -> Vec<serde_norway::Value> {
    let mut texts: Vec<String> = yaml_blocks(include_str!("../../../docs/user-guide.md"))
        .into_iter()
        .filter(|b| b.contains("receivers:") || b.contains("limits:"))
        .collect();
    // The forest design's example repeats `views:` (PyYAML keeps the last one).
    texts.push(
        include_str!("../../fustor/tests/data/forest_design_example.yaml")
            .replace("views:\nviews:", "views:"),
    );
    assert!(texts.len() >= 3, "examples not found");
    texts
        .iter()
        .map(|t| {
            let mut v: serde_norway::Value = serde_norway::from_str(t).unwrap();
            // Never bind fixed ports in a test: main and receivers on port 0.
            if let Some(m) = v.as_mapping_mut() {
                m.insert("host".into(), "127.0.0.1".into());
                m.insert("port".into(), 0.into());
                // Every example carries the global the sweeper converts (the 1e20 panic).
                m.insert("session_cleanup_interval".into(), 5.0.into());
                if let Some(r) = m.get_mut("receivers").and_then(|r| r.as_mapping_mut()) {
                    for (_, rc) in r.iter_mut() {
                        if let Some(rc) = rc.as_mapping_mut() {
                            rc.insert("port".into(), 0.into());
                            rc.insert("bind_host".into(), "127.0.0.1".into());
                        }
                    }
                }
            }
            v
        })
        .collect()
}

/// The conversions the daemon performs on a loaded configuration.
fn exercise(cfg: &FusionConfig) {
    let _ = duration_from_secs(cfg.session_cleanup_interval);
    for p in cfg.pipes.values() {
        let _ = duration_from_secs(p.audit_interval_sec);
        let _ = duration_from_secs(p.sentinel_interval_sec);
        let timeout = Duration::from_secs(p.session_timeout_seconds);
        assert!(std::time::Instant::now().checked_add(timeout).is_some());
    }
    for v in cfg.views.values() {
        if let Ok(p) = v.fs_params() {
            let _ = duration_from_secs(p.hot_file_threshold);
            let _ = duration_from_secs(p.consistency.tombstone_ttl_seconds);
            let _ = p.max_tree_items_limit();
            let _ = p.max_nodes_limit();
        }
    }
    let _ = Limits::from_extra(&cfg.extra);
}

#[test]
fn fuzz_100_mutations_per_fusion_example_never_panic() {
    let panics: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = panics.clone();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        seen.lock().unwrap().push(info.to_string());
        previous(info);
    }));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fusion-config");
    std::fs::create_dir_all(&dir).unwrap();
    let (mut loaded_ok, mut started) = (0, 0);
    for (n, doc) in examples().iter().enumerate() {
        let mut rng = Rng::new(n as u64 + 1);
        for i in 0..MUTATIONS {
            let text = mutate(doc, &mut rng);
            std::fs::write(dir.join("default.yaml"), &text).unwrap();
            let before = panics.lock().unwrap().len();
            let (loaded, _, diags) = daemon::load(&dir, &[]);
            exercise(&loaded.config);
            if !diags.iter().any(|d| d.is_error()) {
                loaded_ok += 1;
            }
            let server = rt.block_on(async {
                let overrides = Overrides {
                    host: Some("127.0.0.1".into()),
                    port: Some(0),
                    main_port_hint: None,
                };
                let s = FusionServer::start(&dir, &[], overrides).await;
                // Let the maintenance tasks tick once.
                tokio::time::sleep(Duration::from_millis(5)).await;
                s
            });
            if let Ok(server) = server {
                started += 1;
                rt.block_on(server.shutdown());
            }
            let now = panics.lock().unwrap().clone();
            assert_eq!(
                now.len(),
                before,
                "example {n}, mutation {i} panicked: {:?}\n{}",
                &now[before..],
                text.chars().take(3000).collect::<String>()
            );
        }
    }
    eprintln!("fuzzed {loaded_ok} loadable and {started} startable mutated configurations");
    assert!(loaded_ok > 0 && started > 0, "the mutations never loaded");
    let _ = std::panic::take_hook();
}

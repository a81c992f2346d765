//! Issue 9: no panic in a fuzz of mutated configurations. The documented agent examples, each
//! mutated 300 times (extreme numbers, NaN, huge strings, wrong types, deleted, renamed and
//! duplicated keys), go through `validate`'s load and checks, and every loaded value through
//! the conversions the daemon makes: HTTP sender timeouts, backoff delays, fs driver
//! parameters, pipe intervals.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../fustor-core/tests/support/mutate.rs"]
mod mutate;

use fustor_agent::Backoff;
use fustor_agent::drivers::{config_schemas, sender_drivers};
use fustor_core::config::{AgentConfig, DriverParams, load_agent_dir, validate_agent};
use fustor_core::time::duration_from_secs;
use fustor_source_fs::FsDriverParams;
use fustor_transport_http::{FusionParams, FusionSender};
use mutate::{Rng, mutate, never_panics, yaml_blocks};

/// At least the 100 per example; loading is cheap, so more.
const MUTATIONS: usize = 300;

fn examples() -> Vec<serde_norway::Value> {
    let mut texts: Vec<String> = yaml_blocks(include_str!("../../../docs/user-guide.md"))
        .into_iter()
        .filter(|b| b.contains("senders:"))
        .collect();
    // Every agent key with a non-default value, so that each one gets mutated.
    texts.push(
        "agent_id: fuzz
logging: {level: INFO, format: json, dir: logs}
fs_scan_workers: 4
sources:
  s:
    driver: fs
    uri: /tmp
    max_queue_size: 1000
    driver_params: {throttle_interval_sec: 5.0, min_monitoring_window_days: 30.0,
      max_scan_workers: 2, file_pattern: '*', startup_mode: message-only, max_sync_delay_seconds: 1.0}
senders:
  f:
    driver: fusion
    uri: http://127.0.0.1:9
    credential: {key: k}
    timeout_sec: 30
    driver_params: {timeout: 30.0}
pipes:
  p:
    source: s
    sender: f
    audit_interval_sec: 43200.0
    sentinel_interval_sec: 300.0
    session_timeout_seconds: 30
    error_retry_interval: 5.0
    max_consecutive_errors: 5
    backoff_multiplier: 2.0
    max_backoff_seconds: 60.0
    fields_mapping: [{to: size, source: [size]}]
"
        .to_string(),
    );
    assert!(texts.len() >= 2, "examples not found");
    texts
        .iter()
        .map(|t| serde_norway::from_str(t).unwrap())
        .collect()
}

fn exercise(cfg: &AgentConfig) {
    for s in cfg.senders.values() {
        if let Ok(p) = FusionParams::from_params(&s.driver_params) {
            let _ = duration_from_secs(p.timeout);
        }
        if s.driver == "fusion" {
            let _ = FusionSender::from_config(s);
        }
        let _ = sender_drivers().build(s);
    }
    for s in cfg.sources.values() {
        if let Ok(p) = FsDriverParams::from_params(&s.driver_params) {
            let _ = duration_from_secs(p.throttle_interval_sec);
            let _ = duration_from_secs(p.max_sync_delay_seconds);
            let _ = duration_from_secs(p.min_monitoring_window_days * 86_400.0);
            let _ = p.max_scan_workers;
        }
    }
    for p in cfg.pipes.values() {
        let b = Backoff::from_pipe(p);
        for n in [0, 1, 2, 5, 64, 1000, u32::MAX] {
            let _ = b.delay(n);
            let _ = duration_from_secs(b.after_error(n));
        }
        for secs in [
            p.audit_interval_sec,
            p.sentinel_interval_sec,
            p.session_timeout_seconds.unwrap_or(0.0),
        ] {
            let _ = duration_from_secs(secs);
        }
    }
}

#[test]
fn fuzz_300_mutations_per_agent_example_never_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("agent-config");
    std::fs::create_dir_all(&dir).unwrap();
    let mut valid = 0;
    let schemas = config_schemas();
    for (n, doc) in examples().iter().enumerate() {
        let mut rng = Rng::new(n as u64 + 101);
        for _ in 0..MUTATIONS {
            let text = mutate(doc, &mut rng);
            std::fs::write(dir.join("default.yaml"), &text).unwrap();
            never_panics("agent load/validate", &text, || {
                let mut loaded = load_agent_dir(&dir, &schemas);
                let v = validate_agent(&loaded, &schemas);
                loaded.diagnostics.extend(v);
                if !loaded.has_errors() {
                    valid += 1;
                }
                let _ = loaded.config.signature();
                exercise(&loaded.config);
            });
        }
    }
    assert!(valid > 0, "no mutation ever loaded");
}

//! The drivers' own configuration checks, with this agent's registry: `driver_params` types,
//! defaults, ranges, unknown keys and `uri` rules. These assertions lived in fustor-core's
//! config tests until the parameter types moved into their drivers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use fustor_agent::drivers::config_schemas;
use fustor_core::config::{AgentConfig, DriverParams, Loaded, load_agent_dir, validate_agent};
use fustor_source_fs::FsDriverParams;
use fustor_transport_http::FusionParams;

fn load(files: &[(&str, &str)]) -> Loaded<AgentConfig> {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("agent-config");
    std::fs::create_dir(&dir).unwrap();
    for (file, text) in files {
        std::fs::write(dir.join(file), text).unwrap();
    }
    load_agent_dir(&dir, &config_schemas())
}

/// Load and validate, as `validate` does.
fn agent(yaml: &str) -> Loaded<AgentConfig> {
    let mut l = load(&[("default.yaml", yaml)]);
    let v = validate_agent(&l, &config_schemas());
    l.diagnostics.extend(v);
    l
}

fn messages<T>(l: &Loaded<T>) -> Vec<String> {
    l.diagnostics.iter().map(ToString::to_string).collect()
}

fn error_at<T>(l: &Loaded<T>, path: &str) -> String {
    let found = l
        .diagnostics
        .iter()
        .find(|d| d.is_error() && d.path.to_string() == path);
    match found {
        Some(d) => d.message.clone(),
        None => panic!("no error at {path}: {:?}", messages(l)),
    }
}

const AGENT_OK: &str = "
sources:
  s: {driver: fs, uri: /tmp}
senders:
  f: {driver: fusion, uri: 'http://127.0.0.1:8102', credential: {key: k}}
pipes:
  p: {source: s, sender: f}
";

/// `configuration.md` §2: `driver_params: {}` of an fs source and `timeout: 30.0` of a sender.
const SPEC_PARTS: &str = r#"
sources:
  shared-fs: {driver: fs, uri: /mnt/shared, driver_params: {}}
senders:
  fusion-main:
    driver: fusion
    uri: http://fusion:18888
    credential: {key: "agent-key"}
    driver_params:
      timeout: 30.0
  minimal: {driver: fusion, uri: 'http://fusion:8102', credential: {key: k}}
pipes:
  pipe-1: {source: shared-fs, sender: fusion-main}
"#;

#[test]
fn spec_driver_params_take_their_documented_defaults() {
    let l = load(&[("default.yaml", SPEC_PARTS)]);
    assert!(l.diagnostics.is_empty(), "{:?}", messages(&l));
    let c = &l.config;
    let fsp = FsDriverParams::from_params(&c.sources["shared-fs"].driver_params).unwrap();
    assert_eq!(fsp.throttle_interval_sec, 5.0);
    assert_eq!(fsp.min_monitoring_window_days, 30.0);
    assert_eq!(fsp.file_pattern, "*");
    assert_eq!(fsp.max_sync_delay_seconds, 1.0);
    assert!(!fsp.message_only());
    assert!((1..=4).contains(&fsp.max_scan_workers));
    for id in ["fusion-main", "minimal"] {
        let f = FusionParams::from_params(&c.senders[id].driver_params).unwrap();
        assert_eq!(f.timeout, 30.0);
    }
}

#[test]
fn fs_driver_params_are_typed() {
    let yaml = "
sources:
  s:
    driver: fs
    uri: /data
    driver_params:
      throttle_interval_sec: 1
      min_monitoring_window_days: 7
      max_scan_workers: 2
      file_pattern: '*.csv'
      startup_mode: message-only
      max_sync_delay_seconds: 0.2
";
    let l = load(&[("a.yaml", yaml)]);
    let p = FsDriverParams::from_params(&l.config.sources["s"].driver_params).unwrap();
    assert_eq!(
        (p.throttle_interval_sec, p.min_monitoring_window_days),
        (1.0, 7.0)
    );
    assert_eq!((p.max_scan_workers, p.file_pattern.as_str()), (2, "*.csv"));
    assert!(p.message_only());
    assert_eq!(p.max_sync_delay_seconds, 0.2);
}

#[test]
fn bad_fs_driver_param_names_file_and_key() {
    let yaml =
        "sources:\n  s: {driver: fs, uri: /d, driver_params: {throttle_interval_sec: fast}}\n";
    let l = load(&[("a.yaml", yaml)]);
    assert!(l.config.sources.is_empty());
    assert_eq!(
        messages(&l),
        [
            r#"agent-config/a.yaml: sources.s.driver_params.throttle_interval_sec: expected a number, found string "fast""#
        ]
    );
}

#[test]
fn out_of_range_driver_params_name_their_key() {
    let l = agent(&AGENT_OK.replace("credential: {key: k}}", "driver_params: {timeout: 1e300}}"));
    error_at(&l, "senders.f.driver_params.timeout");
    let l = agent(&AGENT_OK.replace(
        "{driver: fs, uri: /tmp}",
        "{driver: fs, uri: /tmp, driver_params: {max_scan_workers: 100000000}}",
    ));
    error_at(&l, "sources.s.driver_params.max_scan_workers");
}

#[test]
fn unknown_driver_params_fail_check_with_a_suggestion() {
    let l = agent(&AGENT_OK.replace(
        "{driver: fs, uri: /tmp}",
        "{driver: fs, uri: /tmp, driver_params: {throttle_interval_secs: 1}}",
    ));
    assert!(!l.has_errors() && l.fails_check(), "{:?}", messages(&l));
    assert!(
        messages(&l)[0].contains("throttle_interval_sec\""),
        "{:?}",
        messages(&l)
    );
    let l = agent(&AGENT_OK.replace("credential: {key: k}}", "driver_params: {timeot: 3}}"));
    assert!(l.fails_check());
    assert!(
        messages(&l)[0].contains("did you mean \"timeout\""),
        "{:?}",
        messages(&l)
    );
    // The echo sender takes no parameters and checks none, as before.
    let l = agent(&AGENT_OK.replace(
        "{driver: fusion, uri: 'http://127.0.0.1:8102', credential: {key: k}}",
        "{driver: echo, uri: x, driver_params: {anything: 1}}",
    ));
    assert!(!l.fails_check(), "{:?}", messages(&l));
}

#[test]
fn sender_uris_need_an_http_scheme() {
    let l = agent(&AGENT_OK.replace("'http://127.0.0.1:8102'", "127.0.0.1:8102"));
    assert!(error_at(&l, "senders.f.uri").contains("http://"));
    for bad in ["ftp://x:1", "http://", "http://host:99999", "http:// x"] {
        let l = agent(&AGENT_OK.replace("http://127.0.0.1:8102", bad));
        error_at(&l, "senders.f.uri");
    }
    for good in [
        "https://fusion.example.org",
        "http://[::1]:8102/",
        "HTTP://h:1/x",
    ] {
        let l = agent(&AGENT_OK.replace("http://127.0.0.1:8102", good));
        assert!(!l.has_errors(), "{good}: {:?}", messages(&l));
    }
}

#[test]
fn the_registry_lists_the_built_in_drivers() {
    let s = config_schemas();
    assert_eq!(
        s.source_names().collect::<Vec<_>>(),
        ["exec", "fs", "mysql", "s3"]
    );
    assert_eq!(
        s.sender_names().collect::<Vec<_>>(),
        ["echo", "exec", "fusion", "http"]
    );
}

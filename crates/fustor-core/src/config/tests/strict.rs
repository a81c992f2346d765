//! Issue 9 items 7 and 8: out-of-range numbers and unknown keys are refused at load, with the
//! key named, instead of panicking later or silently falling back to a default.

use super::super::*;
use super::{config_dir, messages, no_drivers};

fn agent(yaml: &str) -> Loaded<AgentConfig> {
    let (_tmp, dir) = config_dir("agent-config", &[("default.yaml", yaml)]);
    let mut l = load_agent_dir(&dir, &no_drivers());
    let v = validate_agent(&l, &no_drivers());
    l.diagnostics.extend(v);
    l
}

fn fusion(yaml: &str) -> Loaded<FusionConfig> {
    let (_tmp, dir) = config_dir("fusion-config", &[("default.yaml", yaml)]);
    let mut l = load_fusion_dir(&dir);
    let v = validate_fusion(&l);
    l.diagnostics.extend(v);
    l
}

const AGENT_OK: &str = "
sources:
  s: {driver: fs, uri: /tmp}
senders:
  f: {driver: fusion, uri: 'http://127.0.0.1:8102', credential: {key: k}}
pipes:
  p: {source: s, sender: f}
";

const FUSION_OK: &str = "
receivers:
  r: {port: 8102, api_keys: [{key: k, pipe_id: p}]}
views:
  v: {driver: fs}
pipes:
  p: {receiver: r, views: [v]}
";

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

#[test]
fn the_valid_examples_have_no_diagnostics() {
    assert!(agent(AGENT_OK).diagnostics.is_empty());
    assert!(fusion(FUSION_OK).diagnostics.is_empty());
}

#[test]
fn out_of_range_durations_name_their_key() {
    let l = fusion(&format!("session_cleanup_interval: 1e20\n{FUSION_OK}"));
    assert!(error_at(&l, "session_cleanup_interval").contains("seconds"));
    let l = fusion(&format!("session_cleanup_interval: 0\n{FUSION_OK}"));
    error_at(&l, "session_cleanup_interval");
    let l = fusion(&FUSION_OK.replace("views: [v]}", "views: [v], audit_interval_sec: 1e300}"));
    error_at(&l, "pipes.p.audit_interval_sec");
    let l = fusion(&FUSION_OK.replace(
        "views: [v]}",
        "views: [v], session_timeout_seconds: 18446744073709551615}",
    ));
    error_at(&l, "pipes.p.session_timeout_seconds");
    let l = fusion(&FUSION_OK.replace(
        "{driver: fs}",
        "{driver: fs, driver_params: {consistency: {tombstone_ttl_seconds: -1}}}",
    ));
    error_at(
        &l,
        "views.v.driver_params.consistency.tombstone_ttl_seconds",
    );

    let l = agent(&AGENT_OK.replace(
        "{source: s, sender: f}",
        "{source: s, sender: f, error_retry_interval: 1e20, max_backoff_seconds: 1e21}",
    ));
    error_at(&l, "pipes.p.error_retry_interval");
    // Zero stays allowed where it means "off" (audits), and sane values still load.
    let l = agent(&AGENT_OK.replace(
        "{source: s, sender: f}",
        "{source: s, sender: f, audit_interval_sec: 0, max_backoff_seconds: 3600}",
    ));
    assert!(!l.has_errors(), "{:?}", messages(&l));
}

#[test]
fn unknown_keys_fail_check_with_a_suggestion_but_do_not_stop_start() {
    let l = fusion(&FUSION_OK.replace("views: [v]}", "views: [v], session_timeout_secs: 3}"));
    assert!(!l.has_errors(), "start must only warn: {:?}", messages(&l));
    assert!(l.fails_check());
    let d = &l.diagnostics[0];
    assert_eq!(d.path.to_string(), "pipes.p");
    assert!(
        d.message
            .contains("did you mean \"session_timeout_seconds\""),
        "{d}"
    );
    let l = fusion(&FUSION_OK.replace(
        "{driver: fs}",
        "{driver: fs, driver_params: {hot_file_treshold: 5}}",
    ));
    assert!(l.fails_check());
    assert!(
        messages(&l)[0].contains("hot_file_threshold"),
        "{:?}",
        messages(&l)
    );
    let l = agent(&format!(
        "logging: {{level: INFO, formt: json}}\n{AGENT_OK}"
    ));
    assert!(l.fails_check());
}

#[test]
fn keys_the_python_reference_knows_are_tolerated() {
    let l = agent(&AGENT_OK.replace(
        "{source: s, sender: f}",
        "{source: s, sender: f, batch_size: 100, control_loop_interval: 1}",
    ));
    assert!(!l.fails_check(), "{:?}", messages(&l));
}

#[test]
fn log_format_is_text_or_json() {
    let l = fusion(&format!(
        "logging: {{level: INFO, format: json, dir: /tmp/x}}\n{FUSION_OK}"
    ));
    assert!(l.diagnostics.is_empty(), "{:?}", messages(&l));
    assert_eq!(l.config.logging.json_format(), Some(true));
    let l = fusion(&format!("logging: {{format: xml}}\n{FUSION_OK}"));
    error_at(&l, "logging.format");
    let l = agent(&format!(
        "logging: {{format: '%(asctime)s %(message)s'}}\n{AGENT_OK}"
    ));
    assert!(!l.fails_check(), "{:?}", messages(&l));
}

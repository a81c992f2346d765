use std::collections::BTreeSet;

use super::super::*;
use super::{config_dir, messages, no_drivers};

/// `configuration.md` §2, verbatim.
const SPEC_AGENT: &str = r#"
agent_id: "agent-nfs-a"        # optional; see wire-protocol.md §2 for the fallback
logging: "INFO"                # or {level: INFO, format: "...", dir: ...}
fs_scan_workers: 4             # parsed, not used by the daemon path (see §8)
sources:
  shared-fs:
    driver: fs                 # required; entry point name of a source driver
    uri: /mnt/shared           # required; for fs: absolute root directory
    credential: {key: ...}     # optional: {key, user?} or {user, passwd?}; extra keys rejected
    max_queue_size: 1000       # >0; capacity of the in-memory event bus for this source
    max_retries: 10            # >0; unused by fs
    retry_delay_sec: 5         # >0; unused by fs
    disabled: false
    driver_params: {}          # driver specific (§2.1)
senders:
  fusion-main:
    driver: fusion             # required; "fusion" = HTTP sender, "echo" = log-only sender
    uri: http://fusion:18888   # required; Fusion receiver base URL
    credential: {key: "agent-key"}   # API key sent as X-API-Key (also accepts api_key inside dict)
    batch_size: 1000           # >=1; parsed but not used by the HTTP sender (pipe batch = 100)
    max_retries: 10            # unused
    retry_delay_sec: 5         # unused
    timeout_sec: 30            # unused by the HTTP sender
    disabled: false
    driver_params:
      timeout: 30.0            # HTTP client timeout (s) — this is the effective one
pipes:
  pipe-1:
    source: shared-fs          # required reference
    sender: fusion-main        # required reference
    audit_interval_sec: 43200.0     # overridden by Fusion's session response
    sentinel_interval_sec: 300.0    # overridden by Fusion's session response
    session_timeout_seconds: null   # optional hint sent to Fusion
    error_retry_interval: 5.0
    max_consecutive_errors: 5
    backoff_multiplier: 2.0
    max_backoff_seconds: 60.0
    disabled: false
    fields_mapping: []          # see agent-runtime.md §11
"#;

const MINIMAL: &str = "
sources:
  s: {driver: fs, uri: /mnt/shared}
senders:
  f: {driver: fusion, uri: 'http://fusion:8102', credential: {key: k}}
pipes:
  p: {source: s, sender: f, batch_size: 5, control_loop_interval: 1}
";

fn load(files: &[(&str, &str)]) -> Loaded<AgentConfig> {
    let (_tmp, dir) = config_dir("agent-config", files);
    load_agent_dir(&dir, &no_drivers())
}

#[test]
fn spec_example_parses_with_documented_values() {
    let l = load(&[("default.yaml", SPEC_AGENT)]);
    assert!(l.diagnostics.is_empty(), "{:?}", messages(&l));
    let c = &l.config;
    assert_eq!(c.agent_id.as_deref(), Some("agent-nfs-a"));
    assert_eq!(c.logging.level, "INFO");
    assert_eq!(c.fs_scan_workers, 4);
    let s = &c.sources["shared-fs"];
    assert_eq!((s.driver.as_str(), s.uri.as_str()), ("fs", "/mnt/shared"));
    assert_eq!(
        s.credential.as_ref().and_then(Credential::api_key),
        Some("...")
    );
    assert_eq!(
        (s.max_queue_size, s.max_retries, s.retry_delay_sec),
        (1000, 10, 5)
    );
    // `driver_params` defaults: `fustor-agent/tests/config_drivers.rs`.
    let f = &c.senders["fusion-main"];
    assert_eq!(f.api_key(), Some("agent-key"));
    assert_eq!((f.batch_size, f.timeout_sec), (1000, 30));
    let p = &c.pipes["pipe-1"];
    assert_eq!(
        (p.audit_interval_sec, p.sentinel_interval_sec),
        (43200.0, 300.0)
    );
    assert_eq!(p.session_timeout_seconds, None);
    assert_eq!(p.max_consecutive_errors, 5);
    assert!(p.fields_mapping.is_empty());
    assert_eq!(c.enabled_pipes(), ["pipe-1"]);
    assert!(validate_agent(&l, &no_drivers()).is_empty());
}

#[test]
fn omitted_keys_take_the_agent_loader_defaults() {
    let l = load(&[("default.yaml", MINIMAL)]);
    assert!(l.diagnostics.is_empty(), "{:?}", messages(&l));
    let c = &l.config;
    assert_eq!(c.agent_id, None);
    assert_eq!(c.logging, LoggingConfig::default());
    assert_eq!(c.fs_scan_workers, 4);
    let s = &c.sources["s"];
    assert_eq!(
        (s.max_queue_size, s.disabled, s.credential.is_none()),
        (1000, false, true)
    );
    let f = &c.senders["f"];
    assert_eq!(
        (f.batch_size, f.max_retries, f.retry_delay_sec),
        (1000, 10, 5)
    );
    let p = &c.pipes["p"];
    assert_eq!(
        (p.audit_interval_sec, p.sentinel_interval_sec),
        (43200.0, 300.0)
    );
    assert_eq!((p.error_retry_interval, p.backoff_multiplier), (5.0, 2.0));
    assert_eq!((p.max_backoff_seconds, p.disabled), (60.0, false));
}

#[test]
fn credentials_accept_the_two_shapes_and_reject_extra_keys() {
    let yaml = "
sources:
  a: {driver: x, uri: u, credential: {key: k, user: u}}
  b: {driver: x, uri: u, credential: {user: u, passwd: p}}
  c: {driver: x, uri: u, credential: {user: u}}
";
    let l = load(&[("a.yaml", yaml)]);
    assert!(l.diagnostics.is_empty(), "{:?}", messages(&l));
    let src = &l.config.sources;
    assert_eq!(
        src["a"].credential,
        Some(Credential::ApiKey {
            key: "k".into(),
            user: Some("u".into())
        })
    );
    assert_eq!(
        src["b"].credential,
        Some(Credential::Passwd {
            user: "u".into(),
            passwd: Some("p".into())
        })
    );
    assert_eq!(
        src["c"].credential.as_ref().and_then(Credential::api_key),
        None
    );

    for (bad, key) in [
        ("{key: k, extra: 1}", "extra"),
        ("{api_key: k}", "api_key"),
        ("{key: k, passwd: p}", "passwd"),
    ] {
        let yaml = format!("sources:\n  s: {{driver: x, uri: u, credential: {bad}}}\n");
        let l = load(&[("a.yaml", &yaml)]);
        let msg = messages(&l).join("\n");
        assert!(
            msg.contains("sources.s.credential: ") && msg.contains(key),
            "{msg}"
        );
        assert!(l.config.sources.is_empty());
    }
}

#[test]
fn sender_credential_also_accepts_api_key() {
    let yaml = "senders:\n  f: {driver: fusion, uri: u, credential: {api_key: secret}}\n";
    let l = load(&[("a.yaml", yaml)]);
    assert_eq!(l.config.senders["f"].api_key(), Some("secret"));
}

#[test]
fn logging_is_a_level_or_a_mapping() {
    let l = load(&[("a.yaml", "logging: debug\n")]);
    assert_eq!(l.config.logging.level, "DEBUG");
    assert_eq!(
        l.config.logging.tracing_level(),
        Some(tracing::Level::DEBUG)
    );
    let l = load(&[(
        "a.yaml",
        "logging: {level: WARNING, format: '%(message)s', dir: /var/log/f}\n",
    )]);
    let lg = &l.config.logging;
    assert_eq!(lg.level, "WARNING");
    assert_eq!(lg.format.as_deref(), Some("%(message)s"));
    assert_eq!(lg.dir.as_deref(), Some(std::path::Path::new("/var/log/f")));
    assert_eq!(lg.tracing_level(), Some(tracing::Level::WARN));
}

#[test]
fn default_yaml_logging_wins_and_later_files_override_other_globals() {
    let l = load(&[
        (
            "a.yaml",
            "logging: DEBUG\nagent_id: a\nfs_scan_workers: 2\n",
        ),
        ("default.yaml", "logging: ERROR\n"),
        ("z.yaml", "logging: WARNING\nagent_id: ' z '\n"),
    ]);
    let c = &l.config;
    assert_eq!(c.logging.level, "ERROR");
    assert_eq!((c.agent_id.as_deref(), c.fs_scan_workers), (Some("z"), 2));
    assert!(
        messages(&l)
            .iter()
            .any(|m| m.contains("agent_id redefined"))
    );
}

#[test]
fn counts_must_be_positive() {
    let yaml = "sources:\n  s: {driver: fs, uri: /d, max_queue_size: 0}\n";
    let l = load(&[("a.yaml", yaml)]);
    assert_eq!(
        messages(&l),
        ["agent-config/a.yaml: sources.s.max_queue_size: must be greater than 0"]
    );
}

#[test]
fn missing_required_keys_are_named() {
    let l = load(&[("a.yaml", "senders:\n  f: {driver: fusion}\n")]);
    assert_eq!(
        messages(&l),
        ["agent-config/a.yaml: senders.f.uri: required key is missing"]
    );
    let l = load(&[("a.yaml", "pipes:\n  p: {source: s}\n")]);
    assert_eq!(
        messages(&l),
        ["agent-config/a.yaml: pipes.p.sender: required key is missing"]
    );
}

#[test]
fn fields_mapping_uses_the_shared_type() {
    let yaml = "
pipes:
  p:
    source: s
    sender: f
    fields_mapping:
      - {to: a.path, source: ['path:string']}
      - {to: site, hardcoded_value: x}
";
    let l = load(&[("a.yaml", yaml)]);
    let m = &l.config.pipes["p"].fields_mapping;
    assert_eq!(m.len(), 2);
    assert_eq!(m[0].source, ["path:string"]);
    assert_eq!(m[1].hardcoded_value, Some(serde_json::json!("x")));
}

#[test]
fn redundant_pipes_are_rejected_s88() {
    let yaml = format!("{MINIMAL}  q: {{source: s, sender: f}}\n");
    let l = load(&[("default.yaml", &yaml)]);
    let errs = validate_agent(&l, &no_drivers());
    assert_eq!(errs.len(), 1, "{errs:?}");
    let msg = errs[0].to_string();
    assert!(msg.contains("Redundant configuration"), "{msg}");
    assert!(
        msg.contains("pipes p and q use the same source and sender"),
        "{msg}"
    );
    assert!(
        msg.starts_with("agent-config/default.yaml: pipes.q: "),
        "{msg}"
    );
}

#[test]
fn validate_reports_unknown_references_and_empty_endpoints() {
    let yaml = "
sources:
  s: {driver: '', uri: /d}
pipes:
  p: {source: nope, sender: gone}
";
    let l = load(&[("a.yaml", yaml)]);
    let msgs: Vec<String> = validate_agent(&l, &no_drivers())
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        msgs,
        [
            "agent-config/a.yaml: sources.s.driver: must not be empty",
            "agent-config/a.yaml: pipes.p.source: pipe 'p' references unknown source 'nope'",
            "agent-config/a.yaml: pipes.p.sender: pipe 'p' references unknown sender 'gone'",
        ]
    );
}

#[test]
fn enabled_requires_pipe_source_and_sender_enabled() {
    let yaml = "
sources:
  s: {driver: fs, uri: /a}
  off: {driver: fs, uri: /b, disabled: true}
senders:
  f: {driver: fusion, uri: u}
  g: {driver: fusion, uri: u, disabled: true}
pipes:
  ok: {source: s, sender: f}
  pipe-off: {source: s, sender: f, disabled: true}
  source-off: {source: off, sender: f}
  sender-off: {source: s, sender: g}
  source-missing: {source: nope, sender: f}
";
    let l = load(&[("default.yaml", yaml)]);
    assert_eq!(l.config.enabled_pipes(), ["ok"]);
    // Default start checks only the source (pipe and sender flags are not consulted).
    let sel = agent_start_selection(&l, &[]);
    assert_eq!(sel.pipes, ["ok", "pipe-off", "sender-off"]);
    assert_eq!(sel.not_enabled, ["source-off", "source-missing"]);
}

#[test]
fn start_without_args_uses_default_yaml_only() {
    let other = "pipes:\n  extra: {source: s, sender: f}\n";
    let l = load(&[("default.yaml", MINIMAL), ("other.yaml", other)]);
    assert_eq!(agent_start_selection(&l, &[]).pipes, ["p"]);
    let l = load(&[("other.yaml", MINIMAL)]);
    assert!(agent_start_selection(&l, &[]).pipes.is_empty());
}

#[test]
fn start_with_args_selects_files_and_ids() {
    let other = "pipes:\n  x1: {source: s, sender: f}\n  x2: {source: s, sender: f}\n";
    let l = load(&[("default.yaml", MINIMAL), ("other.yaml", other)]);
    let args: Vec<String> = ["/etc/whatever/other.yaml", "p", "x1", "nope", "missing.yml"]
        .iter()
        .map(ToString::to_string)
        .collect();
    let sel = agent_start_selection(&l, &args);
    assert_eq!(sel.pipes, ["x1", "x2", "p"]);
    assert_eq!(sel.unknown, ["nope", "missing.yml"]);
}

#[test]
fn reload_plan_diffs_enabled_pipes_and_refuses_redundancy() {
    let two = "
sources:
  s: {driver: fs, uri: /a}
  t: {driver: fs, uri: /b}
senders:
  f: {driver: fusion, uri: u}
pipes:
  p: {source: s, sender: f}
  q: {source: t, sender: f}
";
    let l = load(&[("a.yaml", two)]);
    let running: BTreeSet<String> = ["p".to_string(), "old".to_string()].into();
    let plan = agent_reload_plan(&l.config, &running).unwrap();
    assert_eq!(plan.added, ["q"]);
    assert_eq!(plan.removed, ["old"]);

    let clash = two.replace("q: {source: t", "q: {source: s");
    let l = load(&[("a.yaml", &clash)]);
    let err = agent_reload_plan(&l.config, &running).unwrap_err();
    assert!(err.message.contains("Redundant configuration"), "{err}");
}

#[test]
fn signature_ignores_key_order_and_files_but_sees_changes() {
    let a = load(&[("default.yaml", MINIMAL)]).config.signature();
    let reordered = "
pipes:
  p: {sender: f, source: s}
senders:
  f: {credential: {key: k}, uri: 'http://fusion:8102', driver: fusion}
sources:
  s: {uri: /mnt/shared, driver: fs}
";
    let b = load(&[("x.yaml", reordered)]).config.signature();
    assert_eq!(a, b);
    let changed = MINIMAL.replace("/mnt/shared", "/mnt/other");
    let c = load(&[("default.yaml", &changed)]).config.signature();
    assert_ne!(a, c);
    assert_eq!(a.to_string().len(), 16);
}

use std::collections::BTreeMap;

use super::super::*;
use super::{config_dir, messages};

/// `configuration.md` §3, verbatim.
const SPEC_FUSION: &str = r#"
host: 0.0.0.0                  # main API bind (default 0.0.0.0)
port: 8101                     # main API port (default 8101)
session_cleanup_interval: 5.0  # seconds between session-expiry sweeps (default 5.0)
logging: INFO
receivers:
  http-main:
    driver: http               # default http
    bind_host: 0.0.0.0         # default 0.0.0.0
    port: 8102                 # default 8102; receivers with equal (driver, port) are one server
    disabled: false
    api_keys:                  # agent keys; each binds a key to ONE fusion pipe id
      - {key: agent-key-a, pipe_id: pipe-a}
views:
  view-a:
    driver: fs                 # fs | forest-fs (default fs)
    disabled: false
    api_keys: [query-key]      # dedicated query keys (resolve to this view id)
    driver_params:
      hot_file_threshold: 30.0          # seconds; 0/absent ⇒ 30.0
      max_tree_items: 100000            # API metadata limit, <=0 unlimited
      consistency: {tombstone_ttl_seconds: 3600.0}
      limits: {max_nodes: 0}            # 0 = unlimited tree nodes (OOM guard)
pipes:
  pipe-a:
    receiver: http-main        # required reference
    views: [view-a]            # list; the FIRST entry is the pipe's "primary view"
    allow_concurrent_push: true
    session_timeout_seconds: 30
    audit_interval_sec: 43200.0     # pushed to agents in the session response
    sentinel_interval_sec: 120.0    # pushed to agents
"#;

/// `scenarios.md` §0 F0 with R = 18888.
const F0: &str = "
session_cleanup_interval: 1
receivers:
  http-main: {driver: http, port: 18888, api_keys: [{key: agent-key, pipe_id: v1}, {key: agent-key-2, pipe_id: v2}]}
views:
  v1: {driver: fs, api_keys: [qk1], driver_params: {hot_file_threshold: 5.0, consistency: {tombstone_ttl_seconds: 0.5}}}
  v2: {driver: fs, api_keys: [qk2]}
pipes:
  v1: {receiver: http-main, views: [v1], session_timeout_seconds: 3, audit_interval_sec: 15, sentinel_interval_sec: 5}
  v2: {receiver: http-main, views: [v2]}
";

/// `scenarios.md` §11 F2.
const F2: &str = "
receivers:
  http-main: {driver: http, port: 18888, api_keys: [{key: ka, pipe_id: pa}, {key: kb, pipe_id: pb}]}
views:
  forest: {driver: forest-fs, api_keys: [qf]}
pipes:
  pa: {receiver: http-main, views: [forest]}
  pb: {receiver: http-main, views: [forest]}
";

fn load(files: &[(&str, &str)]) -> Loaded<FusionConfig> {
    let (_tmp, dir) = config_dir("fusion-config", files);
    load_fusion_dir(&dir)
}

fn keys(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, p)| (k.to_string(), p.to_string()))
        .collect()
}

#[test]
fn spec_example_parses_with_documented_values() {
    let l = load(&[("default.yaml", SPEC_FUSION)]);
    assert!(l.diagnostics.is_empty(), "{:?}", messages(&l));
    let c = &l.config;
    assert_eq!(
        (c.host.as_str(), c.port, c.session_cleanup_interval),
        ("0.0.0.0", 8101, 5.0)
    );
    assert_eq!(c.logging.level, "INFO");
    let r = &c.receivers["http-main"];
    assert_eq!(
        (r.driver.as_str(), r.bind_host.as_str(), r.port),
        ("http", "0.0.0.0", 8102)
    );
    assert_eq!(
        r.api_keys,
        [ApiKeyEntry {
            key: "agent-key-a".into(),
            pipe_id: "pipe-a".into()
        }]
    );
    let v = &c.views["view-a"];
    assert_eq!(v.view_driver(), Some(ViewDriverKind::Fs));
    assert_eq!(v.api_keys, ["query-key"]);
    assert_eq!(v.fs_params().unwrap(), FsViewParams::default());
    let p = &c.pipes["pipe-a"];
    assert_eq!(p.primary_view(), Some("view-a"));
    assert!(p.allow_concurrent_push);
    assert_eq!(p.session_timeout_seconds, 30);
    assert_eq!(
        (p.audit_interval_sec, p.sentinel_interval_sec),
        (43200.0, 120.0)
    );
    assert!(p.extra.is_empty() && v.extra.is_empty() && r.extra.is_empty() && c.extra.is_empty());
    assert_eq!(c.enabled_pipes(), ["pipe-a"]);
    assert!(validate_fusion(&l).is_empty());
}

#[test]
fn f0_fixture_parses() {
    let l = load(&[("default.yaml", F0)]);
    assert!(l.diagnostics.is_empty(), "{:?}", messages(&l));
    let c = &l.config;
    assert_eq!(
        (c.host.as_str(), c.port, c.session_cleanup_interval),
        ("0.0.0.0", 8101, 1.0)
    );
    let v1 = c.views["v1"].fs_params().unwrap();
    assert_eq!(v1.hot_file_threshold, 5.0);
    assert_eq!(v1.consistency.tombstone_ttl_seconds, 0.5);
    assert_eq!(v1.max_tree_items_limit(), Some(100_000));
    let v2 = c.views["v2"].fs_params().unwrap();
    assert_eq!(
        (v2.hot_file_threshold, v2.consistency.tombstone_ttl_seconds),
        (30.0, 3600.0)
    );
    assert_eq!((v2.limits.max_nodes, v2.max_nodes_limit()), (0, None));
    let p1 = &c.pipes["v1"];
    assert_eq!(p1.session_timeout_seconds, 3);
    assert_eq!(
        (p1.audit_interval_sec, p1.sentinel_interval_sec),
        (15.0, 5.0)
    );
    let p2 = &c.pipes["v2"];
    assert_eq!(p2.session_timeout_seconds, 30);
    assert_eq!(
        (p2.audit_interval_sec, p2.sentinel_interval_sec),
        (43200.0, 120.0)
    );
    assert_eq!(c.enabled_pipes(), ["v1", "v2"]);
    let sel = fusion_start_selection(&l, &[]);
    let servers = c.receiver_servers(sel.pipes.iter().map(String::as_str));
    assert_eq!(servers.len(), 1);
    assert_eq!(
        (servers[0].port, servers[0].bind_host.as_str()),
        (18888, "0.0.0.0")
    );
    assert_eq!(
        servers[0].keys,
        keys(&[("agent-key", "v1"), ("agent-key-2", "v2")])
    );
    // Keys are registered only for pipes actually started.
    let only_v1 = c.receiver_servers(["v1"]);
    assert_eq!(only_v1[0].keys, keys(&[("agent-key", "v1")]));
    assert!(validate_fusion(&l).is_empty());
}

#[test]
fn f2_forest_fixture_parses() {
    let l = load(&[("default.yaml", F2)]);
    assert!(l.diagnostics.is_empty(), "{:?}", messages(&l));
    let c = &l.config;
    assert_eq!(
        c.views["forest"].view_driver(),
        Some(ViewDriverKind::ForestFs)
    );
    assert_eq!(
        c.views["forest"].fs_params().unwrap(),
        FsViewParams::default()
    );
    assert_eq!(c.pipes["pa"].primary_view(), Some("forest"));
    assert_eq!(c.pipes["pb"].primary_view(), Some("forest"));
    assert_eq!(c.enabled_pipes(), ["pa", "pb"]);
    let servers = c.receiver_servers(["pa", "pb"]);
    assert_eq!(servers[0].keys, keys(&[("ka", "pa"), ("kb", "pb")]));
    assert!(validate_fusion(&l).is_empty());
}

#[test]
fn hot_file_threshold_zero_null_or_negative_means_thirty() {
    let yaml = "
views:
  a: {driver_params: {hot_file_threshold: 0}}
  b: {driver_params: {hot_file_threshold: null, max_tree_items: -1, limits: {max_nodes: 7}}}
  c: {driver_params: {hot_file_threshold: -1, limits: {max_tombstones: 10}}}
";
    let l = load(&[("a.yaml", yaml)]);
    let a = l.config.views["a"].fs_params().unwrap();
    assert_eq!(a.hot_file_threshold, 30.0);
    let b = l.config.views["b"].fs_params().unwrap();
    assert_eq!(b.hot_file_threshold, 30.0);
    assert_eq!(
        (b.max_tree_items_limit(), b.max_nodes_limit()),
        (None, Some(7))
    );
}

#[test]
fn bad_view_param_names_file_and_key() {
    let yaml = "views:\n  v1: {driver: fs, driver_params: {max_tree_items: lots}}\n";
    let l = load(&[("a.yaml", yaml)]);
    assert!(l.has_errors());
    let msg = messages(&l).join("\n");
    assert!(
        msg.starts_with(
            "fusion-config/a.yaml: views.v1.driver_params.max_tree_items: expected an integer"
        ),
        "{msg}"
    );
    let yaml = "views:\n  v1: {driver_params: {consistency: {tombstone_ttl_seconds: soon}}}\n";
    let l = load(&[("a.yaml", yaml)]);
    let msg = messages(&l).join("\n");
    assert!(
        msg.contains("views.v1.driver_params.consistency.tombstone_ttl_seconds: expected a number"),
        "{msg}"
    );
}

#[test]
fn list_items_are_addressed_by_index() {
    let yaml = "receivers:\n  r: {api_keys: [{key: a, pipe_id: p}, {key: b}]}\n";
    let l = load(&[("a.yaml", yaml)]);
    assert_eq!(
        messages(&l),
        ["fusion-config/a.yaml: receivers.r.api_keys[1].pipe_id: required key is missing"]
    );
}

#[test]
fn default_yaml_globals_take_precedence() {
    // default.yaml names one of host/port/session_cleanup_interval: the three are rebuilt from
    // it, whatever other files (before or after it) said.
    let l = load(&[
        ("a.yaml", "host: 10.0.0.1\nport: 9000\nlogging: DEBUG\n"),
        (
            "default.yaml",
            "session_cleanup_interval: 2\nlogging: ERROR\n",
        ),
        ("z.yaml", "port: 9999\nlogging: WARNING\n"),
    ]);
    let c = &l.config;
    assert_eq!(
        (c.host.as_str(), c.port, c.session_cleanup_interval),
        ("0.0.0.0", 8101, 2.0)
    );
    assert_eq!(c.logging.level, "ERROR");

    // Without such keys in default.yaml, the last file defining a key wins.
    let l = load(&[
        ("a.yaml", "host: 10.0.0.1\nport: 9000\n"),
        ("default.yaml", "receivers: {}\n"),
        ("z.yaml", "port: 9999\n"),
    ]);
    let c = &l.config;
    assert_eq!(
        (c.host.as_str(), c.port, c.session_cleanup_interval),
        ("10.0.0.1", 9999, 5.0)
    );
}

#[test]
fn unknown_view_driver_is_reported() {
    let yaml = "
receivers: {r: {}}
views: {m: {driver: multi-fs}}
pipes: {p: {receiver: r, views: [m]}}
";
    let l = load(&[("a.yaml", yaml)]);
    assert!(l.diagnostics.is_empty());
    let msgs: Vec<String> = validate_fusion(&l)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        msgs,
        [
            "fusion-config/a.yaml: views.m.driver: unknown view driver 'multi-fs' (expected fs or forest-fs)"
        ]
    );
}

#[test]
fn validate_reports_broken_references() {
    let yaml = "
views: {v: {}}
pipes:
  p: {receiver: nope, views: [v, ghost]}
  q: {receiver: nope}
";
    let l = load(&[("a.yaml", yaml)]);
    let msgs: Vec<String> = validate_fusion(&l)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        msgs,
        [
            "fusion-config/a.yaml: pipes.p.receiver: pipe 'p' references unknown receiver 'nope'",
            "fusion-config/a.yaml: pipes.p.views: pipe 'p' references unknown view 'ghost'",
            "fusion-config/a.yaml: pipes.q.receiver: pipe 'q' references unknown receiver 'nope'",
            "fusion-config/a.yaml: pipes.q.views: pipe 'q' lists no views",
        ]
    );
}

#[test]
fn enabled_needs_live_receiver_and_one_live_view() {
    let yaml = "
receivers:
  r: {}
  off: {disabled: true}
views:
  v: {}
  w: {disabled: true}
pipes:
  ok: {receiver: r, views: [w, v, ghost]}
  receiver-off: {receiver: off, views: [v]}
  views-off: {receiver: r, views: [w, ghost]}
";
    let l = load(&[("a.yaml", yaml)]);
    let c = &l.config;
    assert_eq!(c.enabled_pipes(), ["ok"]);
    assert_eq!(c.active_views("ok"), ["v"]);
    assert_eq!(c.pipes["ok"].primary_view(), Some("w"));
    // Fusion starts enabled pipes of every file, not only default.yaml.
    let sel = fusion_start_selection(&l, &[]);
    assert_eq!(sel.pipes, ["ok"]);
    assert_eq!(sel.not_enabled, ["receiver-off", "views-off"]);
    let args = vec!["a.yaml".to_string(), "nope".to_string()];
    let sel = fusion_start_selection(&l, &args);
    assert_eq!(
        (sel.pipes.as_slice(), sel.unknown.as_slice()),
        (&["ok".to_string()][..], &["nope".to_string()][..])
    );
}

#[test]
fn receivers_on_one_port_share_a_server() {
    let yaml = "
receivers:
  a: {port: 9000, api_keys: [{key: ka, pipe_id: pa}]}
  b: {port: 9000, bind_host: 127.0.0.1, api_keys: [{key: kb, pipe_id: pb}]}
  c: {port: 9001, api_keys: [{key: kc, pipe_id: pc}]}
views: {v: {}}
pipes:
  pa: {receiver: a, views: [v]}
  pb: {receiver: b, views: [v]}
  pc: {receiver: c, views: [v]}
";
    let l = load(&[("a.yaml", yaml)]);
    let servers = l.config.receiver_servers(["pa", "pb", "pc"]);
    assert_eq!(servers.len(), 2);
    assert_eq!(servers[0].receiver_ids, ["a", "b"]);
    assert_eq!(servers[0].bind_host, "0.0.0.0");
    assert_eq!(servers[0].keys, keys(&[("ka", "pa"), ("kb", "pb")]));
    assert_eq!(
        (servers[1].port, servers[1].receiver_ids.as_slice()),
        (9001, &["c".to_string()][..])
    );
    let warnings = validate_fusion(&l);
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].severity, Severity::Warning);
    assert!(warnings[0].message.contains("bind_host"), "{}", warnings[0]);
}

#[test]
fn unknown_keys_are_kept_and_reported_as_strict_warnings() {
    let yaml = "
future_switch: true
management_api_key: admin
receivers: {r: {tls: {cert: /c}}}
views: {v: {retention_days: 3}}
pipes: {p: {receiver: r, views: [v], disabled: true, max_batch_bytes: 1000}}
";
    let l = load(&[("a.yaml", yaml)]);
    // Issue 9: still loaded (start only warns), but `check-config` must refuse them.
    assert!(!l.has_errors(), "{:?}", messages(&l));
    assert!(l.fails_check());
    let paths: Vec<String> = l.diagnostics.iter().map(|d| d.path.to_string()).collect();
    assert_eq!(paths.len(), 4, "{:?}", messages(&l));
    assert!(l.diagnostics.iter().all(|d| d.strict));
    let c = &l.config;
    assert_eq!(c.extra.get("future_switch"), Some(&serde_json::json!(true)));
    assert!(!c.extra.contains_key("management_api_key"));
    assert_eq!(c.management_api_key.as_deref(), Some("admin"));
    assert!(c.receivers["r"].extra.contains_key("tls"));
    assert!(c.views["v"].extra.contains_key("retention_days"));
    assert!(c.pipes["p"].extra.contains_key("max_batch_bytes"));
    // `disabled` on a Fusion pipe does nothing, which deserves a warning.
    assert!(c.is_pipe_enabled("p"));
    let d = validate_fusion(&l);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].path.to_string(), "pipes.p.disabled");
}

#[test]
fn persistence_keys_parse_default_and_are_checked() {
    let yaml = "
views:
  a: {driver: fs}
  b: {driver: forest-fs, persist: false}
  c: {driver: fs, persist_dir: /srv/fustor/c, persist_snapshot_interval_seconds: 60, persist_fsync: false}
";
    let l = load(&[("a.yaml", yaml)]);
    assert!(l.diagnostics.is_empty(), "{:?}", messages(&l));
    let v = &l.config.views;
    assert!(v["a"].persisted() && !v["b"].persisted() && v["c"].persisted());
    assert_eq!(v["a"].persist_snapshot_interval_seconds, 300.0);
    assert!(v["a"].persist_fsync && !v["c"].persist_fsync);
    assert_eq!(v["c"].persist_dir.as_deref(), Some("/srv/fustor/c"));
    for (bad, want) in [
        ("{persist: maybe}", "views.v.persist: "),
        (
            "{persist_snapshot_interval_seconds: 0}",
            "views.v.persist_snapshot_interval_seconds: must be",
        ),
        (
            "{persist_dir: ''}",
            "views.v.persist_dir: must be a directory path",
        ),
        ("{persist_fsync: 2}", "views.v.persist_fsync: "),
    ] {
        let l = load(&[("a.yaml", &format!("views:\n  v: {bad}\n"))]);
        let msg = messages(&l).join("\n");
        assert!(l.has_errors() && msg.contains(want), "{bad}: {msg}");
    }
    let l = load(&[("a.yaml", "views:\n  v: {persist_snapshot_interval: 5}\n")]);
    let msg = messages(&l).join("\n");
    assert!(
        l.fails_check() && msg.contains("persist_snapshot_interval_seconds"),
        "{msg}"
    );
}

/// Issue 14: a view's query key may be bound to a user; plain keys keep meaning "everything".
#[test]
fn view_keys_bound_to_users_parse() {
    let y = "receivers:\n  r: {api_keys: [{key: k, pipe_id: p}]}\n\
             views:\n  v: {api_keys: [plain, {key: ann, uid: 1001, gids: [1001, 500]}, {key: ops, admin: true}]}\n\
             pipes:\n  p: {receiver: r, views: [v]}\n";
    let l = load(&[("default.yaml", y)]);
    assert!(l.diagnostics.is_empty(), "{:?}", messages(&l));
    let keys = &l.config.views["v"].api_keys;
    assert_eq!(keys[0], "plain");
    assert_eq!(keys[0].identity(), None);
    let ann = keys[1].identity().unwrap();
    assert_eq!(
        (ann.uid, ann.gids.as_slice(), ann.admin),
        (1001, &[1001, 500][..], false)
    );
    assert!(keys[2].identity().unwrap().admin);
    // A misspelt field is refused, not silently a key that sees everything.
    let bad = "receivers:\n  r: {api_keys: [{key: k, pipe_id: p}]}\n\
               views:\n  v: {api_keys: [{key: ann, uid: 1001, gid: [1]}]}\n\
               pipes:\n  p: {receiver: r, views: [v]}\n";
    let l = load(&[("default.yaml", bad)]);
    assert!(!l.diagnostics.is_empty());
}

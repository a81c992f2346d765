use std::ffi::OsStr;
use std::path::Path;

use super::super::*;
use super::{config_dir, messages, no_drivers, write};

const SRC_A: &str = "sources:\n  s: {driver: fs, uri: /from-a}\n  only-a: {driver: fs, uri: /a}\n";
const SRC_B: &str = "sources:\n  s: {driver: fs, uri: /from-b}\n";

#[test]
fn files_merge_in_name_order_and_later_ids_replace_earlier() {
    let (_tmp, dir) = config_dir("agent-config", &[("b.yaml", SRC_B), ("a.yaml", SRC_A)]);
    let l = load_agent_dir(&dir, &no_drivers());
    assert_eq!(l.config.sources["s"].uri, "/from-b");
    assert_eq!(l.config.sources["only-a"].uri, "/a");
    assert!(!l.has_errors());
    assert_eq!(
        messages(&l),
        ["agent-config/b.yaml: sources.s: 's' redefined; replaces the definition from a.yaml"]
    );
    assert_eq!(l.origin("sources", "s"), Some(dir.join("b.yaml").as_path()));
}

#[test]
fn cross_file_references_resolve() {
    let pipes = "pipes:\n  p: {source: s, sender: f}\n";
    let senders = "senders:\n  f: {driver: fusion, uri: 'http://u'}\n";
    let (_tmp, dir) = config_dir(
        "agent-config",
        &[
            ("1-pipes.yaml", pipes),
            ("2-rest.yaml", senders),
            ("3.yaml", SRC_B),
        ],
    );
    let l = load_agent_dir(&dir, &no_drivers());
    assert!(validate_agent(&l, &no_drivers()).is_empty());
    assert_eq!(l.config.enabled_pipes(), ["p"]);
    assert_eq!(l.pipes_by_file["1-pipes.yaml"], ["p"]);
}

#[test]
fn only_dot_yaml_files_are_read() {
    let (_tmp, dir) = config_dir(
        "agent-config",
        &[
            ("a.yaml", SRC_A),
            ("b.yml", SRC_B),
            ("c.yaml.bak", SRC_B),
            ("README", "x"),
        ],
    );
    let l = load_agent_dir(&dir, &no_drivers());
    assert_eq!(l.config.sources["s"].uri, "/from-a");
    assert!(l.diagnostics.is_empty());
    assert_eq!(l.pipes_by_file.keys().collect::<Vec<_>>(), ["a.yaml"]);
}

#[test]
fn syntax_error_skips_only_that_file() {
    let broken = "sources:\n  s: {driver: fs, uri: /broken\n  x: [\n";
    let (_tmp, dir) = config_dir(
        "agent-config",
        &[
            ("a.yaml", SRC_A),
            ("b.yaml", broken),
            ("c.yaml", "agent_id: c\n"),
        ],
    );
    let l = load_agent_dir(&dir, &no_drivers());
    assert_eq!(l.config.sources["s"].uri, "/from-a");
    assert_eq!(l.config.agent_id.as_deref(), Some("c"));
    let errors: Vec<String> = l.errors().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].starts_with("agent-config/b.yaml: YAML syntax error"),
        "{}",
        errors[0]
    );
    assert!(!l.pipes_by_file.contains_key("b.yaml"));
}

#[test]
fn schema_error_ends_the_file_but_keeps_what_it_merged() {
    let yaml = "
sources:
  s: {driver: fs, uri: /d}
senders:
  f: {driver: fusion, uri: u}
pipes:
  z1: {source: s, sender: f}
  a2: {source: s, sender: f, max_consecutive_errors: many}
  m3: {source: s, sender: f}
";
    let after = "sources:\n  later: {driver: fs, uri: /later}\n";
    let (_tmp, dir) = config_dir("agent-config", &[("a.yaml", yaml), ("b.yaml", after)]);
    let l = load_agent_dir(&dir, &no_drivers());
    let c = &l.config;
    // "Earlier" is document order, not id order.
    assert!(c.pipes.contains_key("z1"));
    assert!(!c.pipes.contains_key("a2") && !c.pipes.contains_key("m3"));
    assert!(c.sources.contains_key("later"), "other files still load");
    assert_eq!(l.pipes_by_file["a.yaml"], ["z1"]);
    assert_eq!(
        messages(&l),
        [
            r#"agent-config/a.yaml: pipes.a2.max_consecutive_errors: expected an integer, found string "many""#
        ]
    );
    assert!(l.has_errors());
}

#[test]
fn an_error_in_an_early_section_skips_the_later_sections_of_that_file() {
    let yaml = "
pipes:
  p: {source: s, sender: f}
sources:
  s: {driver: fs}
";
    let (_tmp, dir) = config_dir("agent-config", &[("a.yaml", yaml)]);
    let l = load_agent_dir(&dir, &no_drivers());
    // Sections are processed sources, senders, pipes whatever their order in the file.
    assert!(l.config.pipes.is_empty());
    assert_eq!(
        messages(&l),
        ["agent-config/a.yaml: sources.s.uri: required key is missing"]
    );
}

#[test]
fn malformed_shapes_are_reported() {
    let (_tmp, dir) = config_dir(
        "fusion-config",
        &[
            ("a.yaml", "- just\n- a list\n"),
            ("b.yaml", "views: [v1]\n"),
            ("c.yaml", "port: http\n"),
            ("d.yaml", ""),
            ("e.yaml", "port: 70000\n"),
        ],
    );
    let l = load_fusion_dir(&dir);
    let msgs = messages(&l);
    assert_eq!(msgs.len(), 4, "{msgs:?}");
    assert_eq!(
        msgs[0],
        "fusion-config/a.yaml: expected a mapping at the top level, found a list"
    );
    assert_eq!(
        msgs[1],
        "fusion-config/b.yaml: views: expected a mapping of id to definition, found a list"
    );
    assert_eq!(
        msgs[2],
        r#"fusion-config/c.yaml: port: expected an integer, found string "http""#
    );
    assert!(
        msgs[3].starts_with("fusion-config/e.yaml: port: "),
        "{}",
        msgs[3]
    );
    assert_eq!(l.config.port, DEFAULT_PORT);
    assert!(l.pipes_by_file.contains_key("d.yaml"));
}

#[test]
fn missing_directory_is_created_empty() {
    let tmp = tempfile::tempdir().unwrap();
    let paths = FustorPaths::new(tmp.path());
    let l = load_fusion(&paths);
    assert!(l.diagnostics.is_empty());
    assert!(paths.config_dir(Daemon::Fusion).is_dir());
    assert_eq!(l.config, FusionConfig::default());
    let l = load_agent(&paths, &no_drivers());
    assert!(l.config.pipes.is_empty());
    assert!(tmp.path().join("agent-config").is_dir());
}

#[test]
fn reload_sees_new_files() {
    let (_tmp, dir) = config_dir("agent-config", &[("a.yaml", SRC_A)]);
    let before = load_agent_dir(&dir, &no_drivers()).config.signature();
    write(&dir, "b.yaml", SRC_B);
    let after = load_agent_dir(&dir, &no_drivers()).config;
    assert_eq!(after.sources["s"].uri, "/from-b");
    assert_ne!(before, after.signature());
}

#[test]
fn home_resolution() {
    let cwd = Path::new("/work/dir");
    let user = Path::new("/home/u");
    let home = |v: Option<&str>| resolve_home(v.map(OsStr::new), Some(user), cwd);
    assert_eq!(home(None), Path::new("/home/u/.fustor"));
    assert_eq!(home(Some("")), Path::new("/home/u/.fustor"));
    assert_eq!(home(Some("~/fh")), Path::new("/home/u/fh"));
    assert_eq!(home(Some("~")), Path::new("/home/u"));
    assert_eq!(home(Some("rel/fh")), Path::new("/work/dir/rel/fh"));
    assert_eq!(home(Some("/abs")), Path::new("/abs"));
    let p = FustorPaths::new("/h");
    assert_eq!(p.config_dir(Daemon::Agent), Path::new("/h/agent-config"));
    assert_eq!(p.config_dir(Daemon::Fusion), Path::new("/h/fusion-config"));
    assert_eq!(p.pid_file(Daemon::Fusion), Path::new("/h/fusion.pid"));
    assert_eq!(p.log_file(Daemon::Agent), Path::new("/h/logs/agent.log"));
    assert_eq!(p.agent_state_file(), Path::new("/h/agent-state.json"));
}

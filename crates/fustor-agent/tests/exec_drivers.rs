//! `driver: exec` end to end: the example third-party driver (`examples/drivers/csv_catalog.py`,
//! Python, no Fustor code) feeding a real Fusion through a real agent, and deliberately broken
//! drivers that the agent must kill, restart with backoff and report without going down.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{AgentProc, Cluster, FusionOpts, now};
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// True (skip) without python3 outside CI; in CI its absence fails the test.
fn skip_without_python(test: &str) -> bool {
    let ok = Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return false;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test}: python3 is required in CI"
    );
    println!("SKIPPED: python3 unavailable ({test})");
    true
}

fn write_catalogue(path: &Path, rows: &[(&str, u64, f64)]) {
    let mut s = String::from("path,size,mtime\n");
    for (p, size, mtime) in rows {
        s.push_str(&format!("{p},{size},{mtime}\n"));
    }
    // Replace atomically: the driver never reads a half-written file.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, s).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn exec_source(id: &str, uri: &Path, command: &[&str], extra: &str) -> String {
    let cmd: Vec<String> = command.iter().map(|c| format!("{c:?}")).collect();
    format!(
        "  {id}:\n    driver: exec\n    uri: {uri:?}\n    driver_params:\n      command: [{}]\n{extra}",
        cmd.join(", "),
        uri = uri.display().to_string(),
    )
}

/// The pids of the direct children of `pid`.
fn children_of(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(n) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // Fields after the command (which may hold spaces) start after the last ')'.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        if rest.split_whitespace().nth(1) == Some(&pid.to_string()) {
            out.push(n);
        }
    }
    out
}

fn live_status(agent: &AgentProc) -> Value {
    std::fs::read(agent.home.join("agent-status.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null)
}

fn pipe_status(agent: &AgentProc, pipe: &str) -> Value {
    live_status(agent)["pipes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["id"] == pipe)
        .cloned()
        .unwrap_or(Value::Null)
}

#[test]
fn exec_example_driver_feeds_a_view_and_survives_a_crash() {
    if skip_without_python("exec_example_driver_feeds_a_view_and_survives_a_crash") {
        return;
    }
    let mut c = Cluster::new(FusionOpts::default());
    let csv = c.path("catalogue.csv");
    let t0 = now() - 3600.0;
    write_catalogue(
        &csv,
        &[
            ("data/a.dat", 100, t0),
            ("data/b.dat", 200, t0),
            ("other/c.dat", 300, t0),
        ],
    );
    let script = repo().join("examples/drivers/csv_catalog.py");
    let yaml = format!(
        "agent_id: cat\nsources:\n{}senders:\n  fusion:\n    driver: fusion\n    uri: {:?}\n    credential: {{key: agent-key}}\n\
         pipes:\n  v1:\n    source: cat\n    sender: fusion\n    error_retry_interval: 0.5\n    max_backoff_seconds: 2\n",
        exec_source(
            "cat",
            &csv,
            &["python3", script.to_str().unwrap()],
            "      config: {poll_interval_s: 0.1}\n      ping_interval_s: 1\n      restart_delay_s: 0.2\n",
        ),
        c.fusion.recv_url(),
    );
    let home = c.path("agent-cat");
    c.agents
        .push(AgentProc::start_yaml(&home, "cat", &yaml, None));
    c.wait_ready("v1", 30.0);

    // The snapshot: every catalogue row, under directories the view builds.
    let a = c.wait_present("v1", "/data/a.dat", 10.0);
    assert_eq!(a["size"], 100, "{a}");
    c.wait_present("v1", "/other/c.dat", 5.0);
    let dir = c.fusion.node("v1", "/data");
    assert_eq!(dir.status, 200, "{}", dir.body);

    // Changes: a modified row, a removed row, a new row.
    let t1 = now() - 60.0;
    write_catalogue(
        &csv,
        &[
            ("data/a.dat", 150, t1),
            ("other/c.dat", 300, t0),
            ("data/new.dat", 7, t1),
        ],
    );
    c.wait_node("v1", "/data/a.dat", "modified row", 10.0, |r| {
        r.body["size"] == 150
    });
    c.wait_absent("v1", "/data/b.dat", 10.0);
    let n = c.wait_present("v1", "/data/new.dat", 10.0);
    assert_eq!(n["size"], 7, "{n}");

    // A crash: the agent restarts the driver and recovers what changed meanwhile (this driver
    // has no positions, so its snapshot is replayed as changes).
    let agent_pid = c.agents[0].pid();
    let drivers = children_of(agent_pid);
    assert_eq!(drivers.len(), 1, "one driver process: {drivers:?}");
    let killed = Command::new("kill")
        .args(["-9", &drivers[0].to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    write_catalogue(
        &csv,
        &[
            ("data/a.dat", 150, t1),
            ("other/c.dat", 300, t0),
            ("data/new.dat", 7, t1),
            ("late.dat", 9, t1),
        ],
    );
    c.wait_present("v1", "/late.dat", 15.0);
    c.wait("a new driver process", 5.0, || {
        let now = children_of(agent_pid);
        (now.len() == 1 && now[0] != drivers[0]).then_some(())
    });
    assert!(c.agents[0].alive());
    let log = c.agents[0].log();
    assert!(log.contains("exec driver problem"), "{log}");
    assert!(
        log.contains("serving 3 catalogue rows"),
        "driver stderr in the log: {log}"
    );
}

#[test]
fn exec_broken_drivers_are_killed_restarted_and_reported() {
    if skip_without_python("exec_broken_drivers_are_killed_restarted_and_reported") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let broken = repo().join("crates/fustor-agent/tests/drivers/broken.py");
    let broken = broken.to_str().unwrap();
    let limits = "      handshake_timeout_s: 1.5\n      reply_timeout_s: 1.5\n      ping_interval_s: 0.5\n      \
                  restart_delay_s: 0.2\n      max_restart_delay_s: 5\n      max_line_bytes: 65536\n";
    let modes = ["garbage", "huge", "hang", "silent", "crash", "flood"];
    let mut sources = String::new();
    let mut pipes = String::new();
    for m in modes {
        // One uri each: definitions with the same driver and uri share one running source.
        sources.push_str(&exec_source(
            m,
            &tmp.path().join(m),
            &["python3", broken, m],
            &format!("{limits}    max_queue_size: 10\n"),
        ));
        pipes.push_str(&format!("  p-{m}:\n    source: {m}\n    sender: echo\n"));
    }
    let yaml = format!(
        "agent_id: broken\nsources:\n{sources}senders:\n  echo:\n    driver: echo\n    uri: \"echo://\"\npipes:\n{pipes}"
    );
    let started = Instant::now();
    let mut agent = AgentProc::start_yaml(&tmp.path().join("home"), "broken", &yaml, None);
    let expect = [
        ("garbage", "not a protocol message"),
        ("huge", "longer than 65536 bytes"),
        ("hang", "no pong within"),
        ("silent", "no handshake within"),
        ("crash", "the driver exited"),
    ];
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let missing: Vec<_> = expect
            .iter()
            .filter(|(m, why)| {
                !pipe_status(&agent, &format!("p-{m}"))["source_problem"]
                    .as_str()
                    .is_some_and(|p| p.contains(why))
            })
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not reported: {missing:?}\nstatus: {}\nlog: {}",
            live_status(&agent),
            agent.log_tail(60)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Let the crash loop run a while: it backs off (0.2, 0.4, 0.8, 1.6, 3.2, 5 s ...).
    std::thread::sleep(Duration::from_secs(6).saturating_sub(started.elapsed()));
    assert!(agent.alive(), "the agent went down: {}", agent.log_tail(40));
    let log = agent.log();
    let crash_starts = log
        .lines()
        .filter(|l| l.contains("exec driver started") && l.contains("broken.py crash"))
        .count();
    let secs = started.elapsed().as_secs_f64();
    assert!(
        (3..=12).contains(&crash_starts),
        "{crash_starts} starts of the crash loop in {secs:.1} s"
    );
    // The driver's stderr is in the log, its control character escaped.
    assert!(log.contains("crashing on purpose"), "{log}");
    assert!(!log.contains('\u{1b}'), "raw escape character in the log");
    // The flooding driver is still running (back-pressured, not killed), and the agent's
    // memory stays bounded.
    assert!(
        pipe_status(&agent, "p-flood")["source_problem"].is_null(),
        "{}",
        pipe_status(&agent, "p-flood")
    );
    let rss = fustor_testkit::proc_status_mb(agent.pid() as u32, "VmRSS");
    assert!(rss < 300.0, "agent RSS {rss} MB under a flooding driver");
    agent.stop();
}

/// An fs source into an exec sender: snapshot rows, then a realtime change, reach the driver.
#[test]
fn exec_sender_receives_snapshot_and_changes() {
    if skip_without_python("exec_sender_receives_snapshot_and_changes") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    common::write(&data.join("a.txt"), b"hello");
    let out = tmp.path().join("received.jsonl");
    let script = repo().join("crates/fustor-agent/tests/drivers/jsonl_sender.py");
    let yaml = format!(
        "agent_id: s\nsources:\n  src:\n    driver: fs\n    uri: {data:?}\n    driver_params: {{throttle_interval_sec: 0.1}}\n\
         senders:\n  out:\n    driver: exec\n    uri: {out:?}\n    driver_params:\n      command: [\"python3\", {script:?}]\n\
         pipes:\n  p:\n    source: src\n    sender: out\n    error_retry_interval: 0.5\n",
        data = data.display().to_string(),
        out = out.display().to_string(),
        script = script.display().to_string(),
    );
    let mut agent = AgentProc::start_yaml(&tmp.path().join("home"), "s", &yaml, None);
    let received = |path: &str, source_type: &str| {
        std::fs::read_to_string(&out)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .any(|v| v["path"] == path && v["source_type"] == source_type)
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !received("/a.txt", "snapshot") {
        assert!(
            Instant::now() < deadline,
            "no snapshot row: {}",
            agent.log_tail(30)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    common::write(&data.join("b.txt"), b"x");
    while !received("/b.txt", "message") {
        assert!(
            Instant::now() < deadline,
            "no realtime row: {}",
            agent.log_tail(30)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(agent.alive());
    agent.stop();
}

/// `fustor-agent drivers` lists the registered drivers; `--test` runs a source's connection
/// test (the example driver's handshake, and a failing one).
#[test]
fn drivers_subcommand_lists_and_tests() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(common::AGENT_BIN)
            .arg("--home")
            .arg(tmp.path())
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["drivers"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let line = |name: &str, section: &str| {
        text.split(section)
            .nth(1)
            .and_then(|s| s.lines().find(|l| l.trim_start().starts_with(name)))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
    };
    assert_eq!(
        line("fs ", "Source drivers:").as_deref(),
        Some("fs yes yes yes yes yes no"),
        "{text}"
    );
    assert!(
        line("exec ", "Source drivers:").is_some_and(|l| l.contains("declared by the executable")),
        "{text}"
    );
    assert_eq!(
        line("fusion ", "Sender drivers:").as_deref(),
        Some("fusion yes yes yes"),
        "{text}"
    );
    assert!(line("exec ", "Sender drivers:").is_some(), "{text}");

    if skip_without_python("drivers_subcommand_lists_and_tests") {
        return;
    }
    let csv = tmp.path().join("c.csv");
    write_catalogue(&csv, &[("x", 1, 1.0)]);
    let script = repo().join("examples/drivers/csv_catalog.py");
    let broken = repo().join("crates/fustor-agent/tests/drivers/broken.py");
    let yaml = format!(
        "sources:\n{}{}senders:\n  e:\n    driver: echo\n    uri: \"echo://\"\npipes:\n  p:\n    source: good\n    sender: e\n",
        exec_source("good", &csv, &["python3", script.to_str().unwrap()], ""),
        exec_source(
            "bad",
            &tmp.path().join("bad"),
            &["python3", broken.to_str().unwrap(), "crash"],
            "      handshake_timeout_s: 2\n"
        ),
    );
    std::fs::create_dir_all(tmp.path().join("agent-config")).unwrap();
    std::fs::write(tmp.path().join("agent-config/default.yaml"), yaml).unwrap();
    let ok = run(&["drivers", "--test", "good"]);
    let text = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "{text}");
    assert!(text.contains("connection OK"), "{text}");
    assert!(text.contains("modified_time"), "declared fields: {text}");
    let bad = run(&["drivers", "--test", "bad"]);
    let text = String::from_utf8_lossy(&bad.stdout);
    assert_eq!(bad.status.code(), Some(1), "{text}");
    assert!(text.contains("connection FAILED"), "{text}");
}

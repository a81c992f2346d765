//! S73 (and S41 through an agent): one real agent on a real directory, real Fusion.
//! Snapshot baseline, realtime create / modify / delete / rename / mkdir -p, and a burst
//! through a tiny event bus (overflow ⇒ targeted rescans, nothing lost).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Cluster, FusionOpts, now, write};

#[test]
fn s73_realtime_create_modify_delete() {
    let mut c = Cluster::new(FusionOpts {
        audit_interval: 0.0,
        ..FusionOpts::default()
    });
    let data = c.dir("data");
    write(&data.join("pre/old.txt"), b"old");
    filetime(&data.join("pre/old.txt"), now() - 3600.0);
    let cfg = c.agent_cfg("a", &data);
    c.start_agent(&cfg);
    c.wait_ready("v1", 30.0);

    // S41: snapshot rows are known to an agent; an old file is not suspect.
    let old = c.wait_present("v1", "/pre/old.txt", 10.0);
    assert_eq!(old["agent_missing"], false, "{old}");
    assert_eq!(old["integrity_suspect"], false, "{old}");
    assert_eq!(old["last_agent_id"], "a", "{old}");
    let s = c.wait("a reports can_realtime", 5.0, || {
        c.fusion
            .session_of("v1", "a")
            .filter(|s| s["can_realtime"] == true)
    });
    assert_eq!(s["role"], "leader", "{s}");

    // Create: close-write ⇒ atomic ⇒ not suspect, known to the agent.
    // (A partial-write row may be seen first; the close follows within the same burst.)
    write(&data.join("t1.txt"), b"x\n");
    let n = c.wait_node("v1", "/t1.txt", "created and closed", 5.0, |r| {
        r.status == 200 && r.body["integrity_suspect"] == false
    });
    assert_eq!(n["size"], 2, "{n}");
    assert_eq!(n["agent_missing"], false, "{n}");

    // Append and close: size and mtime follow.
    let m0 = n["modified_time"].as_f64().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("t1.txt"))
            .unwrap();
        f.write_all(b"more\n").unwrap();
    }
    let n = c.wait_node("v1", "/t1.txt", "appended and closed", 5.0, |r| {
        r.body["size"] == 7 && r.body["integrity_suspect"] == false
    });
    assert!(n["modified_time"].as_f64().unwrap() > m0, "{n}");

    // mkdir -p + a file deep below (directories created under fresh watches).
    write(&data.join("d1/d2/d3/deep.txt"), b"deep");
    let d = c.wait_present("v1", "/d1/d2/d3/deep.txt", 5.0);
    assert_eq!(d["agent_missing"], false, "{d}");
    let dir = c.fusion.node("v1", "/d1/d2").body;
    assert_eq!(dir["content_type"], "directory", "{dir}");

    // Rename into place (temp file + rename): delete(temp) + update(final).
    write(&data.join(".tmp-r"), b"renamed");
    c.wait_present("v1", "/.tmp-r", 5.0);
    std::fs::rename(data.join(".tmp-r"), data.join("final.txt")).unwrap();
    let f = c.wait_present("v1", "/final.txt", 5.0);
    assert_eq!(f["size"], 7, "{f}");
    c.wait_absent("v1", "/.tmp-r", 5.0);

    // Directory rename moves its subtree.
    std::fs::rename(data.join("d1"), data.join("e1")).unwrap();
    c.wait_present("v1", "/e1/d2/d3/deep.txt", 5.0);
    c.wait_absent("v1", "/d1/d2/d3/deep.txt", 5.0);

    // Delete.
    std::fs::remove_file(data.join("t1.txt")).unwrap();
    c.wait_absent("v1", "/t1.txt", 5.0);
    std::fs::remove_dir_all(data.join("e1")).unwrap();
    c.wait_absent("v1", "/e1", 5.0);
    // A realtime delete is not a blind-spot deletion.
    let bs = c.fusion.blind_spots("v1");
    assert_eq!(bs["deletion_count"], 0, "{bs}");

    // Graceful stop closes the session (DELETE) and writes the state file.
    let home = c.agents[0].home.clone();
    c.agents[0].stop();
    c.wait("session closed by the agent's stop", 10.0, || {
        c.fusion.sessions("v1").is_empty().then_some(())
    });
    let state = std::fs::read_to_string(home.join("agent-state.json")).unwrap();
    assert!(state.contains("\"v1\""), "{state}");
}

/// A burst of 3,000 files through a bus of 64 events while the agent is stopped (SIGSTOP), so
/// the ring must overflow when it resumes: the pipe turns the loss into targeted rescans
/// (audits of the affected directories) and the view converges to the exact set; files
/// created while those audits run are not deleted by them (M3 with the audit opened first).
#[test]
fn s73_burst_through_a_tiny_bus_converges() {
    let mut c = Cluster::new(FusionOpts {
        audit_interval: 0.0,
        ..FusionOpts::default()
    });
    let data = c.dir("data");
    let mut cfg = c.agent_cfg("a", &data);
    cfg.source_extra = "    max_queue_size: 64\n".to_string();
    c.start_agent(&cfg);
    c.wait_ready("v1", 30.0);
    let n = 3000;
    let pid = c.agents[0].pid();
    fustor_core::process::signal(pid, rustix::process::Signal::STOP).unwrap();
    for i in 0..n / 2 {
        write(&data.join(format!("b{}/f{i}.txt", i % 7)), b"x");
    }
    fustor_core::process::signal(pid, rustix::process::Signal::CONT).unwrap();
    // The second half races the rescans.
    for i in n / 2..n {
        write(&data.join(format!("b{}/f{i}.txt", i % 7)), b"x");
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while c.fusion.file_count("v1") != Some(n) {
        if std::time::Instant::now() > deadline {
            let bs = c.fusion.blind_spots("v1");
            panic!(
                "view has {:?} of {n} files; blind spots: additions {} deletions {} {:?}{}",
                c.fusion.file_count("v1"),
                bs["additions_count"],
                bs["deletion_count"],
                bs["deletions"]
                    .as_array()
                    .map(|d| d.iter().take(5).cloned().collect::<Vec<_>>()),
                c.diagnostics()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let log = c.agents[0].log();
    assert!(
        log.contains("rescan"),
        "the bus overflowed; a rescan is expected:\n{}",
        c.agents[0].log_tail(30)
    );
}

/// Sets a file's mtime (seconds since the epoch).
pub fn filetime(path: &std::path::Path, mtime: f64) {
    let t = rustix::fs::Timespec {
        tv_sec: mtime as i64,
        tv_nsec: 0,
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        path,
        &rustix::fs::Timestamps {
            last_access: t,
            last_modification: t,
        },
        rustix::fs::AtFlags::empty(),
    )
    .unwrap();
}

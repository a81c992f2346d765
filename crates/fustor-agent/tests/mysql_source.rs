//! The `mysql` source against a real MariaDB (row-based binlog) and a real Fusion: a
//! catalogue table becomes a view through `fields_mapping` (snapshot paged by key), INSERT,
//! UPDATE and DELETE reach it through the binlog, an agent restart resumes from the recorded
//! position without a snapshot, and a purged binlog (position lost) brings a snapshot back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod mariakit;

use common::{AgentProc, Cluster, FusionOpts};
use mariakit::{Maria, agent_yaml, maria_or_skip, state_files};

fn snapshots_sent(a: &AgentProc) -> usize {
    a.log().matches("snapshot sent").count() - a.log().matches("the snapshot is empty").count()
}

#[test]
fn mysql_catalogue_snapshot_binlog_changes_resume_and_position_lost() {
    if !maria_or_skip("mysql_catalogue") {
        return;
    }
    let db = Maria::start();
    db.sql(
        "CREATE DATABASE cat; CREATE TABLE cat.datasets (id INT AUTO_INCREMENT PRIMARY KEY, \
         path VARCHAR(512) NOT NULL, bytes BIGINT, mtime DOUBLE, owner VARCHAR(64)); \
         INSERT INTO cat.datasets (path, bytes, mtime, owner) \
         SELECT CONCAT('run', seq % 10, '/f', seq, '.h5'), seq, 1700000000 + seq, 'lab' FROM cat.seq_1_to_2500;",
    );
    let mut c = Cluster::new(FusionOpts {
        audit_interval: 0.0,
        sentinel_interval: 0.0,
        ..FusionOpts::default()
    });
    let home = c.path("agent-db");
    let yaml = agent_yaml("db", &db.uri("cat"), &c.fusion.recv_url(), 1000);
    c.agents
        .push(AgentProc::start_yaml(&home, "db", &yaml, None));

    // Snapshot: 2,500 rows in three keyset pages.
    c.wait_ready("v1", 30.0);
    c.wait("2500 catalogue rows in the view", 30.0, || {
        (c.fusion.file_count("v1") == Some(2500)).then_some(())
    });
    let f = c.wait_present("v1", "/run7/f7.h5", 5.0);
    assert_eq!(f["size"], 7, "{f}");
    assert_eq!(f["modified_time"], 1_700_000_007.0, "{f}");

    // Binlog changes.
    db.sql("INSERT INTO cat.datasets (path, bytes, mtime) VALUES ('new/one.h5', 11, 1700009999)");
    let n = c.wait_present("v1", "/new/one.h5", 10.0);
    assert_eq!(n["size"], 11, "{n}");
    db.sql("UPDATE cat.datasets SET bytes = 12345 WHERE path = 'run1/f1.h5'");
    c.wait_node("v1", "/run1/f1.h5", "update seen", 10.0, |r| {
        r.body["size"] == 12345
    });
    db.sql("UPDATE cat.datasets SET path = 'moved/f2.h5' WHERE path = 'run2/f2.h5'");
    c.wait_present("v1", "/moved/f2.h5", 10.0);
    c.wait_absent("v1", "/run2/f2.h5", 10.0);
    db.sql("DELETE FROM cat.datasets WHERE path = 'run3/f3.h5'");
    c.wait_absent("v1", "/run3/f3.h5", 10.0);
    assert_eq!(snapshots_sent(&c.agents[0]), 1);

    // Agent crash and restart: the position was saved; the changes made while the agent was
    // down come from the binlog, without a second snapshot (the crashed session kept the view
    // until it timed out, so the view still holds every row).
    c.wait("a saved binlog position", 10.0, || {
        (!state_files(&home).is_empty()).then_some(())
    });
    c.agents[0].kill9();
    db.sql("INSERT INTO cat.datasets (path, bytes, mtime) VALUES ('while/down.h5', 5, 1700010000)");
    db.sql("DELETE FROM cat.datasets WHERE path = 'run4/f4.h5'");
    c.agents[0].spawn();
    c.wait_present("v1", "/while/down.h5", 20.0);
    c.wait_absent("v1", "/run4/f4.h5", 10.0);
    let log = c.agents[0].log();
    assert!(
        log.contains("resuming the binlog from the recorded position"),
        "{log}"
    );
    // The crashed session times out, the new one is promoted and ends its (empty) snapshot.
    c.wait("the resumed leader's empty snapshot", 30.0, || {
        c.agents[0]
            .log()
            .contains("the snapshot is empty")
            .then_some(())
    });
    c.wait("the view ready again", 20.0, || {
        (c.fusion.stats("v1").status == 200).then_some(())
    });
    assert_eq!(
        snapshots_sent(&c.agents[0]),
        1,
        "a resumed source takes no snapshot"
    );
    assert_eq!(c.fusion.file_count("v1"), Some(2500));

    // A clean stop closes the session and Fusion resets the view: the next start snapshots.
    c.agents[0].stop();
    c.agents[0].spawn();
    c.wait("a snapshot after a clean stop", 30.0, || {
        (snapshots_sent(&c.agents[0]) == 2).then_some(())
    });
    c.wait("2500 rows again", 30.0, || {
        (c.fusion.file_count("v1") == Some(2500)).then_some(())
    });

    // Position lost: the agent crashes, the binlog file of its position is purged ⇒ snapshot.
    c.wait("the position saved", 10.0, || {
        state_files(&home)
            .iter()
            .any(|f| {
                !std::fs::read_to_string(f)
                    .unwrap_or_default()
                    .contains("clean")
            })
            .then_some(())
    });
    c.agents[0].kill9();
    db.sql("FLUSH BINARY LOGS");
    let current = db.current_binlog();
    db.sql(&format!("PURGE BINARY LOGS TO '{current}'"));
    db.sql(
        "INSERT INTO cat.datasets (path, bytes, mtime) VALUES ('after/purge.h5', 6, 1700010001)",
    );
    c.agents[0].spawn();
    c.wait_present("v1", "/after/purge.h5", 30.0);
    c.wait("a third snapshot", 30.0, || {
        (snapshots_sent(&c.agents[0]) == 3).then_some(())
    });
    assert!(c.agents[0].log().contains("needed_position_lost"));
    c.wait("2501 rows after the new snapshot", 30.0, || {
        (c.fusion.file_count("v1") == Some(2501)).then_some(())
    });
    // And the binlog goes on after it.
    db.sql("DELETE FROM cat.datasets WHERE path = 'after/purge.h5'");
    c.wait_absent("v1", "/after/purge.h5", 10.0);
}

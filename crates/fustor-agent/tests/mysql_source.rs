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
    // The saved position is in this file or an earlier one. A plain PURGE could keep it: the
    // server keeps a file that a replica reads, and the killed agent's dump thread may still
    // be registered under load (the agent would then resume instead of snapshotting).
    let saved_in = db.current_binlog();
    db.purge_binlogs_through(&saved_in);
    // Counted from here: this run's snapshots only.
    let before = snapshots_sent(&c.agents[0]);
    db.sql(
        "INSERT INTO cat.datasets (path, bytes, mtime) VALUES ('after/purge.h5', 6, 1700010001)",
    );
    c.agents[0].spawn();
    c.wait_present("v1", "/after/purge.h5", 30.0);
    c.wait("a third snapshot", 30.0, || {
        (snapshots_sent(&c.agents[0]) == before + 1).then_some(())
    });
    let log = c.agents[0].log();
    assert!(log.contains("needed_position_lost"), "{log}");
    c.wait("2501 rows after the new snapshot", 30.0, || {
        (c.fusion.file_count("v1") == Some(2501)).then_some(())
    });
    // And the binlog goes on after it.
    db.sql("DELETE FROM cat.datasets WHERE path = 'after/purge.h5'");
    c.wait_absent("v1", "/after/purge.h5", 10.0);
}

fn status_text(a: &AgentProc) -> String {
    fustor_testkit::output_text(&a.cli(&["status"]))
}

fn catalogue(db: &Maria) {
    db.sql(
        "CREATE DATABASE cat; CREATE TABLE cat.datasets (id INT AUTO_INCREMENT PRIMARY KEY, \
         path VARCHAR(512) NOT NULL, bytes BIGINT, mtime DOUBLE, owner VARCHAR(64)); \
         INSERT INTO cat.datasets (path, bytes, mtime, owner) \
         SELECT CONCAT('d', seq % 10, '/f', seq), seq, 1700000000 + seq, 'lab' FROM cat.seq_1_to_300;",
    );
}

/// An agent that starts while its database is down keeps its mysql source: the problem shows
/// in the pipe status, the server is retried, and the rows flow once it is up.
#[test]
fn mysql_server_unreachable_at_start_is_retried() {
    if !maria_or_skip("mysql_unreachable_at_start") {
        return;
    }
    let mut db = Maria::start();
    catalogue(&db);
    db.shutdown();
    let mut c = Cluster::new(FusionOpts {
        audit_interval: 0.0,
        sentinel_interval: 0.0,
        ..FusionOpts::default()
    });
    let home = c.path("agent-down");
    let yaml = agent_yaml("down", &db.uri("cat"), &c.fusion.recv_url(), 100);
    c.agents
        .push(AgentProc::start_yaml(&home, "down", &yaml, None));
    c.wait("two failed connections in the log", 30.0, || {
        (c.agents[0]
            .log()
            .matches("mysql source cannot start")
            .count()
            >= 2)
            .then_some(())
    });
    let status = c.wait("the problem in the pipe status", 15.0, || {
        let s = status_text(&c.agents[0]);
        s.contains("source problem: mysql").then_some(s)
    });
    assert!(status.contains("v1"), "{status}");
    assert!(c.agents[0].alive(), "the agent must not exit");

    db.boot();
    c.wait("300 rows once the server is up", 60.0, || {
        (c.fusion.file_count("v1") == Some(300)).then_some(())
    });
    db.sql("INSERT INTO cat.datasets (path, bytes, mtime) VALUES ('late/one', 1, 1700009999)");
    c.wait_present("v1", "/late/one", 15.0);
    c.wait("the problem cleared", 15.0, || {
        (!status_text(&c.agents[0]).contains("source problem")).then_some(())
    });
    assert!(c.agents[0].log().contains("mysql server reached"));
}

/// The binlog the running agent needs is purged (its replica connection dropped meanwhile):
/// the change stream reports needed_position_lost instead of retrying forever, continues from
/// the server's position, and the pipe takes a new snapshot; changes flow on after it.
#[test]
fn mysql_binlog_purged_while_running_brings_a_snapshot() {
    if !maria_or_skip("mysql_purged_while_running") {
        return;
    }
    let db = Maria::start();
    catalogue(&db);
    let mut c = Cluster::new(FusionOpts {
        audit_interval: 0.0,
        sentinel_interval: 0.0,
        ..FusionOpts::default()
    });
    let home = c.path("agent-purge");
    let yaml = agent_yaml("purge", &db.uri("cat"), &c.fusion.recv_url(), 100);
    c.agents
        .push(AgentProc::start_yaml(&home, "purge", &yaml, None));
    c.wait_ready("v1", 30.0);
    c.wait("300 rows", 30.0, || {
        (c.fusion.file_count("v1") == Some(300)).then_some(())
    });
    db.sql("INSERT INTO cat.datasets (path, bytes, mtime) VALUES ('before/purge', 1, 1700009998)");
    c.wait_present("v1", "/before/purge", 15.0);
    assert_eq!(snapshots_sent(&c.agents[0]), 1);

    let reading = db.current_binlog();
    db.purge_binlogs_through(&reading);
    db.sql("INSERT INTO cat.datasets (path, bytes, mtime) VALUES ('after/purge', 2, 1700009999)");
    c.wait("needed_position_lost in the log", 30.0, || {
        c.agents[0]
            .log()
            .contains("needed_position_lost: the binlog file of the position is purged")
            .then_some(())
    });
    c.wait("a second snapshot in the running agent", 30.0, || {
        (snapshots_sent(&c.agents[0]) == 2).then_some(())
    });
    c.wait_present("v1", "/after/purge", 15.0);
    assert_eq!(c.fusion.file_count("v1"), Some(302));
    db.sql("DELETE FROM cat.datasets WHERE path = 'd1/f1'");
    c.wait_absent("v1", "/d1/f1", 15.0);
}

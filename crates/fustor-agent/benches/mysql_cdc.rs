//! `driver: mysql` figures for docs/performance.md: the real `fustor-agent` binary on a local
//! MariaDB (row-based binlog) into a real Fusion.
//!
//! ```text
//! cargo bench -p fustor-agent --bench mysql_cdc
//! ROWS=200000 TRIALS=200 cargo bench -p fustor-agent --bench mysql_cdc
//! ```
//!
//! Prints: `fustor-agent start` → every row of a ROWS-row table in the view (snapshot rows/s,
//! keyset pages of 1,000), and TRIALS single-row INSERTs, each timed from the committed
//! statement to the path answering 200 on `/tree` (binlog → bus → Fusion; p50/p99).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/mariakit/mod.rs"]
mod mariakit;

use std::time::{Duration, Instant};

use common::{AgentProc, Cluster, FusionOpts};
use mariakit::{Maria, agent_yaml};

fn main() {
    if !mariakit::maria_or_skip("mysql_cdc bench") {
        return;
    }
    let rows = fustor_testkit::env_usize("ROWS", 200_000);
    let trials = fustor_testkit::env_usize("TRIALS", 200);
    let db = Maria::start();
    db.sql(&format!(
        "CREATE DATABASE cat; CREATE TABLE cat.datasets (id INT AUTO_INCREMENT PRIMARY KEY, \
         path VARCHAR(512) NOT NULL, bytes BIGINT, mtime DOUBLE); \
         INSERT INTO cat.datasets (path, bytes, mtime) \
         SELECT CONCAT('run', seq % 100, '/f', seq, '.h5'), seq, 1700000000 + seq FROM cat.seq_1_to_{rows};"
    ));
    let mut c = Cluster::new(FusionOpts {
        audit_interval: 0.0,
        sentinel_interval: 0.0,
        session_timeout: 30,
        ..FusionOpts::default()
    });
    let yaml = agent_yaml("db", &db.uri("cat"), &c.fusion.recv_url(), 1000);
    let t = Instant::now();
    c.agents.push(AgentProc::start_yaml(
        &c.path("agent-db"),
        "db",
        &yaml,
        None,
    ));
    c.wait("every row in the view", 1800.0, || {
        (c.fusion.file_count("v1") == Some(rows as u64)).then_some(())
    });
    let all = t.elapsed().as_secs_f64();
    println!(
        "agent start -> view holds all {rows} rows: {all:.2} s ({:.0} rows/s)",
        rows as f64 / all
    );

    let mut lat = Vec::with_capacity(trials);
    for i in 0..trials {
        let path = format!("/lat/r{i}.h5");
        db.sql(&format!(
            "INSERT INTO cat.datasets (path, bytes, mtime) VALUES ('lat/r{i}.h5', 1, 1700000000)"
        ));
        let t = Instant::now();
        loop {
            if c.fusion.node("v1", &path).status == 200 {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "{path} never arrived"
            );
            std::thread::sleep(Duration::from_micros(200));
        }
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    lat.sort_by(f64::total_cmp);
    let q = |p: f64| lat[((lat.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "binlog change -> visible in /tree, {trials} INSERTs: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        q(0.5),
        q(0.9),
        q(0.99),
        q(1.0)
    );
}

//! `driver: s3` figures for docs/performance.md: the real `fustor-agent` binary listing a
//! bucket of OBJECTS objects (default 100,000) on a local moto_server into a real Fusion.
//!
//! ```text
//! cargo bench -p fustor-agent --bench s3_listing
//! OBJECTS=10000 cargo bench -p fustor-agent --bench s3_listing
//! ```
//!
//! Prints: the upload rate (setup), the server's own listing pace with a bare client (the
//! ceiling), `fustor-agent start` → every object in the view (objects/s), and the time for a
//! create and a delete to reach the view with `poll_interval_sec: 1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/s3kit/mod.rs"]
mod s3kit;

use std::time::Instant;

use common::{AgentProc, Cluster, FusionOpts};
use s3kit::{KEY_ID, Moto, SECRET, agent_yaml};

fn main() {
    if !s3kit::moto_or_skip("s3_listing bench") {
        return;
    }
    let n = fustor_testkit::env_usize("OBJECTS", 100_000);
    let moto = Moto::start();
    moto.create_bucket("bench");
    let b = moto.bucket("bench");
    let t = Instant::now();
    b.put_many(
        (0..n).map(|i| format!("d{:03}/k{i:07}", i % 100)).collect(),
        32,
    );
    let up = t.elapsed().as_secs_f64();
    println!(
        "upload (setup): {n} objects in {up:.1} s ({:.0}/s)",
        n as f64 / up
    );
    let (listed, secs) = b.count(None);
    assert_eq!(listed, n);
    println!(
        "bare client listing: {listed} keys in {secs:.2} s ({:.0} keys/s) — the server's pace",
        listed as f64 / secs
    );

    let mut c = Cluster::new(FusionOpts {
        audit_interval: 0.0,
        sentinel_interval: 0.0,
        session_timeout: 30,
        ..FusionOpts::default()
    });
    let yaml = agent_yaml(
        "s3",
        &moto.endpoint(),
        "bench",
        "",
        &c.fusion.recv_url(),
        (KEY_ID, SECRET),
    )
    .replace("poll_interval_sec: 0.5", "poll_interval_sec: 1");
    let t = Instant::now();
    c.agents.push(AgentProc::start_yaml(
        &c.path("agent-s3"),
        "s3",
        &yaml,
        None,
    ));
    let mut ready = None;
    c.wait("every object in the view", 1800.0, || {
        if ready.is_none() && c.fusion.stats("v1").status == 200 {
            ready = Some(t.elapsed().as_secs_f64());
        }
        (c.fusion.file_count("v1") == Some(n as u64)).then_some(())
    });
    let all = t.elapsed().as_secs_f64();
    println!(
        "agent start -> view holds all {n}: {all:.2} s ({:.0} objects/s; view ready at {:.2} s; \
         includes the baseline listing the snapshot waits for)",
        n as f64 / all,
        ready.unwrap_or(all)
    );
    let t = Instant::now();
    b.put("d000/zz-new", b"new");
    c.wait_present("v1", "/d000/zz-new", 600.0);
    println!(
        "create -> visible with {n} keys, poll 1 s: {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    b.delete("d000/zz-new");
    c.wait_absent("v1", "/d000/zz-new", 600.0);
    println!(
        "delete -> gone with {n} keys, poll 1 s: {:.2} s",
        t.elapsed().as_secs_f64()
    );
}

//! S85 (hot-add a pipe), S86 (hot-remove it), S87 (unchanged reload) with `fustor-agent reload`
//! against a running agent and a real Fusion with views v1 and v2.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Cluster, FusionOpts, write};

#[test]
fn s85_s86_s87_hot_add_remove_and_unchanged_reload() {
    let mut c = Cluster::new(FusionOpts {
        audit_interval: 0.0,
        ..FusionOpts::default()
    });
    let data = c.dir("data");
    let extra = c.dir("extra");
    write(&data.join("one.txt"), b"1");
    write(&extra.join("sub/two.txt"), b"2");
    let cfg = c.agent_cfg("a", &data);
    c.start_agent(&cfg);
    c.wait_ready("v1", 30.0);
    let sid1 = c.fusion.session_of("v1", "a").unwrap()["session_id"].clone();
    let reload = |c: &Cluster| {
        let out = c.agents[0].cli(&["reload"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(text.contains("Reload signal sent"), "{text}");
    };

    // S87: nothing changed ⇒ nothing happens.
    reload(&c);
    c.wait("unchanged reload logged", 5.0, || {
        c.agents[0]
            .log()
            .contains("configuration unchanged")
            .then_some(())
    });
    assert_eq!(c.fusion.session_of("v1", "a").unwrap()["session_id"], sid1);

    // S85: a second file adds source, sender (key of pipe v2) and pipe v2.
    let extra_yaml = format!(
        "sources:\n  extra: {{driver: fs, uri: {:?}}}\nsenders:\n  fusion2: {{driver: fusion, uri: {:?}, credential: {{key: agent-key-2}}}}\npipes:\n  v2: {{source: extra, sender: fusion2}}\n",
        extra.display().to_string(),
        c.fusion.recv_url()
    );
    let extra_file = c.agents[0].home.join("agent-config/extra.yaml");
    std::fs::write(&extra_file, &extra_yaml).unwrap();
    reload(&c);
    let s2 = c.wait("a session of A on v2", 10.0, || {
        c.fusion.session_of("v2", "a")
    });
    assert_eq!(s2["role"], "leader", "{s2}");
    c.wait_ready("v2", 10.0);
    c.wait_present("v2", "/sub/two.txt", 5.0);
    write(&extra.join("three.txt"), b"3");
    c.wait_present("v2", "/three.txt", 5.0);
    // v1 untouched.
    assert_eq!(c.fusion.session_of("v1", "a").unwrap()["session_id"], sid1);

    // S86: the pipe is removed (its source and sender stay defined) ⇒ DELETE, promptly.
    std::fs::write(
        &extra_file,
        extra_yaml.replace("pipes:\n  v2: {source: extra, sender: fusion2}\n", ""),
    )
    .unwrap();
    reload(&c);
    c.wait("v2 session gone", 5.0, || {
        c.fusion.sessions("v2").is_empty().then_some(())
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        c.fusion.session_of("v1", "a").unwrap()["session_id"],
        sid1,
        "v1 keeps its session"
    );
    write(&data.join("still.txt"), b"s");
    c.wait_present("v1", "/still.txt", 5.0);
    assert!(c.agents[0].alive());
}

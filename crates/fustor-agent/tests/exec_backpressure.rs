//! A flooding exec driver is back-pressured: with a pipe that does not consume, the source's
//! bus fills to its capacity and stops there (nothing dropped, nothing buffered beyond it, the
//! driver blocked on its own write); once the pipe consumes, the flow resumes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use fustor_agent::exec::{ExecParams, ExecSource};
use fustor_agent::source::Source;
use fustor_core::config::{DriverParams, SourceConfig};

#[test]
fn exec_flooding_driver_is_back_pressured_by_a_full_bus() {
    if !Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "python3 is required in CI"
        );
        println!("SKIPPED: python3 unavailable");
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/drivers/broken.py");
    let yaml = format!(
        "driver: exec\nuri: flood\nmax_queue_size: 50\ndriver_params:\n  command: [python3, {:?}, flood]\n  ping_interval_s: 0.2\n  reply_timeout_s: 1\n",
        script.display().to_string()
    );
    let cfg: SourceConfig = serde_norway::from_str(&yaml).unwrap();
    let params = ExecParams::from_params(&cfg.driver_params).unwrap();
    let src = ExecSource::start(&cfg, params).unwrap();
    let bus = src.bus().clone();
    bus.subscribe("slow");
    std::thread::sleep(Duration::from_secs(1));
    let before = bus.stats();
    std::thread::sleep(Duration::from_secs(2));
    let after = bus.stats();
    assert_eq!(after.buffered, 50, "{after:?}");
    assert_eq!(after.dropped, 0, "{after:?}");
    assert!(
        after.puts <= before.puts + 1,
        "still flowing: {before:?} → {after:?}"
    );
    // Blocked on the agent, the driver is not taken for hung (pings wait behind its rows).
    assert!(src.realtime_ok(), "{:?}", src.problem());
    assert_eq!(src.problem(), None);

    // The pipe consumes: the flow resumes, still without drops.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut consumed = 0;
    while consumed < 500 {
        assert!(
            Instant::now() < deadline,
            "flow did not resume: {:?}",
            bus.stats()
        );
        let f = bus.try_fetch("slow", 100).unwrap();
        if let Some(last) = f.last_seq() {
            consumed += f.events.len();
            bus.commit("slow", last).unwrap();
        } else {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    assert_eq!(bus.stats().dropped, 0);
    drop(src);
}

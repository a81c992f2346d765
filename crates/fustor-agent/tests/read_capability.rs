//! What the packaged unit relies on (`deploy/systemd/fustor-agent.service`): an agent run as an
//! unprivileged user with only `CAP_DAC_READ_SEARCH` (ambient, bounding set reduced to it)
//! syncs a tree it could not otherwise read (a root-owned 0700 directory), while the same user
//! without the capability cannot list it.
//!
//! `setpriv` (util-linux) sets the user and capabilities as systemd's `User=` and
//! `AmbientCapabilities=` do. Needs root to drop to another user: without root (or setpriv) the
//! test skips with a note, except under CI (`CI=true`), where that is a failure.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};

use common::{Cluster, FusionOpts, write};

const NOBODY: &str = "65534";

struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn can_run() -> bool {
    let root = rustix::process::geteuid().is_root();
    let setpriv = Command::new("setpriv")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if root && setpriv {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI runs as root with setpriv (util-linux); root={root} setpriv={setpriv}"
    );
    eprintln!("SKIP: needs root and setpriv (root={root}, setpriv={setpriv})");
    false
}

fn setpriv(caps: bool) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args([
        &format!("--reuid={NOBODY}"),
        &format!("--regid={NOBODY}"),
        "--clear-groups",
    ]);
    if caps {
        cmd.args([
            "--inh-caps=+dac_read_search",
            "--ambient-caps=+dac_read_search",
            "--bounding-set=-all,+dac_read_search",
        ]);
    }
    cmd.arg("--");
    cmd
}

#[test]
fn agent_with_only_cap_dac_read_search_syncs_an_unreadable_tree() {
    if !can_run() {
        return;
    }
    let c = Cluster::new(FusionOpts::default());
    let data = c.dir("data");
    write(&data.join("locked/sub/secret.txt"), b"s");
    write(&data.join("open.txt"), b"o");
    std::fs::set_permissions(data.join("locked"), std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::set_permissions(
        data.join("locked/sub"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    // The premise: without the capability that user cannot list the locked directory.
    let denied = setpriv(false)
        .arg("ls")
        .arg(data.join("locked/sub"))
        .output()
        .unwrap();
    assert!(
        !denied.status.success(),
        "nobody could list a 0700 root dir"
    );

    let cfg = c.agent_cfg("capa", &data);
    let home = c.path("agent-capa");
    std::fs::create_dir_all(home.join("agent-config")).unwrap();
    std::fs::write(home.join("agent-config/default.yaml"), cfg.yaml()).unwrap();
    let (uid, gid) = (Some(65534), Some(65534));
    for p in [&home, &home.join("agent-config")] {
        std::os::unix::fs::chown(p, uid, gid).unwrap();
    }
    // A copy of the binary that user may execute, as in S81.
    let bin = c.path("fustor-agent");
    std::fs::copy(env!("CARGO_BIN_EXE_fustor-agent"), &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(c.tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let child = setpriv(true)
        .arg(&bin)
        .arg("--home")
        .arg(&home)
        .args(["start", "--no-console-log"])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _agent = Guard(child);
    c.wait_ready("v1", 30.0);
    c.wait_present("v1", "/open.txt", 10.0);
    c.wait_present("v1", "/locked/sub/secret.txt", 10.0);
}

//! Checks both daemons' command lines share: the packaging ships what `completions` and `man`
//! print, and log tests read a daemon's stderr while it runs.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;

/// `bin completions SHELL` names `program` and its subcommands and start's options for every
/// shell; an unknown shell fails.
pub fn assert_completions(bin: &str, program: &str) {
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(bin)
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}: {out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains(program), "{shell}");
        for sub in ["start", "stop", "reload", "status"] {
            assert!(text.contains(sub), "{shell} completion lacks {sub}");
        }
        assert!(
            text.contains("allow-empty"),
            "{shell} completion lacks start's options"
        );
    }
    let out = Command::new(bin)
        .args(["completions", "nosuchshell"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

/// `bin man DIR` writes a page for `program` and one per subcommand (roff, dashes escaped),
/// but none for the hidden `completions`.
pub fn assert_man_pages(bin: &str, program: &str, dir: &Path) {
    let out = Command::new(bin).arg("man").arg(dir).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let escaped = program.replace('-', "\\-");
    let page = std::fs::read_to_string(dir.join(format!("{program}.1"))).unwrap();
    assert!(page.starts_with(".ie") || page.contains(".TH"), "{page}");
    assert!(page.contains(&escaped), "{page}");
    let start = std::fs::read_to_string(dir.join(format!("{program}-start.1"))).unwrap();
    assert!(start.contains("allow\\-empty"), "{start}");
    assert!(!dir.join(format!("{program}-completions.1")).exists());
}

/// Spawns `cmd` with stderr on a pipe drained by a thread (a full pipe would block the
/// daemon's logging); join the handle after the child ends to get all of it.
pub fn spawn_reading_stderr(cmd: &mut Command) -> (Child, JoinHandle<String>) {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        pipe.read_to_string(&mut text).unwrap();
        text
    });
    (child, reader)
}

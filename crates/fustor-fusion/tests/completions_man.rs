//! Shell completions and man pages come from the clap definition (hidden `completions SHELL`
//! and `man DIR` subcommands); the Debian package ships what they print.
#![allow(clippy::unwrap_used)]

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_fustor-fusion");

#[test]
fn completions_for_every_shell_name_the_subcommands() {
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(BIN)
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}: {out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains("fustor-fusion"), "{shell}");
        for sub in ["start", "stop", "reload", "status"] {
            assert!(text.contains(sub), "{shell} completion lacks {sub}");
        }
        assert!(
            text.contains("allow-empty"),
            "{shell} completion lacks start's options"
        );
    }
    let out = Command::new(BIN)
        .args(["completions", "nosuchshell"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn man_pages_for_the_command_and_each_subcommand() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .arg("man")
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let page = std::fs::read_to_string(tmp.path().join("fustor-fusion.1")).unwrap();
    assert!(page.starts_with(".ie") || page.contains(".TH"), "{page}");
    assert!(page.contains("fustor\\-fusion"), "{page}");
    let start = std::fs::read_to_string(tmp.path().join("fustor-fusion-start.1")).unwrap();
    assert!(start.contains("allow\\-empty"), "{start}");
    assert!(!tmp.path().join("fustor-fusion-completions.1").exists());
}

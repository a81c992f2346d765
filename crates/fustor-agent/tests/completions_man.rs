//! Shell completions and man pages come from the clap definition (hidden `completions SHELL`
//! and `man DIR` subcommands); the Debian package ships what they print.
#![allow(clippy::unwrap_used)]

use fustor_testkit::cli::{assert_completions, assert_man_pages};

const BIN: &str = env!("CARGO_BIN_EXE_fustor-agent");

#[test]
fn completions_for_every_shell_name_the_subcommands() {
    assert_completions(BIN, "fustor-agent");
}

#[test]
fn man_pages_for_the_command_and_each_subcommand() {
    let tmp = tempfile::tempdir().unwrap();
    assert_man_pages(BIN, "fustor-agent", tmp.path());
}

//! Shell completions and man pages, generated from the same clap definition as the parser so
//! they cannot drift from it. Both binaries expose them as hidden subcommands (`completions
//! SHELL`, `man DIR`); the Debian package build runs them (`tests/package/build.sh`).

use std::io::{self, Write};
use std::path::Path;

pub use clap_complete::Shell;

/// Writes the completion script for `shell` to stdout.
pub fn completions(mut cmd: clap::Command, shell: Shell) -> io::Result<()> {
    let name = cmd.get_name().to_string();
    let mut out = io::stdout().lock();
    clap_complete::generate(shell, &mut cmd, name, &mut out);
    out.flush()
}

/// Writes `<bin>.1` and one `<bin>-<subcommand>.1` per visible subcommand into `dir`, so
/// `man fustor-fusion-start` documents `-p` too; returns how many pages were written.
pub fn man_pages(cmd: clap::Command, dir: &Path) -> io::Result<usize> {
    std::fs::create_dir_all(dir)?;
    clap_mangen::generate_to(cmd, dir)?;
    let pages = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "1"))
        .count();
    Ok(pages)
}

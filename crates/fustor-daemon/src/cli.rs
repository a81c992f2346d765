//! What both binaries' command lines share: the version string and the reading of the
//! reference's short flags.

use std::ffi::OsString;

/// `0.1.0 (git 1a2b3c4)`: the package version and the revision it was built from, so a bug
/// report names the exact build (`unknown` outside a git checkout, e.g. from a crate archive).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (git ",
    env!("FUSTOR_GIT_REV"),
    ")"
);

/// The arguments with the Python reference's `start -h HOST` read as `start --host HOST`.
///
/// `-h` and `-V` are help and version everywhere (issue 13); the reference used `-h` for the
/// bind address and `-V` for debug logs. A value after `-h` cannot mean help, so scripts written
/// for the reference (`fustor-fusion start -h 0.0.0.0 -p 8101`) keep working, with a note on
/// stderr. `-V` has no such reading and prints the version (`-v` is debug logging).
pub fn compat_args(args: impl IntoIterator<Item = OsString>, bin: &str) -> Vec<OsString> {
    let mut args: Vec<OsString> = args.into_iter().collect();
    let Some(start) = args.iter().position(|a| a == "start") else {
        return args;
    };
    for i in start + 1..args.len() {
        if args[i] == "--" {
            break;
        }
        let value_follows = args
            .get(i + 1)
            .and_then(|v| v.to_str())
            .is_some_and(|v| !v.starts_with('-'));
        if args[i] == "-h" && value_follows {
            eprintln!(
                "{bin}: `start -h HOST` is read as `start --host HOST`; -h alone prints help"
            );
            args[i] = OsString::from("--host");
        }
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    #[test]
    fn h_with_a_value_is_the_host_and_alone_is_help() {
        assert_eq!(
            compat_args(v(&["f", "start", "-h", "0.0.0.0", "-p", "1"]), "f"),
            v(&["f", "start", "--host", "0.0.0.0", "-p", "1"])
        );
        assert_eq!(
            compat_args(v(&["f", "start", "-h"]), "f"),
            v(&["f", "start", "-h"])
        );
        assert_eq!(
            compat_args(v(&["f", "start", "-h", "-D"]), "f"),
            v(&["f", "start", "-h", "-D"])
        );
        assert_eq!(
            compat_args(v(&["f", "status", "-h"]), "f"),
            v(&["f", "status", "-h"])
        );
        assert_eq!(
            compat_args(v(&["f", "start", "--", "-h", "x"]), "f"),
            v(&["f", "start", "--", "-h", "x"])
        );
        assert!(VERSION.contains("(git "));
    }
}

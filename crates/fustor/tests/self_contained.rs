//! `cargo test --workspace` must pass in a fresh clone: no test may read files outside the
//! repository (the developers' shared spec tree is not part of a clone).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n != "target") {
                rust_files(&p, out);
            }
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn no_test_reads_outside_the_repository() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    rust_files(&crates, &mut files);
    assert!(
        files.len() > 20,
        "crates not found from {}",
        crates.display()
    );
    // Built from pieces so that this file does not match itself.
    let escapes = [
        ["/..", "/..", "/../"].concat(),
        ["shared", "/seeds"].concat(),
        ["shared", "/spec"].concat(),
    ];
    let offenders: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let text = std::fs::read_to_string(f).ok()?;
            escapes
                .iter()
                .any(|e| text.contains(e.as_str()))
                .then(|| f.display().to_string())
        })
        .collect();
    assert!(
        offenders.is_empty(),
        "these sources refer to paths outside the repository: {offenders:?}"
    );
}

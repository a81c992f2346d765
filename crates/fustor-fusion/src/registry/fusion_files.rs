//! The files of `fusion-config/` as the admin API sees them (issue 15, item 5): read with the
//! loader's own selection, validated as a whole set by the loader and checks `check-config`
//! runs, written atomically. Everything here is blocking file work: call it off the async
//! threads.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use fustor_core::config::{Diagnostic, KeyPath};
use serde::{Deserialize, Serialize};

use super::configs::{Problem, line_of};
use super::keys;

/// Longest file accepted through the API (a configuration file is a few kilobytes).
pub const MAX_FILE_BYTES: usize = 256 * 1024;
const MAX_NAME_CHARS: usize = 128;

/// One configuration file: its name in `fusion-config/` and its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDoc {
    pub name: String,
    pub yaml: String,
}

/// A name the loader reads (`*.yaml`) that cannot leave the directory nor hide (`.x.yaml`).
pub fn valid_file_name(name: &str) -> bool {
    let Some(stem) = name.strip_suffix(".yaml") else {
        return false;
    };
    !stem.is_empty()
        && name.chars().count() <= MAX_NAME_CHARS
        && !stem.starts_with('.')
        && stem
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The ETag of the whole set: one digest over every file's name and text, in name order, so
/// an edit of any file (through the API or on disk) changes it.
pub fn set_digest(files: &[FileDoc]) -> String {
    let mut bytes = Vec::new();
    for f in files {
        for part in [f.name.as_bytes(), f.yaml.as_bytes()] {
            bytes.extend_from_slice(&(part.len() as u64).to_le_bytes());
            bytes.extend_from_slice(part);
        }
    }
    keys::hex(&keys::sha256(&bytes))
}

/// The files the loader reads: `*.yaml`, regular files, sorted by name (`load.rs`). A file that
/// is not UTF-8 is an error: the API could not show it faithfully.
pub fn read_set(dir: &Path) -> io::Result<Vec<FileDoc>> {
    let mut files = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(files),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let path = entry?.path();
        if !(path.extension().is_some_and(|e| e == "yaml") && path.is_file()) {
            continue;
        }
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let yaml = fs::read_to_string(&path)?;
        files.push(FileDoc {
            name: name.to_string(),
            yaml,
        });
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

/// `files` with `name` replaced (or added), or removed when `text` is `None`.
pub fn with_change(files: &[FileDoc], name: &str, text: Option<&str>) -> Vec<FileDoc> {
    let mut out: Vec<FileDoc> = files.iter().filter(|f| f.name != name).cloned().collect();
    if let Some(t) = text {
        out.push(FileDoc {
            name: name.to_string(),
            yaml: t.to_string(),
        });
        out.sort_by(|a, b| a.name.cmp(&b.name));
    }
    out
}

/// Writes a file so a reader (the loader at SIGHUP) sees either the old or the new text: a
/// hidden temporary file (not `*.yaml`, so never loaded) synced, then renamed over.
/// The file keeps the mode of the one it replaces (configuration files hold keys: a `0640`
/// file must not come back `0644`); a new file is `0600`.
pub fn write_atomic(dir: &Path, name: &str, text: &str) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{name}.tmp"));
    let target = dir.join(name);
    let _ = fs::remove_file(&tmp);
    {
        let mut f = create_private(&tmp)?;
        if let Ok(meta) = fs::metadata(&target) {
            f.set_permissions(meta.permissions())?;
        }
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    fs::rename(&tmp, &target)?;
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// A new file readable by the owner only (truncated if it exists).
fn create_private(path: &Path) -> io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

/// Puts one file back as it was (`None`: it did not exist).
pub fn restore(dir: &Path, name: &str, before: Option<&str>) -> io::Result<()> {
    match before {
        Some(t) => write_atomic(dir, name, t),
        None => match fs::remove_file(dir.join(name)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        },
    }
}

/// The check directory: in the data directory, never inside `fusion-config/` (it would be
/// loaded). A leading `.` keeps it apart from view directories, whose names never start with
/// one (`persist::view_dir` escapes it).
fn staging_dir(config_dir: &Path) -> PathBuf {
    crate::persist::default_root(config_dir).join(".fusion-config-check")
}

/// Validates a candidate set exactly as `fustor-fusion check-config` would see it on disk:
/// the set is written to a scratch directory and loaded with the daemon's own `load`. Only
/// called under the API's write lock, so one scratch directory suffices.
pub fn validate_set(
    config_dir: &Path,
    args: &[String],
    files: &[FileDoc],
) -> io::Result<Vec<Problem>> {
    let dir = staging_dir(config_dir);
    if dir.exists() {
        fs::remove_dir_all(&dir)?;
    }
    fs::create_dir_all(&dir)?;
    for f in files {
        create_private(&dir.join(&f.name))?.write_all(f.yaml.as_bytes())?;
    }
    let (_, _, diags) = crate::daemon::load(&dir, args);
    let _ = fs::remove_dir_all(&dir);
    Ok(diags
        .iter()
        .filter(|d| d.fails_check())
        .map(|d| problem(d, files))
        .collect())
}

fn problem(d: &Diagnostic, files: &[FileDoc]) -> Problem {
    let name = d
        .file
        .as_deref()
        .and_then(Path::file_name)
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    let text = files.iter().find(|f| f.name == name).map(|f| &f.yaml);
    let line = text.and_then(|t| locate(d, t));
    Problem {
        file: name,
        key: d.path.to_string(),
        line,
        message: d.message.clone(),
    }
}

/// The line of a diagnostic in its file: a syntax error's own line, else its key's line (an
/// unknown key at the key itself rather than its parent).
fn locate(d: &Diagnostic, text: &str) -> Option<usize> {
    if d.path.is_empty() {
        if !d.message.starts_with("YAML syntax error") {
            return None;
        }
        return serde_norway::from_str::<serde_norway::Value>(text)
            .err()
            .and_then(|e| e.location())
            .map(|l| l.line());
    }
    let unknown: Option<KeyPath> = d
        .message
        .strip_prefix("unknown key \"")
        .and_then(|r| r.split_once('"'))
        .map(|(k, _)| d.path.clone().key(k));
    unknown
        .and_then(|p| line_of(text, &p))
        .or_else(|| line_of(text, &d.path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_in_the_directory() {
        for ok in ["default.yaml", "views-2.yaml", "a.b.yaml"] {
            assert!(valid_file_name(ok), "{ok}");
        }
        for bad in [
            ".yaml",
            ".hidden.yaml",
            "../x.yaml",
            "a/b.yaml",
            "x.yml",
            "x",
            "x.yaml.tmp",
        ] {
            assert!(!valid_file_name(bad), "{bad}");
        }
    }

    #[test]
    fn the_set_digest_changes_with_any_file() {
        let a = vec![FileDoc {
            name: "a.yaml".into(),
            yaml: "x: 1\n".into(),
        }];
        let b = with_change(&a, "b.yaml", Some(""));
        assert_ne!(set_digest(&a), set_digest(&b));
        assert_eq!(set_digest(&with_change(&b, "b.yaml", None)), set_digest(&a));
        // Name and text boundaries are part of the digest.
        let c = vec![FileDoc {
            name: "a.yamlx".into(),
            yaml: ": 1\n".into(),
        }];
        assert_ne!(set_digest(&a), set_digest(&c));
    }
}

//! Crash-safe file primitives: atomic replace and directory sync.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Makes a rename or a new file in `dir` durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes `path` through a temporary file, fsync and rename, then syncs the directory: a crash
/// leaves either the old file or the new one, never a mix.
pub fn replace_atomically(
    path: &Path,
    write: impl FnOnce(&mut std::io::BufWriter<File>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let tmp = tmp_path(path);
    let file = File::create(&tmp)?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    let result = write(&mut w).and_then(|()| w.flush());
    let file = match result.and_then(|()| w.into_inner().map_err(|e| e.into_error())) {
        Ok(f) => f,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    finish_replace(file, &tmp, path)
}

/// The second half of [`replace_atomically`], for writers that flush under a lock and sync
/// after releasing it.
pub fn finish_replace(file: File, tmp: &Path, path: &Path) -> std::io::Result<()> {
    file.sync_all()?;
    drop(file);
    std::fs::rename(tmp, path)?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

pub fn tmp_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

/// Moves damaged files aside (kept for inspection, never read again) into `dir/corrupt-<ts>/`.
pub fn quarantine(dir: &Path, files: &[PathBuf]) -> Option<PathBuf> {
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let target = dir.join(format!("corrupt-{ts}"));
    std::fs::create_dir_all(&target).ok()?;
    for f in files {
        if let Some(name) = f.file_name() {
            let _ = std::fs::rename(f, target.join(name));
        }
    }
    let _ = sync_dir(dir);
    Some(target)
}

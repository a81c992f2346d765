//! Row building (`agent-runtime.md` §10.1–10.2).
//!
//! Paths travel in two forms: the absolute agent path as raw bytes (to reopen the entry) and the
//! reported path relative to the root, in the lossless in-memory form of `fustor_core::lossless`
//! (undecodable bytes are kept, never replaced by U+FFFD, so `caf\xe9` and `caf\xe8` stay two
//! files). Every row is built from a `stat` structure so that scans, realtime and
//! on-demand produce identical rows.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use fustor_core::FsRow;
use fustor_core::lossless::{escape, unescape};
use rustix::fs::{AtFlags, CWD, FileType, Stat};
use rustix::io::Errno;

/// The part of `stat` that becomes a row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Meta {
    pub mtime: f64,
    pub ctime: f64,
    pub size: u64,
    pub is_dir: bool,
    /// Owner, group and permission bits (issue 14): extra row keys the Python Fusion ignores.
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

impl Meta {
    // The field types differ between architectures, hence the casts.
    #[allow(clippy::unnecessary_cast)]
    pub fn from_stat(st: &Stat) -> Self {
        let mtime = st.st_mtime as f64 + st.st_mtime_nsec as f64 * 1e-9;
        let ctime = st.st_ctime as f64 + st.st_ctime_nsec as f64 * 1e-9;
        Meta {
            mtime,
            ctime,
            size: u64::try_from(st.st_size).unwrap_or(0),
            is_dir: FileType::from_raw_mode(st.st_mode) == FileType::Directory,
            uid: st.st_uid as u32,
            gid: st.st_gid as u32,
            mode: st.st_mode as u32 & 0o7777,
        }
    }

    pub fn row(&self, rel: String) -> FsRow {
        let file_name = file_name_of(&rel).to_string();
        FsRow {
            path: Some(rel),
            file_name: Some(file_name),
            size: Some(self.size),
            modified_time: Some(self.mtime),
            created_time: Some(self.ctime),
            is_directory: Some(self.is_dir),
            uid: Some(self.uid),
            gid: Some(self.gid),
            mode: Some(self.mode),
            uname: crate::owners::user_name(self.uid),
            gname: crate::owners::group_name(self.gid),
            ..Default::default()
        }
    }
}

/// `""` for the root, the last component otherwise.
pub fn file_name_of(rel: &str) -> &str {
    if rel == "/" {
        ""
    } else {
        rel.rsplit('/').next().unwrap_or("")
    }
}

/// The reported path of a child of the directory reported as `parent`.
pub fn join_rel(parent: &str, name: &[u8]) -> String {
    let name = escape(name);
    let mut s = String::with_capacity(parent.len() + 1 + name.len());
    if parent != "/" {
        s.push_str(parent);
    }
    s.push('/');
    s.push_str(&name);
    s
}

/// `"/" + relpath(abs, root)`; `None` when `abs` is not under `root`.
pub fn rel_path(root: &Path, abs: &Path) -> Option<String> {
    let rest = abs.strip_prefix(root).ok()?;
    let bytes = rest.as_os_str().as_bytes();
    let mut s = String::with_capacity(bytes.len() + 1);
    s.push('/');
    s.push_str(&escape(bytes));
    // `strip_prefix` keeps a trailing separator when `abs` had one.
    while s.len() > 1 && s.ends_with('/') {
        s.pop();
    }
    Some(s)
}

/// The agent path of a reported path (`"/a/b"` → `root/a/b`), with the raw bytes behind it.
pub fn abs_of(root: &Path, rel: &str) -> PathBuf {
    let raw = unescape(rel);
    let rest = raw.strip_prefix(b"/").unwrap_or(&raw);
    let rest = rest
        .iter()
        .position(|&b| b != b'/')
        .map_or(&[][..], |i| &rest[i..]);
    root.join(OsStr::from_bytes(rest))
}

/// Vanished entries (`ENOENT`, or a path component that is no longer a directory) are normal
/// during a walk and yield no row.
pub fn is_vanished(e: Errno) -> bool {
    e == Errno::NOENT || e == Errno::NOTDIR
}

/// Stats an absolute path following symlinks (§10.2). `Ok(None)` when the path vanished.
pub fn stat_path(abs: &Path) -> io::Result<Option<Meta>> {
    match rustix::fs::statat(CWD, abs, AtFlags::empty()) {
        Ok(st) => Ok(Some(Meta::from_stat(&st))),
        Err(e) if is_vanished(e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The row of `abs` as reported under `root`, or `None` if it vanished or is outside the root.
pub fn row_for(root: &Path, abs: &Path) -> io::Result<Option<FsRow>> {
    let Some(rel) = rel_path(root, abs) else {
        return Ok(None);
    };
    Ok(stat_path(abs)?.map(|m| m.row(rel)))
}

/// Agent wall-clock seconds.
pub fn epoch_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rel_paths() {
        let root = Path::new("/mnt/share");
        assert_eq!(rel_path(root, root).as_deref(), Some("/"));
        assert_eq!(
            rel_path(root, Path::new("/mnt/share/a/b")).as_deref(),
            Some("/a/b")
        );
        assert_eq!(rel_path(root, Path::new("/mnt/share2/a")), None);
        assert_eq!(join_rel("/", b"a"), "/a");
        assert_eq!(
            join_rel("/a", b"b\xffc"),
            format!("/a/{}", escape(b"b\xffc"))
        );
        assert_ne!(join_rel("/a", b"caf\xe9"), join_rel("/a", b"caf\xe8"));
        let odd = PathBuf::from("/mnt/share").join(OsStr::from_bytes(b"x\xfe"));
        let rel = rel_path(root, &odd).unwrap();
        assert_eq!(unescape(&rel).as_ref(), b"/x\xfe");
        assert_eq!(abs_of(root, &rel), odd);
        assert_eq!(abs_of(root, "/"), root);
        assert_eq!(file_name_of("/"), "");
        assert_eq!(file_name_of("/a/b.txt"), "b.txt");
    }

    #[test]
    fn rows_from_disk() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::write(root.join("f.txt"), b"hello").unwrap();
        let bad = root.join(OsStr::from_bytes(b"bad\xffname"));
        std::fs::write(&bad, b"xy").unwrap();

        let r = row_for(root, root).unwrap().unwrap();
        assert_eq!(r.path.as_deref(), Some("/"));
        assert_eq!(r.file_name.as_deref(), Some(""));
        assert_eq!(r.is_directory, Some(true));

        let f = row_for(root, &root.join("f.txt")).unwrap().unwrap();
        assert_eq!(f.path.as_deref(), Some("/f.txt"));
        assert_eq!(f.file_name.as_deref(), Some("f.txt"));
        assert_eq!(f.size, Some(5));
        assert_eq!(f.is_directory, Some(false));
        let md = std::fs::metadata(root.join("f.txt")).unwrap();
        let want = md
            .modified()
            .unwrap()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!((f.modified_time.unwrap() - want).abs() < 1e-6);
        assert!(f.created_time.unwrap() > 0.0);
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        std::fs::set_permissions(root.join("f.txt"), std::fs::Permissions::from_mode(0o4640))
            .unwrap();
        let f = row_for(root, &root.join("f.txt")).unwrap().unwrap();
        assert_eq!(f.uid, Some(md.uid()));
        assert_eq!(f.gid, Some(md.gid()));
        assert_eq!(f.mode, Some(0o4640));
        assert_eq!(f.uname, crate::owners::user_name(md.uid()));

        let b = row_for(root, &bad).unwrap().unwrap();
        assert_eq!(
            unescape(b.path.as_deref().unwrap()).as_ref(),
            b"/bad\xffname"
        );
        assert_eq!(b.size, Some(2));
        // On the wire the byte is a PEP 383 escape, as the Python agent sends it.
        let wire = fustor_core::lossless::to_vec(&b).unwrap();
        assert!(String::from_utf8(wire).unwrap().contains(r"bad\udcffname"));

        assert!(row_for(root, &root.join("gone")).unwrap().is_none());
    }
}

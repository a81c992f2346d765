//! `file_pattern`: a glob on file basenames (`configuration.md` §2.1).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use globset::{GlobBuilder, GlobMatcher};

use crate::error::FsError;

/// Matches basenames the way Python's `fnmatch` does on POSIX: case-sensitive, `*` also matches
/// leading dots, and `\` is an ordinary character. `*` (the default) matches without running the
/// glob engine at all.
#[derive(Debug, Clone, Default)]
pub struct FilePattern {
    matcher: Option<GlobMatcher>,
}

impl FilePattern {
    pub fn new(pattern: &str) -> Result<Self, FsError> {
        if pattern.is_empty() || pattern == "*" {
            return Ok(Self::default());
        }
        let glob = GlobBuilder::new(pattern)
            .literal_separator(false)
            .backslash_escape(false)
            .build()
            .map_err(|source| FsError::Pattern {
                pattern: pattern.to_string(),
                source,
            })?;
        Ok(Self {
            matcher: Some(glob.compile_matcher()),
        })
    }

    /// Takes raw bytes so that names which are not UTF-8 are matched as they are on disk.
    pub fn matches(&self, name: &[u8]) -> bool {
        match &self.matcher {
            None => true,
            Some(m) => m.is_match(Path::new(OsStr::from_bytes(name))),
        }
    }

    pub fn matches_all(&self) -> bool {
        self.matcher.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnmatch_like() {
        let p = FilePattern::new("*.txt").unwrap();
        assert!(p.matches(b"a.txt"));
        assert!(p.matches(b".hidden.txt"));
        assert!(!p.matches(b"a.TXT"));
        assert!(!p.matches(b"a.txt.bak"));
        assert!(p.matches(b"bad\xff.txt"));
        assert!(FilePattern::new("*").unwrap().matches(b"anything"));
        assert!(
            FilePattern::new("data_[0-9]?.csv")
                .unwrap()
                .matches(b"data_1x.csv")
        );
        assert!(FilePattern::new("a[").is_err());
    }
}

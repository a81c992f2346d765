//! Path normalisation shared by both daemons.
//!
//! Agents report paths relative to their source root with a leading `/` (`agent-runtime.md`
//! §10.1) so that several agents mounting one share at different places produce the same keys.
//! Fusion normalises again (rule N of `consistency.md` §2) because it must not trust its peers:
//! a `..` component, a NUL byte or an absurd length is rejected instead of being "fixed", since a
//! silently rewritten key would alias another file (`pitfalls.md` item 4).

use std::borrow::Cow;

use crate::lossless::raw_len;

/// Longest accepted path in bytes (Linux `PATH_MAX`).
pub const MAX_PATH_BYTES: usize = 4096;
/// Longest accepted path component in bytes (Linux `NAME_MAX`).
pub const MAX_NAME_BYTES: usize = 255;

/// Why a path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("path contains a NUL byte")]
    Nul,
    #[error("path contains a '..' component")]
    ParentComponent,
    #[error("path is {0} bytes long; the limit is {MAX_PATH_BYTES}")]
    TooLong(usize),
    #[error("a path component is {0} bytes long; the limit is {MAX_NAME_BYTES}")]
    NameTooLong(usize),
}

/// Normalises an agent-supplied path into the view's key form.
///
/// Returns `Ok(None)` for an empty path (the row is skipped, rule N). Otherwise the result starts
/// with `/`, has no empty or `.` components and no trailing `/` (except the root itself).
/// Already-normal input is returned borrowed, which is the common case on the ingest hot path.
pub fn normalize_path(p: &str) -> Result<Option<Cow<'_, str>>, PathError> {
    if p.is_empty() {
        return Ok(None);
    }
    if p.len() > MAX_PATH_BYTES && raw_len(p) > MAX_PATH_BYTES {
        return Err(PathError::TooLong(raw_len(p)));
    }
    if p.as_bytes().contains(&0) {
        return Err(PathError::Nul);
    }
    let mut normal = p.starts_with('/');
    for (i, comp) in p.split('/').enumerate() {
        match comp {
            ".." => return Err(PathError::ParentComponent),
            "" if i == 0 => {}
            "" | "." => normal = false,
            // Limits count the file system's bytes, not the in-memory escapes.
            c if c.len() > MAX_NAME_BYTES && raw_len(c) > MAX_NAME_BYTES => {
                return Err(PathError::NameTooLong(raw_len(c)));
            }
            _ => {}
        }
    }
    if p == "/" {
        return Ok(Some(Cow::Borrowed(p)));
    }
    if normal {
        return Ok(Some(Cow::Borrowed(p)));
    }
    let mut out = String::with_capacity(p.len() + 1);
    for comp in p.split('/') {
        if comp.is_empty() || comp == "." {
            continue;
        }
        out.push('/');
        out.push_str(comp);
    }
    if out.is_empty() {
        out.push('/');
    }
    Ok(Some(Cow::Owned(out)))
}

/// Normalises a path given in a query string (`query-api.md` §3.1).
///
/// Queries are not agent input, so `..` is resolved like POSIX `normpath` instead of refused.
/// No leading `/` is added: a relative path can never name a node, so `None` is returned for it
/// and the caller answers "not found".
pub fn normalize_query_path(p: &str) -> Option<String> {
    if !p.starts_with('/') || p.as_bytes().contains(&0) {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for comp in p.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return Some("/".to_string());
    }
    let mut out = String::with_capacity(p.len());
    for c in parts {
        out.push('/');
        out.push_str(c);
    }
    Some(out)
}

/// Splits a normalised path into its parent and basename (`"/"` has parent `None`).
pub fn split_parent(path: &str) -> Option<(&str, &str)> {
    if path == "/" {
        return None;
    }
    let idx = path.rfind('/')?;
    let parent = if idx == 0 { "/" } else { &path[..idx] };
    Some((parent, &path[idx + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(p: &str) -> Option<String> {
        normalize_path(p).unwrap().map(|c| c.into_owned())
    }

    #[test]
    fn normal_paths_are_borrowed() {
        assert!(matches!(
            normalize_path("/a/b").unwrap(),
            Some(Cow::Borrowed("/a/b"))
        ));
        assert!(matches!(
            normalize_path("/").unwrap(),
            Some(Cow::Borrowed("/"))
        ));
    }

    #[test]
    fn rule_n_normalises() {
        assert_eq!(n(""), None);
        assert_eq!(n("a/b").as_deref(), Some("/a/b"));
        assert_eq!(n("//a//b/").as_deref(), Some("/a/b"));
        assert_eq!(n("/a/./b/.").as_deref(), Some("/a/b"));
        assert_eq!(n("///").as_deref(), Some("/"));
        assert_eq!(n(".").as_deref(), Some("/"));
    }

    #[test]
    fn hostile_paths_are_rejected() {
        assert_eq!(normalize_path("/a/../etc"), Err(PathError::ParentComponent));
        assert_eq!(normalize_path(".."), Err(PathError::ParentComponent));
        assert_eq!(normalize_path("/a\0b"), Err(PathError::Nul));
        let long = format!("/{}", "x".repeat(5000));
        assert_eq!(normalize_path(&long), Err(PathError::TooLong(5001)));
        let name = format!("/{}", "x".repeat(300));
        assert_eq!(normalize_path(&name), Err(PathError::NameTooLong(300)));
        // Limits are in raw bytes: 255 undecodable bytes are one valid name.
        let latin = format!("/{}", crate::lossless::escape(&[0xE9; 255]));
        assert_eq!(n(&latin).as_deref(), Some(latin.as_str()));
        let latin = format!("/{}", crate::lossless::escape(&[0xE9; 256]));
        assert_eq!(normalize_path(&latin), Err(PathError::NameTooLong(256)));
        // "..." and "..x" are ordinary names.
        assert_eq!(n("/.../..x").as_deref(), Some("/.../..x"));
    }

    #[test]
    fn query_paths_resolve_dots_but_stay_relative() {
        assert_eq!(normalize_query_path("/a/b/../c/").as_deref(), Some("/a/c"));
        assert_eq!(normalize_query_path("/..").as_deref(), Some("/"));
        assert_eq!(normalize_query_path("data"), None);
        assert_eq!(normalize_query_path("/data//x").as_deref(), Some("/data/x"));
    }

    #[test]
    fn split_parent_works() {
        assert_eq!(split_parent("/"), None);
        assert_eq!(split_parent("/a"), Some(("/", "a")));
        assert_eq!(split_parent("/a/b"), Some(("/a", "b")));
    }
}

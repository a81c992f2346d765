//! The `search` pattern (`query-api.md` §3.2) and what the name index can learn from it.

use globset::{Candidate, GlobBuilder, GlobSet, GlobSetBuilder};

use super::nameindex::{Mask, fold_into};

/// Compiled `search` pattern: full-path glob, basename glob, or case-insensitive substring of the
/// basename (`query-api.md` §3.2). `*` matches `/`, as in Python's `fnmatch`.
pub struct SearchPattern {
    glob: Glob,
    lower: String,
    ascii: bool,
    plan: Plan,
}

/// The glob part, specialised for the shapes users type most: a scan of 10 million names must
/// not run a regex per name.
enum Glob {
    /// No metacharacters: equality with the path or the basename.
    Literal(String),
    /// `*suffix` with a literal suffix (e.g. `*.h5`): the path ends with it iff the name does,
    /// or the suffix contains `/` and only the path can.
    Suffix(String),
    /// A one-glob `GlobSet` (it still picks prefix/extension strategies where it can).
    Set(GlobSet),
    /// Not a valid glob (e.g. an unclosed `[`): only the substring test applies.
    Invalid,
}

fn has_meta(s: &str) -> bool {
    s.bytes().any(|b| matches!(b, b'*' | b'?' | b'['))
}

/// Rewrites an `fnmatch` pattern for globset: runs of `*` become one `*` (fnmatch has no `**`;
/// with `*` matching `/` the two are equal, while globset's `/**/` would also match zero
/// directories), and braces are literal (fnmatch has no alternation).
fn fnmatch_to_glob(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut prev_star = false;
    for c in pattern.chars() {
        match c {
            '*' if prev_star => continue,
            '{' => out.push_str("[{]"),
            '}' => out.push_str("[}]"),
            c => out.push(c),
        }
        prev_star = c == '*';
    }
    out
}

impl SearchPattern {
    pub fn new(pattern: &str) -> Self {
        let after_stars = pattern.trim_start_matches('*');
        let glob = if !has_meta(pattern) {
            Glob::Literal(pattern.to_string())
        } else if after_stars.len() < pattern.len() && !has_meta(after_stars) {
            Glob::Suffix(after_stars.to_string())
        } else {
            GlobBuilder::new(&fnmatch_to_glob(pattern))
                .literal_separator(false)
                .backslash_escape(false)
                .build()
                .ok()
                .and_then(|g| GlobSetBuilder::new().add(g).build().ok())
                .map_or(Glob::Invalid, Glob::Set)
        };
        let plan = Plan::of(pattern, &glob);
        SearchPattern {
            glob,
            lower: pattern.to_lowercase(),
            ascii: pattern.is_ascii(),
            plan,
        }
    }

    /// How the name index narrows this pattern.
    pub(crate) fn plan(&self) -> &Plan {
        &self.plan
    }

    pub fn matches(&self, path: &str, name: &str) -> bool {
        self.matches_bytes(path.as_bytes(), name.as_bytes())
    }

    /// Works on bytes so a scan never validates UTF-8 of names that do not match.
    pub fn matches_bytes(&self, path: &[u8], name: &[u8]) -> bool {
        let glob = match &self.glob {
            Glob::Literal(l) => path == l.as_bytes() || name == l.as_bytes(),
            Glob::Suffix(sfx) => path.ends_with(sfx.as_bytes()),
            Glob::Set(g) => {
                use std::os::unix::ffi::OsStrExt;
                fn cand(b: &[u8]) -> Candidate<'_> {
                    Candidate::new(std::path::Path::new(std::ffi::OsStr::from_bytes(b)))
                }
                g.is_match_candidate(&cand(name)) || g.is_match_candidate(&cand(path))
            }
            Glob::Invalid => false,
        };
        glob || self.contains_ci(name)
    }

    fn contains_ci(&self, name: &[u8]) -> bool {
        let needle = self.lower.as_bytes();
        let Some(&first) = needle.first() else {
            return true;
        };
        if self.ascii && name.is_ascii() {
            if name.len() < needle.len() {
                return false;
            }
            let hay = &name[..=name.len() - needle.len()];
            let (lo, up) = (first, first.to_ascii_uppercase());
            let rest = &needle[1..];
            let at = |i: usize| name[i + 1..i + needle.len()].eq_ignore_ascii_case(rest);
            return if lo == up {
                memchr::memchr_iter(lo, hay).any(at)
            } else {
                memchr::memchr2_iter(lo, up, hay).any(at)
            };
        }
        String::from_utf8_lossy(name)
            .to_lowercase()
            .contains(&self.lower)
    }
}

/// A literal piece of a pattern, case-folded, with its index mask.
#[derive(Debug, Clone)]
pub(crate) struct Piece {
    pub folded: Vec<u8>,
    pub mask: Mask,
}

impl Piece {
    fn of(literal: &str) -> Option<Piece> {
        let mut folded = Vec::with_capacity(literal.len());
        fold_into(literal, &mut folded);
        let mask = Mask::of(&folded)?;
        Some(Piece { folded, mask })
    }
}

/// What the index needs to find a superset of a part of the match.
#[derive(Debug, Clone)]
pub(crate) enum Need {
    /// This part can match nothing.
    Never,
    /// Only a scan of every file finds this part's matches.
    Scan,
    /// Every match has one of these pieces (each, in the glob part) in a name: see [`Plan`].
    Pieces(Vec<Piece>),
}

/// How to find the candidates of a pattern without reading every name.
///
/// A file matches when the glob matches its path or its name, or its name contains the pattern
/// case-insensitively. For the glob: a literal run of the pattern that holds no `/` must lie
/// inside one component of any path the glob matches (`*` may span components, a literal
/// cannot), so every piece is in the name of the file or of one of its directories; and a
/// basename match has every piece in the file's own name. For the substring test: the folded
/// name contains the whole folded pattern.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// A pattern without wildcards that is an absolute path: the one file it names.
    pub exact_path: Option<String>,
    /// The glob part (path or basename match), each piece required.
    pub glob: Need,
    /// The substring part (a single piece: the whole pattern).
    pub substring: Need,
}

impl Plan {
    fn of(pattern: &str, glob: &Glob) -> Plan {
        let (exact_path, glob_need) = match glob {
            // Path equality is a lookup; name equality is a case of the substring test.
            Glob::Literal(l) => (l.starts_with('/').then(|| l.clone()), Need::Never),
            Glob::Suffix(sfx) => (None, pieces_need(sfx.split('/'))),
            Glob::Set(_) => (
                None,
                pieces_need(literal_runs(pattern).iter().flat_map(|r| r.split('/'))),
            ),
            Glob::Invalid => (None, Need::Never),
        };
        let substring = if pattern.contains('/') {
            Need::Never
        } else {
            Piece::of(pattern).map_or(Need::Scan, |p| Need::Pieces(vec![p]))
        };
        Plan {
            exact_path,
            glob: glob_need,
            substring,
        }
    }

    /// Whether some part can only be found by reading every name.
    pub fn needs_scan(&self) -> bool {
        matches!(self.glob, Need::Scan) || matches!(self.substring, Need::Scan)
    }
}

/// Pieces long enough to index; a glob without one needs a scan.
fn pieces_need<'a>(runs: impl Iterator<Item = &'a str>) -> Need {
    let mut pieces: Vec<Piece> = runs.filter_map(Piece::of).collect();
    if pieces.is_empty() {
        return Need::Scan;
    }
    // Longest first: usually the rarest, so later pieces can stop early (see `search`).
    pieces.sort_by_key(|p| std::cmp::Reverse(p.folded.len()));
    Need::Pieces(pieces)
}

/// The literal runs of a valid `fnmatch` pattern: what lies between `*`, `?` and `[...]`
/// classes (`[!...]`, `[^...]`, and a `]` right after the opening bracket is a member, as
/// globset reads them). Braces and backslashes are literal here, as in `fnmatch_to_glob`.
fn literal_runs(pattern: &str) -> Vec<&str> {
    let b = pattern.as_bytes();
    let mut runs = Vec::new();
    let (mut i, mut start) = (0, 0);
    while i < b.len() {
        match b[i] {
            b'*' | b'?' => {
                runs.push(&pattern[start..i]);
                i += 1;
                start = i;
            }
            b'[' => {
                runs.push(&pattern[start..i]);
                let mut j = i + 1;
                if j < b.len() && (b[j] == b'!' || b[j] == b'^') {
                    j += 1;
                }
                if j < b.len() && b[j] == b']' {
                    j += 1;
                }
                while j < b.len() && b[j] != b']' {
                    j += 1;
                }
                // An unclosed class made the glob invalid; nothing after it is literal.
                if j >= b.len() {
                    return runs;
                }
                i = j + 1;
                start = i;
            }
            _ => i += 1,
        }
    }
    runs.push(&pattern[start..]);
    runs.retain(|r| !r.is_empty());
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_pattern_semantics() {
        let p = SearchPattern::new("*.log");
        assert!(p.matches("/data/archive/old.log", "old.log"));
        assert!(!p.matches("/data/report.csv", "report.csv"));
        let p = SearchPattern::new("REPORT");
        assert!(p.matches("/data/report.csv", "report.csv"));
        let p = SearchPattern::new("/data/*/old.*");
        assert!(p.matches("/data/archive/old.log", "old.log"));
        let p = SearchPattern::new("**/sample_4[0-9].h5");
        assert!(p.matches("/x/y/sample_42.h5", "sample_42.h5"));
        let p = SearchPattern::new("[!a]*.txt");
        assert!(p.matches("/d/b.txt", "b.txt"));
        // An unparsable glob still works as a substring.
        let p = SearchPattern::new("a[b");
        assert!(p.matches("/x/ya[bz", "ya[bz"));
        let p = SearchPattern::new("*b/c.txt");
        assert!(p.matches("/a/b/c.txt", "c.txt"));
        let p = SearchPattern::new("/data/report.csv");
        assert!(p.matches("/data/report.csv", "report.csv"));
        assert!(!p.matches("/data/report.csvx", "report.csvx"));
        let p = SearchPattern::new("REP");
        assert!(p.matches("/d/xxrEport", "xxrEport"));
        assert!(!p.matches("/d/xxre", "xxre"));
        let p = SearchPattern::new("ÄB");
        assert!(p.matches("/x/xäbx", "xäbx"));
    }

    #[test]
    fn literal_runs_split_at_wildcards_and_classes() {
        assert_eq!(literal_runs("sample_00000123*"), vec!["sample_00000123"]);
        assert_eq!(literal_runs("*/run[0-9]?/x*.h5"), vec!["/run", "/x", ".h5"]);
        assert_eq!(literal_runs("a[]x]bc[!]]def"), vec!["a", "bc", "def"]);
        assert_eq!(literal_runs("{ab}\\c"), vec!["{ab}\\c"]);
    }

    #[test]
    fn plans() {
        let p = SearchPattern::new("/d00000/f000001.dat");
        assert_eq!(p.plan().exact_path.as_deref(), Some("/d00000/f000001.dat"));
        assert!(matches!(p.plan().glob, Need::Never));
        assert!(matches!(p.plan().substring, Need::Never));
        let p = SearchPattern::new("*/run7/sample_00000123*");
        let Need::Pieces(ps) = &p.plan().glob else {
            panic!("pieces expected")
        };
        assert_eq!(ps[0].folded, b"sample_00000123");
        assert_eq!(ps[1].folded, b"run7");
        assert!(matches!(p.plan().substring, Need::Never));
        assert!(SearchPattern::new("*.c").plan().needs_scan());
        assert!(SearchPattern::new("ab").plan().needs_scan());
        assert!(!SearchPattern::new("*.log").plan().needs_scan());
        let p = SearchPattern::new("a[b");
        assert!(matches!(p.plan().glob, Need::Never));
        assert!(matches!(p.plan().substring, Need::Pieces(_)));
    }
}

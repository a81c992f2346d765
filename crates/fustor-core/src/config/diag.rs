//! Diagnostics: what the loader and the validators found, addressed by file and key path.
//!
//! Loading never fails as a whole (a broken file must not take the other files down), so
//! problems are collected as data. Daemons log them, `check-config` prints them and exits
//! non-zero when any is an error.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::de::{FieldError, KeyPath};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Warning,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// The file the problem is in, when it can be attributed to one.
    pub file: Option<PathBuf>,
    /// Key path inside the file (may be empty for file-level problems).
    pub path: KeyPath,
    pub message: String,
    /// A warning that `check-config`/`validate` still refuse: unknown keys. `start` only warns,
    /// so that the extra keys of the Python system's files do not stop a migration.
    pub strict: bool,
}

impl Diagnostic {
    pub fn error(file: Option<&Path>, path: KeyPath, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            file: file.map(Path::to_path_buf),
            path,
            message: message.into(),
            strict: false,
        }
    }

    pub fn warning(file: Option<&Path>, path: KeyPath, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(file, path, message)
        }
    }

    /// A warning at start, an error for `check-config`/`validate` (see [`Diagnostic::strict`]).
    pub fn strict_warning(file: Option<&Path>, path: KeyPath, message: impl Into<String>) -> Self {
        Diagnostic {
            strict: true,
            ..Diagnostic::warning(file, path, message)
        }
    }

    /// Whether `check-config`/`validate` must fail on this.
    pub fn fails_check(&self) -> bool {
        self.is_error() || self.strict
    }

    pub(crate) fn from_field(file: &Path, e: FieldError) -> Self {
        Diagnostic::error(Some(file), e.path(), e.message)
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// `fusion-config/a.yaml`: short enough for a log line, long enough to tell the daemons apart.
    pub fn file_label(&self) -> Option<String> {
        let file = self.file.as_deref()?;
        let name = file.file_name()?.to_string_lossy();
        Some(match file.parent().and_then(Path::file_name) {
            Some(dir) => format!("{}/{name}", dir.to_string_lossy()),
            None => name.into_owned(),
        })
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(label) = self.file_label() {
            write!(f, "{label}: ")?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// A merged configuration plus everything noticed while building it.
#[derive(Debug, Clone, Default)]
pub struct Loaded<T> {
    pub config: T,
    pub diagnostics: Vec<Diagnostic>,
    /// File name (`default.yaml`) → pipe ids it defined, in file order; drives `start <file>`.
    pub pipes_by_file: BTreeMap<String, Vec<String>>,
    /// `"<section>.<id>"` → the file whose definition won; lets validators point at a file.
    pub origins: BTreeMap<String, PathBuf>,
}

impl<T> Loaded<T> {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// Whether `check-config`/`validate` must fail (errors and unknown keys).
    pub fn fails_check(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::fails_check)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }

    pub fn origin(&self, section: &str, id: &str) -> Option<&Path> {
        self.origins
            .get(&format!("{section}.{id}"))
            .map(PathBuf::as_path)
    }
}

//! Keys the schema does not know.
//!
//! serde ignores them, so a typo (`hot_file_treshold`) used to fall back to the default
//! silently. They are reported with the closest known key: as strict warnings, which
//! `check-config`/`validate` refuse and `start` only logs, so that the Python system's files
//! still start. Keys the reference knows but this implementation ignores are tolerated.

use std::path::Path;

use serde_json::{Map, Value};

use super::de::KeyPath;
use super::diag::Diagnostic;

/// The expected shape of a YAML subtree, as far as key names go (types are the schema's job).
/// Drivers describe their `driver_params` with it ([`super::DriverParams::KEYS`]).
#[derive(Debug)]
pub enum Shape {
    /// Anything: a scalar, or a mapping whose keys another part of the code checks.
    Any,
    /// Known to the Python reference but ignored here: accepted with an info line.
    Tolerated,
    /// A mapping with exactly these keys (scalars or lists at this place are left to serde).
    Keys(&'static [(&'static str, Shape)]),
    /// A mapping from free ids to entries of one shape (`sources`, `pipes`, ...).
    Ids(&'static Shape),
    /// A list of entries of one shape.
    List(&'static Shape),
    /// `driver_params`: the keys depend on the sibling `driver` (default given) and are those
    /// its driver declares ([`DriverShapes`]); unknown drivers are not checked.
    DriverParams {
        section: DriverSection,
        default_driver: Option<&'static str>,
    },
}

/// Which kind of driver a `driver_params` belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriverSection {
    Source,
    Sender,
    View,
}

/// Where the key shapes of drivers' `driver_params` come from: the agent's registered drivers,
/// or Fusion's built-in view drivers.
pub(crate) trait DriverShapes {
    fn shape(&self, section: DriverSection, driver: &str) -> Option<&Shape>;
}

/// Fusion's view drivers, whose parameters are still described here.
pub(crate) struct ViewShapes;

impl DriverShapes for ViewShapes {
    fn shape(&self, section: DriverSection, driver: &str) -> Option<&Shape> {
        match (section, driver) {
            (DriverSection::View, "fs" | "forest-fs") => Some(&FS_VIEW_PARAMS),
            _ => None,
        }
    }
}

const LOGGING: Shape = Shape::Keys(&[
    ("level", Shape::Any),
    ("format", Shape::Any),
    ("dir", Shape::Any),
]);

const SOURCE: Shape = Shape::Keys(&[
    ("driver", Shape::Any),
    ("uri", Shape::Any),
    ("credential", Shape::Any),
    ("max_queue_size", Shape::Any),
    ("max_retries", Shape::Any),
    ("retry_delay_sec", Shape::Any),
    ("disabled", Shape::Any),
    (
        "driver_params",
        Shape::DriverParams {
            section: DriverSection::Source,
            default_driver: None,
        },
    ),
]);

const SENDER: Shape = Shape::Keys(&[
    ("driver", Shape::Any),
    ("uri", Shape::Any),
    ("credential", Shape::Any),
    ("batch_size", Shape::Any),
    ("max_retries", Shape::Any),
    ("retry_delay_sec", Shape::Any),
    ("timeout_sec", Shape::Any),
    ("disabled", Shape::Any),
    (
        "driver_params",
        Shape::DriverParams {
            section: DriverSection::Sender,
            default_driver: None,
        },
    ),
]);

const AGENT_PIPE: Shape = Shape::Keys(&[
    ("source", Shape::Any),
    ("sender", Shape::Any),
    ("audit_interval_sec", Shape::Any),
    ("sentinel_interval_sec", Shape::Any),
    ("session_timeout_seconds", Shape::Any),
    ("error_retry_interval", Shape::Any),
    ("max_consecutive_errors", Shape::Any),
    ("backoff_multiplier", Shape::Any),
    ("max_backoff_seconds", Shape::Any),
    ("disabled", Shape::Any),
    ("fields_mapping", Shape::Any),
    // Parsed and dropped by the reference's pipe loader (`configuration.md` §2).
    ("batch_size", Shape::Tolerated),
    ("control_loop_interval", Shape::Tolerated),
]);

/// Top level of an agent file.
pub(crate) const AGENT: Shape = Shape::Keys(&[
    ("agent_id", Shape::Any),
    ("logging", LOGGING),
    ("fs_scan_workers", Shape::Any),
    (
        "registry",
        Shape::Keys(&[("url", Shape::Any), ("key", Shape::Any)]),
    ),
    ("sources", Shape::Ids(&SOURCE)),
    ("senders", Shape::Ids(&SENDER)),
    ("pipes", Shape::Ids(&AGENT_PIPE)),
]);

const API_KEY: Shape = Shape::Keys(&[
    ("key", Shape::Any),
    ("pipe_id", Shape::Any),
    ("fusion_pipe_id", Shape::Any),
]);

const RECEIVER: Shape = Shape::Keys(&[
    ("driver", Shape::Any),
    ("bind_host", Shape::Any),
    ("port", Shape::Any),
    ("disabled", Shape::Any),
    ("api_keys", Shape::List(&API_KEY)),
]);

const FS_VIEW_PARAMS: Shape = Shape::Keys(&[
    ("hot_file_threshold", Shape::Any),
    ("max_tree_items", Shape::Any),
    (
        "consistency",
        Shape::Keys(&[("tombstone_ttl_seconds", Shape::Any)]),
    ),
    (
        "limits",
        Shape::Keys(&[("max_nodes", Shape::Any), ("max_tombstones", Shape::Any)]),
    ),
]);

const VIEW: Shape = Shape::Keys(&[
    ("driver", Shape::Any),
    ("disabled", Shape::Any),
    ("api_keys", Shape::Any),
    (
        "driver_params",
        Shape::DriverParams {
            section: DriverSection::View,
            default_driver: Some("fs"),
        },
    ),
    ("persist", Shape::Any),
    ("persist_dir", Shape::Any),
    ("persist_snapshot_interval_seconds", Shape::Any),
    ("persist_fsync", Shape::Any),
]);

const FUSION_PIPE: Shape = Shape::Keys(&[
    ("receiver", Shape::Any),
    ("views", Shape::Any),
    ("allow_concurrent_push", Shape::Any),
    ("session_timeout_seconds", Shape::Any),
    ("audit_interval_sec", Shape::Any),
    ("sentinel_interval_sec", Shape::Any),
    // Not a Fusion pipe key; `validate_fusion` explains what to do instead.
    ("disabled", Shape::Tolerated),
]);

/// Top level of a Fusion file. `limits`, `tls` and `cors` are checked by Fusion itself, which
/// owns their schemas.
pub(crate) const FUSION: Shape = Shape::Keys(&[
    ("host", Shape::Any),
    ("port", Shape::Any),
    ("session_cleanup_interval", Shape::Any),
    ("logging", LOGGING),
    ("management_api_key", Shape::Any),
    ("limits", Shape::Any),
    ("tls", Shape::Any),
    ("cors", Shape::Any),
    // The registry's admin keys, checked by Fusion (`registry::keys`).
    ("admin_keys", Shape::Any),
    ("receivers", Shape::Ids(&RECEIVER)),
    ("views", Shape::Ids(&VIEW)),
    ("pipes", Shape::Ids(&FUSION_PIPE)),
]);

/// Reports every key of `value` that `shape` does not know.
pub(crate) fn check(
    value: &Value,
    shape: &Shape,
    drivers: &dyn DriverShapes,
    file: &Path,
    out: &mut Vec<Diagnostic>,
) {
    let walker = Walker { drivers, file };
    walker.walk(value, shape, None, &KeyPath::new(), out);
}

struct Walker<'a> {
    drivers: &'a dyn DriverShapes,
    file: &'a Path,
}

impl Walker<'_> {
    fn walk(
        &self,
        value: &Value,
        shape: &Shape,
        parent: Option<&Map<String, Value>>,
        path: &KeyPath,
        out: &mut Vec<Diagnostic>,
    ) {
        let file = self.file;
        match (shape, value) {
            (Shape::Keys(known), Value::Object(m)) => {
                for (k, v) in m {
                    match known.iter().find(|(name, _)| name == k) {
                        Some((_, Shape::Tolerated)) => tracing::info!(
                            key = %path.clone().key(k.as_str()),
                            "key of the Python reference ignored by this implementation"
                        ),
                        Some((_, inner)) => {
                            self.walk(v, inner, Some(m), &path.clone().key(k.as_str()), out)
                        }
                        None => {
                            let names: Vec<&str> = known.iter().map(|(n, _)| *n).collect();
                            out.push(unknown_key(Some(file), path, k, &names));
                        }
                    }
                }
            }
            (Shape::Ids(inner), Value::Object(m)) => {
                for (id, v) in m {
                    self.walk(v, inner, Some(m), &path.clone().key(id.as_str()), out);
                }
            }
            (Shape::List(inner), Value::Array(items)) => {
                for (i, v) in items.iter().enumerate() {
                    self.walk(v, inner, None, &path.clone().index(i), out);
                }
            }
            (
                Shape::DriverParams {
                    section,
                    default_driver,
                },
                _,
            ) => {
                let driver = parent
                    .and_then(|p| p.get("driver"))
                    .and_then(Value::as_str)
                    .or(*default_driver);
                if let Some(inner) = driver.and_then(|d| self.drivers.shape(*section, d)) {
                    self.walk(value, inner, parent, path, out);
                }
            }
            _ => {}
        }
    }
}

/// The strict warning for an unknown `key` under `path`, with the closest of `known`.
///
/// Neither the key nor the path is echoed beyond a bounded length: files may come from
/// anywhere and a 200 KB key must not become a 200 KB log line.
pub fn unknown_key(file: Option<&Path>, path: &KeyPath, key: &str, known: &[&str]) -> Diagnostic {
    let shown: String = key.chars().take(64).collect();
    let ellipsis = if shown.len() < key.len() { "…" } else { "" };
    let msg = match suggest(key, known) {
        Some(s) => format!("unknown key {shown:?}{ellipsis} (did you mean \"{s}\"?)"),
        None => format!(
            "unknown key {shown:?}{ellipsis} (known keys here: {})",
            known.join(", ")
        ),
    };
    Diagnostic::strict_warning(file, path.clone(), msg)
}

/// The known key closest to `key` by edit distance, when close enough to be a typo.
pub fn suggest<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    if key.chars().count() > 128 {
        return None;
    }
    let key_lower = key.to_ascii_lowercase();
    known
        .iter()
        .map(|k| (levenshtein(&key_lower, k), *k))
        .filter(|(d, k)| *d <= (k.len() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_catch_the_typos_of_the_issue() {
        let pipe = ["receiver", "views", "session_timeout_seconds"];
        assert_eq!(
            suggest("session_timeout_secs", &pipe),
            Some("session_timeout_seconds")
        );
        assert_eq!(
            suggest(
                "hot_file_treshold",
                &["hot_file_threshold", "max_tree_items"]
            ),
            Some("hot_file_threshold")
        );
        assert_eq!(
            suggest("throttle_interval_secs", &["throttle_interval_sec"]),
            Some("throttle_interval_sec")
        );
        assert_eq!(suggest("completely_else", &pipe), None);
        assert_eq!(levenshtein("", "abc"), 3);
        assert_eq!(levenshtein("kitten", "sitting"), 3);
    }

    #[test]
    fn long_keys_are_not_echoed_in_full() {
        let d = unknown_key(None, &KeyPath::new(), &"x".repeat(200_000), &["a"]);
        assert!(d.message.len() < 200, "{}", d.message.len());
        assert!(d.strict && !d.is_error());
    }
}

//! Admin keys (`admin_keys` in the Fusion configuration): separate from query and agent keys,
//! kept only as SHA-256 digests in memory and compared in constant time.
//!
//! A configured key is either the plain key or `sha256:<64 hex digits>` (the digest of the key),
//! so a configuration file need not hold a usable admin credential.

use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// One `admin_keys` entry as written in YAML.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct AdminKeyEntry {
    /// Who acts with this key: recorded in the audit log.
    name: String,
    key: String,
}

/// An admin key ready for comparison.
#[derive(Debug, Clone)]
pub struct AdminKey {
    pub name: String,
    digest: [u8; 32],
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminKeyError {
    #[error("admin_keys: {0}")]
    Shape(String),
    #[error("admin_keys[{index}].key: `sha256:` must be followed by 64 hex digits")]
    BadDigest { index: usize },
    #[error("admin_keys[{index}]: name and key must not be empty")]
    Empty { index: usize },
    #[error("admin_keys: name {0:?} is used twice")]
    DuplicateName(String),
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The `admin_keys` of a configuration's unknown-key map (Fusion owns this section, like
/// `limits`). Absent: no admin key, so every admin route answers 401/403.
pub fn from_extra(extra: &Map<String, Value>) -> Result<Vec<AdminKey>, AdminKeyError> {
    let Some(v) = extra.get("admin_keys") else {
        return Ok(Vec::new());
    };
    let entries: Vec<AdminKeyEntry> = serde_json::from_value(v.clone())
        .map_err(|e| AdminKeyError::Shape(format!("a list of {{name, key}} entries: {e}")))?;
    let mut keys: Vec<AdminKey> = Vec::with_capacity(entries.len());
    for (index, e) in entries.into_iter().enumerate() {
        if e.name.trim().is_empty() || e.key.is_empty() {
            return Err(AdminKeyError::Empty { index });
        }
        if keys.iter().any(|k| k.name == e.name) {
            return Err(AdminKeyError::DuplicateName(e.name));
        }
        let digest = match e.key.strip_prefix("sha256:") {
            Some(h) => {
                parse_hex32(&h.to_ascii_lowercase()).ok_or(AdminKeyError::BadDigest { index })?
            }
            None => sha256(e.key.as_bytes()),
        };
        keys.push(AdminKey {
            name: e.name,
            digest,
        });
    }
    Ok(keys)
}

/// The name of the admin key `presented` is, comparing against every configured digest so the
/// answer time does not depend on which (if any) matched.
pub fn admin_name(keys: &[AdminKey], presented: &str) -> Option<String> {
    let d = sha256(presented.as_bytes());
    let mut found = None;
    for k in keys {
        if bool::from(k.digest.ct_eq(&d)) && found.is_none() {
            found = Some(k.name.clone());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extra(v: Value) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("admin_keys".into(), v);
        m
    }

    #[test]
    fn plain_and_hashed_keys_both_match() {
        let h = hex(&sha256(b"s3cret"));
        let keys = from_extra(&extra(serde_json::json!([
            {"name": "alice", "key": "plain-key"},
            {"name": "bob", "key": format!("sha256:{}", h.to_uppercase())},
        ])))
        .unwrap_or_default();
        assert_eq!(admin_name(&keys, "plain-key").as_deref(), Some("alice"));
        assert_eq!(admin_name(&keys, "s3cret").as_deref(), Some("bob"));
        assert_eq!(admin_name(&keys, &format!("sha256:{h}")), None);
        assert_eq!(admin_name(&keys, "other"), None);
    }

    #[test]
    fn malformed_entries_are_refused() {
        let bad = from_extra(&extra(
            serde_json::json!([{"name": "a", "key": "sha256:zz"}]),
        ));
        assert_eq!(bad.err(), Some(AdminKeyError::BadDigest { index: 0 }));
        let dup = from_extra(&extra(serde_json::json!([
            {"name": "a", "key": "x"}, {"name": "a", "key": "y"}
        ])));
        assert_eq!(dup.err(), Some(AdminKeyError::DuplicateName("a".into())));
        assert!(from_extra(&extra(serde_json::json!("k"))).is_err());
        assert!(from_extra(&Map::new()).is_ok_and(|k| k.is_empty()));
    }
}

//! The `fs` row (`wire-protocol.md` §4.2).
//!
//! Rows are typed at the edge: a row whose `size` is a string or whose mtime is not a finite
//! number is refused when the batch is parsed, instead of poisoning the view and breaking every
//! later query (`pitfalls.md` item 4). Unknown keys are ignored, because a `fields_mapping`
//! projection may add its own.

use serde::{Deserialize, Deserializer, Serialize};

/// One file-system row. Every key is optional on the wire; the view applies the defaults of
/// `consistency.md` §7.1 (size 0, mtime 0.0, not a directory).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FsRow {
    /// Path relative to the agent's source root, with a leading `/`. Alias `file_path`.
    /// Names are lossless (`crate::lossless`): `\udcXX` on the wire, raw bytes behind them.
    #[serde(
        default,
        alias = "file_path",
        deserialize_with = "crate::lossless::de::opt_name",
        skip_serializing_if = "Option::is_none"
    )]
    pub path: Option<String>,
    #[serde(
        default,
        deserialize_with = "crate::lossless::de::opt_name",
        skip_serializing_if = "Option::is_none"
    )]
    pub file_name: Option<String>,
    #[serde(
        default,
        deserialize_with = "de_size",
        skip_serializing_if = "Option::is_none"
    )]
    pub size: Option<u64>,
    #[serde(
        default,
        deserialize_with = "de_time",
        skip_serializing_if = "Option::is_none"
    )]
    pub modified_time: Option<f64>,
    #[serde(
        default,
        deserialize_with = "de_time",
        skip_serializing_if = "Option::is_none"
    )]
    pub created_time: Option<f64>,
    /// Alias `is_dir`.
    #[serde(default, alias = "is_dir", skip_serializing_if = "Option::is_none")]
    pub is_directory: Option<bool>,
    /// Realtime only: `false` marks a partial write, absent or `true` a finished one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_atomic_write: Option<bool>,
    /// Audit file rows: the containing directory as reported by the agent.
    #[serde(
        default,
        deserialize_with = "crate::lossless::de::opt_name",
        skip_serializing_if = "Option::is_none"
    )]
    pub parent_path: Option<String>,
    /// Audit file rows: the containing directory's mtime at scan time.
    #[serde(
        default,
        deserialize_with = "de_time",
        skip_serializing_if = "Option::is_none"
    )]
    pub parent_mtime: Option<f64>,
    /// Audit directory rows: the directory is unchanged since the last audit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_skipped: Option<bool>,
    /// Extensions (issue 14), ignored by the Python Fusion like any unknown key: the owner,
    /// group and permission bits (`st_mode & 0o7777`) of the entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
    /// The names of `uid` and `gid` as the agent's host resolves them (NIS/LDAP answer on the
    /// NFS client, not on the central host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gname: Option<String>,
}

impl FsRow {
    /// A delete row carries only the path.
    pub fn delete(path: impl Into<String>) -> Self {
        FsRow {
            path: Some(path.into()),
            ..Default::default()
        }
    }

    /// An upsert row with the keys the reference agent always sends.
    pub fn upsert(path: impl Into<String>, mtime: f64, size: u64, is_dir: bool) -> Self {
        let path = path.into();
        let file_name = path.rsplit('/').next().unwrap_or("").to_string();
        FsRow {
            path: Some(path),
            file_name: Some(file_name),
            size: Some(size),
            modified_time: Some(mtime),
            created_time: Some(mtime),
            is_directory: Some(is_dir),
            ..Default::default()
        }
    }

    /// Rows built in code bypass serde; this applies the same value checks.
    pub fn validate(&self) -> Result<(), String> {
        for (name, v) in [
            ("modified_time", self.modified_time),
            ("created_time", self.created_time),
            ("parent_mtime", self.parent_mtime),
        ] {
            if let Some(v) = v
                && !v.is_finite()
            {
                return Err(format!("{name} must be a finite number, got {v}"));
            }
        }
        Ok(())
    }
}

/// Sizes are integers on the wire; an integral float (a mapped `number`) is tolerated.
fn de_size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Num {
        U(u64),
        F(f64),
    }
    match Option::<Num>::deserialize(d) {
        Ok(None) => Ok(None),
        Ok(Some(Num::U(v))) => Ok(Some(v)),
        Ok(Some(Num::F(f))) if f.is_finite() && f >= 0.0 && f.fract() == 0.0 && f < 1.8e19 => {
            Ok(Some(f as u64))
        }
        _ => Err(serde::de::Error::custom(
            "size must be a non-negative integer",
        )),
    }
}

fn de_time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    match Option::<f64>::deserialize(d)? {
        Some(v) if !v.is_finite() => Err(serde::de::Error::custom("time must be a finite number")),
        v => Ok(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<FsRow, serde_json::Error> {
        serde_json::from_str(s)
    }

    /// An mtime must reach the view bit for bit: Python writes the shortest repr that reads
    /// back exactly, and without serde_json's `float_roundtrip` one such value in eight came
    /// back one ulp off (so a view showed a time the agent never sent).
    #[test]
    fn mtimes_parse_bit_for_bit() {
        for text in [
            "1756048239.3120127",
            "1773518968.6530755",
            "1706000000.123456789",
        ] {
            let want: f64 = text.parse().unwrap();
            let r = parse(&format!(r#"{{"path":"/a","modified_time":{text}}}"#)).unwrap();
            assert_eq!(
                r.modified_time.map(f64::to_bits),
                Some(want.to_bits()),
                "{text}"
            );
        }
    }

    #[test]
    fn reference_agent_row_parses() {
        let r = parse(
            r#"{"path":"/a/b.txt","file_name":"b.txt","size":10,"modified_time":1706000000.5,
               "created_time":1706000000,"is_directory":false,"is_atomic_write":true}"#,
        )
        .unwrap();
        assert_eq!(r.path.as_deref(), Some("/a/b.txt"));
        assert_eq!(r.size, Some(10));
        assert_eq!(r.created_time, Some(1706000000.0));
        assert_eq!(r.is_atomic_write, Some(true));
    }

    #[test]
    fn aliases_and_nulls() {
        let r = parse(r#"{"file_path":"/x","is_dir":true,"size":null,"extra":{"a":1}}"#).unwrap();
        assert_eq!(r.path.as_deref(), Some("/x"));
        assert_eq!(r.is_directory, Some(true));
        assert_eq!(r.size, None);
        assert_eq!(parse(r#"{"size":10.0}"#).unwrap().size, Some(10));
    }

    #[test]
    fn wrong_types_are_rejected() {
        assert!(parse(r#"{"path":"/x","size":"big"}"#).is_err());
        assert!(parse(r#"{"path":"/x","size":-1}"#).is_err());
        assert!(parse(r#"{"path":"/x","size":1.5}"#).is_err());
        assert!(parse(r#"{"path":5}"#).is_err());
        assert!(parse(r#"{"path":"/x","modified_time":"now"}"#).is_err());
        assert!(parse(r#"{"path":"/x","modified_time":NaN}"#).is_err());
        assert!(parse(r#"{"path":"/x","modified_time":1e999}"#).is_err());
        assert!(parse(r#"{"path":"/x","is_directory":"yes"}"#).is_err());
        assert!(parse(r#"{"path":"\ud800"}"#).is_err());
        assert!(parse(r#"{"path":["/x"]}"#).is_err());
        assert!(parse(r#"[1,2]"#).is_err());
    }

    #[test]
    fn python_surrogate_escapes_are_distinct_names() {
        let e9 =
            parse(r#"{"path":"/caf\udce9.txt","file_name":"caf\udce9.txt","parent_path":"/"}"#)
                .unwrap();
        let e8 = parse(r#"{"path":"/caf\udce8.txt"}"#).unwrap();
        assert_ne!(e9.path, e8.path);
        let p = e9.path.clone().unwrap();
        assert_eq!(crate::lossless::unescape(&p).as_ref(), b"/caf\xe9.txt");
        assert_eq!(
            crate::lossless::to_vec(&FsRow::delete(p)).unwrap(),
            br#"{"path":"/caf\udce9.txt"}"#
        );
    }

    #[test]
    fn owner_keys_round_trip() {
        let r =
            parse(r#"{"path":"/a","uid":1000,"gid":100,"mode":420,"uname":"ann","gname":"users"}"#)
                .unwrap();
        assert_eq!((r.uid, r.gid, r.mode), (Some(1000), Some(100), Some(0o644)));
        assert_eq!(r.uname.as_deref(), Some("ann"));
        assert!(parse(r#"{"path":"/a","uid":-1}"#).is_err());
        let back: FsRow = serde_json::from_slice(&serde_json::to_vec(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn serialises_without_absent_keys() {
        let s = serde_json::to_string(&FsRow::delete("/a")).unwrap();
        assert_eq!(s, r#"{"path":"/a"}"#);
    }
}

//! Column values → fs rows, by the configured `fields_mapping`.

use fustor_core::FsRow;
use mysql_async::Value;

/// Positions of the mapped columns in a row (the table's column order for binlog rows, the
/// SELECT list for snapshot rows).
#[derive(Debug, Clone, Default)]
pub struct Mapping {
    pub path: usize,
    pub size: Option<usize>,
    pub mtime: Option<usize>,
    pub ctime: Option<usize>,
    pub is_dir: Option<usize>,
}

/// Text of a value (`path` columns are VARCHAR or VARBINARY).
fn text(v: &Value) -> Option<String> {
    match v {
        Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::Int(i) => Some(i.to_string()),
        Value::UInt(u) => Some(u.to_string()),
        _ => None,
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::UInt(u) => Some(*u as f64),
        Value::Float(f) => Some(f64::from(*f)),
        Value::Double(d) => Some(*d),
        Value::Bytes(b) => std::str::from_utf8(b).ok()?.trim().parse().ok(),
        Value::Date(y, mo, d, h, mi, s, us) => Some(epoch_of(*y, *mo, *d, *h, *mi, *s, *us)),
        _ => None,
    }
}

/// A DATETIME/TIMESTAMP as seconds since the epoch (read as UTC).
fn epoch_of(y: u16, mo: u8, d: u8, h: u8, mi: u8, s: u8, us: u32) -> f64 {
    // Days from civil (Howard Hinnant's algorithm).
    let (y, mo, d) = (i64::from(y), i64::from(mo), i64::from(d));
    let y = if mo <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    (days * 86_400 + i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(s)) as f64
        + f64::from(us) / 1e6
}

/// `/` is put in front of a relative path, so catalogue paths and fs paths compare.
fn view_path(p: String) -> String {
    if p.starts_with('/') {
        p
    } else {
        format!("/{p}")
    }
}

impl Mapping {
    /// The path of a row (delete rows carry only it); `None` when NULL or not text.
    pub fn path(&self, get: &dyn Fn(usize) -> Option<Value>) -> Option<String> {
        get(self.path).as_ref().and_then(text).map(view_path)
    }

    pub fn row(&self, get: &dyn Fn(usize) -> Option<Value>) -> Option<FsRow> {
        let path = self.path(get)?;
        let num = |i: Option<usize>| i.and_then(get).as_ref().and_then(number);
        let mtime = num(self.mtime);
        let file_name = path.rsplit('/').next().unwrap_or("").to_string();
        let row = FsRow {
            path: Some(path),
            file_name: Some(file_name),
            size: num(self.size).map(|s| s.max(0.0) as u64),
            modified_time: mtime,
            created_time: num(self.ctime).or(mtime),
            is_directory: Some(num(self.is_dir).is_some_and(|v| v != 0.0)),
            ..Default::default()
        };
        row.validate().ok().map(|()| row)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_catalogue_row_becomes_an_fs_row() {
        let m = Mapping {
            path: 0,
            size: Some(1),
            mtime: Some(2),
            ctime: None,
            is_dir: None,
        };
        let vals = [
            Value::Bytes(b"data/run42/a.h5".to_vec()),
            Value::Bytes(b"1234".to_vec()),
            Value::Date(2024, 1, 2, 3, 4, 5, 500_000),
        ];
        let r = m.row(&|i| vals.get(i).cloned()).unwrap();
        assert_eq!(r.path.as_deref(), Some("/data/run42/a.h5"));
        assert_eq!(r.file_name.as_deref(), Some("a.h5"));
        assert_eq!(r.size, Some(1234));
        assert_eq!(r.modified_time, Some(1_704_164_645.5));
        assert_eq!(r.is_directory, Some(false));
        let null = [Value::NULL];
        assert!(m.row(&|i| null.get(i).cloned()).is_none());
    }
}

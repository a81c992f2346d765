//! Compact binary form of applied events for the log: about a quarter of the JSON body's size,
//! so a synced batch costs the disk less, and replay skips JSON parsing.
//!
//! Per event: type, source, schema, table, index, id and timestamp, fields (usually the
//! standard fs list, one byte), metadata (JSON, usually empty); per row a presence mask and the
//! present fields. Strings are stored as their UTF-8 bytes: names are kept exactly as in
//! memory (lossless escapes included).

use fustor_core::event::FS_FIELDS;
use fustor_core::view::SnapshotError;
use fustor_core::{Event, EventType, FsRow, MessageSource};
use fustor_view_fs::fs::persist::chunk::{Put, Rd, unzigzag, zigzag};
use serde_json::{Map, Value};

const PATH: u16 = 1;
const FILE_NAME: u16 = 2;
const SIZE: u16 = 4;
const MTIME: u16 = 8;
const CTIME: u16 = 16;
const IS_DIR: u16 = 32;
const IS_DIR_TRUE: u16 = 64;
const ATOMIC: u16 = 128;
const ATOMIC_TRUE: u16 = 256;
const PARENT_PATH: u16 = 512;
const PARENT_MTIME: u16 = 1024;
const SKIPPED: u16 = 2048;
const SKIPPED_TRUE: u16 = 4096;
/// `file_name` equals the last component of `path` (the usual case) and is not stored.
const NAME_FROM_PATH: u16 = 8192;
/// Owner keys follow (issue 14), behind a byte of their own presence bits. Logs written
/// before them never set the bit, so they stay readable.
const OWNER: u16 = 16384;
const O_UID: u8 = 1;
const O_GID: u8 = 2;
const O_MODE: u8 = 4;
const O_UNAME: u8 = 8;
const O_GNAME: u8 = 16;

fn last_component(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn put_opt_f64(b: &mut Vec<u8>, v: Option<f64>) {
    if let Some(v) = v {
        b.put_f64(v);
    }
}

fn put_str(b: &mut Vec<u8>, s: &str) {
    b.put_bytes(s.as_bytes());
}

/// Appends `events` to `b`.
pub fn encode(events: &[Event<FsRow>], b: &mut Vec<u8>) {
    b.put_var(events.len() as u64);
    for ev in events {
        b.put_u8(match ev.event_type {
            EventType::Insert => 0,
            EventType::Update => 1,
            EventType::Delete => 2,
        });
        b.put_u8(match ev.message_source {
            MessageSource::Realtime => 0,
            MessageSource::Snapshot => 1,
            MessageSource::Audit => 2,
            MessageSource::OnDemandJob => 3,
        });
        put_str(b, &ev.event_schema);
        put_str(b, &ev.table);
        b.put_var(zigzag(ev.index));
        b.put_opt_str(ev.event_id.as_deref());
        match ev.timestamp {
            Some(t) => {
                b.put_u8(1);
                b.put_f64(t);
            }
            None => b.put_u8(0),
        }
        if ev.fields.iter().map(String::as_str).eq(FS_FIELDS) {
            b.put_u8(0);
        } else {
            b.put_u8(1);
            b.put_var(ev.fields.len() as u64);
            for f in &ev.fields {
                put_str(b, f);
            }
        }
        if ev.metadata.is_empty() {
            b.put_bytes(&[]);
        } else {
            b.put_bytes(&serde_json::to_vec(&ev.metadata).unwrap_or_default());
        }
        b.put_var(ev.rows.len() as u64);
        for r in &ev.rows {
            put_row(b, r);
        }
    }
}

fn put_row(b: &mut Vec<u8>, r: &FsRow) {
    let mut m = 0u16;
    let flags = [
        (r.path.is_some(), PATH),
        (r.file_name.is_some(), FILE_NAME),
        (r.size.is_some(), SIZE),
        (r.modified_time.is_some(), MTIME),
        (r.created_time.is_some(), CTIME),
        (r.is_directory.is_some(), IS_DIR),
        (r.is_directory == Some(true), IS_DIR_TRUE),
        (r.is_atomic_write.is_some(), ATOMIC),
        (r.is_atomic_write == Some(true), ATOMIC_TRUE),
        (r.parent_path.is_some(), PARENT_PATH),
        (r.parent_mtime.is_some(), PARENT_MTIME),
        (r.audit_skipped.is_some(), SKIPPED),
        (r.audit_skipped == Some(true), SKIPPED_TRUE),
    ];
    for (on, bit) in flags {
        if on {
            m |= bit;
        }
    }
    let derived = matches!((&r.path, &r.file_name), (Some(p), Some(n)) if last_component(p) == n);
    if derived {
        m |= NAME_FROM_PATH;
    }
    let mut o = 0u8;
    for (on, bit) in [
        (r.uid.is_some(), O_UID),
        (r.gid.is_some(), O_GID),
        (r.mode.is_some(), O_MODE),
        (r.uname.is_some(), O_UNAME),
        (r.gname.is_some(), O_GNAME),
    ] {
        if on {
            o |= bit;
        }
    }
    if o != 0 {
        m |= OWNER;
    }
    b.extend_from_slice(&m.to_le_bytes());
    if let Some(p) = &r.path {
        put_str(b, p);
    }
    if let Some(n) = r.file_name.as_ref().filter(|_| !derived) {
        put_str(b, n);
    }
    if let Some(s) = r.size {
        b.put_var(s);
    }
    put_opt_f64(b, r.modified_time);
    put_opt_f64(b, r.created_time);
    if let Some(p) = &r.parent_path {
        put_str(b, p);
    }
    put_opt_f64(b, r.parent_mtime);
    if o != 0 {
        b.put_u8(o);
        for v in [r.uid, r.gid, r.mode].into_iter().flatten() {
            b.put_var(u64::from(v));
        }
        for s in [&r.uname, &r.gname].into_iter().flatten() {
            put_str(b, s);
        }
    }
}

fn opt_bool(m: u16, some: u16, t: u16) -> Option<bool> {
    (m & some != 0).then_some(m & t != 0)
}

/// Reads events written by [`encode`].
pub fn decode(r: &mut Rd<'_>) -> Result<Vec<Event<FsRow>>, SnapshotError> {
    let n = r.var()?;
    let mut out = Vec::with_capacity(n.min(100_000) as usize);
    for _ in 0..n {
        let event_type = match r.u8()? {
            0 => EventType::Insert,
            1 => EventType::Update,
            2 => EventType::Delete,
            t => return Err(SnapshotError::corrupt(format!("event type {t}"))),
        };
        let message_source = match r.u8()? {
            0 => MessageSource::Realtime,
            1 => MessageSource::Snapshot,
            2 => MessageSource::Audit,
            3 => MessageSource::OnDemandJob,
            t => return Err(SnapshotError::corrupt(format!("message source {t}"))),
        };
        let event_schema = r.str()?.to_string();
        let table = r.str()?.to_string();
        let index = unzigzag(r.var()?);
        let event_id = r.opt_str()?.map(str::to_string);
        let timestamp = match r.u8()? {
            0 => None,
            _ => Some(r.f64()?),
        };
        let fields = match r.u8()? {
            0 => FS_FIELDS.iter().map(|s| s.to_string()).collect(),
            _ => {
                let k = r.var()?;
                let mut v = Vec::new();
                for _ in 0..k {
                    v.push(r.str()?.to_string());
                }
                v
            }
        };
        let meta = r.bytes()?;
        let metadata: Map<String, Value> = if meta.is_empty() {
            Map::new()
        } else {
            serde_json::from_slice(meta).map_err(|e| SnapshotError::corrupt(e.to_string()))?
        };
        let k = r.var()?;
        let mut rows = Vec::with_capacity(k.min(1_000_000) as usize);
        for _ in 0..k {
            rows.push(get_row(r)?);
        }
        out.push(Event {
            event_id,
            timestamp,
            event_type,
            fields,
            rows,
            index,
            event_schema,
            table,
            message_source,
            metadata,
        });
    }
    Ok(out)
}

fn get_row(r: &mut Rd<'_>) -> Result<FsRow, SnapshotError> {
    let m = u16::from_le_bytes([r.u8()?, r.u8()?]);
    let s = |r: &mut Rd<'_>, bit: u16| -> Result<Option<String>, SnapshotError> {
        if m & bit != 0 {
            Ok(Some(r.str()?.to_string()))
        } else {
            Ok(None)
        }
    };
    let f = |r: &mut Rd<'_>, bit: u16| -> Result<Option<f64>, SnapshotError> {
        if m & bit != 0 {
            Ok(Some(r.f64()?))
        } else {
            Ok(None)
        }
    };
    let path = s(r, PATH)?;
    let file_name = if m & NAME_FROM_PATH != 0 {
        let p = path
            .as_deref()
            .ok_or_else(|| SnapshotError::corrupt("a name derived from a missing path"))?;
        Some(last_component(p).to_string())
    } else {
        s(r, FILE_NAME)?
    };
    let size = if m & SIZE != 0 { Some(r.var()?) } else { None };
    let modified_time = f(r, MTIME)?;
    let created_time = f(r, CTIME)?;
    let parent_path = s(r, PARENT_PATH)?;
    let parent_mtime = f(r, PARENT_MTIME)?;
    let o = if m & OWNER != 0 { r.u8()? } else { 0 };
    let id = |r: &mut Rd<'_>, bit: u8| -> Result<Option<u32>, SnapshotError> {
        if o & bit == 0 {
            return Ok(None);
        }
        u32::try_from(r.var()?)
            .map(Some)
            .map_err(|_| SnapshotError::corrupt("an owner id beyond 32 bits"))
    };
    let (uid, gid, mode) = (id(r, O_UID)?, id(r, O_GID)?, id(r, O_MODE)?);
    let name = |r: &mut Rd<'_>, bit: u8| -> Result<Option<String>, SnapshotError> {
        if o & bit != 0 {
            Ok(Some(r.str()?.to_string()))
        } else {
            Ok(None)
        }
    };
    let (uname, gname) = (name(r, O_UNAME)?, name(r, O_GNAME)?);
    Ok(FsRow {
        path,
        file_name,
        size,
        modified_time,
        created_time,
        is_directory: opt_bool(m, IS_DIR, IS_DIR_TRUE),
        is_atomic_write: opt_bool(m, ATOMIC, ATOMIC_TRUE),
        parent_path,
        parent_mtime,
        audit_skipped: opt_bool(m, SKIPPED, SKIPPED_TRUE),
        uid,
        gid,
        mode,
        uname,
        gname,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trip_keeps_every_field() {
        let mut full = FsRow::upsert("/a/caf\u{e9}", 1.5, 7, false);
        full.file_name = Some("caf\u{e9}".into());
        full.created_time = Some(-3.25);
        full.is_atomic_write = Some(false);
        full.parent_path = Some("/a".into());
        full.parent_mtime = Some(9.0);
        full.audit_skipped = Some(true);
        full.uid = Some(1000);
        full.gid = Some(0);
        full.mode = Some(0o4755);
        full.gname = Some("root".into());
        let mut odd = Event::fs(EventType::Delete, MessageSource::OnDemandJob, vec![full]);
        odd.fields = vec!["path".into()];
        odd.event_id = Some("e1".into());
        odd.timestamp = Some(12.0);
        odd.index = 42;
        odd.metadata.insert("job_id".into(), Value::from("j"));
        let plain = Event::fs(
            EventType::Update,
            MessageSource::Audit,
            vec![
                FsRow::delete("/x"),
                FsRow::default(),
                FsRow::upsert("/d", 0.0, 0, true),
            ],
        );
        let events = vec![odd, plain];
        let mut b = Vec::new();
        encode(&events, &mut b);
        let back = decode(&mut Rd::new(&b)).unwrap();
        assert_eq!(back, events);
        for cut in 0..b.len() {
            assert!(decode(&mut Rd::new(&b[..cut])).is_err(), "cut at {cut}");
        }
    }
}

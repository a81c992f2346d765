//! Shared helpers for the rule-by-rule tests of the fs view (`consistency.md`).
//!
//! Time is explicit and deterministic: every test starts at epoch [`T0`] / monotonic [`MONO0`]
//! and moves both clocks with `Now::plus`.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use fustor_core::{Event, EventType, FsRow, MessageSource, Now};
use fustor_view_fs::fs::{SuspectUpdate, TreeOptions, ViewStats};
use fustor_view_fs::{FsView, FsViewConfig};
use serde_json::Value;

pub const T0: f64 = 1_700_000_000.0;
pub const MONO0: f64 = 1000.0;

pub fn t0() -> Now {
    Now::at(T0, MONO0)
}

/// Default configuration (HOT 30 s, tombstone TTL 3600 s, unlimited).
pub fn view() -> FsView {
    FsView::new("v1", FsViewConfig::default())
}

/// The F0 fixture of scenarios.md: HOT 5 s, tombstone TTL 0.5 s.
pub fn view_f0() -> FsView {
    view_with(5.0, 0.5)
}

pub fn view_with(hot: f64, ttl: f64) -> FsView {
    FsView::new(
        "v1",
        FsViewConfig {
            hot_file_threshold: hot,
            tombstone_ttl: ttl,
            ..FsViewConfig::default()
        },
    )
}

// ---------------------------------------------------------------------------------------------
// Rows and events

/// A file row (`size` 1) as the reference agent builds it.
pub fn file(path: &str, mtime: f64) -> FsRow {
    FsRow::upsert(path, mtime, 1, false)
}

pub fn file_sz(path: &str, mtime: f64, size: u64) -> FsRow {
    FsRow::upsert(path, mtime, size, false)
}

pub fn dir(path: &str, mtime: f64) -> FsRow {
    FsRow::upsert(path, mtime, 4096, true)
}

/// A realtime partial write (`is_atomic_write: false`).
pub fn partial(path: &str, mtime: f64, size: u64) -> FsRow {
    let mut r = FsRow::upsert(path, mtime, size, false);
    r.is_atomic_write = Some(false);
    r
}

/// A realtime finished write (`is_atomic_write: true`).
pub fn atomic(path: &str, mtime: f64, size: u64) -> FsRow {
    let mut r = FsRow::upsert(path, mtime, size, false);
    r.is_atomic_write = Some(true);
    r
}

/// An audit file row with its parent listing evidence (C3).
pub fn audit_file(path: &str, mtime: f64, parent: &str, parent_mtime: Option<f64>) -> FsRow {
    let mut r = file(path, mtime);
    r.parent_path = Some(parent.to_string());
    r.parent_mtime = parent_mtime;
    r
}

/// An audit directory row reported as unchanged (`audit_skipped: true`).
pub fn silent_dir(path: &str, mtime: f64) -> FsRow {
    let mut r = dir(path, mtime);
    r.audit_skipped = Some(true);
    r
}

pub fn upd(src: MessageSource, rows: Vec<FsRow>) -> Event<FsRow> {
    Event::fs(EventType::Update, src, rows)
}

pub fn del(src: MessageSource, paths: &[&str]) -> Event<FsRow> {
    Event::fs(
        EventType::Delete,
        src,
        paths.iter().map(|p| FsRow::delete(*p)).collect(),
    )
}

pub fn with_lineage(mut ev: Event<FsRow>, agent: Option<&str>, uri: Option<&str>) -> Event<FsRow> {
    if let Some(a) = agent {
        ev.metadata.insert("agent_id".into(), serde_json::json!(a));
    }
    if let Some(u) = uri {
        ev.metadata
            .insert("source_uri".into(), serde_json::json!(u));
    }
    ev
}

// ---------------------------------------------------------------------------------------------
// Applying

pub fn rt(v: &FsView, now: Now, rows: Vec<FsRow>) -> fustor_view_fs::fs::ApplyReport {
    v.apply(&[upd(MessageSource::Realtime, rows)], now)
}

pub fn rt_del(v: &FsView, now: Now, paths: &[&str]) -> fustor_view_fs::fs::ApplyReport {
    v.apply(&[del(MessageSource::Realtime, paths)], now)
}

pub fn snap(v: &FsView, now: Now, rows: Vec<FsRow>) -> fustor_view_fs::fs::ApplyReport {
    v.apply(&[upd(MessageSource::Snapshot, rows)], now)
}

pub fn audit(v: &FsView, now: Now, rows: Vec<FsRow>) -> fustor_view_fs::fs::ApplyReport {
    v.apply(&[upd(MessageSource::Audit, rows)], now)
}

pub fn audit_del(v: &FsView, now: Now, rows: Vec<FsRow>) -> fustor_view_fs::fs::ApplyReport {
    v.apply(
        &[Event::fs(EventType::Delete, MessageSource::Audit, rows)],
        now,
    )
}

pub fn ondemand(v: &FsView, now: Now, rows: Vec<FsRow>) -> fustor_view_fs::fs::ApplyReport {
    v.apply(&[upd(MessageSource::OnDemandJob, rows)], now)
}

/// Calibrates the logical clock to `skew` seconds with `n` realtime rows on throw-away paths
/// under `/_clk` (mtime = epoch − skew).
pub fn calibrate(v: &FsView, now: Now, skew: f64, n: usize) {
    let rows = (0..n)
        .map(|i| file(&format!("/_clk/{i}"), now.epoch - skew))
        .collect();
    rt(v, now, rows);
}

pub fn feedback(v: &FsView, now: Now, path: &str, mtime: f64, size: Option<u64>) -> usize {
    v.update_suspects(
        &[SuspectUpdate {
            path: path.to_string(),
            mtime,
            size,
        }],
        now,
    )
}

// ---------------------------------------------------------------------------------------------
// Reading

/// The node JSON without children, `None` when the path is absent (404).
pub fn node(v: &FsView, path: &str) -> Option<Value> {
    v.read().metadata_value(path)
}

pub fn exists(v: &FsView, path: &str) -> bool {
    node(v, path).is_some()
}

#[track_caller]
pub fn must(v: &FsView, path: &str) -> Value {
    node(v, path).unwrap_or_else(|| panic!("{path} should exist"))
}

#[track_caller]
pub fn field(v: &FsView, path: &str, key: &str) -> Value {
    must(v, path)
        .get(key)
        .cloned()
        .unwrap_or_else(|| panic!("{path} has no key {key}"))
}

#[track_caller]
pub fn is_suspect(v: &FsView, path: &str) -> bool {
    field(v, path, "integrity_suspect").as_bool().unwrap()
}

#[track_caller]
pub fn agent_missing(v: &FsView, path: &str) -> bool {
    field(v, path, "agent_missing").as_bool().unwrap()
}

#[track_caller]
pub fn mtime(v: &FsView, path: &str) -> f64 {
    field(v, path, "modified_time").as_f64().unwrap()
}

#[track_caller]
pub fn size(v: &FsView, path: &str) -> u64 {
    field(v, path, "size").as_u64().unwrap()
}

pub fn content_type(v: &FsView, path: &str) -> Option<String> {
    node(v, path).map(|n| n["content_type"].as_str().unwrap_or("").to_string())
}

pub fn tree(v: &FsView, path: &str, opts: TreeOptions) -> Option<Value> {
    v.read().tree_value(path, &opts)
}

pub fn full() -> TreeOptions {
    TreeOptions {
        recursive: true,
        max_depth: None,
        only_path: false,
    }
}

/// Paths currently in the suspect list.
pub fn suspects(v: &FsView) -> Vec<String> {
    v.read()
        .suspect_list()
        .into_iter()
        .map(|(p, _)| p)
        .collect()
}

pub fn suspect_until(v: &FsView, path: &str) -> Option<f64> {
    v.read()
        .suspect_list()
        .into_iter()
        .find(|(p, _)| p == path)
        .map(|(_, t)| t)
}

pub fn additions(v: &FsView) -> Vec<String> {
    v.read().blind_additions()
}

pub fn deletions(v: &FsView) -> Vec<String> {
    v.read().blind_deletions()
}

pub fn stats(v: &FsView, now: Now) -> ViewStats {
    v.read().stats(now.epoch)
}

pub fn watermark(v: &FsView, now: Now) -> f64 {
    v.read().watermark(now.epoch)
}

pub fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Structural invariants (aggregates, side tables) recomputed from scratch.
#[track_caller]
pub fn check(v: &FsView) {
    if let Err(e) = v.read().check_invariants() {
        panic!("invariant broken: {e}");
    }
}

#[track_caller]
pub fn assert_close(actual: f64, expected: f64, tol: f64) {
    assert!(
        (actual - expected).abs() <= tol,
        "expected {expected} ± {tol}, got {actual}"
    );
}

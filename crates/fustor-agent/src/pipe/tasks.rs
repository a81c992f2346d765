//! The pipe's tasks: heartbeat (§4), realtime message sync (§8), snapshot (§6.1), audit
//! (§6.2), sentinel (§6.3), targeted rescans and on-demand jobs (§9).
//!
//! File-system work runs on blocking threads and reaches the async side through bounded
//! channels ([`bridge`]); dropping the receiver (task cancelled) stops the walk.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use fustor_core::wire::{
    Command, RESUME_METADATA_KEY, ResumePoint, SentinelFeedback, SentinelUpdateItem,
};
use fustor_core::{BatchKind, Event, FsRow, MessageSource};
use fustor_source_fs::{AuditItem, MtimeCache, SentinelStatus};
use fustor_transport_http::{SendError, Sender};
use serde_json::{Map, Value};
use tokio::sync::mpsc;

use super::{BATCH_EVENTS, Ctl, Shared, commands};
use crate::bus::RescanSet;
use crate::state::PipeState;

/// Runs `make()` on a blocking thread and streams its items through a channel of `cap`.
pub(crate) fn bridge<T, I, F>(cap: usize, make: F) -> mpsc::Receiver<T>
where
    T: Send + 'static,
    I: Iterator<Item = T>,
    F: FnOnce() -> I + Send + 'static,
{
    let (tx, rx) = mpsc::channel(cap.max(1));
    tokio::task::spawn_blocking(move || {
        for item in make() {
            if tx.blocking_send(item).is_err() {
                break;
            }
        }
    });
    rx
}

/// Saturating: intervals come from Fusion's session response too, and `1e300` there must not
/// panic the task.
fn secs(s: f64) -> Duration {
    fustor_core::time::duration_from_secs(s)
}

/// §4: runs while the session exists; only an obsolete session ends it.
pub(super) async fn heartbeat_loop<S: Sender>(sh: Arc<Shared<S>>, sid: String) {
    let mut last: Option<Instant> = None;
    loop {
        let interval = secs(sh.st.lock().heartbeat_interval);
        if let Some(t) = last {
            let elapsed = t.elapsed();
            if elapsed < interval {
                tokio::time::sleep((interval - elapsed).min(Duration::from_secs(1))).await;
                continue;
            }
        }
        let req = sh.heartbeat_request();
        match sh.sender.heartbeat(&sid, &req).await {
            Ok(resp) => {
                last = Some(Instant::now());
                sh.reset_errors();
                if let Some(role) = resp.role {
                    sh.apply_role(&sid, role);
                }
                for cmd in &resp.commands {
                    let action = fustor_core::wire::action_id(cmd);
                    commands::dispatch(&sh, &sid, Command::parse(cmd), action).await;
                }
            }
            Err(e) if e.is_obsolete() => {
                tracing::warn!(pipe = %sh.spec.id, session = %sid, error = %e, "heartbeat: session obsolete");
                sh.ctl(Ctl::Obsolete(sid));
                return;
            }
            Err(e) => {
                // The role is kept (wire §12 item 9): a lost heartbeat is not a demotion.
                last = Some(Instant::now());
                let backoff = sh.handle_error("heartbeat", &e);
                tokio::time::sleep(interval.max(secs(backoff))).await;
            }
        }
    }
}

/// §8, both roles: realtime events from the bus in batches of ≤100.
pub(super) async fn message_sync<S: Sender>(sh: Arc<Shared<S>>, sid: String) {
    let bus = sh.source.bus().clone();
    let id = sh.spec.id.clone();
    sh.update_state(|s| s.with(PipeState::MESSAGE_SYNC));
    loop {
        let mut fetched = match bus
            .fetch(&id, BATCH_EVENTS, Duration::from_millis(200))
            .await
        {
            Ok(f) => f,
            Err(e) => {
                sh.ctl(Ctl::Fatal(sid, e.to_string()));
                return;
            }
        };
        if !fetched.lost.is_empty() {
            tracing::warn!(pipe = %id, dirs = fetched.lost.len(),
                "realtime events were lost (bus overflow or watcher gap); rescan scheduled");
            sh.st.lock().pending_rescan.merge(fetched.lost.take());
            sh.ctl(Ctl::Wake);
        }
        sh.st.lock().realtime_ready = true;
        let Some(last) = fetched.last_seq() else {
            continue;
        };
        let events: Vec<Event<FsRow>> = fetched.events.iter().map(|e| (*e.event).clone()).collect();
        let n = events.len() as u64;
        let meta = sh
            .st
            .lock()
            .resume_supported
            .then(|| resume_metadata(bus.epoch(), last));
        match sh
            .send_events(&sid, BatchKind::Message, events, false, meta)
            .await
        {
            Ok(()) => {
                sh.events_pushed.fetch_add(n, Ordering::Relaxed);
                if let Err(e) = bus.commit(&id, last) {
                    sh.ctl(Ctl::Fatal(sid, e.to_string()));
                    return;
                }
            }
            Err(e) if e.is_obsolete() => {
                sh.ctl(Ctl::Obsolete(sid));
                return;
            }
            Err(e) => {
                tracing::warn!(pipe = %id, error = %e, "realtime batch failed; retrying in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// The position a realtime batch ends at, for Fusion's committed index (issue 11).
fn resume_metadata(epoch: &str, seq: u64) -> Map<String, Value> {
    let point = ResumePoint {
        epoch: epoch.to_string(),
        seq,
    };
    let mut m = Map::new();
    if let Ok(v) = serde_json::to_value(point) {
        m.insert(RESUME_METADATA_KEY.to_string(), v);
    }
    m
}

/// §6.1: one full snapshot; a failed send fails the task (fatal for the session).
pub(super) async fn snapshot<S: Sender>(sh: Arc<Shared<S>>, sid: String) -> Result<(), SendError> {
    let started = Instant::now();
    // Every event after this position reaches Fusion as realtime; everything before it is in
    // the tree the walk sees. Once the snapshot is in, Fusion holds the source up to here.
    let covered = sh.source.bus().position(&sh.spec.id);
    let n = sh.snapshots_started.fetch_add(1, Ordering::Relaxed) + 1;
    tracing::info!(pipe = %sh.spec.id, snapshots_started = n, "full snapshot started");
    let source = sh.source.clone();
    let mut rx = bridge(16, move || source.snapshot());
    let mut buf: Vec<Event<FsRow>> = Vec::with_capacity(BATCH_EVENTS);
    let (mut events, mut rows) = (0u64, 0u64);
    while let Some(ev) = rx.recv().await {
        rows += ev.rows.len() as u64;
        buf.push(ev);
        if buf.len() >= BATCH_EVENTS {
            events += buf.len() as u64;
            sh.send_events(
                &sid,
                BatchKind::Snapshot,
                std::mem::take(&mut buf),
                false,
                None,
            )
            .await?;
        }
    }
    events += buf.len() as u64;
    let meta = sh
        .st
        .lock()
        .resume_supported
        .then(|| resume_metadata(sh.source.bus().epoch(), covered));
    sh.send_events(&sid, BatchKind::Snapshot, buf, true, meta)
        .await?;
    // The reference sends one more empty end batch (bus mode).
    sh.send_events(&sid, BatchKind::Snapshot, Vec::new(), true, None)
        .await?;
    sh.events_pushed.fetch_add(events, Ordering::Relaxed);
    tracing::info!(pipe = %sh.spec.id, events, rows,
        took_ms = started.elapsed().as_millis() as u64, "snapshot sent");
    sh.ctl(Ctl::Wake);
    Ok(())
}

/// Groups audit items into batches and keeps each cache update until the batch carrying its
/// directory's rows was delivered: a failed batch leaves its directories uncached, so the next
/// audit lists them again instead of trusting rows Fusion never got.
#[derive(Debug, Default)]
pub struct AuditBatcher {
    events: Vec<Event<FsRow>>,
    updates: Vec<(PathBuf, f64)>,
    confirmed: HashMap<PathBuf, f64>,
    batch: usize,
}

/// One batch ready to send, with the cache updates it vouches for.
pub type AuditBatch = (Vec<Event<FsRow>>, Vec<(PathBuf, f64)>);

impl AuditBatcher {
    pub fn new(batch: usize) -> Self {
        AuditBatcher {
            batch: batch.max(1),
            ..Default::default()
        }
    }

    /// Adds one item; returns a full batch when there is one.
    pub fn push(&mut self, item: AuditItem) -> Option<AuditBatch> {
        if let Some(u) = item.cache_update {
            self.updates.push(u);
        }
        if let Some(e) = item.event {
            self.events.push(e);
            if self.events.len() >= self.batch {
                return Some(self.take());
            }
        }
        None
    }

    /// The remaining events and updates (the end batch).
    pub fn take(&mut self) -> AuditBatch {
        (
            std::mem::take(&mut self.events),
            std::mem::take(&mut self.updates),
        )
    }

    /// Reports the outcome of sending a batch.
    pub fn sent(&mut self, updates: Vec<(PathBuf, f64)>, ok: bool) {
        if ok {
            self.confirmed.extend(updates);
        }
    }

    /// Merges the delivered updates into the pipe's cache.
    pub fn merge_into(self, cache: &mut Arc<MtimeCache>) {
        if !self.confirmed.is_empty() {
            Arc::make_mut(cache).extend(self.confirmed);
        }
    }
}

/// §6.2 loop: first pass one interval after the loop starts.
pub(super) async fn audit_loop<S: Sender>(sh: Arc<Shared<S>>, sid: String) {
    loop {
        let interval = sh.st.lock().audit_interval;
        if interval <= 0.0 || !interval.is_finite() {
            return;
        }
        tokio::time::sleep(secs(interval)).await;
        if !sh.is_leader_of(&sid) {
            return;
        }
        let cache = sh.st.lock().mtime_cache.clone();
        match audit_pass(&sh, &sid, cache, true).await {
            Ok(()) => {}
            Err(e) if e.is_obsolete() => {
                sh.ctl(Ctl::Obsolete(sid));
                return;
            }
            Err(e) => {
                let b = sh.handle_error("audit", &e);
                tokio::time::sleep(secs(b)).await;
            }
        }
    }
}

/// One audit pass over the whole tree with `cache` (empty: list everything). Batch failures are
/// logged and the pass continues; the end signal is always attempted.
pub(super) async fn audit_pass<S: Sender>(
    sh: &Arc<Shared<S>>,
    sid: &str,
    cache: Arc<MtimeCache>,
    merge_into_pipe_cache: bool,
) -> Result<(), SendError> {
    if !sh.source.capabilities().audit {
        return Ok(());
    }
    let _guard = sh.audit_lock.lock().await;
    let started = Instant::now();
    sh.update_state(|s| s.with(PipeState::AUDIT_PHASE));
    if let Err(e) = open_audit(sh, sid).await {
        sh.update_state(|s| s.without(PipeState::AUDIT_PHASE));
        return Err(e);
    }
    let source = sh.source.clone();
    let mut rx = bridge(256, move || source.audit(cache).into_iter().flatten());
    let mut batcher = AuditBatcher::new(BATCH_EVENTS);
    let mut failures = 0u32;
    let mut obsolete: Option<SendError> = None;
    let mut sent_events = 0u64;
    while let Some(item) = rx.recv().await {
        if let Some((events, updates)) = batcher.push(item) {
            let n = events.len() as u64;
            match sh
                .send_events(sid, BatchKind::Audit, events, false, None)
                .await
            {
                Ok(()) => {
                    sent_events += n;
                    batcher.sent(updates, true);
                }
                Err(e) if e.is_obsolete() => {
                    obsolete = Some(e);
                    break;
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!(pipe = %sh.spec.id, error = %e, "audit batch failed; continuing");
                }
            }
        }
    }
    drop(rx);
    if obsolete.is_none() && sh.is_current(sid) {
        let (events, updates) = batcher.take();
        let n = events.len() as u64;
        match sh
            .send_events(sid, BatchKind::Audit, events, true, None)
            .await
        {
            Ok(()) => {
                sent_events += n;
                batcher.sent(updates, true);
                if let Err(e) = sh.sender.audit_end().await {
                    tracing::warn!(pipe = %sh.spec.id, error = %e, "audit end call failed");
                }
            }
            Err(e) if e.is_obsolete() => obsolete = Some(e),
            Err(e) => {
                failures += 1;
                tracing::warn!(pipe = %sh.spec.id, error = %e, "final audit batch failed");
            }
        }
    }
    // The reference's cleanup path: always one more end signal.
    if obsolete.is_none()
        && sh
            .send_events(sid, BatchKind::Audit, Vec::new(), true, None)
            .await
            .is_ok()
    {
        let _ = sh.sender.audit_end().await;
    }
    if merge_into_pipe_cache && sh.is_current(sid) {
        batcher.merge_into(&mut sh.st.lock().mtime_cache);
        super::save_state(sh).await;
    }
    sh.update_state(|s| s.without(PipeState::AUDIT_PHASE));
    sh.events_pushed.fetch_add(sent_events, Ordering::Relaxed);
    tracing::info!(pipe = %sh.spec.id, events = sent_events, failed_batches = failures,
        took_ms = started.elapsed().as_millis() as u64, "audit pass done");
    match obsolete {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Opens the audit at Fusion before anything is listed: one `audit` event with the root row
/// marked `audit_skipped` (consistency.md P1 starts the audit on the first audit event).
///
/// Without it the audit starts when its first batch is applied, which is after the walk
/// listed up to 100 events' worth of directories; a file created in an already listed
/// directory whose realtime row reaches Fusion before that first batch is then confirmed
/// *before* the audit start, so M3 does not protect it and the audit end deletes it as a blind
/// spot (lost until the next audit). Fusion applies a pipe's batches in arrival order, so
/// once this batch is acknowledged every later realtime row counts as newer than the audit.
/// The skipped root protects the root's children; a pass that lists the root sends its real
/// row later, which replaces the flag. A failure here is logged: the pass then opens the audit
/// with its first batch, as the reference agent does.
pub(super) async fn open_audit<S: Sender>(sh: &Arc<Shared<S>>, sid: &str) -> Result<(), SendError> {
    let source = sh.source.clone();
    let ev = tokio::task::spawn_blocking(move || source.audit_start())
        .await
        .ok()
        .flatten();
    let Some(ev) = ev else {
        return Ok(());
    };
    match sh
        .send_events(sid, BatchKind::Audit, vec![ev], false, None)
        .await
    {
        Ok(()) => Ok(()),
        Err(e) if e.is_obsolete() => Err(e),
        Err(e) => {
            tracing::warn!(pipe = %sh.spec.id, error = %e, "audit start batch failed");
            Ok(())
        }
    }
}

/// §6.3.
pub(super) async fn sentinel_loop<S: Sender>(sh: Arc<Shared<S>>, sid: String) {
    loop {
        let interval = sh.st.lock().sentinel_interval;
        if interval <= 0.0 || !interval.is_finite() {
            return;
        }
        tokio::time::sleep(secs(interval)).await;
        if !sh.is_leader_of(&sid) {
            return;
        }
        if let Err(e) = sentinel_check(&sh).await {
            if e.is_obsolete() {
                sh.ctl(Ctl::Obsolete(sid));
                return;
            }
            tracing::warn!(pipe = %sh.spec.id, error = %e, "sentinel check failed");
        }
    }
}

async fn sentinel_check<S: Sender>(sh: &Arc<Shared<S>>) -> Result<(), SendError> {
    let tasks = sh.sender.sentinel_tasks().await?;
    if tasks.paths.is_empty() {
        return Ok(());
    }
    if !sh.source.capabilities().sentinel {
        return Ok(());
    }
    let source = sh.source.clone();
    let paths = tasks.paths;
    let updates = tokio::task::spawn_blocking(move || source.sentinel(&paths))
        .await
        .unwrap_or_default();
    let feedback = SentinelFeedback {
        kind: "suspect_update".to_string(),
        updates: updates
            .into_iter()
            .map(|u| SentinelUpdateItem {
                path: Some(u.path),
                mtime: Some(u.mtime),
                size: u.size,
                status: Some(
                    match u.status {
                        SentinelStatus::Exists => "exists",
                        SentinelStatus::Missing => "missing",
                    }
                    .to_string(),
                ),
            })
            .collect(),
    };
    tracing::debug!(pipe = %sh.spec.id, n = feedback.updates.len(), "sentinel feedback");
    sh.sender.sentinel_feedback(&feedback).await
}

/// Lost realtime events: the leader audits the affected directories (a full-tree loss becomes
/// an uncached audit pass); a follower, which must not send audits, re-sends their current
/// state as `on_demand_job` rows. On failure the set is put back.
pub(super) async fn rescan<S: Sender>(sh: Arc<Shared<S>>, sid: String, leader: bool) {
    let set = sh.st.lock().pending_rescan.take();
    if set.is_empty() {
        return;
    }
    tracing::info!(pipe = %sh.spec.id, dirs = set.len(), leader, "rescanning directories with lost events");
    let result = if leader && (set.contains("/") == Some(true) || !sh.source.targeted_rescan()) {
        audit_pass(&sh, &sid, Arc::default(), true).await
    } else {
        targeted(&sh, &sid, &set, leader).await
    };
    match result {
        Ok(()) => {}
        Err(e) => {
            sh.st.lock().pending_rescan.merge(set);
            if e.is_obsolete() {
                sh.ctl(Ctl::Obsolete(sid));
            } else {
                sh.handle_error("rescan", &e);
            }
        }
    }
}

async fn targeted<S: Sender>(
    sh: &Arc<Shared<S>>,
    sid: &str,
    set: &RescanSet,
    leader: bool,
) -> Result<(), SendError> {
    let _guard = if leader {
        Some(sh.audit_lock.lock().await)
    } else {
        None
    };
    if leader {
        open_audit(sh, sid).await?;
    }
    let source = sh.source.clone();
    let set2 = set.clone();
    let (tx, mut rx) = mpsc::channel::<Event<FsRow>>(16);
    tokio::task::spawn_blocking(move || {
        source.rescan(&set2, &mut |e| tx.blocking_send(e).is_ok());
    });
    let kind = if leader {
        BatchKind::Audit
    } else {
        BatchKind::OnDemandJob
    };
    let mut buf = Vec::with_capacity(BATCH_EVENTS);
    while let Some(mut ev) = rx.recv().await {
        if !leader {
            ev.message_source = MessageSource::OnDemandJob;
            ev.rows.retain(|r| r.audit_skipped != Some(true));
            for r in &mut ev.rows {
                r.parent_path = None;
                r.parent_mtime = None;
            }
            if ev.rows.is_empty() {
                continue;
            }
        }
        buf.push(ev);
        if buf.len() >= BATCH_EVENTS {
            sh.send_events(sid, kind.clone(), std::mem::take(&mut buf), false, None)
                .await?;
        }
    }
    sh.send_events(sid, kind, buf, leader, None).await?;
    if leader && let Err(e) = sh.sender.audit_end().await {
        tracing::warn!(pipe = %sh.spec.id, error = %e, "audit end after rescan failed");
    }
    Ok(())
}

/// §9 `scan`: on-demand job, for any role and in any state; errors are logged only.
pub(super) async fn on_demand<S: Sender>(
    sh: Arc<Shared<S>>,
    sid: String,
    path: String,
    recursive: bool,
    job_id: Option<String>,
) -> Result<usize, String> {
    // A source without on-demand scans answers the job complete and empty.
    let source = sh.source.clone();
    let p = path.clone();
    let mut rx = bridge(16, move || source.scan(&p, recursive).into_iter().flatten());
    let mut buf = Vec::with_capacity(BATCH_EVENTS);
    let mut total = 0usize;
    let mut failed: Option<String> = None;
    while let Some(ev) = rx.recv().await {
        buf.push(ev);
        if buf.len() >= BATCH_EVENTS {
            total += buf.len();
            if let Err(e) = sh
                .send_events(
                    &sid,
                    BatchKind::OnDemandJob,
                    std::mem::take(&mut buf),
                    false,
                    None,
                )
                .await
            {
                tracing::warn!(pipe = %sh.spec.id, path = ?path, error = %e, "on-demand batch failed");
                failed = Some(e.to_string());
            }
        }
    }
    total += buf.len();
    if !buf.is_empty()
        && let Err(e) = sh
            .send_events(&sid, BatchKind::OnDemandJob, buf, false, None)
            .await
    {
        tracing::warn!(pipe = %sh.spec.id, path = ?path, error = %e, "on-demand batch failed");
        failed = Some(e.to_string());
    }
    let mut meta = Map::new();
    meta.insert("scan_path".into(), Value::String(path.clone()));
    if let Some(j) = &job_id {
        meta.insert("job_id".into(), Value::String(j.clone()));
    }
    match sh
        .send_events(&sid, BatchKind::JobComplete, Vec::new(), false, Some(meta))
        .await
    {
        Ok(()) => {
            tracing::info!(pipe = %sh.spec.id, path = ?path, job_id = ?job_id, events = total, "on-demand scan complete")
        }
        Err(e) => {
            tracing::warn!(pipe = %sh.spec.id, path = ?path, error = %e, "job_complete failed");
            failed = Some(e.to_string());
        }
    }
    match failed {
        None => Ok(total),
        Some(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fustor_core::EventType;

    fn item(ev: bool, dir: Option<&str>) -> AuditItem {
        AuditItem {
            event: ev.then(|| Event::fs(EventType::Update, MessageSource::Audit, vec![])),
            cache_update: dir.map(|d| (PathBuf::from(d), 1.0)),
        }
    }

    #[test]
    fn audit_cache_keeps_only_delivered_updates() {
        let mut b = AuditBatcher::new(2);
        assert!(b.push(item(true, None)).is_none());
        let (events, updates) = b.push(item(true, Some("/r/a"))).unwrap();
        assert_eq!((events.len(), updates.len()), (2, 1));
        b.sent(updates, true);
        // A directory without matching files: an update without an event joins the batch.
        assert!(b.push(item(false, Some("/r/empty"))).is_none());
        assert!(b.push(item(true, Some("/r/b"))).is_none());
        let (events, updates) = b.push(item(true, None)).unwrap();
        assert_eq!((events.len(), updates.len()), (2, 2));
        b.sent(updates, false); // failed batch: /r/empty and /r/b stay uncached
        assert!(b.push(item(false, Some("/r/c"))).is_none());
        let (events, updates) = b.take();
        assert!(events.is_empty());
        b.sent(updates, true);
        let mut cache: Arc<MtimeCache> =
            Arc::new(MtimeCache::from([(PathBuf::from("/r/old"), 0.5)]));
        b.merge_into(&mut cache);
        let mut keys: Vec<_> = cache.keys().map(|p| p.display().to_string()).collect();
        keys.sort();
        assert_eq!(keys, vec!["/r/a", "/r/c", "/r/old"]);
    }
}

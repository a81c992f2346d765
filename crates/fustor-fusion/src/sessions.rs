//! Sessions, leader election and readiness (`consistency.md` §9–§11, `wire-protocol.md` §3).
//!
//! All of it sits behind one mutex: every operation is a few map updates, and one lock makes the
//! election rules (first come, no preemption, promotion in creation order) trivially atomic. View
//! side effects (V1 session start, V2 reset) are returned to the caller and run outside the lock.

use std::collections::{BTreeMap, HashMap, VecDeque};

use parking_lot::Mutex;
use serde::Serialize;
use serde_json::{Map, Value};

/// Leader re-check period in heartbeats (L5).
const RECHECK_EVERY: u64 = 5;

/// What a new session needs from its pipe.
#[derive(Debug, Clone)]
pub struct SessionSpec {
    pub task_id: String,
    pub pipe_id: String,
    /// The pipe's primary view; sessions are registered under it.
    pub view_id: String,
    /// Every view of the pipe (readiness is granted to all of them).
    pub pipe_views: Vec<String>,
    /// L1: the view id, or `"{view}:{pipe}"` for a forest.
    pub election_key: String,
    pub timeout_secs: f64,
    pub source_uri: Option<String>,
    pub client_ip: Option<String>,
    pub allow_concurrent_push: bool,
}

#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub spec: SessionSpec,
    pub agent_id: String,
    seq: u64,
    pub created_at: f64,
    pub last_activity: f64,
    pub can_realtime: bool,
    pub heartbeats: u64,
    pub commands: VecDeque<Map<String, Value>>,
    pub agent_status: Option<Map<String, Value>>,
    pub config_report: Option<String>,
}

/// Lineage `agent_id` = the task id before the first `:`.
pub fn agent_id_of(task_id: &str) -> &str {
    task_id.split(':').next().unwrap_or(task_id)
}

/// `GET /views/{id}/sessions` entry (`query-api.md` §4.1).
#[derive(Debug, Clone, Serialize)]
pub struct SessionInfo {
    pub session_id: String,
    pub task_id: String,
    pub agent_id: String,
    pub client_ip: Option<String>,
    pub source_uri: Option<String>,
    pub last_activity: f64,
    pub created_at: f64,
    pub allow_concurrent_push: bool,
    pub session_timeout_seconds: i64,
    pub role: fustor_core::wire::Role,
    pub can_snapshot: bool,
    pub can_audit: bool,
    pub can_realtime: bool,
    pub can_send: bool,
    /// Extension: which pipe the session feeds.
    pub pipe_id: String,
}

/// Readiness of an fs view for queries (`query-api.md` §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    NoLeader,
    Snapshotting,
}

/// What the caller must do after a session ended.
#[derive(Debug, Clone)]
pub struct Ended {
    pub session: Session,
    pub was_leader: bool,
    pub promoted: Option<String>,
    /// No session of the same election scope remains (V2 live reset of that scope).
    pub last_in_scope: bool,
}

#[derive(Default)]
struct Inner {
    seq: u64,
    sessions: HashMap<String, Session>,
    order: BTreeMap<u64, String>,
    leaders: HashMap<String, String>,
    authoritative: HashMap<String, String>,
    snapshot_complete: HashMap<String, String>,
    locks: HashMap<String, String>,
}

impl Inner {
    fn is_leader(&self, s: &Session) -> bool {
        self.leaders.get(&s.spec.election_key) == Some(&s.id)
    }

    /// L2/L3: first come, first served; never preempts.
    fn try_elect(&mut self, id: &str) -> bool {
        let Some(s) = self.sessions.get(id) else {
            return false;
        };
        let key = s.spec.election_key.clone();
        if let Some(current) = self.leaders.get(&key) {
            return current == id;
        }
        let views = s.spec.pipe_views.clone();
        let lock = !s.spec.allow_concurrent_push;
        let view = s.spec.view_id.clone();
        self.leaders.insert(key, id.to_string());
        // §11 fan-out fix: every view of the pipe uses this leader for readiness.
        for v in views {
            self.authoritative.insert(v, id.to_string());
        }
        if lock {
            self.locks.insert(view, id.to_string());
        }
        true
    }
}

#[derive(Default)]
pub struct SessionManager {
    inner: Mutex<Inner>,
}

impl SessionManager {
    pub fn new() -> Self {
        Self::default()
    }

    /// Creates a session and runs the election; returns the session id and whether it leads.
    pub fn create(&self, spec: SessionSpec, epoch: f64, mono: f64) -> (String, bool) {
        let id = uuid::Uuid::new_v4().to_string();
        let mut inner = self.inner.lock();
        inner.seq += 1;
        let seq = inner.seq;
        let agent_id = agent_id_of(&spec.task_id).to_string();
        inner.sessions.insert(
            id.clone(),
            Session {
                id: id.clone(),
                spec,
                agent_id,
                seq,
                created_at: epoch,
                last_activity: mono,
                can_realtime: false,
                heartbeats: 0,
                commands: VecDeque::new(),
                agent_status: None,
                config_report: None,
            },
        );
        inner.order.insert(seq, id.clone());
        let leader = inner.try_elect(&id);
        (id, leader)
    }

    /// Records a heartbeat; `None` if the session is unknown (419). `recheck_always` is the
    /// main-port variant, which re-runs the election on every heartbeat.
    pub fn heartbeat(
        &self,
        id: &str,
        can_realtime: bool,
        agent_status: Option<Map<String, Value>>,
        mono: f64,
        recheck_always: bool,
    ) -> Option<(bool, Vec<Map<String, Value>>)> {
        let mut inner = self.inner.lock();
        let s = inner.sessions.get_mut(id)?;
        s.last_activity = mono;
        s.can_realtime = can_realtime;
        if agent_status.is_some() {
            s.agent_status = agent_status;
        }
        s.heartbeats += 1;
        let recheck = recheck_always || s.heartbeats % RECHECK_EVERY == 0;
        let commands: Vec<_> = s.commands.drain(..).collect();
        let leader = if recheck {
            inner.try_elect(id)
        } else {
            inner.sessions.get(id).is_some_and(|s| inner.is_leader(s))
        };
        Some((leader, commands))
    }

    pub fn get(&self, id: &str) -> Option<Session> {
        self.inner.lock().sessions.get(id).cloned()
    }

    /// The pipe of an open session (without copying the session).
    pub fn pipe_of(&self, id: &str) -> Option<String> {
        self.inner
            .lock()
            .sessions
            .get(id)
            .map(|s| s.spec.pipe_id.clone())
    }

    pub fn is_leader(&self, id: &str) -> bool {
        let inner = self.inner.lock();
        inner.sessions.get(id).is_some_and(|s| inner.is_leader(s))
    }

    pub fn set_config_report(&self, id: &str, yaml: String) {
        if let Some(s) = self.inner.lock().sessions.get_mut(id) {
            s.config_report = Some(yaml);
        }
    }

    /// Ends a session (close, expiry, pipe stop): releases leadership and the view lock and
    /// promotes the oldest remaining session of the same scope (L4, L5).
    pub fn terminate(&self, id: &str) -> Option<Ended> {
        let mut inner = self.inner.lock();
        let session = inner.sessions.remove(id)?;
        inner.order.remove(&session.seq);
        let key = session.spec.election_key.clone();
        let was_leader = inner.leaders.get(&key) == Some(&session.id);
        if inner.locks.get(&session.spec.view_id) == Some(&session.id) {
            inner.locks.remove(&session.spec.view_id);
        }
        let mut promoted = None;
        if was_leader {
            inner.leaders.remove(&key);
            let next = inner
                .order
                .values()
                .find(|sid| {
                    inner
                        .sessions
                        .get(*sid)
                        .is_some_and(|s| s.spec.election_key == key)
                })
                .cloned();
            if let Some(next) = next
                && inner.try_elect(&next)
            {
                promoted = Some(next);
            }
        }
        let last_in_scope = !inner.sessions.values().any(|s| s.spec.election_key == key);
        Some(Ended {
            session,
            was_leader,
            promoted,
            last_in_scope,
        })
    }

    /// Sessions whose last heartbeat is older than their timeout.
    pub fn expired(&self, mono: f64) -> Vec<String> {
        self.inner
            .lock()
            .sessions
            .values()
            .filter(|s| mono - s.last_activity >= s.spec.timeout_secs)
            .map(|s| s.id.clone())
            .collect()
    }

    /// §11: a snapshot end from the leader makes every view of its pipe ready.
    pub fn snapshot_complete(&self, id: &str) -> bool {
        let mut inner = self.inner.lock();
        let Some(s) = inner.sessions.get(id) else {
            return false;
        };
        if !inner.is_leader(s) {
            return false;
        }
        let views = s.spec.pipe_views.clone();
        for v in views {
            inner.snapshot_complete.insert(v, id.to_string());
        }
        true
    }

    pub fn readiness(&self, view: &str) -> Readiness {
        let inner = self.inner.lock();
        match inner.authoritative.get(view) {
            None => Readiness::NoLeader,
            Some(a) if inner.snapshot_complete.get(view) == Some(a) => Readiness::Ready,
            Some(_) => Readiness::Snapshotting,
        }
    }

    /// Sessions registered under `view` (their pipe's primary view), oldest first.
    pub fn of_view(&self, view: &str) -> Vec<Session> {
        let inner = self.inner.lock();
        inner
            .order
            .values()
            .filter_map(|id| inner.sessions.get(id))
            .filter(|s| s.spec.view_id == view)
            .cloned()
            .collect()
    }

    pub fn info(&self, s: &Session) -> SessionInfo {
        let leader = self.is_leader(&s.id);
        SessionInfo {
            session_id: s.id.clone(),
            task_id: s.spec.task_id.clone(),
            agent_id: s.agent_id.clone(),
            client_ip: s.spec.client_ip.clone(),
            source_uri: s.spec.source_uri.clone(),
            last_activity: s.last_activity,
            created_at: s.created_at,
            allow_concurrent_push: s.spec.allow_concurrent_push,
            session_timeout_seconds: s.spec.timeout_secs.round() as i64,
            role: fustor_core::wire::Role::of(leader),
            can_snapshot: leader,
            can_audit: leader,
            can_realtime: s.can_realtime,
            can_send: true,
            pipe_id: s.spec.pipe_id.clone(),
        }
    }

    /// Queues a command for delivery with each session's next heartbeat.
    pub fn push_command(&self, ids: &[String], cmd: &Map<String, Value>) {
        let mut inner = self.inner.lock();
        for id in ids {
            if let Some(s) = inner.sessions.get_mut(id) {
                s.commands.push_back(cmd.clone());
            }
        }
    }

    pub fn count(&self) -> usize {
        self.inner.lock().sessions.len()
    }

    pub fn ids(&self) -> Vec<String> {
        self.inner.lock().order.values().cloned().collect()
    }

    /// Forgets every readiness record (reload: the views are new, so queries answer 503 until a
    /// new leader's snapshot ends, `configuration.md` §6.2).
    pub fn reset_readiness(&self) {
        let mut inner = self.inner.lock();
        inner.authoritative.clear();
        inner.snapshot_complete.clear();
    }

    /// The current leader session of a scope.
    pub fn leader_of(&self, key: &str) -> Option<String> {
        self.inner.lock().leaders.get(key).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(task: &str, pipe: &str, key: &str) -> SessionSpec {
        SessionSpec {
            task_id: task.into(),
            pipe_id: pipe.into(),
            view_id: "v1".into(),
            pipe_views: vec!["v1".into(), "v2".into()],
            election_key: key.into(),
            timeout_secs: 3.0,
            source_uri: None,
            client_ip: None,
            allow_concurrent_push: true,
        }
    }

    #[test]
    fn l2_first_come_no_preemption_l5_promotion_in_order() {
        let m = SessionManager::new();
        let (a, la) = m.create(spec("a:p", "p", "v1"), 1.0, 1.0);
        let (b, lb) = m.create(spec("b:p", "p", "v1"), 1.0, 1.0);
        let (c, _) = m.create(spec("c:p", "p", "v1"), 1.0, 1.0);
        assert!(la && !lb);
        let ended = m.terminate(&a).unwrap();
        assert!(ended.was_leader && !ended.last_in_scope);
        assert_eq!(ended.promoted.as_deref(), Some(b.as_str()));
        let (a2, la2) = m.create(spec("a:p", "p", "v1"), 1.0, 1.0);
        assert!(!la2 && m.is_leader(&b));
        m.terminate(&b);
        assert!(m.is_leader(&c), "oldest remaining session is promoted");
        m.terminate(&c);
        let last = m.terminate(&a2).unwrap();
        assert!(last.last_in_scope);
    }

    #[test]
    fn readiness_follows_the_authoritative_leader_on_every_view() {
        let m = SessionManager::new();
        assert_eq!(m.readiness("v1"), Readiness::NoLeader);
        let (a, _) = m.create(spec("a:p", "p", "v1"), 1.0, 1.0);
        let (b, _) = m.create(spec("b:p", "p", "v1"), 1.0, 1.0);
        assert_eq!(m.readiness("v2"), Readiness::Snapshotting);
        assert!(
            !m.snapshot_complete(&b),
            "a follower's snapshot end is ignored"
        );
        assert!(m.snapshot_complete(&a));
        assert_eq!(m.readiness("v1"), Readiness::Ready);
        assert_eq!(
            m.readiness("v2"),
            Readiness::Ready,
            "fan-out views become ready too"
        );
        m.terminate(&a);
        assert_eq!(m.readiness("v1"), Readiness::Snapshotting);
        m.terminate(&b);
        // V3: readiness state survives the last session.
        assert_eq!(m.readiness("v1"), Readiness::Snapshotting);
    }

    #[test]
    fn heartbeats_recheck_every_fifth_and_deliver_commands_once() {
        let m = SessionManager::new();
        let (a, _) = m.create(spec("a:p", "p", "v1"), 1.0, 1.0);
        let mut cmd = Map::new();
        cmd.insert("type".into(), "scan".into());
        m.push_command(std::slice::from_ref(&a), &cmd);
        let (_, cmds) = m.heartbeat(&a, true, None, 2.0, false).unwrap();
        assert_eq!(cmds.len(), 1);
        let (_, cmds) = m.heartbeat(&a, true, None, 3.0, false).unwrap();
        assert!(cmds.is_empty());
        assert!(m.heartbeat("nope", true, None, 3.0, false).is_none());
        assert_eq!(m.expired(5.9), Vec::<String>::new());
        assert_eq!(m.expired(6.0), vec![a]);
    }

    #[test]
    fn scoped_keys_elect_per_tree() {
        let m = SessionManager::new();
        let (_, la) = m.create(spec("a:pa", "pa", "f:pa"), 1.0, 1.0);
        let (_, lb) = m.create(spec("b:pb", "pb", "f:pb"), 1.0, 1.0);
        let (_, lc) = m.create(spec("c:pa", "pa", "f:pa"), 1.0, 1.0);
        assert!(la && lb && !lc);
    }
}

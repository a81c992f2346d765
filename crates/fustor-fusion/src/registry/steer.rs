//! Steering agents through heartbeat answers (issue 15): announcing configuration versions and
//! delivering admin actions.
//!
//! Everything a heartbeat needs is in memory (the newest version of every document, the group
//! of every agent, the actions waiting), so a heartbeat answer never waits for the database;
//! the writes of the admin API keep it current. A version is announced once per agent (not
//! per pipe) and again every [`REANNOUNCE`] until the agent reports it ran or tried it.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use fustor_core::wire::{ACTION_ID_KEY, ActionResult, Command, RegistryStatus};
use parking_lot::Mutex;
use serde_json::{Map, Value};

use super::actions::{self, ActionKind, ActionRecord};

/// An agent that has not reported an announced version hears of it again after this long
/// (its heartbeat answer was lost, or it restarted).
pub const REANNOUNCE: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Inner {
    /// Newest `(version, digest)` by document target (`agent` or `group:<name>`).
    latest: HashMap<String, (i64, String)>,
    groups: HashMap<String, String>,
    /// Agent → version last announced, and when.
    announced: HashMap<String, (i64, Instant)>,
    /// Actions waiting for a heartbeat of their agent, oldest first.
    pending: BTreeMap<i64, ActionRecord>,
    /// Delivered actions waiting for their outcome: id → agent.
    awaiting: HashMap<i64, String>,
}

#[derive(Default)]
pub struct Steering {
    inner: Mutex<Inner>,
}

/// What a heartbeat brings back to the caller, to persist.
#[derive(Debug, Default)]
pub struct Delivery {
    pub commands: Vec<Map<String, Value>>,
    /// Action ids now delivered.
    pub delivered: Vec<i64>,
}

impl Steering {
    /// Blocking: reads the newest versions, the groups and the unfinished actions from the
    /// (already migrated) database file.
    pub fn load(&self, path: &Path) -> rusqlite::Result<()> {
        let conn = rusqlite::Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        let mut latest = HashMap::new();
        let mut stmt = conn.prepare(
            "SELECT target, version, digest FROM agent_configs a
             WHERE version = (SELECT MAX(version) FROM agent_configs b WHERE b.target = a.target)",
        )?;
        for r in stmt.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get(2)?))
        })? {
            let (t, v, d) = r?;
            latest.insert(t, (v, d));
        }
        let mut groups = HashMap::new();
        let mut stmt = conn.prepare("SELECT agent_id, grp FROM agent_groups")?;
        for r in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get(1)?)))? {
            let (a, g) = r?;
            groups.insert(a, g);
        }
        let unfinished = actions::unfinished(&conn)?;
        let mut inner = self.inner.lock();
        inner.latest = latest;
        inner.groups = groups;
        for a in unfinished {
            if a.delivered_at.is_some() {
                inner.awaiting.insert(a.id, a.agent_id);
            } else {
                inner.pending.insert(a.id, a);
            }
        }
        Ok(())
    }

    /// A document got a new version.
    pub fn config_written(&self, target: &str, version: i64, digest: &str) {
        self.inner
            .lock()
            .latest
            .insert(target.to_string(), (version, digest.to_string()));
    }

    pub fn group_set(&self, agent: &str, group: Option<&str>) {
        let mut inner = self.inner.lock();
        match group {
            Some(g) => inner.groups.insert(agent.to_string(), g.to_string()),
            None => inner.groups.remove(agent),
        };
    }

    /// The version an agent should run: its own document's, else its group's.
    pub fn wanted(&self, agent: &str) -> Option<(i64, String)> {
        let inner = self.inner.lock();
        inner.latest.get(agent).cloned().or_else(|| {
            let g = inner.groups.get(agent)?;
            inner.latest.get(&format!("group:{g}")).cloned()
        })
    }

    pub fn queue(&self, a: ActionRecord) {
        self.inner.lock().pending.insert(a.id, a);
    }

    /// The commands for one heartbeat of `agent`'s pipe `pipe`. `reported`: the agent's last
    /// registry status (`None`: the agent does not fetch versions, e.g. the Python agent).
    pub fn deliver(
        &self,
        agent: &str,
        pipe: &str,
        reported: Option<&RegistryStatus>,
        now: Instant,
    ) -> Delivery {
        let mut out = Delivery::default();
        let wanted = self.wanted(agent);
        let mut inner = self.inner.lock();
        if let (Some(r), Some((version, digest))) = (reported, wanted) {
            let runs = r.config_digest.as_deref() == Some(digest.as_str());
            let tried = r.config_tried.is_some_and(|t| t >= version);
            let recent = inner
                .announced
                .get(agent)
                .is_some_and(|(v, at)| *v == version && now.duration_since(*at) < REANNOUNCE);
            if !runs && !tried && !recent {
                out.commands
                    .push(Command::ConfigChanged { version, digest }.to_map());
                inner.announced.insert(agent.to_string(), (version, now));
            }
        }
        let ids: Vec<i64> = inner
            .pending
            .values()
            .filter(|a| a.agent_id == agent && routes_here(a, pipe))
            .map(|a| a.id)
            .collect();
        for id in ids {
            let Some(a) = inner.pending.remove(&id) else {
                continue;
            };
            let mut m = command_of(&a).to_map();
            m.insert(ACTION_ID_KEY.into(), a.id.into());
            out.commands.push(m);
            out.delivered.push(a.id);
            inner.awaiting.insert(a.id, a.agent_id);
        }
        out
    }

    /// Outcomes reported by `agent` that were still awaited (each is reported several times).
    pub fn finished(&self, agent: &str, results: &[ActionResult]) -> Vec<ActionResult> {
        let mut inner = self.inner.lock();
        results
            .iter()
            .filter(|r| {
                let ours = inner.awaiting.get(&r.id).is_some_and(|a| a == agent);
                if ours {
                    inner.awaiting.remove(&r.id);
                }
                ours
            })
            .cloned()
            .collect()
    }
}

/// A re-scan or restart of a named pipe goes through that pipe's session; the others (and
/// re-scans without a pipe) through the first heartbeat of any pipe of the agent: a stopped
/// pipe has no session to hear its `start_pipe`.
fn routes_here(a: &ActionRecord, pipe: &str) -> bool {
    match (a.action, a.pipe.as_deref()) {
        (ActionKind::Rescan, Some(p)) => p == pipe,
        _ => true,
    }
}

fn command_of(a: &ActionRecord) -> Command {
    let pipe_id = a.pipe.clone().unwrap_or_default();
    match a.action {
        ActionKind::Reload => Command::ReloadConfig,
        ActionKind::Rescan => Command::Scan {
            path: a.path.clone().unwrap_or_else(|| "/".into()),
            recursive: true,
            job_id: None,
        },
        ActionKind::StopPipe => Command::StopPipe { pipe_id },
        ActionKind::StartPipe => Command::StartPipe { pipe_id },
        ActionKind::RestartPipe => Command::RestartPipe { pipe_id },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::actions::Outcome;

    fn status(version: i64, digest: &str) -> RegistryStatus {
        RegistryStatus {
            config_version: Some(version),
            config_digest: Some(digest.into()),
            config_tried: Some(version),
            ..RegistryStatus::default()
        }
    }

    #[test]
    fn versions_are_announced_once_per_agent_until_reported() {
        let s = Steering::default();
        let t0 = Instant::now();
        s.group_set("a", Some("nfs"));
        s.config_written("group:nfs", 2, "d2");
        let old = status(1, "d1");
        assert_eq!(s.deliver("a", "p1", Some(&old), t0).commands.len(), 1);
        assert!(s.deliver("a", "p2", Some(&old), t0).commands.is_empty());
        assert!(
            s.deliver("a", "p1", None, t0 + REANNOUNCE)
                .commands
                .is_empty()
        );
        assert_eq!(
            s.deliver("a", "p1", Some(&old), t0 + REANNOUNCE)
                .commands
                .len(),
            1
        );
        let now = status(2, "d2");
        assert!(
            s.deliver("a", "p1", Some(&now), t0 + 3 * REANNOUNCE)
                .commands
                .is_empty()
        );
        // Its own document wins over the group's.
        s.config_written("a", 1, "own");
        assert_eq!(s.wanted("a"), Some((1, "own".into())));
    }

    #[test]
    fn actions_are_delivered_once_and_finished_once() {
        let s = Steering::default();
        let rec = |id, action, pipe: Option<&str>| ActionRecord {
            id,
            agent_id: "a".into(),
            action,
            pipe: pipe.map(Into::into),
            path: Some("/x".into()),
            requested_by: "ops".into(),
            requested_at: 1.0,
            delivered_at: None,
            finished_at: None,
            outcome: Outcome::Pending,
            message: None,
        };
        s.queue(rec(1, ActionKind::Rescan, Some("p2")));
        s.queue(rec(2, ActionKind::StopPipe, Some("p2")));
        let t = Instant::now();
        let d = s.deliver("a", "p1", None, t);
        assert_eq!(d.delivered, vec![2], "the rescan waits for its pipe");
        let d = s.deliver("a", "p2", None, t);
        assert_eq!(d.delivered, vec![1]);
        assert_eq!(d.commands[0]["type"], "scan");
        assert_eq!(d.commands[0][ACTION_ID_KEY], 1);
        assert!(s.deliver("a", "p2", None, t).delivered.is_empty());
        let r = ActionResult {
            id: 1,
            ok: true,
            message: String::new(),
        };
        assert!(s.finished("b", std::slice::from_ref(&r)).is_empty());
        assert_eq!(s.finished("a", std::slice::from_ref(&r)).len(), 1);
        assert!(s.finished("a", &[r]).is_empty());
    }
}

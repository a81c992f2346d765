//! Forest answers `stats` and `search` (`query-api.md` §5) as JSON values.
//!
//! Every answer lists members in pipe-id order. A member is evaluated on its own (see
//! [`super::member`]): an error in one member is reported in that member's entry only.

use fustor_core::path::normalize_query_path;
use serde_json::{Map, Value, json};

use super::best::{BestChoice, BestStrategy};
use super::member::{error_json, guarded, per_member};
use super::view::ForestView;
use serde::Serialize;

use crate::fs::{SearchLimits, SubtreeStats};

/// What one member knows about a path, for `stats` and best selection.
pub(crate) struct MemberStats {
    pub pipe: String,
    /// `Ok(None)`: the member is fine but does not hold the path.
    pub result: Result<Option<SubtreeStats>, String>,
    pub capacity_exceeded: bool,
}

impl ForestView {
    /// Subtree stats of every member. Sequential on purpose: a member costs O(depth) (a few
    /// microseconds), far less than a thread spawn.
    pub(crate) fn member_stats(&self, path: &str) -> Vec<MemberStats> {
        let norm = normalize_query_path(path);
        self.members()
            .into_iter()
            .map(|(pipe, tree)| {
                let mut capacity_exceeded = false;
                let result = guarded(self.id(), &pipe, || {
                    let st = tree.read();
                    capacity_exceeded = st.capacity_hit;
                    norm.as_deref().and_then(|p| st.subtree_stats(p))
                });
                MemberStats {
                    pipe,
                    result,
                    capacity_exceeded,
                }
            })
            .collect()
    }

    /// `GET /views/{forest}/stats?path=&best=` (§5.1).
    ///
    /// Additions to the reference shape, present only when they have something to say, so the
    /// common answer is byte-for-byte the reference's: `capacity_exceeded: true` on a member
    /// whose tree reached `max_nodes` (it refuses new nodes, so its counts are incomplete), and a
    /// top-level `warning` when `best` names an unknown strategy (`file_count` is used).
    pub fn stats(&self, path: &str, best: Option<&str>) -> Value {
        let choice = BestStrategy::parse(best);
        let stats = self.member_stats(path);
        let members: Vec<Value> = stats.iter().map(member_stats_json).collect();
        let mut out = json!({
            "path": path,
            "members": members,
            "best": best_json(&choice, &stats),
        });
        add_warning(&mut out, &choice);
        out
    }

    /// Which members hold files matching `pattern` (the fs `search` semantics, §3.2):
    /// `{"pattern", "members": {pipe: {"status":"ok","count":n,"paths":[...],"truncated":b}}}`.
    ///
    /// `count` is exact; `paths` holds the first `limit` of them in path order, so memory stays
    /// bounded whatever the pattern. Members search on parallel threads (each through its name
    /// index, in steps that let its writer in), so the answer costs about one member's time.
    pub fn search(&self, pattern: &str, limit: Option<usize>) -> Value {
        let members = self.members();
        let limits = SearchLimits {
            max_items: None,
            first: Some(limit.unwrap_or(usize::MAX)),
        };
        let found = per_member(self.id(), &members, members.len() > 1, |_, tree| match tree
            .search(pattern, limits)
        {
            Ok(h) => serde_json::to_value(MemberSearch {
                status: "ok",
                count: h.total,
                truncated: h.truncated(),
                paths: h.hits.into_iter().map(|h| h.path).collect(),
            })
            .unwrap_or(Value::Null),
            Err(e) => error_json(&e.to_string()),
        });
        let mut out = Map::new();
        for ((pipe, _), v) in members.into_iter().zip(found) {
            out.insert(pipe, v.unwrap_or_else(|e| error_json(&e)));
        }
        json!({"pattern": pattern, "members": out})
    }
}

/// One member's entry of a forest `search`.
#[derive(Serialize)]
struct MemberSearch {
    status: &'static str,
    count: usize,
    paths: Vec<String>,
    truncated: bool,
}

fn member_stats_json(m: &MemberStats) -> Value {
    let mut v = match &m.result {
        Err(e) => {
            let mut v = error_json(e);
            v["view_id"] = json!(m.pipe);
            v
        }
        Ok(None) => json!({"view_id": m.pipe, "status": "ok"}),
        Ok(Some(s)) => json!({
            "view_id": m.pipe,
            "status": "ok",
            "file_count": s.file_count,
            "dir_count": s.dir_count,
            "total_size": s.total_size,
            "latest_mtime": s.latest_mtime,
        }),
    };
    if m.capacity_exceeded {
        v["capacity_exceeded"] = json!(true);
    }
    v
}

/// The members that answered, as `(pipe, stats)` for [`BestStrategy::select`].
pub(crate) fn answered(
    stats: &[MemberStats],
) -> impl Iterator<Item = (&str, Option<&SubtreeStats>)> {
    stats.iter().filter_map(|m| match &m.result {
        Ok(st) => Some((m.pipe.as_str(), st.as_ref())),
        Err(_) => None,
    })
}

fn best_json(choice: &BestChoice, stats: &[MemberStats]) -> Value {
    match choice.strategy.select(answered(stats)) {
        Some(w) => json!({
            "view_id": w.pipe,
            "reason": choice.strategy.name(),
            "value": w.score.to_json(),
        }),
        None => Value::Null,
    }
}

fn add_warning(out: &mut Value, choice: &BestChoice) {
    if let (Some(w), Some(obj)) = (&choice.warning, out.as_object_mut()) {
        obj.insert("warning".to_string(), json!(w));
    }
}

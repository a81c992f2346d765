//! Forest `tree` (`query-api.md` §5.2): every member's fs node, or only the best member's.
//!
//! Member nodes are serialised by the fs engine straight from its arena. [`ForestView::tree_json`]
//! splices those bytes into the answer unchanged; [`ForestView::tree`] returns a
//! `serde_json::Value`, which costs a parse of every node (about ten times the serialisation
//! itself, measured on 100-entry listings): HTTP handlers should use the bytes.

use fustor_core::path::normalize_query_path;
use serde_json::{Map, Value, json};

use super::best::BestStrategy;
use super::member::{error_json, guarded, per_member};
use super::query::answered;
use super::view::ForestView;
use crate::fs::{FsView, QueryError, TreeOptions};

/// `tree` answer when no member can be selected.
pub const NO_VALID_VIEWS: &str = "No valid views found for strategy";

/// One member's entry.
enum Entry {
    /// The fs node JSON, as produced by the member.
    Node(Vec<u8>),
    /// The member does not hold the path (`"data": null`).
    Absent,
    /// A complete `{"status":"error",...}` entry.
    Error(Value),
}

struct TreeAnswer {
    members: Vec<(String, Entry)>,
    best_view_selected: Option<String>,
    error: Option<&'static str>,
    warning: Option<String>,
}

/// One member's node, or why not. The limit error says what the fs view's 400 says, per member.
fn member_entry(
    tree: &FsView,
    path: Option<&str>,
    opts: &TreeOptions,
    limit: Option<usize>,
    lossless: bool,
) -> Entry {
    let Some(path) = path else {
        return Entry::Absent;
    };
    match tree.read().tree_bytes(path, opts, limit, &[], lossless) {
        Ok(bytes) => Entry::Node(bytes),
        Err(QueryError::NotFound | QueryError::Unsupported) => Entry::Absent,
        Err(QueryError::LimitExceeded { limit, .. }) => Entry::Error(json!({
            "status": "error",
            "error": format!(
                "Metadata retrieval limit exceeded: the answer would hold more than {limit} items. \
                 Try a more specific path or reduce recursion depth."
            ),
            "limit": limit,
        })),
    }
}

impl ForestView {
    fn entry(
        &self,
        pipe: &str,
        tree: &FsView,
        path: Option<&str>,
        opts: &TreeOptions,
        limit: Option<usize>,
        lossless: bool,
    ) -> Entry {
        guarded(self.id(), pipe, || {
            member_entry(tree, path, opts, limit, lossless)
        })
        .unwrap_or_else(|e| Entry::Error(error_json(&e)))
    }

    /// Every member's entry, members on parallel threads: the answer costs about one member's
    /// listing plus the splice, not their sum (issue 10: 4 members × 1,000 entries took 2.9× a
    /// single member's time one after the other).
    fn all_entries(
        &self,
        path: Option<&str>,
        opts: &TreeOptions,
        limit: Option<usize>,
        lossless: bool,
    ) -> Vec<(String, Entry)> {
        let members = self.members();
        let entries = per_member(self.id(), &members, members.len() > 1, |_, tree| {
            member_entry(tree, path, opts, limit, lossless)
        });
        members
            .into_iter()
            .zip(entries)
            .map(|((pipe, _), e)| (pipe, e.unwrap_or_else(|e| Entry::Error(error_json(&e)))))
            .collect()
    }

    fn tree_answer(
        &self,
        path: &str,
        opts: &TreeOptions,
        best: Option<&str>,
        limit: Option<usize>,
        lossless: bool,
    ) -> TreeAnswer {
        let norm = normalize_query_path(path);
        let Some(best) = best.filter(|b| !b.is_empty()) else {
            return TreeAnswer {
                members: self.all_entries(norm.as_deref(), opts, limit, lossless),
                best_view_selected: None,
                error: None,
                warning: None,
            };
        };
        let choice = BestStrategy::parse(Some(best));
        let stats = self.member_stats(path);
        let winner = choice
            .strategy
            .select(answered(&stats))
            .map(|w| w.pipe.to_string());
        // The winner may have been dropped by a concurrent reset since the stats were taken.
        let tree = winner.as_deref().and_then(|w| self.member(w));
        match (winner, tree) {
            (Some(pipe), Some(tree)) => {
                let e = self.entry(&pipe, &tree, norm.as_deref(), opts, limit, lossless);
                TreeAnswer {
                    members: vec![(pipe.clone(), e)],
                    best_view_selected: Some(pipe),
                    error: None,
                    warning: choice.warning,
                }
            }
            _ => TreeAnswer {
                members: Vec::new(),
                best_view_selected: None,
                error: Some(NO_VALID_VIEWS),
                warning: choice.warning,
            },
        }
    }

    /// `GET /views/{forest}/tree?path=&best=` (§5.2), plus `max_depth`/`only_path` (a superset
    /// of the reference, which ignores them).
    ///
    /// Without `best` (or with an empty one): `{"path", "members": {pipe: {"status":"ok",
    /// "data": node-or-null}}}`. With `best`: only the winner of [`Self::stats`]'s selection and
    /// `"best_view_selected"`, or `{"path", "members": {}, "error": "No valid views found for
    /// strategy"}`; an unknown strategy adds `"warning"`. `limit` is the per-member
    /// `max_tree_items`: a member whose answer would hold more nodes gets an error entry
    /// instead of failing the whole answer. `None` = unlimited.
    pub fn tree(
        &self,
        path: &str,
        opts: &TreeOptions,
        best: Option<&str>,
        limit: Option<usize>,
    ) -> Value {
        let a = self.tree_answer(path, opts, best, limit, false);
        let members: Map<String, Value> = a
            .members
            .into_iter()
            .map(|(pipe, e)| {
                let v = match e {
                    Entry::Node(bytes) => match serde_json::from_slice::<Value>(&bytes) {
                        Ok(data) => json!({"status": "ok", "data": data}),
                        Err(e) => error_json(&format!("internal error: {e}")),
                    },
                    Entry::Absent => json!({"status": "ok", "data": null}),
                    Entry::Error(v) => v,
                };
                (pipe, v)
            })
            .collect();
        let mut out = json!({"path": path, "members": members});
        if let Some(obj) = out.as_object_mut() {
            if let Some(b) = a.best_view_selected {
                obj.insert("best_view_selected".into(), json!(b));
            }
            if let Some(e) = a.error {
                obj.insert("error".into(), json!(e));
            }
            if let Some(w) = a.warning {
                obj.insert("warning".into(), json!(w));
            }
        }
        out
    }

    /// [`Self::tree`] serialised: the same JSON object, with member nodes copied as the fs
    /// engine wrote them instead of being parsed and written again.
    pub fn tree_json(
        &self,
        path: &str,
        opts: &TreeOptions,
        best: Option<&str>,
        limit: Option<usize>,
    ) -> Vec<u8> {
        self.tree_parts(path, opts, best, limit).concat()
    }

    /// [`Self::tree_json`] in parts to be sent one after the other: the members' listings (a
    /// megabyte for four 1,000-entry directories) are not copied into one buffer.
    pub fn tree_parts(
        &self,
        path: &str,
        opts: &TreeOptions,
        best: Option<&str>,
        limit: Option<usize>,
    ) -> Vec<Vec<u8>> {
        let a = self.tree_answer(path, opts, best, limit, true);
        let mut parts = Vec::with_capacity(2 * a.members.len() + 2);
        let mut out = Vec::with_capacity(256);
        let put = |out: &mut Vec<u8>, s: &str| {
            out.extend_from_slice(&fustor_core::lossless::to_vec(s).unwrap_or_default())
        };
        out.extend_from_slice(b"{\"path\":");
        put(&mut out, path);
        out.extend_from_slice(b",\"members\":{");
        for (i, (pipe, e)) in a.members.into_iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            put(&mut out, &pipe);
            out.push(b':');
            match e {
                Entry::Node(bytes) => {
                    out.extend_from_slice(b"{\"status\":\"ok\",\"data\":");
                    parts.push(std::mem::take(&mut out));
                    parts.push(bytes);
                    out.push(b'}');
                }
                Entry::Absent => out.extend_from_slice(b"{\"status\":\"ok\",\"data\":null}"),
                Entry::Error(v) => {
                    out.extend_from_slice(&fustor_core::lossless::to_vec(&v).unwrap_or_default())
                }
            }
        }
        out.push(b'}');
        for (key, val) in [
            ("best_view_selected", a.best_view_selected.as_deref()),
            ("error", a.error),
            ("warning", a.warning.as_deref()),
        ] {
            if let Some(v) = val {
                out.extend_from_slice(format!(",\"{key}\":").as_bytes());
                put(&mut out, v);
            }
        }
        out.push(b'}');
        parts.push(out);
        parts
    }
}

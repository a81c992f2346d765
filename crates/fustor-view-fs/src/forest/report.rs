//! `GET /report` of a forest view (issue 14): the fs report of every member, on parallel
//! threads, and the best member: the one holding the most bytes at `path` (`best=` is not
//! consulted: usage has one meaning of "best"). Keys bound to a user are refused upstream.

use fustor_core::path::normalize_query_path;
use fustor_core::view::ReportQuery;
use serde_json::{Map, Value, json};

use super::member::per_member;
use super::view::ForestView;

impl ForestView {
    pub fn report(&self, q: &ReportQuery<'_>) -> Value {
        let path = normalize_query_path(q.path).unwrap_or_else(|| "/".to_string());
        let members = self.members();
        let found = per_member(self.id(), &members, members.len() > 1, |_, tree| {
            tree.report(&path, q)
        });
        let mut out = Map::new();
        let mut best: Option<(u64, &str)> = None;
        for ((pipe, _), r) in members.iter().zip(found) {
            let v = match r {
                Ok(Ok(r)) => {
                    if best.is_none_or(|(b, _)| r.bytes > b) {
                        best = Some((r.bytes, pipe));
                    }
                    let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
                    if let Some(o) = v.as_object_mut() {
                        o.insert("status".into(), "ok".into());
                    }
                    v
                }
                Ok(Err(_)) => json!({"status": "not_found"}),
                Err(e) => json!({"status": "error", "error": e}),
            };
            out.insert(pipe.clone(), v);
        }
        json!({"path": path, "members": out, "best": best.map(|(_, p)| p)})
    }
}

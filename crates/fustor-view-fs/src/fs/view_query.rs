//! The fs view's answers to the query routes (`query-api.md` §3): everything but `diff`, which
//! compares the members of a forest.

use fustor_core::path::normalize_query_path;
use fustor_core::view::{
    Answer, Identity, QueryError, QueryResult, QueryRoute, ReportQuery, SearchQuery, StatsQuery,
    SuspectEntry, TreeQuery, ViewQuery,
};
use serde_json::Value;

use super::search::SearchLimits;
use super::view::FsView;

impl ViewQuery for FsView {
    fn supports(&self, route: QueryRoute) -> bool {
        route != QueryRoute::Diff
    }

    fn tree(&self, q: &TreeQuery<'_>) -> QueryResult<Answer> {
        let path = normalize_query_path(q.path).ok_or(QueryError::NotFound)?;
        self.read()
            .tree_json_with(&path, &q.options, q.limit, q.extra, q.dir_stats, q.identity)
            .map(Answer::Bytes)
    }

    /// Without `limit=`, the reference's array (refused past `max_tree_items`); with it, the
    /// first files in path order and how many matched.
    fn search(&self, q: &SearchQuery<'_>) -> QueryResult<Answer> {
        let limits = SearchLimits {
            max_items: q.max_items,
            first: q.limit,
        };
        let page = match q.identity.filter(|w| !w.admin) {
            Some(who) => self.search_json_as(q.pattern, limits, who)?,
            None => self.search_json(q.pattern, limits)?,
        };
        Ok(match q.limit {
            None => Answer::Bytes(page.json),
            Some(_) => Answer::Page {
                json: page.json,
                total: page.total,
                truncated: page.truncated,
            },
        })
    }

    fn stats(&self, q: &StatsQuery<'_>) -> QueryResult<Value> {
        if let Some(who) = q.identity.filter(|w| !w.admin) {
            let v = serde_json::to_value(self.read().stats(q.now.epoch)).unwrap_or(Value::Null);
            let mut v = self.stats_as(v, who, q.now);
            // A subtree the user may not see is not found, as in `tree`.
            if let (Some(raw), Some(obj)) = (q.path, v.as_object_mut()) {
                let sub = normalize_query_path(raw).and_then(|p| {
                    let q = ReportQuery {
                        path: &p,
                        by: Some(fustor_core::view::ReportBy::Owner),
                        top: 0,
                        best: None,
                        now: q.now,
                        identity: Some(who),
                    };
                    FsView::report(self, &p, &q).ok()
                });
                obj.insert("path".into(), raw.into());
                obj.insert(
                    "subtree".into(),
                    sub.map_or(
                        Value::Null,
                        |r| serde_json::json!({"file_count": r.files, "total_size": r.bytes}),
                    ),
                );
            }
            return Ok(v);
        }
        let st = self.read();
        let mut v = serde_json::to_value(st.stats(q.now.epoch)).unwrap_or(Value::Null);
        if let (Some(raw), Some(obj)) = (q.path, v.as_object_mut()) {
            // A path that is not in the view is a 404, as for `tree` and `metadata`.
            let sub = normalize_query_path(raw)
                .and_then(|p| st.subtree_stats(&p))
                .ok_or(QueryError::NotFound)?;
            obj.insert("path".into(), raw.into());
            obj.insert(
                "subtree".into(),
                serde_json::to_value(sub).unwrap_or(Value::Null),
            );
        }
        Ok(v)
    }

    /// One node without children, with the statistics of its subtree.
    fn metadata(&self, path: &str) -> QueryResult<Value> {
        let path = normalize_query_path(path).ok_or(QueryError::NotFound)?;
        let (mut node, sub) = {
            let st = self.read();
            let node = st.metadata_value(&path).ok_or(QueryError::NotFound)?;
            (node, st.subtree_stats(&path))
        };
        if let (Some(obj), Some(sub)) = (node.as_object_mut(), sub) {
            obj.insert(
                "subtree".into(),
                serde_json::to_value(sub).unwrap_or(Value::Null),
            );
        }
        Ok(node)
    }

    fn report(&self, q: &ReportQuery<'_>) -> QueryResult<Value> {
        let path = normalize_query_path(q.path).ok_or(QueryError::NotFound)?;
        let r = FsView::report(self, &path, q)?;
        Ok(serde_json::to_value(r).unwrap_or(Value::Null))
    }

    fn answers_as_user(&self) -> bool {
        true
    }

    fn visible_paths(&self, paths: &[String], who: &Identity) -> Vec<bool> {
        if who.admin {
            return vec![true; paths.len()];
        }
        self.visible_paths_as(paths, who)
    }

    fn user_name(&self, uid: u32) -> Option<String> {
        self.read().tree.owners().uname(uid).map(str::to_string)
    }

    fn group_name(&self, gid: u32) -> Option<String> {
        self.read().tree.owners().gname(gid).map(str::to_string)
    }

    fn blind_spots(&self) -> QueryResult<Value> {
        Ok(self.read().blind_spots_value())
    }

    fn suspect_list(&self) -> QueryResult<Vec<SuspectEntry>> {
        Ok(self
            .read()
            .suspect_list()
            .into_iter()
            .map(|(path, suspect_until)| SuspectEntry {
                path,
                suspect_until,
            })
            .collect())
    }
}

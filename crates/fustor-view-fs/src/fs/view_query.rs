//! The fs view's answers to the query routes (`query-api.md` §3): everything but `diff`, which
//! compares the members of a forest.

use fustor_core::path::normalize_query_path;
use fustor_core::view::{
    Answer, QueryError, QueryResult, QueryRoute, SearchQuery, StatsQuery, SuspectEntry, TreeQuery,
    ViewQuery,
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
            .tree_json_with(&path, &q.options, q.limit, q.extra, q.dir_stats)
            .map(Answer::Bytes)
    }

    /// Without `limit=`, the reference's array (refused past `max_tree_items`); with it, the
    /// first files in path order and how many matched.
    fn search(&self, q: &SearchQuery<'_>) -> QueryResult<Answer> {
        let limits = SearchLimits {
            max_items: q.max_items,
            first: q.limit,
        };
        let page = self.search_json(q.pattern, limits)?;
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

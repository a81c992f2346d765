//! The forest's answers to the query routes (`query-api.md` §5). Members answer for themselves,
//! so no route waits for one leader's readiness; the per-file routes of fs views do not apply.

use fustor_core::view::{
    Answer, QueryResult, QueryRoute, SearchQuery, StatsQuery, TreeQuery, ViewQuery,
};
use serde_json::Value;

use super::view::ForestView;

impl ViewQuery for ForestView {
    fn supports(&self, route: QueryRoute) -> bool {
        matches!(
            route,
            QueryRoute::Tree
                | QueryRoute::Search
                | QueryRoute::Stats
                | QueryRoute::Diff
                | QueryRoute::Report
        )
    }

    fn readiness_gated(&self) -> bool {
        false
    }

    fn tree(&self, q: &TreeQuery<'_>) -> QueryResult<Answer> {
        let best = q.best.filter(|b| !b.is_empty());
        Ok(Answer::Parts(
            self.tree_parts(q.path, &q.options, best, q.limit),
        ))
    }

    /// `limit=` bounds the paths per member; without it, `max_tree_items` does.
    fn search(&self, q: &SearchQuery<'_>) -> QueryResult<Answer> {
        Ok(Answer::Value(ForestView::search(
            self,
            q.pattern,
            q.limit.or(q.max_items),
        )))
    }

    fn stats(&self, q: &StatsQuery<'_>) -> QueryResult<Value> {
        Ok(ForestView::stats(self, q.path.unwrap_or("/"), q.best))
    }

    fn report(&self, q: &fustor_core::view::ReportQuery<'_>) -> QueryResult<Value> {
        Ok(ForestView::report(self, q))
    }

    fn diff(&self, path: &str, max_items: Option<usize>) -> QueryResult<Value> {
        Ok(ForestView::diff(self, path, max_items))
    }
}

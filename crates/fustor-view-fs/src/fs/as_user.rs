//! The answers of `stats`, `blind-spots` and `suspect-list` for a key bound to a user
//! (issue 14): counts and lists hold only what that user may see ([`super::access`]).

use fustor_core::path::split_parent;
use fustor_core::view::{Identity, ReportBy, ReportQuery};
use serde_json::Value;

use super::access::Visibility;
use super::query::QueryError;
use super::state::FsState;
use super::view::FsView;

impl FsState {
    /// Whether `who` may see `path`: its node is shown, or, for a path without a node (a
    /// blind-spot deletion), its parent directory lists its children.
    pub(crate) fn path_visible(&self, path: &str, vis: &Visibility) -> bool {
        let t = &self.tree;
        match t.lookup(path) {
            Some(id) => vis.shows(t, id),
            None => split_parent(path)
                .and_then(|(parent, _)| t.lookup(if parent.is_empty() { "/" } else { parent }))
                .is_some_and(|p| t.node(p).is_dir() && vis.shows(t, p) && vis.lists(t, p)),
        }
    }
}

impl FsView {
    /// `stats` of the whole view with the user's counts in place of the view's.
    pub(crate) fn stats_as(&self, mut v: Value, who: &Identity, now: fustor_core::Now) -> Value {
        let q = ReportQuery {
            path: "/",
            by: Some(ReportBy::Owner),
            top: 0,
            best: None,
            now,
            identity: Some(who),
        };
        let (files, bytes) = match self.report("/", &q) {
            Ok(r) => (r.files, r.bytes),
            Err(QueryError::NotFound) => (0, 0),
            Err(_) => (0, 0),
        };
        let st = self.read();
        let t = &st.tree;
        let vis = Visibility::new(t, who);
        let dirs = t.dirs().filter(|&d| vis.shows(t, d)).count() as u64;
        let suspects = st
            .suspects
            .keys()
            .filter(|&&id| t.is_live(id) && !t.node(id).is_dir() && vis.shows(t, id))
            .count() as u64;
        let blind_add = st
            .blind_additions
            .iter()
            .filter(|&&id| !t.node(id).is_dir() && vis.shows(t, id))
            .count() as u64;
        let blind_del = st
            .blind_deletions
            .iter()
            .filter(|p| st.path_visible(p, &vis))
            .count() as u64;
        if let Some(obj) = v.as_object_mut() {
            obj.insert("item_count".into(), (files + dirs).into());
            obj.insert("total_files".into(), files.into());
            obj.insert("total_directories".into(), dirs.into());
            obj.insert("total_size".into(), bytes.into());
            obj.insert("suspect_file_count".into(), suspects.into());
            obj.insert("blind_spot_additions".into(), blind_add.into());
            obj.insert("blind_spot_deletions".into(), blind_del.into());
            obj.insert(
                "has_blind_spot".into(),
                (blind_add > 0 || blind_del > 0).into(),
            );
            let oldest_shown = obj
                .get("oldest_item_path")
                .and_then(Value::as_str)
                .is_some_and(|p| st.path_visible(p, &vis));
            if !oldest_shown {
                obj.insert("oldest_item_path".into(), Value::Null);
            }
            obj.insert("identity".into(), identity_value(who));
        }
        v
    }

    /// Which of `paths` `who` may see.
    pub(crate) fn visible_paths_as(&self, paths: &[String], who: &Identity) -> Vec<bool> {
        let st = self.read();
        let vis = Visibility::new(&st.tree, who);
        paths.iter().map(|p| st.path_visible(p, &vis)).collect()
    }
}

/// The identity as answers show it.
pub fn identity_value(who: &Identity) -> Value {
    serde_json::json!({"uid": who.uid, "gids": who.gids, "admin": who.admin})
}

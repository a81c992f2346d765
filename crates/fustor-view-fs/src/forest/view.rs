//! The forest container and its `ViewDriver` contract (`consistency.md` §14).
//!
//! Routing is by the pipe id Fusion passes in [`ViewContext`], never by event metadata: the
//! agent's `pipe_id` names the *agent* pipe, while trees are keyed by the Fusion pipe that
//! received the events (the pass-through contract of the forest design).

use std::collections::BTreeMap;
use std::sync::Arc;

use fustor_core::view::{ApplyReport, SuspectUpdate, ViewContext, ViewDriver};
use fustor_core::{Event, FsRow, Now};
use parking_lot::RwLock;

use crate::fs::{FsView, FsViewConfig};

/// One view holding one [`FsView`] per Fusion pipe.
///
/// The map lock is held only to find or create a tree; every tree has its own lock, so a batch
/// applied to one pipe's tree never waits for another pipe's batch or query.
pub struct ForestView {
    id: String,
    cfg: FsViewConfig,
    trees: RwLock<BTreeMap<String, Arc<FsView>>>,
}

impl ForestView {
    /// `cfg` applies to every tree separately (`max_nodes` is a per-tree bound).
    pub fn new(id: impl Into<String>, cfg: FsViewConfig) -> Self {
        ForestView {
            id: id.into(),
            cfg,
            trees: RwLock::new(BTreeMap::new()),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn config(&self) -> &FsViewConfig {
        &self.cfg
    }

    /// The id of the tree kept for `pipe_id` (`"{forest}:{pipe}"`, §14).
    pub fn tree_id(&self, pipe_id: &str) -> String {
        format!("{}:{}", self.id, pipe_id)
    }

    /// The tree of one pipe, if it exists.
    pub fn member(&self, pipe_id: &str) -> Option<Arc<FsView>> {
        self.trees.read().get(pipe_id).cloned()
    }

    /// The tree of `pipe_id`, created on first use.
    pub fn member_or_create(&self, pipe_id: &str) -> Arc<FsView> {
        if let Some(t) = self.trees.read().get(pipe_id) {
            return Arc::clone(t);
        }
        let mut map = self.trees.write();
        // Another thread may have created it between the two locks.
        let tree = map.entry(pipe_id.to_string()).or_insert_with(|| {
            tracing::info!(view = %self.id, pipe = pipe_id, "forest: new member tree");
            Arc::new(FsView::new(self.tree_id(pipe_id), self.cfg.clone()))
        });
        Arc::clone(tree)
    }

    /// Member pipe ids in order (the order of `members` in every answer and of tie-breaking).
    pub fn pipes(&self) -> Vec<String> {
        self.trees.read().keys().cloned().collect()
    }

    /// A snapshot of the members, so a query never holds the map lock while it reads trees.
    pub fn members(&self) -> Vec<(String, Arc<FsView>)> {
        self.trees
            .read()
            .iter()
            .map(|(k, v)| (k.clone(), Arc::clone(v)))
            .collect()
    }

    pub fn member_count(&self) -> usize {
        self.trees.read().len()
    }

    /// The member map, for restoring a persisted forest.
    pub(crate) fn trees_mut(
        &self,
    ) -> parking_lot::RwLockWriteGuard<'_, BTreeMap<String, Arc<FsView>>> {
        self.trees.write()
    }

    fn each(&self, mut f: impl FnMut(&FsView)) {
        for (_, t) in self.members() {
            f(&t);
        }
    }
}

impl ViewDriver for ForestView {
    fn id(&self) -> &str {
        &self.id
    }

    fn driver_name(&self) -> &'static str {
        fustor_core::config::ViewDriverKind::ForestFs.name()
    }

    /// L1: one leader per tree.
    fn election_key(&self, pipe_id: &str) -> String {
        format!("{}:{}", self.id, pipe_id)
    }

    fn apply(&self, events: &[Event<FsRow>], ctx: &ViewContext<'_>, now: Now) -> ApplyReport {
        if ctx.pipe_id.is_empty() {
            // Without a pipe there is no tree to put the rows in (§14: dropped).
            tracing::warn!(
                view = %self.id,
                session = ctx.session_id,
                events = events.len(),
                "forest: events without a pipe id dropped"
            );
            return ApplyReport::default();
        }
        self.member_or_create(ctx.pipe_id)
            .apply_from(events, crate::fs::Sender::of(ctx), now)
    }

    /// V1 applies to the session's own tree only.
    fn session_started(&self, ctx: &ViewContext<'_>) {
        if ctx.pipe_id.is_empty() {
            tracing::warn!(view = %self.id, session = ctx.session_id, "forest: session without a pipe id ignored");
            return;
        }
        self.member_or_create(ctx.pipe_id).session_started();
    }

    /// Fusion passes `last` per election scope, i.e. per tree: V2 resets that tree only. The
    /// tree is kept (empty) so the member stays listed; a close never creates a tree.
    fn session_closed(&self, ctx: &ViewContext<'_>, last: bool) {
        if !last {
            return;
        }
        if let Some(t) = self.member(ctx.pipe_id) {
            t.reset();
        }
    }

    fn audit_start(&self, now: Now) {
        self.each(|t| t.audit_start(now));
    }

    fn audit_end(&self, now: Now) -> bool {
        let mut any = false;
        self.each(|t| any |= t.audit_end(now));
        any
    }

    /// Drops every tree: members reappear with their next event or session.
    fn reset(&self) {
        let old = std::mem::take(&mut *self.trees.write());
        // Queries that still hold an `Arc` keep reading the old tree until they finish; empty
        // the trees anyway so their memory goes back at once.
        for t in old.values() {
            t.reset();
        }
    }

    fn expire_suspects(&self, now: Now) {
        self.each(|t| {
            t.expire_suspects(now);
        });
    }

    /// Sentinel tasks are not produced for forest views (§14).
    fn suspect_paths(&self) -> Vec<String> {
        Vec::new()
    }

    fn update_suspects(&self, updates: &[SuspectUpdate], now: Now) -> usize {
        let mut n = 0;
        self.each(|t| n += t.update_suspects(updates, now));
        n
    }

    fn node_count(&self) -> usize {
        let mut n = 0;
        self.each(|t| n += t.read().node_count());
        n
    }

    fn persistence(&self) -> Option<&dyn fustor_core::view::PersistView> {
        Some(self)
    }
}

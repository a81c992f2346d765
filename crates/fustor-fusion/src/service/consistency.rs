//! Consistency operations (`wire-protocol.md` §5): audit start/end and the sentinel, for the
//! views a pipe (or view) id addresses.

use fustor_core::view::SuspectUpdate;
use fustor_core::wire::SentinelFeedback;

use crate::pipe::Control;
use crate::state::Fusion;

impl Fusion {
    /// Runs `op` on the views `id` addresses; answers how many views that is.
    async fn consistency_op(&self, id: &str, op: Control) -> usize {
        let generation = self.current();
        let views = generation.views_for(id);
        self.write_views(&generation, &views, op).await;
        views.len()
    }

    /// Audit start on every view of `id`.
    pub async fn audit_start(&self, id: &str) -> usize {
        self.consistency_op(id, Control::AuditStart).await
    }

    /// Audit end on every view of `id`, after every batch queued before it in every pipe that
    /// feeds them.
    pub async fn audit_end(&self, id: &str) -> usize {
        let generation = self.current();
        let views = generation.views_for(id);
        if self
            .write_views(&generation, &views, Control::AuditEnd)
            .await
            > 0
        {
            for v in &views {
                if let Some(s) = generation.stores.get(&v.id) {
                    s.reconciled();
                }
            }
        }
        views.len()
    }

    /// Sentinel paths of the views of `id`: sorted, without duplicates.
    pub async fn sentinel_paths(&self, id: &str) -> Vec<String> {
        let views = self.current().views_for(id);
        tokio::task::spawn_blocking(move || {
            let mut all: Vec<String> = views
                .iter()
                .flat_map(|v| v.driver.suspect_paths())
                .collect();
            all.sort();
            all.dedup();
            all
        })
        .await
        .unwrap_or_default()
    }

    /// Applies sentinel feedback to the views of `id`; `None` when its type is not known.
    /// Updates without a path or a finite mtime are skipped.
    pub async fn sentinel_feedback(&self, id: &str, fb: SentinelFeedback) -> Option<usize> {
        if fb.kind != "suspect_update" {
            return None;
        }
        let updates: Vec<SuspectUpdate> = fb
            .updates
            .into_iter()
            .filter_map(|u| match (u.path, u.mtime) {
                (Some(path), Some(mtime)) if mtime.is_finite() => Some(SuspectUpdate {
                    path,
                    mtime,
                    size: u.size,
                }),
                _ => None,
            })
            .collect();
        Some(
            self.consistency_op(id, Control::UpdateSuspects(updates.into()))
                .await,
        )
    }
}

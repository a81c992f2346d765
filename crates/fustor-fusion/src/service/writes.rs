//! Routing of view writes through the pipe queues: the consumer of a pipe is the only writer of
//! its views, so a control operation lands after the batches queued before it, with no drain
//! timeout deciding the order.

use std::collections::HashSet;
use std::sync::Arc;

use fustor_core::Now;
use fustor_core::view::ViewDriver;

use crate::persist::Stores;
use crate::pipe::{Control, PipeError, run_logged};
use crate::state::{Fusion, Generation, PipeEntry, ViewEntry};

impl Fusion {
    /// Applies `op` to `views` after everything queued before it in every pipe that feeds them.
    ///
    /// A view fed by several pipes is written by the first of them, after a barrier in each of
    /// the others. Views that no running pipe feeds have no other writer and run on the
    /// blocking pool. Answers what [`Control::run`] answers.
    pub async fn write_views(
        &self,
        generation: &Generation,
        views: &[Arc<ViewEntry>],
        op: Control,
    ) -> usize {
        if views.is_empty() {
            return 0;
        }
        let feeding: Vec<&Arc<PipeEntry>> = generation
            .pipes
            .values()
            .filter(|p| p.views.iter().any(|v| views.iter().any(|e| &e.id == v)))
            .collect();
        let drivers: Vec<Arc<dyn ViewDriver>> = views.iter().map(|v| v.driver.clone()).collect();
        let Some((writer, others)) = feeding.split_first() else {
            return run_unfed(op, drivers, generation.stores.clone()).await;
        };
        for p in others {
            log_failure(p.pipe.control_on(Control::Barrier, Vec::new()).await);
        }
        log_failure(writer.pipe.control_on(op, drivers).await)
    }

    /// Applies `op` to every view of `pipe`, after the batches queued before it.
    pub async fn write_pipe(&self, pipe: &PipeEntry, op: Control) -> usize {
        log_failure(pipe.pipe.control(op).await)
    }

    /// Suspect expiry of every view, each by one pipe that feeds it; the pipes run concurrently
    /// so one backed-up queue does not delay the others.
    pub async fn expire_suspects(&self) {
        let generation = self.current();
        let mut fed: HashSet<&str> = HashSet::new();
        let mut tasks = tokio::task::JoinSet::new();
        for p in generation.pipes.values() {
            let mine: Vec<Arc<dyn ViewDriver>> = p
                .views
                .iter()
                .filter(|v| fed.insert(v.as_str()))
                .filter_map(|v| generation.views.get(v))
                .map(|v| v.driver.clone())
                .collect();
            if !mine.is_empty() {
                let pipe = p.pipe.clone();
                tasks.spawn(async move { pipe.control_on(Control::ExpireSuspects, mine).await });
            }
        }
        let unfed: Vec<Arc<dyn ViewDriver>> = generation
            .views
            .values()
            .filter(|v| !fed.contains(v.id.as_str()))
            .map(|v| v.driver.clone())
            .collect();
        if !unfed.is_empty() {
            run_unfed(Control::ExpireSuspects, unfed, generation.stores.clone()).await;
        }
        while let Some(r) = tasks.join_next().await {
            if let Ok(r) = r {
                log_failure(r);
            }
        }
    }
}

/// A write to views no running pipe feeds: nothing else writes them, so it only has to leave
/// the async workers.
pub(super) async fn run_unfed(
    op: Control,
    views: Vec<Arc<dyn ViewDriver>>,
    stores: Arc<Stores>,
) -> usize {
    tokio::task::spawn_blocking(move || run_logged("", &op, &views, &stores, Now::system()))
        .await
        .unwrap_or(0)
}

fn log_failure(r: Result<usize, PipeError>) -> usize {
    r.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "view write not applied");
        0
    })
}

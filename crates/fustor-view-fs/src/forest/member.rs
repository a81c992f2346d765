//! Per-member evaluation: isolation of failures and optional parallelism across members.
//!
//! Members are independent trees, so a query asks each one separately. One member must not be
//! able to fail the whole answer (`query-api.md` §5: a failing member reports
//! `{"status":"error"}`), which includes a bug that panics inside one tree.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};

use crate::fs::FsView;

/// Runs `f` for one member, turning a panic into an error message.
pub(crate) fn guarded<T>(view: &str, pipe: &str, f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|e| {
        let msg = e
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| e.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        tracing::error!(view, pipe, error = %msg, "forest: member query failed");
        format!("internal error: {msg}")
    })
}

/// The JSON of a failed member.
pub(crate) fn error_json(msg: &str) -> Value {
    json!({"status": "error", "error": msg})
}

/// Runs `f` on every member, each call [`guarded`], on up to `available_parallelism` scoped
/// threads when `parallel` (the caller knows whether the work pays for a spawn, ~20-50 µs).
/// Results keep the order of `members` (pipe-id order).
pub(crate) fn per_member<T: Send>(
    view: &str,
    members: &[(String, Arc<FsView>)],
    parallel: bool,
    f: impl Fn(&str, &FsView) -> T + Sync,
) -> Vec<Result<T, String>> {
    let one = |(pipe, tree): &(String, Arc<FsView>)| guarded(view, pipe, || f(pipe, tree));
    let workers = crate::cores().min(members.len());
    if workers <= 1 || !parallel {
        return members.iter().map(one).collect();
    }
    let next = AtomicUsize::new(0);
    let mut slots: Vec<Option<Result<T, String>>> = (0..members.len()).map(|_| None).collect();
    let work = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(m) = members.get(i) else { break };
            done.push((i, one(m)));
        }
        done
    };
    // The calling thread takes a share too: one spawn fewer (~25 µs each here).
    let done: Vec<(usize, Result<T, String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (1..workers).map(|_| s.spawn(work)).collect();
        let mut done = work();
        for h in handles {
            done.extend(h.join().unwrap_or_default());
        }
        done
    });
    for (i, r) in done {
        if let Some(slot) = slots.get_mut(i) {
            *slot = Some(r);
        }
    }
    slots
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err("internal error: worker lost".to_string())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guarded_turns_panics_into_errors() {
        assert_eq!(guarded("v", "p", || 3), Ok(3));
        let e = guarded("v", "p", || -> u32 { panic!("boom") });
        assert_eq!(e, Err("internal error: boom".to_string()));
    }

    #[test]
    fn per_member_keeps_order_and_isolates_panics_in_both_modes() {
        let members: Vec<(String, Arc<FsView>)> = (0..6)
            .map(|i| {
                let id = format!("p{i}");
                (id.clone(), Arc::new(FsView::new(id, Default::default())))
            })
            .collect();
        for parallel in [false, true] {
            let out = per_member("v", &members, parallel, |pipe, t| {
                assert_ne!(pipe, "p3", "member p3 fails");
                format!("{pipe}={}", t.id())
            });
            assert_eq!(out.len(), 6);
            assert_eq!(out[0], Ok("p0=p0".to_string()));
            assert_eq!(out[5], Ok("p5=p5".to_string()));
            assert!(out[3].as_ref().is_err_and(|e| e.contains("p3 fails")));
        }
    }
}

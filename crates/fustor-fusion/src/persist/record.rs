//! Log records: what a pipe consumer applied to a view, enough to apply it again in order.
//!
//! A batch is logged as its events in a compact binary form ([`super::events`]), about a
//! quarter of the JSON it came in: the answer waits for this record to reach the disk. Every
//! record carries the time it was applied with, so replay makes the same decisions
//! (tombstones, suspects, clock).

use std::sync::Arc;

use fustor_core::view::{SuspectUpdate, ViewContext, ViewDriver};
use fustor_core::wire::ResumePoint;
use fustor_core::{Event, FsRow, Now};
use fustor_view_fs::fs::persist::chunk::{Put, Rd};

use crate::pipe::{Control, SessionRef};

const K_EVENTS: u8 = 1;
const K_CONTROL: u8 = 2;
/// A realtime batch with the agent position it ends at (issue 11, resume).
const K_EVENTS_AT: u8 = 3;

const C_SESSION_STARTED: u8 = 1;
const C_SESSION_CLOSED: u8 = 2;
const C_AUDIT_START: u8 = 3;
const C_AUDIT_END: u8 = 4;
const C_RESET: u8 = 5;
const C_EXPIRE_SUSPECTS: u8 = 6;
const C_UPDATE_SUSPECTS: u8 = 7;

fn head(kind: u8, now: Now, pipe_id: &str, s: Option<&SessionRef>) -> Vec<u8> {
    let mut b = Vec::with_capacity(128);
    b.put_u8(kind);
    b.put_f64(now.epoch);
    b.put_f64(now.mono);
    b.put_bytes(pipe_id.as_bytes());
    b.put_bytes(s.map_or("", |s| &s.session_id).as_bytes());
    b.put_bytes(s.map_or("", |s| &s.agent_id).as_bytes());
    b.put_opt_str(s.and_then(|s| s.source_uri.as_deref()));
    b
}

/// A batch record; `at`: the task and agent position the batch ends at.
pub fn batch(
    now: Now,
    pipe_id: &str,
    s: &SessionRef,
    events: &[Event<FsRow>],
    at: Option<(&str, &ResumePoint)>,
) -> Vec<u8> {
    let kind = if at.is_some() { K_EVENTS_AT } else { K_EVENTS };
    let mut b = head(kind, now, pipe_id, Some(s));
    b.reserve(events.iter().map(|e| e.rows.len() * 48 + 64).sum());
    if let Some((task, p)) = at {
        b.put_bytes(task.as_bytes());
        b.put_bytes(p.epoch.as_bytes());
        b.put_var(p.seq);
    }
    super::events::encode(events, &mut b);
    b
}

/// What replaying a record tells the store besides the view's content.
#[derive(Debug, Default)]
pub struct Replayed {
    /// `(pipe id, task id, position)` of a realtime batch.
    pub committed: Option<(String, String, ResumePoint)>,
    /// The record emptied the view: the positions recorded before it are void.
    pub emptied: bool,
}

/// A control record; `None` for operations that change no view (barriers).
pub fn control(now: Now, pipe_id: &str, op: &Control) -> Option<Vec<u8>> {
    let session = match op {
        Control::SessionStarted(s) | Control::SessionClosed { session: s, .. } => Some(s),
        _ => None,
    };
    let mut b = head(K_CONTROL, now, pipe_id, session);
    match op {
        Control::Barrier => return None,
        Control::SessionStarted(_) => b.put_u8(C_SESSION_STARTED),
        Control::SessionClosed { last, .. } => {
            b.put_u8(C_SESSION_CLOSED);
            b.put_u8(u8::from(*last));
        }
        Control::AuditStart => b.put_u8(C_AUDIT_START),
        Control::AuditEnd => b.put_u8(C_AUDIT_END),
        Control::Reset => b.put_u8(C_RESET),
        Control::ExpireSuspects => b.put_u8(C_EXPIRE_SUSPECTS),
        Control::UpdateSuspects(updates) => {
            b.put_u8(C_UPDATE_SUSPECTS);
            b.put_var(updates.len() as u64);
            for u in updates.iter() {
                b.put_bytes(u.path.as_bytes());
                b.put_f64(u.mtime);
                match u.size {
                    Some(s) => {
                        b.put_u8(1);
                        b.put_var(s);
                    }
                    None => b.put_u8(0),
                }
            }
        }
    }
    Some(b)
}

/// Whether a control operation leaves the whole view empty (the restored content is gone).
/// A forest's session close empties one member only.
pub fn empties(op: &Control, driver: &str) -> bool {
    match op {
        Control::Reset => true,
        Control::SessionClosed { last: true, .. } => {
            driver == fustor_core::config::ViewDriverKind::Fs.name()
        }
        _ => false,
    }
}

fn bad(e: impl std::fmt::Display) -> String {
    format!("undecodable log record: {e}")
}

/// Applies one record to `view` again. `offset` maps the record's monotonic time into this
/// process's monotonic clock (`mono_now - epoch_now`): the record's wall time is kept.
pub fn replay(view: &Arc<dyn ViewDriver>, payload: &[u8], offset: f64) -> Result<Replayed, String> {
    let mut r = Rd::new(payload);
    let kind = r.u8().map_err(bad)?;
    let epoch = r.f64().map_err(bad)?;
    let _mono = r.f64().map_err(bad)?;
    let now = Now::at(epoch, epoch + offset);
    let pipe_id = r.str().map_err(bad)?;
    let session_id = r.str().map_err(bad)?;
    let agent_id = r.str().map_err(bad)?;
    let source_uri = r.opt_str().map_err(bad)?;
    let ctx = ViewContext {
        pipe_id,
        session_id,
        agent_id,
        source_uri,
    };
    match kind {
        K_EVENTS | K_EVENTS_AT => {
            let mut out = Replayed::default();
            if kind == K_EVENTS_AT {
                let task = r.str().map_err(bad)?.to_string();
                let epoch = r.str().map_err(bad)?.to_string();
                let seq = r.var().map_err(bad)?;
                out.committed = Some((pipe_id.to_string(), task, ResumePoint { epoch, seq }));
            }
            let events = super::events::decode(&mut r).map_err(bad)?;
            if !r.is_empty() {
                return Err(bad("bytes after the events"));
            }
            crate::pipe::apply_events(view, &events, &ctx, now);
            Ok(out)
        }
        K_CONTROL => {
            let op = match r.u8().map_err(bad)? {
                C_SESSION_STARTED => {
                    view.session_started(&ctx);
                    return Ok(Replayed::default());
                }
                C_SESSION_CLOSED => {
                    let last = r.u8().map_err(bad)? != 0;
                    view.session_closed(&ctx, last);
                    return Ok(Replayed {
                        committed: None,
                        emptied: last
                            && view.driver_name() == fustor_core::config::ViewDriverKind::Fs.name(),
                    });
                }
                C_AUDIT_START => Control::AuditStart,
                C_AUDIT_END => Control::AuditEnd,
                C_RESET => Control::Reset,
                C_EXPIRE_SUSPECTS => Control::ExpireSuspects,
                C_UPDATE_SUSPECTS => {
                    let n = r.var().map_err(bad)?;
                    let mut v = Vec::new();
                    for _ in 0..n {
                        let path = r.str().map_err(bad)?.to_string();
                        let mtime = r.f64().map_err(bad)?;
                        let size = match r.u8().map_err(bad)? {
                            0 => None,
                            _ => Some(r.var().map_err(bad)?),
                        };
                        v.push(SuspectUpdate { path, mtime, size });
                    }
                    Control::UpdateSuspects(v.into())
                }
                t => return Err(bad(format!("control {t}"))),
            };
            op.run(pipe_id, std::slice::from_ref(view), now);
            Ok(Replayed {
                committed: None,
                emptied: matches!(op, Control::Reset),
            })
        }
        t => Err(bad(format!("kind {t}"))),
    }
}

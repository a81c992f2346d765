//! Event construction shared by every producer.

use fustor_core::{Event, EventType, FsRow, MessageSource};

/// Rows per snapshot/on-demand event and file rows per audit event (§10.4–10.5).
pub const BATCH_ROWS: usize = 100;

pub(crate) fn fs_event(
    event_type: EventType,
    source: MessageSource,
    rows: Vec<FsRow>,
    index: i64,
    timestamp: f64,
) -> Event<FsRow> {
    let mut e = Event::fs(event_type, source, rows);
    e.index = index;
    e.timestamp = Some(timestamp);
    e
}

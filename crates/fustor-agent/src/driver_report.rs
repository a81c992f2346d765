//! `fustor-agent drivers`: what this build's registered drivers support, read from the
//! driver tables themselves so that a new driver appears by its registration line alone.

use std::fmt::Write;

use fustor_transport_http::{SenderDrivers, SenderSupports};

use crate::source::{SourceDrivers, Supports};

const DECLARED: &str = "declared by the executable at its handshake (docs/drivers.md)";

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// The report as printed.
pub fn report(sources: &SourceDrivers, senders: &SenderDrivers) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Source drivers:");
    let _ = writeln!(
        out,
        "  {:<10} {:<9} {:<8} {:<6} {:<9} {:<10} POSITIONS",
        "DRIVER", "SNAPSHOT", "CHANGES", "AUDIT", "SENTINEL", "ON-DEMAND"
    );
    for (name, s) in sources.supports() {
        let _ = writeln!(out, "  {}", source_line(name, &s));
    }
    let _ = writeln!(out, "Sender drivers:");
    let _ = writeln!(
        out,
        "  {:<10} {:<7} {:<9} CONSISTENCY",
        "DRIVER", "REMOTE", "ELECTION"
    );
    for (name, s) in senders.supports() {
        let _ = writeln!(out, "  {}", sender_line(name, &s));
    }
    out
}

fn source_line(name: &str, s: &Supports) -> String {
    if s.declared_by_driver {
        return format!("{name:<10} {DECLARED}");
    }
    format!(
        "{name:<10} {:<9} {:<8} {:<6} {:<9} {:<10} {}",
        yes(s.snapshot),
        yes(s.changes),
        yes(s.audit),
        yes(s.sentinel),
        yes(s.on_demand),
        yes(s.positions)
    )
}

fn sender_line(name: &str, s: &SenderSupports) -> String {
    if s.declared_by_driver {
        return format!("{name:<10} {DECLARED}");
    }
    format!(
        "{name:<10} {:<7} {:<9} {}",
        yes(s.remote),
        yes(s.election),
        yes(s.consistency)
    )
}

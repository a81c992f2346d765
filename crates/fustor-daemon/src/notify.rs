//! systemd's readiness protocol (`Type=notify`, `sd_notify(3)`): a datagram to `$NOTIFY_SOCKET`.
//!
//! With `Type=simple` systemd counts a daemon as started the moment it forks, so `systemctl
//! start` succeeded even when Fusion then failed to bind its port or load its views; with
//! `Type=notify` the start job waits for `READY=1`, which the daemons send only once they serve,
//! and fails when the process exits first. The protocol is one `AF_UNIX` datagram per message;
//! a dozen lines of std is lighter than a crate (and than libsystemd).
//!
//! Outside systemd (`NOTIFY_SOCKET` unset) every call is a no-op.

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::Path;
use std::time::Duration;

/// Sends `state` (`READY=1`, `STOPPING=1`, `STATUS=…`, newline-separated) to the service
/// manager. `Ok(false)` when not started by one.
pub fn notify(state: &str) -> io::Result<bool> {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(false);
    };
    let sock = UnixDatagram::unbound()?;
    // `@name` is a Linux abstract socket (what systemd uses for user managers, and containers).
    let addr = match target.as_bytes().strip_prefix(b"@") {
        Some(name) => SocketAddr::from_abstract_name(name)?,
        None => SocketAddr::from_pathname(Path::new(&target))?,
    };
    sock.send_to_addr(state.as_bytes(), &addr)?;
    Ok(true)
}

/// Logs instead of failing: a lost notification must not stop a daemon that otherwise works
/// (systemd then reports the start as timed out, which names the problem).
fn send(state: &str) {
    if let Err(e) = notify(state) {
        tracing::warn!(error = %e, "could not notify the service manager");
    }
}

/// The daemon serves: listeners bound, persisted state loaded, pipes started.
pub fn ready(status: &str) {
    send(&format!(
        "READY=1\nSTATUS={status}\nMAINPID={}",
        std::process::id()
    ));
}

/// Shutdown has begun (systemd then shows `deactivating` instead of a failure).
pub fn stopping() {
    send("STOPPING=1");
}

/// Half the watchdog period systemd asked for (`WatchdogSec=` → `WATCHDOG_USEC`), when it
/// asked this process (`WATCHDOG_PID`, if set, names it).
pub fn watchdog_interval() -> Option<Duration> {
    if let Some(pid) = std::env::var_os("WATCHDOG_PID") {
        if pid.to_str().and_then(|p| p.parse::<u32>().ok()) != Some(std::process::id()) {
            return None;
        }
    }
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

/// Pings the watchdog from the async runtime, so a wedged runtime (not just a live process)
/// gets the daemon restarted. Nothing when no watchdog is configured.
pub fn spawn_watchdog() {
    let Some(every) = watchdog_interval() else {
        return;
    };
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            send("WATCHDOG=1");
        }
    });
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn no_socket_is_a_no_op() {
        // NOTIFY_SOCKET is never set for the test binary (cargo does not run under a unit that
        // passes it on to children).
        if std::env::var_os("NOTIFY_SOCKET").is_none() {
            assert!(!notify("READY=1").unwrap());
        }
    }
}

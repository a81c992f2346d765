//! One run of a driver executable: its stdin writer, its stdout reader (typed messages, capped
//! lines, back-pressure) and its stderr forwarded to the agent log.
//!
//! Every pipe to the child is served by its own thread so that a child that stops reading,
//! stops writing or floods never blocks the agent: writes go through a bounded queue (a full
//! queue means the child is not reading: it is reported as hung), reads hand each message to
//! a handler that may block (that is the back-pressure: the child then blocks on its write),
//! and a line longer than the cap ends the run as garbage.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::ExecError;

/// Lines queued for the child's stdin before it counts as not reading.
const STDIN_QUEUE: usize = 1024;
/// Longest stderr line logged (the rest of the line is dropped).
const STDERR_LINE: usize = 4096;

/// Why the stdout reader stopped.
#[derive(Debug, Clone, PartialEq)]
pub enum ReaderEnd {
    /// The child closed its stdout (exited or crashed).
    Eof,
    /// A line that is not a protocol message, or too long: the child is killed.
    Garbage(String),
    /// The handler asked to stop (the agent is closing the source).
    Stopped,
}

/// How the process is started and its limits.
#[derive(Debug, Clone)]
pub struct Launch {
    pub command: Vec<String>,
    pub max_line_bytes: usize,
    /// Shown in logs.
    pub name: String,
}

/// A running child. Dropping it kills the child.
pub struct DriverProcess {
    child: Child,
    stdin: SyncSender<Vec<u8>>,
    /// Set while the reader waits for its handler (the agent is the slow side, not the child).
    pub reader_blocked: Arc<AtomicBool>,
    pub ended: Receiver<ReaderEnd>,
    name: String,
}

impl DriverProcess {
    /// Starts the child; `handle` is called on the reader thread for each message: `Ok(true)`
    /// reads on, `Ok(false)` stops, `Err` ends the run as garbage (a message the role does not
    /// allow, a fatal driver error).
    pub fn spawn<M, H>(launch: &Launch, mut handle: H) -> Result<DriverProcess, ExecError>
    where
        M: DeserializeOwned + Send + 'static,
        H: FnMut(M) -> Result<bool, String> + Send + 'static,
    {
        let (program, args) = launch
            .command
            .split_first()
            .ok_or_else(|| ExecError::Config("command must not be empty".into()))?;
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| ExecError::Spawn(format!("{program:?}: {e}")))?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(ExecError::Spawn("the child's pipes are missing".into()));
        };
        let name = launch.name.clone();
        let (in_tx, in_rx) = sync_channel::<Vec<u8>>(STDIN_QUEUE);
        spawn_thread("exec-stdin", move || write_stdin(stdin, in_rx))?;
        let n = name.clone();
        spawn_thread("exec-stderr", move || log_stderr(stderr, &n))?;
        let blocked = Arc::new(AtomicBool::new(false));
        let (end_tx, end_rx) = sync_channel::<ReaderEnd>(1);
        let cap = launch.max_line_bytes.max(64);
        let b = blocked.clone();
        spawn_thread("exec-stdout", move || {
            let end = read_stdout(stdout, cap, &b, &mut handle);
            let _ = end_tx.send(end);
        })?;
        Ok(DriverProcess {
            child,
            stdin: in_tx,
            reader_blocked: blocked,
            ended: end_rx,
            name,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Queues one message; a full queue means the child stopped reading its stdin.
    pub fn send<T: Serialize>(&self, msg: &T) -> Result<(), ExecError> {
        send_line(&self.stdin, msg)
    }

    /// A handle other threads use to write to the child.
    pub fn writer(&self) -> Writer {
        Writer(self.stdin.clone())
    }

    /// Asks the child to exit (`shutdown`), waits up to `grace`, then kills it.
    pub fn shutdown<T: Serialize>(mut self, bye: &T, grace: Duration) {
        let _ = self.send(bye);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    tracing::info!(driver = %self.name, %status, "exec driver exited");
                    return;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(_) => break,
            }
        }
        tracing::warn!(driver = %self.name, "exec driver did not exit after shutdown; killed");
        self.kill();
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Exit status if the child is gone.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for DriverProcess {
    fn drop(&mut self) {
        if self.exited().is_none() {
            self.kill();
        }
    }
}

/// A cloneable sender of messages to the child.
#[derive(Clone)]
pub struct Writer(SyncSender<Vec<u8>>);

impl Writer {
    pub fn send<T: Serialize>(&self, msg: &T) -> Result<(), ExecError> {
        send_line(&self.0, msg)
    }
}

fn send_line<T: Serialize>(tx: &SyncSender<Vec<u8>>, msg: &T) -> Result<(), ExecError> {
    let mut line = serde_json::to_vec(msg).map_err(|e| ExecError::Protocol(e.to_string()))?;
    line.push(b'\n');
    match tx.try_send(line) {
        Ok(()) => Ok(()),
        Err(TrySendError::Full(_)) => Err(ExecError::Hung(
            "the driver stopped reading its stdin".into(),
        )),
        Err(TrySendError::Disconnected(_)) => Err(ExecError::Gone),
    }
}

fn spawn_thread(name: &str, f: impl FnOnce() + Send + 'static) -> Result<(), ExecError> {
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(f)
        .map(drop)
        .map_err(|e| ExecError::Spawn(format!("thread: {e}")))
}

fn write_stdin(mut stdin: ChildStdin, rx: Receiver<Vec<u8>>) {
    while let Ok(line) = rx.recv() {
        if stdin.write_all(&line).is_err() {
            return;
        }
        // Flush when nothing else is queued, so bursts go out in few writes.
        if let Ok(next) = rx.try_recv() {
            if stdin.write_all(&next).is_err() {
                return;
            }
        }
        if stdin.flush().is_err() {
            return;
        }
    }
}

fn log_stderr(stderr: impl Read, name: &str) {
    let mut r = BufReader::new(stderr);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match read_capped(&mut r, &mut buf, STDERR_LINE, true) {
            Ok(Line::Eof) => return,
            Ok(Line::Full | Line::TooLong) => {
                // Escaped: a driver's output may hold control characters or invalid UTF-8.
                let text = String::from_utf8_lossy(&buf);
                let text = text.trim_end_matches('\n').escape_debug().to_string();
                tracing::info!(driver = %name, stderr = %text, "exec driver stderr");
            }
            Err(_) => return,
        }
    }
}

fn read_stdout<M: DeserializeOwned>(
    stdout: impl Read,
    cap: usize,
    blocked: &AtomicBool,
    handle: &mut impl FnMut(M) -> Result<bool, String>,
) -> ReaderEnd {
    let mut r = BufReader::with_capacity(64 * 1024, stdout);
    let mut buf = Vec::with_capacity(4096);
    loop {
        buf.clear();
        match read_capped(&mut r, &mut buf, cap, false) {
            Ok(Line::Eof) => return ReaderEnd::Eof,
            Ok(Line::TooLong) => {
                return ReaderEnd::Garbage(format!("a line longer than {cap} bytes"));
            }
            Ok(Line::Full) => {}
            Err(e) => return ReaderEnd::Garbage(format!("unreadable stdout: {e}")),
        }
        let line = trim_line(&buf);
        if line.is_empty() {
            continue;
        }
        let msg = match serde_json::from_slice::<M>(line) {
            Ok(m) => m,
            Err(e) => {
                let shown: String = String::from_utf8_lossy(&line[..line.len().min(120)])
                    .escape_debug()
                    .collect();
                return ReaderEnd::Garbage(format!("not a protocol message ({e}): {shown}"));
            }
        };
        blocked.store(true, Ordering::SeqCst);
        let flow = handle(msg);
        blocked.store(false, Ordering::SeqCst);
        match flow {
            Ok(true) => {}
            Ok(false) => return ReaderEnd::Stopped,
            Err(reason) => return ReaderEnd::Garbage(reason),
        }
    }
}

fn trim_line(buf: &[u8]) -> &[u8] {
    let mut end = buf.len();
    while end > 0 && matches!(buf[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    &buf[..end]
}

enum Line {
    Full,
    /// More than the cap before a newline (the buffer holds the first `cap` bytes; the rest
    /// of the line is consumed).
    TooLong,
    Eof,
}

/// Reads one line into `buf` without ever holding more than `cap` bytes of it. With `drain`
/// the rest of a long line is consumed (stderr); without, reading stops at the cap (stdout:
/// the child is killed anyway).
fn read_capped(
    r: &mut impl BufRead,
    buf: &mut Vec<u8>,
    cap: usize,
    drain: bool,
) -> std::io::Result<Line> {
    let mut too_long = false;
    loop {
        let avail = match r.fill_buf() {
            Ok(a) => a,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            return Ok(if too_long {
                Line::TooLong
            } else if buf.is_empty() {
                Line::Eof
            } else {
                Line::Full
            });
        }
        let (chunk, done) = match avail.iter().position(|&b| b == b'\n') {
            Some(i) => (&avail[..=i], true),
            None => (avail, false),
        };
        let n = chunk.len();
        let room = cap.saturating_sub(buf.len());
        if n > room {
            buf.extend_from_slice(&chunk[..room]);
            too_long = true;
        } else if !too_long {
            buf.extend_from_slice(chunk);
        }
        r.consume(n);
        if done {
            return Ok(if too_long { Line::TooLong } else { Line::Full });
        }
        if too_long && !drain {
            return Ok(Line::TooLong);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_lines() {
        let data = b"short\n0123456789abcdef\nlast";
        let mut r = BufReader::with_capacity(4, &data[..]);
        let mut buf = Vec::new();
        assert!(matches!(
            read_capped(&mut r, &mut buf, 8, true).unwrap(),
            Line::Full
        ));
        assert_eq!(buf, b"short\n");
        buf.clear();
        assert!(matches!(
            read_capped(&mut r, &mut buf, 8, true).unwrap(),
            Line::TooLong
        ));
        assert_eq!(buf.len(), 8);
        buf.clear();
        assert!(matches!(
            read_capped(&mut r, &mut buf, 8, true).unwrap(),
            Line::Full
        ));
        assert_eq!(buf, b"last");
        buf.clear();
        assert!(matches!(
            read_capped(&mut r, &mut buf, 8, true).unwrap(),
            Line::Eof
        ));
    }
}

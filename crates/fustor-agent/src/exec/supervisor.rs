//! The life cycle shared by exec sources and senders: start the process, check its handshake,
//! ping it, and restart it with exponential backoff when it exits, hangs or writes garbage.
//! What a run means for the pipe (routing messages, recovering after a restart) is the
//! role's, behind [`Supervised`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, sync_channel};
use std::time::{Duration, Instant};

use super::process::{DriverProcess, Launch, ReaderEnd, Writer};
use super::protocol::{DriverHello, FromDriver, PROTOCOL_VERSION, ToDriver};
use super::{ExecError, ExecParams};

/// A run at least this long resets the crash-loop counter.
const STABLE_RUN: Duration = Duration::from_secs(30);
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);
const TICK: Duration = Duration::from_millis(100);

/// What the supervisor needs of a driver, whatever its role.
pub(crate) struct DriverCore {
    pub name: String,
    pub params: ExecParams,
    pub launch: Launch,
    /// Set when the source or sender is dropped: the supervisor ends the run and stops.
    pub stop: AtomicBool,
}

impl DriverCore {
    pub fn new(params: ExecParams) -> Result<DriverCore, ExecError> {
        let name = params.display_name();
        let launch = params.launch(&name)?;
        Ok(DriverCore {
            name,
            params,
            launch,
            stop: AtomicBool::new(false),
        })
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

/// One role (source or sender) of a supervised driver.
pub(crate) trait Supervised: Send + Sync + 'static {
    fn driver(&self) -> &DriverCore;
    /// Writes the role's `hello` to a new run.
    fn send_hello(&self, proc: &DriverProcess) -> Result<(), ExecError>;
    /// A message after the handshake (pongs are the supervisor's); `Err` kills the run.
    fn on_message(&self, msg: FromDriver) -> Result<bool, String>;
    /// The run is ready (`first`: the first run of this source or sender).
    fn on_up(&self, writer: Writer, hello: DriverHello, first: bool);
    /// The run ended; returns what to add to the report.
    fn on_down(&self) -> String;
    /// Records and logs a problem (shown in the pipe status).
    fn report(&self, problem: String);
}

/// Runs the driver until the role is stopping.
pub(crate) fn supervise<S: Supervised>(sh: &Arc<S>) {
    let mut failures: u32 = 0;
    let mut first = true;
    while !sh.driver().stopping() {
        let started = Instant::now();
        let outcome = run_once(sh, first);
        first = false;
        let note = sh.on_down();
        if sh.driver().stopping() {
            break;
        }
        if started.elapsed() >= STABLE_RUN {
            failures = 0;
        }
        failures = failures.saturating_add(1);
        let delay = sh.driver().params.restart_delay(failures);
        sh.report(format!(
            "{outcome}{note}; restart {failures} in {:.1} s",
            delay.as_secs_f64()
        ));
        let deadline = Instant::now() + delay;
        while Instant::now() < deadline && !sh.driver().stopping() {
            std::thread::sleep(TICK.min(deadline.saturating_duration_since(Instant::now())));
        }
    }
}

/// One run: spawn, handshake, then watch until it ends; returns why it ended.
fn run_once<S: Supervised>(sh: &Arc<S>, first: bool) -> String {
    let (hello_tx, hello_rx) = sync_channel::<DriverHello>(1);
    let pong = Arc::new(AtomicU64::new(0));
    let weak = Arc::downgrade(sh);
    let mut greeted = false;
    let p = pong.clone();
    let handler = move |msg: FromDriver| {
        let Some(sh) = weak.upgrade() else {
            return Ok(false);
        };
        if sh.driver().stopping() {
            return Ok(false);
        }
        match msg {
            FromDriver::Hello(h) if !greeted => {
                greeted = true;
                let _ = hello_tx.try_send(h);
                Ok(true)
            }
            _ if !greeted => Err("the first message must be hello".to_string()),
            FromDriver::Hello(_) => Err("a second hello".to_string()),
            FromDriver::Pong { id } => {
                p.fetch_max(id, Ordering::SeqCst);
                Ok(true)
            }
            other => sh.on_message(other),
        }
    };
    let proc = match DriverProcess::spawn(&sh.driver().launch, handler) {
        Ok(p) => p,
        Err(e) => return e.to_string(),
    };
    tracing::info!(driver = %sh.driver().name, pid = proc.pid(), "exec driver started");
    if let Err(e) = sh.send_hello(&proc) {
        return e.to_string();
    }
    let hello = match wait_hello(sh.as_ref(), &proc, &hello_rx) {
        Ok(h) => h,
        Err(why) => return why,
    };
    if hello.protocol != PROTOCOL_VERSION {
        proc.shutdown(&ToDriver::Shutdown, SHUTDOWN_GRACE);
        return format!(
            "handshake: the driver speaks protocol {}, this agent {PROTOCOL_VERSION}",
            hello.protocol
        );
    }
    tracing::info!(driver = %sh.driver().name, name = %hello.driver.escape_debug(),
        version = ?hello.version, capabilities = ?hello.capabilities, "exec driver ready");
    sh.on_up(proc.writer(), hello, first);
    watch(sh.as_ref(), proc, &pong)
}

fn wait_hello<S: Supervised>(
    sh: &S,
    proc: &DriverProcess,
    hello_rx: &Receiver<DriverHello>,
) -> Result<DriverHello, String> {
    let timeout = sh.driver().params.handshake_timeout();
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(h) = hello_rx.recv_timeout(TICK) {
            return Ok(h);
        }
        if let Ok(end) = proc.ended.try_recv() {
            return Err(format!("handshake: {}", describe(&end)));
        }
        if sh.driver().stopping() {
            return Err("closed during the handshake".into());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "no handshake within {:.1} s; killed",
                timeout.as_secs_f64()
            ));
        }
    }
}

fn describe(end: &ReaderEnd) -> String {
    match end {
        ReaderEnd::Eof => "the driver exited".into(),
        ReaderEnd::Garbage(why) => format!("{why}; killed"),
        ReaderEnd::Stopped => "stopped".into(),
    }
}

/// Pings the running process until it ends, hangs or the role stops.
fn watch<S: Supervised>(sh: &S, mut proc: DriverProcess, pong: &AtomicU64) -> String {
    let interval = sh.driver().params.ping_interval();
    let reply = sh.driver().params.reply_timeout();
    let mut ping_id = 0u64;
    let mut next_ping = Instant::now() + interval;
    let mut outstanding: Option<(u64, Instant)> = None;
    loop {
        match proc.ended.recv_timeout(TICK) {
            Ok(ReaderEnd::Eof) => {
                let status = wait_exit(&mut proc);
                return format!("the driver exited ({status})");
            }
            Ok(end) => {
                proc.kill();
                return describe(&end);
            }
            Err(RecvTimeoutError::Disconnected) => return "the reader stopped".into(),
            Err(RecvTimeoutError::Timeout) => {}
        }
        if sh.driver().stopping() {
            proc.shutdown(&ToDriver::Shutdown, SHUTDOWN_GRACE);
            return "closed".into();
        }
        let now = Instant::now();
        if let Some((id, sent)) = outstanding {
            if pong.load(Ordering::SeqCst) >= id {
                outstanding = None;
            } else if proc.reader_blocked.load(Ordering::SeqCst) {
                // The agent is the slow side: the pong waits behind rows being consumed.
                outstanding = Some((id, now));
            } else if now.duration_since(sent) > reply {
                return format!("no pong within {:.1} s (hung); killed", reply.as_secs_f64());
            }
        }
        if outstanding.is_none() && now >= next_ping {
            ping_id += 1;
            if let Err(e) = proc.send(&ToDriver::Ping { id: ping_id }) {
                return format!("{e}; killed");
            }
            outstanding = Some((ping_id, now));
            next_ping = now + interval;
        }
    }
}

/// The exit status after the child closed its stdout (killed if it lingers).
fn wait_exit(proc: &mut DriverProcess) -> String {
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        if let Some(st) = proc.exited() {
            return st.to_string();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    "still running; killed".into()
}

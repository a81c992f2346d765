//! End-to-end harness (`scenarios.md` F0/F1): a real Fusion (the `fustor-fusion` library,
//! in-process on its own runtime, listening on 127.0.0.1) and real `fustor-agent` processes,
//! each on its own temporary `--home`, watching real directories.
//!
//! * [`Fusion`]: start, stop, restart (same ports), reload, and blocking HTTP helpers.
//! * [`AgentProc`]: one agent process; SIGTERM/SIGKILL; its log.
//! * [`BindMount`]: a bindfs mount of a shared backing directory = one NFS client's view;
//!   writes made directly into the backing directory are a host without an agent (blind
//!   writer). Always unmounted on drop.
//! * [`Proxy`]: a TCP relay that can cut the agent's network (S79).
//! * [`Cluster`]: owns all of the above and tears them down in order, even on panic.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fustor_fusion::daemon::{FusionServer, Overrides};
use serde_json::Value;

pub const AGENT_BIN: &str = env!("CARGO_BIN_EXE_fustor-agent");

pub use fustor_testkit::free_port;

pub fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

// ------------------------------------------------------------------------------------ Fusion

/// Per-pipe timings of the Fusion fixture (F0 with short intervals).
#[derive(Debug, Clone)]
pub struct FusionOpts {
    pub session_timeout: u32,
    pub audit_interval: f64,
    pub sentinel_interval: f64,
    pub hot: f64,
}

impl Default for FusionOpts {
    fn default() -> Self {
        FusionOpts {
            session_timeout: 3,
            audit_interval: 3.0,
            sentinel_interval: 2.0,
            hot: 5.0,
        }
    }
}

pub struct Fusion {
    pub home: PathBuf,
    pub main_port: u16,
    pub recv_port: u16,
    pub opts: FusionOpts,
    rt: Option<tokio::runtime::Runtime>,
    server: Option<Arc<FusionServer>>,
    pub http: reqwest::blocking::Client,
}

/// A JSON answer (`Null` body when not JSON; status 0 when the request failed).
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub body: Value,
}

impl Fusion {
    pub fn yaml(main: u16, recv: u16, o: &FusionOpts) -> String {
        let pipe = format!(
            "{{receiver: http-main, views: [VIEW], session_timeout_seconds: {}, audit_interval_sec: {}, sentinel_interval_sec: {}}}",
            o.session_timeout, o.audit_interval, o.sentinel_interval
        );
        format!(
            "host: 127.0.0.1\nport: {main}\nsession_cleanup_interval: 0.5\n\
             receivers:\n  http-main: {{driver: http, bind_host: 127.0.0.1, port: {recv}, api_keys: [{{key: agent-key, pipe_id: v1}}, {{key: agent-key-2, pipe_id: v2}}]}}\n\
             views:\n  v1: {{driver: fs, api_keys: [qk1, {{key: qk-u4321, uid: 4321, gids: [4321]}}, {{key: qk-u777, uid: 777, gids: [777, 8765]}}], driver_params: {{hot_file_threshold: {hot}, consistency: {{tombstone_ttl_seconds: 0.5}}}}}}\n  v2: {{driver: fs, api_keys: [qk2], driver_params: {{hot_file_threshold: {hot}}}}}\n\
             pipes:\n  v1: {p1}\n  v2: {p2}\n",
            hot = o.hot,
            p1 = pipe.replace("VIEW", "v1"),
            p2 = pipe.replace("VIEW", "v2"),
        )
    }

    pub fn start(home: &Path, opts: FusionOpts) -> Fusion {
        let cfg = home.join("fusion-config");
        std::fs::create_dir_all(&cfg).unwrap();
        // Ports chosen up front so a restart or a reload binds the same ones.
        let (main_port, recv_port) = (free_port(), free_port());
        std::fs::write(
            cfg.join("default.yaml"),
            Fusion::yaml(main_port, recv_port, &opts),
        )
        .unwrap();
        let mut f = Fusion {
            home: home.to_path_buf(),
            main_port,
            recv_port,
            opts,
            rt: None,
            server: None,
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
        };
        f.boot();
        f
    }

    fn boot(&mut self) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("fusion")
            .enable_all()
            .build()
            .unwrap();
        let cfg = self.home.join("fusion-config");
        let deadline = Instant::now() + Duration::from_secs(10);
        let server = loop {
            match rt.block_on(FusionServer::start(&cfg, &[], Overrides::default())) {
                Ok(s) => break s,
                // A port still held by the previous instance's closing sockets.
                Err(e) if Instant::now() < deadline => {
                    eprintln!("fusion start: {e}; retrying");
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => panic!("fusion does not start: {e}"),
            }
        };
        self.server = Some(server);
        self.rt = Some(rt);
    }

    pub fn running(&self) -> bool {
        self.server.is_some()
    }

    /// Graceful stop (sessions end, listeners close), like SIGTERM to the daemon.
    pub fn stop(&mut self) {
        if let (Some(rt), Some(server)) = (self.rt.take(), self.server.take()) {
            rt.block_on(server.shutdown());
            drop(server);
            rt.shutdown_timeout(Duration::from_secs(2));
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.boot();
    }

    /// SIGHUP equivalent: views restart empty, sessions end.
    pub fn reload(&self) {
        let (Some(rt), Some(s)) = (&self.rt, &self.server) else {
            panic!("fusion not running")
        };
        rt.block_on(s.reload()).unwrap();
    }

    pub fn main_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.main_port)
    }

    pub fn recv_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.recv_port)
    }

    pub fn request(&self, method: reqwest::Method, path: &str, key: &str) -> Resp {
        let r = self
            .http
            .request(method, format!("{}{path}", self.main_url()))
            .header("X-API-Key", key)
            .send();
        match r {
            Ok(r) => {
                let status = r.status().as_u16();
                let text = r.text().unwrap_or_default();
                Resp {
                    status,
                    body: serde_json::from_str(&text).unwrap_or(Value::Null),
                }
            }
            Err(_) => Resp {
                status: 0,
                body: Value::Null,
            },
        }
    }

    pub fn get(&self, path: &str, key: &str) -> Resp {
        self.request(reqwest::Method::GET, path, key)
    }

    pub fn qkey(view: &str) -> &'static str {
        if view == "v2" { "qk2" } else { "qk1" }
    }

    /// One node (`max_depth=0`).
    pub fn node(&self, view: &str, path: &str) -> Resp {
        self.get(
            &format!(
                "/api/v1/views/{view}/tree?path={}&max_depth=0",
                encode(path)
            ),
            Fusion::qkey(view),
        )
    }

    /// The whole tree below `path`.
    pub fn tree(&self, view: &str, path: &str) -> Resp {
        self.get(
            &format!("/api/v1/views/{view}/tree?path={}", encode(path)),
            Fusion::qkey(view),
        )
    }

    pub fn stats(&self, view: &str) -> Resp {
        self.get(&format!("/api/v1/views/{view}/stats"), Fusion::qkey(view))
    }

    pub fn blind_spots(&self, view: &str) -> Value {
        self.get(
            &format!("/api/v1/views/{view}/blind-spots"),
            Fusion::qkey(view),
        )
        .body
    }

    pub fn suspects(&self, view: &str) -> Value {
        self.get(
            &format!("/api/v1/views/{view}/suspect-list"),
            Fusion::qkey(view),
        )
        .body
    }

    /// `active_sessions` of the view.
    pub fn sessions(&self, view: &str) -> Vec<Value> {
        let r = self.get(
            &format!("/api/v1/views/{view}/sessions"),
            Fusion::qkey(view),
        );
        r.body["active_sessions"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The session of `agent_id` on `view`, if listed.
    pub fn session_of(&self, view: &str, agent_id: &str) -> Option<Value> {
        self.sessions(view)
            .into_iter()
            .find(|s| s["agent_id"] == agent_id)
    }

    pub fn file_count(&self, view: &str) -> Option<u64> {
        let r = self.stats(view);
        (r.status == 200)
            .then(|| r.body["total_files"].as_u64())
            .flatten()
    }
}

impl Drop for Fusion {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Percent-encodes a path for a query string.
pub use fustor_testkit::encode_query as encode;

// ------------------------------------------------------------------------------------- Agent

/// One agent's configuration (one pipe). `pipe_extra` and `source_extra` are YAML lines
/// added to the pipe and source entries (indented by the caller with 4 spaces).
#[derive(Debug, Clone)]
pub struct AgentCfg {
    pub agent_id: String,
    pub uri: PathBuf,
    pub recv_url: String,
    pub key: String,
    pub pipe: String,
    pub driver_params: String,
    /// The sender's `driver_params` (flow mapping), e.g. TLS files.
    pub sender_params: String,
    pub source_extra: String,
    pub pipe_extra: String,
}

impl AgentCfg {
    pub fn new(agent_id: &str, uri: &Path, fusion: &Fusion) -> AgentCfg {
        AgentCfg {
            agent_id: agent_id.to_string(),
            uri: uri.to_path_buf(),
            recv_url: fusion.recv_url(),
            key: "agent-key".to_string(),
            pipe: "v1".to_string(),
            driver_params: "{throttle_interval_sec: 0.5}".to_string(),
            sender_params: "{}".to_string(),
            source_extra: String::new(),
            pipe_extra: String::new(),
        }
    }

    pub fn yaml(&self) -> String {
        format!(
            "agent_id: {id}\nsources:\n  src:\n    driver: fs\n    uri: {uri:?}\n    driver_params: {dp}\n{se}\
             senders:\n  fusion:\n    driver: fusion\n    uri: {url:?}\n    credential: {{key: {key}}}\n    driver_params: {sp}\n\
             pipes:\n  {pipe}:\n    source: src\n    sender: fusion\n    error_retry_interval: 0.5\n    max_backoff_seconds: 2\n{pe}",
            id = self.agent_id,
            uri = self.uri.display().to_string(),
            dp = self.driver_params,
            se = self.source_extra,
            url = self.recv_url,
            key = self.key,
            sp = self.sender_params,
            pipe = self.pipe,
            pe = self.pipe_extra,
        )
    }
}

pub struct AgentProc {
    pub name: String,
    pub home: PathBuf,
    child: Option<Child>,
    pub uid: Option<u32>,
}

impl AgentProc {
    /// Writes `agent-config/default.yaml` and starts `fustor-agent --home HOME start` in the
    /// foreground (as `uid` if given).
    pub fn start(home: &Path, cfg: &AgentCfg, uid: Option<u32>) -> AgentProc {
        AgentProc::start_yaml(home, &cfg.agent_id, &cfg.yaml(), uid)
    }

    /// As [`AgentProc::start`] with a whole `default.yaml` (other drivers than `fs`).
    pub fn start_yaml(home: &Path, name: &str, yaml: &str, uid: Option<u32>) -> AgentProc {
        std::fs::create_dir_all(home.join("agent-config")).unwrap();
        std::fs::write(home.join("agent-config/default.yaml"), yaml).unwrap();
        let mut a = AgentProc {
            name: name.to_string(),
            home: home.to_path_buf(),
            child: None,
            uid,
        };
        a.spawn();
        a
    }

    pub fn spawn(&mut self) {
        use std::os::unix::process::CommandExt;
        // Run as another user, the agent may not reach the build's binary (a clone under a
        // 0700 home or a `mktemp -d` directory): it runs a copy beside its home, which the
        // test opened up for that user.
        let bin = match (self.uid, self.home.parent()) {
            (Some(_), Some(dir)) => {
                let copy = dir.join("fustor-agent");
                if !copy.exists() {
                    std::fs::copy(AGENT_BIN, &copy).unwrap();
                }
                copy
            }
            _ => PathBuf::from(AGENT_BIN),
        };
        let mut cmd = Command::new(bin);
        cmd.arg("--home")
            .arg(&self.home)
            .args(["start", "--no-console-log"])
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(u) = self.uid {
            cmd.uid(u).gid(u);
        }
        self.child = Some(cmd.spawn().unwrap());
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id() as i32)
    }

    /// Still running (not exited).
    pub fn alive(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, wait up to 10 s, then SIGKILL.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            fustor_testkit::terminate(&mut c, Duration::from_secs(10));
        }
    }

    /// `fustor-agent --home HOME ARGS` (CLI commands against this agent's home).
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(AGENT_BIN)
            .arg("--home")
            .arg(&self.home)
            .args(args)
            .output()
            .unwrap()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.home.join("logs/agent.log")).unwrap_or_default()
    }

    pub fn log_tail(&self, n: usize) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        self.stop();
    }
}

// ----------------------------------------------------------------------------------- bindfs

pub struct BindMount {
    pub mnt: PathBuf,
}

/// Whether bindfs mounts work here (binary, /dev/fuse, permission).
pub fn bindfs_available() -> bool {
    static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        if !Path::new("/dev/fuse").exists() {
            return false;
        }
        let Ok(tmp) = tempfile::tempdir() else {
            return false;
        };
        let (b, m) = (tmp.path().join("b"), tmp.path().join("m"));
        let _ = std::fs::create_dir_all(&b);
        let _ = std::fs::create_dir_all(&m);
        BindMount::mount(&b, &m).is_some()
    })
}

impl BindMount {
    /// `bindfs BACKING MNT`; `None` when bindfs is unavailable.
    pub fn mount(backing: &Path, mnt: &Path) -> Option<BindMount> {
        std::fs::create_dir_all(mnt).ok()?;
        let ok = Command::new("bindfs")
            .arg(backing)
            .arg(mnt)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return None;
        }
        // Mounted when the mount point's device differs from its parent's.
        use std::os::unix::fs::MetadataExt;
        let dev = |p: &Path| std::fs::metadata(p).map(|m| m.dev()).ok();
        let deadline = Instant::now() + Duration::from_secs(5);
        while dev(mnt) == mnt.parent().and_then(dev) {
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(BindMount {
            mnt: mnt.to_path_buf(),
        })
    }
}

impl Drop for BindMount {
    fn drop(&mut self) {
        for args in [&["-u"][..], &["-uz"][..]] {
            let ok = Command::new("fusermount")
                .args(args)
                .arg(&self.mnt)
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
                || Command::new("fusermount3")
                    .args(args)
                    .arg(&self.mnt)
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
            if ok {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
    }
}

/// Prints the skip notice and returns true when bindfs tests cannot run here.
pub fn skip_without_bindfs(test: &str) -> bool {
    if bindfs_available() {
        return false;
    }
    eprintln!("SKIPPED: bindfs unavailable ({test}); install bindfs and fuse3");
    println!("SKIPPED: bindfs unavailable ({test}); install bindfs and fuse3");
    true
}

// ------------------------------------------------------------------------------------ Proxy

/// A TCP relay on 127.0.0.1 in front of `target`; `block()` cuts every connection and refuses
/// new ones until `unblock()`.
pub struct Proxy {
    pub port: u16,
    blocked: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    pub fn start(target: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let blocked = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (b, s, c) = (blocked.clone(), stop.clone(), conns.clone());
        std::thread::spawn(move || {
            for inc in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(inc) = inc else { continue };
                if b.load(Ordering::SeqCst) {
                    let _ = inc.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(out) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let _ = inc.set_nodelay(true);
                let _ = out.set_nodelay(true);
                {
                    let mut cs = c.lock().unwrap();
                    cs.push(inc.try_clone().unwrap());
                    cs.push(out.try_clone().unwrap());
                }
                for (mut from, mut to) in [
                    (inc.try_clone().unwrap(), out.try_clone().unwrap()),
                    (out, inc),
                ] {
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16384];
                        loop {
                            match from.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => {
                                    if to.write_all(&buf[..n]).is_err() {
                                        break;
                                    }
                                }
                            }
                        }
                        let _ = to.shutdown(Shutdown::Both);
                        let _ = from.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Proxy {
            port,
            blocked,
            stop,
            conns,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn block(&self) {
        self.blocked.store(true, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }

    pub fn unblock(&self) {
        self.blocked.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.block();
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

// ---------------------------------------------------------------------------------- Cluster

/// Owns one test's processes, mounts and directories; tears down agents, then mounts, then
/// Fusion, then the directories.
pub struct Cluster {
    pub agents: Vec<AgentProc>,
    pub mounts: Vec<BindMount>,
    pub fusion: Fusion,
    pub tmp: tempfile::TempDir,
}

impl Cluster {
    pub fn new(opts: FusionOpts) -> Cluster {
        let tmp = tempfile::tempdir().unwrap();
        let fusion = Fusion::start(&tmp.path().join("fusion-home"), opts);
        Cluster {
            agents: Vec::new(),
            mounts: Vec::new(),
            fusion,
            tmp,
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    /// A directory under the test's temp dir (created).
    pub fn dir(&self, rel: &str) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    /// A bindfs mount of `backing` at `rel` (`None`: bindfs unavailable).
    pub fn bind(&mut self, backing: &Path, rel: &str) -> Option<PathBuf> {
        let mnt = self.path(rel);
        let m = BindMount::mount(backing, &mnt)?;
        self.mounts.push(m);
        Some(mnt)
    }

    pub fn agent_cfg(&self, agent_id: &str, uri: &Path) -> AgentCfg {
        AgentCfg::new(agent_id, uri, &self.fusion)
    }

    /// Starts an agent with home `<tmp>/agent-<id>`; returns its index.
    pub fn start_agent(&mut self, cfg: &AgentCfg) -> usize {
        self.start_agent_as(cfg, None)
    }

    pub fn start_agent_as(&mut self, cfg: &AgentCfg, uid: Option<u32>) -> usize {
        let home = self.path(&format!("agent-{}", cfg.agent_id));
        self.agents.push(AgentProc::start(&home, cfg, uid));
        self.agents.len() - 1
    }

    pub fn diagnostics(&self) -> String {
        let mut s = String::new();
        for a in &self.agents {
            s.push_str(&format!(
                "\n--- agent {} log tail ---\n{}",
                a.name,
                a.log_tail(40)
            ));
        }
        if self.fusion.running() {
            s.push_str(&format!(
                "\n--- v1 sessions ---\n{:?}",
                self.fusion.sessions("v1")
            ));
        }
        s
    }

    /// Polls `f` every 50 ms until it yields a value; panics with the agents' logs after
    /// `timeout_s`.
    pub fn wait<T>(&self, what: &str, timeout_s: f64, mut f: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + secs(timeout_s);
        loop {
            if let Some(v) = f() {
                return v;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out after {timeout_s} s: {what}{}",
                    self.diagnostics()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `/tree?path=P` of `view` satisfies `cond`; returns the node.
    pub fn wait_node(
        &self,
        view: &str,
        path: &str,
        what: &str,
        timeout_s: f64,
        cond: impl Fn(&Resp) -> bool,
    ) -> Value {
        let deadline = Instant::now() + secs(timeout_s);
        loop {
            let r = self.fusion.node(view, path);
            if cond(&r) {
                return r.body;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out after {timeout_s} s: {what} (last answer for {path}: {} {}){}",
                    r.status,
                    r.body,
                    self.diagnostics()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the view answers 200 (a leader finished its snapshot).
    pub fn wait_ready(&self, view: &str, timeout_s: f64) {
        self.wait(&format!("view {view} ready"), timeout_s, || {
            (self.fusion.stats(view).status == 200).then_some(())
        });
    }

    pub fn wait_present(&self, view: &str, path: &str, timeout_s: f64) -> Value {
        self.wait_node(view, path, &format!("{path} present"), timeout_s, |r| {
            r.status == 200
        })
    }

    pub fn wait_absent(&self, view: &str, path: &str, timeout_s: f64) {
        self.wait_node(view, path, &format!("{path} absent"), timeout_s, |r| {
            r.status == 404
        });
    }

    /// `audit_cycle_count` of `view` (0 when not ready).
    pub fn audit_cycles(&self, view: &str) -> u64 {
        self.fusion.stats(view).body["audit_cycle_count"]
            .as_u64()
            .unwrap_or(0)
    }

    /// Waits for `n` more completed audits than now.
    pub fn wait_audits(&self, view: &str, n: u64, timeout_s: f64) {
        let start = self.audit_cycles(view);
        self.wait(
            &format!("{n} more audit cycles on {view}"),
            timeout_s,
            || (self.audit_cycles(view) >= start + n).then_some(()),
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for a in &mut self.agents {
            a.stop();
        }
        self.mounts.clear();
        self.fusion.stop();
    }
}

/// Writes `content` to `path` and closes it (one close-write).
pub fn write(path: &Path, content: &[u8]) {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(path, content).unwrap();
}

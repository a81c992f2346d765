//! The pipe runtime in-process: a real fs source on a temp directory (real inotify, real
//! scans) and a scripted in-memory Fusion behind the `Sender` trait.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fustor_agent::{Pipe, PipeSpec, SourceRegistry};
use fustor_core::EventBatch;
use fustor_core::config::{AgentPipeConfig, SourceConfig};
use fustor_core::wire::{
    CreateSessionRequest, CreateSessionResponse, HeartbeatRequest, HeartbeatResponse,
    SentinelFeedback, SentinelTasks,
};
use fustor_transport_http::{SendError, Sender};
use parking_lot::Mutex;
use serde::Serialize;
use serde_json::{Map, Value, json};

#[derive(Debug, Clone)]
enum Call {
    Create(CreateSessionRequest),
    Heartbeat(String, HeartbeatRequest),
    Batch {
        sid: String,
        kind: String,
        is_end: bool,
        events: Vec<Value>,
        metadata: Option<Map<String, Value>>,
    },
    Close(String),
    AuditEnd,
}

/// `(session, is_end, events, metadata)` of one batch.
type Batch = (String, bool, Vec<Value>, Option<Map<String, Value>>);

#[derive(Debug, Clone)]
enum Hb {
    Ok(Vec<Value>),
    Obsolete,
    Fail,
}

struct Inner {
    calls: Mutex<Vec<Call>>,
    role: Mutex<String>,
    hb_script: Mutex<VecDeque<Hb>>,
    sessions: Mutex<u32>,
    audit_interval: Option<f64>,
    message_delay: Duration,
}

#[derive(Clone)]
struct Mock(Arc<Inner>);

impl Mock {
    fn new(role: &str, audit_interval: Option<f64>, message_delay: Duration) -> Self {
        Mock(Arc::new(Inner {
            calls: Mutex::new(Vec::new()),
            role: Mutex::new(role.to_string()),
            hb_script: Mutex::new(VecDeque::new()),
            sessions: Mutex::new(0),
            audit_interval,
            message_delay,
        }))
    }

    fn calls(&self) -> Vec<Call> {
        self.0.calls.lock().clone()
    }

    fn batches(&self, kind: &str) -> Vec<Batch> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Batch {
                    sid,
                    kind: k,
                    is_end,
                    events,
                    metadata,
                } if k == kind => Some((sid, is_end, events, metadata)),
                _ => None,
            })
            .collect()
    }

    /// Paths of all rows sent in batches of `kind`.
    fn paths(&self, kind: &str) -> Vec<String> {
        self.batches(kind)
            .iter()
            .flat_map(|b| b.2.iter())
            .flat_map(|e| e["rows"].as_array().cloned().unwrap_or_default())
            .filter_map(|r| r["path"].as_str().map(str::to_string))
            .collect()
    }

    fn sessions_created(&self) -> Vec<CreateSessionRequest> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Create(r) => Some(r),
                _ => None,
            })
            .collect()
    }

    fn script(&self, hb: Hb) {
        self.0.hb_script.lock().push_back(hb);
    }
}

impl Sender for Mock {
    async fn create_session(
        &self,
        req: &CreateSessionRequest,
    ) -> Result<CreateSessionResponse, SendError> {
        self.0.calls.lock().push(Call::Create(req.clone()));
        let n = {
            let mut s = self.0.sessions.lock();
            *s += 1;
            *s
        };
        Ok(CreateSessionResponse {
            session_id: format!("s{n}"),
            role: fustor_core::wire::Role::of(*self.0.role.lock() == "leader"),
            is_leader: None,
            session_timeout_seconds: 3,
            audit_interval_sec: self.0.audit_interval.or(Some(0.0)),
            sentinel_interval_sec: Some(0.0),
            message: None,
            lossless_names: true,
            committed_index: None,
        })
    }

    async fn heartbeat(
        &self,
        session_id: &str,
        req: &HeartbeatRequest,
    ) -> Result<HeartbeatResponse, SendError> {
        self.0
            .calls
            .lock()
            .push(Call::Heartbeat(session_id.to_string(), req.clone()));
        let next = self.0.hb_script.lock().pop_front();
        let commands = match next {
            Some(Hb::Obsolete) => return Err(SendError::SessionObsolete("gone".into())),
            Some(Hb::Fail) => {
                return Err(SendError::Status {
                    status: 500,
                    url: "mock".into(),
                    body: "boom".into(),
                });
            }
            Some(Hb::Ok(c)) => c,
            None => Vec::new(),
        };
        let role = self.0.role.lock().clone();
        Ok(HeartbeatResponse {
            status: "ok".into(),
            role: Some(role)
                .filter(|r| !r.is_empty())
                .map(|r| fustor_core::wire::Role::of(r == "leader")),
            message: None,
            is_leader: None,
            can_realtime: None,
            commands: commands
                .into_iter()
                .map(|c| c.as_object().cloned().unwrap())
                .collect(),
        })
    }

    async fn send_batch<R: Serialize + Sync>(
        &self,
        session_id: &str,
        batch: &EventBatch<R>,
    ) -> Result<(), SendError> {
        if batch.source_type == "message" && !self.0.message_delay.is_zero() {
            tokio::time::sleep(self.0.message_delay).await;
        }
        let v = serde_json::to_value(batch).unwrap();
        self.0.calls.lock().push(Call::Batch {
            sid: session_id.to_string(),
            kind: batch.source_type.clone(),
            is_end: batch.is_end,
            events: v["events"].as_array().cloned().unwrap(),
            metadata: batch.metadata.clone(),
        });
        Ok(())
    }

    async fn close_session(&self, session_id: &str) -> Result<(), SendError> {
        self.0
            .calls
            .lock()
            .push(Call::Close(session_id.to_string()));
        Ok(())
    }

    async fn audit_end(&self) -> Result<(), SendError> {
        self.0.calls.lock().push(Call::AuditEnd);
        Ok(())
    }

    async fn sentinel_tasks(&self) -> Result<SentinelTasks, SendError> {
        Ok(SentinelTasks::default())
    }

    async fn sentinel_feedback(&self, _f: &SentinelFeedback) -> Result<(), SendError> {
        Ok(())
    }

    fn endpoint(&self) -> &str {
        "mock://"
    }
}

async fn wait_until(secs: u64, what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct Fixture {
    _tmp: tempfile::TempDir,
    data: std::path::PathBuf,
    config_dir: std::path::PathBuf,
    registry: SourceRegistry,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let config_dir = tmp.path().join("agent-config");
    std::fs::create_dir_all(data.join("sub")).unwrap();
    std::fs::create_dir_all(&config_dir).unwrap();
    std::fs::write(data.join("a.txt"), b"aaa").unwrap();
    std::fs::write(data.join("sub/b.txt"), b"bb").unwrap();
    Fixture {
        data,
        config_dir,
        _tmp: tmp,
        registry: SourceRegistry::new(),
    }
}

fn source_cfg(root: &Path, queue: u64) -> SourceConfig {
    serde_json::from_value(json!({"driver": "fs", "uri": root, "max_queue_size": queue,
        "driver_params": {"max_scan_workers": 2}}))
    .unwrap()
}

async fn start_pipe(f: &Fixture, mock: &Mock, pipe: Value, queue: u64) -> Pipe<Mock> {
    let source = f
        .registry
        .acquire(&source_cfg(&f.data, queue))
        .await
        .unwrap();
    let config: AgentPipeConfig = serde_json::from_value(pipe).unwrap();
    let spec = PipeSpec {
        id: "p1".into(),
        agent_id: "agent-t".into(),
        config,
        config_dir: f.config_dir.clone(),
        state_dir: None,
        registry: None,
    };
    Pipe::start(spec, mock.clone(), source, None)
}

fn basic_pipe() -> Value {
    json!({"source": "s", "sender": "m"})
}

fn snapshot_passes(mock: &Mock) -> usize {
    // Each pass ends with the remaining events and one more empty end batch.
    mock.batches("snapshot")
        .iter()
        .filter(|b| b.1 && b.2.is_empty())
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_snapshots_once_per_session_and_streams_realtime() {
    let f = fixture();
    std::fs::write(f.config_dir.join("default.yaml"), "agent_id: x\n").unwrap();
    let mock = Mock::new("leader", None, Duration::ZERO);
    let pipe = start_pipe(&f, &mock, basic_pipe(), 1000).await;
    wait_until(10, "snapshot end", || snapshot_passes(&mock) >= 1).await;
    let snap = mock.paths("snapshot");
    for p in ["/", "/a.txt", "/sub", "/sub/b.txt"] {
        assert!(snap.contains(&p.to_string()), "{p} missing from {snap:?}");
    }
    // Session request and the unsolicited config report.
    let created = mock.sessions_created();
    assert_eq!(created[0].task_id, "agent-t:p1");
    let uri = created[0].client_info.as_ref().unwrap()["source_uri"].clone();
    assert_eq!(uri, json!(f.data));
    let report = mock.batches("config_report");
    assert_eq!(report.len(), 1);
    assert_eq!(
        report[0].3.as_ref().unwrap()["config_yaml"],
        "agent_id: x\n"
    );

    std::fs::write(f.data.join("sub/new.txt"), b"hello").unwrap();
    wait_until(10, "realtime event", || {
        mock.paths("message").contains(&"/sub/new.txt".to_string())
    })
    .await;
    wait_until(10, "can_realtime=true in a heartbeat", || {
        mock.calls()
            .iter()
            .any(|c| matches!(c, Call::Heartbeat(sid, r) if r.can_realtime && sid == "s1"))
    })
    .await;
    // Several control-loop seconds later there is still exactly one snapshot (§14 item 10).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(snapshot_passes(&mock), 1);
    let status = pipe.status();
    assert_eq!(status.role.as_deref(), Some("leader"));
    assert!(status.state.contains("MESSAGE_SYNC"), "{}", status.state);
    pipe.stop().await;
    assert!(
        mock.calls()
            .iter()
            .any(|c| matches!(c, Call::Close(s) if s == "s1")),
        "DELETE of the session on stop"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_streams_realtime_without_snapshot_and_runs_scan_commands() {
    let f = fixture();
    let mock = Mock::new("follower", None, Duration::ZERO);
    mock.script(Hb::Ok(vec![
        json!({"type":"scan","path":"/sub","recursive":true,"job_id":"1a2b3c4d"}),
    ]));
    let pipe = start_pipe(&f, &mock, basic_pipe(), 1000).await;
    wait_until(10, "job_complete", || {
        !mock.batches("job_complete").is_empty()
    })
    .await;
    let od = mock.paths("on_demand_job");
    assert!(od.contains(&"/sub/b.txt".to_string()), "{od:?}");
    assert!(
        !od.contains(&"/a.txt".to_string()),
        "outside the scanned path: {od:?}"
    );
    let jc = mock.batches("job_complete");
    assert_eq!(
        Value::Object(jc[0].3.clone().unwrap()),
        json!({"scan_path": "/sub", "job_id": "1a2b3c4d"})
    );
    std::fs::write(f.data.join("f.txt"), b"x").unwrap();
    wait_until(10, "realtime event", || {
        mock.paths("message").contains(&"/f.txt".to_string())
    })
    .await;
    assert!(
        mock.batches("snapshot").is_empty(),
        "a follower never snapshots"
    );
    assert_eq!(pipe.status().state, "PipeState.RUNNING|PAUSED|MESSAGE_SYNC");
    pipe.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn obsolete_session_reconnects_and_failed_heartbeat_keeps_the_role() {
    let f = fixture();
    let mock = Mock::new("leader", None, Duration::ZERO);
    // First heartbeat fails with a 500: the role must stay leader (wire §12 item 9).
    mock.script(Hb::Fail);
    mock.script(Hb::Obsolete);
    let pipe = start_pipe(&f, &mock, basic_pipe(), 1000).await;
    wait_until(10, "the failed heartbeat", || {
        mock.calls()
            .iter()
            .any(|c| matches!(c, Call::Heartbeat(..)))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let st = pipe.status();
    assert_eq!(
        st.role.as_deref(),
        Some("leader"),
        "not demoted by a failed heartbeat"
    );
    assert_eq!(st.session_id.as_deref(), Some("s1"));
    assert_eq!(st.consecutive_errors, 1);
    wait_until(20, "a second session", || {
        mock.sessions_created().len() >= 2
    })
    .await;
    wait_until(10, "snapshot of the new session", || {
        mock.batches("snapshot").iter().any(|b| b.0 == "s2" && b.1)
    })
    .await;
    let s1_snapshot_ends = mock
        .batches("snapshot")
        .iter()
        .filter(|b| b.0 == "s1" && b.1 && b.2.is_empty())
        .count();
    assert_eq!(
        s1_snapshot_ends, 1,
        "leader tasks survived the failed heartbeat"
    );
    assert_eq!(pipe.status().session_id.as_deref(), Some("s2"));
    pipe.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_mapping_is_applied_to_every_phase() {
    let f = fixture();
    let mock = Mock::new("leader", None, Duration::ZERO);
    let cfg = json!({"source": "s", "sender": "m", "fields_mapping": [
        {"to": "path", "source": ["path:string"]},
        {"to": "modified_time", "source": ["modified_time:number"]}
    ]});
    let pipe = start_pipe(&f, &mock, cfg, 1000).await;
    wait_until(10, "snapshot end", || snapshot_passes(&mock) >= 1).await;
    std::fs::write(f.data.join("m.txt"), b"12345").unwrap();
    wait_until(10, "realtime event", || {
        mock.paths("message").contains(&"/m.txt".to_string())
    })
    .await;
    for kind in ["snapshot", "message"] {
        for b in mock.batches(kind) {
            for e in &b.2 {
                for r in e["rows"].as_array().unwrap() {
                    let keys: Vec<&String> = r.as_object().unwrap().keys().collect();
                    assert!(
                        keys.iter().all(|k| *k == "path" || *k == "modified_time"),
                        "{kind} row not projected: {r}"
                    );
                }
            }
        }
    }
    pipe.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audits_run_periodically_and_skip_unchanged_directories() {
    let f = fixture();
    let mock = Mock::new("leader", Some(1.0), Duration::ZERO);
    let pipe = start_pipe(&f, &mock, basic_pipe(), 1000).await;
    let audit_ends = |m: &Mock| {
        m.calls()
            .iter()
            .filter(|c| matches!(c, Call::AuditEnd))
            .count()
    };
    wait_until(15, "two audit passes", || audit_ends(&mock) >= 4).await;
    let batches = mock.batches("audit");
    assert!(batches.iter().any(|b| b.1), "end signal");
    let rows: Vec<Value> = batches
        .iter()
        .flat_map(|b| b.2.iter())
        .flat_map(|e| e["rows"].as_array().cloned().unwrap())
        .collect();
    let first_full = rows
        .iter()
        .any(|r| r["path"] == "/sub/b.txt" && r["parent_path"] == "/sub");
    assert!(first_full, "first audit lists files");
    let skipped = rows
        .iter()
        .any(|r| r["path"] == "/sub" && r["audit_skipped"] == true);
    assert!(skipped, "a later audit skips the unchanged directory");
    pipe.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bus_overflow_turns_into_a_targeted_audit() {
    let f = fixture();
    // A tiny bus and a slow Fusion: a burst must overflow, and the lost files must arrive
    // through an audit of their directory instead of being lost.
    let mock = Mock::new("leader", None, Duration::from_millis(300));
    let pipe = start_pipe(&f, &mock, basic_pipe(), 5).await;
    wait_until(10, "snapshot end", || snapshot_passes(&mock) >= 1).await;
    std::fs::create_dir(f.data.join("burst")).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 0..60 {
        std::fs::write(f.data.join(format!("burst/f{i}")), b"x").unwrap();
    }
    wait_until(30, "every burst file delivered (realtime or audit)", || {
        let mut seen = mock.paths("message");
        seen.extend(mock.paths("audit"));
        (0..60).all(|i| seen.contains(&format!("/burst/f{i}")))
    })
    .await;
    let audit = mock.batches("audit");
    assert!(!audit.is_empty(), "the overflow produced an audit");
    assert!(audit.iter().any(|b| b.1), "with an end signal");
    assert!(mock.calls().iter().any(|c| matches!(c, Call::AuditEnd)));
    // Realtime still works after the overflow.
    tokio::time::sleep(Duration::from_millis(500)).await;
    std::fs::write(f.data.join("after.txt"), b"x").unwrap();
    wait_until(20, "realtime after overflow", || {
        mock.paths("message").contains(&"/after.txt".to_string())
    })
    .await;
    pipe.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipes_share_one_source_and_stopping_one_keeps_the_other() {
    let f = fixture();
    let m1 = Mock::new("follower", None, Duration::ZERO);
    let m2 = Mock::new("follower", None, Duration::ZERO);
    let p1 = start_pipe(&f, &m1, basic_pipe(), 1000).await;
    let source = f
        .registry
        .acquire(&source_cfg(&f.data, 1000))
        .await
        .unwrap();
    assert!(Arc::ptr_eq(p1.source(), &source), "same source instance");
    let spec = PipeSpec {
        id: "p2".into(),
        agent_id: "agent-t".into(),
        config: serde_json::from_value(basic_pipe()).unwrap(),
        config_dir: f.config_dir.clone(),
        state_dir: None,
        registry: None,
    };
    drop(source);
    let src = f
        .registry
        .acquire(&source_cfg(&f.data, 1000))
        .await
        .unwrap();
    let p2 = Pipe::start(spec, m2.clone(), src, None);
    assert_eq!(f.registry.live().await, 1);
    p1.stop().await;
    std::fs::write(f.data.join("after-stop.txt"), b"x").unwrap();
    wait_until(10, "the remaining pipe still gets realtime", || {
        m2.paths("message").contains(&"/after-stop.txt".to_string())
    })
    .await;
    p2.stop().await;
    assert_eq!(f.registry.live().await, 0, "last pipe closed the source");
}

/// Issue 9: Fusion's `audit_interval_sec: 1e300` reached `Duration::from_secs_f64` in the audit
/// task, which panicked (and was respawned every control-loop second). The agent clamps what
/// Fusion sends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_intervals_from_fusion_are_clamped_not_panicked_on() {
    let panics: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = panics.clone();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let text = info.to_string();
        if text.contains("Duration") {
            seen.lock().push(text);
        }
        previous(info);
    }));
    let f = fixture();
    let mock = Mock::new("leader", Some(1e300), Duration::ZERO);
    let pipe = start_pipe(&f, &mock, basic_pipe(), 1000).await;
    wait_until(10, "snapshot end", || snapshot_passes(&mock) >= 1).await;
    // Two control-loop rounds: the audit task is (re)spawned and sleeps.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let seen = panics.lock().clone();
    assert!(seen.is_empty(), "{seen:?}");
    assert!(pipe.status().state.contains("MESSAGE_SYNC"));
    pipe.stop().await;
}

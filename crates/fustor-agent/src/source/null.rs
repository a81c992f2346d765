//! A source that produces nothing: proof that a source driver plugs in through the registry
//! alone (its module plus one `register` line), with its own `driver_params` checked by the
//! loader, and that a pipe runs it with only the tasks it declares.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use fustor_core::config::{DriverParams, KeyShape, SourceConfig};
use fustor_transport_http::EchoSender;
use serde::Deserialize;

use super::{
    Capabilities, SnapshotStream, Source, SourceCore, SourceDriver, SourceError, SourceRegistry,
};
use crate::drivers::{schemas_of, sender_drivers, source_drivers};
use crate::pipe::{Pipe, PipeSpec};

struct NullSource {
    core: SourceCore,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct NullParams {
    /// Only here to have a key whose typos the loader reports.
    #[allow(dead_code)]
    label: Option<String>,
}

impl DriverParams for NullParams {
    const KEYS: &'static KeyShape = &KeyShape::Keys(&[("label", KeyShape::Any)]);
}

impl SourceDriver for NullSource {
    type Params = NullParams;

    fn open(cfg: &SourceConfig, _params: NullParams) -> Result<Arc<dyn Source>, SourceError> {
        Ok(Arc::new(NullSource {
            core: SourceCore::new(cfg),
        }))
    }
}

impl Source for NullSource {
    fn driver(&self) -> &'static str {
        "null"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }
    fn core(&self) -> &SourceCore {
        &self.core
    }
    fn realtime_ok(&self) -> bool {
        true
    }
    fn snapshot(&self) -> SnapshotStream {
        Box::new(std::iter::empty())
    }
}

const YAML: &str = "
sources:
  n: {driver: 'null', uri: nowhere, driver_params: {label: x}}
senders:
  e: {driver: echo, uri: x}
pipes:
  p: {source: n, sender: e}
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_null_source_validates_and_runs_a_pipe() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("agent-config");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("default.yaml"), YAML).unwrap();

    let mut sources = source_drivers();
    sources.register::<NullSource>("null");
    assert!(sources.names().any(|n| n == "null"));
    let schemas = schemas_of(&sources, &sender_drivers());
    let mut loaded = fustor_core::config::load_agent_dir(&dir, &schemas);
    let extra = fustor_core::config::validate_agent(&loaded, &schemas);
    loaded.diagnostics.extend(extra);
    assert!(!loaded.fails_check(), "{:?}", loaded.diagnostics);

    // Its keys are its own: a typo gets the "did you mean" of the built-in drivers.
    std::fs::write(
        dir.join("default.yaml"),
        YAML.replace("label: x", "lable: x"),
    )
    .unwrap();
    let typo = fustor_core::config::load_agent_dir(&dir, &schemas);
    assert!(typo.fails_check());
    assert!(
        typo.diagnostics[0]
            .to_string()
            .contains("did you mean \"label\""),
        "{:?}",
        typo.diagnostics
    );
    // Without the registration the driver is unknown to the agent.
    let cfg = loaded.config.sources["n"].clone();
    let err = SourceRegistry::new().acquire(&cfg).await.err().unwrap();
    // The message lists this build's drivers (fs, exec, ...), not the unregistered one.
    let msg = err.to_string();
    let known = msg.split_once("(expected ").map_or("", |(_, k)| k);
    assert!(known.contains("\"fs\"") && !known.contains("null"), "{err}");

    let registry = SourceRegistry::with_drivers(sources);
    let source = registry.acquire(&cfg).await.unwrap();
    let echo = EchoSender::new("x");
    let spec = PipeSpec {
        id: "p".into(),
        agent_id: "agent-t".into(),
        config: loaded.config.pipes["p"].clone(),
        config_dir: dir.clone(),
        state_dir: None,
        registry: None,
    };
    let pipe = Pipe::start(spec, echo.clone(), source, None);
    // Session, then the (empty) snapshot's end batches.
    let deadline = Instant::now() + Duration::from_secs(10);
    while echo.stats().batches.load(Ordering::Relaxed) < 2 {
        assert!(
            Instant::now() < deadline,
            "no snapshot from the null source"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(echo.stats().sessions.load(Ordering::Relaxed), 1);
    assert_eq!(echo.stats().events.load(Ordering::Relaxed), 0);
    pipe.stop().await;
    assert_eq!(registry.live().await, 0);
}

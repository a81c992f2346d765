//! Commands delivered in heartbeat responses (`wire-protocol.md` §6, `agent-runtime.md` §9).
//! Processed in order; unknown or failing commands are logged and never stop the heartbeat.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use fustor_core::BatchKind;
use fustor_core::config::{load_agent_dir, validate_agent};
use fustor_core::wire::Command;
use fustor_transport_http::Sender;
use serde_json::{Map, Value};

use super::{AppRequest, Shared, SteerRequest, tasks};

/// What a command means for this pipe (the pure part of dispatch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandOutcome {
    /// Start an on-demand scan job in the background.
    Scan {
        path: String,
        recursive: bool,
        job_id: Option<String>,
    },
    /// Ask the process for a hot reload.
    Reload,
    /// Ask the process to stop this pipe.
    StopThisPipe,
    /// Validate, back up, write, then reload.
    UpdateConfig {
        filename: String,
        config_yaml: String,
    },
    /// Send a `config_report` batch.
    ReportConfig { filename: String },
    /// For the whole agent (registry versions, pipe start/restart).
    Agent(SteerRequest),
    /// Logged and ignored (`upgrade`, `stop_pipe` for another pipe, unknown types).
    Ignore(String),
}

impl CommandOutcome {
    pub fn of(cmd: Command, pipe_id: &str) -> CommandOutcome {
        CommandOutcome::of_action(cmd, pipe_id, None)
    }

    /// `action`: the admin action a command carries (issue 15). A `reload_config` or
    /// `stop_pipe` with one is the agent's to carry out and report, whichever pipe got it.
    pub fn of_action(cmd: Command, pipe_id: &str, action: Option<i64>) -> CommandOutcome {
        match (cmd, action) {
            (Command::ReloadConfig, Some(action)) => {
                CommandOutcome::Agent(SteerRequest::Reload { action })
            }
            (Command::StopPipe { pipe_id: pipe }, Some(action)) => {
                CommandOutcome::Agent(SteerRequest::StopPipe { pipe, action })
            }
            (cmd, _) => CommandOutcome::of_plain(cmd, pipe_id, action),
        }
    }

    fn of_plain(cmd: Command, pipe_id: &str, action: Option<i64>) -> CommandOutcome {
        match cmd {
            Command::Scan {
                path,
                recursive,
                job_id,
            } => CommandOutcome::Scan {
                path,
                recursive,
                job_id,
            },
            Command::ReloadConfig => CommandOutcome::Reload,
            Command::StopPipe { pipe_id: p } if p == pipe_id => CommandOutcome::StopThisPipe,
            Command::StopPipe { pipe_id: p } => {
                CommandOutcome::Ignore(format!("stop_pipe for another pipe ({p:?})"))
            }
            Command::UpdateConfig {
                config_yaml,
                filename,
            } => CommandOutcome::UpdateConfig {
                filename,
                config_yaml,
            },
            Command::ReportConfig { filename } => CommandOutcome::ReportConfig { filename },
            Command::ConfigChanged { version, digest } => {
                CommandOutcome::Agent(SteerRequest::ConfigChanged { version, digest })
            }
            Command::StartPipe { pipe_id } => CommandOutcome::Agent(SteerRequest::StartPipe {
                pipe: pipe_id,
                action,
            }),
            Command::RestartPipe { pipe_id } => CommandOutcome::Agent(SteerRequest::RestartPipe {
                pipe: pipe_id,
                action,
            }),
            Command::Upgrade { version } => CommandOutcome::Ignore(format!(
                "upgrade to {version:?} is not supported by this agent; upgrade the binary instead"
            )),
            Command::Unknown(m) => CommandOutcome::Ignore(format!(
                "unknown command type {:?}",
                m.get("type").cloned().unwrap_or(Value::Null)
            )),
        }
    }
}

pub(super) async fn dispatch<S: Sender>(
    sh: &Arc<Shared<S>>,
    sid: &str,
    cmd: Command,
    action: Option<i64>,
) {
    let outcome = CommandOutcome::of_action(cmd, &sh.spec.id, action);
    tracing::info!(pipe = %sh.spec.id, command = ?outcome, action, "command received");
    match outcome {
        CommandOutcome::Scan {
            path,
            recursive,
            job_id,
        } => {
            let job = tasks::on_demand(sh.clone(), sid.to_string(), path, recursive, job_id);
            let steer = sh.spec.registry.clone();
            let fut = async move {
                let r = job.await;
                if let (Some(steer), Some(id)) = (steer, action) {
                    match r {
                        Ok(n) => steer.outcome(id, true, format!("re-scanned: {n} entries sent")),
                        Err(e) => steer.outcome(id, false, e),
                    }
                }
            };
            let mut jobs = sh.jobs.lock();
            while jobs.try_join_next().is_some() {}
            jobs.spawn(fut);
        }
        CommandOutcome::Agent(r) => request(sh, AppRequest::Steer(r)),
        CommandOutcome::Reload => request(sh, AppRequest::Reload),
        CommandOutcome::StopThisPipe => request(sh, AppRequest::StopPipe(sh.spec.id.clone())),
        CommandOutcome::UpdateConfig {
            filename,
            config_yaml,
        } => {
            let dir = sh.spec.config_dir.clone();
            let r =
                tokio::task::spawn_blocking(move || write_config(&dir, &filename, &config_yaml))
                    .await;
            match r {
                Ok(Ok(path)) => {
                    tracing::info!(pipe = %sh.spec.id, file = ?path, "configuration updated; reloading");
                    request(sh, AppRequest::Reload);
                }
                Ok(Err(e)) => {
                    tracing::error!(pipe = %sh.spec.id, error = %e, "update_config refused")
                }
                Err(e) => tracing::error!(pipe = %sh.spec.id, error = %e, "update_config failed"),
            }
        }
        CommandOutcome::ReportConfig { filename } => send_config_report(sh, sid, &filename).await,
        CommandOutcome::Ignore(why) => tracing::warn!(pipe = %sh.spec.id, "command ignored: {why}"),
    }
}

fn request<S>(sh: &Shared<S>, r: AppRequest) {
    match &sh.app_tx {
        Some(tx) => {
            let _ = tx.send(r);
        }
        None => tracing::warn!(request = ?r, "no process controller; request ignored"),
    }
}

/// `<config_dir>/<basename>`, `.yaml` appended when missing.
pub fn config_target(dir: &Path, filename: &str) -> Option<PathBuf> {
    let base = Path::new(filename).file_name()?.to_str()?;
    if base.is_empty() || base == "." || base == ".." {
        return None;
    }
    let name = if base.ends_with(".yaml") {
        base.to_string()
    } else {
        format!("{base}.yaml")
    };
    Some(dir.join(name))
}

/// Checks that `yaml` is valid YAML and that the configuration directory with it in place of
/// `filename` loads and validates without errors.
pub fn validate_config_yaml(dir: &Path, filename: &str, yaml: &str) -> Result<(), Vec<String>> {
    let target = config_target(dir, filename)
        .ok_or_else(|| vec![format!("invalid filename {filename:?}")])?;
    match serde_norway::from_str::<serde_norway::Value>(yaml) {
        Ok(serde_norway::Value::Mapping(_)) => {}
        Ok(_) => return Err(vec!["the configuration must be a YAML mapping".to_string()]),
        Err(e) => return Err(vec![format!("invalid YAML: {e}")]),
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let scratch =
        std::env::temp_dir().join(format!("fustor-agent-check-{}-{nanos}", std::process::id()));
    let result = (|| -> Result<(), Vec<String>> {
        let io = |e: std::io::Error| vec![format!("cannot prepare validation: {e}")];
        std::fs::create_dir_all(&scratch).map_err(io)?;
        if let Ok(rd) = std::fs::read_dir(dir) {
            for entry in rd.flatten() {
                let p = entry.path();
                if p.extension().is_some_and(|e| e == "yaml")
                    && p.file_name() != target.file_name()
                    && let Some(name) = p.file_name()
                {
                    std::fs::copy(&p, scratch.join(name)).map_err(io)?;
                }
            }
        }
        if let Some(name) = target.file_name() {
            std::fs::write(scratch.join(name), yaml).map_err(io)?;
        }
        let schemas = crate::drivers::config_schemas();
        let mut loaded = load_agent_dir(&scratch, &schemas);
        let extra = validate_agent(&loaded, &schemas);
        loaded.diagnostics.extend(extra);
        let errors: Vec<String> = loaded.errors().map(|d| d.to_string()).collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    })();
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

/// `update_config`: validate, keep the previous version as `<file>.bak`, write atomically.
pub fn write_config(dir: &Path, filename: &str, yaml: &str) -> Result<PathBuf, String> {
    validate_config_yaml(dir, filename, yaml).map_err(|e| e.join("; "))?;
    let target = config_target(dir, filename).ok_or("invalid filename")?;
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    if target.exists() {
        let mut bak = target.clone().into_os_string();
        bak.push(".bak");
        std::fs::copy(&target, PathBuf::from(bak)).map_err(|e| format!("backup failed: {e}"))?;
    }
    let mut tmp = target.clone().into_os_string();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, yaml).map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, &target).map_err(|e| e.to_string())?;
    Ok(target)
}

/// `config_report` batch: `{"filename", "config_yaml"}` of a file in the config directory
/// (sent unsolicited after every session creation for `default.yaml`, if it exists).
pub(super) async fn send_config_report<S: Sender>(sh: &Arc<Shared<S>>, sid: &str, filename: &str) {
    let Some(path) = config_target(&sh.spec.config_dir, filename) else {
        return;
    };
    let read = {
        let p = path.clone();
        tokio::task::spawn_blocking(move || std::fs::read_to_string(p)).await
    };
    let Ok(Ok(content)) = read else {
        tracing::debug!(file = ?path, "no configuration file to report");
        return;
    };
    let mut meta = Map::new();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    meta.insert("filename".into(), Value::String(name));
    meta.insert("config_yaml".into(), Value::String(content));
    if let Err(e) = sh
        .send_events(sid, BatchKind::ConfigReport, Vec::new(), false, Some(meta))
        .await
    {
        tracing::warn!(pipe = %sh.spec.id, error = %e, "config report failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Command {
        Command::parse(v.as_object().unwrap())
    }

    #[test]
    fn commands_map_to_actions() {
        assert_eq!(
            CommandOutcome::of(
                parse(json!({"type":"scan","path":"/d","job_id":"j1","recursive":false})),
                "p"
            ),
            CommandOutcome::Scan {
                path: "/d".into(),
                recursive: false,
                job_id: Some("j1".into())
            }
        );
        assert_eq!(
            CommandOutcome::of(parse(json!({"type":"reload_config"})), "p"),
            CommandOutcome::Reload
        );
        assert_eq!(
            CommandOutcome::of(parse(json!({"type":"stop_pipe","agent_pipe_id":"p"})), "p"),
            CommandOutcome::StopThisPipe
        );
        assert!(matches!(
            CommandOutcome::of(parse(json!({"type":"stop_pipe","pipe_id":"q"})), "p"),
            CommandOutcome::Ignore(_)
        ));
        assert!(matches!(
            CommandOutcome::of(parse(json!({"type":"upgrade","version":"9.9"})), "p"),
            CommandOutcome::Ignore(m) if m.contains("not supported")
        ));
        assert!(matches!(
            CommandOutcome::of(parse(json!({"type":"dance"})), "p"),
            CommandOutcome::Ignore(_)
        ));
        assert_eq!(
            CommandOutcome::of(parse(json!({"type":"report_config"})), "p"),
            CommandOutcome::ReportConfig {
                filename: "default.yaml".into()
            }
        );
    }

    #[test]
    fn update_config_validates_backs_up_and_writes() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let good = "sources:\n  s: {driver: fs, uri: /tmp}\nsenders:\n  e: {driver: echo, uri: x}\npipes:\n  p: {source: s, sender: e}\n";
        std::fs::write(dir.join("default.yaml"), "agent_id: old\n").unwrap();
        let path = write_config(dir, "../default", good).unwrap();
        assert_eq!(path, dir.join("default.yaml"));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), good);
        assert_eq!(
            std::fs::read_to_string(dir.join("default.yaml.bak")).unwrap(),
            "agent_id: old\n"
        );
        // Syntax and semantic errors are refused and leave the file alone.
        assert!(write_config(dir, "default.yaml", "pipes: [").is_err());
        let dangling = "pipes:\n  q: {source: nope, sender: e}\n";
        let e = write_config(dir, "extra.yaml", dangling).unwrap_err();
        assert!(e.contains("nope"), "{e}");
        assert!(!dir.join("extra.yaml").exists());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), good);
    }
}

//! The agent's side of the registry's steering (issue 15): applying an announced configuration
//! version and carrying out admin actions, with their outcomes reported through
//! [`crate::steer::Steer`].
//!
//! A version is applied only when it validates with this agent's drivers and every source its
//! pipes read answers its driver's connection test here (a directory missing on this host is
//! the typical failure): the registry validates without knowing the host. Should a pipe still
//! fail to start, the previous copy is written back and reloaded, so the agent keeps running
//! what it ran.

use std::path::PathBuf;

use fustor_core::config::{Daemon, load_agent_text};

use super::{Agent, ReloadOutcome};
use crate::pipe::SteerRequest;
use crate::registry_config::{self, CopyVersion, Document};

impl Agent {
    pub(super) async fn steer(&mut self, r: SteerRequest) {
        let Some(steer) = self.steer.clone() else {
            tracing::warn!(request = ?r, "registry request ignored: this agent was started without --registry");
            return;
        };
        match r {
            SteerRequest::ConfigChanged { version, digest } => {
                if !steer.wants(version, &digest) {
                    return;
                }
                tracing::info!(version, "registry: new configuration version announced");
                match self.apply_version(version).await {
                    Ok(doc) => {
                        tracing::info!(version = doc.version, "registry: configuration applied");
                        steer.applied(doc.version, &doc.digest);
                        let state = self.paths.home.join(crate::statefile::STATE_DIR);
                        let v = CopyVersion {
                            version: doc.version,
                            digest: doc.digest,
                        };
                        let _ = tokio::task::spawn_blocking(move || {
                            registry_config::write_version(&state, &v)
                        })
                        .await;
                    }
                    Err(e) => {
                        tracing::error!(version, error = %e, "registry: configuration not applied; the previous one keeps running");
                        steer.failed(version, e);
                    }
                }
            }
            SteerRequest::Reload { action } => {
                let (ok, msg) = match self.reload().await {
                    ReloadOutcome::Unchanged => (true, "configuration unchanged".to_string()),
                    ReloadOutcome::Applied {
                        added,
                        removed,
                        failed,
                    } => (
                        failed.is_empty(),
                        format!("added {added:?}, removed {removed:?}, failed {failed:?}"),
                    ),
                    ReloadOutcome::Refused(why) => (false, why),
                };
                steer.outcome(action, ok, msg);
            }
            SteerRequest::StopPipe { pipe, action } => match self.stop_pipe(&pipe).await {
                Some(_) => steer.outcome(action, true, format!("pipe {pipe} stopped")),
                None => steer.outcome(action, false, format!("pipe {pipe} is not running")),
            },
            SteerRequest::StartPipe { pipe, action } => {
                let r = if self.pipes.contains_key(&pipe) {
                    Err(format!("pipe {pipe} is already running"))
                } else {
                    self.start_pipe(&pipe).await.map_err(|e| e.to_string())
                };
                report(&steer, action, r.map(|()| format!("pipe {pipe} started")));
            }
            SteerRequest::RestartPipe { pipe, action } => {
                self.stop_pipe(&pipe).await;
                let r = self.start_pipe(&pipe).await.map_err(|e| e.to_string());
                report(&steer, action, r.map(|()| format!("pipe {pipe} restarted")));
            }
        }
    }

    /// Fetches the newest document, checks it here, writes it as the last good copy and
    /// reloads; on any failure the running configuration and the copy stay as they were.
    async fn apply_version(&mut self, announced: i64) -> Result<Document, String> {
        let steer = self.steer.clone().ok_or("no registry")?;
        let doc = registry_config::fetch_document(&steer.link.url, &steer.link.key, &self.agent_id)
            .await?;
        let refused = |why: String| format!("version {} refused by this agent: {why}", doc.version);
        if doc.version < announced {
            return Err(format!(
                "the registry announced version {announced} but served {}",
                doc.version
            ));
        }
        let copy: PathBuf = self
            .paths
            .config_dir(Daemon::Agent)
            .join(registry_config::FILE);
        let (schemas, text, c) = (self.schemas.clone(), doc.yaml.clone(), copy.clone());
        let checked = tokio::task::spawn_blocking(move || check_here(&c, &text, &schemas))
            .await
            .map_err(|e| e.to_string())?;
        checked.map_err(refused)?;
        let (c, bytes) = (copy.clone(), doc.yaml.clone().into_bytes());
        let previous = tokio::task::spawn_blocking(move || {
            let prev = std::fs::read(&c).ok();
            registry_config::write_atomic(&c, &bytes).map(|()| prev)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("writing {}: {e}", copy.display()))?;
        let failure = match self.reload().await {
            ReloadOutcome::Unchanged => None,
            ReloadOutcome::Applied { failed, .. } if failed.is_empty() => None,
            ReloadOutcome::Applied { failed, .. } => {
                Some(format!("pipes failed to start: {}", failed.join(", ")))
            }
            ReloadOutcome::Refused(why) => Some(why),
        };
        let Some(why) = failure else {
            return Ok(doc);
        };
        // Back to the previous copy: the pipes it ran start again, the new ones stop.
        let c = copy.clone();
        let restored = tokio::task::spawn_blocking(move || match previous {
            Some(p) => registry_config::write_atomic(&c, &p),
            None => std::fs::remove_file(&c),
        })
        .await;
        if !matches!(restored, Ok(Ok(()))) {
            tracing::error!(file = ?copy, "registry: the previous copy could not be restored");
        }
        let back = self.reload().await;
        tracing::info!(outcome = ?back, "registry: previous configuration reloaded");
        Err(refused(why))
    }
}

fn report(steer: &crate::steer::Steer, action: Option<i64>, r: Result<String, String>) {
    if let Some(id) = action {
        match r {
            Ok(m) => steer.outcome(id, true, m),
            Err(e) => steer.outcome(id, false, e),
        }
    }
}

/// Blocking: the driver validation of `validate`, then the connection test of every source an
/// enabled pipe of the document reads.
fn check_here(
    copy: &std::path::Path,
    text: &str,
    schemas: &fustor_core::config::AgentDriverSchemas,
) -> Result<(), String> {
    if let Some(p) = registry_config::problems(copy, text, schemas) {
        return Err(p);
    }
    let cfg = load_agent_text(copy, text, schemas).config;
    let drivers = crate::drivers::source_drivers();
    for (id, pipe) in &cfg.pipes {
        if !cfg.is_pipe_enabled(id) {
            continue;
        }
        if let Some(src) = cfg.sources.get(&pipe.source)
            && let Err(e) = drivers.test_connection(src)
        {
            return Err(format!("source {} of pipe {id}: {e}", pipe.source));
        }
    }
    Ok(())
}

//! `start --registry URL --registry-key K`: the agent's configuration comes from Fusion's
//! registry (its own document, else its group's) and is kept on disk as
//! `agent-config/registry.yaml`, the last good copy, so the agent starts without the registry.
//!
//! A fetched document is checked with this agent's drivers before it replaces the copy: the
//! registry validates without driver-specific rules, and a copy that cannot start must never
//! overwrite one that can.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use fustor_core::config::{AgentDriverSchemas, load_agent_text, validate_agent};
use serde::Deserialize;

/// The copy's file name in `agent-config/`.
pub const FILE: &str = "registry.yaml";
const TIMEOUT: Duration = Duration::from_secs(10);

/// The part of the registry's answer the agent uses.
#[derive(Debug, Deserialize)]
pub struct Document {
    pub target: String,
    pub version: i64,
    pub digest: String,
    pub yaml: String,
}

/// The version the copy holds, next to it in `agent-state/` (the copy is plain YAML the loader
/// reads, so the version cannot live inside it).
pub const VERSION_FILE: &str = "registry-version.json";

/// What [`VERSION_FILE`] holds.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
pub struct CopyVersion {
    pub version: i64,
    pub digest: String,
}

/// Blocking: the version of the last good copy, if recorded.
pub fn read_version(state_dir: &Path) -> Option<CopyVersion> {
    let bytes = std::fs::read(state_dir.join(VERSION_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Blocking: records the version of the copy just written.
pub fn write_version(state_dir: &Path, v: &CopyVersion) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(v).map_err(std::io::Error::other)?;
    write_atomic(&state_dir.join(VERSION_FILE), &bytes)
}

/// What the start runs from.
#[derive(Debug)]
pub enum Outcome {
    /// A fresh version was fetched and stored.
    Fetched {
        target: String,
        version: i64,
        digest: String,
    },
    /// The registry could not give a usable document; the last good copy is used.
    LastGood { reason: String },
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryConfigError {
    #[error("no configuration from the registry ({reason}) and no last good copy at {copy}")]
    NoCopy { reason: String, copy: String },
    #[error("writing {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// Blocking: runs before the agent's runtime exists (the copy decides what it starts).
pub fn fetch_and_store(
    config_dir: &Path,
    url: &str,
    key: &str,
    agent_id: &str,
    drivers: &AgentDriverSchemas,
) -> Result<Outcome, RegistryConfigError> {
    let copy = config_dir.join(FILE);
    let reason = match fetch(url, key, agent_id) {
        Ok(doc) => match problems(&copy, &doc.yaml, drivers) {
            None => {
                write_atomic(&copy, doc.yaml.as_bytes()).map_err(|source| {
                    RegistryConfigError::Write {
                        path: copy.display().to_string(),
                        source,
                    }
                })?;
                return Ok(Outcome::Fetched {
                    target: doc.target,
                    version: doc.version,
                    digest: doc.digest,
                });
            }
            Some(p) => format!(
                "version {} of {} refused by this agent: {p}",
                doc.version, doc.target
            ),
        },
        Err(e) => e,
    };
    if copy.is_file() {
        Ok(Outcome::LastGood { reason })
    } else {
        Err(RegistryConfigError::NoCopy {
            reason,
            copy: copy.display().to_string(),
        })
    }
}

fn fetch(url: &str, key: &str, agent_id: &str) -> Result<Document, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the fetch: {e}"))?;
    rt.block_on(fetch_document(url, key, agent_id))
}

/// `GET /api/v1/agent/config/{id}` with the agent key; the error is a sentence for the log and
/// the registry's `config_error`.
pub async fn fetch_document(url: &str, key: &str, agent_id: &str) -> Result<Document, String> {
    let endpoint = format!(
        "{}/api/v1/agent/config/{agent_id}",
        url.trim_end_matches('/')
    );
    {
        let c = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .map_err(|e| e.to_string())?;
        let r = c
            .get(&endpoint)
            .header("X-API-Key", key)
            .send()
            .await
            .map_err(|e| format!("registry unreachable: {e}"))?;
        let status = r.status();
        if !status.is_success() {
            let body = r.text().await.unwrap_or_default();
            let body: String = body.chars().take(300).collect();
            return Err(format!("registry answered {status}: {body}"));
        }
        r.json::<Document>()
            .await
            .map_err(|e| format!("unreadable registry answer: {e}"))
    }
}

/// The errors this agent's `validate` would report for the document, joined; `None` if fine.
pub fn problems(copy: &Path, text: &str, drivers: &AgentDriverSchemas) -> Option<String> {
    let mut loaded = load_agent_text(copy, text, drivers);
    let extra = validate_agent(&loaded, drivers);
    loaded.diagnostics.extend(extra);
    let errors: Vec<String> = loaded.errors().map(|d| d.to_string()).collect();
    (!errors.is_empty()).then(|| errors.join("; "))
}

/// Temporary file, fsync, rename, fsync of the directory: a crash leaves the old copy or the
/// new one, never half of one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    std::fs::create_dir_all(&dir)?;
    let name = path
        .file_name()
        .map_or_else(|| FILE.into(), |n| n.to_string_lossy());
    let tmp = dir.join(format!(".{name}.tmp"));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(&dir)?.sync_all()
}

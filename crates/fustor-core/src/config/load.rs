//! Reading a config directory: every `*.yaml` file, merged by id (`configuration.md` §1).
//!
//! Failure is contained per file, as in the reference: a file that is not valid YAML is skipped,
//! a schema error ends that file but keeps what it already contributed. Nothing here aborts the
//! whole load, so one bad file never stops the pipes of the others.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::agent::{AgentConfig, AgentGlobals, AgentPipeConfig, SenderConfig, SourceConfig};
use super::de::{FieldError, KeyPath, from_value, yaml_key, yaml_to_json};
use super::diag::{Diagnostic, Loaded};
use super::driver::AgentDriverSchemas;
use super::fusion::{
    DEFAULT_HOST, DEFAULT_PORT, DEFAULT_SESSION_CLEANUP_INTERVAL, FusionConfig, FusionGlobals,
    FusionPipeConfig, GLOBAL_KEYS, ReceiverConfig, ViewConfig,
};
use super::home::{Daemon, FustorPaths};
use super::keys::{self, DriverShapes, Shape, ViewShapes};
use super::loose::Loose;

/// The file whose global settings win over every other file's.
pub const DEFAULT_FILE: &str = "default.yaml";

/// Loads `$FUSTOR_HOME/agent-config/`; `drivers` check each source's and sender's
/// `driver_params` (the agent's registry, `fustor_agent::drivers::config_schemas`).
pub fn load_agent(paths: &FustorPaths, drivers: &AgentDriverSchemas) -> Loaded<AgentConfig> {
    load_agent_dir(&paths.config_dir(Daemon::Agent), drivers)
}

/// Loads `$FUSTOR_HOME/fusion-config/`.
pub fn load_fusion(paths: &FustorPaths) -> Loaded<FusionConfig> {
    load_fusion_dir(&paths.config_dir(Daemon::Fusion))
}

pub fn load_agent_dir(dir: &Path, drivers: &AgentDriverSchemas) -> Loaded<AgentConfig> {
    load_dir(dir, drivers)
}

pub fn load_fusion_dir(dir: &Path) -> Loaded<FusionConfig> {
    load_dir(dir, &ViewShapes)
}

/// One agent document that is not on disk (the registry's stored configurations), loaded as
/// if it were the only file of a directory: `file` only names it in the diagnostics.
pub fn load_agent_text(
    file: &Path,
    text: &str,
    drivers: &AgentDriverSchemas,
) -> Loaded<AgentConfig> {
    let mut loaded = Loaded::<AgentConfig>::default();
    let mut default_globals = None;
    load_text(&mut loaded, file, text, &mut default_globals, drivers);
    if let Some(g) = default_globals {
        loaded.config.apply_default_globals(g);
    }
    loaded
}

/// What differs between the two daemons' files; the merge procedure itself is shared.
pub(crate) trait Schema: Default {
    type Globals: DeserializeOwned + Clone;
    /// What the daemon's drivers say about their `driver_params`.
    type Drivers: DriverShapes;
    /// Processing order inside a file; references may point forward or across files anyway.
    const SECTIONS: &'static [&'static str];
    /// Every key a file may contain, for the unknown-key report.
    const SHAPE: &'static Shape;

    fn apply_globals(&mut self, g: Self::Globals, file: &Path, diags: &mut Vec<Diagnostic>);
    /// Applied after all files, from `default.yaml` only.
    fn apply_default_globals(&mut self, g: Self::Globals);
    /// Parses and stores one section entry; `Ok(true)` when it replaced an earlier definition.
    fn merge_item(
        &mut self,
        section: &str,
        id: &str,
        value: &Value,
        drivers: &Self::Drivers,
    ) -> Result<bool, FieldError>;
    /// Top-level keys that are neither globals nor sections.
    fn keep_unknown(&mut self, _key: &str, _value: &Value) {}
}

fn load_dir<S: Schema>(dir: &Path, drivers: &S::Drivers) -> Loaded<S> {
    let mut loaded = Loaded::<S>::default();
    let files = match list_yaml_files(dir) {
        Ok(files) => files,
        Err(d) => {
            tracing::error!("{d}");
            loaded.diagnostics.push(d);
            return loaded;
        }
    };
    let mut default_globals = None;
    for file in files {
        load_file(&mut loaded, &file, &mut default_globals, drivers);
    }
    if let Some(g) = default_globals {
        loaded.config.apply_default_globals(g);
    }
    loaded
}

/// `*.yaml` only (not `.yml`), sorted by file name; a missing directory is created empty.
fn list_yaml_files(dir: &Path) -> Result<Vec<PathBuf>, Diagnostic> {
    let io_err = |what: &str, e: std::io::Error| {
        Diagnostic::error(
            Some(dir),
            KeyPath::new(),
            format!("cannot {what} config directory: {e}"),
        )
    };
    if !dir.exists() {
        tracing::info!("config directory {} not found, creating it", dir.display());
        fs::create_dir_all(dir).map_err(|e| io_err("create", e))?;
        return Ok(Vec::new());
    }
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|e| io_err("read", e))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml") && p.is_file())
        .collect();
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(files)
}

fn load_file<S: Schema>(
    loaded: &mut Loaded<S>,
    path: &Path,
    default_globals: &mut Option<S::Globals>,
    drivers: &S::Drivers,
) {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            let d = Diagnostic::error(Some(path), KeyPath::new(), format!("cannot read file: {e}"));
            tracing::error!("{d}");
            loaded.diagnostics.push(d);
            return;
        }
    };
    load_text(loaded, path, &text, default_globals, drivers);
}

fn load_text<S: Schema>(
    loaded: &mut Loaded<S>,
    path: &Path,
    text: &str,
    default_globals: &mut Option<S::Globals>,
    drivers: &S::Drivers,
) {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let fail = |loaded: &mut Loaded<S>, d: Diagnostic| {
        tracing::error!("{d}");
        loaded.diagnostics.push(d);
    };
    let parsed = serde_norway::from_str::<Loose>(text).map(|l| {
        for key in &l.duplicates {
            let msg = format!("key {key:?} appears twice in one mapping; the last one is used");
            loaded
                .diagnostics
                .push(Diagnostic::warning(Some(path), KeyPath::new(), msg));
        }
        l.value
    });
    let top = match parsed {
        Ok(serde_norway::Value::Mapping(top)) => top,
        Ok(serde_norway::Value::Null) => serde_norway::Mapping::new(),
        Ok(other) => {
            let found = kind(&yaml_to_json(other));
            let msg = format!("expected a mapping at the top level, found {found}");
            return fail(loaded, Diagnostic::error(Some(path), KeyPath::new(), msg));
        }
        Err(e) => {
            let msg = format!("YAML syntax error, file skipped: {e}");
            return fail(loaded, Diagnostic::error(Some(path), KeyPath::new(), msg));
        }
    };
    loaded.pipes_by_file.entry(name.clone()).or_default();
    if let Err(d) = merge_file(loaded, path, &name, top, default_globals, drivers) {
        fail(loaded, d);
    }
}

/// Merges one parsed file; the first schema error ends it (already merged items stay).
fn merge_file<S: Schema>(
    loaded: &mut Loaded<S>,
    path: &Path,
    name: &str,
    top: serde_norway::Mapping,
    default_globals: &mut Option<S::Globals>,
    drivers: &S::Drivers,
) -> Result<(), Diagnostic> {
    let json = yaml_to_json(serde_norway::Value::Mapping(top.clone()));
    let mut unknown = Vec::new();
    keys::check(&json, S::SHAPE, drivers, path, &mut unknown);
    for d in &unknown {
        tracing::warn!("{d}");
    }
    loaded.diagnostics.extend(unknown);
    let globals: S::Globals = from_value(&json).map_err(|e| Diagnostic::from_field(path, e))?;
    if name == DEFAULT_FILE {
        *default_globals = Some(globals.clone());
    }
    loaded
        .config
        .apply_globals(globals, path, &mut loaded.diagnostics);
    if let Value::Object(json) = &json {
        for (key, value) in json {
            if !S::SECTIONS.contains(&key.as_str()) {
                loaded.config.keep_unknown(key, value);
            }
        }
    }
    for section in S::SECTIONS {
        // Items are taken from the YAML mapping, which keeps document order: "earlier items"
        // of a failing file and `start <file>` order both follow the file as written.
        let items = match top.get(*section) {
            None | Some(serde_norway::Value::Null) => continue,
            Some(serde_norway::Value::Mapping(items)) => items,
            Some(other) => {
                let msg = format!(
                    "expected a mapping of id to definition, found {}",
                    kind(&yaml_to_json(other.clone()))
                );
                return Err(Diagnostic::error(
                    Some(path),
                    KeyPath::new().key(*section),
                    msg,
                ));
            }
        };
        for (id, value) in items {
            let id = yaml_key(id.clone());
            let id = id.as_str();
            let value = yaml_to_json(value.clone());
            let replaced = loaded
                .config
                .merge_item(section, id, &value, drivers)
                .map_err(|e| Diagnostic::from_field(path, e.within_keys(&[section, id])))?;
            let origin = format!("{section}.{id}");
            let previous = loaded.origins.insert(origin, path.to_path_buf());
            if replaced {
                let before = previous
                    .as_deref()
                    .and_then(Path::file_name)
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let msg = format!("'{id}' redefined; replaces the definition from {before}");
                let d = Diagnostic::warning(Some(path), KeyPath::new().key(*section).key(id), msg);
                tracing::warn!("{d}");
                loaded.diagnostics.push(d);
            }
            if *section == "pipes" {
                loaded
                    .pipes_by_file
                    .entry(name.to_string())
                    .or_default()
                    .push(id.to_string());
            }
        }
    }
    Ok(())
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn put<T>(map: &mut BTreeMap<String, T>, id: &str, item: T) -> bool {
    map.insert(id.to_string(), item).is_some()
}

/// Keys of `value` the schema does not know, kept for forward compatibility.
fn unknown_keys(value: &Value, known: &[&str]) -> Map<String, Value> {
    match value {
        Value::Object(m) => m
            .iter()
            .filter(|(k, _)| !known.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        _ => Map::new(),
    }
}

impl Schema for AgentConfig {
    type Globals = AgentGlobals;
    type Drivers = AgentDriverSchemas;
    const SECTIONS: &'static [&'static str] = &["sources", "senders", "pipes"];
    const SHAPE: &'static Shape = &keys::AGENT;

    fn apply_globals(&mut self, g: AgentGlobals, file: &Path, diags: &mut Vec<Diagnostic>) {
        if let Some(level) = g.logging {
            self.logging = level;
        }
        if let Some(n) = g.fs_scan_workers {
            self.fs_scan_workers = n;
        }
        if let Some(r) = g.registry {
            self.registry = Some(r);
        }
        if let Some(id) = g.agent_id.map(|s| s.trim().to_string()) {
            if let Some(old) = self.agent_id.as_ref().filter(|old| **old != id) {
                let msg = format!("agent_id redefined: was '{old}', now '{id}'");
                let d = Diagnostic::warning(Some(file), KeyPath::new().key("agent_id"), msg);
                tracing::warn!("{d}");
                diags.push(d);
            }
            self.agent_id = Some(id).filter(|s| !s.is_empty());
        }
    }

    fn apply_default_globals(&mut self, g: AgentGlobals) {
        if let Some(logging) = g.logging {
            self.logging = logging;
        }
    }

    fn merge_item(
        &mut self,
        section: &str,
        id: &str,
        value: &Value,
        drivers: &AgentDriverSchemas,
    ) -> Result<bool, FieldError> {
        Ok(match section {
            "sources" => {
                let item: SourceConfig = from_value(value)?;
                if let Some(schema) = drivers.source_schema(&item.driver) {
                    schema.check_params(&item.driver_params)?;
                }
                put(&mut self.sources, id, item)
            }
            "senders" => {
                let item: SenderConfig = from_value(value)?;
                if let Some(schema) = drivers.sender_schema(&item.driver) {
                    schema.check_params(&item.driver_params)?;
                }
                put(&mut self.senders, id, item)
            }
            _ => put(&mut self.pipes, id, from_value::<AgentPipeConfig>(value)?),
        })
    }
}

impl Schema for FusionConfig {
    type Globals = FusionGlobals;
    type Drivers = ViewShapes;
    const SECTIONS: &'static [&'static str] = &["receivers", "views", "pipes"];
    const SHAPE: &'static Shape = &keys::FUSION;

    fn apply_globals(&mut self, g: FusionGlobals, _file: &Path, _diags: &mut Vec<Diagnostic>) {
        if let Some(host) = g.host {
            self.host = host;
        }
        if let Some(port) = g.port {
            self.port = port;
        }
        if let Some(s) = g.session_cleanup_interval {
            self.session_cleanup_interval = s;
        }
        if let Some(logging) = g.logging {
            self.logging = logging;
        }
        if g.management_api_key.is_some() {
            self.management_api_key = g.management_api_key;
        }
    }

    /// When `default.yaml` sets any of host/port/session_cleanup_interval, those three are
    /// rebuilt from it alone (defaults for the ones it omits), as the reference does.
    fn apply_default_globals(&mut self, g: FusionGlobals) {
        if g.host.is_some() || g.port.is_some() || g.session_cleanup_interval.is_some() {
            self.host = g.host.unwrap_or_else(|| DEFAULT_HOST.to_string());
            self.port = g.port.unwrap_or(DEFAULT_PORT);
            self.session_cleanup_interval = g
                .session_cleanup_interval
                .unwrap_or(DEFAULT_SESSION_CLEANUP_INTERVAL);
        }
        if let Some(logging) = g.logging {
            self.logging = logging;
        }
    }

    fn merge_item(
        &mut self,
        section: &str,
        id: &str,
        value: &Value,
        _drivers: &ViewShapes,
    ) -> Result<bool, FieldError> {
        Ok(match section {
            "receivers" => {
                let mut item: ReceiverConfig = from_value(value)?;
                item.extra = unknown_keys(value, ReceiverConfig::KEYS);
                put(&mut self.receivers, id, item)
            }
            "views" => {
                let mut item: ViewConfig = from_value(value)?;
                item.check()?;
                item.extra = unknown_keys(value, ViewConfig::KEYS);
                put(&mut self.views, id, item)
            }
            _ => {
                let mut item: FusionPipeConfig = from_value(value)?;
                item.extra = unknown_keys(value, FusionPipeConfig::KEYS);
                put(&mut self.pipes, id, item)
            }
        })
    }

    fn keep_unknown(&mut self, key: &str, value: &Value) {
        if !GLOBAL_KEYS.contains(&key) {
            self.extra.insert(key.to_string(), value.clone());
        }
    }
}

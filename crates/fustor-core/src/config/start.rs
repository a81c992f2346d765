//! Which pipes a `start` runs (`configuration.md` §4) and what an agent reload changes (§6.1).

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use super::agent::AgentConfig;
use super::de::KeyPath;
use super::diag::{Diagnostic, Loaded};
use super::fusion::FusionConfig;
use super::load::DEFAULT_FILE;
use super::validate::redundant_message;

/// Result of resolving `start [ARGS...]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StartSelection {
    /// Pipe ids to start, in selection order, without duplicates.
    pub pipes: Vec<String>,
    /// Arguments naming neither a loaded file nor a pipe (logged and skipped by the daemon).
    pub unknown: Vec<String>,
    /// Selected pipes left out because they cannot run (see the selection functions).
    pub not_enabled: Vec<String>,
}

/// Agent `start`: without args the pipes of `default.yaml` whose source exists and is not
/// disabled (pipe/sender `disabled` are not checked, as in the reference); with args, each
/// `*.yaml`/`*.yml` arg selects the pipes its file defined and any other arg is a pipe id.
pub fn agent_start_selection(loaded: &Loaded<AgentConfig>, args: &[String]) -> StartSelection {
    let cfg = &loaded.config;
    if !args.is_empty() {
        return select_by_args(&loaded.pipes_by_file, |id| cfg.pipes.contains_key(id), args);
    }
    let mut sel = StartSelection::default();
    for id in loaded.pipes_by_file.get(DEFAULT_FILE).into_iter().flatten() {
        let source_ok = cfg
            .pipes
            .get(id)
            .and_then(|p| cfg.sources.get(&p.source))
            .is_some_and(|s| !s.disabled);
        let list = if source_ok {
            &mut sel.pipes
        } else {
            &mut sel.not_enabled
        };
        if !list.contains(id) {
            list.push(id.clone());
        }
    }
    sel
}

/// Fusion `start`: without args every enabled pipe of every file; with args the same file/id
/// selection as the agent, keeping only enabled pipes (a pipe without a live receiver or view
/// cannot be initialised).
pub fn fusion_start_selection(loaded: &Loaded<FusionConfig>, args: &[String]) -> StartSelection {
    let cfg = &loaded.config;
    if args.is_empty() {
        let (pipes, not_enabled) = cfg
            .pipes
            .keys()
            .cloned()
            .partition(|id| cfg.is_pipe_enabled(id));
        return StartSelection {
            pipes,
            unknown: Vec::new(),
            not_enabled,
        };
    }
    let mut sel = select_by_args(&loaded.pipes_by_file, |id| cfg.pipes.contains_key(id), args);
    let (pipes, not_enabled) = sel
        .pipes
        .into_iter()
        .partition(|id| cfg.is_pipe_enabled(id));
    sel.pipes = pipes;
    sel.not_enabled = not_enabled;
    sel
}

fn select_by_args(
    pipes_by_file: &std::collections::BTreeMap<String, Vec<String>>,
    exists: impl Fn(&str) -> bool,
    args: &[String],
) -> StartSelection {
    let mut sel = StartSelection::default();
    let push = |sel: &mut StartSelection, id: &String| {
        if !sel.pipes.contains(id) {
            sel.pipes.push(id.clone());
        }
    };
    for arg in args {
        if arg.ends_with(".yaml") || arg.ends_with(".yml") {
            let name = Path::new(arg)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            match pipes_by_file.get(&name) {
                Some(ids) => ids.iter().for_each(|id| push(&mut sel, id)),
                None => sel.unknown.push(arg.clone()),
            }
        } else if exists(arg) {
            push(&mut sel, arg);
        } else {
            sel.unknown.push(arg.clone());
        }
    }
    sel
}

/// What an agent reload starts and stops.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadPlan {
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

/// `added = enabled − running`, `removed = running − enabled`; refused when the pipes that would
/// run afterwards contain a redundant (source, sender) pair, so a bad edit changes nothing.
/// A pipe whose definition changed under the same id is deliberately neither.
pub fn agent_reload_plan(
    new: &AgentConfig,
    running: &BTreeSet<String>,
) -> Result<ReloadPlan, Diagnostic> {
    let enabled: BTreeSet<String> = new.enabled_pipes().into_iter().collect();
    let plan = ReloadPlan {
        added: enabled.difference(running).cloned().collect(),
        removed: running.difference(&enabled).cloned().collect(),
    };
    let after = running
        .iter()
        .filter(|id| !plan.removed.contains(id))
        .chain(plan.added.iter())
        .map(String::as_str);
    match new.redundant_pipes(after).into_iter().next() {
        Some((a, b)) => {
            let path = KeyPath::new().key("pipes").key(&b);
            Err(Diagnostic::error(None, path, redundant_message(&a, &b)))
        }
        None => Ok(plan),
    }
}

/// Change detector for agent reloads; equal signatures mean nothing to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConfigSignature(pub u64);

impl fmt::Display for ConfigSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl AgentConfig {
    /// FNV-1a over the canonical JSON (sorted keys) of logging, fs_scan_workers, agent_id,
    /// sources, senders and pipes. The reference uses SHA-256; only equality matters here and
    /// FNV is stable across builds, unlike `std`'s hasher.
    pub fn signature(&self) -> ConfigSignature {
        #[derive(Serialize)]
        struct Signed<'a> {
            logging: &'a super::common::LoggingConfig,
            fs_scan_workers: u32,
            agent_id: &'a Option<String>,
            sources: &'a std::collections::BTreeMap<String, super::agent::SourceConfig>,
            senders: &'a std::collections::BTreeMap<String, super::agent::SenderConfig>,
            pipes: &'a std::collections::BTreeMap<String, super::agent::AgentPipeConfig>,
        }
        let signed = Signed {
            logging: &self.logging,
            fs_scan_workers: self.fs_scan_workers,
            agent_id: &self.agent_id,
            sources: &self.sources,
            senders: &self.senders,
            pipes: &self.pipes,
        };
        let mut h = Fnv(0xcbf2_9ce4_8422_2325);
        match serde_json::to_value(&signed) {
            Ok(v) => canonical(&v, &mut h),
            // Unreachable for these types (string keys, finite floats from YAML); hashing the
            // debug form still detects changes.
            Err(_) => h.write(format!("{self:?}").as_bytes()),
        }
        ConfigSignature(h.0)
    }
}

struct Fnv(u64);

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// Writes JSON with object keys sorted whatever `serde_json`'s map order is (another crate may
/// enable `preserve_order`, which would make the signature depend on YAML key order).
fn canonical(v: &Value, h: &mut Fnv) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort_unstable();
            h.write(b"{");
            for k in keys {
                h.write(Value::String(k.clone()).to_string().as_bytes());
                h.write(b":");
                if let Some(v) = m.get(k) {
                    canonical(v, h);
                }
                h.write(b",");
            }
            h.write(b"}");
        }
        Value::Array(a) => {
            h.write(b"[");
            for v in a {
                canonical(v, h);
                h.write(b",");
            }
            h.write(b"]");
        }
        scalar => h.write(scalar.to_string().as_bytes()),
    }
}

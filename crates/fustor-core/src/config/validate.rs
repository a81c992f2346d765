//! Cross-reference rules: what is enabled, what refers to what, what may not coexist.
//!
//! These run on the merged configuration because references may cross files; parse-level
//! errors were already reported by the loader.

use std::collections::BTreeMap;
use std::path::Path;

use super::agent::AgentConfig;
use super::de::KeyPath;
use super::diag::{Diagnostic, Loaded};
use super::driver::{AgentDriverSchemas, ParamsSchema};
use super::fusion::{FusionConfig, ViewDriverKind};

impl AgentConfig {
    /// Enabled ⇔ the pipe, its source and its sender all exist and none is disabled.
    pub fn is_pipe_enabled(&self, pipe_id: &str) -> bool {
        let Some(p) = self.pipes.get(pipe_id) else {
            return false;
        };
        !p.disabled
            && self.sources.get(&p.source).is_some_and(|s| !s.disabled)
            && self.senders.get(&p.sender).is_some_and(|s| !s.disabled)
    }

    /// Enabled pipe ids, sorted.
    pub fn enabled_pipes(&self) -> Vec<String> {
        self.pipes
            .keys()
            .filter(|id| self.is_pipe_enabled(id))
            .cloned()
            .collect()
    }

    /// Pairs `(first, later)` of the given pipes that share a (source, sender) pair.
    ///
    /// An effective pipe *is* its (source, sender) pair: two of them would open two sessions
    /// feeding the same events, so the reference refuses them at validate, start and reload.
    pub fn redundant_pipes<'a>(
        &self,
        pipe_ids: impl IntoIterator<Item = &'a str>,
    ) -> Vec<(String, String)> {
        let mut ids: Vec<&str> = pipe_ids.into_iter().collect();
        ids.sort_unstable();
        ids.dedup();
        let mut first: BTreeMap<(&str, &str), &str> = BTreeMap::new();
        let mut out = Vec::new();
        for id in ids {
            let Some(p) = self.pipes.get(id) else {
                continue;
            };
            match first.get(&(p.source.as_str(), p.sender.as_str())) {
                Some(earlier) => out.push(((*earlier).to_string(), id.to_string())),
                None => {
                    first.insert((&p.source, &p.sender), id);
                }
            }
        }
        out
    }
}

pub(crate) fn redundant_message(a: &str, b: &str) -> String {
    format!("Redundant configuration: pipes {a} and {b} use the same source and sender")
}

/// Agent `validate` / pre-start checks (`configuration.md` §5), with the registered drivers'
/// checks of their `uri`.
pub fn validate_agent(
    loaded: &Loaded<AgentConfig>,
    drivers: &AgentDriverSchemas,
) -> Vec<Diagnostic> {
    let cfg = &loaded.config;
    let mut out = Vec::new();
    let err = |section: &str, id: &str, key: &str, msg: String| {
        let path = KeyPath::new().key(section).key(id).key(key);
        Diagnostic::error(loaded.origin(section, id), path, msg)
    };
    for (section, items) in [
        (
            "sources",
            endpoint_fields(
                &cfg.sources,
                |s| (&s.driver, &s.uri),
                |d| drivers.source_schema(d),
            ),
        ),
        (
            "senders",
            endpoint_fields(
                &cfg.senders,
                |s| (&s.driver, &s.uri),
                |d| drivers.sender_schema(d),
            ),
        ),
    ] {
        for (id, driver, uri, schema) in items {
            if driver.trim().is_empty() {
                out.push(err(section, id, "driver", "must not be empty".into()));
            }
            if uri.trim().is_empty() {
                out.push(err(section, id, "uri", "must not be empty".into()));
            }
            if let Some(Err(msg)) = schema.map(|d| d.check_uri(uri)) {
                out.push(err(section, id, "uri", msg));
            }
        }
    }
    for (id, p) in &cfg.pipes {
        if !cfg.sources.contains_key(&p.source) {
            let msg = format!("pipe '{id}' references unknown source '{}'", p.source);
            out.push(err("pipes", id, "source", msg));
        }
        if !cfg.senders.contains_key(&p.sender) {
            let msg = format!("pipe '{id}' references unknown sender '{}'", p.sender);
            out.push(err("pipes", id, "sender", msg));
        }
    }
    for (a, b) in cfg.redundant_pipes(cfg.pipes.keys().map(String::as_str)) {
        let path = KeyPath::new().key("pipes").key(&b);
        out.push(Diagnostic::error(
            loaded.origin("pipes", &b),
            path,
            redundant_message(&a, &b),
        ));
    }
    check_logging(&cfg.logging, &mut out);
    if let Some(r) = &cfg.registry {
        let key = |k: &str| KeyPath::new().key("registry").key(k);
        let url = r.url.trim();
        if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() <= 8 {
            let msg = format!("must be Fusion's main URL (http:// or https://), not {url:?}");
            out.push(Diagnostic::error(None, key("url"), msg));
        }
        if r.key.trim().is_empty() {
            out.push(Diagnostic::error(None, key("key"), "must not be empty"));
        }
    }
    out
}

/// `(id, driver, uri, the driver's schema if registered)` of each definition.
fn endpoint_fields<'a, T>(
    items: &'a BTreeMap<String, T>,
    f: impl Fn(&T) -> (&String, &String),
    schema: impl Fn(&str) -> Option<&'a ParamsSchema>,
) -> Vec<(&'a str, &'a str, &'a str, Option<&'a ParamsSchema>)> {
    items
        .iter()
        .map(|(id, item)| {
            let (driver, uri) = f(item);
            (id.as_str(), driver.as_str(), uri.as_str(), schema(driver))
        })
        .collect()
}

/// A Fusion receiver URL: `http(s)://host[:port][/path]`. Without this, `127.0.0.1:8102` passed
/// `validate` and only failed when the pipe first tried to connect.
pub fn check_http_uri(uri: &str) -> Result<(), String> {
    let shown: String = uri.chars().take(80).collect();
    let Some((scheme, rest)) = uri.split_once("://") else {
        return Err(format!(
            "{shown:?} is not a URL: the scheme http:// or https:// is required (e.g. http://fusion:8102)"
        ));
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err(format!(
            "{shown:?}: scheme {scheme:?} is not supported (http or https required)"
        ));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((h, tail)) => (h, tail.strip_prefix(':')),
            None => ("", None),
        },
        None => match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        },
    };
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c == '@') {
        return Err(format!("{shown:?} has no valid host"));
    }
    if let Some(p) = port
        && p.parse::<u16>().is_err()
    {
        let p: String = p.chars().take(20).collect();
        return Err(format!(
            "{shown:?}: port {p:?} is not a number from 0 to 65535"
        ));
    }
    Ok(())
}

/// `logging.level` and `logging.format`, the same for both daemons.
fn check_logging(logging: &super::common::LoggingConfig, out: &mut Vec<Diagnostic>) {
    check_level(logging.tracing_level().is_none(), &logging.level, out);
    check_log_format(logging, out);
}

/// `logging.format`: `text` (the default) or `json`; a Python format string is tolerated.
fn check_log_format(logging: &super::common::LoggingConfig, out: &mut Vec<Diagnostic>) {
    let Some(format) = logging.format.as_deref() else {
        return;
    };
    let path = KeyPath::new().key("logging").key("format");
    if logging.json_format().is_some() {
        return;
    }
    if format.contains("%(") {
        let msg = "Python log format strings are not supported; the text format is used";
        out.push(Diagnostic::warning(None, path, msg));
    } else {
        let shown: String = format.chars().take(40).collect();
        let msg = format!("unknown log format {shown:?} (expected text or json)");
        out.push(Diagnostic::error(None, path, msg));
    }
}

fn check_level(unknown: bool, level: &str, out: &mut Vec<Diagnostic>) {
    if unknown {
        let msg = format!("unknown log level '{level}', INFO is used");
        out.push(Diagnostic::warning(
            None,
            KeyPath::new().key("logging"),
            msg,
        ));
    }
}

/// One listener serving every receiver with the same `(driver, port)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiverServer {
    pub driver: String,
    pub port: u16,
    /// From the first receiver of the group (by id).
    pub bind_host: String,
    pub receiver_ids: Vec<String>,
    /// Agent key → Fusion pipe id, only for the pipes that were given.
    pub keys: BTreeMap<String, String>,
}

impl FusionConfig {
    /// Enabled ⇔ the receiver exists and is not disabled, and at least one listed view exists
    /// and is not disabled.
    pub fn is_pipe_enabled(&self, pipe_id: &str) -> bool {
        let Some(p) = self.pipes.get(pipe_id) else {
            return false;
        };
        self.receivers.get(&p.receiver).is_some_and(|r| !r.disabled)
            && !self.active_views(pipe_id).is_empty()
    }

    /// Enabled pipe ids, sorted.
    pub fn enabled_pipes(&self) -> Vec<String> {
        self.pipes
            .keys()
            .filter(|id| self.is_pipe_enabled(id))
            .cloned()
            .collect()
    }

    /// The pipe's views that exist and are not disabled, in configured order; the others are
    /// skipped while the pipe runs with these.
    pub fn active_views(&self, pipe_id: &str) -> Vec<&str> {
        self.pipes.get(pipe_id).map_or_else(Vec::new, |p| {
            p.views
                .iter()
                .filter(|v| self.views.get(*v).is_some_and(|v| !v.disabled))
                .map(String::as_str)
                .collect()
        })
    }

    /// Groups the receivers of `pipe_ids` into listeners and collects their key maps.
    ///
    /// Keys are registered only for the pipes actually started (entry `pipe_id` in `pipe_ids`);
    /// when one key appears twice the later entry wins, as with the reference's dict.
    pub fn receiver_servers<'a>(
        &self,
        pipe_ids: impl IntoIterator<Item = &'a str>,
    ) -> Vec<ReceiverServer> {
        let pipes: Vec<&str> = pipe_ids.into_iter().collect();
        let mut groups: BTreeMap<(&str, u16), ReceiverServer> = BTreeMap::new();
        for (rid, r) in &self.receivers {
            let used = pipes
                .iter()
                .any(|p| self.pipes.get(*p).is_some_and(|p| p.receiver == *rid));
            if !used {
                continue;
            }
            let server = groups
                .entry((&r.driver, r.port))
                .or_insert_with(|| ReceiverServer {
                    driver: r.driver.clone(),
                    port: r.port,
                    bind_host: r.bind_host.clone(),
                    receiver_ids: Vec::new(),
                    keys: BTreeMap::new(),
                });
            server.receiver_ids.push(rid.clone());
            for e in r
                .api_keys
                .iter()
                .filter(|e| pipes.contains(&e.pipe_id.as_str()))
            {
                server.keys.insert(e.key.clone(), e.pipe_id.clone());
            }
        }
        groups.into_values().collect()
    }
}

/// Fusion pre-start checks with the built-in view drivers; Fusion has no `validate` command,
/// these back `check-config`.
pub fn validate_fusion(loaded: &Loaded<FusionConfig>) -> Vec<Diagnostic> {
    let known: Vec<&str> = ViewDriverKind::ALL.iter().map(|k| k.name()).collect();
    validate_fusion_with(loaded, &known)
}

/// [`validate_fusion`] against the view drivers a Fusion build registered (its view registry),
/// so that a new driver needs no entry here to pass `check-config`.
pub fn validate_fusion_with(
    loaded: &Loaded<FusionConfig>,
    view_drivers: &[&str],
) -> Vec<Diagnostic> {
    let cfg = &loaded.config;
    let mut out = Vec::new();
    let at = |section: &str, id: &str| loaded.origin(section, id);
    let path = |section: &str, id: &str, key: &str| KeyPath::new().key(section).key(id).key(key);
    for (id, v) in &cfg.views {
        if !view_drivers.contains(&v.driver.as_str()) {
            let known = view_drivers;
            let msg = format!(
                "unknown view driver '{}' (expected {})",
                v.driver,
                known.join(" or ")
            );
            out.push(Diagnostic::error(
                at("views", id),
                path("views", id, "driver"),
                msg,
            ));
        }
    }
    for (id, p) in &cfg.pipes {
        let file = at("pipes", id);
        if !cfg.receivers.contains_key(&p.receiver) {
            let msg = format!("pipe '{id}' references unknown receiver '{}'", p.receiver);
            out.push(Diagnostic::error(file, path("pipes", id, "receiver"), msg));
        }
        if p.views.is_empty() {
            let msg = format!("pipe '{id}' lists no views");
            out.push(Diagnostic::error(file, path("pipes", id, "views"), msg));
        }
        for v in p.views.iter().filter(|v| !cfg.views.contains_key(*v)) {
            let msg = format!("pipe '{id}' references unknown view '{v}'");
            out.push(Diagnostic::error(file, path("pipes", id, "views"), msg));
        }
        if p.extra.contains_key("disabled") {
            let msg = "Fusion pipes have no `disabled` key; disable the receiver or the views";
            out.push(Diagnostic::warning(
                file,
                path("pipes", id, "disabled"),
                msg,
            ));
        }
    }
    check_receivers(loaded, &mut out);
    check_logging(&cfg.logging, &mut out);
    out
}

fn check_receivers(loaded: &Loaded<FusionConfig>, out: &mut Vec<Diagnostic>) {
    let cfg = &loaded.config;
    let mut hosts: BTreeMap<(&str, u16), (&str, &str)> = BTreeMap::new();
    let mut key_owner: BTreeMap<(&str, u16, &str), &str> = BTreeMap::new();
    for (rid, r) in &cfg.receivers {
        let file: Option<&Path> = loaded.origin("receivers", rid);
        let path = |key: &str| KeyPath::new().key("receivers").key(rid).key(key);
        if r.driver != "http" {
            let msg = format!("unknown receiver driver '{}' (expected http)", r.driver);
            out.push(Diagnostic::error(file, path("driver"), msg));
        }
        let group = (r.driver.as_str(), r.port);
        match hosts.get(&group) {
            Some((first, host)) if *host != r.bind_host => {
                let msg = format!(
                    "shares port {} with receiver '{first}', whose bind_host '{host}' is used",
                    r.port
                );
                out.push(Diagnostic::warning(file, path("bind_host"), msg));
            }
            Some(_) => {}
            None => {
                hosts.insert(group, (rid, &r.bind_host));
            }
        }
        for e in &r.api_keys {
            if !cfg.pipes.contains_key(&e.pipe_id) {
                let msg = format!("api key bound to unknown pipe '{}'", e.pipe_id);
                out.push(Diagnostic::warning(file, path("api_keys"), msg));
            }
            let slot = (r.driver.as_str(), r.port, e.key.as_str());
            if let Some(prev) = key_owner.insert(slot, &e.pipe_id) {
                if prev != e.pipe_id {
                    let msg = format!(
                        "one api key is bound to pipes '{prev}' and '{}'; '{}' wins",
                        e.pipe_id, e.pipe_id
                    );
                    out.push(Diagnostic::warning(file, path("api_keys"), msg));
                }
            }
        }
    }
}

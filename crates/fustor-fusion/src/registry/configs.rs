//! Central agent configuration documents (issue 15, item 3): the same YAML as an agent's
//! `agent-config/*.yaml`, stored per agent or per group, every write a new version.
//!
//! Optimistic locking: the ETag of a document is the digest of its newest version and an
//! update must name it in `If-Match`; the check and the insert run in one transaction on the
//! database thread, so of two writers holding the same ETag exactly one wins.

use std::path::Path;

use fustor_core::config::{
    AgentDriverSchemas, Diagnostic, KeyPath, Segment, load_agent_text, validate_agent,
};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::db::insert_audit;
use super::keys;
use super::model::AuditNew;

/// Longest stored document: a configuration is a few kilobytes; the bound keeps one admin
/// mistake from growing the database.
pub const MAX_DOC_BYTES: usize = 256 * 1024;
const MAX_NAME_CHARS: usize = 128;

/// Whom a document configures: one agent, or every agent assigned to a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Agent(String),
    Group(String),
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars().count() <= MAX_NAME_CHARS
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl Target {
    /// `group:<name>` or an agent id; names are `[A-Za-z0-9._-]`, at most 128 characters.
    pub fn parse(s: &str) -> Option<Target> {
        match s.strip_prefix("group:") {
            Some(g) if valid_name(g) => Some(Target::Group(g.to_string())),
            Some(_) => None,
            None if valid_name(s) => Some(Target::Agent(s.to_string())),
            None => None,
        }
    }

    /// The stored key (also the audit log's target, prefixed with `agent-config/`).
    pub fn key(&self) -> String {
        match self {
            Target::Agent(a) => a.clone(),
            Target::Group(g) => format!("group:{g}"),
        }
    }

    pub fn is_group_name(s: &str) -> bool {
        valid_name(s)
    }
}

/// One problem of a refused document, as `fustor-agent validate` reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    pub file: String,
    /// Dotted key path (`sources.s1.uri`); empty for a file-level problem.
    pub key: String,
    /// 1-based line of the key (or of a YAML syntax error), when it can be located.
    pub line: Option<usize>,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Problems {
    pub message: String,
    pub problems: Vec<Problem>,
}

/// The file name problems are reported against: what the agent writes its copy as.
pub const DOC_FILE: &str = "registry.yaml";

/// Runs the agent's loader and `validate` checks on a document. Fusion knows no agent
/// drivers, so driver-specific `uri`/`driver_params` checks are left to the agent; everything
/// else (syntax, schema, unknown keys, references, redundant pipes, logging) is the same.
/// Blocking (pure CPU, but the loader logs); call off the async threads for big documents.
pub fn validate(text: &str) -> Vec<Problem> {
    let drivers = AgentDriverSchemas::default();
    let file = Path::new(DOC_FILE);
    let mut loaded = load_agent_text(file, text, &drivers);
    let extra = validate_agent(&loaded, &drivers);
    loaded.diagnostics.extend(extra);
    let syntax_line = serde_norway::from_str::<serde_norway::Value>(text)
        .err()
        .and_then(|e| e.location())
        .map(|l| l.line());
    loaded
        .diagnostics
        .iter()
        .filter(|d| d.fails_check())
        .map(|d| problem(d, text, syntax_line))
        .collect()
}

fn problem(d: &Diagnostic, text: &str, syntax_line: Option<usize>) -> Problem {
    let line = if d.path.is_empty() {
        syntax_line.filter(|_| d.message.starts_with("YAML syntax error"))
    } else {
        // An unknown key is reported at its parent: point at the key itself when found.
        let unknown = d
            .message
            .strip_prefix("unknown key \"")
            .and_then(|r| r.split_once('"'))
            .map(|(k, _)| d.path.clone().key(k));
        unknown
            .and_then(|p| line_of(text, &p))
            .or_else(|| line_of(text, &d.path))
    };
    Problem {
        file: DOC_FILE.to_string(),
        key: d.path.to_string(),
        line,
        message: d.message.clone(),
    }
}

/// The line of a key path in block-style YAML: each key is looked for below its parent, at a
/// deeper indentation. A path into flow style or a list ends at the deepest key found.
pub(crate) fn line_of(text: &str, path: &KeyPath) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let mut start = 0usize;
    let mut parent_indent: Option<usize> = None;
    let mut found = None;
    for seg in path.segments() {
        let Segment::Key(key) = seg else { break };
        let mut hit = None;
        for (i, l) in lines.iter().enumerate().skip(start) {
            let body = l.trim_start();
            if body.is_empty() || body.starts_with('#') {
                continue;
            }
            let indent = l.len() - body.len();
            if parent_indent.is_some_and(|p| indent <= p) && found.is_some_and(|f| i > f) {
                break;
            }
            let name = body.trim_start_matches("- ");
            let bare = name
                .strip_prefix(key.as_str())
                .is_some_and(|r| r.starts_with(':'));
            let quoted = [format!("\"{key}\":"), format!("'{key}':")]
                .iter()
                .any(|q| name.starts_with(q.as_str()));
            if bare || quoted {
                hit = Some((i, indent));
                break;
            }
        }
        let Some((i, indent)) = hit else { break };
        found = Some(i);
        start = i + 1;
        parent_indent = Some(indent);
    }
    found.map(|i| i + 1)
}

pub fn doc_digest(text: &str) -> String {
    keys::hex(&keys::sha256(text.as_bytes()))
}

/// A stored version, without its text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionInfo {
    pub version: i64,
    pub digest: String,
    /// The admin key's name.
    pub author: String,
    pub at: f64,
}

/// `GET /admin/agent-configs/{target}`: the newest version with its text.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConfigDocument {
    pub target: String,
    #[serde(flatten)]
    pub info: VersionInfo,
    pub yaml: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionList {
    pub target: String,
    /// Newest first.
    pub versions: Vec<VersionInfo>,
}

/// The outcome of a write, decided inside its transaction.
#[derive(Debug, Clone)]
pub enum PutOutcome {
    Written(ConfigDocument),
    /// `If-Match` names another version: the current digest, for the 412 answer.
    Stale {
        current: Option<String>,
    },
    /// The document exists and the write named no version (428).
    Required {
        current: String,
    },
}

/// A write as the handler hands it to the database thread.
pub struct PutRequest {
    pub target: String,
    pub yaml: String,
    pub author: String,
    pub if_match: Option<String>,
    pub at: f64,
}

fn latest(conn: &Connection, target: &str) -> rusqlite::Result<Option<VersionInfo>> {
    conn.query_row(
        "SELECT version, digest, author, at FROM agent_configs WHERE target = ?1
         ORDER BY version DESC LIMIT 1",
        params![target],
        |r| {
            Ok(VersionInfo {
                version: r.get(0)?,
                digest: r.get(1)?,
                author: r.get(2)?,
                at: r.get(3)?,
            })
        },
    )
    .optional()
}

/// Checks `If-Match` against the newest version and inserts the new one, with its audit entry,
/// in one transaction. A refused write is audited too.
pub fn put(conn: &mut Connection, req: PutRequest) -> rusqlite::Result<PutOutcome> {
    let tx = conn.transaction()?;
    let current = latest(&tx, &req.target)?;
    let digest = doc_digest(&req.yaml);
    let mut audit = AuditNew {
        who: req.author.clone(),
        action: "agent_config.put".into(),
        target: format!("agent-config/{}", req.target),
        before_digest: current.as_ref().map(|c| c.digest.clone()),
        after_digest: None,
        result: String::new(),
    };
    let refused = match (&current, req.if_match.as_deref()) {
        (Some(c), None) => Some(PutOutcome::Required {
            current: c.digest.clone(),
        }),
        (Some(c), Some(m)) if m != "*" && m != c.digest => Some(PutOutcome::Stale {
            current: Some(c.digest.clone()),
        }),
        // `If-Match` on a document that does not exist yet: someone expected another state.
        (None, Some(m)) if m != "*" => Some(PutOutcome::Stale { current: None }),
        _ => None,
    };
    if let Some(r) = refused {
        audit.result = match r {
            PutOutcome::Required { .. } => "precondition_required",
            _ => "precondition_failed",
        }
        .into();
        insert_audit(&tx, &audit, req.at)?;
        tx.commit()?;
        return Ok(r);
    }
    let version = current.map_or(1, |c| c.version + 1);
    tx.execute(
        "INSERT INTO agent_configs(target, version, yaml, digest, author, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![req.target, version, req.yaml, digest, req.author, req.at],
    )?;
    audit.after_digest = Some(digest.clone());
    audit.result = "ok".into();
    insert_audit(&tx, &audit, req.at)?;
    tx.commit()?;
    Ok(PutOutcome::Written(ConfigDocument {
        target: req.target,
        info: VersionInfo {
            version,
            digest,
            author: req.author,
            at: req.at,
        },
        yaml: req.yaml,
    }))
}

/// The newest version of a target, or a given one.
pub fn get(
    conn: &Connection,
    target: &str,
    version: Option<i64>,
) -> rusqlite::Result<Option<ConfigDocument>> {
    conn.query_row(
        "SELECT version, digest, author, at, yaml FROM agent_configs
         WHERE target = ?1 AND (?2 IS NULL OR version = ?2) ORDER BY version DESC LIMIT 1",
        params![target, version],
        |r| {
            Ok(ConfigDocument {
                target: target.to_string(),
                info: VersionInfo {
                    version: r.get(0)?,
                    digest: r.get(1)?,
                    author: r.get(2)?,
                    at: r.get(3)?,
                },
                yaml: r.get(4)?,
            })
        },
    )
    .optional()
}

pub fn versions(conn: &Connection, target: &str) -> rusqlite::Result<Vec<VersionInfo>> {
    let mut stmt = conn.prepare_cached(
        "SELECT version, digest, author, at FROM agent_configs WHERE target = ?1
         ORDER BY version DESC",
    )?;
    let rows = stmt.query_map(params![target], |r| {
        Ok(VersionInfo {
            version: r.get(0)?,
            digest: r.get(1)?,
            author: r.get(2)?,
            at: r.get(3)?,
        })
    })?;
    rows.collect()
}

/// Assigns an agent to a group (or removes it from its group), audited in the same transaction.
pub fn set_group(
    conn: &mut Connection,
    agent_id: &str,
    group: Option<&str>,
    audit: AuditNew,
    at: f64,
) -> rusqlite::Result<Option<String>> {
    let tx = conn.transaction()?;
    let before = group_of(&tx, agent_id)?;
    match group {
        Some(g) => tx.execute(
            "INSERT INTO agent_groups(agent_id, grp) VALUES (?1, ?2)
             ON CONFLICT(agent_id) DO UPDATE SET grp = excluded.grp",
            params![agent_id, g],
        )?,
        None => tx.execute(
            "DELETE FROM agent_groups WHERE agent_id = ?1",
            params![agent_id],
        )?,
    };
    let audit = AuditNew {
        before_digest: before.as_deref().map(doc_digest),
        after_digest: group.map(doc_digest),
        ..audit
    };
    insert_audit(&tx, &audit, at)?;
    tx.commit()?;
    Ok(before)
}

pub fn group_of(conn: &Connection, agent_id: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row(
        "SELECT grp FROM agent_groups WHERE agent_id = ?1",
        params![agent_id],
        |r| r.get(0),
    )
    .optional()
}

/// What an agent runs: its own document, else its group's.
pub fn effective(conn: &Connection, agent_id: &str) -> rusqlite::Result<Option<ConfigDocument>> {
    if let Some(d) = get(conn, agent_id, None)? {
        return Ok(Some(d));
    }
    match group_of(conn, agent_id)? {
        Some(g) => get(conn, &format!("group:{g}"), None),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(Target::parse("a-1"), Some(Target::Agent("a-1".into())));
        assert_eq!(
            Target::parse("group:nfs"),
            Some(Target::Group("nfs".into()))
        );
        assert_eq!(Target::parse("group:"), None);
        assert_eq!(Target::parse("a/b"), None);
        assert_eq!(Target::parse(""), None);
    }

    #[test]
    fn key_lines_follow_nesting() {
        let text = "sources:\n  s1:\n    driver: fs\n    uri: /a\npipes:\n  p1:\n    source: s1\n    sender: nope\n";
        assert_eq!(line_of(text, &KeyPath::from("pipes.p1.sender")), Some(8));
        assert_eq!(line_of(text, &KeyPath::from("sources.s1.uri")), Some(4));
        assert_eq!(line_of(text, &KeyPath::from("sources.s2")), Some(1));
    }

    #[test]
    fn broken_documents_are_located() {
        let text = "sources:\n  s1: {driver: fs, uri: /a}\npipes:\n  p1:\n    source: s1\n    sender: nope\n";
        let p = validate(text);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].key, "pipes.p1.sender");
        assert_eq!(p[0].line, Some(6));
        let p = validate("sources: [\n");
        assert_eq!(p.first().and_then(|p| p.line), Some(2), "{p:?}");
    }
}

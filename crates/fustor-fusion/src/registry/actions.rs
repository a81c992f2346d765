//! Remote actions on agents (issue 15): typed requests, their persisted records and the SQL
//! that keeps them (`agent_actions`, migration 3).

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::db::insert_audit;
use super::model::AuditNew;

/// What an admin may ask an agent to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    Reload,
    Rescan,
    RestartPipe,
    StopPipe,
    StartPipe,
}

impl ActionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Reload => "reload",
            ActionKind::Rescan => "rescan",
            ActionKind::RestartPipe => "restart_pipe",
            ActionKind::StopPipe => "stop_pipe",
            ActionKind::StartPipe => "start_pipe",
        }
    }

    fn parse(s: &str) -> Option<ActionKind> {
        serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
    }

    /// Actions about one pipe name it.
    pub fn needs_pipe(self) -> bool {
        matches!(
            self,
            ActionKind::RestartPipe | ActionKind::StopPipe | ActionKind::StartPipe
        )
    }
}

/// `POST /api/v1/admin/agents/{id}/actions` body.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionRequest {
    pub action: ActionKind,
    #[serde(default)]
    pub pipe: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pending,
    Delivered,
    Ok,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pending => "pending",
            Outcome::Delivered => "delivered",
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Outcome {
        match s {
            "delivered" => Outcome::Delivered,
            "ok" => Outcome::Ok,
            "failed" => Outcome::Failed,
            _ => Outcome::Pending,
        }
    }
}

/// One action as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionRecord {
    pub id: i64,
    pub agent_id: String,
    pub action: ActionKind,
    pub pipe: Option<String>,
    pub path: Option<String>,
    /// The admin key's name.
    pub requested_by: String,
    pub requested_at: f64,
    pub delivered_at: Option<f64>,
    pub finished_at: Option<f64>,
    pub outcome: Outcome,
    pub message: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActionList {
    pub actions: Vec<ActionRecord>,
}

const COLUMNS: &str = "id, agent_id, action, pipe, path, requested_by, requested_at, \
                       delivered_at, finished_at, outcome, message";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ActionRecord> {
    let kind: String = r.get(2)?;
    let outcome: String = r.get(9)?;
    Ok(ActionRecord {
        id: r.get(0)?,
        agent_id: r.get(1)?,
        action: ActionKind::parse(&kind).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                2,
                rusqlite::types::Type::Text,
                format!("unknown action {kind:?}").into(),
            )
        })?,
        pipe: r.get(3)?,
        path: r.get(4)?,
        requested_by: r.get(5)?,
        requested_at: r.get(6)?,
        delivered_at: r.get(7)?,
        finished_at: r.get(8)?,
        outcome: Outcome::parse(&outcome),
        message: r.get(10)?,
    })
}

/// Records a new action and its audit entry in one transaction.
pub fn insert(
    conn: &mut Connection,
    agent_id: &str,
    req: &ActionRequest,
    who: &str,
    at: f64,
) -> rusqlite::Result<ActionRecord> {
    let tx = conn.transaction()?;
    tx.execute(
        "INSERT INTO agent_actions(agent_id, action, pipe, path, requested_by, requested_at,
             outcome) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending')",
        params![agent_id, req.action.as_str(), req.pipe, req.path, who, at],
    )?;
    let id = tx.last_insert_rowid();
    let audit = AuditNew {
        who: who.to_string(),
        action: format!("agent.action.{}", req.action.as_str()),
        target: format!("agent/{agent_id}/action/{id}"),
        before_digest: None,
        after_digest: None,
        result: "pending".into(),
    };
    insert_audit(&tx, &audit, at)?;
    let rec = get(&tx, id)?.ok_or(rusqlite::Error::QueryReturnedNoRows)?;
    tx.commit()?;
    Ok(rec)
}

pub fn get(conn: &Connection, id: i64) -> rusqlite::Result<Option<ActionRecord>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM agent_actions WHERE id = ?1"),
        params![id],
        row,
    )
    .optional()
}

/// Newest first; `agent` narrows to one agent.
pub fn list(
    conn: &Connection,
    agent: Option<&str>,
    limit: u32,
) -> rusqlite::Result<Vec<ActionRecord>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM agent_actions WHERE (?1 IS NULL OR agent_id = ?1)
         ORDER BY id DESC LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![agent, limit], row)?;
    rows.collect()
}

/// Actions not finished: the pending ones wait for a heartbeat, the delivered ones for their
/// outcome (also across a Fusion restart).
pub fn unfinished(conn: &Connection) -> rusqlite::Result<Vec<ActionRecord>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM agent_actions WHERE outcome IN ('pending', 'delivered')
         ORDER BY id"
    ))?;
    let rows = stmt.query_map([], row)?;
    rows.collect()
}

pub fn mark_delivered(conn: &Connection, id: i64, at: f64) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE agent_actions SET delivered_at = ?2, outcome = 'delivered'
         WHERE id = ?1 AND outcome = 'pending'",
        params![id, at],
    )?;
    Ok(())
}

pub fn finish(
    conn: &Connection,
    id: i64,
    ok: bool,
    message: &str,
    at: f64,
) -> rusqlite::Result<()> {
    let outcome = if ok { Outcome::Ok } else { Outcome::Failed };
    conn.execute(
        "UPDATE agent_actions SET finished_at = ?2, outcome = ?3, message = ?4
         WHERE id = ?1 AND outcome IN ('pending', 'delivered')",
        params![id, at, outcome.as_str(), message],
    )?;
    Ok(())
}

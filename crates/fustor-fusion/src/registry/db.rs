//! The registry's SQLite file, owned by one dedicated thread: every query runs there, never on
//! the async threads, and writes are naturally serialised.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::{Connection, params};

use super::model::{AgentRecord, AuditEntry, AuditNew};

#[derive(Debug, Clone, thiserror::Error)]
pub enum DbError {
    #[error("registry database {path}: {message}")]
    Sqlite { path: String, message: String },
    #[error("registry database {path}: the database thread stopped")]
    Gone { path: String },
    #[error(
        "registry database {path}: schema version {found} is newer than this Fusion knows ({known})"
    )]
    TooNew {
        path: String,
        found: i64,
        known: usize,
    },
}

/// Schema changes, applied in order; `PRAGMA user_version` counts those already applied.
/// Never edit a released entry: append a new one.
const MIGRATIONS: &[&str] = &[
    // 1: agent inventory (pipes and health as JSON: read and written whole) and the audit log.
    "CREATE TABLE agents (
        agent_id TEXT PRIMARY KEY NOT NULL,
        record TEXT NOT NULL,
        last_seen REAL NOT NULL
    );
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at REAL NOT NULL,
        who TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        before_digest TEXT,
        after_digest TEXT,
        result TEXT NOT NULL
    );
    CREATE INDEX audit_at ON audit(at);",
    // 2: central agent configuration documents (every write a version) and agent groups.
    "CREATE TABLE agent_configs (
        target TEXT NOT NULL,
        version INTEGER NOT NULL,
        yaml TEXT NOT NULL,
        digest TEXT NOT NULL,
        author TEXT NOT NULL,
        at REAL NOT NULL,
        PRIMARY KEY (target, version)
    );
    CREATE TABLE agent_groups (
        agent_id TEXT PRIMARY KEY NOT NULL,
        grp TEXT NOT NULL
    );",
    // 3: Fusion's own configuration: every version of the whole `fusion-config/` set (the
    // files as JSON `[{name, yaml}]`), by the API or found edited on disk (author `file`).
    "CREATE TABLE fusion_config_versions (
        version INTEGER PRIMARY KEY,
        files TEXT NOT NULL,
        digest TEXT NOT NULL,
        author TEXT NOT NULL,
        at REAL NOT NULL,
        change TEXT NOT NULL
    );",
    // 4: remote actions on agents (issue 15): who asked what, delivery and outcome.
    "CREATE TABLE agent_actions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        agent_id TEXT NOT NULL,
        action TEXT NOT NULL,
        pipe TEXT,
        path TEXT,
        requested_by TEXT NOT NULL,
        requested_at REAL NOT NULL,
        delivered_at REAL,
        finished_at REAL,
        outcome TEXT NOT NULL,
        message TEXT
    );
    CREATE INDEX agent_actions_agent ON agent_actions(agent_id, id);",
];

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// Handle to the database thread; cheap to clone.
#[derive(Clone)]
pub struct Db {
    tx: mpsc::Sender<Job>,
    path: String,
}

fn sqlite(path: &str) -> impl Fn(rusqlite::Error) -> DbError + '_ {
    move |e| DbError::Sqlite {
        path: path.to_string(),
        message: e.to_string(),
    }
}

fn migrate(conn: &mut Connection, path: &str) -> Result<(), DbError> {
    let err = sqlite(path);
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(&err)?;
    if version > MIGRATIONS.len() as i64 {
        return Err(DbError::TooNew {
            path: path.to_string(),
            found: version,
            known: MIGRATIONS.len(),
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        let tx = conn.transaction().map_err(&err)?;
        tx.execute_batch(sql).map_err(&err)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)
            .map_err(&err)?;
        tx.commit().map_err(&err)?;
        tracing::info!(version = i + 1, "registry database migrated");
    }
    Ok(())
}

/// Blocking: opens (creating if needed) and migrates the file. A damaged or locked file is an
/// error naming the file; the caller keeps Fusion serving views without the registry.
fn open_conn(path: &Path) -> Result<Connection, DbError> {
    let shown = path.display().to_string();
    let err = sqlite(&shown);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| DbError::Sqlite {
            path: shown.clone(),
            message: format!("creating its directory: {e}"),
        })?;
    }
    let mut conn = Connection::open(path).map_err(&err)?;
    conn.busy_timeout(Duration::from_secs(2)).map_err(&err)?;
    // WAL: readers never wait for the writer; NORMAL sync is durable across a Fusion crash.
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(&err)?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(&err)?;
    let ok: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(&err)?;
    if ok != "ok" {
        return Err(DbError::Sqlite {
            path: shown.clone(),
            message: format!("integrity check failed: {ok}"),
        });
    }
    migrate(&mut conn, &shown)?;
    Ok(conn)
}

impl Db {
    /// Blocking: opens the file and starts its thread; also returns the stored agents.
    pub fn open(path: &Path) -> Result<(Db, Vec<AgentRecord>), DbError> {
        let shown = path.display().to_string();
        let mut conn = open_conn(path)?;
        let agents = load_agents(&conn).map_err(sqlite(&shown))?;
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("fusion-registry".into())
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    job(&mut conn);
                }
            })
            .map_err(|e| DbError::Sqlite {
                path: shown.clone(),
                message: format!("starting its thread: {e}"),
            })?;
        Ok((Db { tx, path: shown }, agents))
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// Runs `f` on the database thread and waits for it without blocking an async thread.
    pub async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<R> + Send + 'static,
    ) -> Result<R, DbError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |c| {
            let _ = tx.send(f(c));
        });
        let gone = || DbError::Gone {
            path: self.path.clone(),
        };
        self.tx.send(job).map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?.map_err(sqlite(&self.path))
    }
}

fn load_agents(conn: &Connection) -> rusqlite::Result<Vec<AgentRecord>> {
    let mut stmt = conn.prepare("SELECT agent_id, record FROM agents ORDER BY agent_id")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (id, text) = row?;
        match serde_json::from_str::<AgentRecord>(&text) {
            Ok(a) => out.push(a),
            Err(e) => tracing::warn!(agent = %crate::limits::for_log(&id), error = %e,
                "registry: unreadable agent record skipped"),
        }
    }
    Ok(out)
}

/// Upserts agents in one transaction.
pub fn save_agents(conn: &mut Connection, agents: &[AgentRecord]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO agents(agent_id, record, last_seen) VALUES (?1, ?2, ?3)
             ON CONFLICT(agent_id) DO UPDATE SET record = excluded.record,
                 last_seen = excluded.last_seen",
        )?;
        for a in agents {
            let text = serde_json::to_string(a)
                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
            stmt.execute(params![a.agent_id, text, a.last_seen])?;
        }
    }
    tx.commit()
}

/// Deletes an agent and records the audit entry in the same transaction.
pub fn forget_agent(
    conn: &mut Connection,
    agent_id: &str,
    audit: &AuditNew,
    at: f64,
) -> rusqlite::Result<AuditEntry> {
    let tx = conn.transaction()?;
    tx.execute("DELETE FROM agents WHERE agent_id = ?1", params![agent_id])?;
    let e = insert_audit(&tx, audit, at)?;
    tx.commit()?;
    Ok(e)
}

pub fn insert_audit(conn: &Connection, a: &AuditNew, at: f64) -> rusqlite::Result<AuditEntry> {
    conn.execute(
        "INSERT INTO audit(at, who, action, target, before_digest, after_digest, result)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            at,
            a.who,
            a.action,
            a.target,
            a.before_digest,
            a.after_digest,
            a.result
        ],
    )?;
    Ok(AuditEntry {
        id: conn.last_insert_rowid(),
        at,
        who: a.who.clone(),
        action: a.action.clone(),
        target: a.target.clone(),
        before_digest: a.before_digest.clone(),
        after_digest: a.after_digest.clone(),
        result: a.result.clone(),
    })
}

/// The newest `limit` entries at or after `since`, newest first.
pub fn audit_since(conn: &Connection, since: f64, limit: u32) -> rusqlite::Result<Vec<AuditEntry>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, at, who, action, target, before_digest, after_digest, result FROM audit
         WHERE at >= ?1 ORDER BY id DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![since, limit], audit_entry)?;
    rows.collect()
}

/// An audit entry from a row selecting `id, at, who, action, target, before_digest,
/// after_digest, result` in that order.
pub(super) fn audit_entry(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditEntry> {
    Ok(AuditEntry {
        id: r.get(0)?,
        at: r.get(1)?,
        who: r.get(2)?,
        action: r.get(3)?,
        target: r.get(4)?,
        before_digest: r.get(5)?,
        after_digest: r.get(6)?,
        result: r.get(7)?,
    })
}

//! Querying the audit log (issue 15, item 6): by who, what, on which target and since when.

use rusqlite::{Connection, params};

use super::model::AuditEntry;

/// The filters of `GET /admin/audit`; absent ones match everything.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Epoch seconds; entries at or after it.
    pub since: f64,
    /// The admin key's name (or `file`), exactly.
    pub actor: Option<String>,
    /// An action or its prefix: `fusion_config` matches `fusion_config.put`.
    pub action: Option<String>,
    /// A target or its prefix: `fusion-config/` matches every Fusion configuration file.
    pub target: Option<String>,
    pub limit: u32,
}

/// The newest `limit` matching entries, newest first. Prefixes are compared with `substr`,
/// not `LIKE`, so `_` and `%` in a name match only themselves.
pub fn query(conn: &Connection, f: &AuditFilter) -> rusqlite::Result<Vec<AuditEntry>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, at, who, action, target, before_digest, after_digest, result FROM audit
         WHERE at >= ?1
           AND (?2 IS NULL OR who = ?2)
           AND (?3 IS NULL OR substr(action, 1, length(?3)) = ?3)
           AND (?4 IS NULL OR substr(target, 1, length(?4)) = ?4)
         ORDER BY id DESC LIMIT ?5",
    )?;
    let rows = stmt.query_map(
        params![f.since, f.actor, f.action, f.target, f.limit],
        super::db::audit_entry,
    )?;
    rows.collect()
}

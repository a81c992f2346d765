//! The list of agent configuration targets, for the console's Config page: which documents
//! exist, with their newest version.

use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use super::configs::VersionInfo;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TargetInfo {
    pub target: String,
    /// The newest version.
    #[serde(flatten)]
    pub newest: VersionInfo,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TargetList {
    pub targets: Vec<TargetInfo>,
}

/// Every target with its newest version, by name.
pub fn targets(conn: &Connection) -> rusqlite::Result<Vec<TargetInfo>> {
    let mut stmt = conn.prepare_cached(
        "SELECT c.target, c.version, c.digest, c.author, c.at FROM agent_configs c
         JOIN (SELECT target, MAX(version) AS v FROM agent_configs GROUP BY target) n
           ON n.target = c.target AND n.v = c.version
         ORDER BY c.target",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(TargetInfo {
            target: r.get(0)?,
            newest: VersionInfo {
                version: r.get(1)?,
                digest: r.get(2)?,
                author: r.get(3)?,
                at: r.get(4)?,
            },
        })
    })?;
    rows.collect()
}

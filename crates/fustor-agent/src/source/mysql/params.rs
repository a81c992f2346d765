//! `driver: mysql` parameters: where the table is and how its columns map onto fs rows.

use std::collections::BTreeMap;

use fustor_core::config::{Credential, DriverParams, KeyShape, SourceConfig};
use serde::Deserialize;

use crate::source::SourceError;

fn d_key() -> String {
    "id".to_string()
}
fn d_page() -> u64 {
    1000
}
fn d_server_id() -> u32 {
    4_242_001
}

/// `uri` is `mysql://host:port/database`; the credential is `{user, passwd}`.
#[derive(Debug, Clone, Deserialize)]
pub struct MysqlParams {
    pub table: String,
    /// Overrides the database of the uri.
    #[serde(default)]
    pub database: Option<String>,
    /// A unique, ordered column: the snapshot pages by it (keyset pagination).
    #[serde(default = "d_key")]
    pub key_column: String,
    /// fs row field → column (`path` required; `size`, `modified_time`, `created_time`,
    /// `is_directory` optional).
    pub fields_mapping: BTreeMap<String, String>,
    #[serde(default = "d_page")]
    pub page_size: u64,
    /// The replica id this agent registers with to read the binlog; unique per server.
    #[serde(default = "d_server_id")]
    pub server_id: u32,
}

impl DriverParams for MysqlParams {
    const KEYS: &'static KeyShape = &KeyShape::Keys(&[
        ("table", KeyShape::Any),
        ("database", KeyShape::Any),
        ("key_column", KeyShape::Any),
        ("fields_mapping", KeyShape::Any),
        ("page_size", KeyShape::Any),
        ("server_id", KeyShape::Any),
    ]);
}

/// The fs fields a column can feed.
pub const FIELDS: [&str; 5] = [
    "path",
    "size",
    "modified_time",
    "created_time",
    "is_directory",
];

/// Where to connect, checked once at open.
#[derive(Debug, Clone)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub database: String,
    pub user: Option<String>,
    pub pass: Option<String>,
}

impl Target {
    pub fn opts(&self) -> mysql_async::Opts {
        mysql_async::OptsBuilder::default()
            .ip_or_hostname(self.host.clone())
            .tcp_port(self.port)
            .user(self.user.clone())
            .pass(self.pass.clone())
            .db_name(Some(self.database.clone()))
            .prefer_socket(false)
            .into()
    }
}

impl MysqlParams {
    pub fn target(&self, cfg: &SourceConfig) -> Result<Target, SourceError> {
        let err = |m: String| SourceError::Params(m);
        let rest = cfg.uri.strip_prefix("mysql://").ok_or_else(|| {
            err(format!(
                "mysql uri must be mysql://host:port/database, got {:?}",
                cfg.uri
            ))
        })?;
        let (hostport, db) = rest.split_once('/').unwrap_or((rest, ""));
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                p.parse::<u16>()
                    .map_err(|_| err(format!("mysql uri: bad port {p:?}")))?,
            ),
            None => (hostport.to_string(), 3306),
        };
        let database = self.database.clone().unwrap_or_else(|| db.to_string());
        if host.is_empty() || database.is_empty() {
            return Err(err("mysql uri needs a host and a database".into()));
        }
        for name in [&self.table, &self.key_column, &database] {
            if !is_identifier(name) {
                return Err(err(format!("not a plain SQL identifier: {name:?}")));
            }
        }
        if !self.fields_mapping.contains_key("path") {
            return Err(err(
                "driver_params.fields_mapping needs a `path` column".into()
            ));
        }
        for (field, col) in &self.fields_mapping {
            if !FIELDS.contains(&field.as_str()) {
                return Err(err(format!(
                    "driver_params.fields_mapping: unknown fs field {field:?} (expected one of {FIELDS:?})"
                )));
            }
            if !is_identifier(col) {
                return Err(err(format!("not a plain SQL identifier: {col:?}")));
            }
        }
        let (user, pass) = match &cfg.credential {
            Some(Credential::Passwd { user, passwd }) => (Some(user.clone()), passwd.clone()),
            Some(Credential::ApiKey { .. }) => {
                return Err(err("mysql credential is {user, passwd}, not a key".into()));
            }
            None => (None, None),
        };
        Ok(Target {
            host,
            port,
            database,
            user,
            pass,
        })
    }
}

/// Names are put into SQL text (identifiers cannot be bound), so only plain ones are taken.
fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$')
}

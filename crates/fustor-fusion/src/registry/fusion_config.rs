//! Fusion's own configuration through the admin API (issue 15, item 5).
//!
//! The files of `fusion-config/` stay the truth: a change is validated as a whole set, written
//! into the directory, and applied by the daemon's own reload; when the reload refuses it the
//! file is put back, so files, API and running configuration never disagree. The ETag is the
//! digest of the whole set read from disk, so an operator's direct edit also makes a held
//! ETag stale. Every distinct set is a version in SQLite; sets found changed on disk are
//! recorded with the author `file`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, Weak};

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::configs::Problem;
use super::db::{Db, DbError, insert_audit};
use super::fusion_files::{self as files, FileDoc};
use super::model::AuditNew;
use crate::daemon::FusionServer;

/// The author of versions found on disk (an operator's edit, then SIGHUP or a GET).
pub const FILE_AUTHOR: &str = "file";

/// A stored version, without its files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionInfo {
    pub version: i64,
    pub digest: String,
    /// The admin key's name, or `file`.
    pub author: String,
    pub at: f64,
    /// What changed, e.g. `put views.yaml`.
    pub change: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionList {
    /// Newest first.
    pub versions: Vec<VersionInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionDoc {
    #[serde(flatten)]
    pub info: VersionInfo,
    pub files: Vec<FileDoc>,
}

/// `GET /admin/fusion-config`: the files Fusion runs from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConfigSet {
    /// The ETag: digest of every file's name and text.
    pub digest: String,
    /// The stored version equal to these files.
    pub version: Option<i64>,
    pub files: Vec<FileDoc>,
}

/// What a change came to; refusals are audited like successes.
#[derive(Debug)]
pub enum Outcome {
    Applied(ConfigSet),
    Invalid(Vec<Problem>),
    Stale {
        current: String,
    },
    Required {
        current: String,
    },
    /// Valid, but the reload refused it: the file was put back, the running one kept.
    Refused {
        reason: String,
    },
    NoSuchFile,
}

#[derive(Debug, thiserror::Error)]
pub enum FusionConfigError {
    #[error(
        "Fusion's configuration cannot be changed here yet (the daemon is still starting); retry"
    )]
    NotManaged,
    #[error("fusion-config: {0}")]
    Io(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

struct Link {
    dir: PathBuf,
    args: Vec<String>,
}

#[derive(Default)]
pub struct FusionConfigs {
    /// Set before the main port listens, so the first admin request finds the files.
    link: OnceLock<Link>,
    /// Set once the server exists (just after the port listens); until then a change is 503.
    server: OnceLock<Weak<FusionServer>>,
    /// One change at a time: read, check, write, reload and record form one step; a reload
    /// that finds it held was started by a change, which records its own version.
    lock: tokio::sync::Mutex<()>,
}

fn io_err(what: &str) -> impl Fn(std::io::Error) -> FusionConfigError + '_ {
    move |e| FusionConfigError::Io(format!("{what}: {e}"))
}

async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<R> + Send + 'static,
    what: &str,
) -> Result<R, FusionConfigError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| FusionConfigError::Io(format!("{what}: {e}")))?
        .map_err(io_err(what))
}

impl FusionConfigs {
    /// The daemon hands over the directory it loads (and the pipes named on its command line).
    pub fn set_dir(&self, dir: &Path, args: &[String]) {
        let _ = self.link.set(Link {
            dir: dir.to_path_buf(),
            args: args.to_vec(),
        });
    }

    /// The daemon hands over itself, for the reload; weak, so the registry does not keep a
    /// stopped server alive.
    pub fn attach(&self, server: &Arc<FusionServer>) {
        let _ = self.server.set(Arc::downgrade(server));
    }

    fn link(&self) -> Result<&Link, FusionConfigError> {
        self.link.get().ok_or(FusionConfigError::NotManaged)
    }

    async fn read(&self) -> Result<Vec<FileDoc>, FusionConfigError> {
        let dir = self.link()?.dir.clone();
        blocking(move || files::read_set(&dir), "reading the files").await
    }

    /// The files as they are, recorded as a version when they differ from the newest stored.
    pub async fn current(&self, db: &Db) -> Result<ConfigSet, FusionConfigError> {
        let _guard = self.lock.lock().await;
        let files = self.read().await?;
        let version = record_found(db, &files).await?;
        Ok(ConfigSet {
            digest: files::set_digest(&files),
            version: Some(version),
            files,
        })
    }

    /// After a reload not made by a change (SIGHUP, `fustor-fusion reload`) and at start:
    /// records an edit made on disk. Skipped while a change holds the lock (it records itself).
    pub async fn record_if_idle(&self, db: &Db) {
        let Ok(_guard) = self.lock.try_lock() else {
            return;
        };
        let res = match self.read().await {
            Ok(files) => record_found(db, &files).await.map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = res {
            tracing::warn!(error = %e, "registry: Fusion's configuration files not recorded");
        }
    }

    /// Writes (`Some`) or deletes (`None`) one file, applied by the reload.
    pub async fn change(
        &self,
        db: &Db,
        who: &str,
        name: &str,
        text: Option<String>,
        if_match: Option<String>,
    ) -> Result<Outcome, FusionConfigError> {
        let _guard = self.lock.lock().await;
        let link = self.link()?;
        let server = self.server.get().ok_or(FusionConfigError::NotManaged)?;
        let before = self.read().await?;
        record_found(db, &before).await?;
        let current = files::set_digest(&before);
        let action = if text.is_some() {
            "fusion_config.put"
        } else {
            "fusion_config.delete"
        };
        let mut audit = AuditNew {
            who: who.to_string(),
            action: action.into(),
            target: format!("fusion-config/{name}"),
            before_digest: Some(current.clone()),
            after_digest: None,
            result: String::new(),
        };
        let refused = match if_match {
            None => Some(Outcome::Required {
                current: current.clone(),
            }),
            Some(m) if m != current => Some(Outcome::Stale {
                current: current.clone(),
            }),
            Some(_) => None,
        };
        let old_text = before
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.yaml.clone());
        let refused = refused
            .or_else(|| (text.is_none() && old_text.is_none()).then_some(Outcome::NoSuchFile));
        if let Some(r) = refused {
            audit.result = match r {
                Outcome::Required { .. } => "precondition_required",
                Outcome::NoSuchFile => "not_found",
                _ => "precondition_failed",
            }
            .into();
            audit_now(db, audit).await?;
            return Ok(r);
        }
        let candidate = files::with_change(&before, name, text.as_deref());
        audit.after_digest = Some(files::set_digest(&candidate));
        let (dir, args, set) = (link.dir.clone(), link.args.clone(), candidate.clone());
        let problems =
            blocking(move || files::validate_set(&dir, &args, &set), "validating").await?;
        if !problems.is_empty() {
            audit.result = "invalid".into();
            audit_now(db, audit).await?;
            return Ok(Outcome::Invalid(problems));
        }
        let (dir, n, t) = (link.dir.clone(), name.to_string(), text.clone());
        blocking(
            move || files::restore(&dir, &n, t.as_deref()),
            "writing the file",
        )
        .await?;
        let reloaded = match server.upgrade() {
            Some(server) => server.reload().await.map_err(|e| e.to_string()),
            None => Err("Fusion is stopping".to_string()),
        };
        if let Err(reason) = reloaded {
            let (dir, n) = (link.dir.clone(), name.to_string());
            let put_back = blocking(
                move || files::restore(&dir, &n, old_text.as_deref()),
                "restoring the file",
            )
            .await;
            let reason = match put_back {
                Ok(()) => reason,
                Err(e) => format!("{reason}; and the previous file could not be restored: {e}"),
            };
            tracing::warn!(file = %crate::limits::for_log(name), reason = %reason,
                "admin: Fusion configuration change refused by the reload; file restored");
            audit.result = format!("reload_refused: {reason}");
            audit_now(db, audit).await?;
            return Ok(Outcome::Refused { reason });
        }
        let after = self.read().await?;
        let digest = files::set_digest(&after);
        let change = format!("{} {name}", if text.is_some() { "put" } else { "delete" });
        let (who_s, at) = (who.to_string(), fustor_core::Now::system().epoch);
        audit.after_digest = Some(digest.clone());
        audit.result = "ok".into();
        let stored = after.clone();
        let version = db
            .call(move |c| {
                let tx = c.transaction()?;
                let v = insert(&tx, &stored, &who_s, at, &change)?;
                insert_audit(&tx, &audit, at)?;
                tx.commit()?;
                Ok(v)
            })
            .await?;
        Ok(Outcome::Applied(ConfigSet {
            digest,
            version: Some(version.version),
            files: after,
        }))
    }
}

async fn audit_now(db: &Db, audit: AuditNew) -> Result<(), FusionConfigError> {
    let at = fustor_core::Now::system().epoch;
    db.call(move |c| insert_audit(c, &audit, at).map(|_| ()))
        .await?;
    Ok(())
}

/// Records `files` as a version by `file` unless the newest stored version has the same
/// digest; an edit (not the first record) is audited. Returns the version equal to `files`.
async fn record_found(db: &Db, files: &[FileDoc]) -> Result<i64, FusionConfigError> {
    let files = files.to_vec();
    let at = fustor_core::Now::system().epoch;
    Ok(db
        .call(move |c| {
            let tx = c.transaction()?;
            let digest = files::set_digest(&files);
            let newest = latest(&tx)?;
            if let Some(n) = &newest
                && n.digest == digest
            {
                return Ok(n.version);
            }
            let change = if newest.is_some() {
                "edited on disk"
            } else {
                "found at start"
            };
            let v = insert(&tx, &files, FILE_AUTHOR, at, change)?;
            if let Some(n) = newest {
                let audit = AuditNew {
                    who: FILE_AUTHOR.into(),
                    action: "fusion_config.file_edit".into(),
                    target: "fusion-config".into(),
                    before_digest: Some(n.digest),
                    after_digest: Some(digest),
                    result: "ok".into(),
                };
                insert_audit(&tx, &audit, at)?;
            }
            tx.commit()?;
            Ok(v.version)
        })
        .await?)
}

fn to_sql_err(e: serde_json::Error) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(Box::new(e))
}

fn insert(
    conn: &Connection,
    files: &[FileDoc],
    author: &str,
    at: f64,
    change: &str,
) -> rusqlite::Result<VersionInfo> {
    let text = serde_json::to_string(files).map_err(to_sql_err)?;
    let digest = files::set_digest(files);
    conn.execute(
        "INSERT INTO fusion_config_versions(files, digest, author, at, change)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![text, digest, author, at, change],
    )?;
    Ok(VersionInfo {
        version: conn.last_insert_rowid(),
        digest,
        author: author.to_string(),
        at,
        change: change.to_string(),
    })
}

fn info(r: &rusqlite::Row<'_>) -> rusqlite::Result<VersionInfo> {
    Ok(VersionInfo {
        version: r.get(0)?,
        digest: r.get(1)?,
        author: r.get(2)?,
        at: r.get(3)?,
        change: r.get(4)?,
    })
}

fn latest(conn: &Connection) -> rusqlite::Result<Option<VersionInfo>> {
    conn.query_row(
        "SELECT version, digest, author, at, change FROM fusion_config_versions
         ORDER BY version DESC LIMIT 1",
        [],
        info,
    )
    .optional()
}

pub fn versions(conn: &Connection) -> rusqlite::Result<Vec<VersionInfo>> {
    let mut stmt = conn.prepare_cached(
        "SELECT version, digest, author, at, change FROM fusion_config_versions
         ORDER BY version DESC",
    )?;
    let rows = stmt.query_map([], info)?;
    rows.collect()
}

pub fn version(conn: &Connection, n: i64) -> rusqlite::Result<Option<VersionDoc>> {
    let row = conn
        .query_row(
            "SELECT version, digest, author, at, change, files FROM fusion_config_versions
             WHERE version = ?1",
            params![n],
            |r| Ok((info(r)?, r.get::<_, String>(5)?)),
        )
        .optional()?;
    let Some((info, text)) = row else {
        return Ok(None);
    };
    let files = serde_json::from_str(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(5, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok(Some(VersionDoc { info, files }))
}

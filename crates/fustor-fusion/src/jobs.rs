//! On-demand scan jobs (`wire-protocol.md` §6.1, `query-api.md` §4.2).

use std::collections::{BTreeMap, BTreeSet};

use parking_lot::Mutex;
use serde::Serialize;

/// Completed jobs are kept this long, unfinished ones this long after creation.
const KEEP_COMPLETED: f64 = 3600.0;
const KEEP_UNFINISHED: f64 = 86_400.0;

#[derive(Debug, Clone, Serialize)]
pub struct Progress {
    pub completed_pipes: usize,
    pub total_pipes: usize,
    pub percentage: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct JobView {
    pub job_id: String,
    pub view_id: String,
    pub path: String,
    pub status: &'static str,
    pub progress: Progress,
    pub created_at: f64,
    pub completed_at: Option<f64>,
}

#[derive(Debug, Clone)]
struct Job {
    view_id: String,
    path: String,
    created_at: f64,
    completed_at: Option<f64>,
    expected: BTreeSet<String>,
    done: BTreeSet<String>,
}

#[derive(Default)]
pub struct JobManager {
    jobs: Mutex<BTreeMap<String, Job>>,
}

/// An 8-hex-character job id, like the reference.
pub fn new_job_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}

impl JobManager {
    pub fn create(&self, view_id: &str, path: &str, sessions: &[String], epoch: f64) -> String {
        let id = new_job_id();
        self.jobs.lock().insert(
            id.clone(),
            Job {
                view_id: view_id.to_string(),
                path: path.to_string(),
                created_at: epoch,
                completed_at: None,
                expected: sessions.iter().cloned().collect(),
                done: BTreeSet::new(),
            },
        );
        id
    }

    /// A session reported `job_complete` for `scan_path` (and `job_id` when given).
    pub fn complete(
        &self,
        session: &str,
        scan_path: &str,
        job_id: Option<&str>,
        active: &dyn Fn(&str) -> bool,
        epoch: f64,
    ) -> bool {
        let mut jobs = self.jobs.lock();
        let mut touched = false;
        for (id, job) in jobs.iter_mut() {
            let matches = match job_id {
                Some(j) => j == id,
                None => job.path == scan_path,
            };
            if !matches || !job.expected.contains(session) {
                continue;
            }
            job.done.insert(session.to_string());
            touched = true;
            Self::settle(job, active, epoch);
        }
        touched
    }

    fn settle(job: &mut Job, active: &dyn Fn(&str) -> bool, epoch: f64) {
        if job.completed_at.is_none()
            && job
                .expected
                .iter()
                .filter(|s| active(s))
                .all(|s| job.done.contains(s))
        {
            job.completed_at = Some(epoch);
        }
    }

    /// A session ended: jobs waiting only for it may now be complete.
    pub fn session_gone(&self, active: &dyn Fn(&str) -> bool, epoch: f64) {
        for job in self.jobs.lock().values_mut() {
            Self::settle(job, active, epoch);
        }
    }

    /// Whether any still-active session of the job has not reported `path` yet.
    pub fn pending(
        &self,
        view_id: &str,
        path: &str,
        active: &dyn Fn(&str) -> bool,
    ) -> Option<String> {
        self.jobs
            .lock()
            .iter()
            .find(|(_, j)| {
                j.view_id == view_id
                    && j.path == path
                    && j.completed_at.is_none()
                    && j.expected.iter().any(|s| active(s) && !j.done.contains(s))
            })
            .map(|(id, _)| id.clone())
    }

    pub fn list(&self, view_id: &str) -> Vec<JobView> {
        self.jobs
            .lock()
            .iter()
            .filter(|(_, j)| j.view_id == view_id)
            .map(|(id, j)| Self::view(id, j))
            .collect()
    }

    pub fn get(&self, job_id: &str) -> Option<JobView> {
        self.jobs.lock().get(job_id).map(|j| Self::view(job_id, j))
    }

    fn view(id: &str, j: &Job) -> JobView {
        let total = j.expected.len();
        let completed = j.done.len().min(total);
        let percentage = if total == 0 {
            100.0
        } else {
            (completed as f64 / total as f64 * 10000.0).round() / 100.0
        };
        JobView {
            job_id: id.to_string(),
            view_id: j.view_id.clone(),
            path: j.path.clone(),
            status: if j.completed_at.is_some() {
                "COMPLETED"
            } else {
                "RUNNING"
            },
            progress: Progress {
                completed_pipes: completed,
                total_pipes: total,
                percentage,
            },
            created_at: j.created_at,
            completed_at: j.completed_at,
        }
    }

    pub fn purge(&self, epoch: f64) {
        self.jobs.lock().retain(|_, j| match j.completed_at {
            Some(done) => epoch - done < KEEP_COMPLETED,
            None => epoch - j.created_at < KEEP_UNFINISHED,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_completes_when_every_active_session_reported() {
        let m = JobManager::default();
        let sessions = vec!["a".to_string(), "b".to_string()];
        let id = m.create("v1", "/data", &sessions, 10.0);
        assert_eq!(id.len(), 8);
        let all = |_: &str| true;
        assert_eq!(m.pending("v1", "/data", &all), Some(id.clone()));
        m.complete("a", "/data", Some(&id), &all, 11.0);
        assert_eq!(m.get(&id).unwrap().progress.percentage, 50.0);
        m.complete("b", "/data", None, &all, 12.0);
        let j = m.get(&id).unwrap();
        assert_eq!((j.status, j.completed_at), ("COMPLETED", Some(12.0)));
        assert_eq!(m.pending("v1", "/data", &all), None);
        m.purge(12.0 + KEEP_COMPLETED);
        assert!(m.get(&id).is_none());
    }

    #[test]
    fn a_vanished_session_does_not_block_completion() {
        let m = JobManager::default();
        let id = m.create("v1", "/d", &["a".to_string(), "b".to_string()], 1.0);
        m.complete("a", "/d", Some(&id), &|_| true, 2.0);
        m.session_gone(&|s| s != "b", 3.0);
        assert_eq!(m.get(&id).unwrap().status, "COMPLETED");
    }
}

//! On-demand scans: a job per request, a `scan` command to every session of the view.

use fustor_core::Now;
use fustor_core::wire::Command;

use crate::state::Fusion;

impl Fusion {
    /// Asks every session feeding `view` to scan `path`; answers the job id, or `None` when
    /// no session could do it.
    pub fn request_scan(&self, view: &str, path: &str, recursive: bool) -> Option<String> {
        let sessions: Vec<String> = self
            .sessions
            .of_view(view)
            .into_iter()
            .map(|s| s.id)
            .collect();
        if sessions.is_empty() {
            return None;
        }
        let epoch = Now::system().epoch;
        let id = self.jobs.create(view, path, &sessions, epoch);
        let mut cmd = Command::Scan {
            path: path.to_string(),
            recursive,
            job_id: Some(id.clone()),
        }
        .to_map();
        // Not part of the command: the reference stamps it, and agents log it.
        cmd.insert("created_at".into(), epoch.into());
        self.sessions.push_command(&sessions, &cmd);
        tracing::info!(view = %view, path = %crate::limits::for_log(path), job = %id, sessions = sessions.len(), "on-demand scan requested");
        Some(id)
    }
}

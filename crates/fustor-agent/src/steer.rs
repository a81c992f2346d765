//! Steering by Fusion's registry (issue 15): the link to the registry, the configuration
//! version this agent runs and the outcomes of admin actions, shared by every pipe so that
//! each heartbeat reports them (`agent_status.registry`).
//!
//! Agent-level: one process holds one configuration, whichever pipe's heartbeat brought the
//! news. Action outcomes ride on the next few heartbeats of any pipe, because the pipe an
//! action stopped has no session left to report on.

use fustor_core::wire::{ActionResult, RegistryStatus};
use parking_lot::Mutex;

/// Heartbeats (of any pipe) that carry one action outcome: Fusion records the first it sees,
/// the others cover a heartbeat lost on the way.
const REPORTS_PER_OUTCOME: u8 = 5;

/// Where the registry is and the agent key that reads this agent's document.
#[derive(Clone)]
pub struct RegistryLink {
    pub url: String,
    pub key: String,
}

impl std::fmt::Debug for RegistryLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is a credential: never in a log line.
        f.debug_struct("RegistryLink")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
pub struct Steer {
    pub link: RegistryLink,
    config: Mutex<RegistryStatus>,
    outcomes: Mutex<Vec<(ActionResult, u8)>>,
}

impl Steer {
    pub fn new(link: RegistryLink, version: Option<i64>, digest: Option<String>) -> Steer {
        Steer {
            link,
            config: Mutex::new(RegistryStatus {
                config_version: version,
                config_digest: digest,
                config_tried: version,
                ..RegistryStatus::default()
            }),
            outcomes: Mutex::new(Vec::new()),
        }
    }

    /// What the next heartbeat reports; each outcome counts down its reports.
    pub fn report(&self) -> RegistryStatus {
        let mut r = self.config.lock().clone();
        let mut out = self.outcomes.lock();
        r.actions = out.iter().map(|(a, _)| a.clone()).collect();
        for (_, left) in out.iter_mut() {
            *left = left.saturating_sub(1);
        }
        out.retain(|(_, left)| *left > 0);
        r
    }

    pub fn status(&self) -> RegistryStatus {
        self.config.lock().clone()
    }

    /// A version now runs.
    pub fn applied(&self, version: i64, digest: &str) {
        let mut c = self.config.lock();
        c.config_version = Some(version);
        c.config_digest = Some(digest.to_string());
        c.config_tried = Some(version);
        c.config_error = None;
    }

    /// A version could not be applied; the previous one keeps running.
    pub fn failed(&self, version: i64, error: String) {
        let mut c = self.config.lock();
        c.config_tried = Some(c.config_tried.map_or(version, |t| t.max(version)));
        c.config_error = Some(error);
    }

    /// Whether `version` (with `digest`) still needs fetching: not run and not tried already.
    pub fn wants(&self, version: i64, digest: &str) -> bool {
        let c = self.config.lock();
        c.config_digest.as_deref() != Some(digest) && c.config_tried.is_none_or(|t| t < version)
    }

    pub fn outcome(&self, id: i64, ok: bool, message: impl Into<String>) {
        let r = ActionResult {
            id,
            ok,
            message: message.into(),
        };
        self.outcomes.lock().push((r, REPORTS_PER_OUTCOME));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steer() -> Steer {
        Steer::new(
            RegistryLink {
                url: "http://x".into(),
                key: "secret-key".into(),
            },
            Some(1),
            Some("d1".into()),
        )
    }

    #[test]
    fn versions_are_wanted_once() {
        let s = steer();
        assert!(!s.wants(1, "d1"));
        assert!(s.wants(2, "d2"));
        s.failed(2, "boom".into());
        assert!(!s.wants(2, "d2"), "a failed version is not retried");
        assert!(s.wants(3, "d3"));
        let r = s.status();
        assert_eq!(
            (r.config_version, r.config_error.as_deref()),
            (Some(1), Some("boom"))
        );
        s.applied(3, "d3");
        assert_eq!(s.status().config_error, None);
        assert!(!format!("{:?}", s.link).contains("secret"));
    }

    #[test]
    fn outcomes_ride_a_few_heartbeats() {
        let s = steer();
        s.outcome(7, true, "ok");
        for _ in 0..REPORTS_PER_OUTCOME {
            assert_eq!(s.report().actions.len(), 1);
        }
        assert!(s.report().actions.is_empty());
    }
}

//! The Fusion service core: what the daemon does, as plain async methods on [`Fusion`] with
//! typed inputs and outputs. HTTP handlers authenticate, parse and serialize around these; the
//! maintenance tasks and the daemon call them too, so every write has one path.

mod consistency;
mod ingest;
mod jobs;
mod sessions;
mod writes;

#[cfg(test)]
mod tests;

pub use ingest::{Ingested, check_batch};
pub use sessions::{Beat, EndReason, OpenedSession};

/// Why the service refused or failed a request; the HTTP layer maps it to a status.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Over a configured bound (413).
    #[error("{0}")]
    TooLarge(String),
    /// A field that fails validation, with its location in the body (422).
    #[error("{message}")]
    Invalid { loc: Vec<String>, message: String },
    #[error("{0}")]
    Internal(String),
}

impl ServiceError {
    pub fn invalid(loc: &[&str], message: impl Into<String>) -> Self {
        ServiceError::Invalid {
            loc: loc.iter().map(|s| s.to_string()).collect(),
            message: message.into(),
        }
    }
}

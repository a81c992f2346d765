//! The Fusion service core: what the daemon does, as plain async methods on [`Fusion`] with
//! typed inputs and outputs. HTTP handlers authenticate, parse and serialize around these; the
//! maintenance tasks and the daemon call them too, so every write has one path.

mod ingest;
mod jobs;
mod sessions;
mod writes;

#[cfg(test)]
mod tests;

pub use sessions::{Beat, OpenedSession};

//! View drivers keyed by their configured name (`fs`, `forest-fs`).
//!
//! Fusion builds every view through this table, so a new view driver is one module that owns
//! its `driver_params` type and one `register` line; nothing else compares driver names.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::ViewDriver;
use crate::config::{FieldError, ViewConfig};

/// A view as its driver built it.
pub struct BuiltView {
    pub driver: Arc<dyn ViewDriver>,
    /// `max_tree_items`: bound on the nodes of one `/tree` or `/search` answer.
    pub max_tree_items: Option<usize>,
}

/// Deserializes `cfg.driver_params` once into the driver's own config type and builds the view.
pub type BuildView = fn(id: &str, cfg: &ViewConfig) -> Result<BuiltView, FieldError>;

#[derive(Debug, thiserror::Error)]
pub enum ViewBuildError {
    #[error("unknown view driver {0:?}")]
    UnknownDriver(String),
    #[error("{0}")]
    Params(#[from] FieldError),
}

#[derive(Default, Clone)]
pub struct ViewRegistry {
    builders: BTreeMap<&'static str, BuildView>,
}

impl ViewRegistry {
    pub fn register(&mut self, name: &'static str, build: BuildView) -> &mut Self {
        self.builders.insert(name, build);
        self
    }

    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.builders.keys().copied()
    }

    pub fn build(&self, id: &str, cfg: &ViewConfig) -> Result<BuiltView, ViewBuildError> {
        let build = self
            .builders
            .get(cfg.driver.as_str())
            .ok_or_else(|| ViewBuildError::UnknownDriver(cfg.driver.clone()))?;
        Ok(build(id, cfg)?)
    }
}

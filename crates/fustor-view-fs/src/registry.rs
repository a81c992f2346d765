//! Registration of this crate's view drivers in Fusion's [`ViewRegistry`]. Both read the same
//! `driver_params` ([`FsViewParams`]), deserialized once per view.

use std::sync::Arc;

use fustor_core::config::{FieldError, FsViewParams, ViewConfig, ViewDriverKind};
use fustor_core::view::{BuiltView, ViewDriver, ViewRegistry};

use crate::{ForestView, FsView, FsViewConfig};

/// Adds `fs` and `forest-fs`.
pub fn register(registry: &mut ViewRegistry) {
    registry
        .register(ViewDriverKind::Fs.name(), |id, cfg| {
            build(cfg, |c| Arc::new(FsView::new(id, c)))
        })
        .register(ViewDriverKind::ForestFs.name(), |id, cfg| {
            build(cfg, |c| Arc::new(ForestView::new(id, c)))
        });
}

fn build(
    cfg: &ViewConfig,
    make: impl FnOnce(FsViewConfig) -> Arc<dyn ViewDriver>,
) -> Result<BuiltView, FieldError> {
    let params: FsViewParams = cfg.fs_params()?;
    Ok(BuiltView {
        driver: make(FsViewConfig::from(&params)),
        max_tree_items: params.max_tree_items_limit().map(|n| n as usize),
    })
}

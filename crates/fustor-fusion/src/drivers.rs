//! The view drivers this Fusion build knows, keyed by the `driver` name of a view's
//! configuration. A new view driver is one module plus one line here.

use fustor_core::view::ViewRegistry;

pub fn view_registry() -> ViewRegistry {
    let mut registry = ViewRegistry::default();
    fustor_view_fs::register(&mut registry);
    registry
}

#[cfg(test)]
mod null;

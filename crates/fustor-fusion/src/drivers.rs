//! The view drivers this Fusion build knows, keyed by the `driver` name of a view's
//! configuration. A new view driver is one module plus one line here.

use fustor_core::view::ViewRegistry;

pub fn view_registry() -> ViewRegistry {
    let mut registry = ViewRegistry::default();
    fustor_view_fs::register(&mut registry);
    registry
}

/// The names `check-config` and `start` accept for a view's `driver`: the built-in ones in their
/// documented order, then any other registered driver.
pub fn view_driver_names() -> Vec<&'static str> {
    let registry = view_registry();
    let builtin = fustor_core::config::ViewDriverKind::ALL.map(|k| k.name());
    let mut names: Vec<&'static str> = builtin
        .into_iter()
        .filter(|n| registry.names().any(|r| r == *n))
        .collect();
    names.extend(registry.names().filter(|n| !builtin.contains(n)));
    names
}

#[cfg(test)]
pub(crate) mod null;

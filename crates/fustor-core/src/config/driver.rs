//! What the loader needs to know of each agent source and sender driver, filled in by the agent's
//! driver registry (`fustor-agent/src/drivers.rs`).
//!
//! `driver_params` belong to their driver: each driver owns one [`DriverParams`] type (its keys,
//! defaults and ranges), and the loader checks a definition through that type alone, so that
//! `check-config`, `start` and the running driver read the same thing and a new driver needs no
//! entry in this crate.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::de::{FieldError, from_value};
use super::keys::{DriverSection, DriverShapes, Shape};

/// The `driver_params` of one driver, deserialized once from the definition.
pub trait DriverParams: DeserializeOwned + Sized {
    /// The keys the driver knows, for "unknown key (did you mean …)"; [`Shape::Any`] leaves
    /// them unchecked.
    const KEYS: &'static Shape;

    /// Errors name `driver_params.<key>`.
    fn from_params(params: &Map<String, Value>) -> Result<Self, FieldError> {
        from_value(&Value::Object(params.clone())).map_err(|e| e.within_keys(&["driver_params"]))
    }
}

/// A driver's rule for the definition's `uri`; the message names what is wrong.
pub type UriCheck = fn(&str) -> Result<(), String>;

/// A driver as the loader and `validate` see it.
#[derive(Clone, Copy)]
pub struct ParamsSchema {
    keys: &'static Shape,
    parse: fn(&Map<String, Value>) -> Result<(), FieldError>,
    uri: Option<UriCheck>,
}

impl ParamsSchema {
    pub fn of<P: DriverParams + 'static>() -> Self {
        ParamsSchema {
            keys: P::KEYS,
            parse: |m| P::from_params(m).map(drop),
            uri: None,
        }
    }

    /// Adds a check of the definition's `uri` that `validate` runs (e.g. "must be http(s)").
    pub fn with_uri_check(mut self, check: UriCheck) -> Self {
        self.uri = Some(check);
        self
    }

    pub(crate) fn check_params(&self, params: &Map<String, Value>) -> Result<(), FieldError> {
        (self.parse)(params)
    }

    pub(crate) fn check_uri(&self, uri: &str) -> Result<(), String> {
        self.uri.map_or(Ok(()), |f| f(uri))
    }
}

/// The source and sender drivers an agent build registered, by `driver` name. A definition
/// naming another driver is loaded unchecked (its pipe fails to start, as before).
#[derive(Clone, Default)]
pub struct AgentDriverSchemas {
    sources: BTreeMap<&'static str, ParamsSchema>,
    senders: BTreeMap<&'static str, ParamsSchema>,
}

impl AgentDriverSchemas {
    pub fn source(&mut self, name: &'static str, schema: ParamsSchema) -> &mut Self {
        self.sources.insert(name, schema);
        self
    }

    pub fn sender(&mut self, name: &'static str, schema: ParamsSchema) -> &mut Self {
        self.senders.insert(name, schema);
        self
    }

    pub fn source_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.sources.keys().copied()
    }

    pub fn sender_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.senders.keys().copied()
    }

    pub(crate) fn source_schema(&self, driver: &str) -> Option<&ParamsSchema> {
        self.sources.get(driver)
    }

    pub(crate) fn sender_schema(&self, driver: &str) -> Option<&ParamsSchema> {
        self.senders.get(driver)
    }
}

impl DriverShapes for AgentDriverSchemas {
    fn shape(&self, section: DriverSection, driver: &str) -> Option<&Shape> {
        match section {
            DriverSection::Source => self.sources.get(driver).map(|s| s.keys),
            DriverSection::Sender => self.senders.get(driver).map(|s| s.keys),
            DriverSection::View => None,
        }
    }
}

/// Drivers of one kind by configured name: what the loader checks of each and how to build it
/// (`F`, a constructor). Fusion's view registry, the agent's source and sender tables are this
/// shape; a driver is one `insert`.
#[derive(Clone)]
pub struct DriverTable<F: Copy> {
    entries: BTreeMap<&'static str, (ParamsSchema, F)>,
}

impl<F: Copy> Default for DriverTable<F> {
    fn default() -> Self {
        DriverTable {
            entries: BTreeMap::new(),
        }
    }
}

impl<F: Copy> DriverTable<F> {
    pub fn insert(&mut self, name: &'static str, schema: ParamsSchema, build: F) {
        self.entries.insert(name, (schema, build));
    }

    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.entries.keys().copied()
    }

    pub fn get(&self, driver: &str) -> Option<F> {
        self.entries.get(driver).map(|(_, f)| *f)
    }

    /// The registered names, quoted, for an "unknown driver" message.
    pub fn expected(&self) -> String {
        let names: Vec<String> = self.names().map(|n| format!("{n:?}")).collect();
        names.join(" or ")
    }

    pub fn schemas(&self) -> impl Iterator<Item = (&'static str, ParamsSchema)> + '_ {
        self.entries.iter().map(|(n, (s, _))| (*n, *s))
    }
}

//! Sender drivers keyed by their configured `driver` name, as Fusion's view registry: each
//! driver owns one parameter type, read once from `driver_params`.

use std::collections::BTreeMap;

use fustor_core::config::{AgentDriverSchemas, DriverParams, ParamsSchema, SenderConfig};

use crate::{AnySender, SendError};

/// One sender driver.
pub trait SenderDriver {
    type Params: DriverParams + 'static;

    fn build(cfg: &SenderConfig, params: Self::Params) -> Result<AnySender, SendError>;

    /// What `validate` requires of the definition's `uri`.
    fn check_uri(_uri: &str) -> Result<(), String> {
        Ok(())
    }
}

type Build = fn(&SenderConfig) -> Result<AnySender, SendError>;

#[derive(Clone, Copy)]
struct Entry {
    schema: ParamsSchema,
    build: Build,
}

#[derive(Clone, Default)]
pub struct SenderDrivers {
    entries: BTreeMap<&'static str, Entry>,
}

impl SenderDrivers {
    pub fn register<D: SenderDriver>(&mut self, name: &'static str) -> &mut Self {
        let schema = ParamsSchema::of::<D::Params>().with_uri_check(D::check_uri);
        self.entries.insert(
            name,
            Entry {
                schema,
                build: build::<D>,
            },
        );
        self
    }

    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.entries.keys().copied()
    }

    /// The sender of a definition; its `driver_params` are read here, once.
    pub fn build(&self, cfg: &SenderConfig) -> Result<AnySender, SendError> {
        match self.entries.get(cfg.driver.as_str()) {
            Some(e) => (e.build)(cfg),
            None => {
                let known: Vec<String> = self.names().map(|n| format!("{n:?}")).collect();
                Err(SendError::Config(format!(
                    "unknown sender driver {:?} (expected {})",
                    cfg.driver,
                    known.join(" or ")
                )))
            }
        }
    }

    /// Adds what the configuration loader checks of each driver.
    pub fn add_schemas(&self, out: &mut AgentDriverSchemas) {
        for (name, e) in &self.entries {
            out.sender(name, e.schema);
        }
    }
}

fn build<D: SenderDriver>(cfg: &SenderConfig) -> Result<AnySender, SendError> {
    let params =
        D::Params::from_params(&cfg.driver_params).map_err(|e| SendError::Config(e.to_string()))?;
    D::build(cfg, params)
}

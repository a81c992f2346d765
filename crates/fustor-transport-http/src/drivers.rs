//! Sender drivers keyed by their configured `driver` name, as Fusion's view registry: each
//! driver owns one parameter type, read once from `driver_params`.

use fustor_core::config::{
    AgentDriverSchemas, DriverParams, DriverTable, ParamsSchema, SenderConfig,
};

use crate::{AnySender, SendError};

/// What a sender driver offers, as `fustor-agent drivers` lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderSupports {
    /// Delivers to a remote receiver (else: local, e.g. a log).
    pub remote: bool,
    /// Leader election by the receiver (else: always leader).
    pub election: bool,
    /// Audit end calls and sentinel tasks reach a consistency engine.
    pub consistency: bool,
    /// The executable declares its behaviour at its handshake (`exec`).
    pub declared_by_driver: bool,
}

impl SenderSupports {
    pub const LOCAL: SenderSupports = SenderSupports {
        remote: false,
        election: false,
        consistency: false,
        declared_by_driver: false,
    };
}

/// One sender driver.
pub trait SenderDriver {
    type Params: DriverParams + 'static;

    /// For `fustor-agent drivers`.
    const SUPPORTS: SenderSupports = SenderSupports::LOCAL;

    fn build(cfg: &SenderConfig, params: Self::Params) -> Result<AnySender, SendError>;

    /// What `validate` requires of the definition's `uri`.
    fn check_uri(_uri: &str) -> Result<(), String> {
        Ok(())
    }
}

type Build = fn(&SenderConfig) -> Result<AnySender, SendError>;

#[derive(Clone, Default)]
pub struct SenderDrivers(DriverTable<(Build, SenderSupports)>);

impl SenderDrivers {
    pub fn register<D: SenderDriver>(&mut self, name: &'static str) -> &mut Self {
        let schema = ParamsSchema::of::<D::Params>().with_uri_check(D::check_uri);
        self.0.insert(name, schema, (build::<D>, D::SUPPORTS));
        self
    }

    /// Each driver's name and what it supports, for `fustor-agent drivers`.
    pub fn supports(&self) -> Vec<(&'static str, SenderSupports)> {
        self.0
            .names()
            .filter_map(|n| self.0.get(n).map(|(_, s)| (n, s)))
            .collect()
    }

    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.0.names()
    }

    /// The sender of a definition; its `driver_params` are read here, once.
    pub fn build(&self, cfg: &SenderConfig) -> Result<AnySender, SendError> {
        let (build, _) = self.0.get(&cfg.driver).ok_or_else(|| {
            SendError::Config(format!(
                "unknown sender driver {:?} (expected {})",
                cfg.driver,
                self.0.expected()
            ))
        })?;
        build(cfg)
    }

    /// Adds what the configuration loader checks of each driver.
    pub fn add_schemas(&self, out: &mut AgentDriverSchemas) {
        for (name, schema) in self.0.schemas() {
            out.sender(name, schema);
        }
    }
}

fn build<D: SenderDriver>(cfg: &SenderConfig) -> Result<AnySender, SendError> {
    let params =
        D::Params::from_params(&cfg.driver_params).map_err(|e| SendError::Config(e.to_string()))?;
    D::build(cfg, params)
}

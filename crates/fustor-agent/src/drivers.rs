//! The source and sender drivers this agent build knows, keyed by the `driver` name of a
//! definition, as Fusion's view registry. A new driver is one module plus one line here.

use fustor_core::config::AgentDriverSchemas;
use fustor_transport_http::{EchoSender, FusionSender, SenderDrivers};

use crate::exec::{ExecSender, ExecSource};
use crate::source::{FsSource, MysqlSource, S3Source, SourceDrivers};

pub fn source_drivers() -> SourceDrivers {
    let mut drivers = SourceDrivers::default();
    drivers
        .register::<FsSource>("fs")
        .register::<ExecSource>("exec")
        .register::<S3Source>("s3")
        .register::<MysqlSource>("mysql");
    drivers
}

pub fn sender_drivers() -> SenderDrivers {
    let mut drivers = SenderDrivers::default();
    drivers
        .register::<FusionSender>("fusion")
        // A spelling some documents use for the same HTTP sender.
        .register::<FusionSender>("http")
        .register::<EchoSender>("echo")
        .register::<ExecSender>("exec");
    drivers
}

/// What `load_agent` and `validate_agent` check of each driver's definition.
pub fn config_schemas() -> AgentDriverSchemas {
    schemas_of(&source_drivers(), &sender_drivers())
}

pub fn schemas_of(sources: &SourceDrivers, senders: &SenderDrivers) -> AgentDriverSchemas {
    let mut out = AgentDriverSchemas::default();
    sources.add_schemas(&mut out);
    senders.add_schemas(&mut out);
    out
}

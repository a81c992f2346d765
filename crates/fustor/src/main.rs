//! `fustor demo [DIR]`: Fusion and one agent in one process, watching DIR, with generated keys
//! and a generated home — the shortest way from a clean clone to a browsable view.

mod demo;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// Fustor: know what is on your NFS servers without running `find`.
#[derive(Parser)]
#[command(name = "fustor", version = fustor_daemon::VERSION, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run Fusion and an agent on this machine watching DIR (default: the current directory),
    /// and print the web console URL and the query key. Ctrl-C stops both.
    Demo {
        /// Directory to watch.
        dir: Option<PathBuf>,
        /// Main API / web console port.
        #[arg(long, default_value_t = 8101)]
        port: u16,
        /// Port agents send to.
        #[arg(long, default_value_t = 8102)]
        receiver_port: u16,
        /// Home for the generated configuration and logs (default: a new temporary directory).
        #[arg(long)]
        home: Option<PathBuf>,
        /// Address to bind (use 0.0.0.0 to reach the console from another machine).
        #[arg(long, default_value = "127.0.0.1")]
        bind: String,
    },
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Cmd::Demo {
            dir,
            port,
            receiver_port,
            home,
            bind,
        } => demo::run(demo::DemoOptions {
            dir: dir.unwrap_or_else(|| PathBuf::from(".")),
            port,
            receiver_port,
            home,
            bind,
        }),
    }
}

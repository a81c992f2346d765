//! `fustor-agent`: the command line of the agent daemon (`configuration.md` §5).

use std::fs::OpenOptions;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use fustor_agent::daemon::init_logging;
use fustor_agent::{Agent, AgentOptions};
use fustor_core::config::{AgentConfig, Daemon, FustorPaths, Loaded, load_agent, validate_agent};
use fustor_core::process::{self, PidFile, running_pid};

const LONG_ABOUT: &str = "\
Fustor agent: watches the directory trees configured as sources and streams file metadata \
events (realtime inotify events, snapshots, audits) to a Fusion server.

Configuration: every *.yaml file in $FUSTOR_HOME/agent-config/ (FUSTOR_HOME defaults to \
~/.fustor; --home DIR overrides it), with sections `sources`, `senders` and `pipes`. A pipe \
pairs one source (an fs directory) with one sender (`fusion` = HTTP to a Fusion receiver, \
`echo` = log only).

Files: $FUSTOR_HOME/agent.pid, $FUSTOR_HOME/logs/agent.log (rotated at 10 MiB, 5 kept), \
$FUSTOR_HOME/agent-state.json (written at shutdown).

Signals: SIGTERM/SIGINT stop (sessions are closed), SIGHUP reloads the configuration \
(added pipes start, removed ones stop, the others keep syncing).";

#[derive(Parser)]
#[command(name = "fustor-agent", version, about = "Fustor agent: file metadata sync to Fusion", long_about = LONG_ABOUT)]
struct Cli {
    /// Use this home instead of $FUSTOR_HOME / ~/.fustor.
    #[arg(long, global = true, value_name = "DIR")]
    home: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start the agent (foreground unless -D).
    ///
    /// Without arguments the pipes defined in default.yaml run; otherwise each argument is a
    /// config file name (selects the pipes it defines) or a pipe id.
    Start {
        /// Config file names (`extra.yaml`) or pipe ids.
        args: Vec<String>,
        /// Run in the background; output goes to the log file.
        #[arg(short = 'D', long)]
        daemon: bool,
        /// Debug logging.
        #[arg(short = 'V', long)]
        verbose: bool,
        /// Log to the log file only (used by -D).
        #[arg(long, hide = true)]
        no_console_log: bool,
        /// Internal: started by -D; become a session leader.
        #[arg(long, hide = true)]
        detached_child: bool,
    },
    /// Stop the running agent (SIGTERM, then SIGKILL after 10 s).
    Stop {
        /// Deprecated: stopping single pipes is not supported.
        ids: Vec<String>,
    },
    /// Ask the running agent to reload its configuration (SIGHUP).
    Reload,
    /// Show whether the agent runs; with a pipe id, show that pipe's configuration.
    Status { pipe: Option<String> },
    /// List the configured pipes.
    List,
    /// Check the configuration; exit status 1 on errors.
    #[command(alias = "check-config")]
    Validate,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let paths = match &cli.home {
        Some(h) => FustorPaths::new(h),
        None => FustorPaths::from_env(),
    };
    match run(cli, &paths) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli, paths: &FustorPaths) -> anyhow::Result<ExitCode> {
    match cli.cmd {
        Cmd::Start {
            args,
            daemon,
            verbose,
            no_console_log,
            detached_child,
        } => start(paths, args, daemon, verbose, no_console_log, detached_child),
        Cmd::Stop { ids } => {
            if !ids.is_empty() {
                println!(
                    "Stopping individual pipes is deprecated and does nothing; \
                     remove or disable them in the configuration and run `fustor-agent reload`."
                );
                return Ok(ExitCode::SUCCESS);
            }
            stop(paths)
        }
        Cmd::Reload => {
            match running_pid(&paths.pid_file(Daemon::Agent)) {
                None => println!("Agent is not running."),
                Some(pid) => {
                    process::hangup(pid).context("sending SIGHUP")?;
                    println!("Reload signal sent to the agent (PID {pid}).");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Status { pipe } => status(paths, pipe),
        Cmd::List => {
            let loaded = load_agent(paths);
            let cfg = &loaded.config;
            println!("{:<24} {:<10} SOURCE", "PIPE ID", "STATUS");
            for (id, p) in &cfg.pipes {
                let st = if cfg.is_pipe_enabled(id) {
                    "ENABLED"
                } else {
                    "DISABLED"
                };
                println!("{id:<24} {st:<10} {}", p.source);
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Validate => {
            let loaded = checked(paths);
            for d in &loaded.diagnostics {
                println!("{}: {d}", if d.is_error() { "ERROR" } else { "WARNING" });
            }
            if loaded.has_errors() {
                return Ok(ExitCode::from(1));
            }
            println!("Configuration is valid.");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Loaded configuration with the cross-reference checks added.
fn checked(paths: &FustorPaths) -> Loaded<AgentConfig> {
    let mut loaded = load_agent(paths);
    let extra = validate_agent(&loaded);
    loaded.diagnostics.extend(extra);
    loaded
}

fn start(
    paths: &FustorPaths,
    args: Vec<String>,
    daemon: bool,
    verbose: bool,
    no_console_log: bool,
    detached_child: bool,
) -> anyhow::Result<ExitCode> {
    if detached_child {
        // Not a process group leader (spawned by the parent), so this cannot fail with EPERM.
        process::detach();
    }
    std::fs::create_dir_all(paths.config_dir(Daemon::Agent))
        .with_context(|| format!("creating {}", paths.config_dir(Daemon::Agent).display()))?;
    std::fs::create_dir_all(paths.logs_dir())
        .with_context(|| format!("creating {}", paths.logs_dir().display()))?;
    let loaded = checked(paths);
    if loaded.has_errors() {
        eprintln!("Configuration errors:");
        for d in loaded.errors() {
            eprintln!("  {d}");
        }
        return Ok(ExitCode::from(1));
    }
    let pid_file = paths.pid_file(Daemon::Agent);
    if let Some(pid) = running_pid(&pid_file)
        && pid != std::process::id() as i32
    {
        println!("Fustor Agent is already running with PID: {pid}");
        return Ok(ExitCode::from(if daemon { 0 } else { 1 }));
    }
    let log_file = paths.log_file(Daemon::Agent);
    if daemon {
        let exe = std::env::current_exe().context("locating the executable")?;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_file)
            .with_context(|| format!("opening {}", log_file.display()))?;
        let mut cmd = Command::new(exe);
        cmd.arg("--home")
            .arg(&paths.home)
            .arg("start")
            .arg("--no-console-log")
            .arg("--detached-child");
        if verbose {
            cmd.arg("--verbose");
        }
        cmd.arg("--").args(&args);
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().context("log file handle")?)
            .stderr(log);
        let child = cmd.spawn().context("starting the daemon")?;
        println!("Fustor Agent started with PID: {}", child.id());
        return Ok(ExitCode::SUCCESS);
    }
    let level = if verbose {
        tracing::Level::DEBUG
    } else {
        loaded
            .config
            .logging
            .tracing_level()
            .unwrap_or(tracing::Level::INFO)
    };
    init_logging(level, Some(&log_file), !no_console_log).context("setting up logging")?;
    if loaded.config.logging.tracing_level().is_none() {
        tracing::warn!(level = %loaded.config.logging.level, "unknown logging level; using INFO");
    }
    let pid_guard =
        PidFile::create(&pid_file).with_context(|| format!("writing {}", pid_file.display()))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("fustor-agent")
        .build()
        .context("starting the async runtime")?;
    let opts = AgentOptions {
        paths: paths.clone(),
        args,
    };
    let result = rt.block_on(async move {
        let agent = Agent::start(opts).await?;
        agent
            .run_until_signal()
            .await
            .context("installing signal handlers")
    });
    rt.shutdown_timeout(Duration::from_secs(2));
    drop(pid_guard);
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            tracing::error!("{e:#}");
            Err(e)
        }
    }
}

fn stop(paths: &FustorPaths) -> anyhow::Result<ExitCode> {
    let pid_file = paths.pid_file(Daemon::Agent);
    let Some(pid) = running_pid(&pid_file) else {
        println!("Agent is not running.");
        return Ok(ExitCode::SUCCESS);
    };
    if process::terminate(pid, Duration::from_secs(10)).context("stopping the agent")? {
        println!("Agent did not stop within 10 s; killed it.");
    }
    let _ = std::fs::remove_file(&pid_file);
    println!("Agent stopped.");
    Ok(ExitCode::SUCCESS)
}

fn status(paths: &FustorPaths, pipe: Option<String>) -> anyhow::Result<ExitCode> {
    match running_pid(&paths.pid_file(Daemon::Agent)) {
        Some(pid) => {
            println!("Agent: RUNNING (PID {pid})");
            print_live_status(paths, pid);
        }
        None => println!("Agent: STOPPED"),
    }
    let Some(id) = pipe else {
        return Ok(ExitCode::SUCCESS);
    };
    let loaded = load_agent(paths);
    let cfg = &loaded.config;
    let Some(p) = cfg.pipes.get(&id) else {
        println!("Pipe {id:?} is not defined in the configuration.");
        return Ok(ExitCode::from(1));
    };
    let enabled = cfg.sources.get(&p.source).is_some_and(|s| !s.disabled);
    println!("Pipe: {id}");
    println!("  Source: {}", p.source);
    println!("  Sender: {}", p.sender);
    println!("  Status: {}", if enabled { "ENABLED" } else { "DISABLED" });
    Ok(ExitCode::SUCCESS)
}

/// Prints the running agent's own report (`agent-status.json`, refreshed every 2 s).
fn print_live_status(paths: &FustorPaths, pid: i32) {
    let file = paths.home.join("agent-status.json");
    let Some(v) = std::fs::read(&file)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
    else {
        println!("  (no live status yet)");
        return;
    };
    if v["pid"].as_i64() != Some(i64::from(pid)) {
        println!("  (live status is from another process; the agent may still be starting)");
        return;
    }
    let age = fustor_core::Now::system().epoch - v["updated_at"].as_f64().unwrap_or(0.0);
    println!(
        "  agent_id: {}   (status {age:.0} s old)",
        v["agent_id"].as_str().unwrap_or("?")
    );
    for p in v["pipes"].as_array().into_iter().flatten() {
        let s = |k: &str| p[k].as_str().unwrap_or("-").to_string();
        println!(
            "  pipe {}: {}  role={}  session={}  realtime={}  events={} ({:.1}/s)  errors={}{}",
            s("id"),
            s("state"),
            s("role"),
            s("session_id"),
            p["can_realtime"].as_bool().unwrap_or(false),
            p["events_pushed"].as_u64().unwrap_or(0),
            p["events_per_sec"].as_f64().unwrap_or(0.0),
            p["consecutive_errors"].as_u64().unwrap_or(0),
            p["last_error"]
                .as_str()
                .map(|e| format!("  last error: {e}"))
                .unwrap_or_default(),
        );
    }
}

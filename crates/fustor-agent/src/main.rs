//! `fustor-agent`: the command line of the agent daemon (`configuration.md` §5).

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand};
use fustor_agent::steer::{RegistryLink, Steer};
use fustor_agent::{Agent, AgentOptions, drivers};
use fustor_core::config::{AgentConfig, Daemon, FustorPaths, Loaded, load_agent, validate_agent};
use fustor_core::outln;
use fustor_core::process::PidFile;
use fustor_daemon::Shell;
use fustor_daemon::generate::{self, Shell as CompletionShell};
use fustor_daemon::logging::{self, LogSettings};

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
(added pipes start, removed ones stop, the others keep syncing).

Exit status: 0 on success, 1 on failure (including a refused reload and, for validate, \
unknown keys), 3 for `status` when the agent is not running, 7 for `reload` when it is not \
running.";

#[derive(Parser)]
#[command(name = "fustor-agent", version = fustor_daemon::VERSION, propagate_version = true, about = "Fustor agent: file metadata sync to Fusion", long_about = LONG_ABOUT)]
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
        #[arg(short = 'v', long)]
        verbose: bool,
        /// Start even when no pipe is selected (it idles until a reload adds one); by default
        /// that is an error, so that a typo does not leave an agent syncing nothing.
        #[arg(long)]
        allow_empty: bool,
        /// Log to the log file only (used by -D).
        #[arg(long, hide = true)]
        no_console_log: bool,
        /// Internal: this process is the detached child of `start -D`.
        #[arg(long, hide = true)]
        daemon_child: bool,
        /// Fusion's main URL: fetch this agent's configuration from its registry at start,
        /// keep it as agent-config/registry.yaml and run its pipes; when the registry cannot
        /// be reached, start from that last good copy.
        #[arg(long, value_name = "URL", requires = "registry_key")]
        registry: Option<String>,
        /// Agent key for --registry (one of the receiver's agent keys).
        #[arg(long, value_name = "KEY", requires = "registry")]
        registry_key: Option<String>,
    },
    /// Stop the running agent (SIGTERM, then SIGKILL after 10 s).
    Stop {
        /// Deprecated: stopping single pipes is not supported.
        ids: Vec<String>,
    },
    /// Ask the running agent to reload its configuration (SIGHUP); exit 1 when it is refused.
    Reload,
    /// Show whether the agent runs (exit 3 when not); with a pipe id, that pipe's configuration.
    Status { pipe: Option<String> },
    /// List the configured pipes.
    List,
    /// Check the configuration; exit status 1 on errors and on unknown keys.
    #[command(alias = "check-config")]
    Validate,
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(hide = true)]
    Completions { shell: CompletionShell },
    /// Write the man pages (fustor-agent.1 and one per subcommand) into DIR.
    #[command(hide = true)]
    Man { dir: PathBuf },
    /// List the built-in source and sender drivers and what each supports.
    Drivers {
        /// Test the connection of this configured source (its driver's `test_connection`)
        /// and print the row fields it fills; exit 1 when it fails.
        #[arg(long, value_name = "SOURCE_ID")]
        test: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse_from(fustor_daemon::compat_args(
        std::env::args_os(),
        "fustor-agent",
    ));
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
            allow_empty,
            no_console_log,
            daemon_child,
            registry,
            registry_key,
        } => {
            let mut args = args;
            let mut steer = None;
            // `registry: {url, key}` in the agent's YAML, unless given on the command line.
            let link = match (registry, registry_key) {
                (Some(url), Some(key)) => Some((url, key)),
                _ => load_agent(paths, &drivers::config_schemas())
                    .config
                    .registry
                    .map(|r| (r.url, r.key)),
            };
            if let Some((url, key)) = link {
                // The `-D` parent fetches; its child only links to the registry.
                steer = Some(from_registry(paths, &url, &key, !daemon_child)?);
                if args.is_empty() {
                    args.push(fustor_agent::registry_config::FILE.to_string());
                }
            }
            let opts = StartOpts {
                args,
                verbose,
                allow_empty,
                steer,
            };
            if daemon && !daemon_child {
                return spawn_daemon(paths, &opts);
            }
            start(paths, opts, no_console_log, daemon_child)
        }
        Cmd::Stop { ids } => {
            if !ids.is_empty() {
                outln!(
                    "Stopping individual pipes is deprecated and does nothing; \
                     remove or disable them in the configuration and run `fustor-agent reload`."
                );
                return Ok(ExitCode::SUCCESS);
            }
            shell(paths).stop().context("stopping the agent")
        }
        Cmd::Reload => {
            let errors: Vec<String> = checked(paths).errors().map(|d| d.to_string()).collect();
            shell(paths).reload(&errors).context("reloading the agent")
        }
        Cmd::Status { pipe } => status(paths, pipe),
        Cmd::Drivers { test: None } => {
            let report = fustor_agent::driver_report::report(
                &drivers::source_drivers(),
                &drivers::sender_drivers(),
            );
            outln!("{}", report.trim_end());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Drivers { test: Some(id) } => test_source(paths, &id),
        Cmd::List => {
            let loaded = load_agent(paths, &drivers::config_schemas());
            let cfg = &loaded.config;
            outln!("{:<24} {:<10} SOURCE", "PIPE ID", "STATUS");
            for (id, p) in &cfg.pipes {
                let st = if cfg.is_pipe_enabled(id) {
                    "ENABLED"
                } else {
                    "DISABLED"
                };
                outln!("{id:<24} {st:<10} {}", p.source);
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Validate => {
            let loaded = checked(paths);
            for d in &loaded.diagnostics {
                outln!("{}: {d}", if d.fails_check() { "ERROR" } else { "WARNING" });
            }
            // Stricter than `start`, which only warns about unknown keys.
            if loaded.fails_check() {
                return Ok(ExitCode::from(1));
            }
            outln!("Configuration is valid.");
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Completions { shell } => {
            generate::completions(Cli::command(), shell)?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Man { dir } => {
            let n = generate::man_pages(Cli::command(), &dir)
                .with_context(|| format!("writing man pages into {}", dir.display()))?;
            outln!("{n} man pages in {}", dir.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `start --registry`: refreshes `agent-config/registry.yaml` or falls back to it (when
/// `fetch`), and links the agent to the registry with the version of the copy it runs. Runs
/// before logging is set up, so it reports on stderr.
fn from_registry(
    paths: &FustorPaths,
    url: &str,
    key: &str,
    fetch: bool,
) -> anyhow::Result<Arc<Steer>> {
    use fustor_agent::registry_config::{CopyVersion, Outcome, fetch_and_store, read_version};
    let link = RegistryLink {
        url: url.to_string(),
        key: key.to_string(),
    };
    let state = paths.home.join(fustor_agent::statefile::STATE_DIR);
    if fetch {
        let schemas = drivers::config_schemas();
        let configured = load_agent(paths, &schemas).config.agent_id;
        let agent_id = fustor_agent::agent_id::resolve_agent_id(configured.as_deref(), Some(url));
        let dir = paths.config_dir(Daemon::Agent);
        match fetch_and_store(&dir, url, key, &agent_id, &schemas)? {
            Outcome::Fetched {
                target,
                version,
                digest,
            } => {
                eprintln!(
                    "Configuration version {version} of {target} ({digest}) from the registry for agent {agent_id:?}"
                );
                let v = CopyVersion { version, digest };
                if let Err(e) = fustor_agent::registry_config::write_version(&state, &v) {
                    eprintln!("Registry: cannot record the copy's version: {e}");
                }
            }
            Outcome::LastGood { reason } => {
                eprintln!("Registry: {reason}; starting from the last good copy")
            }
        }
    }
    let v = read_version(&state);
    Ok(Arc::new(Steer::new(
        link,
        v.as_ref().map(|v| v.version),
        v.map(|v| v.digest),
    )))
}

/// Loaded configuration with the cross-reference checks added.
fn shell(paths: &FustorPaths) -> Shell {
    Shell {
        daemon: Daemon::Agent,
        paths: paths.clone(),
        name: "Agent",
        title: "Fustor Agent",
    }
}

fn checked(paths: &FustorPaths) -> Loaded<AgentConfig> {
    let schemas = drivers::config_schemas();
    let mut loaded = load_agent(paths, &schemas);
    let extra = validate_agent(&loaded, &schemas);
    loaded.diagnostics.extend(extra);
    loaded
}

/// Prints the configuration's errors (what makes `start` refuse); true when there are any.
fn print_errors(loaded: &Loaded<AgentConfig>) -> bool {
    if !loaded.has_errors() {
        return false;
    }
    eprintln!("Configuration errors:");
    for d in loaded.errors() {
        eprintln!("  {d}");
    }
    true
}

/// Options of `start` that the `-D` parent hands to its child.
struct StartOpts {
    args: Vec<String>,
    verbose: bool,
    allow_empty: bool,
    steer: Option<Arc<Steer>>,
}

fn log_file(paths: &FustorPaths, loaded: &Loaded<AgentConfig>) -> PathBuf {
    paths.log_file_in(Daemon::Agent, loaded.config.logging.dir.as_deref())
}

/// `start -D`: spawns the foreground path detached and waits until its pipes are started (it
/// writes the pid file only then), or reports what it logged before dying.
fn spawn_daemon(paths: &FustorPaths, opts: &StartOpts) -> anyhow::Result<ExitCode> {
    let shell = shell(paths);
    let loaded = checked(paths);
    if shell.running_pid().is_none() && print_errors(&loaded) {
        return Ok(ExitCode::from(1));
    }
    let mut child: Vec<OsString> = Vec::new();
    if opts.verbose {
        child.push("--verbose".into());
    }
    if opts.allow_empty {
        child.push("--allow-empty".into());
    }
    if let Some(steer) = &opts.steer {
        child.extend(
            [
                "--registry",
                &steer.link.url,
                "--registry-key",
                &steer.link.key,
            ]
            .map(OsString::from),
        );
    }
    child.push("--".into());
    child.extend(opts.args.iter().map(OsString::from));
    let log = log_file(paths, &loaded);
    shell
        .spawn_detached(&log, &child)
        .context("starting the background agent")
}

fn start(
    paths: &FustorPaths,
    opts: StartOpts,
    no_console_log: bool,
    daemon_child: bool,
) -> anyhow::Result<ExitCode> {
    if let Err(code) = shell(paths).begin_foreground(daemon_child) {
        return Ok(code);
    }
    std::fs::create_dir_all(paths.config_dir(Daemon::Agent))
        .with_context(|| format!("creating {}", paths.config_dir(Daemon::Agent).display()))?;
    let mut loaded = checked(paths);
    if print_errors(&loaded) {
        return Ok(ExitCode::from(1));
    }
    if let Some(level) = fustor_daemon::env::EnvOverrides::read()?.log_level {
        loaded.config.logging.level = level;
    }
    let pid_file = paths.pid_file(Daemon::Agent);
    let log_file = log_file(paths, &loaded);
    if let Some(dir) = log_file.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let level = if opts.verbose {
        tracing::Level::DEBUG
    } else {
        loaded
            .config
            .logging
            .tracing_level()
            .unwrap_or(tracing::Level::INFO)
    };
    let json = loaded.config.logging.json_format().unwrap_or(false);
    logging::init(LogSettings {
        level,
        file: Some(&log_file),
        console: !no_console_log,
        json,
    })
    .context("setting up logging")?;
    if loaded.config.logging.tracing_level().is_none() {
        tracing::warn!(level = %loaded.config.logging.level, "unknown logging level; using INFO");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("fustor-agent")
        .build()
        .context("starting the async runtime")?;
    let allow_empty = opts.allow_empty;
    let agent_opts = AgentOptions {
        paths: paths.clone(),
        args: opts.args,
        registry: opts.steer,
    };
    let result = rt.block_on(async move {
        let agent = Agent::start(agent_opts).await?;
        if agent.pipe_ids().is_empty() && !allow_empty {
            agent.shutdown().await;
            anyhow::bail!(
                "no pipe to run: none is selected, or every selected pipe failed to start (see \
                 above); fix the configuration, or pass --allow-empty to idle until a reload"
            );
        }
        // Written once the pipes run: `start -D` takes it as the readiness signal.
        let pid_guard = match PidFile::create(&pid_file) {
            Ok(g) => g,
            Err(e) => {
                agent.shutdown().await;
                return Err(e).context("writing the pid file");
            }
        };
        let r = agent
            .run_until_signal()
            .await
            .context("installing signal handlers");
        drop(pid_guard);
        r
    });
    rt.shutdown_timeout(Duration::from_secs(2));
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            tracing::error!("{e:#}");
            Err(e)
        }
    }
}

/// LSB: 0 when running, 3 when not (also with a pipe id), 1 for an unknown pipe.
fn status(paths: &FustorPaths, pipe: Option<String>) -> anyhow::Result<ExitCode> {
    let (pid, running) = shell(paths).status_line("Agent: ");
    if let Some(pid) = pid {
        print_live_status(paths, pid);
    }
    let Some(id) = pipe else {
        return Ok(running);
    };
    let loaded = load_agent(paths, &drivers::config_schemas());
    let cfg = &loaded.config;
    let Some(p) = cfg.pipes.get(&id) else {
        outln!("Pipe {id:?} is not defined in the configuration.");
        return Ok(ExitCode::from(1));
    };
    let enabled = cfg.sources.get(&p.source).is_some_and(|s| !s.disabled);
    outln!("Pipe: {id}");
    outln!("  Source: {}", p.source);
    outln!("  Sender: {}", p.sender);
    outln!("  Status: {}", if enabled { "ENABLED" } else { "DISABLED" });
    Ok(running)
}

/// `drivers --test ID`: the source's `test_connection`, off any running agent.
fn test_source(paths: &FustorPaths, id: &str) -> anyhow::Result<ExitCode> {
    let loaded = load_agent(paths, &drivers::config_schemas());
    let Some(cfg) = loaded.config.sources.get(id) else {
        outln!("Source {id:?} is not defined in the configuration.");
        return Ok(ExitCode::from(1));
    };
    match drivers::source_drivers().test_connection(cfg) {
        Ok(fields) => {
            outln!("Source {id:?} (driver {}): connection OK", cfg.driver);
            outln!("  fields: {}", fields.join(", "));
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            outln!(
                "Source {id:?} (driver {}): connection FAILED: {e}",
                cfg.driver
            );
            Ok(ExitCode::from(1))
        }
    }
}

/// Prints the running agent's own report (`agent-status.json`, refreshed every 2 s).
fn print_live_status(paths: &FustorPaths, pid: i32) {
    let file = paths.home.join("agent-status.json");
    let Some(v) = std::fs::read(&file)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
    else {
        outln!("  (no live status yet)");
        return;
    };
    if v["pid"].as_i64() != Some(i64::from(pid)) {
        outln!("  (live status is from another process; the agent may still be starting)");
        return;
    }
    let age = fustor_core::Now::system().epoch - v["updated_at"].as_f64().unwrap_or(0.0);
    outln!(
        "  agent_id: {}   (status {age:.0} s old)",
        v["agent_id"].as_str().unwrap_or("?")
    );
    for p in v["pipes"].as_array().into_iter().flatten() {
        let s = |k: &str| p[k].as_str().unwrap_or("-").to_string();
        outln!(
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
        if let Some(problem) = p["source_problem"].as_str() {
            outln!("    source problem: {}", problem.escape_debug());
        }
    }
}

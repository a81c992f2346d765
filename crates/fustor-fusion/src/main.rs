//! `fustor-fusion`: the central Fustor daemon.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{CommandFactory, Parser, Subcommand};
use fustor_core::config::{Daemon, FustorPaths};
use fustor_core::outln;
use fustor_core::process::{self, PidFile};
use fustor_daemon::Shell;
use fustor_daemon::generate::{self, Shell as CompletionShell};
use fustor_daemon::logging::{self, LogSettings};
use fustor_daemon::notify;
use fustor_fusion::daemon::{self, FusionServer, Overrides};

/// Fustor Fusion: receives file-system events from fustor-agents, keeps an in-memory tree per
/// view and answers queries over HTTP.
///
/// Configuration: every `*.yaml` file in `$FUSTOR_HOME/fusion-config/` (default home
/// `~/.fustor`), merged in file-name order. Logs go to `$FUSTOR_HOME/logs/fusion.log`
/// (`logging.dir` moves them).
///
/// Exit status: 0 on success, 1 on failure (including a refused reload), 3 for `status` when
/// Fusion is not running, 7 for `reload` when it is not running.
#[derive(Parser)]
#[command(name = "fustor-fusion", version = fustor_daemon::VERSION, propagate_version = true, about, long_about)]
struct Cli {
    /// Use this home instead of $FUSTOR_HOME / ~/.fustor.
    #[arg(long, global = true, value_name = "DIR")]
    home: Option<PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start Fusion (foreground unless -D). ARGS select pipes: a `.yaml` file name starts the
    /// pipes defined in it, anything else is a pipe id; none starts every enabled pipe.
    Start {
        /// Detach and run in the background; returns once Fusion listens, or fails with the
        /// daemon's error.
        #[arg(short = 'D', long)]
        daemon: bool,
        /// Debug logging.
        #[arg(short = 'v', long)]
        verbose: bool,
        /// Main API port (overrides `port` in the configuration).
        #[arg(short = 'p', long)]
        port: Option<u16>,
        /// Main API bind address (overrides `host`). The reference's `-h HOST` is read as
        /// `--host HOST`; `-h` alone prints help.
        #[arg(short = 'H', long)]
        host: Option<String>,
        /// Start even when no pipe can run (no configuration yet, or every file broken); by
        /// default that is an error, so that a typo does not leave an empty Fusion serving.
        #[arg(long)]
        allow_empty: bool,
        /// Do not log to the terminal (used by -D).
        #[arg(long, hide = true)]
        no_console_log: bool,
        /// Internal: this process is the detached child of `start -D`.
        #[arg(long, hide = true)]
        daemon_child: bool,
        args: Vec<String>,
    },
    /// Stop the running Fusion (SIGTERM, then SIGKILL after 10 s).
    Stop {
        /// Ignored (deprecated in the reference).
        ids: Vec<String>,
    },
    /// Reload the configuration of the running Fusion (SIGHUP); exit 1 when it is refused.
    Reload,
    /// Show whether Fusion runs, and its pipes and sessions; exit 3 when it is not running.
    Status { pipe_id: Option<String> },
    /// List configured pipes.
    List,
    /// Validate the configuration and print the effective result; exit 1 on errors and on
    /// unknown keys.
    CheckConfig {
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(hide = true)]
    Completions { shell: CompletionShell },
    /// Write the man pages (fustor-fusion.1 and one per subcommand) into DIR.
    #[command(hide = true)]
    Man { dir: PathBuf },
}

/// Options of `start` that the `-D` parent hands to its child.
struct StartOpts {
    verbose: bool,
    port: Option<u16>,
    host: Option<String>,
    allow_empty: bool,
    args: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse_from(fustor_daemon::compat_args(
        std::env::args_os(),
        "fustor-fusion",
    ));
    let paths = match cli.home {
        Some(h) => FustorPaths::new(h),
        None => FustorPaths::from_env(),
    };
    match run(cli.command, &paths) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(command: Cmd, paths: &FustorPaths) -> Result<ExitCode> {
    match command {
        Cmd::Start {
            daemon,
            verbose,
            port,
            host,
            allow_empty,
            no_console_log,
            daemon_child,
            args,
            ..
        } => {
            let opts = StartOpts {
                verbose,
                port,
                host,
                allow_empty,
                args,
            };
            if daemon && !daemon_child {
                return spawn_daemon(paths, &opts);
            }
            if let Err(code) = shell(paths).begin_foreground(daemon_child) {
                return Ok(code);
            }
            start(paths, opts, !no_console_log)
        }
        Cmd::Stop { ids } => {
            if !ids.is_empty() {
                outln!(
                    "Stopping individual pipes is deprecated; stop ignores: {}",
                    ids.join(" ")
                );
                return Ok(ExitCode::SUCCESS);
            }
            shell(paths).stop().context("stopping Fusion")
        }
        Cmd::Reload => {
            let (_, _, diags) = daemon::load(&paths.config_dir(Daemon::Fusion), &[]);
            let errors: Vec<String> = diags
                .iter()
                .filter(|d| d.is_error())
                .map(|d| d.to_string())
                .collect();
            shell(paths).reload(&errors).context("reloading Fusion")
        }
        Cmd::Status { pipe_id } => status(paths, pipe_id.as_deref()),
        Cmd::List => list(paths),
        Cmd::CheckConfig { json } => check_config(paths, json),
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

fn log_file(paths: &FustorPaths) -> PathBuf {
    let (loaded, _, _) = daemon::load(&paths.config_dir(Daemon::Fusion), &[]);
    paths.log_file_in(Daemon::Fusion, loaded.config.logging.dir.as_deref())
}

fn shell(paths: &FustorPaths) -> Shell {
    Shell {
        daemon: Daemon::Fusion,
        paths: paths.clone(),
        name: "Fusion",
        title: "Fusion",
    }
}

/// `start -D`: the foreground path, detached; returns once it listens.
fn spawn_daemon(paths: &FustorPaths, opts: &StartOpts) -> Result<ExitCode> {
    let mut child: Vec<OsString> = Vec::new();
    if opts.verbose {
        child.push("--verbose".into());
    }
    if opts.allow_empty {
        child.push("--allow-empty".into());
    }
    if let Some(p) = opts.port {
        child.extend(["--port".into(), p.to_string().into()]);
    }
    if let Some(h) = &opts.host {
        child.extend(["--host".into(), h.into()]);
    }
    child.push("--".into());
    child.extend(opts.args.iter().map(OsString::from));
    shell(paths)
        .spawn_detached(&log_file(paths), &child)
        .context("starting the background Fusion")
}

fn start(paths: &FustorPaths, opts: StartOpts, console: bool) -> Result<ExitCode> {
    let pid_file = paths.pid_file(Daemon::Fusion);
    let config_dir = paths.config_dir(Daemon::Fusion);
    std::fs::create_dir_all(&config_dir)
        .with_context(|| format!("creating {}", config_dir.display()))?;
    let (mut loaded, _, _) = daemon::load(&config_dir, &opts.args);
    let env = fustor_daemon::env::EnvOverrides::read()?;
    if let Some(level) = env.log_level {
        loaded.config.logging.level = level;
    }
    let logging_cfg = &loaded.config.logging;
    let level = if opts.verbose {
        tracing::Level::DEBUG
    } else {
        logging_cfg.tracing_level().unwrap_or(tracing::Level::INFO)
    };
    let log = paths.log_file_in(Daemon::Fusion, logging_cfg.dir.as_deref());
    let json = logging_cfg.json_format().unwrap_or(false);
    logging::init(LogSettings {
        level,
        file: Some(&log),
        console,
        json,
    })
    .context("setting up logging")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let reload_file = paths.reload_result_file(Daemon::Fusion);
    rt.block_on(async move {
        // Flags win over the environment, which wins over the YAML (`fustor_daemon::env`).
        let overrides = Overrides {
            host: opts.host.or(env.fusion_host),
            port: opts.port.or(env.fusion_port),
            main_port_hint: None,
        };
        let server = FusionServer::start(&config_dir, &opts.args, overrides).await?;
        if server.fusion.current().pipes.is_empty() && !opts.allow_empty {
            server.shutdown().await;
            bail!(
                "no usable pipe: every pipe is missing, disabled or in a broken file (see the \
                 errors above); fix the configuration, or pass --allow-empty to start without pipes"
            );
        }
        // Written once listening: `start -D` takes it as the readiness signal.
        let _pid = match PidFile::create(&pid_file) {
            Ok(p) => p,
            Err(e) => {
                server.shutdown().await;
                return Err(e).context("writing the pid file");
            }
        };
        let scheme = if server.tls.is_some() {
            "https"
        } else {
            "http"
        };
        outln!("Fusion listening on {scheme}://{}", server.main_addr);
        serve_until_signal(&server, &reload_file).await
    })?;
    Ok(ExitCode::SUCCESS)
}

async fn serve_until_signal(server: &FusionServer, reload_file: &std::path::Path) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    // Listeners bound and persisted views loaded (`FusionServer::start`), and the signal
    // handlers in place (a `systemctl stop` right after start must stop cleanly, not kill):
    // `systemctl start` may return.
    notify::ready(&format!("listening on {}", server.main_addr));
    notify::spawn_watchdog();
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading configuration");
                match server.reload().await {
                    Ok(()) => process::record_reload(reload_file, true, "configuration reloaded"),
                    Err(e) => {
                        tracing::error!(error = %e, "reload failed; the previous configuration keeps running");
                        process::record_reload(reload_file, false, &e.to_string());
                    }
                }
            }
        }
    }
    tracing::info!("shutting down");
    notify::stopping();
    server.shutdown().await;
    Ok(())
}

fn status(paths: &FustorPaths, pipe_id: Option<&str>) -> Result<ExitCode> {
    let config_dir = paths.config_dir(Daemon::Fusion);
    let (loaded, _, _) = daemon::load(&config_dir, &[]);
    if let Some(id) = pipe_id {
        let Some(p) = loaded.config.pipes.get(id) else {
            bail!("unknown pipe {id}")
        };
        let enabled = if loaded.config.is_pipe_enabled(id) {
            "ENABLED"
        } else {
            "DISABLED"
        };
        outln!(
            "Pipe {id}: receiver={} views={} {enabled}",
            p.receiver,
            p.views.join(",")
        );
        return Ok(ExitCode::SUCCESS);
    }
    let (pid, code) = shell(paths).status_line("");
    if pid.is_some() {
        fustor_fusion::status::print_live(loaded.config.port);
    }
    Ok(code)
}

fn list(paths: &FustorPaths) -> Result<ExitCode> {
    let (loaded, _, _) = daemon::load(&paths.config_dir(Daemon::Fusion), &[]);
    outln!("{:<24} {:<10} VIEWS", "PIPE ID", "STATUS");
    for (id, p) in &loaded.config.pipes {
        let s = if loaded.config.is_pipe_enabled(id) {
            "ENABLED"
        } else {
            "DISABLED"
        };
        outln!("{id:<24} {s:<10} {}", p.views.join(","));
    }
    Ok(ExitCode::SUCCESS)
}

/// Stricter than `start`: unknown keys are errors here (`start` only warns about them).
fn check_config(paths: &FustorPaths, json: bool) -> Result<ExitCode> {
    let dir = paths.config_dir(Daemon::Fusion);
    let (loaded, pipes, diags) = daemon::load(&dir, &[]);
    for d in &diags {
        let label = if d.fails_check() { "ERROR" } else { "WARNING" };
        eprintln!("{label}: {d}");
    }
    if json {
        outln!("{}", serde_json::to_string_pretty(&loaded.config)?);
    } else {
        outln!("config dir: {}", dir.display());
        outln!("main API: {}:{}", loaded.config.host, loaded.config.port);
        for (id, r) in &loaded.config.receivers {
            outln!(
                "receiver {id}: {} {}:{} keys={}",
                r.driver,
                r.bind_host,
                r.port,
                r.api_keys.len()
            );
        }
        for (id, v) in &loaded.config.views {
            outln!(
                "view {id}: driver={}{}",
                v.driver,
                if v.disabled { " (disabled)" } else { "" }
            );
        }
        outln!(
            "pipes to start: {}",
            if pipes.is_empty() {
                "(none)".to_string()
            } else {
                pipes.join(", ")
            }
        );
    }
    if diags.iter().any(|d| d.fails_check()) {
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

//! Starting, reloading and stopping Fusion: configuration → views and pipes → HTTP listeners,
//! plus the periodic maintenance (session expiry, suspect expiry, job purge).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use fustor_core::Now;
use fustor_core::config::{
    Diagnostic, FusionConfig, KeyPath, Loaded, fusion_start_selection, load_fusion_dir,
    unknown_key, validate_fusion_with,
};
use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::http::{self, Metrics};
use crate::limits::Limits;
use crate::state::{Fusion, Generation};
use crate::tls::{TlsCell, TlsError, TlsSettings};

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("configuration: {0}")]
    Config(String),
    #[error("tls: {0}")]
    Tls(#[from] TlsError),
}

/// Command-line overrides of the configuration.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub host: Option<String>,
    pub port: Option<u16>,
    /// Which port counts as "main" when deciding whether a receiver is mounted on the main app,
    /// when it is not the bind port (tests bind port 0). `FUSTOR_FUSION_PORT` now sets the bind
    /// port itself (`port`), which the reference also treats as the main port.
    pub main_port_hint: Option<u16>,
}

/// Loads and validates; returns the configuration, the pipes to start and every diagnostic.
pub fn load(
    config_dir: &Path,
    args: &[String],
) -> (Loaded<FusionConfig>, Vec<String>, Vec<Diagnostic>) {
    let loaded = load_fusion_dir(config_dir);
    let mut diags = loaded.diagnostics.clone();
    diags.extend(validate_fusion_with(
        &loaded,
        &crate::drivers::view_driver_names(),
    ));
    check_limits(&loaded.config, &mut diags);
    check_sections(&loaded.config, &mut diags);
    if let Err(e) = crate::registry::keys::from_extra(&loaded.config.extra) {
        diags.push(Diagnostic::error(None, KeyPath::new(), e.to_string()));
    }
    let selection = fusion_start_selection(&loaded, args);
    for u in &selection.unknown {
        tracing::warn!(pipe = %u, "unknown pipe or file named on the command line; skipped");
    }
    (loaded, selection.pipes, diags)
}

/// `limits` is Fusion's own section, so Fusion checks it, with the very parser `start` uses
/// (`check-config` once accepted `max_body_bytes: "64MB"` that `start` then refused).
fn check_limits(cfg: &FusionConfig, diags: &mut Vec<Diagnostic>) {
    if let Err(e) = Limits::from_extra(&cfg.extra) {
        diags.push(Diagnostic::error(None, KeyPath::new(), e));
        return;
    }
    let known = serde_json::to_value(Limits::default()).ok();
    let known: Vec<&str> = match &known {
        Some(serde_json::Value::Object(m)) => m.keys().map(String::as_str).collect(),
        _ => return,
    };
    if let Some(serde_json::Value::Object(m)) = cfg.extra.get("limits") {
        let path = KeyPath::new().key("limits");
        for k in m.keys().filter(|k| !known.contains(&k.as_str())) {
            diags.push(unknown_key(None, &path, k, &known));
        }
    }
}

/// `tls` and `cors` are Fusion's own sections too: refused as a whole when malformed, so that
/// a typo never silently serves plain HTTP or opens the API to every origin.
fn check_sections(cfg: &FusionConfig, diags: &mut Vec<Diagnostic>) {
    if let Err(e) = TlsSettings::from_extra(&cfg.extra) {
        diags.push(Diagnostic::error(
            None,
            KeyPath::new().key("tls"),
            e.to_string(),
        ));
    }
    if let Err(e) = http::cors::CorsSettings::from_extra(&cfg.extra) {
        diags.push(Diagnostic::error(None, KeyPath::new().key("cors"), e));
    }
}

/// The home the relative `tls` paths start from: the configuration directory's parent.
fn home_of(config_dir: &Path) -> PathBuf {
    config_dir
        .parent()
        .map_or_else(|| config_dir.to_path_buf(), Path::to_path_buf)
}

/// Reads the certificate files off the async threads.
async fn load_tls(
    settings: TlsSettings,
    home: PathBuf,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    tokio::task::spawn_blocking(move || crate::tls::load(&settings, &home))
        .await
        .map_err(|e| TlsError::Config(format!("loading the certificate: {e}")))?
}

struct Listener {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

pub struct FusionServer {
    pub fusion: Arc<Fusion>,
    pub metrics: Arc<Metrics>,
    pub main_addr: SocketAddr,
    /// The listeners' TLS configuration, `None` for plain HTTP.
    pub tls: Option<Arc<TlsCell>>,
    config_dir: PathBuf,
    args: Vec<String>,
    overrides: Overrides,
    main: Mutex<Option<Listener>>,
    receivers: Mutex<HashMap<u16, Listener>>,
    maintenance: Mutex<Vec<JoinHandle<()>>>,
    /// One reload at a time: SIGHUP and the admin API's configuration changes both reload.
    reloading: tokio::sync::Mutex<()>,
}

fn log_diagnostics(diags: &[Diagnostic]) {
    for d in diags {
        if d.is_error() {
            tracing::error!("{d}");
        } else {
            tracing::warn!("{d}");
        }
    }
}

fn build(
    cfg: FusionConfig,
    pipes: &[String],
    config_dir: &Path,
) -> Result<(Generation, Limits), DaemonError> {
    let limits = Limits::from_extra(&cfg.extra).map_err(DaemonError::Config)?;
    let root = crate::persist::default_root(config_dir);
    let (generation, errors) = Generation::build_with(
        cfg,
        pipes,
        &limits,
        &crate::drivers::view_registry(),
        Some(&root),
    );
    for e in errors {
        tracing::error!("{e}; skipped");
    }
    Ok((generation, limits))
}

async fn listen(
    host: &str,
    port: u16,
    app: axum::Router,
    limits: Limits,
    tls: Option<Arc<TlsCell>>,
) -> Result<Listener, DaemonError> {
    let addr = format!("{host}:{port}");
    let listener = TcpListener::bind(&addr)
        .await
        .map_err(|source| DaemonError::Bind {
            addr: addr.clone(),
            source,
        })?;
    let local = listener
        .local_addr()
        .map_err(|source| DaemonError::Bind { addr, source })?;
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        if let Err(e) = http::serve(listener, app, &limits, tls, async {
            let _ = rx.await;
        })
        .await
        {
            tracing::error!(error = %e, "HTTP server failed");
        }
    });
    Ok(Listener {
        addr: local,
        stop: Some(tx),
        task,
    })
}

impl FusionServer {
    /// Loads `config_dir`, starts the selected pipes and every listener.
    pub async fn start(
        config_dir: &Path,
        args: &[String],
        overrides: Overrides,
    ) -> Result<Arc<FusionServer>, DaemonError> {
        let (loaded, pipes, diags) = load(config_dir, args);
        log_diagnostics(&diags);
        let mut cfg = loaded.config;
        if let Some(h) = &overrides.host {
            cfg.host = h.clone();
        }
        if let Some(p) = overrides.port {
            cfg.port = p;
        }
        let (host, port) = (cfg.host.clone(), cfg.port);
        let main_port = overrides.main_port_hint.unwrap_or(port);
        let tls = match TlsSettings::from_extra(&cfg.extra)? {
            Some(settings) => {
                let client_auth = settings.client_auth();
                let server_cfg = load_tls(settings, home_of(config_dir)).await?;
                Some(TlsCell::new(server_cfg, client_auth))
            }
            None => None,
        };
        let (generation, limits) = build(cfg, &pipes, config_dir)?;
        // Persisted views are loaded before any port opens: the first answer already has them.
        let stores = generation.stores.clone();
        let _ = tokio::task::spawn_blocking(move || crate::persist::open_all(&stores)).await;
        let fusion = Fusion::new(generation, limits, main_port);
        fusion.registry.fusion_config.set_dir(config_dir, args);
        let db_path = crate::persist::default_root(config_dir).join(crate::registry::FILE_NAME);
        let f = fusion.clone();
        let _ = tokio::task::spawn_blocking(move || f.registry.open(&db_path)).await;
        let metrics = Arc::new(Metrics::default());
        let shares_main = Self::receiver_ports(&fusion).contains(&main_port) && main_port != 0;
        let main = listen(
            &host,
            port,
            http::main_app(fusion.clone(), metrics.clone(), port, shares_main),
            fusion.limits.clone(),
            tls.clone(),
        )
        .await?;
        tracing::info!(addr = %main.addr, tls = tls.is_some(), "main API listening");
        let server = Arc::new(FusionServer {
            fusion,
            metrics,
            main_addr: main.addr,
            tls,
            config_dir: config_dir.to_path_buf(),
            args: args.to_vec(),
            overrides,
            main: Mutex::new(Some(main)),
            receivers: Mutex::new(HashMap::new()),
            maintenance: Mutex::new(Vec::new()),
            reloading: tokio::sync::Mutex::new(()),
        });
        server.sync_receivers().await?;
        server.start_maintenance();
        server.fusion.registry.fusion_config.attach(&server);
        // Off the start path: the first GET records the files anyway.
        let f = server.fusion.clone();
        tokio::spawn(async move { f.registry.record_fusion_files().await });
        Ok(server)
    }

    fn receiver_ports(fusion: &Fusion) -> Vec<u16> {
        let generation = fusion.current();
        let running: Vec<&str> = generation.pipes.keys().map(String::as_str).collect();
        generation
            .cfg
            .receiver_servers(running)
            .into_iter()
            .map(|r| r.port)
            .collect()
    }

    /// Starts listeners for receiver ports that are needed and not running, stops those no
    /// longer needed. Running listeners are kept: their handlers read the current generation,
    /// so a reload updates their key maps without re-binding (`pitfalls.md` 5).
    async fn sync_receivers(&self) -> Result<(), DaemonError> {
        let started = self.bind_receivers(&self.fusion.current()).await?;
        self.install_receivers(started);
        Ok(())
    }

    /// Binds the receiver ports `generation` needs that are not listening yet. A reload binds
    /// before it switches generations, so a port in use refuses the reload as a whole.
    async fn bind_receivers(
        &self,
        generation: &Generation,
    ) -> Result<Vec<(u16, Listener)>, DaemonError> {
        let running: Vec<&str> = generation.pipes.keys().map(String::as_str).collect();
        let wanted = generation.cfg.receiver_servers(running);
        let main_port = self.fusion.main_port;
        let mut started = Vec::new();
        for r in &wanted {
            if (r.port == main_port && main_port != 0)
                || self.receivers.lock().contains_key(&r.port)
            {
                continue;
            }
            let app = http::receiver_app(self.fusion.clone(), self.metrics.clone(), r.port);
            let l = listen(
                &r.bind_host,
                r.port,
                app,
                self.fusion.limits.clone(),
                self.tls.clone(),
            )
            .await?;
            tracing::info!(addr = %l.addr, receivers = ?r.receiver_ids, "receiver listening");
            started.push((r.port, l));
        }
        Ok(started)
    }

    /// Adds the listeners just bound and stops those the current generation no longer needs.
    fn install_receivers(&self, started: Vec<(u16, Listener)>) {
        let generation = self.fusion.current();
        let running: Vec<&str> = generation.pipes.keys().map(String::as_str).collect();
        let wanted = generation.cfg.receiver_servers(running);
        let mut receivers = self.receivers.lock();
        receivers.extend(started);
        let keep: Vec<u16> = wanted.iter().map(|r| r.port).collect();
        let stale: Vec<u16> = receivers
            .keys()
            .copied()
            .filter(|p| !keep.contains(p))
            .collect();
        for p in stale {
            if let Some(mut l) = receivers.remove(&p) {
                tracing::info!(addr = %l.addr, "receiver stopped: no pipe uses it any more");
                if let Some(tx) = l.stop.take() {
                    let _ = tx.send(());
                }
            }
        }
    }

    /// The bound address of the receiver configured on `port` (tests bind port 0).
    pub fn receiver_addr(&self, port: u16) -> Option<SocketAddr> {
        self.receivers.lock().get(&port).map(|l| l.addr)
    }

    fn start_maintenance(self: &Arc<Self>) {
        let mut tasks = self.maintenance.lock();
        let f = self.fusion.clone();
        let sweep = self.fusion.current().cfg.session_cleanup_interval.max(0.1);
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(fustor_core::time::duration_from_secs(sweep));
            loop {
                tick.tick().await;
                f.expire_sessions().await;
            }
        }));
        let f = self.fusion.clone();
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(crate::persist::CHECK_EVERY);
            loop {
                tick.tick().await;
                let stores = f.current().stores.clone();
                if !stores.is_empty() {
                    let _ =
                        tokio::task::spawn_blocking(move || crate::persist::snapshot_due(&stores))
                            .await;
                }
            }
        }));
        let f = self.fusion.clone();
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(crate::registry::FLUSH_EVERY);
            loop {
                tick.tick().await;
                f.registry.flush().await;
            }
        }));
        let f = self.fusion.clone();
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            let mut n: u64 = 0;
            loop {
                tick.tick().await;
                n += 1;
                f.expire_suspects().await;
                if n % 120 == 0 {
                    let epoch = Now::system().epoch;
                    f.jobs.purge(epoch);
                    f.purge_routes(epoch);
                }
            }
        }));
    }

    /// SIGHUP: rebuild views and pipes from the files (all view state is discarded and every
    /// session ends, as in the reference), keep listeners that are still needed.
    pub async fn reload(&self) -> Result<(), DaemonError> {
        let _one = self.reloading.lock().await;
        let (loaded, pipes, diags) = load(&self.config_dir, &self.args);
        log_diagnostics(&diags);
        // At start a broken file is skipped so the rest can run; at reload the previous
        // configuration is running, and dropping every pipe of a file with a typo would be worse
        // than keeping it until the file is fixed.
        let errors = diags.iter().filter(|d| d.is_error()).count();
        if errors > 0 {
            return Err(DaemonError::Config(format!(
                "{errors} error(s) in the configuration; the previous configuration keeps running"
            )));
        }
        self.reload_tls(&loaded.config).await?;
        let mut cfg = loaded.config;
        if let Some(h) = &self.overrides.host {
            cfg.host = h.clone();
        }
        if let Some(p) = self.overrides.port {
            cfg.port = p;
        }
        let (generation, _) = build(cfg, &pipes, &self.config_dir)?;
        // A port that cannot be bound refuses the reload before anything is switched (the
        // listeners bound so far close when dropped): the previous configuration keeps running.
        let started = self.bind_receivers(&generation).await?;
        self.fusion.replace(generation).await;
        self.install_receivers(started);
        tracing::info!(pipes = ?pipes, "configuration reloaded");
        self.fusion.registry.record_fusion_files().await;
        Ok(())
    }

    /// Re-reads the certificate, key and client CA: connections opened from now on use them.
    async fn reload_tls(&self, cfg: &FusionConfig) -> Result<(), DaemonError> {
        let settings = TlsSettings::from_extra(&cfg.extra)?;
        match (&self.tls, settings) {
            (None, None) => Ok(()),
            (Some(cell), Some(settings)) => {
                let client_auth = settings.client_auth();
                let server_cfg = load_tls(settings, home_of(&self.config_dir)).await?;
                cell.replace(server_cfg, client_auth);
                tracing::info!("TLS certificate reloaded");
                Ok(())
            }
            _ => Err(TlsError::Config(
                "switching between HTTP and HTTPS needs a restart of Fusion".into(),
            )
            .into()),
        }
    }

    /// Graceful stop: end every session (agents reconnect elsewhere or later), let pipes drain
    /// what they accepted, close the listeners.
    pub async fn shutdown(&self) {
        for t in self.maintenance.lock().drain(..) {
            t.abort();
        }
        let mut listeners: Vec<Listener> = self.receivers.lock().drain().map(|(_, l)| l).collect();
        listeners.extend(self.main.lock().take());
        for l in listeners.iter_mut() {
            if let Some(tx) = l.stop.take() {
                let _ = tx.send(());
            }
        }
        let generation = self.fusion.current();
        for p in generation.pipes.values() {
            if let Err(e) = p.pipe.drain(Duration::from_secs(10)).await {
                tracing::warn!(error = %e, "pipe not drained at shutdown");
            }
        }
        // A final snapshot makes the next start fast; then the logs close, so the session ends
        // below (which empty the views) are not recorded.
        let stores = generation.stores.clone();
        let _ = tokio::task::spawn_blocking(move || crate::persist::close_all(&stores, true)).await;
        self.fusion
            .end_all_sessions(crate::service::EndReason::Shutdown)
            .await;
        self.fusion.registry.flush().await;
        for l in listeners {
            let _ = tokio::time::timeout(Duration::from_secs(5), l.task).await;
        }
    }
}

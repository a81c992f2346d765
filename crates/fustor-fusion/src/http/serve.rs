//! Serving one listening port with hyper directly, because `axum::serve` gives hyper no timer
//! (so no header timeout ever fires) and accepts connections without bound.
//!
//! Each port has its own connection budget: an attack that fills a receiver port leaves the
//! query port answering. Header reads are timed (that also closes idle keep-alive connections:
//! waiting for the next request is waiting for its headers); body reads are timed by the
//! handlers ([`super::body`]).
//!
//! With TLS the handshake runs in the connection's task under the header timeout, so a client
//! that stalls it holds one connection slot, never the accept loop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower_service::Service;

use crate::tls::TlsCell;

/// How one port is served.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
    /// HTTPS when set: the server configuration current at each accept.
    pub tls: Option<Arc<TlsCell>>,
}

/// What a request's connection proved about its client, for the agent routes
/// ([`super::client_cert`]): every request carries it.
#[derive(Debug, Clone, Copy)]
pub struct ClientCert {
    /// The listener asks for client certificates (`tls.client_ca_file`).
    pub required: bool,
    /// The client presented a certificate that the client CA verified.
    pub verified: bool,
}

/// Largest read buffer of a connection, hence the largest request head (431 past it). hyper's
/// default (~400 KB) lets every held connection pin that much with one endless header; agents
/// send a few hundred bytes of headers.
const READ_BUFFER_MAX: usize = 64 << 10;
/// How long in-flight requests may run after shutdown was asked for.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Pause after a failed `accept` (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// A warning logged at most once per period, with the number of occurrences it stands for.
struct RateLimited {
    period: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimited {
    fn new(period: Duration) -> Self {
        RateLimited {
            period,
            last: None,
            suppressed: 0,
        }
    }

    /// Counts one occurrence; returns how many to report if a line is due now.
    fn hit(&mut self) -> Option<u64> {
        self.suppressed += 1;
        let due = self.last.is_none_or(|t| t.elapsed() >= self.period);
        if !due {
            return None;
        }
        self.last = Some(Instant::now());
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// The connection budget actually used: a quarter of the open-file limit at most, so that one
/// port cannot take every descriptor of the process.
fn effective_limit(configured: usize) -> usize {
    let nofile = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    match nofile.and_then(|n| usize::try_from(n / 4).ok()) {
        Some(quarter) => configured.min(quarter.max(16)),
        None => configured,
    }
    .max(1)
}

/// The per-connection service: the app, with the peer address and what TLS proved.
fn service(
    app: Router,
    peer: SocketAddr,
    client: ClientCert,
) -> impl hyper::service::Service<
    hyper::Request<Incoming>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone {
    hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
        req.extensions_mut().insert(client);
        let mut app = app.clone();
        async move { app.call(req).await }
    })
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets open requests finish (for
/// a few seconds at most).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    opts: ServeOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let port = listener.local_addr()?.port();
    let limit = effective_limit(opts.max_connections);
    let slots = Arc::new(Semaphore::new(limit));
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(opts.header_read_timeout)
        .max_buf_size(READ_BUFFER_MAX);
    let mut refused = RateLimited::new(Duration::from_secs(10));
    let mut failed = RateLimited::new(Duration::from_secs(10));
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    if let Some(n) = failed.hit() {
                        tracing::warn!(port, error = %e, failures = n, "accepting a connection failed");
                    }
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            drop(stream);
            if let Some(n) = refused.hit() {
                tracing::warn!(
                    port,
                    limit,
                    refused = n,
                    "connection limit reached; new connections are closed"
                );
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let tls = opts.tls.clone();
        let handshake_timeout = opts.header_read_timeout;
        tokio::spawn(async move {
            let served = match tls {
                None => {
                    let client = ClientCert {
                        required: false,
                        verified: false,
                    };
                    let conn =
                        builder.serve_connection(TokioIo::new(stream), service(app, peer, client));
                    watcher.watch(conn).await
                }
                Some(tls) => {
                    let (acceptor, client_auth) = tls.acceptor();
                    let accept = acceptor.accept(stream);
                    let stream = match tokio::time::timeout(handshake_timeout, accept).await {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(port, %peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(port, %peer, "TLS handshake timed out");
                            return;
                        }
                    };
                    let client = ClientCert {
                        required: client_auth,
                        verified: stream.get_ref().1.peer_certificates().is_some(),
                    };
                    let conn =
                        builder.serve_connection(TokioIo::new(stream), service(app, peer, client));
                    watcher.watch(conn).await
                }
            };
            if let Err(e) = served {
                tracing::debug!(error = %e, "connection closed with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            port,
            "connections still open after the shutdown grace period"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limited_warnings_count_what_they_hide() {
        let mut r = RateLimited::new(Duration::from_secs(3600));
        assert_eq!(r.hit(), Some(1));
        assert_eq!(r.hit(), None);
        assert_eq!(r.hit(), None);
        r.last = Some(Instant::now() - Duration::from_secs(7200));
        assert_eq!(r.hit(), Some(3));
        assert!(effective_limit(5) <= 5);
    }
}

//! The relay's own accept loop, so that slow or idle clients cannot exhaust it. `axum::serve`
//! sets no header-read timeout and accepts without bound, so a few hundred connections that send
//! half a request line and then nothing (slowloris) would hold every file descriptor until the
//! process could not even answer `/healthz`. Here:
//! - every connection needs a permit from a semaphore sized below the open-file limit, so the
//!   relay always keeps descriptors for its database, WHOOP calls and the listener itself; past
//!   the cap, new connections wait in the kernel's backlog instead of failing;
//! - HTTP/1.1 only, with hyper's header-read timeout (also for the wait for the next request on
//!   a kept-alive connection), so a connection that does not finish its headers in time is closed
//!   and its permit freed;
//! - running out of descriptors anyway (EMFILE/ENFILE on accept) pauses accepting briefly instead
//!   of spinning or stopping the server.
//!
//! Body-read timeouts are the router's job (`server::bounded_body`), because only it knows which
//! routes stream.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::response::Response;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tower::ServiceExt as _;

/// Descriptors kept back from the connection cap for everything that is not a client
/// connection: the database pool, calls to WHOOP, the listeners, logs.
pub const RESERVED_FDS: u64 = 128;
/// The cap is never below this, even under a tiny descriptor limit.
const MIN_CONNECTIONS: usize = 32;
/// How long accepting pauses after the process ran out of descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// How one listener treats its connections.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
}

/// The process's soft limit on open files (`RLIMIT_NOFILE`), if it can be read.
pub fn open_files_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit only writes the struct it is given, which lives on this stack.
        let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
        if rc == 0 && limit.rlim_cur != libc::RLIM_INFINITY {
            return Some(limit.rlim_cur);
        }
        None
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The default connection cap: what the descriptor limit allows after the reserve, and never
/// more than 65,536 (each connection costs a task and buffers even when idle).
pub fn default_max_connections() -> usize {
    let by_fds = open_files_limit()
        .map(|n| n.saturating_sub(RESERVED_FDS))
        .unwrap_or(65_536);
    (by_fds.min(65_536) as usize).max(MIN_CONNECTIONS)
}

fn out_of_descriptors(err: &std::io::Error) -> bool {
    #[cfg(unix)]
    {
        matches!(err.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
    }
    #[cfg(not(unix))]
    {
        let _ = err;
        false
    }
}

/// Serves `app` on `listener` until `stop` turns true, then lets open requests finish for at
/// most `drain` before returning. Each request carries `ConnectInfo<SocketAddr>` of its peer.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    mut stop: watch::Receiver<bool>,
    drain: Duration,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let mut warned_full = false;
    loop {
        // A permit first: past the cap the next client waits in the backlog, not in memory.
        let permit = tokio::select! {
            p = Arc::clone(&permits).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = stopping(&mut stop) => break,
        };
        if permits.available_permits() == 0 && !warned_full {
            tracing::warn!(
                max = limits.max_connections,
                "connection cap reached; new connections wait"
            );
        }
        warned_full = permits.available_permits() == 0;
        let (socket, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(err) if out_of_descriptors(&err) => {
                    tracing::warn!(error = %err, "out of file descriptors; pausing accept");
                    drop(permit);
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
                Err(err) => {
                    // ECONNABORTED and friends concern one client, not the listener.
                    tracing::debug!(error = %err, "accept failed");
                    drop(permit);
                    continue;
                }
            },
            _ = stopping(&mut stop) => break,
        };
        let _ = socket.set_nodelay(true);
        let router = app.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            let router = router.clone();
            // Boxed: hyper keeps a slot the size of this future for the connection's whole life
            // (`Box<Option<S::Future>>`), so an unboxed router future would cost every idle
            // event stream its full size long after the response was made.
            let call: Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>> = Box::pin(
                async move { Ok(router.oneshot(req).await.unwrap_or_else(|e| match e {})) },
            );
            call
        });
        let conn = builder.serve_connection(TokioIo::new(socket), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            // Timeouts and resets are the client's business; nothing to report.
            let _ = conn.await;
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::info!("requests still open after the drain; stopping anyway");
    }
}

/// Resolves once `stop` turns true (or its sender is gone); the watch guard stays inside.
async fn stopping(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_room_for_everything_else() {
        let cap = default_max_connections();
        assert!(cap >= MIN_CONNECTIONS);
        if let Some(limit) = open_files_limit() {
            assert!(
                cap as u64
                    <= limit
                        .saturating_sub(RESERVED_FDS)
                        .max(MIN_CONNECTIONS as u64)
            );
        }
    }

    #[test]
    fn emfile_is_recognised() {
        assert!(out_of_descriptors(&std::io::Error::from_raw_os_error(
            libc::EMFILE
        )));
        assert!(!out_of_descriptors(&std::io::Error::from_raw_os_error(
            libc::ECONNABORTED
        )));
    }
}

//! The API's HTTP/1.1 server: hyper driven by hand instead of
//! `axum::serve`, for two bounds that one lacks. A client must send its
//! request head within a deadline (a slow or half-sent request is closed,
//! not held), and only so many connections are open at once (past that a
//! new one is closed as soon as it is accepted), so local programs or
//! pages cannot pile up sockets and memory in the agent.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Largest request head and read buffer per connection (hyper's floor is
/// 8 KiB; its default, about 400 KiB, is far more than the API needs).
const MAX_BUF_BYTES: usize = 64 * 1024;

/// How the server bounds its clients.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    /// A request's head must arrive within this.
    pub header_read_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
}

/// Serves `router` on `listener` until `shutdown` resolves; open
/// connections are then dropped.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut connections = JoinSet::new();
    let mut backoff = engine::AcceptBackoff::default();
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            () = &mut shutdown => break,
            accepted = backoff.accept(&listener, "an API connection") => accepted,
            // Reap finished connections so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            // Full: close this one at once rather than queue it.
            drop(stream);
            continue;
        };
        let service = TowerToHyperService::new(router.clone());
        connections.spawn(async move {
            let _slot = slot;
            let _ = stream.set_nodelay(true);
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .max_buf_size(MAX_BUF_BYTES)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = connection.await {
                tracing::debug!("an API connection ended: {e}");
            }
        });
    }
    connections.shutdown().await;
}

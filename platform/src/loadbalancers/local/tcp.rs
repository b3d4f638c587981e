//! TCP listeners: each accepted connection is spliced to a picked target.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::pool::{Lease, Pool};
use super::{ACCEPT_BACKOFF, CONNECT_TIMEOUT};

/// Accepts until `stop`; connections end with it too.
pub(super) async fn serve(
    listener: TcpListener,
    target_port: u16,
    pool: Arc<Pool>,
    stop: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (client, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: back off, keep the
                // listener.
                tracing::warn!(error = %e, "load balancer could not accept a connection");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let pool = pool.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = splice(client, peer, target_port, &pool) => {}
            }
        });
    }
}

async fn splice(mut client: TcpStream, peer: SocketAddr, target_port: u16, pool: &Pool) {
    let _ = client.set_nodelay(true);
    let Some((mut upstream, _lease)) = connect(target_port, pool).await else {
        tracing::debug!(%peer, "load balancer has no target to take a connection");
        return;
    };
    if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
        tracing::debug!(%peer, error = %e, "load balancer connection ended");
    }
}

/// A connection to a picked target; a target that refuses (died since its
/// last check) is retried once on another, so the client never sees it.
async fn connect(target_port: u16, pool: &Pool) -> Option<(TcpStream, Lease)> {
    let mut avoid = None;
    for _ in 0..2 {
        let lease = pool.pick(avoid)?;
        let at = SocketAddr::new(lease.address(), target_port);
        match dial(at, CONNECT_TIMEOUT).await {
            Ok(stream) => return Some((stream, lease)),
            Err(e) => {
                tracing::debug!(target = %at, error = %e, "load balancer target refused a connection");
                avoid = Some(lease.address());
            }
        }
    }
    None
}

pub(super) async fn dial(at: SocketAddr, timeout: Duration) -> std::io::Result<TcpStream> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect(at))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

//! Local stand-ins for the providers Loopback calls, for tests: each speaks
//! the provider's documented request and response shapes over HTTP on a
//! loopback port, keeps its state in memory, and can be told to fail.

pub mod cloudflare;
pub mod hetzner_cloud;
pub mod hetzner_robot;
pub mod ionos;

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A loopback port a fake is about to serve on; its address is known
/// before the routes are built (some fakes put it in their answers).
struct Port {
    listener: TcpListener,
    addr: SocketAddr,
}

impl Port {
    async fn free(fake: &str) -> Port {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{fake} needs a free loopback port: {e}"));
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        Port { listener, addr }
    }

    fn serve(self, app: axum::Router) -> Serving {
        let task = tokio::spawn(async move {
            let _ = axum::serve(self.listener, app).await;
        });
        Serving {
            addr: self.addr,
            task,
        }
    }
}

/// A fake's HTTP server, stopped when dropped.
struct Serving {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.task.abort();
    }
}

//! The outgoing side of the portal link.
//!
//! Every connection has one writer task fed by a bounded channel (an
//! [`Outbox`]); producers that outrun the socket wait on the channel, which is
//! how back-pressure reaches a PTY reader. The channel dies with its
//! connection, so a sender holding an old outbox learns that the link went
//! away from the failed send. [`Link`] names the outbox of the connection that
//! is up right now, if any, for messages that are not tied to one connection.

use std::sync::Arc;

use protocol::agent::AgentMessage;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// Messages queued per connection before producers wait: at most this many
/// 32 KiB shell chunks sit in memory per link.
pub const OUTBOX_CAPACITY: usize = 64;

/// One item for the writer task.
// Heartbeats make the message variant ~230 bytes; the outbox holds at most
// OUTBOX_CAPACITY of them, so boxing every message would cost an allocation
// per frame to save a few kilobytes per link.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Outgoing {
    /// A JSON text frame.
    Message(AgentMessage),
    /// A binary frame already encoded as a `ShellFrame`.
    Frame(Vec<u8>),
}

/// The queue of one connection's writer task.
pub type Outbox = mpsc::Sender<Outgoing>;

/// The current connection's outbox, shared by everything that reports to
/// the portal outside a shell session's attachment.
#[derive(Clone)]
pub struct Link {
    current: Arc<watch::Sender<Option<Outbox>>>,
}

impl Default for Link {
    fn default() -> Self {
        Self::new()
    }
}

impl Link {
    pub fn new() -> Self {
        Self {
            current: Arc::new(watch::Sender::new(None)),
        }
    }

    /// The outbox of the live connection, if there is one.
    pub fn current(&self) -> Option<Outbox> {
        self.current.borrow().clone()
    }

    /// Publishes (or, with `None`, withdraws) a connection's outbox. The
    /// connection does this; harnesses driving [`crate::shell::Shells`]
    /// without a socket may too.
    pub fn set(&self, outbox: Option<Outbox>) {
        self.current.send_replace(outbox);
    }

    /// Sends on the live connection; `false` (and the message is dropped)
    /// when there is none or it just went away.
    pub async fn send(&self, message: AgentMessage) -> bool {
        match self.current() {
            Some(outbox) => outbox.send(Outgoing::Message(message)).await.is_ok(),
            None => false,
        }
    }

    /// Sends once a connection is up, for results the portal must not miss
    /// (a command's exit). Gives up when `stop` fires.
    pub async fn send_when_connected(&self, message: AgentMessage, stop: &CancellationToken) {
        let mut changes = self.current.subscribe();
        let mut message = Outgoing::Message(message);
        loop {
            let outbox = {
                let wait = changes.wait_for(Option::is_some);
                tokio::select! {
                    () = stop.cancelled() => return,
                    current = wait => match current {
                        Ok(current) => current.clone(),
                        // The sender lives as long as the agent; without it
                        // there is nothing left to report to.
                        Err(_) => return,
                    },
                }
            };
            let Some(outbox) = outbox else { continue };
            match outbox.send(message).await {
                Ok(()) => return,
                // That connection died between the lookup and the send; wait
                // for the next one.
                Err(mpsc::error::SendError(back)) => {
                    message = back;
                    if self.current().is_some_and(|now| now.same_channel(&outbox)) {
                        self.set(None);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::agent::ShellSessionId;
    use std::time::Duration;

    fn message() -> AgentMessage {
        AgentMessage::ShellFailed {
            session: ShellSessionId(Default::default()),
            error: "x".into(),
        }
    }

    #[tokio::test]
    async fn send_drops_without_a_link_and_delivers_with_one() {
        let link = Link::new();
        assert!(!link.send(message()).await);
        let (tx, mut rx) = mpsc::channel(4);
        link.set(Some(tx));
        assert!(link.send(message()).await);
        assert_eq!(rx.recv().await, Some(Outgoing::Message(message())));
    }

    #[tokio::test]
    async fn send_when_connected_waits_for_the_next_link() {
        let link = Link::new();
        let stop = CancellationToken::new();
        let waiting = tokio::spawn({
            let link = link.clone();
            let stop = stop.clone();
            async move { link.send_when_connected(message(), &stop).await }
        });
        // A link that dies before the send must not swallow the message.
        let (dead, dead_rx) = mpsc::channel(1);
        drop(dead_rx);
        link.set(Some(dead));
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (tx, mut rx) = mpsc::channel(4);
        link.set(Some(tx));
        let got = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("delivered in time");
        assert_eq!(got, Some(Outgoing::Message(message())));
        waiting.await.expect("task ends");
    }
}

//! The organization's notification channels (email, signed webhook, Slack,
//! Teams) and the deliveries of notifications to them, retried with
//! backoff.
//!
//! - [`channels`] validates, seals and stores channel settings.
//! - [`queue`] writes notifications (in the alerting transaction) and lists
//!   and retries deliveries.
//! - [`deliver`] claims due notifications and sends them; [`render`] shapes
//!   the Slack, Teams and email bodies and signs webhook bodies.

mod channels;
mod deliver;
mod queue;
mod render;

pub use channels::{create_channel, delete_channel, list_channels, update_channel};
pub use deliver::{deliver_due, delivery};
pub use queue::{deliveries, enqueue, retry, send_test};
pub use render::signature;

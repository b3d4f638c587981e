//! Local stand-ins for the providers Loopback calls, for tests: each speaks
//! the provider's documented request and response shapes over HTTP on a
//! loopback port, keeps its state in memory, and can be told to fail.

pub mod cloudflare;
pub mod hetzner_cloud;
pub mod hetzner_robot;
pub mod ionos;

//! Wire types shared by the portal, the host agent and the browser.
//!
//! Everything here compiles to wasm32 as well as to the host. The `server`
//! feature adds what only the portal needs (database encoding, id generation).

pub mod agent;
pub mod ids;
pub mod names;
pub mod views;

use serde::{Deserialize, Serialize};

/// Version of the agent ⇄ portal protocol. The portal refuses agents that speak
/// a version it does not know, instead of misreading their messages.
pub const AGENT_PROTOCOL_VERSION: u32 = 1;

/// The build a component reports about itself (portal, agent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildInfo {
    pub name: String,
    pub version: String,
}

impl BuildInfo {
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_info_keeps_its_field_names_on_the_wire() {
        let info = BuildInfo::new("loopback-agent", "0.1.0");
        let json = serde_json::to_string(&info).expect("serialises");
        assert_eq!(json, r#"{"name":"loopback-agent","version":"0.1.0"}"#);
        let back: BuildInfo = serde_json::from_str(&json).expect("deserialises");
        assert_eq!(back, info);
    }
}

//! Kubeconfig files for the simulator and its tenants.

use base64::Engine;
use serde_json::json;

use crate::error::Error;

pub(crate) struct Kubeconfig<'a> {
    pub cluster: &'a str,
    pub user: &'a str,
    pub context: &'a str,
    pub server: &'a str,
    pub ca_pem: &'a str,
    pub token: &'a str,
}

impl Kubeconfig<'_> {
    pub fn render(&self) -> Result<String, Error> {
        let ca = base64::engine::general_purpose::STANDARD.encode(self.ca_pem);
        let config = json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{
                "name": self.cluster,
                "cluster": {"server": self.server, "certificate-authority-data": ca},
            }],
            "users": [{"name": self.user, "user": {"token": self.token}}],
            "contexts": [{
                "name": self.context,
                "context": {"cluster": self.cluster, "user": self.user},
            }],
            "current-context": self.context,
            "preferences": {},
        });
        Ok(serde_yaml::to_string(&config)?)
    }
}

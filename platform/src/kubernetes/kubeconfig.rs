//! The kubeconfigs customers download: the admin one Kamaji produced, with
//! the server moved to the workspace's DNS name and friendly names, and the
//! OIDC one whose user logs in through kubelogin.

use serde_json::{Value, json};

/// What provisioning learned from Kamaji's admin kubeconfig.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminKubeconfig {
    /// `https://10.0.0.5:6443` as Kamaji wrote it.
    pub server: url::Url,
    pub ca_data: String,
    document: Value,
}

impl AdminKubeconfig {
    pub fn parse(yaml: &str) -> Result<Self, String> {
        let document: Value =
            serde_yaml::from_str(yaml).map_err(|e| format!("unreadable kubeconfig: {e}"))?;
        let cluster = document["clusters"]
            .get(0)
            .map(|c| &c["cluster"])
            .ok_or("the kubeconfig names no cluster")?;
        let server = cluster["server"]
            .as_str()
            .ok_or("the kubeconfig's cluster has no server")?;
        let server =
            url::Url::parse(server).map_err(|e| format!("bad server URL {server}: {e}"))?;
        let ca_data = cluster["certificate-authority-data"]
            .as_str()
            .ok_or("the kubeconfig's cluster has no certificate-authority-data")?
            .to_string();
        Ok(Self {
            server,
            ca_data,
            document,
        })
    }

    /// The API server's address (for the DNS record).
    pub fn address(&self) -> Option<std::net::IpAddr> {
        match self.server.host()? {
            url::Host::Ipv4(ip) => Some(ip.into()),
            url::Host::Ipv6(ip) => Some(ip.into()),
            url::Host::Domain(d) => d.parse().ok(),
        }
    }

    pub fn port(&self) -> u16 {
        self.server.port_or_known_default().unwrap_or(6443)
    }

    /// The same credentials with the cluster at `endpoint` (or, when the
    /// name is not published in DNS, at the address with TLS checking the
    /// name) and cluster, user and context named after the workspace.
    pub fn for_download(&self, workspace: &str, endpoint: &Endpoint) -> Result<String, String> {
        let user = self.document["users"]
            .get(0)
            .map(|u| u["user"].clone())
            .ok_or("the kubeconfig names no user")?;
        let user_name = format!("{workspace}-admin");
        let document = json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{ "name": workspace, "cluster": endpoint.cluster(&self.ca_data, &self.server) }],
            "users": [{ "name": user_name, "user": user }],
            "contexts": [{ "name": user_name, "context": { "cluster": workspace, "user": user_name } }],
            "current-context": user_name,
            "preferences": {},
        });
        serde_yaml::to_string(&document).map_err(|e| e.to_string())
    }
}

/// Where customers reach a workspace's API server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `<workspace-id>.k8s.<management-domain>`
    pub dns_name: String,
    pub port: u16,
    /// Whether the name resolves (a DNS provider published it).
    pub published: bool,
}

impl Endpoint {
    pub fn url(&self) -> String {
        format!("https://{}:{}", self.dns_name, self.port)
    }

    fn cluster(&self, ca_data: &str, address: &url::Url) -> Value {
        if self.published {
            json!({ "server": self.url(), "certificate-authority-data": ca_data })
        } else {
            json!({ "server": address.as_str().trim_end_matches('/'),
                    "tls-server-name": self.dns_name,
                    "certificate-authority-data": ca_data })
        }
    }
}

/// The OIDC kubeconfig: the cluster entry of the workspace's admin download
/// (the same server, CA and TLS name), with a user that logs in with the
/// identity provider through the kubelogin plugin (`kubectl oidc-login`),
/// as kubelogin documents it.
pub fn oidc(
    download: &str,
    workspace: &str,
    client_id: &str,
    issuer: &str,
) -> Result<String, String> {
    let download: Value =
        serde_yaml::from_str(download).map_err(|e| format!("unreadable kubeconfig: {e}"))?;
    let cluster = download["clusters"]
        .get(0)
        .map(|c| c["cluster"].clone())
        .ok_or("the kubeconfig names no cluster")?;
    let user = format!("{workspace}-oidc");
    let document = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{ "name": workspace, "cluster": cluster }],
        "users": [{ "name": user, "user": { "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": "kubectl",
            "args": [
                "oidc-login",
                "get-token",
                format!("--oidc-issuer-url={issuer}"),
                format!("--oidc-client-id={client_id}"),
                "--oidc-extra-scope=email",
                "--oidc-extra-scope=groups",
            ],
            "interactiveMode": "IfAvailable",
            "provideClusterInfo": false,
        }}}],
        "contexts": [{ "name": user, "context": { "cluster": workspace, "user": user } }],
        "current-context": user,
        "preferences": {},
    });
    serde_yaml::to_string(&document).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KAMAJI: &str = "apiVersion: v1
kind: Config
clusters:
- name: tenant
  cluster:
    server: https://127.1.0.7:6443
    certificate-authority-data: Q0E=
users:
- name: kubernetes-admin
  user:
    token: abc
contexts:
- name: kubernetes-admin@tenant
  context: {cluster: tenant, user: kubernetes-admin}
current-context: kubernetes-admin@tenant
";

    #[test]
    fn the_download_points_at_the_workspace_name() {
        let admin = AdminKubeconfig::parse(KAMAJI).unwrap();
        assert_eq!(admin.address(), Some("127.1.0.7".parse().unwrap()));
        let endpoint = Endpoint {
            dns_name: "w1.k8s.example.com".into(),
            port: admin.port(),
            published: true,
        };
        let yaml = admin.for_download("prod", &endpoint).unwrap();
        let parsed = kube::config::Kubeconfig::from_yaml(&yaml).unwrap();
        let cluster = parsed.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(
            cluster.server.as_deref(),
            Some("https://w1.k8s.example.com:6443")
        );
        assert_eq!(parsed.current_context.as_deref(), Some("prod-admin"));
        let raw: serde_json::Value = serde_yaml::from_str(&yaml).unwrap();
        assert_eq!(raw["users"][0]["user"]["token"], "abc");

        let unpublished = Endpoint {
            published: false,
            ..endpoint
        };
        let yaml = admin.for_download("prod", &unpublished).unwrap();
        let parsed = kube::config::Kubeconfig::from_yaml(&yaml).unwrap();
        let cluster = parsed.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(cluster.server.as_deref(), Some("https://127.1.0.7:6443"));
        assert_eq!(
            cluster.tls_server_name.as_deref(),
            Some("w1.k8s.example.com")
        );
    }

    #[test]
    fn the_oidc_user_runs_kubelogin() {
        let admin = AdminKubeconfig::parse(KAMAJI).unwrap();
        let endpoint = Endpoint {
            dns_name: "w1.k8s.example.com".into(),
            port: 6443,
            published: false,
        };
        let download = admin.for_download("prod", &endpoint).unwrap();
        let yaml = oidc(&download, "prod", "w1", "https://login.example.com").unwrap();
        let parsed = kube::config::Kubeconfig::from_yaml(&yaml).unwrap();
        // The same cluster as the admin download, TLS name included.
        let cluster = parsed.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(cluster.server.as_deref(), Some("https://127.1.0.7:6443"));
        assert_eq!(
            cluster.tls_server_name.as_deref(),
            Some("w1.k8s.example.com")
        );
        let exec = parsed.auth_infos[0]
            .auth_info
            .as_ref()
            .unwrap()
            .exec
            .as_ref()
            .unwrap();
        assert_eq!(
            exec.api_version.as_deref(),
            Some("client.authentication.k8s.io/v1")
        );
        assert_eq!(exec.command.as_deref(), Some("kubectl"));
        let args = exec.args.clone().unwrap();
        assert_eq!(&args[..2], ["oidc-login", "get-token"]);
        assert!(args.contains(&"--oidc-client-id=w1".to_string()));
        assert!(args.contains(&"--oidc-issuer-url=https://login.example.com".to_string()));
    }
}

//! A portal with the `local` provider whose hosts are real agent processes,
//! a verified organization with a project, and an account API key: what the
//! hosts and load balancer tests start from.

use std::time::{Duration, Instant};

use platform::tenancy::{organizations, projects};
use protocol::views::{HostDetails, HostState, OrderedHost, Verification};
use sqlx::PgPool;

use super::{Launch, Portal, fresh_database};

pub struct LocalPortal {
    pub portal: Portal,
    pub db: PgPool,
    pub alice: platform::authz::Actor,
    pub key: String,
    pub base: String,
    pub client: reqwest::Client,
    pub project: protocol::ids::ProjectId,
}

/// Starts the portal with local hosts (heartbeat every second) and whatever
/// `configure` adds to its command line.
pub async fn start(configure: impl FnOnce(Launch) -> Launch) -> LocalPortal {
    let url = fresh_database().await;
    let launch = Launch::with_database(url.clone())
        .arg("--local-hosts")
        .arg("--agent-bin")
        .arg(super::agent_bin().to_str().unwrap())
        .arg("--agent-heartbeat-secs")
        .arg("1");
    let mut portal = configure(launch).spawn();
    portal.ready().await;
    let base = portal.url("");
    let db = PgPool::connect(&url).await.unwrap();
    let op = super::signed_up(&db, "op@example.com", true).await;
    let alice = super::signed_up(&db, "alice@example.com", false).await;
    let org = organizations::create(&db, &alice, "Acme").await.unwrap();
    organizations::set_verification(&db, &op, org.id, Verification::Verified, "")
        .await
        .unwrap();
    let project = projects::create(&db, &alice, org.id, "Web").await.unwrap();
    let key = platform::identity::api_keys::create(&db, &alice, "automation", None)
        .await
        .unwrap()
        .secret;
    LocalPortal {
        portal,
        db,
        alice,
        key,
        base,
        client: reqwest::Client::new(),
        project: project.id,
    }
}

impl LocalPortal {
    /// Stops the portal; the local hosts' agents exit once their token
    /// files are gone.
    pub fn stop(&self) {
        self.portal.signal(nix::sys::signal::Signal::SIGTERM);
        let _ = std::fs::remove_dir_all(self.portal.data_dir.join("hosts"));
    }

    /// Creates a workspace over REST and waits until it is active; returns
    /// its id and its workspace API key.
    pub async fn workspace(&self, body: serde_json::Value) -> (String, String) {
        let created: serde_json::Value = self
            .client
            .post(format!(
                "{}/api/v1/projects/{}/workspaces",
                self.base, self.project
            ))
            .bearer_auth(&self.key)
            .json(&body)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = created["workspace"]["id"].as_str().unwrap().to_string();
        let api_key = created["api_key"].as_str().unwrap().to_string();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let state: String =
                sqlx::query_scalar("SELECT state::text FROM workspaces WHERE id = $1::uuid")
                    .bind(&id)
                    .fetch_one(&self.db)
                    .await
                    .unwrap();
            if state == "active" {
                return (id, api_key);
            }
            assert!(Instant::now() < deadline, "the workspace stayed {state}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// A host as `GET /api/v1/hosts/{id}` shows it.
    pub async fn host(&self, id: &str) -> HostDetails {
        self.client
            .get(format!("{}/api/v1/hosts/{id}", self.base))
            .bearer_auth(&self.key)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Orders a host of the local profile and waits until it runs online.
    pub async fn running_host(&self, workspace: &str, hostname: &str) -> HostDetails {
        let profile: uuid::Uuid =
            sqlx::query_scalar("SELECT id FROM compute_profiles WHERE provider_kind = 'local'")
                .fetch_one(&self.db)
                .await
                .unwrap();
        let ordered: OrderedHost = self
            .client
            .post(format!("{}/api/v1/workspaces/{workspace}/hosts", self.base))
            .bearer_auth(&self.key)
            .json(&serde_json::json!({ "hostname": hostname, "compute_profile": profile }))
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = ordered.host.to_string();
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let details = self.host(&id).await;
            if details.host.online && details.host.state == HostState::Running {
                return details;
            }
            assert!(
                Instant::now() < deadline,
                "the host never came online: {:?}\n{}",
                details.host,
                self.portal.stderr()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

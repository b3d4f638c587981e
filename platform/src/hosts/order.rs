//! The tasks that order and delete hosts.
//!
//! Ordering: provision the server at the provider (its user data installs
//! the agent with the host's token) → configure networking → wait for the
//! server to boot → wait for the agent's first heartbeat → in Kubernetes
//! workspaces, join the node with a bootstrap token created in the tenant.
//! A provider error that another attempt cannot fix (no capacity, invalid
//! profile, quota, refused credentials) ends the task at once and puts the
//! host in `error` with the provider's message.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Secret};
use kube::api::{Api, DeleteParams, PostParams};
use protocol::ids::{ComputeProviderId, HostId, WorkspaceId};
use protocol::views::{HostState, WorkspaceKind};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Platform;
use crate::compute::providers::Client;
use crate::providers::{CreateServer, ProviderError, ServerStatus};
use crate::tasks::{BoxFuture, Handler, StepContext, StepError, StepPlan, TaskSpec};

const BOOTSTRAP_PURPOSE: &str = "host.bootstrap-token";

/// Orders a host (see the module documentation).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Order {
    pub host: HostId,
}

impl Order {
    pub const KIND_NAME: &'static str = "host.order";
}

impl TaskSpec for Order {
    const KIND: &'static str = Self::KIND_NAME;

    fn title(&self) -> String {
        "Order host".into()
    }

    fn plan(&self) -> Vec<StepPlan> {
        vec![
            StepPlan::new("provision server")
                .timeout(Duration::from_secs(120))
                .max_attempts(8)
                .backoff(Duration::from_secs(2)),
            StepPlan::new("configure networking"),
            StepPlan::new("bootstrap agent")
                .timeout(Duration::from_secs(20 * 60))
                .max_attempts(3),
            StepPlan::new("wait for first heartbeat")
                .timeout(Duration::from_secs(15 * 60))
                .max_attempts(2),
            StepPlan::new("join cluster")
                .timeout(Duration::from_secs(10 * 60))
                .max_attempts(3)
                .backoff(Duration::from_secs(5)),
        ]
    }
}

/// Deletes a host's server at the provider, then the host.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delete {
    pub host: HostId,
}

impl Delete {
    pub const KIND_NAME: &'static str = "host.delete";
}

impl TaskSpec for Delete {
    const KIND: &'static str = Self::KIND_NAME;

    fn title(&self) -> String {
        "Delete host".into()
    }

    fn plan(&self) -> Vec<StepPlan> {
        vec![
            StepPlan::new("remove node")
                .max_attempts(3)
                .backoff(Duration::from_secs(2)),
            StepPlan::new("delete server")
                .timeout(Duration::from_secs(120))
                .max_attempts(10)
                .backoff(Duration::from_secs(2)),
            StepPlan::new("remove host"),
        ]
    }
}

#[derive(Debug, sqlx::FromRow)]
struct Host {
    id: HostId,
    workspace_id: WorkspaceId,
    hostname: String,
    provider_id: Option<ComputeProviderId>,
    server_id: Option<String>,
    state: HostState,
    bootstrap_sealed: Option<Vec<u8>>,
    parameters: sqlx::types::Json<BTreeMap<String, String>>,
    kind: WorkspaceKind,
}

async fn load(platform: &Platform, host: HostId) -> Result<Host, StepError> {
    sqlx::query_as(
        "SELECT h.id, h.workspace_id, h.hostname, h.provider_id, h.server_id, h.state,
             h.bootstrap_sealed, c.parameters, w.kind
         FROM hosts h JOIN compute_profiles c ON c.id = h.profile_id
         JOIN workspaces w ON w.id = h.workspace_id
         WHERE h.id = $1",
    )
    .bind(host)
    .fetch_optional(platform.db())
    .await
    .map_err(StepError::retry)?
    .ok_or_else(|| StepError::fatal("the host no longer exists"))
}

async fn client(platform: &Platform, host: &Host) -> Result<Client, StepError> {
    let provider = host
        .provider_id
        .ok_or_else(|| StepError::fatal("the host's compute provider was removed"))?;
    crate::compute::providers::client(platform, provider)
        .await
        .map_err(|e| StepError::fatal(format!("the compute provider is not usable: {e}")))
}

/// Provider errors another attempt may fix are retried; the rest end the
/// order with the provider's message.
fn provider_step(e: ProviderError) -> StepError {
    if e.is_retryable() {
        StepError::retry(e)
    } else {
        StepError::fatal(e)
    }
}

fn db_step(e: sqlx::Error) -> StepError {
    StepError::retry(e)
}

/// Cloud-init user data that installs the agent from the portal and starts
/// it with the host's token.
pub fn user_data(portal: &url::Url, token: &str) -> String {
    let base = portal.as_str().trim_end_matches('/');
    format!(
        "#cloud-config\n\
         write_files:\n\
         \x20 - path: /etc/loopback/agent-token\n\
         \x20   permissions: '0600'\n\
         \x20   content: {token}\n\
         \x20 - path: /etc/systemd/system/loopback-agent.service\n\
         \x20   content: |\n\
         \x20     [Unit]\n\
         \x20     Description=Loopback agent\n\
         \x20     After=network-online.target\n\
         \x20     [Service]\n\
         \x20     ExecStart=/usr/local/bin/loopback-agent --portal {base} --token-file /etc/loopback/agent-token\n\
         \x20     Restart=always\n\
         \x20     RestartSec=5\n\
         \x20     [Install]\n\
         \x20     WantedBy=multi-user.target\n\
         runcmd:\n\
         \x20 - curl -fsSL -o /usr/local/bin/loopback-agent {base}/agent/v1/binary\n\
         \x20 - chmod 0755 /usr/local/bin/loopback-agent\n\
         \x20 - systemctl daemon-reload\n\
         \x20 - systemctl enable --now loopback-agent\n"
    )
}

pub struct OrderHandler {
    platform: Platform,
    /// How long to wait for a node to register after `kubeadm join`.
    join_wait: Duration,
}

impl OrderHandler {
    pub fn new(platform: Platform) -> Self {
        Self {
            platform,
            join_wait: Duration::from_secs(5 * 60),
        }
    }

    async fn step(&self, ctx: &StepContext) -> Result<Option<serde_json::Value>, StepError> {
        let input: Order = ctx.input()?;
        let host = load(&self.platform, input.host).await?;
        if host.state == HostState::Deleting {
            return Err(StepError::Cancelled);
        }
        match ctx.step() {
            "provision server" => self.provision(&host).await,
            "configure networking" => self.network(&host).await,
            "bootstrap agent" => self.boot(ctx, &host).await,
            "wait for first heartbeat" => self.first_heartbeat(ctx, &host).await,
            "join cluster" => self.join(ctx, &host).await,
            other => Err(StepError::fatal(format!("unknown step {other}"))),
        }
    }

    /// The token the server is ordered with: issued once and kept sealed
    /// until the agent connected, so a retried order hands the provider the
    /// same one.
    async fn bootstrap_token(&self, host: &Host) -> Result<String, StepError> {
        let secrets = self.platform.secrets();
        if let Some(sealed) = &host.bootstrap_sealed {
            let token = secrets
                .open(BOOTSTRAP_PURPOSE, sealed)
                .map_err(StepError::fatal)?;
            return String::from_utf8(token).map_err(StepError::fatal);
        }
        let mut tx = self.platform.db().begin().await.map_err(db_step)?;
        let (_, token) = super::tokens::issue(&mut tx, host.workspace_id, host.id, None)
            .await
            .map_err(StepError::retry)?;
        let sealed = secrets
            .seal(BOOTSTRAP_PURPOSE, token.as_bytes())
            .map_err(StepError::fatal)?;
        sqlx::query("UPDATE hosts SET bootstrap_sealed = $2 WHERE id = $1")
            .bind(host.id)
            .bind(sealed)
            .execute(&mut *tx)
            .await
            .map_err(db_step)?;
        tx.commit().await.map_err(db_step)?;
        Ok(token)
    }

    async fn provision(&self, host: &Host) -> Result<Option<serde_json::Value>, StepError> {
        let client = client(&self.platform, host).await?;
        if let Some(id) = &host.server_id
            && client.server(id).await.map_err(provider_step)?.is_some()
        {
            return Ok(None);
        }
        let token = self.bootstrap_token(host).await?;
        let spec = CreateServer {
            name: host.hostname.clone(),
            parameters: host.parameters.0.clone(),
            user_data: user_data(self.platform.public_url(), &token),
            labels: BTreeMap::from([
                ("loopback-host".into(), host.id.to_string()),
                ("loopback-workspace".into(), host.workspace_id.to_string()),
            ]),
        };
        let server = client
            .create_server(&spec, &token)
            .await
            .map_err(provider_step)?;
        sqlx::query(
            "UPDATE hosts SET server_id = $2, public_ipv4 = $3, state = 'bootstrapping',
                 error = NULL, updated_at = now()
             WHERE id = $1",
        )
        .bind(host.id)
        .bind(&server.id)
        .bind(server.ipv4.map(|ip| ip.to_string()))
        .execute(self.platform.db())
        .await
        .map_err(db_step)?;
        Ok(Some(serde_json::json!({ "server": server.id })))
    }

    /// Gives the host an address in the workspace's private network, when
    /// the workspace has one: the lowest free one after the gateway.
    async fn network(&self, host: &Host) -> Result<Option<serde_json::Value>, StepError> {
        let db = self.platform.db();
        let cidr: Option<String> =
            sqlx::query_scalar("SELECT cidr::text FROM networks WHERE workspace_id = $1")
                .bind(host.workspace_id)
                .fetch_optional(db)
                .await
                .map_err(db_step)?;
        let Some(cidr) = cidr else {
            return Ok(Some(serde_json::json!({ "private_ipv4": null })));
        };
        let (base, prefix) = cidr
            .split_once('/')
            .and_then(|(a, p)| Some((a.parse::<Ipv4Addr>().ok()?, p.parse::<u32>().ok()?)))
            .ok_or_else(|| StepError::fatal(format!("unreadable network {cidr}")))?;
        let mut tx = db.begin().await.map_err(db_step)?;
        // One allocation at a time per workspace.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(format!("host-ip:{}", host.workspace_id))
            .execute(&mut *tx)
            .await
            .map_err(db_step)?;
        let current: Option<String> =
            sqlx::query_scalar("SELECT private_ipv4 FROM hosts WHERE id = $1")
                .bind(host.id)
                .fetch_one(&mut *tx)
                .await
                .map_err(db_step)?;
        if let Some(ip) = current {
            return Ok(Some(serde_json::json!({ "private_ipv4": ip })));
        }
        let taken: Vec<String> = sqlx::query_scalar(
            "SELECT private_ipv4 FROM hosts WHERE workspace_id = $1 AND private_ipv4 IS NOT NULL",
        )
        .bind(host.workspace_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_step)?;
        let size = 1u32 << (32 - prefix.min(30));
        let start = u32::from(base);
        // .0 is the network, .1 the gateway, the last the broadcast.
        let free = (2..size - 1)
            .map(|i| Ipv4Addr::from(start + i))
            .find(|ip| !taken.contains(&ip.to_string()))
            .ok_or_else(|| StepError::fatal(format!("the network {cidr} has no free address")))?;
        sqlx::query("UPDATE hosts SET private_ipv4 = $2, updated_at = now() WHERE id = $1")
            .bind(host.id)
            .bind(free.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_step)?;
        tx.commit().await.map_err(db_step)?;
        Ok(Some(
            serde_json::json!({ "private_ipv4": free.to_string() }),
        ))
    }

    /// Waits until the provider reports the server running: cloud-init then
    /// installs and starts the agent.
    async fn boot(
        &self,
        ctx: &StepContext,
        host: &Host,
    ) -> Result<Option<serde_json::Value>, StepError> {
        let client = client(&self.platform, host).await?;
        let id = host
            .server_id
            .clone()
            .ok_or_else(|| StepError::fatal("the server was never created"))?;
        let mut wait = Duration::from_millis(200);
        loop {
            let server = client
                .server(&id)
                .await
                .map_err(provider_step)?
                .ok_or_else(|| StepError::fatal("the provider no longer knows the server"))?;
            if server.id != id || server.ipv4.is_some() {
                // Dedicated servers get their number (and address) on delivery.
                sqlx::query(
                    "UPDATE hosts SET server_id = $2, public_ipv4 = coalesce($3, public_ipv4) WHERE id = $1",
                )
                .bind(host.id)
                .bind(&server.id)
                .bind(server.ipv4.map(|ip| ip.to_string()))
                .execute(self.platform.db())
                .await
                .map_err(db_step)?;
            }
            match server.status {
                ServerStatus::Running => {
                    return Ok(Some(serde_json::json!({ "server": server.id })));
                }
                ServerStatus::Off => {
                    client
                        .power(&server.id, crate::providers::PowerAction::On)
                        .await
                        .map_err(provider_step)?;
                }
                ServerStatus::Creating | ServerStatus::Other(_) => {}
            }
            ctx.sleep(wait).await?;
            wait = (wait * 2).min(Duration::from_secs(10));
        }
    }

    async fn first_heartbeat(
        &self,
        ctx: &StepContext,
        host: &Host,
    ) -> Result<Option<serde_json::Value>, StepError> {
        let db = self.platform.db();
        let mut wait = Duration::from_millis(200);
        loop {
            let seen: Option<(time::OffsetDateTime, Option<String>)> = sqlx::query_as(
                "SELECT last_seen_at, agent_version FROM hosts WHERE id = $1 AND last_seen_at IS NOT NULL",
            )
            .bind(host.id)
            .fetch_optional(db)
            .await
            .map_err(db_step)?;
            if let Some((_, version)) = seen {
                let next = if host.kind == WorkspaceKind::Kubernetes {
                    "joining"
                } else {
                    "running"
                };
                sqlx::query(
                    "UPDATE hosts SET bootstrap_sealed = NULL, state = $2::host_state, updated_at = now()
                     WHERE id = $1",
                )
                .bind(host.id)
                .bind(next)
                .execute(db)
                .await
                .map_err(db_step)?;
                return Ok(Some(serde_json::json!({ "agent_version": version })));
            }
            ctx.sleep(wait).await?;
            wait = (wait * 2).min(Duration::from_secs(2));
        }
    }

    async fn join(
        &self,
        ctx: &StepContext,
        host: &Host,
    ) -> Result<Option<serde_json::Value>, StepError> {
        let db = self.platform.db();
        if host.kind != WorkspaceKind::Kubernetes {
            return Ok(Some(
                serde_json::json!({ "skipped": "bare-metal workspace" }),
            ));
        }
        let (tenant, admin) =
            crate::workspaces::pipeline::tenant_admin(&self.platform, host.workspace_id).await?;
        let nodes: Api<Node> = Api::all(tenant.clone());
        if nodes
            .get_opt(&host.hostname)
            .await
            .map_err(StepError::retry)?
            .is_none()
        {
            let (id, secret) = bootstrap_token(&tenant).await?;
            let ca_hash = ca_cert_hash(&admin.ca_data).map_err(StepError::fatal)?;
            let endpoint = format!(
                "{}:{}",
                admin.server.host_str().unwrap_or_default(),
                admin.server.port().unwrap_or(6443)
            );
            let command = format!(
                "kubeadm join {endpoint} --token {id}.{secret} --discovery-token-ca-cert-hash sha256:{ca_hash} --node-name {}",
                host.hostname
            );
            let outcome = self
                .platform
                .hub()
                .run_command(host.id, &command, Duration::from_secs(5 * 60))
                .await
                .map_err(StepError::retry)?;
            if !outcome.succeeded() {
                let detail = [
                    outcome.error.as_deref(),
                    Some(outcome.stderr.trim()),
                    Some(outcome.stdout.trim()),
                ]
                .into_iter()
                .flatten()
                .find(|s| !s.is_empty())
                .unwrap_or("no output");
                return Err(StepError::retry(format!(
                    "kubeadm join exited with {:?}: {}",
                    outcome.exit_code,
                    detail.chars().take(500).collect::<String>()
                )));
            }
        }
        let deadline = tokio::time::Instant::now() + self.join_wait;
        loop {
            if nodes
                .get_opt(&host.hostname)
                .await
                .map_err(StepError::retry)?
                .is_some()
            {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                return Err(StepError::retry(
                    "the node did not register after kubeadm join",
                ));
            }
            ctx.sleep(Duration::from_secs(1)).await?;
        }
        sqlx::query("UPDATE hosts SET state = 'running', updated_at = now() WHERE id = $1")
            .bind(host.id)
            .execute(db)
            .await
            .map_err(db_step)?;
        Ok(Some(serde_json::json!({ "node": host.hostname })))
    }
}

/// A kubeadm bootstrap token in the tenant, valid for an hour.
async fn bootstrap_token(tenant: &kube::Client) -> Result<(String, String), StepError> {
    // kubeadm's token format: [a-z0-9]{6}.[a-z0-9]{16}.
    let id = super::random_name(6);
    let secret = super::random_name(16);
    let expires = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    let expiration = expires
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(StepError::fatal)?;
    let object: Secret = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": { "name": format!("bootstrap-token-{id}"), "namespace": "kube-system" },
        "type": "bootstrap.kubernetes.io/token",
        "stringData": {
            "token-id": id,
            "token-secret": secret,
            "expiration": expiration,
            "usage-bootstrap-authentication": "true",
            "usage-bootstrap-signing": "true",
            "auth-extra-groups": "system:bootstrappers:kubeadm:default-node-token",
            "description": "Loopback host join",
        },
    }))
    .map_err(StepError::fatal)?;
    Api::<Secret>::namespaced(tenant.clone(), "kube-system")
        .create(&PostParams::default(), &object)
        .await
        .map_err(StepError::retry)?;
    Ok((id, secret))
}

/// kubeadm's `--discovery-token-ca-cert-hash`: SHA-256 of the CA
/// certificate's SubjectPublicKeyInfo.
pub fn ca_cert_hash(ca_data_base64: &str) -> Result<String, String> {
    use base64::Engine;
    let pem = base64::engine::general_purpose::STANDARD
        .decode(ca_data_base64.trim())
        .map_err(|e| format!("unreadable CA data: {e}"))?;
    let (_, pem) =
        x509_parser::pem::parse_x509_pem(&pem).map_err(|e| format!("unreadable CA PEM: {e}"))?;
    let cert = pem
        .parse_x509()
        .map_err(|e| format!("unreadable CA certificate: {e}"))?;
    Ok(hex::encode(Sha256::digest(cert.public_key().raw)))
}

impl Handler for OrderHandler {
    fn kind(&self) -> &'static str {
        Order::KIND
    }

    fn run<'a>(
        &'a self,
        ctx: &'a StepContext,
    ) -> BoxFuture<'a, Result<Option<serde_json::Value>, StepError>> {
        Box::pin(self.step(ctx))
    }

    fn stopped<'a>(&'a self, input: &'a serde_json::Value, reason: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let Ok(order) = serde_json::from_value::<Order>(input.clone()) else {
                return;
            };
            let _ = sqlx::query(
                "UPDATE hosts SET state = 'error', error = $2, updated_at = now()
                 WHERE id = $1 AND state <> 'deleting'",
            )
            .bind(order.host)
            .bind(reason)
            .execute(self.platform.db())
            .await;
        })
    }
}

pub struct DeleteHandler {
    platform: Platform,
}

impl DeleteHandler {
    pub fn new(platform: Platform) -> Self {
        Self { platform }
    }

    async fn step(&self, ctx: &StepContext) -> Result<Option<serde_json::Value>, StepError> {
        let input: Delete = ctx.input()?;
        let host = match load(&self.platform, input.host).await {
            Ok(host) => host,
            // Removed already (a retried last step).
            Err(_) if ctx.step() == "remove host" => return Ok(None),
            Err(e) => return Err(e),
        };
        match ctx.step() {
            "remove node" => {
                if host.kind != WorkspaceKind::Kubernetes {
                    return Ok(None);
                }
                // The cluster may be gone or unhealthy; a host must still be
                // deletable, so this is best effort.
                let Ok(tenant) =
                    crate::workspaces::pipeline::tenant_client(&self.platform, host.workspace_id)
                        .await
                else {
                    return Ok(Some(
                        serde_json::json!({ "node": "tenant unreachable; skipped" }),
                    ));
                };
                match Api::<Node>::all(tenant)
                    .delete(&host.hostname, &DeleteParams::default())
                    .await
                {
                    Ok(_) => Ok(Some(serde_json::json!({ "node": "deleted" }))),
                    Err(e) if crate::kubernetes::is_not_found(&e) => Ok(None),
                    Err(e) => Err(StepError::retry(e)),
                }
            }
            "delete server" => {
                let Some(server) = &host.server_id else {
                    return Ok(Some(serde_json::json!({ "server": "never created" })));
                };
                let client = client(&self.platform, &host).await?;
                client.delete_server(server).await.map_err(|e| {
                    // Deleting must not give up on a hiccup.
                    if matches!(e, ProviderError::Unauthorized(_)) {
                        StepError::fatal(e)
                    } else {
                        StepError::retry(e)
                    }
                })?;
                Ok(Some(serde_json::json!({ "server": server })))
            }
            "remove host" => {
                sqlx::query("DELETE FROM hosts WHERE id = $1")
                    .bind(host.id)
                    .execute(self.platform.db())
                    .await
                    .map_err(db_step)?;
                Ok(None)
            }
            other => Err(StepError::fatal(format!("unknown step {other}"))),
        }
    }
}

impl Handler for DeleteHandler {
    fn kind(&self) -> &'static str {
        Delete::KIND
    }

    fn run<'a>(
        &'a self,
        ctx: &'a StepContext,
    ) -> BoxFuture<'a, Result<Option<serde_json::Value>, StepError>> {
        Box::pin(self.step(ctx))
    }

    fn stopped<'a>(&'a self, input: &'a serde_json::Value, reason: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let Ok(delete) = serde_json::from_value::<Delete>(input.clone()) else {
                return;
            };
            let _ = sqlx::query(
                "UPDATE hosts SET state = 'error', error = $2, updated_at = now() WHERE id = $1",
            )
            .bind(delete.host)
            .bind(format!("deleting failed: {reason}"))
            .execute(self.platform.db())
            .await;
        })
    }
}

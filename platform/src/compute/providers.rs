//! Compute provider accounts: credentials (sealed) and settings for one
//! provider API, checked by connecting before they are saved. Operators
//! manage them; a provider without an organization is a pool provider.

use std::collections::BTreeMap;

use protocol::ids::ComputeProviderId;
use protocol::views::{ComputeProviderView, NewComputeProvider, ProviderKind};
use sqlx::PgPool;
use url::Url;

use crate::Platform;
use crate::audit::{self, By, Entry};
use crate::authz::{Actor, Permission, Resource, authorize};
use crate::error::{Error, Result};
use crate::providers::{self as clients, ProviderError};

const SECRET_PURPOSE: &str = "compute-provider.credentials";

/// A client for one stored provider account.
pub enum Client {
    HetznerCloud(clients::hetzner_cloud::HetznerCloud),
    HetznerRobot(clients::hetzner_robot::HetznerRobot),
    Ionos(clients::ionos::Ionos),
    /// Hosts are agent processes on this machine.
    Local(clients::local::LocalHosts),
}

fn base_url(settings: &BTreeMap<String, String>, default: &str) -> Result<Url> {
    let raw = settings
        .get("base_url")
        .map(String::as_str)
        .filter(|s| !s.trim().is_empty())
        .unwrap_or(default);
    Url::parse(raw.trim()).map_err(|_| Error::invalid("base_url", format!("{raw:?} is not a URL")))
}

fn required<'a>(settings: &'a BTreeMap<String, String>, name: &'static str) -> Result<&'a str> {
    settings
        .get(name)
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Error::invalid(name, "required for this provider"))
}

impl Client {
    /// `local`: the portal's local host settings; a portal started without
    /// them cannot use `local` providers (operators enable them by starting
    /// the portal with `--local-hosts`).
    pub fn new(
        kind: ProviderKind,
        settings: &BTreeMap<String, String>,
        secret: &str,
        local: Option<&clients::local::LocalHosts>,
    ) -> Result<Self> {
        let client_error = |e: ProviderError| Error::invalid("settings", e.to_string());
        if kind != ProviderKind::Local && secret.trim().is_empty() {
            return Err(Error::invalid("secret", "give the API token or password"));
        }
        Ok(match kind {
            ProviderKind::HetznerCloud => Self::HetznerCloud(
                clients::hetzner_cloud::HetznerCloud::new(
                    base_url(settings, "https://api.hetzner.cloud/v1/")?,
                    secret,
                )
                .map_err(client_error)?,
            ),
            ProviderKind::HetznerRobot => Self::HetznerRobot(
                clients::hetzner_robot::HetznerRobot::new(
                    base_url(settings, "https://robot-ws.your-server.de/")?,
                    required(settings, "user")?,
                    secret,
                )
                .map_err(client_error)?,
            ),
            ProviderKind::IonosDcd => Self::Ionos(
                clients::ionos::Ionos::new(
                    base_url(settings, "https://api.ionos.com/cloudapi/v6/")?,
                    clients::ionos::IonosAuth::Token(secret.to_string()),
                    required(settings, "datacenter_id")?,
                )
                .map_err(client_error)?,
            ),
            ProviderKind::Local => Self::Local(local.cloned().ok_or_else(|| {
                Error::invalid(
                    "kind",
                    "this portal runs without local hosts; start it with --local-hosts to enable the local provider",
                )
            })?),
        })
    }

    pub async fn test_connection(&self) -> Result<(), ProviderError> {
        match self {
            Self::HetznerCloud(c) => c.test_connection().await,
            Self::HetznerRobot(c) => c.test_connection().await,
            Self::Ionos(c) => c.test_connection().await,
            Self::Local(c) => c.test_connection().await,
        }
    }

    /// Orders a server named `spec.name` whose agent connects with
    /// `agent_token`. Cloud providers get it in cloud-init user data; a
    /// local host gets it in its token file.
    pub async fn create_server(
        &self,
        spec: &clients::CreateServer,
        agent_token: &str,
    ) -> Result<clients::Server, ProviderError> {
        match self {
            Self::HetznerCloud(c) => c.create_server(spec).await,
            Self::HetznerRobot(c) => c.create_server(spec).await,
            Self::Ionos(c) => c.create_server(spec).await,
            Self::Local(c) => c.create_server(&spec.name, agent_token).await,
        }
    }

    pub async fn server(&self, id: &str) -> Result<Option<clients::Server>, ProviderError> {
        match self {
            Self::HetznerCloud(c) => c.server(id).await,
            Self::HetznerRobot(c) => c.server(id).await,
            Self::Ionos(c) => c.server(id).await,
            Self::Local(c) => c.server(id).await,
        }
    }

    pub async fn delete_server(&self, id: &str) -> Result<(), ProviderError> {
        match self {
            Self::HetznerCloud(c) => c.delete_server(id).await,
            Self::HetznerRobot(c) => c.delete_server(id).await,
            Self::Ionos(c) => c.delete_server(id).await,
            Self::Local(c) => c.delete_server(id).await,
        }
    }

    pub async fn power(&self, id: &str, action: clients::PowerAction) -> Result<(), ProviderError> {
        match self {
            Self::HetznerCloud(c) => c.power(id, action).await,
            Self::HetznerRobot(c) => c.power(id, action).await,
            Self::Ionos(c) => c.power(id, action).await,
            Self::Local(c) => c.power(id, action).await,
        }
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    id: ComputeProviderId,
    name: String,
    kind: ProviderKind,
    settings: sqlx::types::Json<BTreeMap<String, String>>,
    organization: Option<String>,
    active: bool,
    checked_at: Option<time::OffsetDateTime>,
    check_error: Option<String>,
}

impl From<Row> for ComputeProviderView {
    fn from(r: Row) -> Self {
        Self {
            id: r.id,
            name: r.name,
            kind: r.kind,
            settings: r.settings.0,
            organization: r.organization,
            active: r.active,
            checked_at: r.checked_at,
            check_error: r.check_error,
        }
    }
}

const VIEW: &str = "SELECT p.id, p.name, p.kind, p.settings, o.name AS organization, p.active,
        p.checked_at, p.check_error
    FROM compute_providers p LEFT JOIN organizations o ON o.id = p.organization_id";

async fn operator(db: &PgPool, actor: &Actor) -> Result<()> {
    authorize(db, actor, Permission::PlatformCatalog, Resource::Platform).await?;
    Ok(())
}

pub async fn list(db: &PgPool, actor: &Actor) -> Result<Vec<ComputeProviderView>> {
    operator(db, actor).await?;
    let rows: Vec<Row> = sqlx::query_as(&format!("{VIEW} ORDER BY p.name"))
        .fetch_all(db)
        .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Saves a provider account once a test connection with it succeeded.
pub async fn create(
    platform: &Platform,
    actor: &Actor,
    new: &NewComputeProvider,
) -> Result<ComputeProviderId> {
    let db = platform.db();
    operator(db, actor).await?;
    let name = crate::tenancy::organizations::normalise_name("name", &new.name)?;
    let allowed = new.kind.setting_names();
    if let Some(unknown) = new.settings.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(Error::invalid(
            "settings",
            format!(
                "{unknown} is not a setting of {} providers",
                new.kind.label()
            ),
        ));
    }
    if let Some(network) = new.settings.get("load_balancer_network")
        && !network.trim().is_empty()
        && network.trim().parse::<i64>().is_err()
    {
        return Err(Error::invalid(
            "load_balancer_network",
            "a Hetzner Cloud network id (a number), or empty",
        ));
    }
    let settings: BTreeMap<String, String> = new
        .settings
        .iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| (k.clone(), v.trim().to_string()))
        .collect();
    let client = Client::new(new.kind, &settings, &new.secret, platform.local_hosts())?;
    client
        .test_connection()
        .await
        .map_err(|e| Error::invalid("secret", format!("the test connection failed: {e}")))?;
    let sealed = platform
        .secrets()
        .seal(SECRET_PURPOSE, new.secret.trim().as_bytes())
        .map_err(Error::internal)?;
    let id = ComputeProviderId::new();
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO compute_providers (id, name, kind, settings, credentials, checked_at)
         VALUES ($1, $2, $3, $4, $5, now())",
    )
    .bind(id)
    .bind(&name)
    .bind(new.kind)
    .bind(sqlx::types::Json(&settings))
    .bind(&sealed)
    .execute(&mut *tx)
    .await
    .map_err(Error::taken(
        "name",
        "a compute provider with this name exists",
    ))?;
    audit::record(
        &mut tx,
        By::Actor(actor),
        Entry::new("compute_provider.create", "compute_provider", id)
            .details(serde_json::json!({ "name": name, "kind": new.kind, "settings": settings })),
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// A stored account's client, its secret opened.
pub async fn client(platform: &Platform, id: ComputeProviderId) -> Result<Client> {
    let (kind, settings, sealed): (
        ProviderKind,
        sqlx::types::Json<BTreeMap<String, String>>,
        Vec<u8>,
    ) = sqlx::query_as("SELECT kind, settings, credentials FROM compute_providers WHERE id = $1")
        .bind(id)
        .fetch_optional(platform.db())
        .await?
        .ok_or(Error::NotFound)?;
    let secret = platform
        .secrets()
        .open(SECRET_PURPOSE, &sealed)
        .map_err(Error::internal)?;
    let secret = String::from_utf8(secret).map_err(Error::internal)?;
    Client::new(kind, &settings.0, &secret, platform.local_hosts())
}

/// Tests the connection again and records the outcome.
pub async fn check(
    platform: &Platform,
    actor: &Actor,
    id: ComputeProviderId,
) -> Result<Option<String>> {
    operator(platform.db(), actor).await?;
    let outcome = match client(platform, id).await {
        Ok(c) => c.test_connection().await.err().map(|e| e.to_string()),
        Err(e) => Some(e.to_string()),
    };
    sqlx::query("UPDATE compute_providers SET checked_at = now(), check_error = $2 WHERE id = $1")
        .bind(id)
        .bind(&outcome)
        .execute(platform.db())
        .await?;
    Ok(outcome)
}

pub async fn set_active(
    db: &PgPool,
    actor: &Actor,
    id: ComputeProviderId,
    active: bool,
) -> Result<()> {
    operator(db, actor).await?;
    crate::catalog::set_active(
        db,
        actor,
        crate::catalog::Entry::ComputeProvider,
        id.0,
        active,
    )
    .await
}

/// The local demo: a `local` pool provider and a small `local` profile,
/// created once when the portal runs with local hosts (operators may then
/// deactivate or price them like any other).
pub async fn ensure_local(platform: &Platform) -> Result<()> {
    let db = platform.db();
    let sealed = platform
        .secrets()
        .seal(SECRET_PURPOSE, b"")
        .map_err(Error::internal)?;
    let mut tx = db.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO compute_providers (id, name, kind, credentials, checked_at)
         SELECT $1, 'local', 'local', $2, now()
         WHERE NOT EXISTS (SELECT 1 FROM compute_providers WHERE kind = 'local')",
    )
    .bind(ComputeProviderId::new())
    .bind(&sealed)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    sqlx::query(
        "INSERT INTO compute_profiles (id, name, provider_kind, cpu, ram_mb, disk_gb, price_cents)
         SELECT $1, 'local-small', 'local', 1, 1024, 10, 0
         WHERE NOT EXISTS (SELECT 1 FROM compute_profiles WHERE provider_kind = 'local')",
    )
    .bind(protocol::ids::ComputeProfileId::new())
    .execute(&mut *tx)
    .await?;
    if inserted > 0 {
        audit::record(
            &mut tx,
            By::System,
            Entry::new("compute_provider.create", "compute_provider", "local")
                .details(serde_json::json!({ "kind": "local", "reason": "--local-hosts" })),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

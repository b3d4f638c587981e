//! Configuration from flags and environment.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use sqlx::postgres::PgConnectOptions;
use url::Url;

use crate::startup::StartupError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Readable lines for a terminal.
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

/// The Loopback portal: browser UI, REST API, agent endpoint and background
/// reconcilers in one process.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "loopback",
    version,
    about,
    after_help = "Secrets: LOOPBACK_SECRET_KEY (32 bytes, base64) takes precedence over --secret-key-file.\n\
                  Log filter: LOOPBACK_LOG, e.g. LOOPBACK_LOG=debug or LOOPBACK_LOG=info,sqlx=debug."
)]
pub struct Config {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Address and port to listen on.
    #[arg(long, env = "LOOPBACK_LISTEN", default_value = "127.0.0.1:3000")]
    pub listen: String,

    /// PostgreSQL URL (postgres://user:password@host:port/database). When unset,
    /// the portal starts its own PostgreSQL in <data-dir>/pg.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Directory for the portal's own state: secret key, setup link, and the
    /// private PostgreSQL cluster when DATABASE_URL is unset.
    #[arg(long, env = "LOOPBACK_DATA_DIR", default_value = ".loopback")]
    pub data_dir: PathBuf,

    /// Directory with PostgreSQL's initdb and pg_ctl for the private cluster.
    /// Default: the first found on PATH, then /usr/lib/postgresql/<newest>/bin.
    #[arg(long, env = "LOOPBACK_POSTGRES_BIN_DIR")]
    pub postgres_bin_dir: Option<PathBuf>,

    /// File holding the key that encrypts secrets at rest; created (0600) on
    /// first start. Default: <data-dir>/secret.key.
    #[arg(long, env = "LOOPBACK_SECRET_KEY_FILE")]
    pub secret_key_file: Option<PathBuf>,

    /// URL users reach the portal at, used in links the portal prints or
    /// sends, for passkeys and to refuse cross-site requests; pages requested
    /// under another host name are redirected there. Default:
    /// http://localhost:<port> for loopback and unspecified listen addresses,
    /// else http://<listen address>.
    #[arg(long, env = "LOOPBACK_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// SMTP server for outgoing mail: smtps://user:password@mail.example.com
    /// (TLS), smtp://…:587?tls=required (STARTTLS), or smtp://host:25 (plain,
    /// for a local relay). Unset: mail stays in the outbox, readable by
    /// operators at /admin/mail.
    #[arg(long, env = "LOOPBACK_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,

    /// Sender of outgoing mail.
    #[arg(
        long,
        env = "LOOPBACK_MAIL_FROM",
        default_value = "Loopback <loopback@localhost>"
    )]
    pub mail_from: String,

    /// Seconds without a request after which a browser session ends.
    #[arg(long, env = "LOOPBACK_SESSION_IDLE_SECS", default_value_t = 12 * 3600)]
    pub session_idle_secs: u64,

    /// Seconds after sign-in after which a browser session ends, however
    /// active.
    #[arg(long, env = "LOOPBACK_SESSION_LIFETIME_SECS", default_value_t = 7 * 24 * 3600)]
    pub session_lifetime_secs: u64,

    /// System tasks this process runs at once. Tasks mostly wait on
    /// clusters and provider APIs, and a busy queue is claimed in batches of
    /// free slots, so this is generous; it does not size any connection pool.
    #[arg(long, env = "LOOPBACK_TASK_WORKERS", default_value_t = 32)]
    pub task_workers: usize,

    /// Seconds a task claim lasts without renewal; after a process dies its
    /// tasks are taken over this much later.
    #[arg(long, env = "LOOPBACK_TASK_LEASE_SECS", default_value_t = 30)]
    pub task_lease_secs: u64,

    /// Seconds between idle workers' looks for due tasks when no
    /// notification wakes them.
    #[arg(long, env = "LOOPBACK_TASK_POLL_SECS", default_value_t = 5)]
    pub task_poll_secs: u64,

    /// Bearer token /metrics requires; unset leaves /metrics open (it shows
    /// queue figures only).
    #[arg(long, env = "LOOPBACK_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,

    /// OIDC issuer the workspaces' Kubernetes API servers trust; the
    /// workspace id is each cluster's client id. Default: the public URL.
    #[arg(long, env = "LOOPBACK_OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,

    /// Where workspace API names are published: `none` (recorded only;
    /// kubeconfigs then reach the API by address and check the name in TLS)
    /// or `cloudflare`.
    #[arg(long, env = "LOOPBACK_DNS_PROVIDER", default_value = "none")]
    pub dns_provider: String,

    /// Cloudflare API base URL (tests point it at a local fake).
    #[arg(long, env = "LOOPBACK_CLOUDFLARE_API_URL")]
    pub cloudflare_api_url: Option<String>,

    /// Cloudflare API token with DNS edit rights on the zone.
    #[arg(long, env = "LOOPBACK_CLOUDFLARE_TOKEN", hide_env_values = true)]
    pub cloudflare_token: Option<String>,

    /// Cloudflare zone holding the management domains' names.
    #[arg(long, env = "LOOPBACK_CLOUDFLARE_ZONE_ID")]
    pub cloudflare_zone_id: Option<String>,

    /// Seconds a new workspace's Kubernetes API may take to answer /healthz.
    #[arg(
        long,
        env = "LOOPBACK_WORKSPACE_HEALTH_TIMEOUT_SECS",
        default_value_t = 300
    )]
    pub workspace_health_timeout_secs: u64,

    /// Seconds to wait for Kamaji's admin kubeconfig of a new workspace.
    #[arg(long, env = "LOOPBACK_KUBECONFIG_TIMEOUT_SECS", default_value_t = 600)]
    pub kubeconfig_timeout_secs: u64,

    /// Tear down a workspace whose API never became healthy, instead of
    /// leaving it failed for an operator to inspect.
    #[arg(long, env = "LOOPBACK_DELETE_ON_LATE_FAILURE")]
    pub delete_on_late_failure: bool,

    /// Seconds between drift checks of active workspaces against their
    /// tenants.
    #[arg(long, env = "LOOPBACK_DRIFT_INTERVAL_SECS", default_value_t = 60)]
    pub drift_interval_secs: u64,

    /// IPv4 pool workspaces get managed networks from (e.g. 10.64.0.0/12);
    /// unset: no managed networks.
    #[arg(long, env = "LOOPBACK_MANAGED_NETWORK_POOL")]
    pub managed_network_pool: Option<String>,

    /// Prefix length of each workspace's block of the pool.
    #[arg(long, env = "LOOPBACK_MANAGED_NETWORK_PREFIX", default_value_t = 20)]
    pub managed_network_prefix: u8,

    /// Run a simulated Kamaji management cluster (kubesim) in this process,
    /// listening on this 127.0.0.1 port, and register it with a version in
    /// the catalog: the local demo. 0 leaves it off.
    #[arg(long, env = "LOOPBACK_LOCAL_KUBESIM_PORT", default_value_t = 0)]
    pub local_kubesim_port: u16,

    /// Milliseconds the local kubesim takes to make a tenant control plane
    /// ready.
    #[arg(long, env = "LOOPBACK_LOCAL_KUBESIM_DELAY_MS", default_value_t = 1500)]
    pub local_kubesim_delay_ms: u64,

    /// Enable the `local` compute provider: hosts are `loopback-agent`
    /// processes on this machine, under <data-dir>/hosts (demo and tests).
    #[arg(long, env = "LOOPBACK_LOCAL_HOSTS")]
    pub local_hosts: bool,

    /// The agent binary local hosts run and installers download when no
    /// release is published. Default: `loopback-agent` next to this binary.
    #[arg(long, env = "LOOPBACK_AGENT_BIN")]
    pub agent_bin: Option<PathBuf>,

    /// Seconds between agent heartbeats; three missed ones mark a host
    /// offline.
    #[arg(long, env = "LOOPBACK_AGENT_HEARTBEAT_SECS", default_value_t = 10)]
    pub agent_heartbeat_secs: u64,

    /// Seconds a shell may go without input or output before it is ended.
    #[arg(long, env = "LOOPBACK_SHELL_IDLE_TIMEOUT_SECS", default_value_t = 1800)]
    pub shell_idle_timeout_secs: u64,

    /// Seconds between scaling-group passes.
    #[arg(long, env = "LOOPBACK_SCALING_INTERVAL_SECS", default_value_t = 15)]
    pub scaling_interval_secs: u64,

    /// Enable the `local` load balancer backend: a proxy in this process,
    /// each load balancer on its own 127.0.2.x address (demo and tests).
    /// Organizations without a Hetzner Cloud provider get it.
    #[arg(long, env = "LOOPBACK_LOCAL_LOAD_BALANCERS")]
    pub local_load_balancers: bool,

    /// Seconds between load balancer reconciler passes (apply, drift
    /// correction, target health).
    #[arg(
        long,
        env = "LOOPBACK_LOAD_BALANCER_INTERVAL_SECS",
        default_value_t = 5
    )]
    pub load_balancer_interval_secs: u64,

    /// The shortest interval, in seconds, a monitoring object may be probed
    /// at (tests and demos lower it).
    #[arg(
        long,
        env = "LOOPBACK_MONITORING_MIN_INTERVAL_SECONDS",
        default_value_t = 10
    )]
    pub monitoring_min_interval_seconds: u64,

    /// Log output format.
    #[arg(long, env = "LOOPBACK_LOG_FORMAT", value_enum, default_value = "human")]
    pub log_format: LogFormat,

    /// Directory with the built site (pkg/loopback.js, .wasm, .css), as
    /// written by `cargo leptos build`.
    #[arg(long, env = "LEPTOS_SITE_ROOT", default_value = "target/site")]
    pub site_root: PathBuf,

    /// Maximum number of PostgreSQL connections in the pool.
    // Each reconciler run holds a lock connection while it works on
    // another; with the monitoring engine and a dozen reconcilers, ten was
    // too few at start-up.
    #[arg(long, env = "LOOPBACK_DB_MAX_CONNECTIONS", default_value_t = 20)]
    pub db_max_connections: u32,

    /// Seconds in-flight requests get to finish after SIGTERM or SIGINT.
    #[arg(long, env = "LOOPBACK_SHUTDOWN_GRACE_SECONDS", default_value_t = 30)]
    pub shutdown_grace_seconds: u64,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Serve the portal (the default).
    Serve,
    /// Print every server function and REST route as JSON, then exit.
    Routes,
}

/// Configuration after validation: every value parsed, nothing left to fail.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub database: Option<PgConnectOptions>,
    pub data_dir: PathBuf,
    pub postgres_bin_dir: Option<PathBuf>,
    pub secret_key_file: PathBuf,
    pub public_url: Url,
    pub smtp_url: Option<String>,
    pub mail_from: String,
    pub sessions: platform::identity::SessionPolicy,
    pub tasks: platform::tasks::EngineConfig,
    pub metrics_token: Option<String>,
    pub site_root: PathBuf,
    pub db_max_connections: u32,
    pub shutdown_grace: std::time::Duration,
    pub workspaces: WorkspaceSettings,
    pub hosts: HostSettings,
    pub load_balancers: LoadBalancerSettings,
    pub monitoring: platform::monitoring::Settings,
}

/// Load balancer backends and their reconciler.
#[derive(Debug, Clone)]
pub struct LoadBalancerSettings {
    pub local: bool,
    pub interval: std::time::Duration,
}

/// Hosts, agents and shells.
#[derive(Debug, Clone)]
pub struct HostSettings {
    pub local: bool,
    pub agent_bin: PathBuf,
    pub heartbeat_interval: std::time::Duration,
    pub shell_idle_timeout: std::time::Duration,
    pub scaling_interval: std::time::Duration,
}

/// Provisioning settings, and the local demo's kubesim.
#[derive(Debug, Clone)]
pub struct WorkspaceSettings {
    pub oidc_issuer: String,
    pub dns: platform::dns::Dns,
    pub health_timeout: std::time::Duration,
    pub kubeconfig_timeout: std::time::Duration,
    pub delete_on_late_failure: bool,
    pub drift_interval: std::time::Duration,
    pub managed_network: Option<platform::workspaces::network::Pool>,
    pub local_kubesim_port: Option<u16>,
    pub local_kubesim_delay: std::time::Duration,
}

impl Config {
    pub fn validate(self) -> Result<Settings, StartupError> {
        let listen: SocketAddr = self.listen.parse().map_err(|_| StartupError::BadListen {
            value: self.listen.clone(),
        })?;
        let database = self
            .database_url
            .as_deref()
            .filter(|url| !url.trim().is_empty())
            .map(|url| {
                let url = url.trim();
                if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                    return Err(StartupError::BadDatabaseUrl {
                        reason: "it must start with postgres:// or postgresql://".into(),
                    });
                }
                url.parse::<PgConnectOptions>()
                    .map_err(|e| StartupError::BadDatabaseUrl {
                        reason: first_line(&e.to_string()),
                    })
            })
            .transpose()?;
        let public_url = match self.public_url.as_deref() {
            Some(raw) => Url::parse(raw)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"))
                .ok_or_else(|| StartupError::BadPublicUrl {
                    value: raw.to_string(),
                })?,
            None => default_public_url(listen),
        };
        let cloudflare_url = self
            .cloudflare_api_url
            .as_deref()
            .map(|raw| {
                Url::parse(raw).map_err(|_| {
                    StartupError::Config(format!(
                        "--cloudflare-api-url {raw:?} is not a URL such as https://api.cloudflare.com/client/v4/"
                    ))
                })
            })
            .transpose()?;
        let dns = platform::dns::Dns::from_config(
            self.dns_provider.trim(),
            cloudflare_url.as_ref(),
            self.cloudflare_token.as_deref(),
            self.cloudflare_zone_id.as_deref(),
        )
        .map_err(|e| StartupError::Config(format!("--dns-provider: {e}")))?;
        let oidc_issuer = match self.oidc_issuer.as_deref() {
            Some(raw) => Url::parse(raw)
                .ok()
                .filter(|u| u.scheme() == "https" || u.scheme() == "http")
                .ok_or_else(|| {
                    StartupError::Config(format!(
                        "--oidc-issuer {raw:?} is not an https URL such as https://login.example.com"
                    ))
                })?
                .to_string(),
            None => public_url.to_string(),
        };
        let managed_network = self
            .managed_network_pool
            .as_deref()
            .filter(|p| !p.trim().is_empty())
            .map(|p| platform::workspaces::network::Pool::parse(p, self.managed_network_prefix))
            .transpose()
            .map_err(|e| StartupError::Config(format!("--managed-network-pool: {e}")))?;
        let data_dir = absolute(&self.data_dir);
        let secret_key_file = self
            .secret_key_file
            .map(|p| absolute(&p))
            .unwrap_or_else(|| data_dir.join("secret.key"));
        Ok(Settings {
            listen,
            database,
            data_dir,
            postgres_bin_dir: self.postgres_bin_dir.map(|p| absolute(&p)),
            secret_key_file,
            public_url,
            smtp_url: self.smtp_url.filter(|u| !u.trim().is_empty()),
            mail_from: self.mail_from,
            sessions: platform::identity::SessionPolicy {
                idle: std::time::Duration::from_secs(self.session_idle_secs.max(1)),
                lifetime: std::time::Duration::from_secs(self.session_lifetime_secs.max(1)),
            },
            tasks: platform::tasks::EngineConfig {
                workers: self.task_workers.clamp(1, 256),
                lease: std::time::Duration::from_secs(self.task_lease_secs.max(1)),
                poll: std::time::Duration::from_secs(self.task_poll_secs.max(1)),
                replica: platform::tasks::default_replica(),
            },
            metrics_token: self.metrics_token.filter(|t| !t.is_empty()),
            site_root: self.site_root,
            db_max_connections: self.db_max_connections.max(1),
            shutdown_grace: std::time::Duration::from_secs(self.shutdown_grace_seconds),
            workspaces: WorkspaceSettings {
                oidc_issuer: oidc_issuer.trim_end_matches('/').to_string(),
                dns,
                health_timeout: std::time::Duration::from_secs(
                    self.workspace_health_timeout_secs.max(1),
                ),
                kubeconfig_timeout: std::time::Duration::from_secs(
                    self.kubeconfig_timeout_secs.max(1),
                ),
                delete_on_late_failure: self.delete_on_late_failure,
                drift_interval: std::time::Duration::from_secs(self.drift_interval_secs.max(1)),
                managed_network,
                local_kubesim_port: (self.local_kubesim_port != 0)
                    .then_some(self.local_kubesim_port),
                local_kubesim_delay: std::time::Duration::from_millis(self.local_kubesim_delay_ms),
            },
            hosts: HostSettings {
                local: self.local_hosts,
                agent_bin: self.agent_bin.map(|p| absolute(&p)).unwrap_or_else(|| {
                    std::env::current_exe()
                        .ok()
                        .and_then(|exe| exe.parent().map(|d| d.join("loopback-agent")))
                        .unwrap_or_else(|| PathBuf::from("loopback-agent"))
                }),
                heartbeat_interval: std::time::Duration::from_secs(
                    self.agent_heartbeat_secs.clamp(1, 300),
                ),
                shell_idle_timeout: std::time::Duration::from_secs(
                    self.shell_idle_timeout_secs.max(10),
                ),
                scaling_interval: std::time::Duration::from_secs(self.scaling_interval_secs.max(1)),
            },
            load_balancers: LoadBalancerSettings {
                local: self.local_load_balancers,
                interval: std::time::Duration::from_secs(
                    self.load_balancer_interval_secs.clamp(1, 3600),
                ),
            },
            monitoring: platform::monitoring::Settings {
                min_interval: std::time::Duration::from_secs(
                    self.monitoring_min_interval_seconds.clamp(1, 86_400),
                ),
            },
        })
    }
}

fn default_public_url(listen: SocketAddr) -> Url {
    // Passkeys need a host name; browsers treat localhost as secure.
    let host = if listen.ip().is_unspecified() || listen.ip().is_loopback() {
        "localhost".to_string()
    } else if listen.is_ipv6() {
        format!("[{}]", listen.ip())
    } else {
        listen.ip().to_string()
    };
    // Both parts come from a parsed socket address, so this is a valid URL.
    Url::parse(&format!("http://{host}:{}", listen.port()))
        .unwrap_or_else(|_| Url::parse("http://127.0.0.1:3000").expect("literal URL"))
}

fn absolute(path: &std::path::Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> Config {
        let mut all = vec!["loopback"];
        all.extend_from_slice(args);
        Config::try_parse_from(all).expect("flags parse")
    }

    #[test]
    fn public_url_defaults_to_the_listen_address() {
        let s = config(&["--listen", "0.0.0.0:8080"]).validate().unwrap();
        assert_eq!(s.public_url.as_str(), "http://localhost:8080/");
        let s = config(&["--listen", "[::1]:3000"]).validate().unwrap();
        assert_eq!(s.public_url.as_str(), "http://localhost:3000/");
        let s = config(&["--listen", "192.0.2.7:80"]).validate().unwrap();
        assert_eq!(s.public_url.as_str(), "http://192.0.2.7/");
    }

    #[test]
    fn bad_values_name_the_setting() {
        let err = config(&["--listen", "localhost"]).validate().unwrap_err();
        assert!(err.to_string().contains("--listen"), "{err}");
        let err = config(&["--database-url", "mysql://x"])
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("DATABASE_URL"), "{err}");
        let err = config(&["--public-url", "ftp://x"]).validate().unwrap_err();
        assert!(err.to_string().contains("--public-url"), "{err}");
    }

    #[test]
    fn secret_key_defaults_into_the_data_dir() {
        let s = config(&["--data-dir", "/srv/loopback"]).validate().unwrap();
        assert_eq!(s.secret_key_file, PathBuf::from("/srv/loopback/secret.key"));
    }
}

//! From validated settings to a serving portal, and back down in order.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use platform::crypto::KeyError;
use platform::db::DbError;
use platform::{Platform, SecretBox};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::local_postgres::{self, LocalPostgres, LocalPostgresError};

/// Everything that can stop the portal from starting. Each message names the
/// setting at fault and how to fix it, on one line.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("--listen {value:?} is not an address:port such as 127.0.0.1:3000")]
    BadListen { value: String },
    #[error(
        "DATABASE_URL is not a valid PostgreSQL URL ({reason}); expected postgres://user:password@host:port/database"
    )]
    BadDatabaseUrl { reason: String },
    #[error("--public-url {value:?} is not an http(s) URL such as https://portal.example.com")]
    BadPublicUrl { value: String },
    #[error(
        "data directory {path} is not usable ({source}); fix its permissions or choose another with --data-dir"
    )]
    DataDir { path: PathBuf, source: io::Error },
    #[error(
        "cannot listen on {addr}: the address is already in use; stop the other process or choose another address with --listen"
    )]
    AddrInUse { addr: SocketAddr },
    #[error("cannot listen on {addr} ({source}); choose another address with --listen")]
    Listen { addr: SocketAddr, source: io::Error },
    #[error(transparent)]
    SecretKey(#[from] KeyError),
    #[error(transparent)]
    LocalPostgres(#[from] LocalPostgresError),
    #[error("{0}; check DATABASE_URL and that the PostgreSQL server is running")]
    Database(DbError),
    #[error("cannot create the portal database in the private PostgreSQL: {0}")]
    CreateDatabase(sqlx::Error),
    #[error("{0}")]
    Migrate(DbError),
    #[error(
        "{0}; set --public-url to the address users open, with a host name (for example http://localhost:3000)"
    )]
    BadPublicUrlFor(String),
    #[error("{0}")]
    Mail(String),
    #[error("cannot record the operator setup link: {0}")]
    SetupLink(String),
    #[error("{0}")]
    Config(String),
    #[error("cannot start the local kubesim: {0}")]
    Kubesim(String),
    #[error("the server stopped with an error: {0}")]
    Serve(io::Error),
}

pub async fn run(settings: Settings) -> Result<(), StartupError> {
    prepare_data_dir(&settings.data_dir)?;
    let secrets = load_secret_key(&settings)?;
    // Claim the port before anything slow, so a second instance fails at once.
    let listener = bind(settings.listen).await?;

    let local = match settings.database {
        Some(_) => None,
        None => {
            let root = settings.data_dir.clone();
            let bin_dir = settings.postgres_bin_dir.clone();
            let started = tokio::task::spawn_blocking(move || {
                LocalPostgres::start(&root, bin_dir.as_deref())
            })
            .await
            .map_err(|e| StartupError::Serve(io::Error::other(e)))??;
            Some(started)
        }
    };

    let result = serve(&settings, listener, secrets, local.as_ref()).await;

    if let Some(pg) = local {
        let _ = tokio::task::spawn_blocking(move || pg.stop()).await;
    }
    result
}

async fn serve(
    settings: &Settings,
    listener: TcpListener,
    secrets: SecretBox,
    local: Option<&LocalPostgres>,
) -> Result<(), StartupError> {
    let options = match (&settings.database, local) {
        (Some(options), _) => options.clone(),
        (None, Some(pg)) => {
            pg.ensure_database()
                .await
                .map_err(StartupError::CreateDatabase)?;
            pg.connect_options(local_postgres::DATABASE)
        }
        (None, None) => unreachable!("a private cluster runs whenever DATABASE_URL is unset"),
    };
    let pool = platform::db::connect(options, settings.db_max_connections)
        .await
        .map_err(StartupError::Database)?;
    platform::db::migrate(&pool)
        .await
        .map_err(StartupError::Migrate)?;
    let platform = Platform::new(
        pool.clone(),
        secrets,
        settings.public_url.clone(),
        settings.sessions,
    )
    .map_err(|e| StartupError::BadPublicUrlFor(e.to_string()))?;

    platform.configure_monitoring(settings.monitoring);
    announce(settings, &platform).await?;

    let kubesim = match settings.workspaces.local_kubesim_port {
        Some(port) => Some(start_local_kubesim(settings, &platform, port).await?),
        None => None,
    };

    let shutdown = CancellationToken::new();
    let sessions = tower_sessions_sqlx_store::PostgresStore::new(pool.clone());
    let provisioning = std::sync::Arc::new(platform::workspaces::pipeline::Settings {
        oidc_issuer: settings.workspaces.oidc_issuer.clone(),
        dns: std::sync::Arc::new(settings.workspaces.dns.clone()),
        kubeconfig_timeout: settings.workspaces.kubeconfig_timeout,
        health_timeout: settings.workspaces.health_timeout,
        delete_on_late_failure: settings.workspaces.delete_on_late_failure,
        managed_network: settings.workspaces.managed_network.is_some(),
        portal_url: settings.public_url.to_string(),
    });
    let mut engine = platform::tasks::Engine::new(pool.clone(), settings.tasks.clone())
        .handler(platform::tasks::diagnostics::NoopHandler)
        .handler(platform::tasks::diagnostics::ExerciseHandler)
        .reconciler(platform::tasks::prune_runs(pool.clone()))
        .reconciler(crate::http::session_sweeper(sessions.clone()))
        .handler(platform::workspaces::pipeline::ProvisionHandler::new(
            platform.clone(),
            provisioning.clone(),
        ))
        .handler(platform::workspaces::pipeline::TeardownHandler::new(
            platform.clone(),
            provisioning.clone(),
        ))
        .reconciler(platform::workspaces::health::reconciler(
            platform.clone(),
            settings.workspaces.drift_interval,
        ));
    engine = engine
        .handler(platform::hosts::order::OrderHandler::new(platform.clone()))
        .handler(platform::hosts::order::DeleteHandler::new(platform.clone()))
        .handler(platform::kubernetes::drain::DrainHandler::new(
            platform.clone(),
        ))
        .reconciler(platform::hosts::scaling::reconciler(
            platform.clone(),
            settings.hosts.scaling_interval,
        ))
        .reconciler(platform::hosts::offline_sweeper(
            pool.clone(),
            settings.hosts.heartbeat_interval * 3,
        ))
        .reconciler(platform::hosts::shell::sweeper(
            platform.clone(),
            settings.hosts.shell_idle_timeout,
        ));
    if settings.hosts.local {
        enable_local_hosts(settings, &platform).await?;
    }
    if settings.load_balancers.local {
        // Balancers come back (on their old addresses) on the reconciler's
        // first pass.
        platform.enable_local_balancers(platform::loadbalancers::local::LocalBalancers::new(
            platform::loadbalancers::local::DEFAULT_ADDRESSES,
        ));
        tracing::info!(
            "local load balancer backend enabled: balancers run in this process on 127.0.2.x"
        );
    }
    engine = engine.reconciler(platform::loadbalancers::reconciler(
        platform.clone(),
        settings.load_balancers.interval,
    ));
    engine = engine
        .reconciler(platform::monitoring::results::retention(platform.clone()))
        .reconciler(platform::monitoring::alerts::reconciler(platform.clone()))
        .reconciler(platform::monitoring::notify::delivery(platform.clone()));
    if let Some(pool) = settings.workspaces.managed_network {
        engine = engine.handler(platform::workspaces::network::CreateNetworkHandler::new(
            platform.db().clone(),
            pool,
        ));
    }
    if let Some(smtp) = &settings.smtp_url {
        let mailer = platform::mail::Mailer::new(smtp, &settings.mail_from)
            .map_err(|e| StartupError::Mail(e.to_string()))?;
        engine = engine.reconciler(platform::mail::delivery(pool.clone(), mailer));
    } else {
        tracing::info!("no --smtp-url: mail stays in the outbox; operators read it at /admin/mail");
    }
    tracing::info!(
        replica = engine.replica(),
        workers = settings.tasks.workers,
        "task engine starting"
    );
    let mut workers = engine.clone().start(shutdown.clone());
    let upkeep = crate::agents::spawn_upkeep(platform.clone(), shutdown.clone());
    let monitoring =
        platform::monitoring::engine::Engine::spawn(platform.clone(), shutdown.clone());
    let local_balancers = platform.local_balancers().cloned();
    let router = crate::http::router(settings, platform, engine, sessions);
    let signal_token = shutdown.clone();
    let server = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        crate::shutdown::signal().await;
        tracing::info!("shutting down: finishing in-flight requests");
        signal_token.cancel();
    })
    .into_future();
    let grace = settings.shutdown_grace;
    tokio::select! {
        served = server => served.map_err(StartupError::Serve)?,
        () = grace_expired(&shutdown, grace) => {
            tracing::warn!(seconds = grace.as_secs(), "requests still open after the shutdown grace period; closing them");
        }
    }
    // Workers hand their tasks back for other processes; give them a moment.
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while workers.join_next().await.is_some() {}
    })
    .await;
    let _ = tokio::time::timeout(Duration::from_secs(5), upkeep).await;
    // The monitoring writer stores the results it still holds.
    let _ = tokio::time::timeout(Duration::from_secs(5), monitoring.stopped()).await;
    if let Some(local) = local_balancers {
        local.shutdown().await;
    }
    pool.close().await;
    if let Some(kubesim) = kubesim {
        kubesim.shutdown().await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// The local demo's management cluster: kubesim in this process, its state
/// under the data directory so tenants survive restarts.
async fn start_local_kubesim(
    settings: &Settings,
    platform: &Platform,
    port: u16,
) -> Result<kubesim::Kubesim, StartupError> {
    let config = kubesim::Config {
        port,
        state_dir: Some(settings.data_dir.join("kubesim")),
        kamaji: kubesim::Kamaji {
            ready_delay: settings.workspaces.local_kubesim_delay,
            ..Default::default()
        },
        ..Default::default()
    };
    let sim = kubesim::start(config)
        .await
        .map_err(|e| StartupError::Kubesim(e.to_string()))?;
    platform::kubernetes::catalog::ensure_local(platform, &sim.kubeconfig())
        .await
        .map_err(|e| StartupError::Kubesim(e.to_string()))?;
    tracing::info!(url = %sim.url(), "local kubesim management cluster running and registered as \"local\"");
    Ok(sim)
}

/// The `local` compute provider: agents under <data-dir>/hosts; those that
/// should be running but are not (the machine rebooted) start again.
async fn enable_local_hosts(settings: &Settings, platform: &Platform) -> Result<(), StartupError> {
    let root = settings.data_dir.join("hosts");
    fs::create_dir_all(&root).map_err(|source| StartupError::DataDir {
        path: root.clone(),
        source,
    })?;
    if !settings.hosts.agent_bin.is_file() {
        return Err(StartupError::Config(format!(
            "--local-hosts needs the agent binary, but {} does not exist; build it (cargo build -p agent) or set --agent-bin",
            settings.hosts.agent_bin.display()
        )));
    }
    let local = platform::providers::local::LocalHosts {
        root,
        agent_bin: settings.hosts.agent_bin.clone(),
        portal_url: settings.public_url.clone(),
    };
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT h.server_id FROM hosts h JOIN compute_providers p ON p.id = h.provider_id
         WHERE p.kind = 'local' AND h.power = 'on' AND h.server_id IS NOT NULL AND h.state <> 'deleting'",
    )
    .fetch_all(platform.db())
    .await
    .map_err(|e| StartupError::Config(format!("cannot list local hosts: {e}")))?;
    let started = local.boot(&names).await;
    if started > 0 {
        tracing::info!(
            started,
            "started the agents of local hosts that were not running"
        );
    }
    platform.enable_local_hosts(local);
    platform::compute::providers::ensure_local(platform)
        .await
        .map_err(|e| StartupError::Config(format!("cannot register the local provider: {e}")))?;
    tracing::info!("local compute provider enabled: hosts are agent processes on this machine");
    Ok(())
}

async fn grace_expired(shutdown: &CancellationToken, grace: Duration) {
    shutdown.cancelled().await;
    tokio::time::sleep(grace).await;
}

fn prepare_data_dir(dir: &Path) -> Result<(), StartupError> {
    let fail = |source| StartupError::DataDir {
        path: dir.to_path_buf(),
        source,
    };
    let existed = dir.is_dir();
    fs::create_dir_all(dir).map_err(fail)?;
    if !existed {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(fail)?;
    }
    // Prove we can write here now rather than failing later mid-way.
    let probe = dir.join(format!(".write-test-{}", std::process::id()));
    fs::write(&probe, b"").map_err(fail)?;
    fs::remove_file(&probe).map_err(fail)
}

fn load_secret_key(settings: &Settings) -> Result<SecretBox, StartupError> {
    match std::env::var("LOOPBACK_SECRET_KEY") {
        Ok(key) if !key.trim().is_empty() => Ok(SecretBox::from_base64(&key)?),
        _ => Ok(SecretBox::load_or_create(&settings.secret_key_file)?),
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, StartupError> {
    TcpListener::bind(addr).await.map_err(|source| {
        if source.kind() == io::ErrorKind::AddrInUse {
            StartupError::AddrInUse { addr }
        } else {
            StartupError::Listen { addr, source }
        }
    })
}

/// Tells whoever started the portal where it is and how to get in.
async fn announce(settings: &Settings, platform: &Platform) -> Result<(), StartupError> {
    let base = settings.public_url.as_str().trim_end_matches('/');
    let link_file = settings.data_dir.join("operator-setup-link");
    let issued = platform::setup::issue_if_needed(platform.db())
        .await
        .map_err(|e| StartupError::SetupLink(e.to_string()))?;
    let mut out = format!("\n  Loopback is running at {base}\n");
    match issued {
        Some(issued) => {
            let link = format!("{base}/setup?token={}", issued.token);
            write_private(&link_file, &format!("{link}\n"))
                .map_err(|e| StartupError::SetupLink(format!("{}: {e}", link_file.display())))?;
            out.push_str(&format!(
                "  First operator: open this one-time link within 24 hours to create your account:\n    {link}\n  (also saved in {}, readable only by you; a restart replaces it)\n",
                link_file.display()
            ));
        }
        None => {
            let _ = fs::remove_file(&link_file);
            out.push_str(&format!("  Sign in at {base}/sign-in\n"));
        }
    }
    let mut stdout = io::stdout().lock();
    let _ = writeln!(stdout, "{out}");
    let _ = stdout.flush();
    Ok(())
}

fn write_private(path: &Path, contents: &str) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // `mode` only applies to new files; tighten an existing one too.
    file.set_permissions(fs::Permissions::from_mode(0o600))?;
    file.write_all(contents.as_bytes())
}

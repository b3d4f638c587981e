//! `loopback-agent`: connects this host to a Loopback portal. The agent
//! itself lives in the library; this parses arguments, logs to stderr,
//! handles signals and performs the restarts the library asks for.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use agent::update::{self, ROLLBACK_SECS_ENV, ROLLED_BACK_FROM_ENV, UPDATED_FROM_ENV};
use agent::{CancellationToken, Config, Stopped, TokenSource};
use clap::Parser;
use protocol::agent::AgentMessage;
use tracing::{error, info, warn};
use url::Url;

/// Connects this host to a Loopback portal.
#[derive(Debug, Parser)]
#[command(name = "loopback-agent", version, about)]
struct Args {
    /// Portal base URL, e.g. https://portal.example.com
    #[arg(long, env = "LOOPBACK_PORTAL_URL")]
    portal: Url,
    /// File holding the workspace agent token (keep it 0600).
    #[arg(long, env = "LOOPBACK_AGENT_TOKEN_FILE")]
    token_file: PathBuf,
    /// Seconds an updated binary has to reach the portal before it rolls
    /// back to the previous one.
    #[arg(long, env = ROLLBACK_SECS_ENV, default_value_t = update::DEFAULT_ROLLBACK.as_secs(), hide = true)]
    rollback_secs: u64,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let argv: Vec<OsString> = std::env::args_os().collect();
    let updated_from = std::env::var(UPDATED_FROM_ENV).ok();
    let rolled_back_from = std::env::var(ROLLED_BACK_FROM_ENV).ok();

    let executable = match std::env::current_exe() {
        Ok(exe) => Some(exe),
        Err(err) => {
            warn!(error = %err, "cannot locate this binary; self-update is disabled");
            None
        }
    };
    warn_if_token_file_is_readable_by_others(&args.token_file);
    let mut config = Config::new(args.portal, TokenSource::File(args.token_file));
    config.executable = executable;
    if let Some(from) = &updated_from {
        info!(from = %from, to = agent::VERSION, "started by an update");
        config.rollback_after = Some(Duration::from_secs(args.rollback_secs));
    }
    if let Some(failed) = rolled_back_from {
        config.initial_messages.push(AgentMessage::UpdateFailed {
            version: failed.clone(),
            error: format!(
                "agent {failed} did not reach the portal within {} s; rolled back to {}",
                args.rollback_secs,
                agent::VERSION
            ),
        });
    }

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            error!(error = %err, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    let shutdown = CancellationToken::new();
    runtime.spawn(stop_on_signals(shutdown.clone()));

    info!(
        version = agent::VERSION,
        protocol = protocol::AGENT_PROTOCOL_VERSION,
        portal = %config.portal,
        "loopback-agent starting"
    );
    loop {
        match runtime.block_on(agent::run(config.clone(), shutdown.clone())) {
            Ok(Stopped::Shutdown | Stopped::Uninstalled) => return ExitCode::SUCCESS,
            Ok(Stopped::Updated {
                executable,
                version,
            }) => {
                let err = update::exec(&executable, &argv, &[(UPDATED_FROM_ENV, agent::VERSION)]);
                error!(error = %err, "cannot start the new binary; rolling back");
                if let Err(err) = update::rollback(&executable) {
                    error!(error = %err, "rollback failed");
                }
                // This process still is the old version: carry on as it,
                // and tell the portal once it is back.
                config.rollback_after = None;
                config.initial_messages = vec![AgentMessage::UpdateFailed {
                    version,
                    error: format!("starting the new binary failed: {err}"),
                }];
            }
            Ok(Stopped::RolledBack { executable }) => {
                let err = update::exec(
                    &executable,
                    &argv,
                    &[(ROLLED_BACK_FROM_ENV, agent::VERSION)],
                );
                error!(error = %err, "cannot start the restored binary");
                return ExitCode::FAILURE;
            }
            Err(err) => {
                error!(error = %err, "agent stopped");
                return ExitCode::FAILURE;
            }
        }
    }
}

fn warn_if_token_file_is_readable_by_others(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(path) {
        Ok(meta) if meta.permissions().mode() & 0o077 != 0 => warn!(
            path = %path.display(),
            "the agent token file is accessible to other users; chmod 600 it"
        ),
        Ok(_) => {}
        // Reported on every connection attempt, which also retries it.
        Err(_) => {}
    }
}

async fn stop_on_signals(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        warn!("cannot install signal handlers; stop the agent with SIGKILL");
        return;
    };
    tokio::select! {
        _ = term.recv() => info!("SIGTERM: stopping"),
        _ = int.recv() => info!("SIGINT: stopping"),
    }
    shutdown.cancel();
}

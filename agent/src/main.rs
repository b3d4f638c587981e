//! The Loopback host agent: dials out to the portal, reports heartbeats and
//! runs commands. This build only parses its configuration; the connection
//! arrives with host support.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
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
}

fn main() -> ExitCode {
    let args = Args::parse();
    eprintln!(
        "loopback-agent {} (protocol {}): connecting to {} is not supported by this build yet",
        env!("CARGO_PKG_VERSION"),
        protocol::AGENT_PROTOCOL_VERSION,
        args.portal
    );
    let _ = args.token_file;
    ExitCode::from(2)
}

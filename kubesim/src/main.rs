//! `kubesim`: runs the simulated management cluster until Ctrl-C.

use std::{net::IpAddr, path::PathBuf, process::ExitCode, time::Duration};

use clap::Parser;

#[derive(Parser)]
#[command(about = "A simulated Kubernetes API server with Kamaji behaviour")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Port to listen on (0: any free port).
    #[arg(long, default_value_t = 6443)]
    port: u16,
    /// Keep CA, token and objects here across restarts.
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Milliseconds from TenantControlPlane creation to Ready.
    #[arg(long, default_value_t = 2000)]
    ready_delay_ms: u64,
    /// Milliseconds from a Deployment, StatefulSet, DaemonSet or Job being
    /// applied to its status reporting it ready.
    #[arg(long, default_value_t = 300)]
    workload_delay_ms: u64,
    /// Where to write the kubeconfig (default: <state-dir>/kubeconfig, else
    /// kubesim.kubeconfig in the temporary directory).
    #[arg(long)]
    kubeconfig_out: Option<PathBuf>,
    /// Extra DNS name or IP address for the server certificate (repeatable).
    #[arg(long = "san")]
    sans: Vec<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KUBESIM_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let kubeconfig_path = args
        .kubeconfig_out
        .clone()
        .unwrap_or_else(|| match &args.state_dir {
            Some(dir) => dir.join("kubeconfig"),
            None => std::env::temp_dir().join("kubesim.kubeconfig"),
        });
    let config = kubesim::Config {
        bind: args.bind,
        port: args.port,
        state_dir: args.state_dir,
        extra_sans: args.sans,
        kamaji: kubesim::Kamaji {
            ready_delay: Duration::from_millis(args.ready_delay_ms),
            ..Default::default()
        },
        workload_delay: Duration::from_millis(args.workload_delay_ms),
    };
    let sim = match kubesim::start(config).await {
        Ok(sim) => sim,
        Err(error) => {
            eprintln!("kubesim: {error}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(dir) = kubeconfig_path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Err(error) = std::fs::write(&kubeconfig_path, sim.kubeconfig()) {
        eprintln!(
            "kubesim: cannot write {}: {error}",
            kubeconfig_path.display()
        );
        sim.shutdown().await;
        return ExitCode::FAILURE;
    }
    println!("kubesim serving {}", sim.url());
    println!("kubeconfig: {}", kubeconfig_path.display());
    println!(
        "try: kubectl --kubeconfig {} get ns",
        kubeconfig_path.display()
    );
    let _ = tokio::signal::ctrl_c().await;
    sim.shutdown().await;
    ExitCode::SUCCESS
}

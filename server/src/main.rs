use std::process::ExitCode;

use clap::Parser;

mod agents;
mod api;
mod config;
mod downloads;
mod guard;
mod http;
mod live;
mod local_postgres;
mod shell;
mod shutdown;
mod startup;
mod telemetry;

fn main() -> ExitCode {
    let config = config::Config::parse();
    if let Some(config::Command::Routes) = config.command {
        return print_routes();
    }
    telemetry::init(config.log_format);
    let outcome = config.validate().and_then(|settings| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(startup::StartupError::Serve)?
            .block_on(startup::run(settings))
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line that names the problem and the fix; no backtrace.
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Every route the portal answers that takes input: server functions and
/// REST operations. The authorization tests enumerate this list.
fn print_routes() -> ExitCode {
    let server_functions: Vec<serde_json::Value> = leptos::server_fn::axum::server_fn_paths()
        .map(|(path, method)| serde_json::json!({ "method": method.as_str(), "path": path }))
        .collect();
    let openapi = api::openapi();
    let rest: Vec<serde_json::Value> = openapi
        .paths
        .paths
        .iter()
        .flat_map(|(path, item)| {
            let methods = [
                ("GET", item.get.is_some()),
                ("POST", item.post.is_some()),
                ("PUT", item.put.is_some()),
                ("PATCH", item.patch.is_some()),
                ("DELETE", item.delete.is_some()),
            ];
            methods
                .into_iter()
                .filter(|(_, present)| *present)
                .map(|(method, _)| serde_json::json!({ "method": method, "path": format!("/api/v1{path}") }))
                .collect::<Vec<_>>()
        })
        .collect();
    // Routes that are neither: how they authenticate is part of the listing.
    let other = serde_json::json!([
        { "method": "GET", "path": "/api/tasks/{task}/events", "auth": "session" },
        { "method": "GET", "path": "/api/workspaces/{workspace}/kubeconfig/{access}", "auth": "session" },
        { "method": "GET", "path": "/metrics", "auth": "metrics token when set" },
        { "method": "GET", "path": "/agent/v1/connect", "auth": "agent token" },
        { "method": "GET", "path": "/agent/v1/binary", "auth": "public (the agent binary)" },
        { "method": "GET", "path": "/agent/v1/releases/{version}", "auth": "public (the agent binary)" },
        { "method": "GET", "path": "/api/v1/hosts/{host}/shell/{session}/attach", "auth": "session + reconnection token" },
    ]);
    let listing =
        serde_json::json!({ "server_functions": server_functions, "rest": rest, "other": other });
    println!(
        "{}",
        serde_json::to_string_pretty(&listing).unwrap_or_default()
    );
    ExitCode::SUCCESS
}

use std::process::ExitCode;

use clap::Parser;

mod config;
mod http;
mod local_postgres;
mod shutdown;
mod startup;
mod telemetry;

fn main() -> ExitCode {
    let config = config::Config::parse();
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

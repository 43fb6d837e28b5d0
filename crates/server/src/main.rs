//! `softpos-server`: parses configuration and runs the back end (see the library). With a
//! first argument `attestation`, runs the offline attestation verifier instead (see `cli`).

use clap::Parser;

mod cli;

// glibc's allocator spent about a tenth of the server's CPU per payment under load (perf:
// malloc, free and their arena locks across the runtime and SQLite worker threads).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    if cli::selected() {
        return cli::run();
    }
    server_main()
}

#[tokio::main]
async fn server_main() -> std::process::ExitCode {
    // A missing `.env` is normal.
    let _ = dotenvy::dotenv();
    let config = server::config::Config::parse();
    let _telemetry =
        match server::infra::telemetry::init_logging(&config.log_filter, config.otlp().as_ref()) {
            Ok(guard) => guard,
            Err(error) => {
                eprintln!("softpos-server: cannot start trace export: {error:#}");
                return std::process::ExitCode::FAILURE;
            }
        };
    match server::run(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(
                error = format!("{error:#}"),
                "softpos-server failed to start"
            );
            eprintln!("softpos-server: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

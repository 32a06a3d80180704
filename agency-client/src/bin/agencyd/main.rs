//! `agencyd`: the agency client daemon. See `docs/agency.md`.

use std::path::PathBuf;
use std::process::ExitCode;

use agency_client::daemon::{self, DaemonConfig};
use clap::Parser;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(
    name = "agencyd",
    version,
    about = "Agency client daemon: holds the certificate, turns selectors into tokens, \
             registers operations with the broker and receives alerts",
    after_help = "Any configuration key can be overridden as AGENCYD__<SECTION>__<KEY>, e.g. \
                  AGENCYD__BROKER__ADDRESS=broker.example:7443. See docs/agency.md."
)]
struct Args {
    /// The TOML configuration file.
    #[arg(long, short, env = "AGENCYD_CONFIG")]
    config: Option<PathBuf>,
    /// Log JSON lines (overrides [log] json).
    #[arg(long)]
    log_json: bool,
    /// Print the effective configuration (after environment overrides) and exit.
    #[arg(long)]
    print_config: bool,
    /// Ask the broker (with the configured certificate) which token-service key and epoch it
    /// publishes, print them and exit. Compare them with what the federation administrator
    /// handed out before pinning them in [token_service].
    #[arg(long)]
    show_published_key: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// The duty officers who may sign in to the duty desk ([desk] officers, by default
    /// <data_dir>/desk-officers.toml): add, change a password, remove, list.
    DeskOfficers {
        #[command(subcommand)]
        command: deconfliction_web::officers_cli::OfficersCommand,
    },
}

fn init_logging(config: &DaemonConfig, json: bool) {
    let filter = EnvFilter::try_from_env("AGENCYD_LOG")
        .or_else(|_| EnvFilter::try_new(&config.log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if json || config.log.json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let config = match DaemonConfig::load(args.config.as_deref(), std::env::vars()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("agencyd: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(Command::DeskOfficers { command }) = args.command {
        let accounts = deconfliction_web::accounts::Accounts::new(config.desk_officers_path());
        return match deconfliction_web::officers_cli::run(
            &accounts,
            command,
            "agencyd --config agencyd.toml desk-officers",
        ) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("agencyd: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if args.print_config {
        return match toml::to_string_pretty(&config) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("agencyd: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if args.show_published_key {
        return match daemon::fetch_federation_info(&config).await {
            Ok(info) => {
                eprintln!(
                    "agencyd: the broker knows this certificate as agency {:?}; it publishes:",
                    info.agency_id
                );
                println!(
                    "[token_service]\npublic_key = \"{}\"\nkey_epoch = {}",
                    hex::encode(&info.token_service_public_key),
                    info.token_service_key_epoch
                );
                if info.previous_token_service_key_epoch != 0 {
                    eprintln!(
                        "agencyd: a key rotation is under way: the previous key is served until \
                         {} (Unix {}); keep it pinned as previous until then:",
                        agency_client::daemon::rfc3339(info.previous_key_valid_until_unix),
                        info.previous_key_valid_until_unix
                    );
                    println!(
                        "previous_public_key = \"{}\"\nprevious_key_epoch = {}",
                        hex::encode(&info.previous_token_service_public_key),
                        info.previous_token_service_key_epoch
                    );
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("agencyd: {e}");
                ExitCode::FAILURE
            }
        };
    }
    init_logging(&config, args.log_json);
    let running = match daemon::start(config).await {
        Ok(d) => d,
        Err(e) => {
            // Once, on stderr (where the journal and a person at a terminal both see it).
            eprintln!("agencyd: {e}");
            return ExitCode::from(if e.is_configuration() { 2 } else { 1 });
        }
    };
    wait_for_signal().await;
    tracing::info!("shutting down");
    running.shutdown().await;
    ExitCode::SUCCESS
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

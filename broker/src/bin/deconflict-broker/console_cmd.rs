//! `deconflict-broker console`: serve the watch centre's console, and manage the officers who
//! may sign in to it.

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;
use deconflict_broker::console::{ConsoleConfig, start};
use deconfliction_web::accounts::Accounts;
use deconfliction_web::officers_cli::{OfficersCommand, run as officers};

#[derive(Subcommand, Debug)]
pub enum ConsoleCommand {
    /// Serve the watch centre's console (web pages for watch officers) until stopped.
    #[command(after_help = "Example:\n  deconflict-broker console serve --config console.toml")]
    Serve {
        /// The console's configuration (docs/configuration.md, "console.toml").
        #[arg(long, short, default_value = "console.toml")]
        config: PathBuf,
    },
    /// The officers who may sign in: add, change a password, remove, list.
    Officers {
        /// The officers file (console.officers in console.toml).
        #[arg(long, default_value = "officers.toml")]
        file: PathBuf,
        #[command(subcommand)]
        command: OfficersCommand,
    },
}

pub async fn run(command: ConsoleCommand) -> Result<()> {
    match command {
        ConsoleCommand::Serve { config } => {
            let config = ConsoleConfig::load(&config)?;
            let running = start(config).await?;
            println!("watch centre console on {}", running.url);
            let stop = running.stopper();
            tokio::spawn(async move {
                let _ = tokio::signal::ctrl_c().await;
                let _ = stop.send(true);
            });
            #[cfg(unix)]
            {
                let stop = running.stopper();
                let mut term =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
                tokio::spawn(async move {
                    term.recv().await;
                    let _ = stop.send(true);
                });
            }
            running.wait().await;
            Ok(())
        }
        ConsoleCommand::Officers { file, command } => Ok(officers(
            &Accounts::new(file),
            command,
            "deconflict-broker console officers --file officers.toml",
        )?),
    }
}

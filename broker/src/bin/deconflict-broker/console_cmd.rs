//! `deconflict-broker console`: serve the watch centre's console, and manage the officers who
//! may sign in to it.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use deconflict_broker::console::{ConsoleConfig, start};
use deconfliction_web::accounts::Accounts;

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

#[derive(Subcommand, Debug)]
pub enum OfficersCommand {
    /// Add an officer; the password is asked for (or read from standard input when piped).
    #[command(
        after_help = "Example:\n  deconflict-broker console officers --file officers.toml add --name liwei --display-name 李伟"
    )]
    Add {
        /// Sign-in name: lowercase letters, digits, '.', '-', '_'.
        #[arg(long)]
        name: String,
        /// The name colleagues read on claims and notes (e.g. in Han characters).
        #[arg(long, default_value = "")]
        display_name: String,
    },
    /// Set a new password for an officer (asked for, or read from standard input).
    #[command(
        after_help = "Example:\n  deconflict-broker console officers --file officers.toml passwd --name liwei"
    )]
    Passwd {
        /// The officer's sign-in name.
        #[arg(long)]
        name: String,
    },
    /// Remove an officer; their sessions end at their next request.
    #[command(
        after_help = "Example:\n  deconflict-broker console officers --file officers.toml remove --name liwei"
    )]
    Remove {
        /// The officer's sign-in name.
        #[arg(long)]
        name: String,
    },
    /// List the officers (names only, never hashes).
    #[command(
        after_help = "Example:\n  deconflict-broker console officers --file officers.toml list"
    )]
    List,
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
        ConsoleCommand::Officers { file, command } => officers(Accounts::new(file), command),
    }
}

fn officers(accounts: Accounts, command: OfficersCommand) -> Result<()> {
    match command {
        OfficersCommand::Add { name, display_name } => {
            let password = new_password()?;
            accounts.add(&name, &display_name, &password)?;
            println!("officer {name} added to {}", accounts.path().display());
        }
        OfficersCommand::Passwd { name } => {
            if accounts.officer(&name)?.is_none() {
                bail!("no officer {name} in {}", accounts.path().display());
            }
            let password = new_password()?;
            accounts.set_password(&name, &password)?;
            println!("password of {name} changed");
        }
        OfficersCommand::Remove { name } => {
            accounts.remove(&name)?;
            println!("officer {name} removed");
        }
        OfficersCommand::List => {
            let list = accounts.list()?;
            if list.is_empty() {
                println!("no officers in {}", accounts.path().display());
            }
            for o in list {
                println!("{}\t{}", o.name, o.display_name);
            }
        }
    }
    Ok(())
}

/// A new password: asked twice at a terminal (not echoed), else one line of standard input.
fn new_password() -> Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("new password: ").context("reading the password")?;
        let again = rpassword::prompt_password("again: ").context("reading the password")?;
        if first != again {
            bail!("the two passwords differ; nothing was changed");
        }
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }
}

//! The officers file's command line, shared by `deconflict-broker console officers` and
//! `agencyd desk-officers`: add, change a password, remove, list. Passwords are asked for
//! twice at a terminal (never echoed) or read from one line of standard input.

use std::io::{BufRead, IsTerminal};

use clap::Subcommand;

use crate::accounts::{AccountError, Accounts};

#[derive(Subcommand, Debug)]
pub enum OfficersCommand {
    /// Add an officer; the password is asked for (or read from standard input when piped).
    #[command(
        after_help = "Examples:\n  deconflict-broker console officers --file officers.toml add --name liwei --display-name 李伟\n  agencyd --config agencyd.toml desk-officers add --name liwei --display-name 李伟"
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
        after_help = "Examples:\n  deconflict-broker console officers --file officers.toml passwd --name liwei\n  agencyd --config agencyd.toml desk-officers passwd --name liwei"
    )]
    Passwd {
        /// The officer's sign-in name.
        #[arg(long)]
        name: String,
    },
    /// Remove an officer; their sessions end at their next request.
    #[command(
        after_help = "Examples:\n  deconflict-broker console officers --file officers.toml remove --name liwei\n  agencyd --config agencyd.toml desk-officers remove --name liwei"
    )]
    Remove {
        /// The officer's sign-in name.
        #[arg(long)]
        name: String,
    },
    /// List the officers (names only, never hashes).
    #[command(
        after_help = "Examples:\n  deconflict-broker console officers --file officers.toml list\n  agencyd --config agencyd.toml desk-officers list"
    )]
    List,
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum OfficersError {
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error("reading the password: {0}")]
    Read(String),
    #[error("the two passwords differ; nothing was changed")]
    Mismatch,
}

/// Runs `command` on `accounts`; `program` is how the help names the command.
pub fn run(
    accounts: &Accounts,
    command: OfficersCommand,
    program: &str,
) -> Result<(), OfficersError> {
    match command {
        OfficersCommand::Add { name, display_name } => {
            let password = new_password()?;
            accounts.add(&name, &display_name, &password)?;
            println!("officer {name} added to {}", accounts.path().display());
        }
        OfficersCommand::Passwd { name } => {
            if accounts.officer(&name)?.is_none() {
                return Err(AccountError::NoSuchOfficer(name).into());
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
                println!(
                    "no officers in {} (add one with `{program} add --name NAME`)",
                    accounts.path().display()
                );
            }
            for o in list {
                println!("{}\t{}", o.name, o.display_name);
            }
        }
    }
    Ok(())
}

/// A new password: asked twice at a terminal (not echoed), else one line of standard input.
fn new_password() -> Result<String, OfficersError> {
    let read = |e: std::io::Error| OfficersError::Read(e.to_string());
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("new password: ").map_err(read)?;
        let again = rpassword::prompt_password("again: ").map_err(read)?;
        if first != again {
            return Err(OfficersError::Mismatch);
        }
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map_err(read)?;
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }
}

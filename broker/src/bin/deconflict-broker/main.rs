//! `deconflict-broker`: the broker daemon and its operator subcommands.

mod console_cmd;
mod drill_cmd;
mod pepper_cmd;
mod remote;
mod restore;
mod store_cmd;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use deconflict_broker::config::BrokerConfig;
use deconflict_broker::identity::AgencyId;
use deconflict_broker::ledger::audit::Verdict;
use deconflict_broker::pki::dev::{DEV_AGENCIES, ensure_dev_federation};
use deconflict_broker::pki::dir::PkiDir;
use deconflict_broker::server::{Mode, RunningBroker, start};

#[derive(Parser, Debug)]
#[command(
    name = "deconflict-broker",
    version,
    about = "The deconfliction broker daemon"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Logging of the serving commands (the others print to the terminal).
#[derive(clap::Args, Debug, Clone, Copy)]
struct LogArgs {
    /// Log as JSON lines (for log collectors) instead of text.
    #[arg(long, env = "DECONFLICT_LOG_JSON")]
    log_json: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the broker (and, unless disabled, the token service).
    #[command(
        after_help = "Example:\n  deconflict-broker serve --config /etc/deconflict/broker.toml"
    )]
    Serve {
        /// The configuration file (docs/configuration.md lists every key).
        #[arg(long, short, default_value = "broker.toml")]
        config: PathBuf,
        #[command(flatten)]
        log: LogArgs,
    },
    /// Serve only the token service, on its own port and certificate.
    #[command(
        after_help = "Example:\n  deconflict-broker token-service --config token-service.toml"
    )]
    TokenService {
        /// The configuration file (the broker's format; docs/configuration.md).
        #[arg(long, short, default_value = "token-service.toml")]
        config: PathBuf,
        /// Print the public key and epoch for the broker's configuration (creating the seed
        /// on first use) and exit, instead of serving.
        #[arg(long)]
        show_public_key: bool,
        #[command(flatten)]
        log: LogArgs,
    },
    /// Create a development federation folder on first start, then serve it on loopback.
    #[command(
        after_help = "Example:\n  deconflict-broker dev            # ./dev-federation, 127.0.0.1:7443"
    )]
    Dev {
        /// The federation folder (CA, certificates, secrets, data), created on first start.
        #[arg(long, default_value = "dev-federation")]
        dir: PathBuf,
        /// Where to serve.
        #[arg(long, default_value = "127.0.0.1:7443")]
        listen: SocketAddr,
        #[command(flatten)]
        log: LogArgs,
    },
    /// The audit log: verify its hash chain, or export it for an oversight body. Run with the
    /// broker stopped (or on a backup): a serving broker holds the store's lock.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Restore a backup (from `admin backup`) into the data folder of a stopped broker.
    #[command(
        after_help = "Example:\n  deconflict-broker restore --config broker.toml --from /var/backups/deconflict/2026-12-05"
    )]
    Restore {
        /// The stopped broker's configuration (its data folder is restored into).
        #[arg(long, short, default_value = "broker.toml")]
        config: PathBuf,
        /// The backup folder.
        #[arg(long)]
        from: PathBuf,
    },
    /// The store of a stopped broker: compact it.
    Store {
        #[command(subcommand)]
        command: store_cmd::StoreCommand,
    },
    /// The pepper: show its layers, or re-key a stopped broker's store under a new one.
    Pepper {
        #[command(subcommand)]
        command: pepper_cmd::PepperCommand,
    },
    /// The watch centre's view of the federation (needs a watch-centre or admin certificate).
    Watch {
        #[command(flatten)]
        connection: remote::Connection,
        #[command(subcommand)]
        command: remote::WatchCommand,
    },
    /// Enrol, suspend and reinstate agencies (needs an admin certificate).
    Admin {
        #[command(flatten)]
        connection: remote::Connection,
        #[command(subcommand)]
        command: remote::AdminCommand,
    },
    /// Exercises beside the live federation: start, halt, end, list (needs an admin
    /// certificate; see docs/drills.md).
    Drill {
        #[command(flatten)]
        connection: remote::Connection,
        #[command(subcommand)]
        command: drill_cmd::DrillCommand,
    },
    /// The watch centre's console: web pages for watch officers (needs a watch-centre
    /// certificate; see docs/console.md), and the officers who may sign in.
    Console {
        #[command(subcommand)]
        command: console_cmd::ConsoleCommand,
    },
    /// Certificate authority operations (run where the CA key is kept).
    Pki {
        #[command(subcommand)]
        command: PkiCommand,
    },
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Check the whole chain; names the first broken record. Exit code 1 if broken.
    #[command(after_help = "Example:\n  deconflict-broker audit verify --config broker.toml")]
    Verify {
        /// The stopped broker's configuration (or one pointing at a backup).
        #[arg(long, short, default_value = "broker.toml")]
        config: PathBuf,
        /// A checkpoint kept outside the broker ("SEQ:HEX", from `watch stats` or the log's
        /// "audit checkpoint" lines): the chain must still reach it and hold the same record
        /// there, so that a truncated or rewritten log fails.
        #[arg(long, value_name = "SEQ:HEX")]
        expect_head: Option<String>,
    },
    /// Write records as JSON lines (to stdout unless --out).
    #[command(
        after_help = "Example:\n  deconflict-broker audit export --config broker.toml --from 1 --out audit.jsonl"
    )]
    Export {
        /// The stopped broker's configuration (or one pointing at a backup).
        #[arg(long, short, default_value = "broker.toml")]
        config: PathBuf,
        /// First record to export.
        #[arg(long, default_value_t = 1)]
        from: u64,
        /// Write to this file instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum PkiCommand {
    /// Create a federation CA in DIR (ca.pem, ca.key, empty CRL).
    #[command(after_help = "Example:\n  deconflict-broker pki init-ca --dir pki")]
    InitCa {
        /// The PKI folder (created; refused if it already holds a CA).
        #[arg(long)]
        dir: PathBuf,
        /// The CA's common name.
        #[arg(long, default_value = "Deconfliction federation CA")]
        name: String,
        /// Validity in days.
        #[arg(long, default_value_t = 3650)]
        days: i64,
    },
    /// Issue a server certificate (broker or token service).
    #[command(
        after_help = "Example:\n  deconflict-broker pki issue-server --dir pki --dns broker.example --ip 10.1.2.3 --out pki/broker"
    )]
    IssueServer {
        /// The PKI folder made by `pki init-ca`.
        #[arg(long)]
        dir: PathBuf,
        /// The certificate's common name.
        #[arg(long, default_value = "deconflict-broker")]
        name: String,
        /// DNS names agencies will connect by (repeatable).
        #[arg(long = "dns")]
        dns: Vec<String>,
        /// IP addresses agencies will connect by (repeatable).
        #[arg(long = "ip")]
        ips: Vec<IpAddr>,
        /// Validity in days.
        #[arg(long, default_value_t = 365)]
        days: i64,
        /// Output prefix: writes PREFIX.pem and PREFIX.key.
        #[arg(long)]
        out: PathBuf,
        /// Overwrite PREFIX.pem and PREFIX.key if they exist.
        #[arg(long)]
        force: bool,
    },
    /// Issue an agency's client certificate (SAN urn:deconfliction:agency:<id>).
    #[command(
        after_help = "Example:\n  deconflict-broker pki issue-agency --dir pki --agency gd-psb --out gd-psb\n\
                      Give the agency gd-psb.pem, gd-psb.key and pki/ca.pem."
    )]
    IssueAgency {
        /// The PKI folder made by `pki init-ca`.
        #[arg(long)]
        dir: PathBuf,
        /// The agency id (a-z, 0-9, '-', '_', '.'), e.g. gd-psb.
        #[arg(long)]
        agency: String,
        /// Validity in days.
        #[arg(long, default_value_t = 365)]
        days: i64,
        /// Output prefix: writes PREFIX.pem and PREFIX.key.
        #[arg(long)]
        out: PathBuf,
        /// Overwrite PREFIX.pem and PREFIX.key if they exist.
        #[arg(long)]
        force: bool,
    },
    /// Revoke a certificate and re-sign the CRL (brokers reload it within seconds).
    #[command(after_help = "Example:\n  deconflict-broker pki revoke --dir pki --cert gd-psb.pem")]
    Revoke {
        /// The PKI folder made by `pki init-ca`.
        #[arg(long)]
        dir: PathBuf,
        /// The certificate to revoke (PEM).
        #[arg(long)]
        cert: PathBuf,
    },
    /// Re-sign the CRL (do this before it expires, e.g. weekly from a timer).
    #[command(after_help = "Example:\n  deconflict-broker pki crl --dir pki")]
    Crl {
        /// The PKI folder made by `pki init-ca`.
        #[arg(long)]
        dir: PathBuf,
    },
}

/// Refuses to overwrite an issued certificate or key unless told to.
fn refuse_overwrite(out: &Path, force: bool) -> Result<()> {
    for path in [with_ext(out, "pem"), with_ext(out, "key")] {
        if path.exists() && !force {
            anyhow::bail!(
                "{} exists: refusing to overwrite an issued certificate or key (use another \
                 --out, or --force to replace it)",
                path.display()
            );
        }
    }
    Ok(())
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("DECONFLICT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a person at a terminal: a log file or a pipe gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn with_ext(prefix: &Path, ext: &str) -> PathBuf {
    let mut p = prefix.as_os_str().to_owned();
    p.push(".");
    p.push(ext);
    PathBuf::from(p)
}

fn pki(command: PkiCommand) -> Result<()> {
    match command {
        PkiCommand::InitCa { dir, name, days } => {
            PkiDir::create(&dir, &name, days)?;
            println!("created CA in {}", dir.display());
        }
        PkiCommand::IssueServer {
            dir,
            name,
            dns,
            ips,
            days,
            out,
            force,
        } => {
            let pki = PkiDir::open(&dir)?;
            refuse_overwrite(&out, force)?;
            let pair = pki.issue_server(&name, &dns, &ips, days)?;
            PkiDir::save(&pair, &with_ext(&out, "pem"), &with_ext(&out, "key"))?;
            println!("wrote {}.pem and {}.key", out.display(), out.display());
        }
        PkiCommand::IssueAgency {
            dir,
            agency,
            days,
            out,
            force,
        } => {
            let pki = PkiDir::open(&dir)?;
            let agency = AgencyId::parse_local(&agency)?;
            refuse_overwrite(&out, force)?;
            let pair = pki.issue_agency(&agency, days)?;
            PkiDir::save(&pair, &with_ext(&out, "pem"), &with_ext(&out, "key"))?;
            println!(
                "wrote {}.pem and {}.key for agency {agency}",
                out.display(),
                out.display()
            );
        }
        PkiCommand::Revoke { dir, cert } => {
            let pki = PkiDir::open(&dir)?;
            let pem = std::fs::read_to_string(&cert)
                .with_context(|| format!("cannot read {}", cert.display()))?;
            let serial = pki.revoke(&pem)?;
            println!(
                "revoked serial {serial}; CRL rewritten at {}",
                pki.crl_path().display()
            );
        }
        PkiCommand::Crl { dir } => {
            let path = PkiDir::open(&dir)?.write_crl()?;
            println!("CRL re-signed at {}", path.display());
        }
    }
    Ok(())
}

/// The store the configuration names (the sled folder, or the shared database).
fn open_store(config: &Path) -> Result<std::sync::Arc<dyn deconflict_broker::store::Store>> {
    let config = BrokerConfig::load(config)?;
    Ok(deconflict_broker::server::open_store(&config)?)
}

fn audit(command: AuditCommand) -> Result<()> {
    match command {
        AuditCommand::Verify {
            config,
            expect_head,
        } => {
            let expect = match expect_head.as_deref() {
                Some(text) => Some(
                    deconflict_broker::ledger::audit::Checkpoint::parse(text).ok_or_else(|| {
                        ConfigProblem(anyhow::anyhow!(
                            "--expect-head {text:?}: write SEQ:HEX (64 hex digits), as the \
                             checkpoint is printed"
                        ))
                    })?,
                ),
                None => None,
            };
            let store = open_store(&config)?;
            match deconflict_broker::ledger::audit::verify_against(store.as_ref(), expect.as_ref())?
            {
                Verdict::Intact { records } => {
                    println!("audit chain intact: {records} records");
                }
                Verdict::Broken { seq, reason } => {
                    println!("audit chain BROKEN at record {seq}: {reason}");
                    std::process::exit(1);
                }
            }
        }
        AuditCommand::Export { config, from, out } => {
            let store = open_store(&config)?;
            let n = match out {
                Some(path) => {
                    let mut file = std::io::BufWriter::new(
                        std::fs::File::create(&path)
                            .with_context(|| format!("cannot create {}", path.display()))?,
                    );
                    let n =
                        deconflict_broker::ledger::audit::export(store.as_ref(), from, &mut file)?;
                    std::io::Write::flush(&mut file)?;
                    n
                }
                None => deconflict_broker::ledger::audit::export(
                    store.as_ref(),
                    from,
                    &mut std::io::stdout(),
                )?,
            };
            eprintln!("exported {n} audit records");
        }
    }
    Ok(())
}

/// The stand-alone token service's public key, as the broker's configuration takes it (the
/// broker publishes it to agencies; it never holds the seed).
fn print_token_service_key(config: &BrokerConfig) -> Result<()> {
    let ts = &config.token_service;
    let key = deconflict_broker::tokens::TokenKey::load_or_create(&ts.seed, ts.key_epoch)?;
    println!(
        "# [token_service] of broker.toml, for a token service that runs apart\n\
         enabled = false\nexternal_public_key = \"{}\"\nkey_epoch = {}",
        hex::encode(key.public_key()),
        key.epoch()
    );
    Ok(())
}

/// Where the development federation's agency material is, and what to run next.
fn print_dev_next_steps(dir: &Path, config: &BrokerConfig) {
    eprintln!(
        "development only: the token service runs inside this broker, with its seed beside \
         the pepper; in production run it apart (deconflict-broker token-service, see \
         docs/operations.md)\n\
         agency certificates: {}/<agency>/ (cert.pem, key.pem and the CA ca.pem) for {}\n\
         next: an agencyd per agency, as docs/agency.md shows (\"Against the development \
         federation\"), then `deconflict status`; broker at {}\n\
         watch centre's console: deconflict-broker console officers --file {} add --name duty, \
         then deconflict-broker console serve --config {} (docs/console.md)",
        dir.join("agencies").display(),
        DEV_AGENCIES.join(", "),
        config.server.listen,
        dir.join("officers.toml").display(),
        dir.join("console.toml").display(),
    );
}

async fn serve(config: &BrokerConfig, mode: Mode) -> Result<()> {
    let running = start(config, mode).await?;
    eprintln!("listening on {}", running.addr);
    if let Some(m) = running.metrics_addr {
        eprintln!("metrics on http://{m}/metrics");
    }
    wait_for_signals(&running).await?;
    running.shutdown().await;
    Ok(())
}

#[cfg(unix)]
async fn wait_for_signals(running: &RunningBroker) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
            _ = hup.recv() => match running.reload_tls() {
                Ok(revoked) => tracing::info!(revoked, "SIGHUP: TLS material reloaded"),
                Err(e) => tracing::error!(error = %e, "SIGHUP: reload failed, previous kept"),
            },
        }
    }
    tracing::info!("shutting down");
    Ok(())
}

#[cfg(not(unix))]
async fn wait_for_signals(_running: &RunningBroker) -> Result<()> {
    tokio::signal::ctrl_c().await?;
    Ok(())
}

/// A configuration that cannot be used: exit code 2, as for bad arguments.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct ConfigProblem(anyhow::Error);

fn load_config(path: &Path) -> Result<BrokerConfig> {
    BrokerConfig::load(path).map_err(|e| ConfigProblem(e.into()).into())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let json = match &cli.command {
        Command::Serve { log, .. }
        | Command::TokenService { log, .. }
        | Command::Dev { log, .. } => log.log_json,
        _ => false,
    };
    init_logging(json);
    match run(cli.command).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The message and its causes on one line; the backtrace only when asked for
            // with DECONFLICT_LOG=debug, whatever RUST_BACKTRACE says.
            let debug = std::env::var("DECONFLICT_LOG").is_ok_and(|v| v.contains("debug"));
            if debug {
                eprintln!("deconflict-broker: {e:?}");
            } else {
                eprintln!("deconflict-broker: {e:#}");
            }
            let config = e.downcast_ref::<ConfigProblem>().is_some();
            std::process::ExitCode::from(if config { 2 } else { 1 })
        }
    }
}

async fn run(command: Command) -> Result<()> {
    match command {
        Command::Serve { config, .. } => {
            let config = load_config(&config)?;
            serve(&config, Mode::Broker).await
        }
        Command::TokenService {
            config,
            show_public_key,
            ..
        } => {
            let config = load_config(&config)?;
            if show_public_key {
                return print_token_service_key(&config);
            }
            serve(&config, Mode::TokenServiceOnly).await
        }
        Command::Dev { dir, listen, .. } => {
            if ensure_dev_federation(&dir, listen)? {
                eprintln!(
                    "created development federation in {} (agencies: {})",
                    dir.display(),
                    DEV_AGENCIES.join(", ")
                );
            }
            let config = load_config(&dir.join("broker.toml"))?;
            print_dev_next_steps(&dir, &config);
            serve(&config, Mode::Broker).await
        }
        Command::Pki { command } => pki(command),
        Command::Audit { command } => audit(command),
        Command::Restore { config, from } => restore::restore(&config, &from),
        Command::Store { command } => store_cmd::run(command),
        Command::Pepper { command } => pepper_cmd::run(command),
        Command::Watch {
            connection,
            command,
        } => remote::watch(connection, command).await,
        Command::Admin {
            connection,
            command,
        } => remote::admin(connection, command).await,
        Command::Drill {
            connection,
            command,
        } => drill_cmd::run(connection, command).await,
        Command::Console { command } => console_cmd::run(command).await,
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Every flag says what it is for, and every command shows an example.
    #[test]
    fn every_flag_has_help_and_every_command_an_example() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let path = format!("{path} {}", cmd.get_name());
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id != "help" && id != "version" && arg.get_help().is_none() {
                    missing.push(format!("{path}: --{id} has no help"));
                }
            }
            let subs: Vec<_> = cmd.get_subcommands().collect();
            if subs.is_empty() {
                let example = cmd
                    .get_after_help()
                    .is_some_and(|h| h.to_string().contains("Example"));
                if !example {
                    missing.push(format!("{path}: no example"));
                }
            }
            for sub in subs {
                walk(sub, &path, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "", &mut missing);
        assert!(missing.is_empty(), "{missing:#?}");
    }
}

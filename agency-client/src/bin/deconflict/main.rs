//! `deconflict`: the duty officers' command-line tool. It talks only to the local `agencyd`
//! (over its Unix socket); it never holds the agency's certificate key. `normalize` works
//! offline.
//!
//! One module per group of subcommands. Exit codes are in `fail.rs` and `docs/agency.md`.

use std::path::PathBuf;
use std::process::ExitCode;

use agency_client::control::{self, SOCKET_ENV};
use clap::{CommandFactory, Parser, Subcommand};

mod alerts;
mod fail;
mod import;
mod json;
mod normalize;
mod ops;
mod out;
mod relay;
mod status;

#[derive(Debug, Parser)]
#[command(
    name = "deconflict",
    version,
    about = "Deconfliction client for duty officers",
    long_about = "Deconfliction client for duty officers.\n\n\
        Register your unit's operations, check selectors, and see when another unit works the \
        same target. Everything goes through the local agencyd daemon; the other agency never \
        learns who you are until both of you disclose.",
    after_help = "Exit codes: 0 done, 1 refused by the broker or agencyd, 2 bad input, \
        3 agencyd unreachable, 4 broker or token service unreachable.\n\
        Every command takes --json. See docs/agency.md."
)]
struct Cli {
    /// agencyd's control socket.
    #[arg(long, global = true, env = SOCKET_ENV, value_name = "PATH")]
    socket: Option<PathBuf>,

    /// Act in this drill (an exercise): the daemon at --socket must be the drill's agencyd.
    /// Without it, a drill's agencyd is refused, so that nobody registers a real operation
    /// into an exercise by mistake.
    #[arg(long, global = true, env = "DECONFLICT_DRILL", value_name = "ID")]
    drill: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Register an operation, from a file (--file) or from flags (-s KIND=VALUE --days N).
    Register(ops::RegisterArgs),
    /// Hit/no-hit check of selectors without registering them.
    Check(ops::CheckArgs),
    /// Add or remove selectors, or move the window, of one of your operations.
    Amend(ops::AmendArgs),
    /// Close one of your operations.
    Close(ops::CloseArgs),
    /// List your operations, or show one with its selectors.
    Ops(ops::OpsArgs),
    /// List alerts (your own selectors shown in clear), or show one.
    Alerts(alerts::AlertsArgs),
    /// Mark alerts as seen.
    Ack(alerts::AckArgs),
    /// Follow alerts, relay messages and operation events as they happen.
    Watch(alerts::WatchArgs),
    /// Register a batch of operations from a CSV or JSON-lines file.
    Import(import::ImportArgs),
    /// Daemon, broker and token-service reachability, outbox, key epoch.
    Status(status::StatusArgs),
    /// Send a message to the other party of a match (anonymous).
    Message(relay::MessageArgs),
    /// Disclose your contact card on a match (delivered only when both sides have), or --withdraw it.
    Disclose(relay::DiscloseArgs),
    /// Mark a match resolved (--outcome), or --reopen it.
    Resolve(relay::ResolveArgs),
    /// Show a match and its thread.
    Match(relay::MatchArgs),
    /// Show the canonical form(s) of a selector, or of every case of a token-vectors file.
    Normalize(normalize::Args),
    /// Print shell completions (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Exit code for input the spec rejects (clap uses the same code for bad usage).
pub(crate) const EXIT_BAD_INPUT: u8 = 2;

/// What every daemon command needs.
pub(crate) struct Ctx {
    pub socket: PathBuf,
    /// `--drill`: the exercise the officer means to act in (None: live).
    pub drill: Option<String>,
}

type Client = control::pb::agency_control_client::AgencyControlClient<tonic::transport::Channel>;

impl Ctx {
    /// The daemon, once it is known to serve what the officer means (live, or `--drill`).
    pub(crate) async fn client(&self) -> Result<Client, fail::Failure> {
        let (client, served) = self.identified().await?;
        match (self.drill.as_deref(), served.as_deref()) {
            (None, None) => Ok(client),
            (Some(want), Some(have)) if want == have => Ok(client),
            (None, Some(have)) => Err(fail::Failure::bad_input(format!(
                "the agencyd at {} takes part in drill {have}, an exercise: add --drill {have} \
                 to act in it (real operations go to your live agencyd)",
                self.socket.display()
            ))),
            (Some(want), None) => Err(fail::Failure::bad_input(format!(
                "the agencyd at {} serves the live federation, not drill {want}: point --socket \
                 at the drill's agencyd (its [daemon] socket)",
                self.socket.display()
            ))),
            (Some(want), Some(have)) => Err(fail::Failure::bad_input(format!(
                "the agencyd at {} takes part in drill {have}, not drill {want}",
                self.socket.display()
            ))),
        }
    }

    /// The daemon whatever it serves (for `status`, which says so).
    pub(crate) async fn client_any(&self) -> Result<Client, fail::Failure> {
        Ok(self.identified().await?.0)
    }

    /// Connects and asks which federation the daemon serves; an exercise is announced on
    /// stderr before anything else is printed.
    async fn identified(&self) -> Result<(Client, Option<String>), fail::Failure> {
        let mut client = control::connect(&self.socket).await?;
        let id = client
            .identify(control::pb::IdentifyRequest {})
            .await?
            .into_inner();
        if id.drill_id.is_empty() {
            return Ok((client, None));
        }
        out::exercise_banner(&id.drill_id, &id.drill_name);
        Ok((client, Some(id.drill_id)))
    }
}

/// Now, Unix seconds.
pub(crate) fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let ctx = Ctx {
        socket: cli.socket.unwrap_or_else(control::default_socket_path),
        drill: cli.drill,
    };
    let command = match cli.command {
        Command::Normalize(args) => {
            // Offline: whatever fails is the input (a file that cannot be read or parsed).
            return match normalize::run(args) {
                Ok(code) => code,
                Err(err) => {
                    eprintln!("deconflict: {err:#}");
                    ExitCode::from(EXIT_BAD_INPUT)
                }
            };
        }
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "deconflict",
                &mut std::io::stdout(),
            );
            return ExitCode::SUCCESS;
        }
        other => other,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("deconflict: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match command {
            Command::Register(a) => ops::register(&ctx, a).await,
            Command::Check(a) => ops::check(&ctx, a).await,
            Command::Amend(a) => ops::amend(&ctx, a).await,
            Command::Close(a) => ops::close(&ctx, a).await,
            Command::Ops(a) => ops::ops(&ctx, a).await,
            Command::Alerts(a) => alerts::alerts(&ctx, a).await,
            Command::Ack(a) => alerts::ack(&ctx, a).await,
            Command::Watch(a) => alerts::watch(&ctx, a).await,
            Command::Import(a) => import::import(&ctx, a).await,
            Command::Status(a) => status::status(&ctx, a).await,
            Command::Message(a) => relay::message(&ctx, a).await,
            Command::Disclose(a) => relay::disclose(&ctx, a).await,
            Command::Resolve(a) => relay::resolve(&ctx, a).await,
            Command::Match(a) => relay::show_match(&ctx, a).await,
            Command::Normalize(_) | Command::Completions { .. } => Ok(()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("deconflict: {}", f.message);
            f.exit()
        }
    }
}

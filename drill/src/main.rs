//! `deconflict-drill`: check a scenario, or run it (start the drill at the broker, wait for
//! the trainees, play the injects with simulated bureaus, end the drill, write the
//! after-action report).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use deconflict_drill::controller::{Controller, ControllerConfig};
use deconflict_drill::play::{PlayOptions, play};
use deconflict_drill::scenario::Scenario;
use deconflict_drill::{report, write_report};

#[derive(Parser, Debug)]
#[command(
    name = "deconflict-drill",
    version,
    about = "Exercises: scenario drills beside the live federation"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Read a scenario and say what is wrong with it, without a broker.
    #[command(
        after_help = "Example:\n  deconflict-drill check --scenario deploy/drills/telecom-fraud.toml"
    )]
    Check {
        #[arg(long)]
        scenario: PathBuf,
    },
    /// Start the drill, play the scenario, end the drill and write the after-action report.
    #[command(
        after_help = "Example:\n  deconflict-drill run --scenario deploy/drills/mekong-route.toml --controller controller.toml --out aar/"
    )]
    Run {
        #[arg(long)]
        scenario: PathBuf,
        /// controller.toml: the broker, the admin certificate, the simulated bureaus'
        /// certificates (docs/drills.md).
        #[arg(long)]
        controller: PathBuf,
        /// Where report.json and report.html are written.
        #[arg(long, default_value = "after-action")]
        out: PathBuf,
        /// The drill's id at the broker (default: the scenario's).
        #[arg(long)]
        id: Option<String>,
        /// The drill's port (0: any free port, printed with what trainees add to agencyd).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Real seconds per scenario minute (60: real time; less to rehearse the script).
        #[arg(long, default_value_t = 60.0)]
        minute_seconds: f64,
        /// Stop as soon as every expected reaction was seen.
        #[arg(long)]
        until_done: bool,
        /// Leave the drill running at the end (end it with `deconflict-broker drill end`).
        #[arg(long)]
        keep: bool,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("deconflict-drill: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("deconflict-drill: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Check { scenario } => {
            let s = Scenario::load(&scenario)?;
            println!(
                "{}: drill {} ({}), {} simulated bureaus, {} trainees, {} injects over {} minutes",
                scenario.display(),
                s.drill.id,
                s.drill.name,
                s.parties.len(),
                s.trainees.len(),
                s.injects.len(),
                s.drill.duration_minutes
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Run {
            scenario,
            controller,
            out,
            id,
            port,
            minute_seconds,
            until_done,
            keep,
        } => {
            if !(minute_seconds > 0.0 && minute_seconds.is_finite()) {
                anyhow::bail!("--minute-seconds must be more than 0");
            }
            let s = Scenario::load(&scenario)?;
            let config = ControllerConfig::load(&controller)?;
            let work = config.work_dir.clone();
            let mut c = Controller::connect(config).await?;
            let started = c.start(&s, id.as_deref(), minute_seconds, port).await?;
            eprintln!(
                "*** EXERCISE · drill {} started on {} · T+0 in {} minutes ***\nEach trainee \
                 runs a second agencyd (its own data folder and socket) with:\n\n{}",
                started.drill_id,
                started.address,
                s.drill.lead_minutes,
                started.join_snippet()
            );
            let opts = PlayOptions {
                minute_seconds,
                until_done,
                tick: Duration::from_millis(500),
            };
            let played = play(&c, &s, &started, work.join(&started.drill_id), &opts).await;
            let ended = if keep {
                None
            } else {
                Some(c.end(&started.drill_id).await)
            };
            let played = played?;
            let report = report::build(&s, &played);
            write_report(&out, &report)?;
            let sum = &report.summary;
            println!(
                "drill {}: {} expected reactions, {} met, {} late, {} missed; report in {}",
                report.drill_id,
                sum.expected,
                sum.met,
                sum.late,
                sum.missed,
                out.display()
            );
            if let Some(ended) = ended {
                let purged = ended?;
                println!("drill {} ended: {purged} records purged", started.drill_id);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

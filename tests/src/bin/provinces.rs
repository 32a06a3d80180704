//! Simulated provinces as a command: a federation of provincial public-security bureaus runs
//! a seeded operation mix against an in-process broker on loopback and prints how the broker's
//! alerts compare with the ground truth.
//!
//! ```sh
//! cargo run --release -p deconfliction-tests --bin provinces -- --provinces 34 --operations 20000
//! ```

use std::process::ExitCode;
use std::time::Duration;

use deconfliction_tests::sim::{self, RunOptions, SimConfig};

const USAGE: &str =
    "usage: provinces [--provinces N (1-34, default 34)] [--operations N (default 2000)]
                 [--seed N (default 1)] [--workers N (default 16)] [--plant-rate F (default 0.35)]
                 [--no-same-agency] [--quiet]";

fn parse() -> Result<(SimConfig, RunOptions), String> {
    let mut config = SimConfig {
        provinces: 34,
        operations: 2000,
        seed: 1,
        ..SimConfig::default()
    };
    let mut opts = RunOptions {
        workers: 16,
        progress: true,
        quiet: Duration::from_secs(1),
        deadline: Duration::from_secs(120),
        collect_broker_files: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        let bad = |e: &dyn std::fmt::Display| format!("{flag}: {e}");
        match flag.as_str() {
            "--provinces" => config.provinces = value()?.parse().map_err(|e| bad(&e))?,
            "--operations" => config.operations = value()?.parse().map_err(|e| bad(&e))?,
            "--seed" => config.seed = value()?.parse().map_err(|e| bad(&e))?,
            "--workers" => opts.workers = value()?.parse().map_err(|e| bad(&e))?,
            "--plant-rate" => config.plant_rate = value()?.parse().map_err(|e| bad(&e))?,
            "--no-same-agency" => config.match_same_agency = false,
            "--quiet" => opts.progress = false,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if !(1..=34).contains(&config.provinces) {
        return Err("--provinces must be 1 to 34".into());
    }
    if config.operations == 0 || !(0.0..=1.0).contains(&config.plant_rate) {
        return Err("--operations must be positive and --plant-rate within 0..1".into());
    }
    Ok((config, opts))
}

#[tokio::main]
async fn main() -> ExitCode {
    let (config, opts) = match parse() {
        Ok(v) => v,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("provinces: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    eprintln!(
        "generating {} operations for {} provinces (seed {})",
        config.operations, config.provinces, config.seed
    );
    let sim = sim::generate(&config);
    let truth = match sim::expected(&sim) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("provinces: a generated selector does not normalize: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "{} tokens, {} matches expected; starting the broker",
        truth.token_count(),
        truth.pairs.len()
    );
    let outcome = match sim::run(&sim, &truth, &opts).await {
        Ok(o) => o,
        Err(e) => {
            eprintln!("provinces: the run failed: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let cmp = sim::compare(&sim, &truth, &outcome);
    print!("{}", sim::summary(&sim, &truth, &outcome, &cmp));
    if cmp.ok() && outcome.register_errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        print!("{}", sim::differences(&sim, &cmp, 10));
        for e in outcome.register_errors.iter().take(10) {
            println!("  registration refused: {e}");
        }
        ExitCode::FAILURE
    }
}

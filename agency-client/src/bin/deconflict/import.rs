//! `import`: a CSV or JSON-lines batch of operations, registered one by one (queued in
//! agencyd's outbox), with a progress bar on a terminal.

use std::io::IsTerminal;
use std::path::PathBuf;

use agency_client::control::operation_spec_to_request;
use agency_client::opfile::{BatchError, CSV_COLUMNS, parse_csv, parse_jsonl};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::fail::{CmdResult, EXIT_REFUSED, Failure};
use crate::{Ctx, now, out};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum Format {
    Csv,
    Jsonl,
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "CSV columns (header row required): operation, operation_id, \
case_reference, start, end, days, kind, label, text, region, country, names, dob, chain, \
address, platform, handle, lat, lng. Rows with the same `operation` (or case_reference) form \
one operation. JSON lines: one operation document per line (the inbox format)."
)]
pub(crate) struct ImportArgs {
    /// The batch file.
    file: PathBuf,
    /// Its format (default: from the extension, .csv or .jsonl/.ndjson).
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Register the valid operations even if some lines are bad (default: register nothing).
    #[arg(long)]
    skip_invalid: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn report(errors: &[BatchError]) -> String {
    let mut text = format!("{} bad line(s) in the batch:", errors.len());
    for e in errors.iter().take(50) {
        text.push_str(&format!("\n  {e}"));
    }
    if errors.len() > 50 {
        text.push_str(&format!("\n  ... and {} more", errors.len() - 50));
    }
    text
}

pub(crate) async fn import(ctx: &Ctx, args: ImportArgs) -> CmdResult {
    let name = args.file.to_string_lossy().to_lowercase();
    let format = match args.format {
        Some(f) => f,
        None if name.ends_with(".csv") => Format::Csv,
        None if name.ends_with(".jsonl") || name.ends_with(".ndjson") => Format::Jsonl,
        None => {
            return Err(Failure::bad_input(
                "cannot tell the format from the name: give --format csv or --format jsonl",
            ));
        }
    };
    let text = std::fs::read_to_string(&args.file)
        .map_err(|e| Failure::bad_input(format!("{}: {e}", args.file.display())))?;
    let parsed = match format {
        Format::Csv => parse_csv(&text, now()),
        Format::Jsonl => parse_jsonl(&text, now()),
    };
    let (ops, bad) = match parsed {
        Ok(ops) => (ops, Vec::new()),
        Err(errors) if !args.skip_invalid => {
            let hint = if matches!(format, Format::Csv) {
                format!("\nCSV columns: {}", CSV_COLUMNS.join(", "))
            } else {
                String::new()
            };
            return Err(Failure::bad_input(format!(
                "{}{hint}\nNothing was registered. Fix the lines, or use --skip-invalid.",
                report(&errors)
            )));
        }
        Err(errors) => {
            // Parse again line by line to keep the good ones.
            let good = keep_valid(&text, format);
            (good, errors)
        }
    };
    if !bad.is_empty() && !args.json {
        eprintln!("{}", report(&bad));
    }
    let mut client = ctx.client().await?;
    let bar = if std::io::stderr().is_terminal() && !args.json {
        ProgressBar::new(ops.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} operations {msg}") {
        bar.set_style(style);
    }
    let mut accepted = 0u64;
    let mut refused = Vec::new();
    for (line, spec) in &ops {
        let mut request = operation_spec_to_request(spec, 0);
        request.source = "import".into();
        match client.register(request).await {
            Ok(_) => accepted += 1,
            Err(status) if status.code() == tonic::Code::InvalidArgument => {
                refused.push(format!("line {line}: {}", status.message()));
            }
            Err(status) => {
                bar.abandon();
                return Err(Failure::from(status));
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    if args.json {
        out::json(&json!({"accepted": accepted, "bad_lines": bad.len(), "refused": refused}));
    } else {
        println!(
            "{accepted} operation(s) accepted and queued for the broker (deconflict status shows the outbox)"
        );
        for r in &refused {
            eprintln!("  refused: {r}");
        }
    }
    if !refused.is_empty() || !bad.is_empty() {
        return Err(Failure {
            code: if refused.is_empty() {
                crate::fail::EXIT_BAD_INPUT
            } else {
                EXIT_REFUSED
            },
            message: format!("{} line(s) not registered", refused.len() + bad.len()),
        });
    }
    Ok(())
}

/// The valid operations of a batch that has bad lines (each line or group alone).
fn keep_valid(text: &str, format: Format) -> Vec<(usize, agency_client::opfile::OperationSpec)> {
    match format {
        Format::Jsonl => text
            .lines()
            .enumerate()
            .filter_map(|(i, l)| parse_jsonl(l, now()).ok().map(|mut v| (i, v.pop())))
            .filter_map(|(i, v)| v.map(|(_, spec)| (i + 1, spec)))
            .collect(),
        Format::Csv => {
            let mut lines = text.lines();
            let header = lines.next().unwrap_or_default();
            lines
                .enumerate()
                .filter_map(|(i, l)| {
                    parse_csv(&format!("{header}\n{l}\n"), now())
                        .ok()
                        .map(|v| (i + 2, v))
                })
                .flat_map(|(line, v)| v.into_iter().map(move |(_, s)| (line, s)))
                .collect()
        }
    }
}

//! `import`: a CSV or JSON-lines batch of operations, registered one by one (queued in
//! agencyd's outbox), with a progress bar on a terminal.

use std::io::IsTerminal;
use std::path::PathBuf;

use agency_client::control::operation_spec_to_request;
use agency_client::control::pb::agency_control_client::AgencyControlClient;
use agency_client::opfile::{BatchError, CSV_COLUMNS, OperationSpec, parse_csv, parse_jsonl};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::fail::{CmdResult, EXIT_REFUSED, Failure};
use crate::{Ctx, now, out};

/// The control API client `Ctx::client` gives.
type Client = AgencyControlClient<tonic::transport::Channel>;

/// A batch's operations, each with the line it was read from.
type NumberedOps = Vec<(usize, OperationSpec)>;

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
    let format = batch_format(&args)?;
    let text = std::fs::read_to_string(&args.file)
        .map_err(|e| Failure::bad_input(format!("{}: {e}", args.file.display())))?;
    let (ops, bad) = parse_batch(&text, format, args.skip_invalid)?;
    if !bad.is_empty() && !args.json {
        eprintln!("{}", report(&bad));
    }
    let mut client = ctx.client().await?;
    let (accepted, refused) = register_all(&mut client, &ops, args.json).await?;
    print_summary(accepted, &refused, bad.len(), args.json);
    not_all_registered(accepted, &refused, &bad)
}

/// The batch's format: as given, else from the file name's extension.
fn batch_format(args: &ImportArgs) -> Result<Format, Failure> {
    let name = args.file.to_string_lossy().to_lowercase();
    match args.format {
        Some(f) => Ok(f),
        None if name.ends_with(".csv") => Ok(Format::Csv),
        None if name.ends_with(".jsonl") || name.ends_with(".ndjson") => Ok(Format::Jsonl),
        None => Err(Failure::bad_input(
            "cannot tell the format from the name: give --format csv or --format jsonl",
        )),
    }
}

/// The operations of the batch (with their line numbers) and its bad lines. A bad line refuses
/// the whole batch unless `skip_invalid`, in which case the good ones are kept.
fn parse_batch(
    text: &str,
    format: Format,
    skip_invalid: bool,
) -> Result<(NumberedOps, Vec<BatchError>), Failure> {
    let parsed = match format {
        Format::Csv => parse_csv(text, now()),
        Format::Jsonl => parse_jsonl(text, now()),
    };
    match parsed {
        Ok(ops) => Ok((ops, Vec::new())),
        Err(errors) if !skip_invalid => {
            let hint = if matches!(format, Format::Csv) {
                format!("\nCSV columns: {}", CSV_COLUMNS.join(", "))
            } else {
                String::new()
            };
            Err(Failure::bad_input(format!(
                "{}{hint}\nNothing was registered. Fix the lines, or use --skip-invalid.",
                report(&errors)
            )))
        }
        // Parse again line by line to keep the good ones.
        Err(errors) => Ok((keep_valid(text, format), errors)),
    }
}

/// Registers each operation in turn, with a progress bar on a terminal. Returns how many were
/// accepted and why the others were refused; any other failure stops the import.
async fn register_all(
    client: &mut Client,
    ops: &[(usize, OperationSpec)],
    json: bool,
) -> Result<(u64, Vec<String>), Failure> {
    let bar = progress_bar(ops.len(), json);
    let mut accepted = 0u64;
    let mut refused = Vec::new();
    for (line, spec) in ops {
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
    Ok((accepted, refused))
}

/// A bar of `len` operations on a terminal (not with `--json`), hidden otherwise.
fn progress_bar(len: usize, json: bool) -> ProgressBar {
    let bar = if std::io::stderr().is_terminal() && !json {
        ProgressBar::new(len as u64)
    } else {
        ProgressBar::hidden()
    };
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} operations {msg}") {
        bar.set_style(style);
    }
    bar
}

/// What was accepted and refused, as JSON or as text.
fn print_summary(accepted: u64, refused: &[String], bad_lines: usize, json: bool) {
    if json {
        out::json(&json!({"accepted": accepted, "bad_lines": bad_lines, "refused": refused}));
    } else {
        println!(
            "{accepted} operation(s) accepted and queued for the broker (deconflict status shows the outbox)"
        );
        for r in refused {
            eprintln!("  refused: {r}");
        }
    }
}

/// The command's outcome when some lines were not registered. Refused by agencyd: exit
/// EXIT_REFUSED. Bad lines (only ever here with --skip-invalid, which asked to skip them):
/// success when something was registered, exit EXIT_BAD_INPUT ("nothing was changed") when
/// nothing was.
fn not_all_registered(accepted: u64, refused: &[String], bad: &[BatchError]) -> CmdResult {
    if !refused.is_empty() {
        return Err(Failure {
            code: EXIT_REFUSED,
            message: format!("{} line(s) not registered", refused.len() + bad.len()),
        });
    }
    if bad.is_empty() {
        return Ok(());
    }
    if accepted > 0 {
        eprintln!("{} bad line(s) skipped (--skip-invalid)", bad.len());
        return Ok(());
    }
    Err(Failure::bad_input(format!(
        "{} bad line(s) and nothing else: nothing was registered",
        bad.len()
    )))
}

/// The valid operations of a batch that has bad lines (each line or group alone).
fn keep_valid(text: &str, format: Format) -> NumberedOps {
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

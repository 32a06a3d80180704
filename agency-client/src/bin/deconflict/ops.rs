//! `register`, `amend`, `close`, `ops`, `check`.

use std::path::PathBuf;

use agency_client::control::{operation_spec_to_request, pb, selector_to_proto, window_to_wire};
use agency_client::opfile::{
    FileFormat, SelectorSpec, parse_operation_text, parse_selector_flag, parse_window,
};
use serde_json::{Map, Value, json};

use crate::fail::{CmdResult, EXIT_REFUSED, Failure};
use crate::{Ctx, json as j, now, out};

/// Selectors from the command line.
#[derive(Debug, clap::Args)]
pub(crate) struct SelectorFlags {
    /// A selector as KIND=VALUE (repeatable): phone=13800138000, email=a@b.cn, vin=...,
    /// imei=..., iban=..., plate=CN/粤B12345, address=CN/TEXT, wallet=eth/0x..,
    /// handle=telegram/NAME, person="Zhang Wei/1985-03-12", geo=25.04,102.71
    #[arg(short = 's', long = "selector", value_name = "KIND=VALUE")]
    selectors: Vec<String>,
    /// Default region of phone numbers written without a country code (e.g. CN).
    #[arg(long, value_name = "CC")]
    region: Option<String>,
}

impl SelectorFlags {
    fn parse(&self) -> Result<Vec<SelectorSpec>, Failure> {
        self.selectors
            .iter()
            .map(|w| parse_selector_flag(w, self.region.as_deref()).map_err(Failure::from))
            .collect()
    }
}

/// A time window from the command line.
#[derive(Debug, clap::Args)]
pub(crate) struct WindowFlags {
    /// Window start: 2025-06-01, 2025-06-01T08:00:00+08:00 or Unix seconds (default: now).
    #[arg(long)]
    start: Option<String>,
    /// Window end (exclusive), same forms as --start.
    #[arg(long, conflicts_with = "days")]
    end: Option<String>,
    /// Window length in days from the start.
    #[arg(long)]
    days: Option<i64>,
}

impl WindowFlags {
    /// The window, if any flag was given.
    fn parse(&self) -> Result<Option<(i64, i64)>, Failure> {
        if self.start.is_none() && self.end.is_none() && self.days.is_none() {
            return Ok(None);
        }
        let mut obj = Map::new();
        if let Some(s) = &self.start {
            obj.insert("start".into(), json!(s));
        }
        if let Some(e) = &self.end {
            obj.insert("end".into(), json!(e));
        }
        if let Some(d) = self.days {
            obj.insert("days".into(), json!(d));
        }
        parse_window(&Value::Object(obj), now())
            .map(Some)
            .map_err(|e| Failure::bad_input(format!("window: {e}")))
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct RegisterArgs {
    /// An operation file (.json or .toml, the inbox format; see docs/agency.md).
    #[arg(long, short, conflicts_with_all = ["selectors", "case", "id"])]
    file: Option<PathBuf>,
    /// Case reference (stays in agencyd; the broker never sees it).
    #[arg(long)]
    case: Option<String>,
    /// Operation id (UUID); default: a new one.
    #[arg(long)]
    id: Option<String>,
    #[command(flatten)]
    selectors: SelectorFlags,
    #[command(flatten)]
    window: WindowFlags,
    /// Also register it at this joint federation (a [[joint]] name of agencyd's configuration),
    /// under joint tokens; repeat for several. Without it, the operation never leaves home.
    #[arg(long = "release-to", value_name = "NAME")]
    release_to: Vec<String>,
    /// Seconds to wait for the broker's confirmation (the operation is kept either way).
    #[arg(long, default_value_t = 10)]
    wait: u32,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn register(ctx: &Ctx, args: RegisterArgs) -> CmdResult {
    let mut request = match &args.file {
        Some(path) => {
            let name = path.to_string_lossy();
            let format = FileFormat::of(&name).ok_or_else(|| {
                Failure::bad_input(format!("{name}: the file name must end in .json or .toml"))
            })?;
            let text = std::fs::read_to_string(path)
                .map_err(|e| Failure::bad_input(format!("{name}: {e}")))?;
            let spec = parse_operation_text(&text, format, now())
                .map_err(|e| Failure::bad_input(format!("{name}: {e}")))?;
            operation_spec_to_request(&spec, 0)
        }
        None => {
            let selectors = args.selectors.parse()?;
            if selectors.is_empty() {
                return Err(Failure::bad_input(
                    "give selectors with -s KIND=VALUE, or an operation file with --file",
                ));
            }
            let window = args.window.parse()?.ok_or_else(|| {
                Failure::bad_input("give the operation's window: --days N, or --start/--end")
            })?;
            pb::RegisterRequest {
                operation_id: args.id.clone().unwrap_or_default(),
                case_reference: args.case.clone().unwrap_or_default(),
                window: Some(window_to_wire(window)),
                selectors: selectors
                    .iter()
                    .map(|s| selector_to_proto(&s.selector, 0, &s.label))
                    .collect(),
                wait_ms: 0,
                source: String::new(),
                release_to: Vec::new(),
            }
        }
    };
    request.release_to.extend(args.release_to.iter().cloned());
    request.wait_ms = args.wait.saturating_mul(1000);
    let reply = ctx.client().await?.register(request).await?.into_inner();
    report_operation(&reply, args.json, "registered")
}

/// Prints the outcome of register/amend/close; a refusal by the broker is exit code 1.
fn report_operation(reply: &pb::OperationReply, as_json: bool, verb: &str) -> CmdResult {
    let op = reply.operation.clone().unwrap_or_default();
    if as_json {
        out::json(&json!({"created": reply.created, "operation": j::operation(&op)}));
    } else {
        let state = match pb::SyncState::try_from(op.sync) {
            Ok(pb::SyncState::Synced) => format!("{verb} with the broker"),
            Ok(pb::SyncState::Queued) => "queued: agencyd will send it when the broker is \
                                           reachable (see deconflict status)"
                .into(),
            _ => format!("REFUSED by the broker: {}", op.last_error),
        };
        let again = if reply.created {
            ""
        } else {
            " (already known; nothing changed)"
        };
        println!("operation {}{again}: {state}", op.operation_id);
    }
    if op.sync == pb::SyncState::Rejected as i32 {
        return Err(Failure {
            code: EXIT_REFUSED,
            message: format!(
                "the broker refused operation {}: {}",
                op.operation_id, op.last_error
            ),
        });
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
pub(crate) struct AmendArgs {
    /// The operation id.
    operation_id: String,
    #[command(flatten)]
    add: SelectorFlags,
    /// Local id of a selector to remove (repeatable; see deconflict ops ID).
    #[arg(long, value_name = "SELECTOR_ID")]
    remove: Vec<u64>,
    #[command(flatten)]
    window: WindowFlags,
    /// Seconds to wait for the broker's confirmation.
    #[arg(long, default_value_t = 10)]
    wait: u32,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn amend(ctx: &Ctx, args: AmendArgs) -> CmdResult {
    let add = args.add.parse()?;
    let request = pb::AmendRequest {
        operation_id: args.operation_id.clone(),
        add_selectors: add
            .iter()
            .map(|s| selector_to_proto(&s.selector, 0, &s.label))
            .collect(),
        remove_selector_ids: args.remove.clone(),
        window: args.window.parse()?.map(window_to_wire),
        wait_ms: args.wait.saturating_mul(1000),
    };
    let reply = ctx.client().await?.amend(request).await?.into_inner();
    report_operation(&reply, args.json, "amended")
}

#[derive(Debug, clap::Args)]
pub(crate) struct CloseArgs {
    /// The operation id.
    operation_id: String,
    /// Seconds to wait for the broker's confirmation.
    #[arg(long, default_value_t = 10)]
    wait: u32,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn close(ctx: &Ctx, args: CloseArgs) -> CmdResult {
    let request = pb::CloseRequest {
        operation_id: args.operation_id.clone(),
        wait_ms: args.wait.saturating_mul(1000),
    };
    let reply = ctx.client().await?.close(request).await?.into_inner();
    report_operation(&reply, args.json, "closed")
}

#[derive(Debug, clap::Args)]
pub(crate) struct OpsArgs {
    /// Show this operation in full (with its selectors).
    operation_id: Option<String>,
    /// Include closed operations.
    #[arg(long)]
    all: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn ops(ctx: &Ctx, args: OpsArgs) -> CmdResult {
    let mut client = ctx.client().await?;
    if let Some(id) = &args.operation_id {
        let op = client
            .get_operation(pb::GetOperationRequest {
                operation_id: id.clone(),
            })
            .await?
            .into_inner();
        if args.json {
            out::json(&j::operation(&op));
        } else {
            print_operation(&op);
        }
        return Ok(());
    }
    let ops = client
        .list_operations(pb::ListOperationsRequest {
            include_closed: args.all,
        })
        .await?
        .into_inner()
        .operations;
    if args.json {
        out::json(&Value::Array(ops.iter().map(j::operation).collect()));
    } else {
        print_operation_table(&ops, args.all);
    }
    Ok(())
}

/// One operation in full: case, window, state, refusal, source, matches and selectors.
fn print_operation(op: &pb::LocalOperation) {
    let w = op.window.unwrap_or_default();
    println!("{}", out::bold(&format!("operation {}", op.operation_id)));
    println!("  case       {}", op.case_reference);
    println!(
        "  window     {} .. {}",
        out::time(w.start_unix),
        out::time(w.end_unix)
    );
    println!(
        "  state      {}{}",
        if op.closed { "closed, " } else { "" },
        out::sync_name(op.sync)
    );
    if !op.last_error.is_empty() {
        println!("  refused    {}", out::alarm(&op.last_error));
    }
    println!("  source     {}", op.source);
    for j in &op.joint {
        let state = if j.error.is_empty() {
            j.state.clone()
        } else if j.state == "refused" {
            out::alarm(&format!("{}: {}", j.state, j.error))
        } else {
            format!("{}: {}", j.state, j.error)
        };
        println!("  joint      {} ({state})", j.federation);
    }
    if !op.match_ids.is_empty() {
        println!("  matches    {}", out::alarm(&op.match_ids.join(", ")));
    }
    println!("  selectors");
    for s in &op.selectors {
        println!("    {}", out::selector(s));
    }
}

/// The operations one row each, or a line saying there are none (`all`: closed ones were
/// asked for too).
fn print_operation_table(ops: &[pb::LocalOperation], all: bool) {
    if ops.is_empty() {
        println!(
            "no operations{}",
            if all {
                ""
            } else {
                " open (--all shows closed ones)"
            }
        );
        return;
    }
    let rows: Vec<Vec<String>> = ops.iter().map(operation_row).collect();
    out::table(
        &[
            "OPERATION",
            "CASE",
            "WINDOW",
            "SELECTORS",
            "STATE",
            "MATCHES",
        ],
        &rows,
    );
}

/// One row of the `ops` table.
fn operation_row(o: &pb::LocalOperation) -> Vec<String> {
    let w = o.window.unwrap_or_default();
    vec![
        o.operation_id.clone(),
        o.case_reference.clone(),
        format!("{} .. {}", out::time(w.start_unix), out::time(w.end_unix)),
        o.selectors.len().to_string(),
        if o.closed {
            format!("closed/{}", out::sync_name(o.sync))
        } else {
            out::sync_name(o.sync).into()
        },
        o.match_ids.len().to_string(),
    ]
}

#[derive(Debug, clap::Args)]
pub(crate) struct CheckArgs {
    #[command(flatten)]
    selectors: SelectorFlags,
    #[command(flatten)]
    window: WindowFlags,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn check(ctx: &Ctx, args: CheckArgs) -> CmdResult {
    let selectors = args.selectors.parse()?;
    if selectors.is_empty() {
        return Err(Failure::bad_input(
            "give selectors to check with -s KIND=VALUE",
        ));
    }
    let request = pb::CheckRequest {
        window: args.window.parse()?.map(window_to_wire),
        selectors: selectors
            .iter()
            .map(|s| selector_to_proto(&s.selector, 0, &s.label))
            .collect(),
    };
    let results = ctx
        .client()
        .await?
        .check(request)
        .await?
        .into_inner()
        .results;
    if args.json {
        let v: Vec<Value> = results
            .iter()
            .map(|r| {
                json!({"index": r.index, "hit": r.hit,
                       "selector": r.selector.as_ref().map(j::selector)})
            })
            .collect();
        out::json(&Value::Array(v));
        return Ok(());
    }
    for r in &results {
        let sel = r.selector.as_ref().map(out::selector).unwrap_or_default();
        let verdict = if r.hit {
            out::alarm("HIT")
        } else {
            "no hit".into()
        };
        println!("{verdict:>8}  {sel}");
    }
    if results.iter().any(|r| r.hit) {
        println!(
            "A hit means another open operation holds this selector. Register your operation \
             to be put in touch through the relay; the owner was told that a check touched it."
        );
    }
    Ok(())
}

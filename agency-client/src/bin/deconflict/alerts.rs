//! `alerts`, `ack`, `watch`.

use agency_client::control::pb;
use serde_json::Value;

use crate::fail::{CmdResult, Failure};
use crate::{Ctx, json as j, out};

#[derive(Debug, clap::Args)]
pub(crate) struct AlertsArgs {
    /// Show this alert in full.
    seq: Option<u64>,
    /// Include alerts already acknowledged.
    #[arg(long)]
    all: bool,
    /// Only alerts of this match.
    #[arg(long = "match", value_name = "MATCH_ID")]
    match_id: Option<String>,
    /// Only the newest N.
    #[arg(long, default_value_t = 0)]
    limit: u32,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// A one-line summary of an alert.
pub(crate) fn summary(a: &pb::AlertView) -> String {
    let what = match pb::AlertKind::try_from(a.kind) {
        Ok(pb::AlertKind::Match) => out::alarm(&format!(
            "{} match {}: your {} overlaps another unit's operation{}",
            if a.created { "NEW" } else { "grown" },
            a.match_id,
            matched_selectors(a),
            pinyin_warning(a)
        )),
        Ok(pb::AlertKind::Checked) => {
            format!(
                "another unit checked your {}{}",
                matched_selectors(a),
                pinyin_warning(a)
            )
        }
        Ok(pb::AlertKind::Message) => format!("message on match {}: {}", a.match_id, a.text),
        Ok(pb::AlertKind::Contact) => format!(
            "contact card on match {}: {}",
            a.match_id,
            a.card.as_ref().map(card_line).unwrap_or_default()
        ),
        Ok(pb::AlertKind::MatchState) => format!(
            "match {} {}{} {}",
            a.match_id,
            j::state_name(a.state),
            if a.by_you { " (by you)" } else { "" },
            j::outcome_words(a.outcome)
        ),
        Ok(pb::AlertKind::AlertsPurged) => out::alarm(&a.note),
        Ok(pb::AlertKind::DrillHalted | pb::AlertKind::DrillEnded) => out::alarm(&a.note),
        _ => "unknown alert".into(),
    };
    let case = if a.case_reference.is_empty() {
        String::new()
    } else {
        format!(" [{}]", a.case_reference)
    };
    // A joint federation's alert says so first: the other party is abroad.
    let joint = if a.federation.is_empty() {
        String::new()
    } else {
        format!(" (joint federation {})", a.federation)
    };
    let exercise = if a.drill_id.is_empty() {
        String::new()
    } else {
        out::alarm(&format!(" [EXERCISE {}]", a.drill_id))
    };
    format!(
        "#{}{exercise}{joint} {} op {}{case} — {what}",
        a.seq,
        out::time(a.at_unix),
        a.operation_id
    )
}

/// The alert's selectors in words (`resident ID 11010519491231002X and 1 more`).
fn matched_selectors(a: &pb::AlertView) -> String {
    const SHOWN: usize = 2;
    let mut words: Vec<String> = a
        .selectors
        .iter()
        .take(SHOWN)
        .map(out::selector_words)
        .collect();
    if words.is_empty() {
        words.push(format!("{} selectors", a.unresolved_refs.len()));
    }
    let more = a.selectors.len().saturating_sub(SHOWN);
    if more > 0 {
        format!("{} and {more} more", words.join(", "))
    } else {
        words.join(", ")
    }
}

/// Said when a name matched only in Pinyin: the other side may have the same name in Latin
/// letters, or a homophone.
fn pinyin_warning(a: &pb::AlertView) -> &'static str {
    if a.pinyin_only.is_empty() {
        ""
    } else {
        " (the name matched only in Pinyin: a Latin spelling or a homophone, confirm before \
         acting)"
    }
}

/// A contact card: only the fields the other party filled in.
fn card_line(c: &deconfliction_proto::v1::ContactCard) -> String {
    [
        ("unit", &c.unit_name),
        ("officer", &c.officer),
        ("phone", &c.phone),
        ("e-mail", &c.secure_email),
        ("note", &c.note),
    ]
    .iter()
    .filter(|(_, v)| !v.trim().is_empty())
    .map(|(k, v)| format!("{k} {v}"))
    .collect::<Vec<_>>()
    .join(" | ")
}

fn detail(a: &pb::AlertView) {
    println!("{}", summary(a));
    for s in &a.selectors {
        let pinyin = if a.pinyin_only.contains(&s.id) {
            " — matched in Pinyin only"
        } else {
            ""
        };
        println!("    {}{pinyin}", out::selector(s));
    }
    if !a.unresolved_refs.is_empty() {
        println!(
            "    (selector ids not in the local store: {:?})",
            a.unresolved_refs
        );
    }
    if let Some(c) = &a.card {
        println!("    {}", card_line(c));
    }
    if !a.note.is_empty() {
        println!("    note: {}", a.note);
    }
}

pub(crate) async fn alerts(ctx: &Ctx, args: AlertsArgs) -> CmdResult {
    let mut client = ctx.client().await?;
    if let Some(seq) = args.seq {
        let a = client
            .get_alert(pb::GetAlertRequest { seq })
            .await?
            .into_inner();
        if args.json {
            out::json(&j::alert(&a));
        } else {
            detail(&a);
        }
        return Ok(());
    }
    let alerts = client
        .list_alerts(pb::ListAlertsRequest {
            include_acked: args.all,
            after_seq: 0,
            match_id: args.match_id.clone().unwrap_or_default(),
            limit: args.limit,
        })
        .await?
        .into_inner()
        .alerts;
    if args.json {
        out::json(&Value::Array(alerts.iter().map(j::alert).collect()));
        return Ok(());
    }
    if alerts.is_empty() {
        println!("no {}alerts", if args.all { "" } else { "unacknowledged " });
    }
    for a in &alerts {
        detail(a);
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
pub(crate) struct AckArgs {
    /// Alert numbers to acknowledge.
    seqs: Vec<u64>,
    /// Acknowledge every alert up to and including this number.
    #[arg(long)]
    upto: Option<u64>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn ack(ctx: &Ctx, args: AckArgs) -> CmdResult {
    if args.seqs.is_empty() && args.upto.is_none() {
        return Err(Failure::bad_input(
            "give alert numbers, or --upto N (see deconflict alerts)",
        ));
    }
    let r = ctx
        .client()
        .await?
        .ack_alerts(pb::AckAlertsRequest {
            seqs: args.seqs.clone(),
            upto: args.upto.unwrap_or(0),
        })
        .await?
        .into_inner();
    if args.json {
        out::json(&serde_json::json!({"acked": r.acked, "unacked": r.unacked}));
    } else {
        println!(
            "{} acknowledged; {} still unacknowledged",
            r.acked, r.unacked
        );
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
pub(crate) struct WatchArgs {
    /// First show stored alerts after this number (0: all stored).
    #[arg(long)]
    after: Option<u64>,
    /// Stop after this many events (for scripts; default: run until interrupted).
    #[arg(long)]
    count: Option<u64>,
    /// Print JSON lines.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn watch(ctx: &Ctx, args: WatchArgs) -> CmdResult {
    let mut stream = ctx
        .client()
        .await?
        .watch(pb::WatchRequest {
            after_seq: args.after.unwrap_or(0),
            backlog: args.after.is_some(),
        })
        .await?
        .into_inner();
    if !args.json {
        eprintln!("watching alerts and operation events (Ctrl-C to stop)");
    }
    let mut seen = 0u64;
    while args.count.is_none_or(|c| seen < c) {
        let Some(event) = stream.message().await? else {
            return Err(Failure {
                code: crate::fail::EXIT_DAEMON_UNREACHABLE,
                message: "agencyd ended the watch (it is shutting down)".into(),
            });
        };
        seen += 1;
        match event.event {
            Some(pb::watch_event::Event::Alert(a)) => {
                if args.json {
                    out::json(&serde_json::json!({"alert": j::alert(&a)}));
                } else {
                    detail(&a);
                }
            }
            Some(pb::watch_event::Event::Operation(o)) => {
                if args.json {
                    out::json(
                        &serde_json::json!({"operation": {"operation_id": o.operation_id, "event": o.event, "error": o.error, "at_unix": o.at_unix}}),
                    );
                } else if o.error.is_empty() {
                    println!("{} op {} {}", out::time(o.at_unix), o.operation_id, o.event);
                } else {
                    println!(
                        "{} op {} {}: {}",
                        out::time(o.at_unix),
                        o.operation_id,
                        out::alarm(&o.event),
                        o.error
                    );
                }
            }
            None => {}
        }
    }
    Ok(())
}

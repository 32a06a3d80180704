//! `status`: is everything reachable, and is anything waiting?

use agency_client::control::pb;

use crate::fail::{CmdResult, EXIT_BROKER_UNREACHABLE, Failure};
use crate::{Ctx, json as j, out};

#[derive(Debug, clap::Args)]
pub(crate) struct StatusArgs {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn status(ctx: &Ctx, args: StatusArgs) -> CmdResult {
    let s = ctx
        .client_any()
        .await?
        .status(pb::StatusRequest {})
        .await?
        .into_inner();
    if args.json {
        out::json(&j::status(&s));
    } else {
        let reach = |r: Option<&pb::Reachability>| match r {
            Some(r) if r.reachable => format!("reachable ({} ms)", r.latency_ms),
            Some(r) => out::alarm(&format!("UNREACHABLE: {}", r.error)),
            None => "unknown".into(),
        };
        println!(
            "agencyd        {} (socket {})",
            s.daemon_version,
            ctx.socket.display()
        );
        println!(
            "agency         {}",
            if s.agency_id.is_empty() {
                "(not known yet: broker never reached)"
            } else {
                &s.agency_id
            }
        );
        println!(
            "broker         {} {}",
            s.broker_address,
            reach(s.broker.as_ref())
        );
        println!("token service  {}", reach(s.token_service.as_ref()));
        if let Some(d) = &s.drill {
            println!("{}", out::alarm(&drill_line(d)));
        }
        println!("key epochs     {}", key_line(&s));
        if !s.key_error.is_empty() {
            println!("               {}", out::alarm(&s.key_error));
        } else if !s.key_advice.is_empty() {
            println!("               {}", out::alarm(&s.key_advice));
        }
        println!(
            "outbox         {} waiting{}",
            s.outbox_depth,
            if s.outbox_error.is_empty() {
                String::new()
            } else {
                format!(" ({})", s.outbox_error)
            }
        );
        println!(
            "alerts         {} unacknowledged; last #{}; subscription {}",
            s.unacked_alerts,
            s.last_alert_seq,
            if s.subscribed { "live" } else { "down" }
        );
        for j in &s.joint {
            println!(
                "joint {:<8} broker {}; share A {}; share B {}{}",
                j.federation,
                reach(j.broker.as_ref()),
                reach(j.share_a.as_ref()),
                reach(j.share_b.as_ref()),
                if j.waiting_operations > 0 {
                    format!("; {} released operation(s) waiting", j.waiting_operations)
                } else {
                    String::new()
                }
            );
        }
        println!(
            "operations     {} open{}",
            s.open_operations,
            if s.rederiving_operations > 0 {
                format!(
                    "; {} being re-derived under a new key epoch",
                    s.rederiving_operations
                )
            } else {
                String::new()
            }
        );
    }
    let broker_ok = s.broker.as_ref().is_some_and(|r| r.reachable);
    let tokens_ok = s.token_service.as_ref().is_some_and(|r| r.reachable);
    if broker_ok && tokens_ok {
        Ok(())
    } else {
        Err(Failure { code: EXIT_BROKER_UNREACHABLE, message: "the broker or token service is unreachable; operations are kept in the outbox until it is back".into() })
    }
}

/// Pinned, served and used epochs on one line, e.g. `pinned 2 (and 1), served 2 and 1 until
/// 2026-12-08 00:00Z, deriving under 2 and 1`.
fn key_line(s: &pb::StatusResponse) -> String {
    let list = |v: &[u32]| {
        v.iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(" and ")
    };
    let mut line = format!("pinned {}", s.pinned_key_epoch);
    if s.previous_pinned_key_epoch != 0 {
        line += &format!(" (and {})", s.previous_pinned_key_epoch);
    }
    if !s.served_key_epochs.is_empty() {
        line += &format!(", served {}", list(&s.served_key_epochs));
        if s.previous_key_valid_until_unix != 0 {
            line += &format!(" until {}", out::time(s.previous_key_valid_until_unix));
        }
    }
    if !s.deriving_key_epochs.is_empty() {
        line += &format!(", deriving under {}", list(&s.deriving_key_epochs));
    }
    line
}

/// `EXERCISE       drill mekong-1 (Mekong route) until 2026-12-06 18:00Z`, and its halt.
fn drill_line(d: &deconfliction_proto::v1::DrillInfo) -> String {
    let mut line = format!("EXERCISE       drill {}", d.drill_id);
    if !d.name.is_empty() {
        line.push_str(&format!(" ({})", d.name));
    }
    if d.ends_unix > 0 {
        line.push_str(&format!(" until {}", out::time(d.ends_unix)));
    }
    if d.halted {
        line.push_str(&format!(" — HALTED: {}", d.halt_reason));
    }
    line
}

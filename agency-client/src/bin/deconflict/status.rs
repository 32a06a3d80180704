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
        .client()
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
        println!(
            "key epoch      pinned {}, published {}{}",
            s.pinned_key_epoch,
            s.published_key_epoch,
            if s.key_matches || s.published_key_epoch == 0 {
                String::new()
            } else {
                out::alarm(
                    " — MISMATCH: nothing can be registered; ask the federation administrator",
                )
            }
        );
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
        println!("operations     {} open", s.open_operations);
    }
    let broker_ok = s.broker.as_ref().is_some_and(|r| r.reachable);
    let tokens_ok = s.token_service.as_ref().is_some_and(|r| r.reachable);
    if broker_ok && tokens_ok {
        Ok(())
    } else {
        Err(Failure { code: EXIT_BROKER_UNREACHABLE, message: "the broker or token service is unreachable; operations are kept in the outbox until it is back".into() })
    }
}

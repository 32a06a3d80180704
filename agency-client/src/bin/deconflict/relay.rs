//! After a hit: `message`, `disclose`, `resolve`, `match` (through agencyd to the broker's
//! relay; the other party stays anonymous until both disclose).

use agency_client::control::pb;
use deconfliction_proto::v1;

use crate::fail::{CmdResult, Failure};
use crate::{Ctx, json as j, out};

fn show(m: &v1::MatchView, as_json: bool) {
    if as_json {
        out::json(&j::match_view(m));
        return;
    }
    // Selectors, not tokens: a place matches on several cells, a Han name on two forms.
    let mut selectors: Vec<u64> = m.tokens.iter().map(|t| t.local_ref).collect();
    selectors.sort_unstable();
    selectors.dedup();
    println!(
        "match {} (your operation {}): {}{}; {} shared selector(s); {}",
        m.match_id,
        m.operation_id,
        j::state_name(m.state),
        match j::outcome_words(m.outcome).as_str() {
            "" => String::new(),
            o => format!(" as {o}"),
        },
        selectors.len(),
        if m.cards_exchanged {
            "contact cards exchanged (see deconflict alerts --match)".to_string()
        } else if m.you_disclosed {
            "your card is held until the other party discloses".to_string()
        } else {
            "no card disclosed by you".to_string()
        }
    );
}

#[derive(Debug, clap::Args)]
pub(crate) struct MessageArgs {
    /// The match id (from the alert).
    match_id: String,
    /// The text; the other party sees it as coming from "the other party".
    text: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn message(ctx: &Ctx, args: MessageArgs) -> CmdResult {
    let m = ctx
        .client()
        .await?
        .send_message(pb::SendMessageRequest {
            match_id: args.match_id,
            text: args.text,
        })
        .await?
        .into_inner();
    if !args.json {
        println!("message sent");
    }
    show(&m, args.json);
    Ok(())
}

#[derive(Debug, clap::Args)]
pub(crate) struct DiscloseArgs {
    /// The match id.
    match_id: String,
    /// Take back your card (possible while the other party has not disclosed).
    #[arg(long, conflicts_with_all = ["unit", "officer", "phone", "email", "note"])]
    withdraw: bool,
    /// Your unit's name.
    #[arg(long, required_unless_present = "withdraw")]
    unit: Option<String>,
    /// The officer to contact.
    #[arg(long, required_unless_present = "withdraw")]
    officer: Option<String>,
    /// Phone.
    #[arg(long)]
    phone: Option<String>,
    /// Secure e-mail.
    #[arg(long)]
    email: Option<String>,
    /// Free text.
    #[arg(long)]
    note: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn disclose(ctx: &Ctx, args: DiscloseArgs) -> CmdResult {
    let mut client = ctx.client().await?;
    let m = if args.withdraw {
        client
            .withdraw_disclosure(pb::MatchRequest {
                match_id: args.match_id,
            })
            .await?
    } else {
        let card = v1::ContactCard {
            unit_name: args.unit.unwrap_or_default(),
            officer: args.officer.unwrap_or_default(),
            phone: args.phone.unwrap_or_default(),
            secure_email: args.email.unwrap_or_default(),
            note: args.note.unwrap_or_default(),
        };
        client
            .disclose(pb::DiscloseRequest {
                match_id: args.match_id,
                card: Some(card),
            })
            .await?
    }
    .into_inner();
    show(&m, args.json);
    Ok(())
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum Outcome {
    Deconflicted,
    JointOperation,
    NoConflict,
    Other,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ResolveArgs {
    /// The match id.
    match_id: String,
    /// How it ended.
    #[arg(long, value_enum, required_unless_present = "reopen")]
    outcome: Option<Outcome>,
    /// A note both parties see.
    #[arg(long, default_value = "")]
    note: String,
    /// Reopen a resolved match instead.
    #[arg(long, conflicts_with = "outcome")]
    reopen: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn resolve(ctx: &Ctx, args: ResolveArgs) -> CmdResult {
    let mut client = ctx.client().await?;
    let m = if args.reopen {
        client
            .reopen_match(pb::MatchRequest {
                match_id: args.match_id,
            })
            .await?
    } else {
        let outcome = match args.outcome {
            Some(Outcome::Deconflicted) => v1::MatchOutcome::Deconflicted,
            Some(Outcome::JointOperation) => v1::MatchOutcome::JointOperation,
            Some(Outcome::NoConflict) => v1::MatchOutcome::NoConflict,
            Some(Outcome::Other) => v1::MatchOutcome::Other,
            None => return Err(Failure::bad_input("give --outcome, or --reopen")),
        };
        client
            .resolve_match(pb::ResolveMatchRequest {
                match_id: args.match_id,
                outcome: outcome as i32,
                note: args.note,
            })
            .await?
    }
    .into_inner();
    show(&m, args.json);
    Ok(())
}

#[derive(Debug, clap::Args)]
pub(crate) struct MatchArgs {
    /// The match id.
    match_id: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn show_match(ctx: &Ctx, args: MatchArgs) -> CmdResult {
    let mut client = ctx.client().await?;
    let m = client
        .get_match(pb::MatchRequest {
            match_id: args.match_id.clone(),
        })
        .await?
        .into_inner();
    show(&m, args.json);
    if !args.json {
        let thread = client
            .list_alerts(pb::ListAlertsRequest {
                include_acked: true,
                after_seq: 0,
                match_id: args.match_id,
                limit: 0,
            })
            .await?
            .into_inner()
            .alerts;
        for a in &thread {
            println!("  {}", crate::alerts::summary(a));
        }
    }
    Ok(())
}

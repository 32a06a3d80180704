//! The `--json` shapes of the control API's messages (stable field names for scripts).

use agency_client::control::{pb, selector_from_proto};
use agency_client::opfile::selector_to_json;
use deconfliction_proto::v1;
use serde_json::{Value, json};

use crate::out::{alert_kind_name, sync_name};

pub(crate) fn selector(sel: &pb::Selector) -> Value {
    let mut v = match selector_from_proto(sel) {
        Ok((s, label)) => selector_to_json(&s, &label),
        Err(_) => json!({}),
    };
    if let Value::Object(map) = &mut v {
        map.insert("id".into(), json!(sel.id));
    }
    v
}

fn window(w: Option<&v1::Window>) -> Value {
    w.map_or(
        Value::Null,
        |w| json!({"start_unix": w.start_unix, "end_unix": w.end_unix}),
    )
}

pub(crate) fn operation(op: &pb::LocalOperation) -> Value {
    json!({
        "operation_id": op.operation_id,
        "case_reference": op.case_reference,
        "window": window(op.window.as_ref()),
        "selectors": op.selectors.iter().map(selector).collect::<Vec<_>>(),
        "closed": op.closed,
        "sync": sync_name(op.sync),
        "pending_changes": op.pending_changes,
        "last_error": op.last_error,
        "created_unix": op.created_unix,
        "updated_unix": op.updated_unix,
        "match_ids": op.match_ids,
        "source": op.source,
        "joint": op.joint.iter().map(|j| json!({
            "federation": j.federation,
            "state": j.state,
            "error": j.error,
        })).collect::<Vec<_>>(),
    })
}

pub(crate) fn card(c: &v1::ContactCard) -> Value {
    json!({
        "unit_name": c.unit_name, "officer": c.officer, "phone": c.phone,
        "secure_email": c.secure_email, "note": c.note,
    })
}

pub(crate) fn state_name(state: i32) -> &'static str {
    match v1::MatchState::try_from(state) {
        Ok(v1::MatchState::Open) => "open",
        Ok(v1::MatchState::Resolved) => "resolved",
        _ => "",
    }
}

pub(crate) fn outcome_name(outcome: i32) -> &'static str {
    match v1::MatchOutcome::try_from(outcome) {
        Ok(v1::MatchOutcome::Deconflicted) => "deconflicted",
        Ok(v1::MatchOutcome::JointOperation) => "joint_operation",
        Ok(v1::MatchOutcome::NoConflict) => "no_conflict",
        Ok(v1::MatchOutcome::Other) => "other",
        _ => "",
    }
}

/// An outcome as `resolve --outcome` spells it (`joint-operation`), for people to read.
pub(crate) fn outcome_words(outcome: i32) -> String {
    outcome_name(outcome).replace('_', "-")
}

pub(crate) fn alert(a: &pb::AlertView) -> Value {
    json!({
        "seq": a.seq,
        "federation": a.federation,
        "at_unix": a.at_unix,
        "received_unix": a.received_unix,
        "kind": alert_kind_name(a.kind),
        "acked": a.acked,
        "match_id": a.match_id,
        "operation_id": a.operation_id,
        "case_reference": a.case_reference,
        "created": a.created,
        "new_tokens": a.new_tokens,
        "selectors": a.selectors.iter().map(selector).collect::<Vec<_>>(),
        "unresolved_refs": a.unresolved_refs,
        "pinyin_only": a.pinyin_only,
        "text": a.text,
        "card": a.card.as_ref().map(card),
        "state": state_name(a.state),
        "outcome": outcome_name(a.outcome),
        "note": a.note,
        "by_you": a.by_you,
        "drill_id": a.drill_id,
        "exercise": !a.drill_id.is_empty(),
    })
}

pub(crate) fn match_view(m: &v1::MatchView) -> Value {
    json!({
        "match_id": m.match_id,
        "operation_id": m.operation_id,
        "state": state_name(m.state),
        "outcome": outcome_name(m.outcome),
        "created_unix": m.created_unix,
        "updated_unix": m.updated_unix,
        "tokens": m.tokens.iter().map(|t| json!({"local_ref": t.local_ref})).collect::<Vec<_>>(),
        "you_disclosed": m.you_disclosed,
        "cards_exchanged": m.cards_exchanged,
    })
}

pub(crate) fn status(s: &pb::StatusResponse) -> Value {
    let reach = reachability;
    json!({
        "daemon_version": s.daemon_version,
        "agency_id": s.agency_id,
        "broker_address": s.broker_address,
        "broker": reach(s.broker.as_ref()),
        "token_service": reach(s.token_service.as_ref()),
        "outbox_depth": s.outbox_depth,
        "outbox_error": s.outbox_error,
        "pinned_key_epoch": s.pinned_key_epoch,
        "published_key_epoch": s.published_key_epoch,
        "key_matches": s.key_matches,
        "previous_pinned_key_epoch": s.previous_pinned_key_epoch,
        "served_key_epochs": s.served_key_epochs,
        "previous_key_valid_until_unix": s.previous_key_valid_until_unix,
        "deriving_key_epochs": s.deriving_key_epochs,
        "key_error": s.key_error,
        "key_advice": s.key_advice,
        "rederiving_operations": s.rederiving_operations,
        "last_alert_seq": s.last_alert_seq,
        "unacked_alerts": s.unacked_alerts,
        "open_operations": s.open_operations,
        "subscribed": s.subscribed,
        "joint": s.joint.iter().map(|j| json!({
            "federation": j.federation,
            "broker": reachability(j.broker.as_ref()),
            "share_a": reachability(j.share_a.as_ref()),
            "share_b": reachability(j.share_b.as_ref()),
            "waiting_operations": j.waiting_operations,
        })).collect::<Vec<_>>(),
        "drill": s.drill.as_ref().map(|d| json!({
            "drill_id": d.drill_id,
            "name": d.name,
            "ends_unix": d.ends_unix,
            "halted": d.halted,
            "halt_reason": d.halt_reason,
        })),
        "exercise": s.drill.is_some(),
    })
}

fn reachability(r: Option<&pb::Reachability>) -> Value {
    r.map_or(
        Value::Null,
        |r| json!({"reachable": r.reachable, "error": r.error, "latency_ms": r.latency_ms}),
    )
}

//! Stored records as the control API shows them, and the names under which a match's state
//! and outcome are stored (and read back).

use deconfliction_proto::v1;

use super::core::Core;
use super::records::{AlertRecord, JointOpState, OpRecord};
use super::store::{StoreError, joint_key};
use crate::control::{pb, selector_to_proto, window_to_wire};
use crate::opfile::selector_from_json;

/// A stored selector (`{kind, ...}`) on the wire; an undecodable one shows without a kind.
pub fn selector_view(json: &serde_json::Value, id: u64, label: &str) -> pb::Selector {
    match selector_from_json(json) {
        Ok((sel, _)) => selector_to_proto(&sel, id, label),
        Err(_) => pb::Selector {
            id,
            label: label.to_owned(),
            kind: None,
        },
    }
}

/// An operation with its current selectors.
pub fn op_view(core: &Core, op: &OpRecord) -> Result<pb::LocalOperation, StoreError> {
    let mut selectors = Vec::with_capacity(op.selector_ids.len());
    for id in &op.selector_ids {
        if let Some(sel) = core.store.sel(*id)? {
            selectors.push(selector_view(&sel.selector, sel.id, &sel.label));
        }
    }
    let sync = if op.pending > 0 {
        pb::SyncState::Queued
    } else if op.last_error.is_some() {
        pb::SyncState::Rejected
    } else {
        pb::SyncState::Synced
    };
    Ok(pb::LocalOperation {
        operation_id: op.id.clone(),
        case_reference: op.case_reference.clone(),
        window: Some(window_to_wire(op.window)),
        selectors,
        closed: op.closed,
        sync: sync as i32,
        pending_changes: op.pending,
        last_error: op.last_error.clone().unwrap_or_default(),
        created_unix: op.created_unix,
        updated_unix: op.updated_unix,
        match_ids: op.match_ids.clone(),
        source: op.source.clone(),
        joint: joint_releases(core, op)?,
    })
}

/// How far each joint federation the operation is released to has been told.
fn joint_releases(core: &Core, op: &OpRecord) -> Result<Vec<pb::JointRelease>, StoreError> {
    let mut out = Vec::with_capacity(op.release_to.len());
    for federation in &op.release_to {
        let state: JointOpState = core
            .store
            .get(&joint_key(federation, &op.id))?
            .unwrap_or_default();
        let waiting = core
            .joints
            .iter()
            .find(|j| &j.name == federation)
            .and_then(|j| j.waiting_reason(&op.id));
        let (word, error) = match (&state.last_error, state.closed, state.registered) {
            (Some(e), ..) => ("refused", e.clone()),
            (None, true, _) => ("closed", String::new()),
            // Registered, and a change still waits: say why.
            (None, false, true) => match waiting {
                Some(why) => ("changes waiting", why),
                None => ("registered", String::new()),
            },
            (None, false, false) => ("waiting", waiting.unwrap_or_default()),
        };
        out.push(pb::JointRelease {
            federation: federation.clone(),
            state: word.into(),
            error,
        });
    }
    Ok(out)
}

fn alert_kind(kind: &str) -> pb::AlertKind {
    match kind {
        "match" => pb::AlertKind::Match,
        "checked" => pb::AlertKind::Checked,
        "message" => pb::AlertKind::Message,
        "contact" => pb::AlertKind::Contact,
        "match_state" => pb::AlertKind::MatchState,
        "alerts_purged" => pb::AlertKind::AlertsPurged,
        "drill_halted" => pb::AlertKind::DrillHalted,
        "drill_ended" => pb::AlertKind::DrillEnded,
        _ => pb::AlertKind::Unspecified,
    }
}

/// `open`, `resolved` (or `unspecified`).
pub fn state_name(state: i32) -> &'static str {
    match v1::MatchState::try_from(state) {
        Ok(v1::MatchState::Open) => "open",
        Ok(v1::MatchState::Resolved) => "resolved",
        _ => "unspecified",
    }
}

/// `deconflicted`, `joint_operation`, `no_conflict`, `other` (or `unspecified`).
pub fn outcome_name(outcome: i32) -> &'static str {
    match v1::MatchOutcome::try_from(outcome) {
        Ok(v1::MatchOutcome::Deconflicted) => "deconflicted",
        Ok(v1::MatchOutcome::JointOperation) => "joint_operation",
        Ok(v1::MatchOutcome::NoConflict) => "no_conflict",
        Ok(v1::MatchOutcome::Other) => "other",
        _ => "unspecified",
    }
}

fn state_value(name: Option<&str>) -> i32 {
    [v1::MatchState::Open, v1::MatchState::Resolved]
        .into_iter()
        .find(|s| Some(state_name(*s as i32)) == name)
        .map_or(0, |s| s as i32)
}

fn outcome_value(name: Option<&str>) -> i32 {
    [
        v1::MatchOutcome::Deconflicted,
        v1::MatchOutcome::JointOperation,
        v1::MatchOutcome::NoConflict,
        v1::MatchOutcome::Other,
    ]
    .into_iter()
    .find(|o| Some(outcome_name(*o as i32)) == name)
    .map_or(0, |o| o as i32)
}

/// A stored alert.
pub fn alert_view(rec: &AlertRecord) -> pb::AlertView {
    pb::AlertView {
        seq: rec.seq,
        federation: rec.federation.clone(),
        at_unix: rec.at_unix,
        received_unix: rec.received_unix,
        kind: alert_kind(&rec.kind) as i32,
        acked: rec.acked,
        match_id: rec.match_id.clone(),
        operation_id: rec.operation_id.clone(),
        case_reference: rec.case_reference.clone(),
        created: rec.created,
        new_tokens: rec.new_tokens,
        selectors: rec
            .selectors
            .iter()
            .map(|s| selector_view(&s.selector, s.id, &s.label))
            .collect(),
        unresolved_refs: rec.unresolved_refs.clone(),
        pinyin_only: rec.pinyin_only.clone(),
        text: rec.text.clone().unwrap_or_default(),
        card: rec.card.as_ref().map(|c| v1::ContactCard {
            unit_name: c.unit_name.clone(),
            officer: c.officer.clone(),
            phone: c.phone.clone(),
            secure_email: c.secure_email.clone(),
            note: c.note.clone(),
        }),
        state: state_value(rec.state.as_deref()),
        outcome: outcome_value(rec.outcome.as_deref()),
        note: rec.note.clone().unwrap_or_default(),
        by_you: rec.by_you,
        drill_id: rec.drill_id.clone(),
    }
}

//! After the hit: messages between the two parties of a match, contact cards exchanged only
//! on mutual consent, and resolution. Each party is addressed only as "the other party".
//!
//! Messages and cards are never logged or audited by content; the audit log records the
//! action, the match id and lengths.

use deconfliction_proto::v1;
use uuid::Uuid;

use super::records::{Card, MatchRecord, MatchSide, MatchState, OpRecord};
use super::txn::Txn;
use super::{Ledger, Notifications, keys, queue};
use crate::audit::AuditEvent;
use crate::error::{BrokerError, Result, invalid};
use crate::identity::AgencyId;
use crate::store::StoreError;

/// Longest relay message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 4000;
const MAX_CARD_FIELD_CHARS: usize = 200;
const MAX_NOTE_CHARS: usize = 1000;

/// Which side of the match the caller is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    A,
    B,
}

impl Side {
    fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }
}

fn side_mut(m: &mut MatchRecord, s: Side) -> &mut MatchSide {
    match s {
        Side::A => &mut m.a,
        Side::B => &mut m.b,
    }
}

fn side(m: &MatchRecord, s: Side) -> &MatchSide {
    match s {
        Side::A => &m.a,
        Side::B => &m.b,
    }
}

fn agency_of(side: &MatchSide) -> Result<AgencyId> {
    AgencyId::parse(&side.agency).map_err(|e| {
        BrokerError::Store(StoreError::Corrupt {
            key: "mt/".into(),
            reason: e.to_string(),
        })
    })
}

pub fn match_id(text: &str) -> Result<Uuid> {
    Uuid::parse_str(text).map_err(|_| {
        invalid(format!(
            "match_id {:?} is not a UUID (copy it from the match alert)",
            text.chars().take(64).collect::<String>()
        ))
    })
}

fn check_len(field: &str, value: &str, max: usize) -> Result<()> {
    let n = value.chars().count();
    if n > max {
        return Err(invalid(format!(
            "{field} is {n} characters; at most {max} are allowed"
        )));
    }
    if value.contains('\0') {
        return Err(invalid(format!("{field} contains a NUL character")));
    }
    Ok(())
}

pub fn validate_card(card: Option<&v1::ContactCard>) -> Result<Card> {
    let c = card.ok_or_else(|| invalid("card is missing"))?;
    for (field, value) in [
        ("card.unit_name", &c.unit_name),
        ("card.officer", &c.officer),
        ("card.phone", &c.phone),
        ("card.secure_email", &c.secure_email),
        ("card.note", &c.note),
    ] {
        check_len(field, value, MAX_CARD_FIELD_CHARS)?;
    }
    if [&c.officer, &c.phone, &c.secure_email]
        .iter()
        .all(|v| v.trim().is_empty())
    {
        return Err(invalid(
            "card gives no way to reach you: fill in at least officer, phone or secure_email",
        ));
    }
    Ok(Card {
        unit_name: c.unit_name.clone(),
        officer: c.officer.clone(),
        phone: c.phone.clone(),
        secure_email: c.secure_email.clone(),
        note: c.note.clone(),
    })
}

pub fn card_to_proto(c: &Card) -> v1::ContactCard {
    v1::ContactCard {
        unit_name: c.unit_name.clone(),
        officer: c.officer.clone(),
        phone: c.phone.clone(),
        secure_email: c.secure_email.clone(),
        note: c.note.clone(),
    }
}

fn state_proto(s: MatchState) -> i32 {
    match s {
        MatchState::Open => v1::MatchState::Open as i32,
        MatchState::Resolved => v1::MatchState::Resolved as i32,
    }
}

impl Ledger {
    /// Loads a match and works out which side the caller is. A match the caller is not a
    /// party to is reported as not found, so ids cannot be probed.
    fn party_match(
        &self,
        txn: &Txn<'_>,
        agency: &AgencyId,
        id: &Uuid,
    ) -> Result<(MatchRecord, Side)> {
        let not_found = || BrokerError::NotFound(format!("no match {id} among your matches"));
        let m: MatchRecord = txn
            .get_rec(&keys::match_record(id))?
            .ok_or_else(not_found)?;
        let (is_a, is_b) = (m.a.agency == agency.as_str(), m.b.agency == agency.as_str());
        match (is_a, is_b) {
            (true, false) => Ok((m, Side::A)),
            (false, true) => Ok((m, Side::B)),
            (true, true) => Err(BrokerError::FailedPrecondition(format!(
                "both operations of match {id} are your agency's ({} and {}): coordinate \
                 internally, the relay is for other agencies",
                Uuid::from_bytes(m.a.op),
                Uuid::from_bytes(m.b.op)
            ))),
            (false, false) => Err(not_found()),
        }
    }

    /// The match as `s` sees it.
    fn view(&self, txn: &Txn<'_>, id: &Uuid, m: &MatchRecord, s: Side) -> Result<v1::MatchView> {
        let own = side(m, s);
        let op: Option<OpRecord> = txn.get_rec(&keys::op(&Uuid::from_bytes(own.op)))?;
        let tokens = op
            .map(|op| {
                op.tokens
                    .iter()
                    .filter(|t| m.shared.contains(&t.stored))
                    .map(|t| v1::MatchedToken {
                        kind: t.kind,
                        local_ref: t.local_ref,
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(v1::MatchView {
            match_id: id.to_string(),
            operation_id: Uuid::from_bytes(own.op).to_string(),
            state: state_proto(m.state),
            outcome: m.outcome,
            created_unix: m.created,
            updated_unix: m.updated,
            tokens,
            you_disclosed: own.card.is_some(),
            cards_exchanged: m.cards_exchanged,
        })
    }

    fn notify(
        &self,
        txn: &mut Txn<'_>,
        m: &MatchRecord,
        to: Side,
        now: i64,
        event: v1::alert::Event,
    ) -> Result<()> {
        let agency = agency_of(side(m, to))?;
        queue::enqueue(txn, &agency, now, event)?;
        Ok(())
    }

    pub fn get_match(&self, agency: &AgencyId, id: &Uuid) -> Result<v1::MatchView> {
        let txn = Txn::new(self.store.as_ref());
        let (m, s) = self.party_match(&txn, agency, id)?;
        self.view(&txn, id, &m, s)
    }

    pub fn send_message(
        &self,
        agency: &AgencyId,
        id: &Uuid,
        text: &str,
        now: i64,
    ) -> Result<(v1::MatchView, Notifications)> {
        if text.trim().is_empty() {
            return Err(invalid("text is empty: write the message to send"));
        }
        check_len("text", text, MAX_MESSAGE_CHARS)?;
        let _guard = self.lock();
        let mut txn = Txn::new(self.store.as_ref());
        let (m, s) = self.party_match(&txn, agency, id)?;
        let to = s.other();
        let event = v1::alert::Event::Message(v1::MessageAlert {
            match_id: id.to_string(),
            operation_id: Uuid::from_bytes(side(&m, to).op).to_string(),
            text: text.to_owned(),
        });
        self.notify(&mut txn, &m, to, now, event)?;
        txn.audit(
            AuditEvent::new(agency.as_str(), "message")
                .id(id)
                .count("chars", text.chars().count() as u64),
        );
        let view = self.view(&txn, id, &m, s)?;
        let notes = txn.commit(&self.hub, &self.audit, now)?;
        Ok((view, notes))
    }

    pub fn disclose(
        &self,
        agency: &AgencyId,
        id: &Uuid,
        card: Card,
        now: i64,
    ) -> Result<(v1::MatchView, Notifications)> {
        let _guard = self.lock();
        let mut txn = Txn::new(self.store.as_ref());
        let (mut m, s) = self.party_match(&txn, agency, id)?;
        side_mut(&mut m, s).card = Some(card);
        m.updated = now;
        let other = s.other();
        let exchange = side(&m, other).card.is_some();
        if exchange {
            // Both consented: each gets the other's card (again, if one was updated).
            for to in [s, other] {
                let Some(card) = side(&m, to.other()).card.clone() else {
                    continue;
                };
                let event = v1::alert::Event::Contact(v1::ContactAlert {
                    match_id: id.to_string(),
                    operation_id: Uuid::from_bytes(side(&m, to).op).to_string(),
                    card: Some(card_to_proto(&card)),
                });
                self.notify(&mut txn, &m, to, now, event)?;
            }
            m.cards_exchanged = true;
        }
        txn.put_rec(keys::match_record(id), &m)?;
        txn.audit(
            AuditEvent::new(agency.as_str(), "disclose")
                .id(id)
                .count("exchanged", u64::from(exchange)),
        );
        let view = self.view(&txn, id, &m, s)?;
        let notes = txn.commit(&self.hub, &self.audit, now)?;
        Ok((view, notes))
    }

    pub fn withdraw_disclosure(
        &self,
        agency: &AgencyId,
        id: &Uuid,
        now: i64,
    ) -> Result<(v1::MatchView, Notifications)> {
        let _guard = self.lock();
        let mut txn = Txn::new(self.store.as_ref());
        let (mut m, s) = self.party_match(&txn, agency, id)?;
        if m.cards_exchanged {
            return Err(BrokerError::FailedPrecondition(format!(
                "the cards of match {id} were already exchanged; a delivered card cannot be \
                 taken back"
            )));
        }
        if side(&m, s).card.is_some() {
            side_mut(&mut m, s).card = None;
            m.updated = now;
            txn.put_rec(keys::match_record(id), &m)?;
            txn.audit(AuditEvent::new(agency.as_str(), "withdraw_disclosure").id(id));
        }
        let view = self.view(&txn, id, &m, s)?;
        let notes = txn.commit(&self.hub, &self.audit, now)?;
        Ok((view, notes))
    }

    /// Resolves (or, with `reopen`, reopens) a match and tells both parties. Repeating the
    /// same change is a no-op, so retries are safe.
    pub fn set_match_state(
        &self,
        agency: &AgencyId,
        id: &Uuid,
        change: StateChange,
        now: i64,
    ) -> Result<(v1::MatchView, Notifications)> {
        let (state, outcome, note) = match &change {
            StateChange::Resolve { outcome, note } => {
                if !matches!(
                    v1::MatchOutcome::try_from(*outcome),
                    Ok(v1::MatchOutcome::Deconflicted
                        | v1::MatchOutcome::JointOperation
                        | v1::MatchOutcome::NoConflict
                        | v1::MatchOutcome::Other)
                ) {
                    return Err(invalid(
                        "outcome must be one of deconflicted, joint operation, no conflict, other",
                    ));
                }
                check_len("note", note, MAX_NOTE_CHARS)?;
                (MatchState::Resolved, *outcome, note.clone())
            }
            StateChange::Reopen => (MatchState::Open, 0, String::new()),
        };
        let _guard = self.lock();
        let mut txn = Txn::new(self.store.as_ref());
        let (mut m, s) = self.party_match(&txn, agency, id)?;
        if m.state == MatchState::Resolved && state == MatchState::Resolved && m.outcome != outcome
        {
            return Err(BrokerError::FailedPrecondition(format!(
                "match {id} is already resolved with another outcome; reopen it first"
            )));
        }
        if m.state != state {
            m.state = state;
            m.outcome = outcome;
            m.note = note.clone();
            m.updated = now;
            txn.put_rec(keys::match_record(id), &m)?;
            for to in [s, s.other()] {
                let event = v1::alert::Event::MatchState(v1::MatchStateAlert {
                    match_id: id.to_string(),
                    operation_id: Uuid::from_bytes(side(&m, to).op).to_string(),
                    state: state_proto(state),
                    outcome,
                    note: note.clone(),
                    by_you: to == s,
                });
                self.notify(&mut txn, &m, to, now, event)?;
            }
            let action = if state == MatchState::Resolved {
                "resolve"
            } else {
                "reopen"
            };
            txn.audit(
                AuditEvent::new(agency.as_str(), action)
                    .id(id)
                    .count("outcome", u64::try_from(outcome).unwrap_or(0)),
            );
        }
        let view = self.view(&txn, id, &m, s)?;
        let notes = txn.commit(&self.hub, &self.audit, now)?;
        Ok((view, notes))
    }
}

#[derive(Debug, Clone)]
pub enum StateChange {
    Resolve { outcome: i32, note: String },
    Reopen,
}

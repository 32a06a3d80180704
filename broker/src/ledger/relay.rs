//! After the hit: messages between the two parties of a match, contact cards exchanged only
//! on mutual consent, and resolution. Each party is addressed only as "the other party".
//!
//! Messages and cards are never logged or audited by content; the audit log records the
//! action, the match id and lengths.

use deconfliction_proto::v1;
use uuid::Uuid;

use super::progress::{self, Step};
use super::records::{Card, MatchRecord, MatchSide, MatchState, OpRecord};
use super::txn::Txn;
use super::views::{OwnSelector, PartyView};
use super::{Ledger, Notifications, keys, queue};
use crate::error::{BrokerError, Result};
use crate::identity::AgencyId;
use crate::ledger::audit::AuditEvent;
use crate::store::StoreError;

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
        let not_found = || BrokerError::NotParty(*id);
        let m: MatchRecord = txn
            .get_rec(&keys::match_record(id))?
            .ok_or_else(not_found)?;
        let (is_a, is_b) = (m.a.agency == agency.as_str(), m.b.agency == agency.as_str());
        match (is_a, is_b) {
            (true, false) => Ok((m, Side::A)),
            (false, true) => Ok((m, Side::B)),
            (true, true) => Err(BrokerError::OwnMatch {
                id: *id,
                a: Uuid::from_bytes(m.a.op),
                b: Uuid::from_bytes(m.b.op),
            }),
            (false, false) => Err(not_found()),
        }
    }

    /// The match as `s` sees it.
    fn view(&self, txn: &Txn<'_>, id: &Uuid, m: &MatchRecord, s: Side) -> Result<PartyView> {
        let own = side(m, s);
        let op: Option<OpRecord> = txn.get_rec(&keys::op(&Uuid::from_bytes(own.op)))?;
        let selectors = op
            .map(|op| {
                op.tokens
                    .iter()
                    .filter(|t| m.shared.contains(&t.stored))
                    .map(|t| OwnSelector {
                        kind: t.kind,
                        local_ref: t.local_ref,
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(PartyView {
            match_id: *id,
            operation_id: Uuid::from_bytes(own.op),
            state: m.state,
            outcome: m.outcome,
            created: m.created,
            updated: m.updated,
            selectors,
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

    pub fn get_match(&self, agency: &AgencyId, id: &Uuid) -> Result<PartyView> {
        let txn = self.txn();
        let (m, s) = self.party_match(&txn, agency, id)?;
        self.view(&txn, id, &m, s)
    }

    pub fn send_message(
        &self,
        agency: &AgencyId,
        id: &Uuid,
        text: &str,
        now: i64,
    ) -> Result<(PartyView, Notifications)> {
        let _guard = self.lock()?;
        let mut txn = self.txn();
        let (m, s) = self.party_match(&txn, agency, id)?;
        let to = s.other();
        let event = v1::alert::Event::Message(v1::MessageAlert {
            match_id: id.to_string(),
            operation_id: Uuid::from_bytes(side(&m, to).op).to_string(),
            text: text.to_owned(),
        });
        self.notify(&mut txn, &m, to, now, event)?;
        let own = Some(side(&m, s).op);
        progress::record(&mut txn, id, &m, agency.as_str(), own, Step::Message, now)?;
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
    ) -> Result<(PartyView, Notifications)> {
        let _guard = self.lock()?;
        let mut txn = self.txn();
        let (mut m, s) = self.party_match(&txn, agency, id)?;
        side_mut(&mut m, s).card = Some(card);
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
            // `updated` moves only with what both sides are told of: a card waiting alone
            // must not show in the other side's view.
            m.updated = now;
        }
        txn.put_rec(keys::match_record(id), &m)?;
        let own = Some(side(&m, s).op);
        progress::record(&mut txn, id, &m, agency.as_str(), own, Step::Disclosed, now)?;
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
    ) -> Result<(PartyView, Notifications)> {
        let _guard = self.lock()?;
        let mut txn = self.txn();
        let (mut m, s) = self.party_match(&txn, agency, id)?;
        if m.cards_exchanged {
            return Err(BrokerError::CardsExchanged(*id));
        }
        if side(&m, s).card.is_some() {
            side_mut(&mut m, s).card = None;
            // Not `updated`: the other side was never told the card was there.
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
    ) -> Result<(PartyView, Notifications)> {
        let (state, outcome, note) = match &change {
            StateChange::Resolve { outcome, note } => {
                (MatchState::Resolved, *outcome, note.clone())
            }
            StateChange::Reopen => (MatchState::Open, 0, String::new()),
        };
        let _guard = self.lock()?;
        let mut txn = self.txn();
        let (mut m, s) = self.party_match(&txn, agency, id)?;
        if m.state == MatchState::Resolved && state == MatchState::Resolved && m.outcome != outcome
        {
            return Err(BrokerError::ResolvedOtherwise(*id));
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
            let (action, step) = if state == MatchState::Resolved {
                ("resolve", Step::Resolved)
            } else {
                ("reopen", Step::Reopened)
            };
            let own = Some(side(&m, s).op);
            progress::record(&mut txn, id, &m, agency.as_str(), own, step, now)?;
            txn.audit(
                AuditEvent::new(agency.as_str(), action)
                    .id(id)
                    .count("outcome", u64::try_from(outcome).unwrap_or(0)),
            );
            if state == MatchState::Open && self.catch_up(&mut txn, id, now)? {
                // The match grew: read back what it holds now.
                if let Some(grown) = txn.get_rec::<MatchRecord>(&keys::match_record(id))? {
                    m = grown;
                }
            }
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

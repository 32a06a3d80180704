//! Leak scan over every alert received: an alert to bureau A may name A's own operations and
//! nothing else: no other bureau's id, operation id or case reference, no selector text of
//! anybody, no canonical form nor its identifying fields alone (the 18-character resident ID
//! a 15-digit number normalizes to, a card's bare digits, a permit's lifetime number, a Han
//! name's Pinyin words), no raw token.

use std::collections::HashMap;

use prost::Message;
use token_spec::normalize::Selector;

use super::generate::Simulation;
use super::run::Outcome;
use super::truth::Truth;

const PREFIX: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum What {
    AgencyId,
    OperationId,
    CaseReference,
    SelectorText,
    CanonicalForm,
    Token,
}

struct Needle {
    bytes: Vec<u8>,
    owner: usize,
    what: What,
}

/// Byte strings to look for, indexed by their first [`PREFIX`] bytes (shorter ones identify
/// nothing and are left out).
#[derive(Default)]
struct Needles {
    all: Vec<Needle>,
    by_prefix: HashMap<[u8; PREFIX], Vec<usize>>,
}

impl Needles {
    fn add(&mut self, bytes: &[u8], owner: usize, what: What) {
        let Some(prefix) = bytes.get(..PREFIX) else {
            return;
        };
        let mut key = [0u8; PREFIX];
        key.copy_from_slice(prefix);
        self.by_prefix.entry(key).or_default().push(self.all.len());
        self.all.push(Needle {
            bytes: bytes.to_vec(),
            owner,
            what,
        });
    }

    fn hits<'a>(&'a self, hay: &'a [u8]) -> impl Iterator<Item = &'a Needle> + 'a {
        (0..hay.len().saturating_sub(PREFIX - 1)).flat_map(move |i| {
            let mut key = [0u8; PREFIX];
            key.copy_from_slice(&hay[i..i + PREFIX]);
            self.by_prefix
                .get(&key)
                .into_iter()
                .flatten()
                .map(|&n| &self.all[n])
                .filter(move |n| hay[i..].starts_with(&n.bytes))
        })
    }
}

/// The identifying text fields of a selector.
pub fn selector_texts(s: &Selector) -> Vec<String> {
    match s {
        Selector::Person { names, dob } => names.iter().cloned().chain([dob.clone()]).collect(),
        Selector::Phone { text, .. }
        | Selector::Plate { text, .. }
        | Selector::Vin { text }
        | Selector::Imei { text }
        | Selector::Email { text }
        | Selector::Iban { text }
        | Selector::Address { text, .. }
        | Selector::Cnid { text }
        | Selector::Passport { text, .. }
        | Selector::Permit { text, .. }
        | Selector::Card { text }
        | Selector::Org { text } => vec![text.clone()],
        Selector::Wallet { address, .. } => vec![address.trim().to_string()],
        Selector::Handle { handle, .. } => vec![handle.clone()],
        Selector::Geo { lat, lng } => vec![lat.to_string(), lng.to_string()],
    }
}

/// The fields of a canonical form that identify someone on their own: a person's name words
/// and date of birth, and the last field of every other kind (the number, the plate, the
/// address, the cell), not the qualifiers before it (a country, a chain, a permit type).
pub fn identifying_fields(form: &[u8]) -> Vec<&[u8]> {
    // "dcf1", the kind, then the fields.
    let parts: Vec<&[u8]> = form.split(|&b| b == 0).collect();
    match parts.get(1..) {
        Some([kind, fields @ ..]) if *kind == b"person" => fields.to_vec(),
        Some([_, .., last]) => vec![*last],
        _ => Vec::new(),
    }
}

/// Every leak found, one line each (empty: none).
pub fn scan(sim: &Simulation, truth: &Truth, outcome: &Outcome) -> Vec<String> {
    let mut needles = Needles::default();
    for (i, a) in sim.agencies.iter().enumerate() {
        needles.add(a.id.as_bytes(), i, What::AgencyId);
    }
    for (i, op) in sim.operations.iter().enumerate() {
        let owner = op.agency;
        needles.add(op.operation_id.as_bytes(), owner, What::OperationId);
        needles.add(op.case_reference.as_bytes(), owner, What::CaseReference);
        for text in op.selectors.iter().flat_map(selector_texts) {
            needles.add(text.as_bytes(), owner, What::SelectorText);
        }
        for f in &truth.forms[i] {
            needles.add(&f.bytes, owner, What::CanonicalForm);
            for field in identifying_fields(&f.bytes) {
                needles.add(field, owner, What::CanonicalForm);
            }
        }
        for t in &outcome.tokens[i] {
            needles.add(t, owner, What::Token);
        }
    }
    let mut leaks = Vec::new();
    for r in &outcome.alerts {
        let bytes = r.alert.encode_to_vec();
        for n in needles.hits(&bytes) {
            let own_id =
                n.owner == r.agency && matches!(n.what, What::AgencyId | What::OperationId);
            if !own_id {
                leaks.push(format!(
                    "alert seq {} to {} holds {:?} {:?} of {}",
                    r.alert.seq,
                    sim.agencies[r.agency].id,
                    n.what,
                    String::from_utf8_lossy(&n.bytes),
                    sim.agencies[n.owner].id
                ));
            }
        }
    }
    leaks
}

/// Plaintext in what the broker itself holds or writes (its data folder, its logs): no
/// selector text, canonical form or raw token of any bureau may appear there. Selector texts
/// shorter than 8 bytes (a date of birth, a coordinate) are left out: they would match by
/// chance in binary data.
pub fn scan_broker_bytes(
    sim: &Simulation,
    truth: &Truth,
    outcome: &Outcome,
    name: &str,
    hay: &[u8],
) -> Vec<String> {
    let mut needles = Needles::default();
    for (i, op) in sim.operations.iter().enumerate() {
        for text in op.selectors.iter().flat_map(selector_texts) {
            if text.len() >= 8 {
                needles.add(text.as_bytes(), op.agency, What::SelectorText);
            }
        }
        for f in &truth.forms[i] {
            needles.add(&f.bytes, op.agency, What::CanonicalForm);
            for field in identifying_fields(&f.bytes) {
                if field.len() >= 8 {
                    needles.add(field, op.agency, What::CanonicalForm);
                }
            }
        }
        for t in &outcome.tokens[i] {
            needles.add(t, op.agency, What::Token);
            needles.add(hex::encode(t).as_bytes(), op.agency, What::Token);
        }
    }
    needles
        .hits(hay)
        .map(|n| {
            format!(
                "{name} holds {:?} of {}: {:?}",
                n.what,
                sim.agencies[n.owner].id,
                String::from_utf8_lossy(&n.bytes)
            )
        })
        .collect()
}

//! Turns request messages into ledger inputs, rejecting bad input with a message a person can
//! act on. Raw tokens are peppered here and go no further.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use deconfliction_proto::{TOKEN_LEN, v1};
use uuid::Uuid;

use crate::error::{Result, invalid};
use crate::identity::AgencyId;
use crate::ledger::records::{Card, StoredToken, TokenRec, Window};
use crate::ledger::{Amendment, NewOperation, Policy, StateChange, registration_digest};
use crate::secrets::pepper::Pepper;

pub fn operation_id(text: &str) -> Result<Uuid> {
    if text.is_empty() {
        return Err(invalid("operation_id is empty: give the operation's UUID"));
    }
    Uuid::parse_str(text).map_err(|_| {
        invalid(format!(
            "operation_id {:?} is not a UUID (expected e.g. 67e55044-10b1-426f-9247-bb680e5fe0c8)",
            text.chars().take(64).collect::<String>()
        ))
    })
}

pub fn window(window: Option<&v1::Window>, field: &str) -> Result<Window> {
    let w = window.ok_or_else(|| invalid(format!("{field} is missing")))?;
    Ok(Window {
        start: w.start_unix,
        end: w.end_unix,
    })
}

fn token(raw: &[u8], index: usize, field: &str) -> Result<()> {
    if raw.len() != TOKEN_LEN {
        return Err(invalid(format!(
            "{field}[{index}] is {} bytes; every token is exactly {TOKEN_LEN} bytes",
            raw.len()
        )));
    }
    Ok(())
}

fn kind(value: i32, index: usize, field: &str) -> Result<i32> {
    match v1::SelectorKind::try_from(value) {
        Ok(v1::SelectorKind::Unspecified) | Err(_) => Err(invalid(format!(
            "{field}[{index}].kind {value} is not a selector kind (person, phone, plate, vin, \
             imei, email, iban, wallet, handle, address, geo, cnid, passport, permit, card, \
             org, person_pinyin)"
        ))),
        Ok(k) => Ok(k as i32),
    }
}

/// Validates and peppers a token list; duplicates are refused since they mean a client bug.
pub fn token_entries(
    entries: &[v1::TokenEntry],
    field: &str,
    pepper: &Pepper,
    policy: &Policy,
) -> Result<Vec<TokenRec>> {
    if entries.len() > policy.max_tokens_per_operation {
        return Err(invalid(format!(
            "{field} holds {} tokens; at most {} are allowed",
            entries.len(),
            policy.max_tokens_per_operation
        )));
    }
    let mut seen: HashMap<StoredToken, usize> = HashMap::with_capacity(entries.len());
    let mut out = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        token(&e.token, i, field)?;
        let kind = kind(e.kind, i, field)?;
        let stored = pepper.stored(&e.token);
        if let Some(first) = seen.insert(stored, i) {
            return Err(invalid(format!(
                "{field}[{i}] repeats {field}[{first}]: each token may appear once"
            )));
        }
        out.push(TokenRec {
            stored,
            kind,
            local_ref: e.local_ref,
        });
    }
    Ok(out)
}

pub fn registration(
    req: &v1::RegisterOperationRequest,
    pepper: &Pepper,
    policy: &Policy,
) -> Result<NewOperation> {
    let id = operation_id(&req.operation_id)?;
    let window = window(req.window.as_ref(), "window")?;
    if req.tokens.is_empty() {
        return Err(invalid(
            "tokens is empty: an operation needs at least one token",
        ));
    }
    let tokens = token_entries(&req.tokens, "tokens", pepper, policy)?;
    // Case references stay with the agency (in agencyd); the broker takes none, so that it
    // can never leak one.
    if !req.case_reference.is_empty() {
        return Err(invalid(
            "case_reference: the broker takes no case reference (it stays in agencyd); send it \
             empty",
        ));
    }
    let earlier_digests = earlier_digests(req, &window, &tokens, pepper);
    Ok(NewOperation {
        id,
        window,
        tokens,
        case_reference: req.case_reference.clone(),
        earlier_digests,
    })
}

/// The registration's digest under each earlier pepper generation, lifted to the current one
/// (what a re-key made of a digest recorded back then).
fn earlier_digests(
    req: &v1::RegisterOperationRequest,
    window: &Window,
    tokens: &[TokenRec],
    pepper: &Pepper,
) -> Vec<[u8; 32]> {
    (1..pepper.generation())
        .map(|generation| {
            let then: Vec<TokenRec> = req
                .tokens
                .iter()
                .zip(tokens)
                .map(|(raw, t)| TokenRec {
                    stored: pepper.stored_at(&raw.token, generation),
                    ..t.clone()
                })
                .collect();
            let digest = registration_digest(window, &then, &req.case_reference);
            pepper.lift(digest, generation)
        })
        .collect()
}

pub fn amendment(
    req: &v1::AmendOperationRequest,
    pepper: &Pepper,
    policy: &Policy,
) -> Result<(Uuid, Amendment)> {
    let id = operation_id(&req.operation_id)?;
    if req.add_tokens.is_empty() && req.remove_tokens.is_empty() && req.window.is_none() {
        return Err(invalid(
            "the amendment changes nothing: give add_tokens, remove_tokens or a window",
        ));
    }
    let add = token_entries(&req.add_tokens, "add_tokens", pepper, policy)?;
    if req.remove_tokens.len() > policy.max_tokens_per_operation {
        return Err(invalid(format!(
            "remove_tokens holds {} tokens; at most {} are allowed",
            req.remove_tokens.len(),
            policy.max_tokens_per_operation
        )));
    }
    let mut remove = Vec::with_capacity(req.remove_tokens.len());
    for (i, raw) in req.remove_tokens.iter().enumerate() {
        token(raw, i, "remove_tokens")?;
        remove.push(pepper.stored(raw));
    }
    let window = match &req.window {
        Some(w) => Some(window(Some(w), "window")?),
        None => None,
    };
    Ok((
        id,
        Amendment {
            add,
            remove,
            window,
        },
    ))
}

pub fn check(
    req: &v1::CheckRequest,
    pepper: &Pepper,
    policy: &Policy,
) -> Result<(Window, Vec<StoredToken>)> {
    let window = window(req.window.as_ref(), "window")?;
    if window.end <= window.start {
        return Err(invalid(format!(
            "window ends ({}) before it starts ({}): end must be after start",
            window.end, window.start
        )));
    }
    if req.tokens.is_empty() {
        return Err(invalid("tokens is empty: give at least one token to check"));
    }
    let tokens = token_entries(&req.tokens, "tokens", pepper, policy)?;
    Ok((window, tokens.into_iter().map(|t| t.stored).collect()))
}

/// Every request message decoded from arbitrary bytes, then validated: never a panic, and an
/// error message never echoes a token (the fuzz targets in `fuzz/` do the same, unbounded).
/// Longest relay message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 4000;
const MAX_CARD_FIELD_CHARS: usize = 200;
const MAX_NOTE_CHARS: usize = 1000;
const MAX_SUSPENSION_REASON_CHARS: usize = 500;

/// A match id as the caller copied it from an alert.
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

/// A contact card as disclosed: bounded fields, and at least one way to reach the officer.
pub fn card(card: Option<&v1::ContactCard>) -> Result<Card> {
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

/// A relay message: not empty, bounded, no NUL.
pub fn message_text(text: &str) -> Result<()> {
    if text.trim().is_empty() {
        return Err(invalid("text is empty: write the message to send"));
    }
    check_len("text", text, MAX_MESSAGE_CHARS)
}

/// A resolution: one of the outcomes a party may record, and a bounded note.
pub fn resolution(outcome: i32, note: String) -> Result<StateChange> {
    if !matches!(
        v1::MatchOutcome::try_from(outcome),
        Ok(v1::MatchOutcome::Deconflicted
            | v1::MatchOutcome::JointOperation
            | v1::MatchOutcome::NoConflict
            | v1::MatchOutcome::Other)
    ) {
        return Err(invalid(
            "outcome must be one of deconflicted, joint operation, no conflict, other",
        ));
    }
    check_len("note", &note, MAX_NOTE_CHARS)?;
    Ok(StateChange::Resolve { outcome, note })
}

/// The agency an admin call acts on.
pub fn agency_id(text: &str) -> Result<AgencyId> {
    AgencyId::parse(text).map_err(|e| invalid(e.to_string()))
}

/// Default and largest page of a list call: pages keep every answer far below the message
/// limit whatever an agency holds.
pub const DEFAULT_PAGE: usize = 1_000;
pub const MAX_PAGE: usize = 5_000;

/// A list call's page size (0: the default), refused above the maximum.
pub fn page_size(size: u32) -> Result<usize> {
    match size as usize {
        0 => Ok(DEFAULT_PAGE),
        n if n <= MAX_PAGE => Ok(n),
        n => Err(invalid(format!(
            "page_size {n} is larger than {MAX_PAGE}: page through the list instead"
        ))),
    }
}

/// A page token that is an operation id (ListOperations).
pub fn operation_page_token(token: &str) -> Result<Option<Uuid>> {
    if token.is_empty() {
        return Ok(None);
    }
    Uuid::parse_str(token)
        .map(Some)
        .map_err(|_| invalid("page_token is not one this call gave: start again without it"))
}

/// An enrolment: one of the four roles, and a display name short enough for a screen.
pub fn enrolment(role: i32, display_name: &str) -> Result<()> {
    if !matches!(
        v1::Role::try_from(role),
        Ok(v1::Role::Agency | v1::Role::WatchCentre | v1::Role::Admin | v1::Role::TokenService)
    ) {
        return Err(invalid(
            "role must be agency, watch centre, admin or token service",
        ));
    }
    if display_name.chars().count() > 200 {
        return Err(invalid("display_name is longer than 200 characters"));
    }
    Ok(())
}

/// Why an agency is suspended: shown to it on every refused call, so kept short.
pub fn suspension_reason(reason: &str) -> Result<()> {
    if reason.chars().count() > MAX_SUSPENSION_REASON_CHARS {
        return Err(invalid(format!(
            "reason is longer than {MAX_SUSPENSION_REASON_CHARS} characters"
        )));
    }
    Ok(())
}

/// A drill id: it names a folder and appears in every participant's screens, so it is kept
/// to lower-case letters, digits and '-'.
pub fn drill_id(text: &str) -> Result<String> {
    let ok = !text.is_empty()
        && text.len() <= 40
        && !text.starts_with('-')
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(text.to_owned())
    } else {
        Err(invalid(format!(
            "drill_id {text:?} must be 1 to 40 lower-case letters, digits or '-', not starting \
             with '-'"
        )))
    }
}

/// A drill to start: id, a name for screens, a duration, a port, and its simulated bureaus.
pub fn drill_start(r: &v1::StartDrillRequest) -> Result<crate::drills::DrillRequest> {
    let id = drill_id(&r.drill_id)?;
    check_len("name", &r.name, 200)?;
    if r.duration_seconds == 0 {
        return Err(invalid(
            "duration_seconds must be given: how long the drill runs",
        ));
    }
    let duration_secs = i64::try_from(r.duration_seconds)
        .map_err(|_| invalid("duration_seconds is out of range"))?;
    let port =
        u16::try_from(r.port).map_err(|_| invalid(format!("port {} is not a TCP port", r.port)))?;
    let mut simulated = Vec::with_capacity(r.simulated.len());
    for s in &r.simulated {
        let agency = agency_id(&s.agency_id)?;
        enrolment(v1::Role::Agency as i32, &s.display_name)?;
        simulated.push((agency.to_string(), s.display_name.clone()));
    }
    Ok(crate::drills::DrillRequest {
        id,
        name: r.name.clone(),
        duration_secs,
        port,
        simulated,
    })
}

/// Why a drill is halted: every participant reads it at once, so it must say something.
pub fn halt_reason(reason: &str) -> Result<()> {
    if reason.trim().is_empty() {
        return Err(invalid("reason must say why the drill is halted"));
    }
    check_len("reason", reason, MAX_SUSPENSION_REASON_CHARS)
}

/// Where a backup goes: a new folder directly or further below the configured backup root
/// (a name relative to it, or an absolute path inside it), reached through no symbolic link
/// and no `..`, so that an admin certificate cannot write anywhere else on the host.
pub fn backup_dir(text: &str, root: Option<&Path>) -> Result<PathBuf> {
    let root = root.ok_or_else(|| {
        invalid("backups over the network are off: set server.backup_root in broker.toml")
    })?;
    let root = root.canonicalize().map_err(|e| {
        invalid(format!(
            "server.backup_root {} cannot be used: {e}",
            root.display()
        ))
    })?;
    let asked = Path::new(text);
    if text.is_empty()
        || asked
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(invalid(
            "directory must name a new folder below the backup root, without ..",
        ));
    }
    let dir = if asked.is_absolute() {
        asked.to_path_buf()
    } else {
        root.join(asked)
    };
    let below = dir.strip_prefix(&root).map_err(|_| {
        invalid(format!(
            "directory must be below the backup root {}",
            root.display()
        ))
    })?;
    if below.as_os_str().is_empty() {
        return Err(invalid(
            "directory must be a new folder below the backup root",
        ));
    }
    // Every folder between the root and the new one must be a real folder, not a link.
    let mut at = root.clone();
    for part in below.components() {
        at.push(part);
        match std::fs::symlink_metadata(&at) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(invalid(format!(
                    "{} is a symbolic link: backups are written only into real folders below \
                     the backup root",
                    at.display()
                )));
            }
            _ => {}
        }
    }
    Ok(dir)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod proptests {
    use super::*;
    use proptest::prelude::*;
    use prost::Message;

    fn pepper() -> Pepper {
        Pepper::from_bytes([7; 32])
    }

    fn no_token_in(message: &str, tokens: &[Vec<u8>]) {
        for t in tokens.iter().filter(|t| t.len() >= 8) {
            assert!(
                !message.contains(&hex::encode(t)),
                "token echoed in {message:?}"
            );
        }
    }

    fn token_entry() -> impl Strategy<Value = v1::TokenEntry> {
        (
            prop::collection::vec(any::<u8>(), 0..40),
            any::<i32>(),
            any::<u64>(),
        )
            .prop_map(|(token, kind, local_ref)| v1::TokenEntry {
                token,
                kind,
                local_ref,
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let policy = Policy::default();
            if let Ok(r) = v1::RegisterOperationRequest::decode(bytes.as_slice()) {
                let _ = registration(&r, &pepper(), &policy);
            }
            if let Ok(r) = v1::AmendOperationRequest::decode(bytes.as_slice()) {
                let _ = amendment(&r, &pepper(), &policy);
            }
            if let Ok(r) = v1::CheckRequest::decode(bytes.as_slice()) {
                let _ = check(&r, &pepper(), &policy);
            }
            if let Ok(r) = v1::CloseOperationRequest::decode(bytes.as_slice()) {
                let _ = operation_id(&r.operation_id);
            }
            let _ = v1::SubscribeRequest::decode(bytes.as_slice());
            let _ = v1::AckRequest::decode(bytes.as_slice());
            let _ = v1::SendMessageRequest::decode(bytes.as_slice());
            if let Ok(r) = v1::DiscloseRequest::decode(bytes.as_slice()) {
                let _ = card(r.card.as_ref());
            }
            if let Ok(r) = v1::ResolveMatchRequest::decode(bytes.as_slice()) {
                let _ = match_id(&r.match_id);
                let _ = resolution(r.outcome, r.note);
            }
            let _ = v1::EvaluateRequest::decode(bytes.as_slice());
        }

        #[test]
        fn structured_requests_validate_or_explain_without_echoing_tokens(
            id in "[0-9a-f-]{0,40}",
            start in any::<i64>(),
            end in any::<i64>(),
            tokens in prop::collection::vec(token_entry(), 0..6),
            case in ".{0,300}",
        ) {
            let req = v1::RegisterOperationRequest {
                operation_id: id,
                window: Some(v1::Window { start_unix: start, end_unix: end }),
                tokens: tokens.clone(),
                case_reference: case,
            };
            let raw: Vec<Vec<u8>> = tokens.iter().map(|t| t.token.clone()).collect();
            if let Err(e) = registration(&req, &pepper(), &Policy::default()) {
                no_token_in(&e.to_string(), &raw);
            }
            let check_req = v1::CheckRequest {
                window: Some(v1::Window { start_unix: start, end_unix: end }),
                tokens,
            };
            if let Err(e) = check(&check_req, &pepper(), &Policy::default()) {
                no_token_in(&e.to_string(), &raw);
            }
        }
    }
}

//! What agencyd keeps in its local store. JSON-encoded: the store holds the agency's own
//! plaintext (it is the only place besides the officers' screens that does), which is why its
//! folder is mode 0700 and its files 0600.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One of the agency's operations, as the officers last asked for it (the desired state; the
/// outbox carries the changes still to be told to the broker).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpRecord {
    /// UUID, shared with the broker.
    pub id: String,
    /// Free text of the agency's.
    pub case_reference: String,
    /// `[start, end)` Unix seconds.
    pub window: (i64, i64),
    /// Current selectors' local ids.
    pub selector_ids: Vec<u64>,
    /// Closed by an officer.
    pub closed: bool,
    /// When it was accepted, and last changed.
    pub created_unix: i64,
    /// When it was last changed.
    pub updated_unix: i64,
    /// "control", "inbox:<file>", "import".
    pub source: String,
    /// Outbox items of this operation not yet confirmed.
    pub pending: u32,
    /// The broker's last refusal of a change of this operation.
    pub last_error: Option<String>,
    /// Matches learned from alerts.
    pub match_ids: Vec<String>,
    /// What the registration held, to tell an idempotent repeat from a conflicting one.
    pub fingerprint: String,
    /// The broker confirmed the registration (records written before this field existed
    /// were, as a rule, delivered).
    #[serde(default = "yes")]
    pub registered: bool,
    /// Joint federations this operation is released to (`[[joint]] name`): registered there
    /// too, under joint tokens. Empty: it never leaves home.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub release_to: Vec<String>,
}

/// What a joint federation's broker holds of one released operation, as agencyd last told it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JointOpState {
    /// The joint broker confirmed the registration.
    pub registered: bool,
    /// The joint broker confirmed the close.
    pub closed: bool,
    /// The window last told.
    pub window: (i64, i64),
    /// Joint tokens (hex) the broker holds, by the pair of share epochs they were made under
    /// (`"1-1"`: share A's epoch, share B's) and local selector id. During a rotation of
    /// either share, two pairs.
    pub tokens: BTreeMap<String, BTreeMap<u64, Vec<String>>>,
    /// The joint broker's (or the token services') last refusal.
    pub last_error: Option<String>,
    /// The operation's `updated_unix` when it was refused: tried again once it changes.
    #[serde(default)]
    pub failed_update: i64,
}

fn yes() -> bool {
    true
}

/// One selector of an operation, with its tokens once derived.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "SelRecordOnDisk")]
pub struct SelRecord {
    /// Local id, used as `local_ref` at the broker.
    pub id: u64,
    /// The operation it belongs to.
    pub op_id: String,
    /// `{kind, ...fields}` as in operation files.
    pub selector: Value,
    /// The officer's label.
    pub label: String,
    /// Hex tokens by token-service key epoch, once derived (a geo point has several per
    /// epoch). During a key rotation a selector holds tokens of two epochs.
    pub tokens: BTreeMap<u32, Vec<String>>,
    /// Removed by an amendment.
    pub removed: bool,
}

/// A stored [`SelRecord`], also as written before tokens were kept per epoch (`tokens` a
/// list, `token_epoch` beside it).
#[derive(Deserialize)]
struct SelRecordOnDisk {
    id: u64,
    op_id: String,
    selector: Value,
    label: String,
    #[serde(default)]
    tokens: Value,
    #[serde(default)]
    token_epoch: u32,
    #[serde(default)]
    removed: bool,
}

impl TryFrom<SelRecordOnDisk> for SelRecord {
    type Error = String;

    fn try_from(d: SelRecordOnDisk) -> Result<Self, String> {
        let hex_list =
            |v: Value| serde_json::from_value::<Vec<String>>(v).map_err(|e| format!("tokens: {e}"));
        let mut tokens = BTreeMap::new();
        match d.tokens {
            Value::Null => {}
            Value::Array(list) => {
                let list = hex_list(Value::Array(list))?;
                if d.token_epoch != 0 && !list.is_empty() {
                    tokens.insert(d.token_epoch, list);
                }
            }
            Value::Object(map) => {
                for (epoch, list) in map {
                    let epoch = epoch
                        .parse::<u32>()
                        .map_err(|_| format!("tokens: key epoch {epoch:?} is not a number"))?;
                    tokens.insert(epoch, hex_list(list)?);
                }
            }
            other => return Err(format!("tokens: unexpected {other}")),
        }
        Ok(Self {
            id: d.id,
            op_id: d.op_id,
            selector: d.selector,
            label: d.label,
            tokens,
            removed: d.removed,
        })
    }
}

/// A change waiting to be told to the broker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxItem {
    /// Position in the outbox (global order).
    pub seq: u64,
    /// The operation it changes.
    pub op_id: String,
    /// The change.
    pub action: Action,
    /// When it was accepted.
    pub enqueued_unix: i64,
}

/// The changes the outbox sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// RegisterOperation with these selectors, window and case reference.
    Register {
        /// Selectors at registration.
        selector_ids: Vec<u64>,
        /// Window at registration.
        window: (i64, i64),
        /// Case reference at registration.
        case_reference: String,
    },
    /// AmendOperation.
    Amend {
        /// Selectors added.
        add: Vec<u64>,
        /// Selectors removed.
        remove: Vec<u64>,
        /// New window, if moved.
        window: Option<(i64, i64)>,
    },
    /// CloseOperation.
    Close,
    /// AmendOperation bringing the operation's tokens to the key epochs the token service
    /// serves: tokens for every pinned epoch added, tokens of retired epochs removed (a key
    /// rotation). Computed when sent, from the selectors then current.
    Rederive,
}

impl Action {
    /// The word used in events and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Register { .. } => "registered",
            Self::Amend { .. } => "amended",
            Self::Close => "closed",
            Self::Rederive => "re-derived",
        }
    }
}

/// A selector of ours named in an alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertSelector {
    /// Local id.
    pub id: u64,
    /// `{kind, ...fields}` as in operation files (plaintext: our own).
    pub selector: Value,
    /// The officer's label.
    pub label: String,
}

/// Another party's contact card.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CardRecord {
    /// Unit name.
    pub unit_name: String,
    /// Officer.
    pub officer: String,
    /// Phone.
    pub phone: String,
    /// Secure e-mail.
    pub secure_email: String,
    /// Free text.
    pub note: String,
}

/// A broker alert as stored, resolved to our own operation and selectors. This is also the
/// JSON that the file and webhook sinks receive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRecord {
    /// agencyd's own number for it (strictly increasing; not the broker's, which starts over
    /// after a restore and differs between federations).
    pub seq: u64,
    /// The joint federation it comes from (empty: our own federation).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub federation: String,
    /// When the broker raised it.
    pub at_unix: i64,
    /// When agencyd stored it.
    pub received_unix: i64,
    /// match, checked, message, contact, match_state.
    pub kind: String,
    /// Acknowledged by an officer.
    pub acked: bool,
    /// The match (empty for `checked`).
    pub match_id: String,
    /// Our operation.
    pub operation_id: String,
    /// Its case reference.
    pub case_reference: String,
    /// match: a new match (true) or a grown one.
    pub created: bool,
    /// match: tokens new with this alert.
    pub new_tokens: u32,
    /// match / checked: our selectors concerned.
    pub selectors: Vec<AlertSelector>,
    /// local_refs not found in the store.
    pub unresolved_refs: Vec<u64>,
    /// The drill this alert belongs to (empty: live). Whatever shows it must say EXERCISE.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub drill_id: String,
    /// True for every alert of a drill: the one field a consumer needs to test.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exercise: bool,
    /// match / checked: ids of `selectors` that matched only on their Pinyin form (a Han
    /// name met a Latin spelling, or a homophone).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pinyin_only: Vec<u64>,
    /// message: the text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// contact: the other party's card.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<CardRecord>,
    /// match_state: open or resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// match_state: the outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// match_state: the note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// match_state: made by us.
    #[serde(default)]
    pub by_you: bool,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn selector_records_keep_tokens_per_epoch_and_read_the_old_layout() {
        let rec = SelRecord {
            id: 3,
            op_id: "x".into(),
            selector: serde_json::json!({"kind": "email", "text": "a@b.c"}),
            label: String::new(),
            tokens: BTreeMap::from([(1, vec!["aa".into()]), (2, vec!["bb".into()])]),
            removed: false,
        };
        let json = serde_json::to_string(&rec).unwrap();
        assert_eq!(serde_json::from_str::<SelRecord>(&json).unwrap(), rec);

        let old = r#"{"id":3,"op_id":"x","selector":{"kind":"email","text":"a@b.c"},"label":"",
            "tokens":["aa"],"token_epoch":1,"removed":false}"#;
        let read: SelRecord = serde_json::from_str(old).unwrap();
        assert_eq!(read.tokens, BTreeMap::from([(1, vec!["aa".into()])]));
        let underived = old
            .replace(r#"["aa"]"#, "[]")
            .replace(r#""token_epoch":1"#, r#""token_epoch":0"#);
        assert!(
            serde_json::from_str::<SelRecord>(&underived)
                .unwrap()
                .tokens
                .is_empty()
        );
        let bad = old.replace(r#"["aa"]"#, r#"{"one":["aa"]}"#);
        assert!(serde_json::from_str::<SelRecord>(&bad).is_err());

        let op = r#"{"id":"x","case_reference":"","window":[0,1],"selector_ids":[],"closed":false,
            "created_unix":0,"updated_unix":0,"source":"control","pending":0,"last_error":null,
            "match_ids":[],"fingerprint":""}"#;
        assert!(serde_json::from_str::<OpRecord>(op).unwrap().registered);
    }
}

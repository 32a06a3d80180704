//! Token-service key epochs: which ones this agency derives its tokens under, and which of its
//! registered tokens have retired, from the keys it pins and those the token service serves.
//!
//! During a key rotation the token service serves the new epoch and, until the overlap ends,
//! the previous one. An agency derives under every epoch it pins that is served (with the
//! pinned key: a served key is only ever compared, never adopted), keeps at the broker the
//! tokens of every epoch still served, and removes those of an epoch once it has retired.

use deconfliction_proto::v1;
use token_spec::token::PinnedKey;

use super::records::SelRecord;

/// What the token service serves, as last asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    current: (u32, Vec<u8>),
    /// Epoch, key, and the end of the overlap (Unix seconds).
    previous: Option<(u32, Vec<u8>, i64)>,
}

impl Served {
    /// From the token service's `GetPublicKey` answer.
    pub fn from_info(info: &v1::PublicKeyInfo) -> Self {
        let previous = (info.previous_key_epoch != 0).then(|| {
            (
                info.previous_key_epoch,
                info.previous_public_key.clone(),
                info.previous_valid_until_unix,
            )
        });
        Self {
            current: (info.key_epoch, info.public_key.clone()),
            previous,
        }
    }

    /// The key served for `epoch` at `now`.
    fn key(&self, epoch: u32, now: i64) -> Option<&[u8]> {
        if epoch == self.current.0 {
            return Some(&self.current.1);
        }
        match &self.previous {
            Some((e, key, until)) if *e == epoch && now < *until => Some(key),
            _ => None,
        }
    }

    /// Whether tokens of `epoch` are still good at `now`.
    pub fn serves(&self, epoch: u32, now: i64) -> bool {
        self.key(epoch, now).is_some()
    }

    /// The current epoch.
    pub fn current_epoch(&self) -> u32 {
        self.current.0
    }

    /// The previous epoch and when it ends, while it is served.
    pub fn previous(&self, now: i64) -> Option<(u32, i64)> {
        self.previous
            .as_ref()
            .filter(|(_, _, until)| now < *until)
            .map(|(e, _, until)| (*e, *until))
    }

    /// Every epoch served at `now`, current first.
    pub fn epochs(&self, now: i64) -> Vec<u32> {
        std::iter::once(self.current.0)
            .chain(self.previous(now).map(|(e, _)| e))
            .collect()
    }
}

/// What to derive under and what to keep, at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Pinned epochs the token service serves with the pinned key, the configured current
    /// pin first.
    pub derive: Vec<u32>,
    /// Epochs served: tokens of any other epoch have retired.
    pub served: Vec<u32>,
}

impl Plan {
    /// Whether tokens of `epoch` stay registered.
    pub fn keeps(&self, epoch: u32) -> bool {
        self.served.contains(&epoch)
    }

    /// Whether a delivered selector lacks tokens of an epoch to derive under, or holds some of
    /// a retired epoch.
    pub fn needs_rederiving(&self, rec: &SelRecord) -> bool {
        self.derive.iter().any(|e| !rec.tokens.contains_key(e))
            || rec.tokens.keys().any(|e| !self.keeps(*e))
    }
}

/// Why nothing can be derived.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// A pinned epoch is served with another key: a misconfigured or hostile service.
    #[error(
        "the token service serves key epoch {epoch} with key {served_hex}, but this agency pins \
         {pinned_hex} for that epoch; nothing is registered until the federation administrator \
         confirms which key is right"
    )]
    WrongKey {
        /// The epoch.
        epoch: u32,
        /// What is served.
        served_hex: String,
        /// What is pinned.
        pinned_hex: String,
    },
    /// No pinned epoch is served any more.
    #[error(
        "the token service serves key epoch(s) {served:?}; this agency pins {pinned:?}, which \
         are no longer served: ask the federation administrator for the current key and pin it \
         in [token_service] (nothing is registered until then)"
    )]
    NothingServed {
        /// Served epochs.
        served: Vec<u32>,
        /// Pinned epochs.
        pinned: Vec<u32>,
    },
}

/// The plan for `pins` (the current pin first) against `served` at `now`.
pub fn plan(pins: &[PinnedKey], served: &Served, now: i64) -> Result<Plan, PlanError> {
    let mut derive = Vec::new();
    for pin in pins {
        match served.key(pin.epoch(), now) {
            Some(key) if key == pin.public_key().as_slice() => derive.push(pin.epoch()),
            Some(key) => {
                return Err(PlanError::WrongKey {
                    epoch: pin.epoch(),
                    served_hex: hex::encode(key),
                    pinned_hex: hex::encode(pin.public_key()),
                });
            }
            None => {}
        }
    }
    let served = served.epochs(now);
    if derive.is_empty() {
        return Err(PlanError::NothingServed {
            served,
            pinned: pins.iter().map(PinnedKey::epoch).collect(),
        });
    }
    Ok(Plan { derive, served })
}

/// What an operator should do about a rotation this agency has not caught up with, if
/// anything (for `deconflict status`).
pub fn advice(pins: &[PinnedKey], served: &Served, now: i64) -> Option<String> {
    let pinned = |e: u32| pins.iter().any(|p| p.epoch() == e);
    let current = served.current_epoch();
    if !pinned(current) {
        let deadline = match served.previous(now) {
            Some((_, until)) => format!(
                "before {} (then the previous epoch retires and nothing more can be registered)",
                rfc3339(until)
            ),
            None => "now: nothing can be registered until then".into(),
        };
        return Some(format!(
            "the token service has a new key epoch {current}; this agency does not pin it yet: \
             ask the federation administrator for the new key and pin it (keeping the current \
             one as previous_public_key) {deadline}"
        ));
    }
    let unserved = pins
        .iter()
        .map(PinnedKey::epoch)
        .filter(|e| !served.serves(*e, now));
    let (early, retired): (Vec<u32>, Vec<u32>) = unserved.partition(|e| *e > current);
    if !early.is_empty() {
        return Some(format!(
            "pinned key epoch(s) {early:?} not served yet (the token service serves {current}); \
             tokens are derived under the epochs it serves until then"
        ));
    }
    if !retired.is_empty() {
        return Some(format!(
            "pinned key epoch(s) {retired:?} retired: remove previous_public_key and \
             previous_key_epoch from [token_service]"
        ));
    }
    None
}

/// Unix seconds as RFC 3339 (UTC).
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use token_spec::token::{TOKEN_SERVICE_INFO, derive_keypair_from_seed};

    fn key(seed: u8) -> [u8; 32] {
        derive_keypair_from_seed(&[seed; 32], TOKEN_SERVICE_INFO)
            .unwrap()
            .public_key()
    }

    fn served(previous_until: i64) -> Served {
        Served::from_info(&v1::PublicKeyInfo {
            public_key: key(2).to_vec(),
            key_epoch: 2,
            previous_public_key: key(1).to_vec(),
            previous_key_epoch: 1,
            previous_valid_until_unix: previous_until,
        })
    }

    fn sel(epochs: &[u32]) -> SelRecord {
        SelRecord {
            id: 1,
            op_id: "x".into(),
            selector: serde_json::Value::Null,
            label: String::new(),
            tokens: epochs.iter().map(|e| (*e, vec!["aa".into()])).collect(),
            removed: false,
        }
    }

    #[test]
    fn a_rotation_from_start_to_end() {
        let old = PinnedKey::new(key(1), 1).unwrap();
        let new = PinnedKey::new(key(2), 2).unwrap();
        let s = served(1000);

        // Not moved yet: the old pin still works during the overlap, with advice.
        let p = plan(&[old], &s, 10).unwrap();
        assert_eq!((p.derive.clone(), p.served.clone()), (vec![1], vec![2, 1]));
        assert!(!p.needs_rederiving(&sel(&[1])));
        let a = advice(&[old], &s, 10).unwrap();
        assert!(a.contains("new key epoch 2") && a.contains("before"), "{a}");

        // Moved, old key kept as previous: both epochs.
        let p = plan(&[new, old], &s, 10).unwrap();
        assert_eq!(p.derive, [2, 1]);
        assert!(p.needs_rederiving(&sel(&[1])));
        assert!(!p.needs_rederiving(&sel(&[1, 2])));
        assert_eq!(advice(&[new, old], &s, 10), None);

        // The overlap ends: epoch 1 retires.
        let p = plan(&[new, old], &s, 1000).unwrap();
        assert_eq!((p.derive.clone(), p.served.clone()), (vec![2], vec![2]));
        assert!(p.needs_rederiving(&sel(&[1, 2])));
        assert!(!p.needs_rederiving(&sel(&[2])));
        assert!(advice(&[new, old], &s, 1000).unwrap().contains("retired"));

        // Never moved: nothing can be derived, and it says what to do.
        let e = plan(&[old], &s, 1000).unwrap_err();
        assert!(
            e.to_string().contains("ask the federation administrator"),
            "{e}"
        );
        assert!(advice(&[old], &s, 1000).unwrap().contains("now"));
    }

    #[test]
    fn a_pin_ahead_of_the_service_is_not_called_retired() {
        let old = PinnedKey::new(key(1), 1).unwrap();
        let new = PinnedKey::new(key(2), 2).unwrap();
        let only_old = Served::from_info(&v1::PublicKeyInfo {
            public_key: key(1).to_vec(),
            key_epoch: 1,
            ..Default::default()
        });
        assert_eq!(plan(&[new, old], &only_old, 10).unwrap().derive, [1]);
        let a = advice(&[new, old], &only_old, 10).unwrap();
        assert!(a.contains("not served yet"), "{a}");
    }

    #[test]
    fn a_served_key_other_than_the_pin_is_refused() {
        let wrong = PinnedKey::new(key(9), 2).unwrap();
        let e = plan(&[wrong], &served(1000), 10).unwrap_err();
        assert!(matches!(e, PlanError::WrongKey { epoch: 2, .. }), "{e}");
    }
}

//! Start-up step: the token-service keys this process evaluates with (current and, during a
//! rotation's overlap, previous), and the public key the broker publishes to agencies.

use std::sync::Arc;

use crate::config::BrokerConfig;
use crate::tokens::{PreviousKey, TokenKey};

use super::{Mode, StartError};

/// What the token-service configuration gives this process.
pub(super) struct TokenKeys {
    /// The key this process evaluates with, if it serves the token service.
    pub current: Option<Arc<TokenKey>>,
    /// The previous epoch's key while its overlap lasts.
    pub previous: Option<PreviousKey>,
    /// The key agencies pin, published in GetFederationInfo (empty if none is known).
    pub public_key: Vec<u8>,
    pub epoch: u32,
    /// A joint federation's two shares, published in GetFederationInfo.
    pub joint: Option<JointKeys>,
}

/// A joint federation's key shares and the sum of their public keys.
#[derive(Debug, Clone)]
pub struct JointKeys {
    pub shares: Vec<(String, [u8; 32], u32)>,
    pub public_key: [u8; 32],
}

/// The configured joint shares: none, or exactly two valid keys with epochs, at a broker
/// that serves no token service itself (nobody holds the joint key, least of all the broker).
fn joint_keys(config: &BrokerConfig, mode: Mode) -> Result<Option<JointKeys>, StartError> {
    let shares = &config.joint_shares;
    if shares.is_empty() || mode == Mode::TokenServiceOnly {
        return Ok(None);
    }
    if shares.len() != 2 {
        return Err(StartError::Config(format!(
            "[[joint_shares]]: a joint federation has exactly two key shares, {} given",
            shares.len()
        )));
    }
    if config.token_service.enabled || config.token_service.external_public_key.is_some() {
        return Err(StartError::Config(
            "[[joint_shares]]: a joint broker serves and publishes no token service of its own; \
             set [token_service] enabled = false and no external_public_key"
                .into(),
        ));
    }
    let mut out = Vec::with_capacity(2);
    for (i, s) in shares.iter().enumerate() {
        let what = format!("[[joint_shares]] {} ({:?})", i + 1, s.name);
        let key = hex::decode(s.public_key.trim())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
            .ok_or_else(|| {
                StartError::Config(format!("{what}: public_key is not 64 hex digits"))
            })?;
        if s.key_epoch == 0 {
            return Err(StartError::Config(format!(
                "{what}: key_epoch must be set (not 0)"
            )));
        }
        out.push((s.name.clone(), key, s.key_epoch));
    }
    let public_key = crate::tokens::joint_public_key(&out[0].1, &out[1].1)
        .map_err(|e| StartError::Config(format!("[[joint_shares]]: a public_key is {e}")))?;
    Ok(Some(JointKeys {
        shares: out,
        public_key,
    }))
}

impl TokenKeys {
    pub fn load(config: &BrokerConfig, mode: Mode) -> Result<Self, StartError> {
        let serve_tokens = mode == Mode::TokenServiceOnly || config.token_service.enabled;
        let (current, previous) = if serve_tokens {
            // The previous key is checked first: a bad overlap setting must not leave a new
            // seed file behind.
            let previous = previous_token_key(config)?;
            let current = TokenKey::load_or_create(
                &config.token_service.seed,
                config.token_service.key_epoch,
            )?;
            (Some(Arc::new(current)), previous)
        } else {
            (None, None)
        };
        let (public_key, epoch) = match (&current, &config.token_service.external_public_key) {
            (Some(key), _) => (key.public_key().to_vec(), key.epoch()),
            (None, Some(hex_key)) => (
                hex::decode(hex_key).map_err(|_| {
                    StartError::Config("token_service.external_public_key is not hex".into())
                })?,
                config.token_service.key_epoch,
            ),
            (None, None) => (Vec::new(), 0),
        };
        Ok(Self {
            current,
            previous,
            public_key,
            epoch,
            joint: joint_keys(config, mode)?,
        })
    }
}

/// The previous epoch's key during a rotation, if configured and not yet retired.
fn previous_token_key(config: &BrokerConfig) -> Result<Option<PreviousKey>, StartError> {
    let ts = &config.token_service;
    let Some(seed) = &ts.previous_seed else {
        return Ok(None);
    };
    let until = ts.previous_valid_until.as_deref().ok_or_else(|| {
        StartError::Config(
            "token_service.previous_seed needs previous_valid_until (RFC 3339): when the \
             overlap ends"
                .into(),
        )
    })?;
    let until = time::OffsetDateTime::parse(until, &time::format_description::well_known::Rfc3339)
        .map_err(|e| {
            StartError::Config(format!(
                "token_service.previous_valid_until {until:?} is not RFC 3339: {e}"
            ))
        })?
        .unix_timestamp();
    if ts.previous_key_epoch == 0 || ts.previous_key_epoch == ts.key_epoch {
        return Err(StartError::Config(format!(
            "token_service.previous_key_epoch must be set and differ from key_epoch ({})",
            ts.key_epoch
        )));
    }
    // Never create a previous seed: it must be the file the old epoch used.
    let bytes = crate::secrets::file::load_secret(seed, "previous token-service seed")?;
    let key = TokenKey::from_seed(&bytes, ts.previous_key_epoch)?;
    Ok(Some(PreviousKey {
        key: Arc::new(key),
        until,
    }))
}

//! Selectors to token entries: normalize with the federation's parameters, derive through the
//! token service (verified against the pinned key), remember the tokens in the store.

use deconfliction_proto::v1;

use super::core::Core;
use super::records::SelRecord;
use super::store::{Batch, sel_key};
use crate::control::kind_to_wire;
use crate::normalize::{FederationParams, Selector, canonical_forms};
use crate::opfile::selector_from_json;
use crate::token::{Token, TokenError};

/// Why selectors could not be turned into tokens.
#[derive(Debug)]
pub enum TokenizeError {
    /// Worth retrying later (token service unreachable, quota, store busy).
    Transient(String),
    /// Never going to work (the selector no longer normalizes).
    Permanent(String),
}

impl From<TokenError> for TokenizeError {
    fn from(e: TokenError) -> Self {
        if matches!(
            e,
            TokenError::ProofVerification | TokenError::KeyMismatch { .. }
        ) {
            tracing::error!(error = %e, "token service answer refused");
        }
        Self::Transient(format!("token service: {e}"))
    }
}

/// The selector of a stored record.
pub fn record_selector(rec: &SelRecord) -> Result<Selector, String> {
    selector_from_json(&rec.selector)
        .map(|(s, _)| s)
        .map_err(|e| e.0)
}

/// Canonical forms and tokens of plain selectors (for `check`; nothing is stored).
pub async fn derive(
    core: &Core,
    selectors: &[Selector],
    params: &FederationParams,
) -> Result<Vec<Vec<Token>>, TokenizeError> {
    let mut forms = Vec::new();
    let mut counts = Vec::new();
    for (i, s) in selectors.iter().enumerate() {
        let f = canonical_forms(s, params)
            .map_err(|e| TokenizeError::Permanent(format!("selectors[{i}]: {e}")))?;
        counts.push(f.len());
        forms.extend(f);
    }
    let tokens = core.link.tokens(&forms).await?;
    let mut out = Vec::with_capacity(selectors.len());
    let mut it = tokens.into_iter();
    for n in counts {
        out.push(it.by_ref().take(n).collect());
    }
    Ok(out)
}

/// The stored selectors `ids` with tokens for the pinned epoch, deriving and storing any that
/// are missing.
pub async fn ensure_tokens(
    core: &Core,
    ids: &[u64],
    params: &FederationParams,
) -> Result<Vec<SelRecord>, TokenizeError> {
    let epoch = core.link.pinned().epoch();
    let store_err = |e: super::store::StoreError| TokenizeError::Transient(e.to_string());
    let mut records = Vec::with_capacity(ids.len());
    for id in ids {
        let rec = core.store.sel(*id).map_err(store_err)?.ok_or_else(|| {
            TokenizeError::Permanent(format!("selector {id} is missing from the local store"))
        })?;
        records.push(rec);
    }
    let missing: Vec<usize> = (0..records.len())
        .filter(|&i| records[i].token_epoch != epoch || records[i].tokens.is_empty())
        .collect();
    if missing.is_empty() {
        return Ok(records);
    }
    let selectors = missing
        .iter()
        .map(|&i| record_selector(&records[i]))
        .collect::<Result<Vec<_>, _>>()
        .map_err(TokenizeError::Permanent)?;
    let derived = derive(core, &selectors, params).await?;
    let _writer = core.store.write_lock();
    let mut batch = Batch::default();
    for (&i, tokens) in missing.iter().zip(derived) {
        let rec = &mut records[i];
        rec.tokens = tokens.iter().map(hex::encode).collect();
        rec.token_epoch = epoch;
        // Re-read so that a concurrent change (removal) is kept; only the tokens are ours.
        let mut fresh = core
            .store
            .sel(rec.id)
            .map_err(store_err)?
            .unwrap_or_else(|| rec.clone());
        fresh.tokens = rec.tokens.clone();
        fresh.token_epoch = epoch;
        batch.put(sel_key(rec.id), &fresh).map_err(store_err)?;
    }
    core.store.apply(batch).map_err(store_err)?;
    Ok(records)
}

/// One token entry per distinct token of `records` (a token shared by two selectors is sent
/// once: the broker refuses duplicates).
pub fn entries(records: &[SelRecord]) -> Result<Vec<v1::TokenEntry>, TokenizeError> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for rec in records {
        let kind = record_selector(rec)
            .map_err(TokenizeError::Permanent)?
            .kind();
        for t in &rec.tokens {
            let token = hex::decode(t)
                .map_err(|_| TokenizeError::Permanent(format!("selector {}: bad token", rec.id)))?;
            if seen.insert(token.clone()) {
                out.push(v1::TokenEntry {
                    token,
                    kind: kind_to_wire(kind) as i32,
                    local_ref: rec.id,
                });
            }
        }
    }
    Ok(out)
}

//! Selectors to token entries: normalize with the federation's parameters, derive through the
//! token service under every key epoch the plan names (verified against each pinned key),
//! remember the tokens per epoch in the store.

use deconfliction_proto::v1;
use token_spec::normalize::{FederationParams, Selector, canonical_forms, canonical_forms_tagged};
use token_spec::token::{Token, TokenError};

use super::core::Core;
use super::epochs::Plan;
use super::records::SelRecord;
use super::store::{Batch, sel_key};
use crate::control::{form_kind_to_wire, kind_to_wire};
use crate::opfile::selector_from_json;

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

/// The wire kind of each of `n` tokens of `selector`, in the order they were derived (per
/// epoch, one token per canonical form in canonical order): a person's Pinyin form gets its
/// own kind so that alerts can say which form matched. Tokens stored before a person had a
/// second form (a count that is not a multiple of the forms) keep the plain kind.
pub fn wire_kinds(selector: &Selector, n: usize) -> Vec<i32> {
    let plain = kind_to_wire(selector.kind()) as i32;
    // Only a person has forms of different kinds, and its forms do not depend on the
    // federation's parameters.
    let forms = match selector {
        Selector::Person { .. } => {
            canonical_forms_tagged(selector, &FederationParams::default()).unwrap_or_default()
        }
        _ => Vec::new(),
    };
    if forms.len() < 2 || !n.is_multiple_of(forms.len()) {
        return vec![plain; n];
    }
    (0..n)
        .map(|i| form_kind_to_wire(selector.kind(), forms[i % forms.len()].form) as i32)
        .collect()
}

/// Tokens of plain selectors under every epoch of `plan` (for `check`; nothing is stored):
/// per selector, its tokens of all those epochs.
pub async fn derive(
    core: &Core,
    selectors: &[Selector],
    params: &FederationParams,
    plan: &Plan,
) -> Result<Vec<Vec<Token>>, TokenizeError> {
    let mut out = vec![Vec::new(); selectors.len()];
    for epoch in &plan.derive {
        for (i, tokens) in derive_epoch(core, selectors, params, *epoch)
            .await?
            .into_iter()
            .enumerate()
        {
            out[i].extend(tokens);
        }
    }
    Ok(out)
}

/// Per selector, its tokens under `epoch`.
async fn derive_epoch(
    core: &Core,
    selectors: &[Selector],
    params: &FederationParams,
    epoch: u32,
) -> Result<Vec<Vec<Token>>, TokenizeError> {
    let mut forms = Vec::new();
    let mut counts = Vec::new();
    for (i, s) in selectors.iter().enumerate() {
        let f = canonical_forms(s, params)
            .map_err(|e| TokenizeError::Permanent(format!("selectors[{i}]: {e}")))?;
        counts.push(f.len());
        forms.extend(f);
    }
    let tokens = match core.link.tokens(epoch, &forms).await {
        Ok(t) => t,
        Err(e) => {
            // Perhaps the epoch just retired: ask again which ones are served.
            core.link.forget_served();
            return Err(e.into());
        }
    };
    let mut out = Vec::with_capacity(selectors.len());
    let mut it = tokens.into_iter();
    for n in counts {
        out.push(it.by_ref().take(n).collect());
    }
    Ok(out)
}

/// The stored selectors `ids` with tokens for every epoch of `plan`, deriving and storing any
/// that are missing.
pub async fn ensure_tokens(
    core: &Core,
    ids: &[u64],
    params: &FederationParams,
    plan: &Plan,
) -> Result<Vec<SelRecord>, TokenizeError> {
    let store_err = |e: super::store::StoreError| TokenizeError::Transient(e.to_string());
    let mut records = Vec::with_capacity(ids.len());
    for id in ids {
        let rec = core.store.sel(*id).map_err(store_err)?.ok_or_else(|| {
            TokenizeError::Permanent(format!("selector {id} is missing from the local store"))
        })?;
        records.push(rec);
    }
    for &epoch in &plan.derive {
        let missing: Vec<usize> = (0..records.len())
            .filter(|&i| records[i].tokens.get(&epoch).is_none_or(Vec::is_empty))
            .collect();
        if missing.is_empty() {
            continue;
        }
        let selectors = missing
            .iter()
            .map(|&i| record_selector(&records[i]))
            .collect::<Result<Vec<_>, _>>()
            .map_err(TokenizeError::Permanent)?;
        let derived = derive_epoch(core, &selectors, params, epoch).await?;
        let _writer = core.store.write_lock();
        let mut batch = Batch::default();
        for (&i, tokens) in missing.iter().zip(derived) {
            let hex_tokens: Vec<String> = tokens.iter().map(hex::encode).collect();
            records[i].tokens.insert(epoch, hex_tokens.clone());
            // Re-read so that a concurrent change (removal) is kept; only the tokens are ours.
            let mut fresh = core
                .store
                .sel(records[i].id)
                .map_err(store_err)?
                .unwrap_or_else(|| records[i].clone());
            fresh.tokens.insert(epoch, hex_tokens);
            batch.put(sel_key(fresh.id), &fresh).map_err(store_err)?;
        }
        core.store.apply(batch).map_err(store_err)?;
    }
    Ok(records)
}

/// One token entry per distinct token of `records` under the epochs `plan` keeps (a token
/// shared by two selectors is sent once: the broker refuses duplicates).
pub fn entries(records: &[SelRecord], plan: &Plan) -> Result<Vec<v1::TokenEntry>, TokenizeError> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for rec in records {
        let selector = record_selector(rec).map_err(TokenizeError::Permanent)?;
        for (_, tokens) in rec.tokens.iter().filter(|(e, _)| plan.keeps(**e)) {
            for (t, kind) in tokens.iter().zip(wire_kinds(&selector, tokens.len())) {
                let token = hex::decode(t).map_err(|_| {
                    TokenizeError::Permanent(format!("selector {}: bad token", rec.id))
                })?;
                if seen.insert(token.clone()) {
                    out.push(v1::TokenEntry {
                        token,
                        kind,
                        local_ref: rec.id,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// The tokens of `records` under epochs `plan` no longer keeps (a finished rotation).
pub fn retired(records: &[SelRecord], plan: &Plan) -> Vec<Vec<u8>> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for rec in records {
        for (_, tokens) in rec.tokens.iter().filter(|(e, _)| !plan.keeps(**e)) {
            for t in tokens {
                if let Ok(bytes) = hex::decode(t)
                    && seen.insert(bytes.clone())
                {
                    out.push(bytes);
                }
            }
        }
    }
    out
}

/// Forgets the tokens of retired epochs of the selectors `ids` (once the broker removed them).
pub fn drop_retired(core: &Core, ids: &[u64], plan: &Plan) -> Result<(), super::store::StoreError> {
    let _writer = core.store.write_lock();
    let mut batch = Batch::default();
    for id in ids {
        if let Some(mut rec) = core.store.sel(*id)?
            && rec.tokens.keys().any(|e| !plan.keeps(*e))
        {
            rec.tokens.retain(|e, _| plan.keeps(*e));
            batch.put(sel_key(*id), &rec)?;
        }
    }
    core.store.apply(batch)
}

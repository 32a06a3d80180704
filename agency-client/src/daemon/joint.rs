//! Joint federations from the agency's side (token spec section 5). For each `[[joint]]`,
//! a worker keeps the joint broker holding what this agency's released operations say: it
//! derives their selectors' joint tokens through both countries' token services (one
//! blinding, both proofs verified against the pinned shares) and registers, amends or closes
//! them there. Only operations an officer released to that federation are ever sent; their
//! alerts come back through their own subscription (`alerts::Feed`), marked with the
//! federation's name.
//!
//! The connections it uses are [`super::joint_link`]. The worker reconciles instead of
//! replaying a queue: what the joint broker was last told of each operation is kept under
//! `j/<federation>/<operation id>`, and every pass sends only the difference. A joint broker
//! that is down delays nothing at home.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use deconfliction_proto::v1;
use token_spec::normalize::canonical_forms;
use tokio::sync::watch;

use super::core::Core;
use super::joint_link::{Failure, JointLink, Pair, pair_name};
use super::records::{JointOpState, OpRecord};
use super::store::{Batch, joint_key};
use super::timing::{Backoff, now_unix};
use super::tokenize::{record_selector, wire_kinds};

/// Runs until shutdown.
pub async fn run(core: Arc<Core>, link: Arc<JointLink>, mut shutdown: watch::Receiver<bool>) {
    let mut backoff = Backoff::new(core.retry_initial(), core.retry_max());
    loop {
        if *shutdown.borrow() {
            return;
        }
        let wait = if pass(&core, &link).await {
            backoff.reset();
            link.idle
        } else {
            backoff.next_wait()
        };
        tokio::select! {
            _ = link.wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// One look at every operation released here. True when all are up to date (or refused).
async fn pass(core: &Core, link: &JointLink) -> bool {
    let ops = match core.store.ops() {
        Ok(ops) => ops,
        Err(e) => {
            tracing::error!(error = %e, "joint: cannot read the local store");
            return false;
        }
    };
    let released: Vec<&OpRecord> = ops
        .iter()
        .filter(|o| o.release_to.contains(&link.name))
        .collect();
    if released.is_empty() {
        return true;
    }
    let pairs = match link.live_pairs().await {
        Ok(pairs) => pairs,
        Err(Failure::Later(reason) | Failure::Refused(reason)) => {
            tracing::warn!(federation = %link.name, %reason, "joint: cannot tell which key epochs to use; retried later");
            for op in &released {
                link.set_waiting(&op.id, Some(reason.clone()));
            }
            return false;
        }
    };
    // One warning per pass, not one per operation: a joint broker that is down would
    // otherwise repeat itself for every released operation at every retry.
    let mut waiting: Option<(usize, String)> = None;
    for op in released {
        let key = joint_key(&link.name, &op.id);
        let mut state: JointOpState = match core.store.get(&key) {
            Ok(s) => s.unwrap_or_default(),
            Err(e) => {
                tracing::error!(error = %e, "joint: cannot read the local store");
                return false;
            }
        };
        if state.last_error.is_some() && state.failed_update == op.updated_unix {
            continue;
        }
        let before = state.clone();
        match sync(core, link, op, &pairs, &mut state).await {
            Ok(()) => {
                state.last_error = None;
                link.set_waiting(&op.id, None);
            }
            Err(Failure::Later(reason)) => {
                link.set_waiting(&op.id, Some(reason.clone()));
                let first = waiting.get_or_insert((0, reason));
                first.0 += 1;
                continue;
            }
            Err(Failure::Refused(reason)) => {
                tracing::warn!(federation = %link.name, operation_id = %op.id, %reason, "joint: refused");
                state.last_error = Some(reason);
                state.failed_update = op.updated_unix;
            }
        }
        if state != before && save(core, &key, &state).await.is_err() {
            waiting.get_or_insert((0, "the local store".into())).0 += 1;
        }
    }
    match waiting {
        None => true,
        Some((n, reason)) => {
            tracing::warn!(federation = %link.name, operations = n, %reason, "joint: not delivered; retried later");
            false
        }
    }
}

async fn save(core: &Core, key: &[u8], state: &JointOpState) -> Result<(), ()> {
    let result = {
        let _writer = core.store.write_lock();
        let mut batch = Batch::default();
        batch
            .put(key.to_vec(), state)
            .and_then(|()| core.store.apply(batch))
    };
    match result {
        Ok(()) => core.store.flush().await.map_err(|e| {
            tracing::error!(error = %e, "joint: cannot flush the local store");
        }),
        Err(e) => {
            tracing::error!(error = %e, "joint: cannot update the local store");
            Err(())
        }
    }
}

/// Joint tokens (hex) by pair name and selector id.
type PairTokens = BTreeMap<String, BTreeMap<u64, Vec<String>>>;

/// Brings one operation at the joint broker to what it says now, under every live pair.
async fn sync(
    core: &Core,
    link: &JointLink,
    op: &OpRecord,
    pairs: &[Pair],
    state: &mut JointOpState,
) -> Result<(), Failure> {
    if op.closed || op.window.1 <= now_unix() {
        return close(link, op, state).await;
    }
    if state.closed {
        return Ok(());
    }
    let desired = desired_tokens(core, link, op, pairs, state).await?;
    let held: HashSet<&String> = if state.registered {
        state
            .tokens
            .values()
            .flat_map(|m| m.values().flatten())
            .collect()
    } else {
        HashSet::new()
    };
    let (add, remove_tokens) = difference(&held, &desired);
    let mut broker = link.broker.clone();
    if !state.registered {
        let request = v1::RegisterOperationRequest {
            operation_id: op.id.clone(),
            window: Some(crate::control::window_to_wire(op.window)),
            tokens: entries(core, &add)?,
            case_reference: String::new(),
        };
        broker
            .register_operation(link.request(request))
            .await
            .map_err(|s| link.failure(s))?;
        tracing::info!(federation = %link.name, operation_id = %op.id, selectors = op.selector_ids.len(), key_pairs = pairs.len(), "joint: registration delivered");
        state.registered = true;
    } else if !add.is_empty() || !remove_tokens.is_empty() || state.window != op.window {
        let (added, removed) = (
            add.values().map(Vec::len).sum::<usize>(),
            remove_tokens.len(),
        );
        let request = v1::AmendOperationRequest {
            operation_id: op.id.clone(),
            add_tokens: entries(core, &add)?,
            remove_tokens,
            window: (state.window != op.window).then(|| crate::control::window_to_wire(op.window)),
        };
        broker
            .amend_operation(link.request(request))
            .await
            .map_err(|s| link.failure(s))?;
        tracing::info!(federation = %link.name, operation_id = %op.id, tokens_added = added, tokens_removed = removed, "joint: amendment delivered");
    }
    state.window = op.window;
    state.tokens = desired;
    Ok(())
}

/// An operation closed or over at home: closed at the joint broker too, once.
async fn close(link: &JointLink, op: &OpRecord, state: &mut JointOpState) -> Result<(), Failure> {
    if !state.registered || state.closed {
        return Ok(());
    }
    let closed = link
        .broker
        .clone()
        .close_operation(link.request(v1::CloseOperationRequest {
            operation_id: op.id.clone(),
        }))
        .await;
    // Gone already (ended and purged by the joint broker's retention): closed too.
    if let Err(s) = closed
        && s.code() != tonic::Code::NotFound
    {
        return Err(link.failure(s));
    }
    state.closed = true;
    tracing::info!(federation = %link.name, operation_id = %op.id, "joint: close delivered");
    Ok(())
}

/// What the joint broker must hold: every current selector's tokens under every live pair,
/// reusing those already derived and deriving the rest.
async fn desired_tokens(
    core: &Core,
    link: &JointLink,
    op: &OpRecord,
    pairs: &[Pair],
    state: &JointOpState,
) -> Result<PairTokens, Failure> {
    let current: HashSet<u64> = op.selector_ids.iter().copied().collect();
    let mut desired = PairTokens::new();
    for pair in pairs {
        let mut held = state
            .tokens
            .get(&pair_name(*pair))
            .cloned()
            .unwrap_or_default();
        held.retain(|id, _| current.contains(id));
        let missing: Vec<u64> = op
            .selector_ids
            .iter()
            .copied()
            .filter(|id| !held.contains_key(id))
            .collect();
        held.extend(derive(core, link, *pair, &missing).await?);
        desired.insert(pair_name(*pair), held);
    }
    Ok(desired)
}

/// From what the broker holds to what it must: the new tokens by selector (for their kinds
/// and local refs), and the tokens to remove.
fn difference(
    held: &HashSet<&String>,
    desired: &PairTokens,
) -> (BTreeMap<u64, Vec<String>>, Vec<Vec<u8>>) {
    let wanted: HashSet<&String> = desired
        .values()
        .flat_map(|m| m.values().flatten())
        .collect();
    let mut add: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for per_selector in desired.values() {
        for (id, list) in per_selector {
            let new: Vec<String> = list.iter().filter(|t| !held.contains(t)).cloned().collect();
            if !new.is_empty() {
                add.entry(*id).or_default().extend(new);
            }
        }
    }
    let remove = held
        .iter()
        .filter(|t| !wanted.contains(*t))
        .filter_map(|t| hex::decode(t).ok())
        .collect();
    (add, remove)
}

/// Joint tokens (hex) of the stored selectors `ids` under `pair`, by id.
async fn derive(
    core: &Core,
    link: &JointLink,
    pair: Pair,
    ids: &[u64],
) -> Result<BTreeMap<u64, Vec<String>>, Failure> {
    if ids.is_empty() {
        return Ok(BTreeMap::new());
    }
    let params = link.params().await?;
    let store = |e: super::store::StoreError| Failure::Later(e.to_string());
    let mut forms = Vec::new();
    let mut counts = Vec::with_capacity(ids.len());
    for id in ids {
        let rec = core
            .store
            .sel(*id)
            .map_err(store)?
            .ok_or_else(|| Failure::Refused(format!("selector {id} is missing")))?;
        let selector = record_selector(&rec).map_err(Failure::Refused)?;
        let f = canonical_forms(&selector, &params)
            .map_err(|e| Failure::Refused(format!("selector {id}: {e}")))?;
        counts.push(f.len());
        forms.extend(f);
    }
    let deriver = link
        .derivers
        .iter()
        .find(|(p, _)| *p == pair)
        .map(|(_, d)| d)
        .ok_or_else(|| Failure::Later(format!("no pinned keys for epochs {}", pair_name(pair))))?;
    let tokens = deriver
        .lock()
        .await
        .tokens(&forms)
        .await
        .map_err(|e| Failure::Later(format!("joint token services of {}: {e}", link.name)))?;
    let mut it = tokens.into_iter();
    Ok(ids
        .iter()
        .zip(counts)
        .map(|(id, n)| (*id, it.by_ref().take(n).map(hex::encode).collect()))
        .collect())
}

/// Token entries of `tokens` (by selector id), each token once.
fn entries(
    core: &Core,
    tokens: &BTreeMap<u64, Vec<String>>,
) -> Result<Vec<v1::TokenEntry>, Failure> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (id, list) in tokens {
        let rec = core
            .store
            .sel(*id)
            .map_err(|e| Failure::Later(e.to_string()))?
            .ok_or_else(|| Failure::Refused(format!("selector {id} is missing")))?;
        let selector = record_selector(&rec).map_err(Failure::Refused)?;
        for (t, kind) in list.iter().zip(wire_kinds(&selector, list.len())) {
            let token = hex::decode(t)
                .map_err(|_| Failure::Refused(format!("selector {id}: bad token")))?;
            if seen.insert(token.clone()) {
                out.push(v1::TokenEntry {
                    token,
                    kind,
                    local_ref: *id,
                });
            }
        }
    }
    Ok(out)
}

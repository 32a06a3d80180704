//! The outbox worker: sends queued changes to the broker, one at a time in the order they were
//! accepted (so always in order per operation), retrying with backoff while the broker or the
//! token service is unreachable. Every change is idempotent at the broker (operation ids;
//! adding a present token, removing an absent one and closing a closed operation are no-ops),
//! so a change sent again after a lost answer or a restart is harmless.
//!
//! An item leaves the outbox only when the broker confirmed it, or refused it for good
//! (INVALID_ARGUMENT, NOT_FOUND, ...): then the operation records the refusal and `watch`
//! shows it.

use std::sync::Arc;

use deconfliction_proto::v1;
use tokio::sync::watch;
use tonic::Code;

use super::core::Core;
use super::epochs::Plan;
use super::records::{Action, OutboxItem};
use super::store::{Batch, op_key, outbox_key};
use super::timing::{Backoff, now_unix};
use super::tokenize::{TokenizeError, drop_retired, ensure_tokens, entries, retired};
use crate::control::pb;
use crate::daemon::link::Link;

/// How a refused re-derivation starts its `last_error` (such an operation is not re-derived
/// again by itself: an officer's next change of it clears the refusal).
pub const REDERIVE_REFUSED: &str = "re-deriving tokens for a new key epoch: ";

enum SendError {
    Transient(String),
    Permanent(String),
}

impl From<TokenizeError> for SendError {
    fn from(e: TokenizeError) -> Self {
        match e {
            TokenizeError::Transient(m) => Self::Transient(m),
            TokenizeError::Permanent(m) => Self::Permanent(m),
        }
    }
}

/// Whether the broker's answer means "try again later".
pub fn is_transient(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::ResourceExhausted
            | Code::Cancelled
            | Code::Unknown
            | Code::Aborted
            | Code::Internal
            | Code::Unauthenticated
    )
}

fn classify(link: &super::link::Link, status: tonic::Status) -> SendError {
    let text = format!("broker: {}", link.describe(&status));
    if is_transient(status.code()) {
        SendError::Transient(text)
    } else {
        SendError::Permanent(text)
    }
}

/// Runs until `shutdown` turns true.
pub async fn run(core: Arc<Core>, mut shutdown: watch::Receiver<bool>) {
    let mut backoff = Backoff::new(core.retry_initial(), core.retry_max());
    loop {
        if *shutdown.borrow() {
            return;
        }
        let head = match core.store.outbox_head() {
            Ok(head) => head,
            Err(e) => {
                tracing::error!(error = %e, "outbox: cannot read the local store");
                None
            }
        };
        let Some(item) = head else {
            tokio::select! {
                _ = core.outbox_wake.notified() => continue,
                _ = shutdown.changed() => return,
            }
        };
        let outcome = tokio::select! {
            r = send(&core, &item) => r,
            _ = shutdown.changed() => return,
        };
        let result = match outcome {
            Ok(()) => finish(&core, &item, None).await,
            Err(SendError::Permanent(reason)) => finish(&core, &item, Some(reason)).await,
            Err(SendError::Transient(reason)) => {
                let wait = backoff.next_wait();
                tracing::warn!(
                    operation_id = %item.op_id,
                    change = item.action.name(),
                    queued = core.store.outbox_len(),
                    retry_in_ms = wait.as_millis() as u64,
                    reason = %reason,
                    "outbox: not delivered; kept for retry"
                );
                core.set_health(|h| h.outbox_error = Some(reason));
                tokio::select! {
                    _ = tokio::time::sleep(wait) => continue,
                    _ = shutdown.changed() => return,
                }
            }
        };
        match result {
            Ok(()) => {
                backoff.reset();
                core.set_health(|h| h.outbox_error = None);
            }
            Err(e) => {
                tracing::error!(error = %e, "outbox: cannot update the local store");
                tokio::time::sleep(backoff.next_wait()).await;
            }
        }
    }
}

/// Sends one item.
async fn send(core: &Core, item: &OutboxItem) -> Result<(), SendError> {
    let info = core.link.info_or_fetch().await.map_err(|s| {
        // A broker of another federation (a drill's for a live daemon, or the reverse) is a
        // configuration to fix, not a refusal of this change: it waits, and says why.
        if s.code() == tonic::Code::FailedPrecondition {
            SendError::Transient(s.message().to_owned())
        } else {
            classify(&core.link, s)
        }
    })?;
    let plan = core
        .link
        .plan()
        .await
        .map_err(|s| SendError::Transient(s.message().to_owned()))?;
    let params = Link::params(&info).map_err(SendError::Transient)?;
    let mut broker = core.link.broker.clone();
    match &item.action {
        Action::Register {
            selector_ids,
            window,
            ..
        } => {
            let records = ensure_tokens(core, selector_ids, &params, &plan).await?;
            let request = v1::RegisterOperationRequest {
                operation_id: item.op_id.clone(),
                window: Some(crate::control::window_to_wire(*window)),
                tokens: entries(&records, &plan)?,
                // The case reference stays with the agency: the broker gets none.
                case_reference: String::new(),
            };
            let answer = broker
                .register_operation(core.link.request(request))
                .await
                .map_err(|s| classify(&core.link, s))?
                .into_inner();
            tracing::info!(
                operation_id = %item.op_id,
                tokens = answer.operation.map_or(0, |o| o.token_count),
                key_epochs = plan.derive.len(),
                new = answer.created,
                matches_touched = answer.matches_touched,
                "outbox: registration delivered"
            );
        }
        Action::Amend {
            add,
            remove,
            window,
        } => {
            let added = ensure_tokens(core, add, &params, &plan).await?;
            let remove_tokens = tokens_to_remove(core, &item.op_id, remove)?;
            let request = v1::AmendOperationRequest {
                operation_id: item.op_id.clone(),
                add_tokens: entries(&added, &plan)?,
                remove_tokens,
                window: window.map(crate::control::window_to_wire),
            };
            let answer = broker
                .amend_operation(core.link.request(request))
                .await
                .map_err(|s| classify(&core.link, s))?
                .into_inner();
            tracing::info!(
                operation_id = %item.op_id,
                matches_touched = answer.matches_touched,
                "outbox: amendment delivered"
            );
        }
        Action::Close => {
            let request = v1::CloseOperationRequest {
                operation_id: item.op_id.clone(),
            };
            broker
                .close_operation(core.link.request(request))
                .await
                .map_err(|s| classify(&core.link, s))?;
            tracing::info!(operation_id = %item.op_id, "outbox: close delivered");
        }
        // Marked, so that the rotation task does not queue it again by itself.
        Action::Rederive => rederive(core, item, &params, &plan)
            .await
            .map_err(|e| match e {
                SendError::Permanent(m) => SendError::Permanent(format!("{REDERIVE_REFUSED}{m}")),
                transient => transient,
            })?,
    }
    Ok(())
}

/// Brings an open operation's tokens at the broker to the epochs of `plan`: tokens of every
/// epoch to derive under added (a no-op for those present), those of retired epochs removed.
async fn rederive(
    core: &Core,
    item: &OutboxItem,
    params: &token_spec::normalize::FederationParams,
    plan: &Plan,
) -> Result<(), SendError> {
    let store_err = |e: super::store::StoreError| SendError::Transient(e.to_string());
    let Some(op) = core.store.op(&item.op_id).map_err(store_err)? else {
        return Ok(());
    };
    if op.closed || op.window.1 <= now_unix() {
        return Ok(());
    }
    let records = ensure_tokens(core, &op.selector_ids, params, plan).await?;
    let add_tokens = entries(&records, plan)?;
    let remove_tokens = retired(&records, plan);
    let (added, removed) = (add_tokens.len(), remove_tokens.len());
    if remove_tokens.is_empty() && add_tokens.is_empty() {
        return Ok(());
    }
    let request = v1::AmendOperationRequest {
        operation_id: item.op_id.clone(),
        add_tokens,
        remove_tokens,
        window: None,
    };
    core.link
        .broker
        .clone()
        .amend_operation(core.link.request(request))
        .await
        .map_err(|s| classify(&core.link, s))?;
    drop_retired(core, &op.selector_ids, plan).map_err(store_err)?;
    tracing::info!(
        operation_id = %item.op_id,
        key_epochs = ?plan.derive,
        tokens_sent = added,
        tokens_retired = removed,
        "outbox: tokens re-derived"
    );
    Ok(())
}

/// The tokens of removed selectors that no current selector of the operation still holds.
fn tokens_to_remove(core: &Core, op_id: &str, remove: &[u64]) -> Result<Vec<Vec<u8>>, SendError> {
    let err = |e: super::store::StoreError| SendError::Transient(e.to_string());
    let op = core.store.op(op_id).map_err(err)?;
    let mut kept = std::collections::HashSet::new();
    for id in op.map(|o| o.selector_ids).unwrap_or_default() {
        if let Some(sel) = core.store.sel(id).map_err(err)? {
            kept.extend(sel.tokens.into_values().flatten());
        }
    }
    let mut out = Vec::new();
    for id in remove {
        if let Some(sel) = core.store.sel(*id).map_err(err)? {
            for t in sel.tokens.values().flatten().filter(|t| !kept.contains(*t)) {
                if let Ok(bytes) = hex::decode(t)
                    && !out.contains(&bytes)
                {
                    out.push(bytes);
                }
            }
        }
    }
    Ok(out)
}

/// Removes a dealt-with item and records the outcome on its operation.
async fn finish(
    core: &Arc<Core>,
    item: &OutboxItem,
    refusal: Option<String>,
) -> Result<(), super::store::StoreError> {
    {
        let _writer = core.store.write_lock();
        let mut batch = Batch::default();
        batch.remove(outbox_key(item.seq));
        if let Some(mut op) = core.store.op(&item.op_id)? {
            op.pending = op.pending.saturating_sub(1);
            op.updated_unix = now_unix();
            if refusal.is_none() && matches!(item.action, Action::Register { .. }) {
                op.registered = true;
            }
            if refusal.is_some() {
                op.last_error = refusal.clone();
            } else if op.pending == 0 {
                op.last_error = None;
            }
            batch.put(op_key(&op.id), &op)?;
        }
        core.store.apply(batch)?;
    }
    core.store.flush().await?;
    if let Some(reason) = &refusal {
        // Broker messages never hold selector text; local normalization errors may, so
        // those stay in the store (deconflict ops shows them), out of the log.
        let from_broker = reason
            .strip_prefix(REDERIVE_REFUSED)
            .unwrap_or(reason)
            .starts_with("broker:");
        let shown = if from_broker {
            reason.as_str()
        } else {
            "a selector no longer normalizes (see deconflict ops)"
        };
        tracing::warn!(
            operation_id = %item.op_id,
            change = item.action.name(),
            reason = %shown,
            "outbox: refused; the operation records why"
        );
    }
    core.outbox_done.send_replace(item.seq);
    core.publish(pb::watch_event::Event::Operation(pb::OperationEvent {
        operation_id: item.op_id.clone(),
        event: if refusal.is_some() {
            "rejected".into()
        } else {
            item.action.name().into()
        },
        error: refusal.unwrap_or_default(),
        at_unix: now_unix(),
    }));
    Ok(())
}

//! Key rotation, the agency's side: asks the token service which key epochs it serves (at
//! start, every `key_poll_seconds`, and when a rotation's overlap ends) and queues a
//! re-derivation of every open operation whose delivered tokens do not fit: missing an epoch
//! it should derive under (a new pin), or holding one that retired (the overlap is over).
//! The outbox does the work, from the plaintext selectors this daemon keeps.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::core::Core;
use super::epochs::{Plan, plan};
use super::ops::queue_rederive;
use super::outbox::REDERIVE_REFUSED;
use super::records::Action;
use super::store::StoreError;
use super::timing::now_unix;

/// Runs until `shutdown` turns true.
pub async fn run(core: Arc<Core>, mut shutdown: watch::Receiver<bool>) {
    let poll = Duration::from_secs(core.config.daemon.key_poll_seconds.max(1));
    loop {
        let mut wait = poll;
        match core.link.refresh_served(core.link.call_timeout).await {
            Ok(served) => {
                let now = now_unix();
                if let Some((_, until)) = served.previous(now) {
                    // Look again just after the previous epoch retires.
                    let left = u64::try_from(until - now).unwrap_or(0) + 1;
                    wait = wait.min(Duration::from_secs(left));
                }
                match plan(&core.link.pins(), &served, now) {
                    Ok(plan) => match queue_rederivations(&core, &plan).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(
                            operations = n,
                            key_epochs = ?plan.derive,
                            served = ?plan.served,
                            "key epochs changed: re-deriving open operations"
                        ),
                        Err(e) => tracing::error!(error = %e, "cannot queue re-derivations"),
                    },
                    // `deconflict status` shows it too, from its own look at the service.
                    Err(e) => tracing::error!(error = %e, "no usable token-service key"),
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot ask the token service for its keys"),
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Queues a re-derivation for each open operation that needs one and has none queued yet;
/// returns how many.
async fn queue_rederivations(core: &Arc<Core>, plan: &Plan) -> Result<usize, StoreError> {
    // A queued registration or re-derivation derives under the plan when it is sent.
    let queued: HashSet<String> = core
        .store
        .outbox()?
        .into_iter()
        .filter(|i| matches!(i.action, Action::Register { .. } | Action::Rederive))
        .map(|i| i.op_id)
        .collect();
    let now = now_unix();
    let mut n = 0;
    for op in core.store.ops()? {
        let skip = op.closed
            || !op.registered
            || op.window.1 <= now
            || queued.contains(&op.id)
            || op
                .last_error
                .as_deref()
                .is_some_and(|e| e.starts_with(REDERIVE_REFUSED));
        if skip {
            continue;
        }
        let mut needs = false;
        for id in &op.selector_ids {
            // Selectors never derived are left to the change that added them.
            if let Some(sel) = core.store.sel(*id)?
                && !sel.tokens.is_empty()
                && plan.needs_rederiving(&sel)
            {
                needs = true;
                break;
            }
        }
        if needs && queue_rederive(core, &op.id)?.is_some() {
            n += 1;
        }
    }
    if n > 0 {
        core.store.flush().await?;
        core.outbox_wake.notify_one();
    }
    Ok(n)
}

//! Accepting the officers' changes: register, amend, close. Each is validated, stored with its
//! outbox item in one atomic batch, flushed, and only then acknowledged; the outbox worker
//! tells the broker.

use std::sync::Arc;

use serde_json::{Value, json};
use tonic::Status;

use super::core::Core;
use super::records::{Action, OpRecord, OutboxItem, SelRecord};
use super::store::{Batch, StoreError, op_key, outbox_key, sel_key};
use super::timing::now_unix;
use crate::opfile::{OperationSpec, SelectorSpec, check_window, selector_to_json};

impl From<StoreError> for Status {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "local store failure");
        Status::internal(format!("{e}; see agencyd's log"))
    }
}

/// What an accepted change left behind.
#[derive(Debug)]
pub struct Accepted {
    /// The operation after the change.
    pub op: OpRecord,
    /// False for an idempotent repeat (nothing queued).
    pub created: bool,
    /// The outbox item queued, if any.
    pub outbox_seq: Option<u64>,
}

fn new_selectors(
    core: &Core,
    op_id: &str,
    specs: &[SelectorSpec],
    batch: &mut Batch,
) -> Result<Vec<u64>, StoreError> {
    let mut ids = Vec::with_capacity(specs.len());
    for spec in specs {
        let id = core.store.next_id()?;
        batch.put(
            sel_key(id),
            &SelRecord {
                id,
                op_id: op_id.to_owned(),
                selector: selector_to_json(&spec.selector, ""),
                label: spec.label.clone(),
                tokens: Default::default(),
                removed: false,
            },
        )?;
        ids.push(id);
    }
    Ok(ids)
}

fn enqueue(core: &Core, op_id: &str, action: Action, batch: &mut Batch) -> Result<u64, StoreError> {
    let seq = core.store.next_id()?;
    batch.put(
        outbox_key(seq),
        &OutboxItem {
            seq,
            op_id: op_id.to_owned(),
            action,
            enqueued_unix: now_unix(),
        },
    )?;
    Ok(seq)
}

async fn commit(core: &Arc<Core>, accepted: Accepted) -> Result<Accepted, Status> {
    core.store.flush().await?;
    if accepted.outbox_seq.is_some() {
        core.outbox_wake.notify_one();
        for link in core
            .joints
            .iter()
            .filter(|j| accepted.op.release_to.contains(&j.name))
        {
            link.wake.notify_one();
        }
    }
    Ok(accepted)
}

fn fingerprint(spec: &OperationSpec) -> String {
    let selectors: Vec<Value> = spec
        .selectors
        .iter()
        .map(|s| selector_to_json(&s.selector, &s.label))
        .collect();
    if spec.release_to.is_empty() {
        // As before release_to existed, so that earlier registrations repeat idempotently.
        json!([spec.case_reference, spec.window, selectors]).to_string()
    } else {
        json!([spec.case_reference, spec.window, selectors, spec.release_to]).to_string()
    }
}

/// Accepts a new operation (idempotent on its id).
pub async fn register(
    core: &Arc<Core>,
    spec: OperationSpec,
    source: &str,
) -> Result<Accepted, Status> {
    if spec.selectors.is_empty() {
        return Err(Status::invalid_argument(
            "an operation needs at least one selector",
        ));
    }
    check_window(spec.window.0, spec.window.1)
        .map_err(|e| Status::invalid_argument(format!("window: {e}")))?;
    federation_window(core, spec.window.0, spec.window.1, now_unix())?;
    for name in &spec.release_to {
        if !core.config.joint.iter().any(|j| &j.name == name) {
            let known: Vec<&str> = core.config.joint.iter().map(|j| j.name.as_str()).collect();
            return Err(Status::invalid_argument(format!(
                "release_to: no joint federation {name:?} is configured (known: {}); nothing \
                 was registered",
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            )));
        }
    }
    let id = spec
        .operation_id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let print = fingerprint(&spec);
    let accepted = {
        let _writer = core.store.write_lock();
        if let Some(op) = core.store.op(&id)? {
            if op.fingerprint == print {
                return Ok(Accepted {
                    op,
                    created: false,
                    outbox_seq: None,
                });
            }
            return Err(Status::invalid_argument(format!(
                "operation {id} already exists with other content: amend it (deconflict amend) \
                 or register under a new operation id"
            )));
        }
        let mut batch = Batch::default();
        let selector_ids = new_selectors(core, &id, &spec.selectors, &mut batch)?;
        let action = Action::Register {
            selector_ids: selector_ids.clone(),
            window: spec.window,
            case_reference: spec.case_reference.clone(),
        };
        let seq = enqueue(core, &id, action, &mut batch)?;
        let now = now_unix();
        let op = OpRecord {
            id: id.clone(),
            case_reference: spec.case_reference,
            window: spec.window,
            selector_ids,
            closed: false,
            created_unix: now,
            updated_unix: now,
            source: source.to_owned(),
            pending: 1,
            last_error: None,
            match_ids: Vec::new(),
            fingerprint: print,
            registered: false,
            release_to: spec.release_to,
        };
        batch.put(op_key(&id), &op)?;
        core.store.apply(batch)?;
        Accepted {
            op,
            created: true,
            outbox_seq: Some(seq),
        }
    };
    commit(core, accepted).await
}

fn open_op(core: &Core, id: &str) -> Result<OpRecord, Status> {
    let op = core.store.op(id)?.ok_or_else(|| {
        Status::not_found(format!(
            "no operation {id} in this agency (list them with deconflict ops)"
        ))
    })?;
    if op.closed {
        return Err(Status::failed_precondition(format!(
            "operation {id} is closed; register a new operation instead"
        )));
    }
    Ok(op)
}

/// Adds and removes selectors and/or moves the window of an open operation.
pub async fn amend(
    core: &Arc<Core>,
    id: &str,
    add: Vec<SelectorSpec>,
    remove: Vec<u64>,
    window: Option<(i64, i64)>,
) -> Result<Accepted, Status> {
    if add.is_empty() && remove.is_empty() && window.is_none() {
        return Err(Status::invalid_argument(
            "nothing to change: add or remove selectors, or give a new window",
        ));
    }
    if let Some((start, end)) = window {
        check_window(start, end).map_err(|e| Status::invalid_argument(format!("window: {e}")))?;
        federation_window(core, start, end, now_unix())?;
    }
    let accepted = {
        let _writer = core.store.write_lock();
        let mut op = open_op(core, id)?;
        if let Some(bad) = remove.iter().find(|r| !op.selector_ids.contains(r)) {
            return Err(Status::invalid_argument(format!(
                "selector {bad} is not a current selector of operation {id} (see deconflict ops {id})"
            )));
        }
        let mut batch = Batch::default();
        let added = new_selectors(core, id, &add, &mut batch)?;
        for rid in &remove {
            if let Some(mut sel) = core.store.sel(*rid)? {
                sel.removed = true;
                batch.put(sel_key(*rid), &sel)?;
            }
        }
        op.selector_ids.retain(|s| !remove.contains(s));
        op.selector_ids.extend(&added);
        if op.selector_ids.is_empty() {
            return Err(Status::invalid_argument(
                "that would leave the operation without selectors: close it instead",
            ));
        }
        if let Some(w) = window {
            op.window = w;
        }
        let action = Action::Amend {
            add: added,
            remove,
            window,
        };
        let seq = enqueue(core, id, action, &mut batch)?;
        op.pending += 1;
        op.updated_unix = now_unix();
        batch.put(op_key(id), &op)?;
        core.store.apply(batch)?;
        Accepted {
            op,
            created: true,
            outbox_seq: Some(seq),
        }
    };
    commit(core, accepted).await
}

/// Closes an operation (a no-op when it is closed already).
pub async fn close(core: &Arc<Core>, id: &str) -> Result<Accepted, Status> {
    let accepted = {
        let _writer = core.store.write_lock();
        let mut op = core.store.op(id)?.ok_or_else(|| {
            Status::not_found(format!(
                "no operation {id} in this agency (list them with deconflict ops --all)"
            ))
        })?;
        if op.closed {
            return Ok(Accepted {
                op,
                created: false,
                outbox_seq: None,
            });
        }
        let mut batch = Batch::default();
        let seq = enqueue(core, id, Action::Close, &mut batch)?;
        op.closed = true;
        op.pending += 1;
        op.updated_unix = now_unix();
        batch.put(op_key(id), &op)?;
        core.store.apply(batch)?;
        Accepted {
            op,
            created: true,
            outbox_seq: Some(seq),
        }
    };
    commit(core, accepted).await
}

/// Queues a re-derivation of operation `id`'s tokens (a key rotation), unless it is closed or
/// gone. Not yet durable: the caller flushes once for all it queued, then wakes the outbox.
pub fn queue_rederive(core: &Core, id: &str) -> Result<Option<u64>, StoreError> {
    let _writer = core.store.write_lock();
    let Some(mut op) = core.store.op(id)? else {
        return Ok(None);
    };
    if op.closed {
        return Ok(None);
    }
    let mut batch = Batch::default();
    let seq = enqueue(core, id, Action::Rederive, &mut batch)?;
    op.pending += 1;
    batch.put(op_key(id), &op)?;
    core.store.apply(batch)?;
    Ok(Some(seq))
}

/// The broker's own window rules, checked here so that an operation it would refuse is never
/// stored to be left behind as `rejected`: a window that has already ended, and (once agencyd
/// has the federation's info) one longer than the federation allows.
fn federation_window(core: &Core, start: i64, end: i64, now: i64) -> Result<(), Status> {
    if end <= now {
        return Err(Status::invalid_argument(format!(
            "window: it ends {}, which is in the past: there is nothing left to deconflict",
            date_text(end)
        )));
    }
    if let Some(info) = core.link.info()
        && info.max_window_seconds > 0
        && u64::try_from(end - start).unwrap_or(u64::MAX) > info.max_window_seconds
    {
        return Err(Status::invalid_argument(format!(
            "window: {} to {} is {} days; this federation allows at most {} days",
            date_text(start),
            date_text(end),
            (end - start + 86_399) / 86_400,
            info.max_window_seconds / 86_400
        )));
    }
    Ok(())
}

/// A Unix time as a person reads it (`2026-12-05 08:00 UTC`).
fn date_text(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute] UTC"
            ))
            .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

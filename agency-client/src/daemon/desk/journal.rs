//! The duty desk's journal: every action an officer takes at the desk (acknowledge, write,
//! disclose, resolve, register…), with the officer's name, in agencyd's own store and log, so
//! that "who disclosed our card" has an answer. Messages the desk sent are kept here too: they
//! are the agency's half of a conversation, which the broker does not send back.
//!
//! It stays in agencyd (plaintext lives there); the log line carries the officer, the action
//! and ids, never a message or a selector.

use serde::{Deserialize, Serialize};

use crate::daemon::store::{Batch, DESK_PREFIX, Store, StoreError, desk_key};
use crate::daemon::timing::now_unix;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeskAction {
    pub at: i64,
    /// The officer's sign-in name and how colleagues read it.
    pub officer: String,
    pub label: String,
    pub action: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub match_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub operation_id: String,
    /// A message the desk sent (the agency's own words, kept to show the conversation), or
    /// what an import read. Never logged.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub text: String,
}

impl DeskAction {
    /// An action on match `id` (the officer is filled in by the desk).
    pub fn on_match(action: &str, id: &str) -> Self {
        Self {
            action: action.to_owned(),
            match_id: id.to_owned(),
            ..Self::default()
        }
    }

    /// An action on operation `id`.
    pub fn on_operation(action: &str, id: &str) -> Self {
        Self {
            action: action.to_owned(),
            operation_id: id.to_owned(),
            ..Self::default()
        }
    }
}

/// Records an action (applied and flushed before the caller answers the officer).
pub async fn record(
    store: &std::sync::Arc<Store>,
    mut entry: DeskAction,
) -> Result<(), StoreError> {
    entry.at = now_unix();
    tracing::info!(
        officer = %entry.officer,
        action = %entry.action,
        match_id = %entry.match_id,
        operation_id = %entry.operation_id,
        "duty desk action"
    );
    let seq = store.next_id()?;
    let mut batch = Batch::default();
    batch.put(desk_key(seq), &entry)?;
    store.apply(batch)?;
    store.flush().await
}

/// Every action, oldest first.
pub fn all(store: &Store) -> Result<Vec<DeskAction>, StoreError> {
    store.values(DESK_PREFIX)
}

/// The actions about one match, oldest first.
pub fn of_match(store: &Store, match_id: &str) -> Result<Vec<DeskAction>, StoreError> {
    Ok(all(store)?
        .into_iter()
        .filter(|a| a.match_id == match_id)
        .collect())
}

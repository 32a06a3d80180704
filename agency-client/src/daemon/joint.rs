//! Joint federations from the agency's side (token spec section 5). For each `[[joint]]`,
//! a worker keeps the joint broker holding what this agency's released operations say: it
//! derives their selectors' joint tokens through both countries' token services (one
//! blinding, both proofs verified against the pinned shares) and registers, amends or closes
//! them there. Only operations an officer released to that federation are ever sent; their
//! alerts come back through their own subscription (`alerts::Feed`), marked with the
//! federation's name.
//!
//! The worker reconciles instead of replaying a queue: what the joint broker was last told of
//! each operation is kept under `j/<federation>/<operation id>`, and every pass sends only the
//! difference. A joint broker that is down delays nothing at home.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deconfliction_proto::v1;
use deconfliction_proto::v1::broker_client::BrokerClient;
use token_spec::normalize::{FederationParams, canonical_forms};
use token_spec::token::{JointDeriver, PinnedKey, ShareService};
use tokio::sync::{Notify, watch};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use super::config::{DaemonConfig, JointSection};
use super::core::Core;
use super::link::{Link, LinkError, channel, read};
use super::outbox::is_transient;
use super::records::{JointOpState, OpRecord};
use super::store::{Batch, joint_key};
use super::timing::{Backoff, now_unix};
use super::tokenize::{record_selector, wire_kinds};

/// How often released operations are looked at when nothing wakes the worker.
const IDLE_PASS: Duration = Duration::from_secs(30);

/// One joint federation's broker and token derivation.
pub struct JointLink {
    pub name: String,
    pub broker: BrokerClient<Channel>,
    pub call_timeout: Duration,
    /// Woken when an operation released to this federation changed.
    pub wake: Notify,
    deriver: tokio::sync::Mutex<JointDeriver>,
    info: Mutex<Option<v1::FederationInfo>>,
}

impl std::fmt::Debug for JointLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JointLink")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl JointLink {
    /// Prepares (lazy) channels to the joint broker and both shares' token services, with the
    /// agency's own certificate.
    pub fn new(config: &DaemonConfig, j: &JointSection) -> Result<Self, LinkError> {
        let identity = Identity::from_pem(
            read(&config.tls.cert, "[tls] cert")?,
            read(&config.tls.key, "[tls] key")?,
        );
        let tls = |ca: &Option<std::path::PathBuf>, key: &str| -> Result<_, LinkError> {
            let (path, key) = match ca {
                Some(p) => (p.as_path(), key),
                None => (config.tls.ca.as_path(), "[tls] ca"),
            };
            Ok(ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(read(path, key)?))
                .identity(identity.clone()))
        };
        let connect = Duration::from_secs(config.broker.connect_timeout_seconds.max(1));
        let call_timeout = Duration::from_secs(config.broker.call_timeout_seconds.max(1));
        let broker = channel(
            &j.broker,
            j.tls_domain.as_deref(),
            tls(&j.broker_ca, "[[joint]] broker_ca")?,
            connect,
        )?;
        let mut shares = Vec::with_capacity(2);
        for (key, s) in [("share_a", &j.share_a), ("share_b", &j.share_b)] {
            let pin = PinnedKey::from_hex(&s.public_key, s.key_epoch)
                .map_err(|e| LinkError::Config(format!("[[joint]] {}: {key}: {e}", j.name)))?;
            let ch = channel(
                &s.address,
                s.tls_domain.as_deref(),
                tls(&s.ca, &format!("[[joint]] {key}.ca"))?,
                connect,
            )?;
            shares.push(ShareService::from_channel(ch, pin));
        }
        let (Some(b), Some(a)) = (shares.pop(), shares.pop()) else {
            return Err(LinkError::Config("[[joint]]: two shares needed".into()));
        };
        Ok(Self {
            name: j.name.clone(),
            broker: BrokerClient::new(broker),
            call_timeout,
            wake: Notify::new(),
            deriver: tokio::sync::Mutex::new(
                JointDeriver::new(a, b).with_call_timeout(call_timeout),
            ),
            info: Mutex::new(None),
        })
    }

    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(message);
        r.set_timeout(self.call_timeout);
        r
    }

    /// The joint federation's normalization parameters (asked once, then remembered).
    async fn params(&self) -> Result<FederationParams, Failure> {
        let known = self.info.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let info = match known {
            Some(info) => info,
            None => {
                let info = self
                    .broker
                    .clone()
                    .get_federation_info(self.request(v1::GetFederationInfoRequest {}))
                    .await
                    .map_err(|s| self.failure(s))?
                    .into_inner();
                *self.info.lock().unwrap_or_else(|p| p.into_inner()) = Some(info.clone());
                info
            }
        };
        Link::params(&info).map_err(Failure::Later)
    }

    fn failure(&self, status: tonic::Status) -> Failure {
        let text = format!(
            "joint broker {}: {:?}: {}",
            self.name,
            status.code(),
            status.message()
        );
        if is_transient(status.code()) {
            Failure::Later(text)
        } else {
            Failure::Refused(text)
        }
    }
}

/// Why an operation could not be brought up to date at the joint broker.
enum Failure {
    /// Worth another pass (unreachable, quota, a token service down).
    Later(String),
    /// Refused for good until the operation changes.
    Refused(String),
}

/// Runs until shutdown.
pub async fn run(core: Arc<Core>, link: Arc<JointLink>, mut shutdown: watch::Receiver<bool>) {
    let mut backoff = Backoff::new(core.retry_initial(), core.retry_max());
    loop {
        if *shutdown.borrow() {
            return;
        }
        let wait = if pass(&core, &link).await {
            backoff.reset();
            IDLE_PASS
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
    let mut done = true;
    for op in ops.iter().filter(|o| o.release_to.contains(&link.name)) {
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
        match sync(core, link, op, &mut state).await {
            Ok(()) => state.last_error = None,
            Err(Failure::Later(reason)) => {
                tracing::warn!(federation = %link.name, operation_id = %op.id, %reason, "joint: not delivered; retried later");
                done = false;
                continue;
            }
            Err(Failure::Refused(reason)) => {
                tracing::warn!(federation = %link.name, operation_id = %op.id, %reason, "joint: refused");
                state.last_error = Some(reason);
                state.failed_update = op.updated_unix;
            }
        }
        if state != before && save(core, &key, &state).await.is_err() {
            done = false;
        }
    }
    done
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

/// Brings one operation at the joint broker to what it says now.
async fn sync(
    core: &Core,
    link: &JointLink,
    op: &OpRecord,
    state: &mut JointOpState,
) -> Result<(), Failure> {
    let mut broker = link.broker.clone();
    if op.closed || op.window.1 <= now_unix() {
        if state.registered && !state.closed {
            broker
                .close_operation(link.request(v1::CloseOperationRequest {
                    operation_id: op.id.clone(),
                }))
                .await
                .map_err(|s| link.failure(s))?;
            state.closed = true;
            tracing::info!(federation = %link.name, operation_id = %op.id, "joint: close delivered");
        }
        return Ok(());
    }
    if state.closed {
        return Ok(());
    }
    let current: HashSet<u64> = op.selector_ids.iter().copied().collect();
    let missing: Vec<u64> = op
        .selector_ids
        .iter()
        .copied()
        .filter(|id| !state.tokens.contains_key(id))
        .collect();
    let fresh = derive(core, link, &missing).await?;
    if !state.registered {
        let mut all = state.tokens.clone();
        all.retain(|id, _| current.contains(id));
        all.extend(fresh);
        let request = v1::RegisterOperationRequest {
            operation_id: op.id.clone(),
            window: Some(crate::control::window_to_wire(op.window)),
            tokens: entries(core, &all)?,
            case_reference: String::new(),
        };
        broker
            .register_operation(link.request(request))
            .await
            .map_err(|s| link.failure(s))?;
        tracing::info!(federation = %link.name, operation_id = %op.id, selectors = all.len(), "joint: registration delivered");
        state.registered = true;
        state.window = op.window;
        state.tokens = all;
        return Ok(());
    }
    let gone: BTreeMap<u64, Vec<String>> = state
        .tokens
        .iter()
        .filter(|(id, _)| !current.contains(id))
        .map(|(id, t)| (*id, t.clone()))
        .collect();
    if fresh.is_empty() && gone.is_empty() && state.window == op.window {
        return Ok(());
    }
    let kept: HashSet<&String> = state
        .tokens
        .iter()
        .filter(|(id, _)| current.contains(id))
        .flat_map(|(_, t)| t)
        .collect();
    let mut remove_tokens = Vec::new();
    for t in gone.values().flatten().filter(|t| !kept.contains(t)) {
        if let Ok(bytes) = hex::decode(t)
            && !remove_tokens.contains(&bytes)
        {
            remove_tokens.push(bytes);
        }
    }
    let request = v1::AmendOperationRequest {
        operation_id: op.id.clone(),
        add_tokens: entries(core, &fresh)?,
        remove_tokens,
        window: (state.window != op.window).then(|| crate::control::window_to_wire(op.window)),
    };
    broker
        .amend_operation(link.request(request))
        .await
        .map_err(|s| link.failure(s))?;
    tracing::info!(federation = %link.name, operation_id = %op.id, added = fresh.len(), removed = gone.len(), "joint: amendment delivered");
    state.tokens.retain(|id, _| current.contains(id));
    state.tokens.extend(fresh);
    state.window = op.window;
    Ok(())
}

/// Joint tokens (hex) of the stored selectors `ids`, by id.
async fn derive(
    core: &Core,
    link: &JointLink,
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
    let tokens = link
        .deriver
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

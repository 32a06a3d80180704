//! One joint federation's connections, as agencyd holds them: the joint broker, both key
//! shares' token services with the keys pinned for each (two during a share's rotation), one
//! joint token deriver per pair of pinned epochs, and what is known of the federation. The
//! worker that uses them is [`super::joint`].

use std::sync::Mutex;
use std::time::Duration;

use deconfliction_proto::v1;
use deconfliction_proto::v1::broker_client::BrokerClient;
use deconfliction_proto::v1::token_service_client::TokenServiceClient;
use token_spec::normalize::FederationParams;
use token_spec::token::{JointDeriver, PinnedKey, ShareService};
use tokio::sync::Notify;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use super::config::{DaemonConfig, JointSection, JointShareSection};
use super::epochs::Served;
use super::link::{Link, LinkError, channel, read};
use super::outbox::is_transient;
use super::timing::now_unix;
use crate::control::pb;

/// How often released operations are looked at when nothing wakes the worker.
const IDLE_PASS: Duration = Duration::from_secs(30);

/// A pair of share epochs a joint token is made under: (share A's, share B's).
pub(super) type Pair = (u32, u32);

pub(super) fn pair_name((a, b): Pair) -> String {
    format!("{a}-{b}")
}

/// One share's token service and the keys this agency pins for it, the current one first.
struct ShareLink {
    client: TokenServiceClient<Channel>,
    pins: Vec<PinnedKey>,
}

/// One joint federation's broker and token derivation.
pub struct JointLink {
    pub name: String,
    pub broker: BrokerClient<Channel>,
    pub call_timeout: Duration,
    /// Woken when an operation released to this federation changed.
    pub wake: Notify,
    /// How often the shares' served epochs are looked at when nothing else happens.
    pub(super) idle: Duration,
    shares: [ShareLink; 2],
    /// One deriver per pair of pinned epochs (one pair, or two during a share's rotation).
    pub(super) derivers: Vec<(Pair, tokio::sync::Mutex<JointDeriver>)>,
    info: Mutex<Option<v1::FederationInfo>>,
    /// Why an operation is still waiting (a broker or token service unreachable, a share's
    /// proof refused), by operation id: shown by `deconflict ops`, not stored.
    waiting: Mutex<std::collections::HashMap<String, String>>,
}

impl std::fmt::Debug for JointLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JointLink")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

fn share_pins(name: &str, key: &str, s: &JointShareSection) -> Result<Vec<PinnedKey>, LinkError> {
    let bad = |e: token_spec::token::TokenError| {
        LinkError::Config(format!("[[joint]] {name}: {key}: {e}"))
    };
    let mut pins = vec![PinnedKey::from_hex(&s.public_key, s.key_epoch).map_err(bad)?];
    if let Some(previous) = &s.previous_public_key {
        pins.push(PinnedKey::from_hex(previous, s.previous_key_epoch).map_err(bad)?);
    }
    Ok(pins)
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
        let share = |key: &str, s: &JointShareSection| -> Result<ShareLink, LinkError> {
            let ch = channel(
                &s.address,
                s.tls_domain.as_deref(),
                tls(&s.ca, &format!("[[joint]] {key}.ca"))?,
                connect,
            )?;
            Ok(ShareLink {
                client: TokenServiceClient::new(ch),
                pins: share_pins(&j.name, key, s)?,
            })
        };
        let shares = [share("share_a", &j.share_a)?, share("share_b", &j.share_b)?];
        let mut derivers = Vec::new();
        for a in &shares[0].pins {
            for b in &shares[1].pins {
                let deriver = JointDeriver::new(
                    ShareService {
                        client: shares[0].client.clone(),
                        pinned: *a,
                    },
                    ShareService {
                        client: shares[1].client.clone(),
                        pinned: *b,
                    },
                )
                .with_call_timeout(call_timeout);
                derivers.push(((a.epoch(), b.epoch()), tokio::sync::Mutex::new(deriver)));
            }
        }
        Ok(Self {
            name: j.name.clone(),
            broker: BrokerClient::new(broker),
            call_timeout,
            wake: Notify::new(),
            idle: IDLE_PASS.min(Duration::from_secs(config.daemon.key_poll_seconds.max(1))),
            shares,
            derivers,
            info: Mutex::new(None),
            waiting: Mutex::default(),
        })
    }

    /// Probes the joint broker and both shares' token services, each within `timeout`.
    pub async fn probe(&self, timeout: Duration) -> pb::JointStatus {
        let timed = |started: std::time::Instant, r: Result<(), String>| match r {
            Ok(()) => pb::Reachability {
                reachable: true,
                error: String::new(),
                latency_ms: started.elapsed().as_millis() as u32,
            },
            Err(error) => pb::Reachability {
                reachable: false,
                error,
                latency_ms: started.elapsed().as_millis() as u32,
            },
        };
        let words = |s: tonic::Status| format!("{:?}: {}", s.code(), s.message());
        let started = std::time::Instant::now();
        let mut request = tonic::Request::new(v1::GetFederationInfoRequest {});
        request.set_timeout(timeout);
        let broker = self
            .broker
            .clone()
            .get_federation_info(request)
            .await
            .map(|_| ())
            .map_err(words);
        let broker = timed(started, broker);
        let mut shares = Vec::with_capacity(2);
        for share in &self.shares {
            let started = std::time::Instant::now();
            let mut request = tonic::Request::new(v1::GetPublicKeyRequest {});
            request.set_timeout(timeout);
            let r = share
                .client
                .clone()
                .get_public_key(request)
                .await
                .map(|_| ())
                .map_err(words);
            shares.push(timed(started, r));
        }
        let waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner()).len() as u64;
        let share_b = shares.pop();
        pb::JointStatus {
            federation: self.name.clone(),
            broker: Some(broker),
            share_a: shares.pop(),
            share_b,
            waiting_operations: waiting,
        }
    }

    /// Why operation `op_id` still waits for this joint broker, if it does.
    pub fn waiting_reason(&self, op_id: &str) -> Option<String> {
        self.waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(op_id)
            .cloned()
    }

    pub(super) fn set_waiting(&self, op_id: &str, reason: Option<String>) {
        let mut map = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        match reason {
            Some(r) => {
                map.insert(op_id.to_owned(), r);
            }
            None => {
                map.remove(op_id);
            }
        }
    }

    pub(super) fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(message);
        r.set_timeout(self.call_timeout);
        r
    }

    /// The pairs of pinned epochs both shares' services serve now, the current pair first:
    /// what released operations must carry tokens of.
    pub(super) async fn live_pairs(&self) -> Result<Vec<Pair>, Failure> {
        let now = now_unix();
        let mut served: [Vec<u32>; 2] = [Vec::new(), Vec::new()];
        for (i, share) in self.shares.iter().enumerate() {
            let which = if i == 0 { "A" } else { "B" };
            let info = share
                .client
                .clone()
                .get_public_key(self.request(v1::GetPublicKeyRequest {}))
                .await
                .map_err(|s| {
                    Failure::Later(format!(
                        "token service of share {which}: {:?}: {}",
                        s.code(),
                        s.message()
                    ))
                })?
                .into_inner();
            let s = Served::from_info(&info);
            served[i] = share
                .pins
                .iter()
                .map(|p| p.epoch())
                .filter(|e| s.serves(*e, now))
                .collect();
            if served[i].is_empty() {
                return Err(Failure::Later(format!(
                    "the token service of share {which} serves none of the epochs pinned for it \
                     (it serves {:?}): update [[joint]] {}",
                    s.epochs(now),
                    self.name
                )));
            }
        }
        Ok(served[0]
            .iter()
            .flat_map(|a| served[1].iter().map(move |b| (*a, *b)))
            .collect())
    }

    /// The joint federation's normalization parameters (asked once, then remembered).
    pub(super) async fn params(&self) -> Result<FederationParams, Failure> {
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

    pub(super) fn failure(&self, status: tonic::Status) -> Failure {
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
pub(super) enum Failure {
    /// Worth another pass (unreachable, quota, a token service down).
    Later(String),
    /// Refused for good until the operation changes.
    Refused(String),
}

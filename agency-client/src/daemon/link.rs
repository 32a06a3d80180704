//! The daemon's mTLS connections to the broker and the token service, the token deriver
//! pinned to the configured key, and the federation parameters the broker publishes.
//!
//! Channels connect lazily and reconnect by themselves: a broker that is down makes calls fail
//! with UNAVAILABLE, and the same channel works again once it is back.

use std::sync::Mutex;
use std::time::Duration;

use deconfliction_proto::v1;
use deconfliction_proto::v1::broker_client::BrokerClient;
use deconfliction_proto::v1::token_service_client::TokenServiceClient;
use token_spec::normalize::FederationParams;
use token_spec::token::{PinnedKey, Token, TokenDeriver, TokenError};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use super::config::DaemonConfig;
use super::epochs::{Plan, Served, plan};
use super::reach::ExpectedName;
use super::timing::now_unix;

/// Largest message accepted from the broker (alerts, lists).
const MAX_DECODE: usize = 64 * 1024 * 1024;

/// Why the daemon cannot start.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// A PEM file could not be read.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// A configured value is unusable.
    #[error("{0}")]
    Config(String),
}

/// The connections and what the daemon knows of the federation.
pub struct Link {
    /// The broker, over mTLS.
    pub broker: BrokerClient<Channel>,
    token_channel: Channel,
    /// One deriver per pinned key (its cache belongs to that epoch), the current pin first.
    derivers: Vec<(PinnedKey, tokio::sync::Mutex<TokenDeriver>)>,
    /// What the token service served when last asked.
    served: Mutex<Option<Served>>,
    /// Deadline of one unary call.
    pub call_timeout: Duration,
    /// The broker's address as configured.
    pub address: String,
    /// The name the broker's certificate must hold.
    pub broker_name: super::reach::ExpectedName,
    info: Mutex<Option<v1::FederationInfo>>,
    /// The drill this daemon takes part in (None: the live federation).
    pub drill: Option<String>,
    /// The broker's replicas, when more than one address is configured (see [`super::failover`]).
    pub replicas: Option<std::sync::Arc<super::failover::Replicas>>,
}

/// Reads a PEM file named by the configuration key `key` (`[tls] ca`, ...).
pub(super) fn read(path: &std::path::Path, key: &str) -> Result<String, LinkError> {
    std::fs::read_to_string(path).map_err(|e| LinkError::File {
        path: format!("{key} = {}", path.display()),
        reason: e.to_string(),
    })
}

/// `host:port` → (`https://host:port`, host).
fn endpoint_of(address: &str) -> Result<(String, String), LinkError> {
    let rest = address
        .strip_prefix("https://")
        .unwrap_or(address)
        .trim_end_matches('/');
    if rest.is_empty() || rest.contains("://") {
        return Err(LinkError::Config(format!(
            "address {address:?}: expected host:port or https://host:port"
        )));
    }
    let host = match rest.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default().to_string(),
        None => rest.rsplit_once(':').map_or(rest, |(h, _)| h).to_string(),
    };
    Ok((format!("https://{rest}"), host))
}

pub(super) fn channel(
    address: &str,
    domain: Option<&str>,
    tls: ClientTlsConfig,
    connect_timeout: Duration,
) -> Result<Channel, LinkError> {
    Ok(endpoint(address, domain, tls, connect_timeout)?.connect_lazy())
}

pub(super) fn endpoint(
    address: &str,
    domain: Option<&str>,
    tls: ClientTlsConfig,
    connect_timeout: Duration,
) -> Result<Endpoint, LinkError> {
    let (url, host) = endpoint_of(address)?;
    let tls = tls.domain_name(domain.unwrap_or(&host).to_string());
    let endpoint = Endpoint::from_shared(url)
        .map_err(|e| LinkError::Config(format!("address {address:?}: {e}")))?
        .tls_config(tls)
        .map_err(|e| LinkError::Config(format!("TLS configuration: {e}")))?
        .connect_timeout(connect_timeout)
        .http2_keep_alive_interval(Duration::from_secs(15))
        .keep_alive_timeout(Duration::from_secs(10))
        .keep_alive_while_idle(true);
    Ok(endpoint)
}

impl Link {
    /// Reads the certificate files and prepares (lazy) channels.
    pub fn new(config: &DaemonConfig) -> Result<Self, LinkError> {
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(read(&config.tls.ca, "[tls] ca")?))
            .identity(Identity::from_pem(
                read(&config.tls.cert, "[tls] cert")?,
                read(&config.tls.key, "[tls] key")?,
            ));
        let connect_timeout = Duration::from_secs(config.broker.connect_timeout_seconds.max(1));
        let (broker_channel, replicas) = if config.broker.replicas.is_empty() {
            let channel = channel(
                &config.broker.address,
                config.broker.tls_domain.as_deref(),
                tls.clone(),
                connect_timeout,
            )?;
            (channel, None)
        } else {
            let mut endpoints = Vec::new();
            for address in std::iter::once(&config.broker.address).chain(&config.broker.replicas) {
                let e = endpoint(
                    address,
                    config.broker.tls_domain.as_deref(),
                    tls.clone(),
                    connect_timeout,
                )?;
                endpoints.push((address.clone(), e));
            }
            let (channel, replicas) = super::failover::Replicas::new(endpoints)?;
            (channel, Some(std::sync::Arc::new(replicas)))
        };
        let token_channel = match &config.token_service.address {
            Some(addr) => channel(
                addr,
                config.token_service.tls_domain.as_deref(),
                tls,
                connect_timeout,
            )?,
            None => broker_channel.clone(),
        };
        let pins = pins(config)?;
        let broker_name =
            expected_name(&config.broker.address, config.broker.tls_domain.as_deref())?;
        let call_timeout = Duration::from_secs(config.broker.call_timeout_seconds.max(1));
        let derivers = pins
            .into_iter()
            .map(|pin| {
                let d = TokenDeriver::from_channel(token_channel.clone(), pin)
                    .with_call_timeout(call_timeout);
                (pin, tokio::sync::Mutex::new(d))
            })
            .collect();
        Ok(Self {
            broker: BrokerClient::new(broker_channel)
                .max_decoding_message_size(MAX_DECODE)
                .max_encoding_message_size(MAX_DECODE),
            derivers,
            served: Mutex::new(None),
            token_channel,
            call_timeout,
            address: config.broker.address.clone(),
            broker_name,
            info: Mutex::new(None),
            drill: config.drill.as_ref().map(|d| d.id.clone()),
            replicas,
        })
    }

    /// The pinned token-service keys, the current one first.
    pub fn pins(&self) -> Vec<PinnedKey> {
        self.derivers.iter().map(|(p, _)| *p).collect()
    }

    /// A request with the unary deadline.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(message);
        r.set_timeout(self.call_timeout);
        r
    }

    /// Asks the broker for the federation parameters (and remembers them).
    pub async fn refresh_info(
        &self,
        timeout: Duration,
    ) -> Result<v1::FederationInfo, tonic::Status> {
        let mut request = tonic::Request::new(v1::GetFederationInfoRequest {});
        request.set_timeout(timeout);
        let info = self
            .broker
            .clone()
            .get_federation_info(request)
            .await?
            .into_inner();
        // Nothing is sent to, or taken from, a broker of another federation (live or drill).
        super::drill::check_federation(self.drill.as_deref(), &info, &self.address)
            .map_err(tonic::Status::failed_precondition)?;
        *self.info.lock().unwrap_or_else(|p| p.into_inner()) = Some(info.clone());
        Ok(info)
    }

    /// The federation parameters last seen, if any.
    pub fn info(&self) -> Option<v1::FederationInfo> {
        self.info.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The federation parameters, asking the broker if never seen.
    pub async fn info_or_fetch(&self) -> Result<v1::FederationInfo, tonic::Status> {
        match self.info() {
            Some(info) => Ok(info),
            None => self.refresh_info(self.call_timeout).await,
        }
    }

    /// The normalization parameters from the federation info.
    pub fn params(info: &v1::FederationInfo) -> Result<FederationParams, String> {
        let h3_resolution = u8::try_from(info.h3_resolution)
            .map_err(|_| format!("broker publishes H3 resolution {}", info.h3_resolution))?;
        Ok(FederationParams {
            h3_resolution,
            disk_radius: info.h3_disk_radius,
        })
    }

    /// Asks the token service which key epochs it serves (and remembers the answer).
    pub async fn refresh_served(&self, timeout: Duration) -> Result<Served, String> {
        let mut request = tonic::Request::new(v1::GetPublicKeyRequest {});
        request.set_timeout(timeout);
        let info = TokenServiceClient::new(self.token_channel.clone())
            .get_public_key(request)
            .await
            .map_err(|s| {
                format!(
                    "token service: {}: {}",
                    token_spec::token::grpc_code_name(s.code()),
                    s.message()
                )
            })?
            .into_inner();
        let served = Served::from_info(&info);
        *self.served.lock().unwrap_or_else(|p| p.into_inner()) = Some(served.clone());
        Ok(served)
    }

    /// What the token service served when last asked, if ever.
    pub fn served(&self) -> Option<Served> {
        self.served
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Forgets what the token service served, so that the next [`Link::plan`] asks again
    /// (after the service refused an epoch, say).
    pub fn forget_served(&self) {
        *self.served.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// The epochs to derive under and keep now (asking the token service if never asked).
    pub async fn plan(&self) -> Result<Plan, tonic::Status> {
        let served = match self.served() {
            Some(s) => s,
            // Not reachable now: the caller may try again later.
            None => self
                .refresh_served(self.call_timeout)
                .await
                .map_err(tonic::Status::unavailable)?,
        };
        // The pinned keys and what is served disagree: nothing to retry.
        plan(&self.pins(), &served, now_unix())
            .map_err(|e| tonic::Status::failed_precondition(e.to_string()))
    }

    /// Tokens of canonical forms under pinned `epoch`, verified against its pinned key.
    pub async fn tokens(&self, epoch: u32, forms: &[Vec<u8>]) -> Result<Vec<Token>, TokenError> {
        let Some((_, deriver)) = self.derivers.iter().find(|(p, _)| p.epoch() == epoch) else {
            return Err(TokenError::Worker(format!(
                "key epoch {epoch} is not pinned"
            )));
        };
        deriver.lock().await.tokens(forms).await
    }
}

/// The configured pins, the current one first.
fn pins(config: &DaemonConfig) -> Result<Vec<PinnedKey>, LinkError> {
    let ts = &config.token_service;
    let current = PinnedKey::from_hex(&ts.public_key, ts.key_epoch)
        .map_err(|e| LinkError::Config(format!("[token_service] public_key/key_epoch: {e}")))?;
    let mut pins = vec![current];
    match (&ts.previous_public_key, ts.previous_key_epoch) {
        (None, 0) => {}
        (Some(key), epoch) if epoch != current.epoch() => {
            pins.push(PinnedKey::from_hex(key, epoch).map_err(|e| {
                LinkError::Config(format!(
                    "[token_service] previous_public_key/previous_key_epoch: {e}"
                ))
            })?);
        }
        (Some(_), _) => {
            return Err(LinkError::Config(format!(
                "[token_service] previous_key_epoch must differ from key_epoch ({})",
                current.epoch()
            )));
        }
        (None, _) => {
            return Err(LinkError::Config(
                "[token_service] previous_key_epoch is set without previous_public_key".into(),
            ));
        }
    }
    Ok(pins)
}

/// Asks the broker for the federation parameters with the configured certificate, without
/// needing a pinned key: what `agencyd --show-published-key` prints, so that an operator can
/// compare it out of band with what the federation administrator handed out.
/// The TLS name a server's certificate must hold: `tls_domain`, else the address's host.
fn expected_name(address: &str, domain: Option<&str>) -> Result<ExpectedName, LinkError> {
    let (_, host) = endpoint_of(address)?;
    Ok(ExpectedName {
        name: domain.unwrap_or(&host).to_owned(),
        key: "broker.tls_domain",
        from_address: domain.is_none(),
    })
}

impl Link {
    /// A failed broker call in words (see [`super::reach::describe`]).
    pub fn describe(&self, status: &tonic::Status) -> String {
        super::reach::describe(status, &self.broker_name)
    }
}

pub async fn fetch_federation_info(config: &DaemonConfig) -> Result<v1::FederationInfo, String> {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(
            read(&config.tls.ca, "[tls] ca").map_err(|e| e.to_string())?,
        ))
        .identity(Identity::from_pem(
            read(&config.tls.cert, "[tls] cert").map_err(|e| e.to_string())?,
            read(&config.tls.key, "[tls] key").map_err(|e| e.to_string())?,
        ));
    let timeout = Duration::from_secs(config.broker.connect_timeout_seconds.max(1));
    let channel = channel(
        &config.broker.address,
        config.broker.tls_domain.as_deref(),
        tls,
        timeout,
    )
    .map_err(|e| e.to_string())?;
    let mut request = tonic::Request::new(v1::GetFederationInfoRequest {});
    request.set_timeout(Duration::from_secs(
        config.broker.call_timeout_seconds.max(1),
    ));
    let info = BrokerClient::new(channel)
        .get_federation_info(request)
        .await
        .map(tonic::Response::into_inner)
        .map_err(|s| {
            let expected =
                expected_name(&config.broker.address, config.broker.tls_domain.as_deref());
            match expected {
                Ok(expected) => format!(
                    "broker {}: {}",
                    config.broker.address,
                    super::reach::describe(&s, &expected)
                ),
                Err(e) => e.to_string(),
            }
        })?;
    super::drill::check_federation(
        config.drill.as_ref().map(|d| d.id.as_str()),
        &info,
        &config.broker.address,
    )?;
    Ok(info)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            endpoint_of("127.0.0.1:7443").unwrap(),
            ("https://127.0.0.1:7443".into(), "127.0.0.1".into())
        );
        assert_eq!(
            endpoint_of("https://broker.example:7443/").unwrap(),
            (
                "https://broker.example:7443".into(),
                "broker.example".into()
            )
        );
        assert_eq!(endpoint_of("[::1]:7443").unwrap().1, "::1");
        assert!(endpoint_of("http://x:1").is_err());
        assert!(endpoint_of("").is_err());
    }
}

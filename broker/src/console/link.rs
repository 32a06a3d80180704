//! The console's link to the broker: the watch centre's mTLS channel to `Oversight`, and the
//! poller that keeps the latest queue and agency board for every page and live stream.
//!
//! The channel connects lazily: a console started while the broker is down serves its pages
//! and says the broker is unreachable, and recovers by itself.

use std::sync::Arc;
use std::time::Duration;

use deconfliction_proto::v1;
use deconfliction_proto::v1::oversight_client::OversightClient;
use tokio::sync::{Notify, watch};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use super::config::BrokerLink;

/// What the console last learned from the broker.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Every match the broker holds (unresolved and resolved), oldest first.
    pub matches: Vec<v1::MatchMetadata>,
    pub board: Option<v1::Board>,
    /// Why the last refresh failed, while it does.
    pub error: Option<String>,
    /// When the queue was last read (unix seconds; 0: never).
    pub fetched_at: i64,
}

impl Snapshot {
    /// An agency's display name, else its id.
    pub fn agency_name<'a>(&'a self, id: &'a str) -> &'a str {
        self.board
            .as_ref()
            .and_then(|b| b.agencies.iter().find(|a| a.agency_id == id))
            .map(|a| a.display_name.as_str())
            .filter(|n| !n.is_empty())
            .unwrap_or(id)
    }

    pub fn find(&self, match_id: &str) -> Option<&v1::MatchMetadata> {
        self.matches.iter().find(|m| m.match_id == match_id)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("cannot read {what} {}: {reason}", path.display())]
    Read {
        what: &'static str,
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("{0:?} is not a URL")]
    Address(String),
    #[error("the client's TLS settings are not usable: {0}")]
    Tls(String),
}

/// The name the broker's certificate must hold: `server_name`, else the host of the address
/// (an IP is checked as an IP: the development certificate holds 127.0.0.1 and localhost).
pub fn expected_name(link: &BrokerLink) -> String {
    link.server_name.clone().unwrap_or_else(|| {
        link.address
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split([':', '/']).next())
            .unwrap_or("localhost")
            .to_owned()
    })
}

/// The broker's endpoint with a client certificate over mutual TLS (the console's, and the
/// `watch`/`admin` commands').
pub fn endpoint(link: &BrokerLink) -> Result<Endpoint, LinkError> {
    let read = |what: &'static str, path: &std::path::Path| {
        std::fs::read_to_string(path).map_err(|e| LinkError::Read {
            what,
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    };
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read("the federation CA", &link.ca)?))
        .identity(Identity::from_pem(
            read("the client certificate", &link.cert)?,
            read("the client key", &link.key)?,
        ))
        .domain_name(expected_name(link));
    Endpoint::from_shared(link.address.clone())
        .map_err(|_| LinkError::Address(link.address.clone()))?
        .tls_config(tls)
        .map_err(|e| LinkError::Tls(e.to_string()))
}

/// A lazily connecting `Oversight` client with the watch centre's certificate.
pub fn oversight(link: &BrokerLink) -> Result<OversightClient<Channel>, LinkError> {
    let channel = endpoint(link)?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(15))
        .connect_lazy();
    Ok(OversightClient::new(channel))
}

/// What a refused or failed call says to an officer: the broker's own message when it gave
/// one, else that it could not be reached.
pub fn reason(status: &tonic::Status) -> String {
    match status.code() {
        tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::DeadlineExceeded
            if status.message().is_empty() || status.message().contains("transport") =>
        {
            "the broker cannot be reached".to_owned()
        }
        _ => status.message().to_owned(),
    }
}

/// Keeps `snapshot` current: the queue every `every`, the board every fifth time, and at
/// once when `poke` is notified (after an officer's action).
pub async fn poll(
    mut client: OversightClient<Channel>,
    every: Duration,
    snapshot: watch::Sender<Arc<Snapshot>>,
    poke: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut round: u64 = 0;
    loop {
        let mut next = (**snapshot.borrow()).clone();
        match all_matches(&mut client).await {
            Ok(matches) => {
                next.matches = matches;
                next.error = None;
                next.fetched_at = super::now();
            }
            Err(status) => next.error = Some(reason(&status)),
        }
        if (round.is_multiple_of(5) || next.board.is_none()) && next.error.is_none() {
            match client.get_board(v1::GetBoardRequest {}).await {
                Ok(board) => next.board = Some(board.into_inner()),
                Err(status) => next.error = Some(reason(&status)),
            }
        }
        round += 1;
        snapshot.send_if_modified(|current| {
            if **current == next {
                false
            } else {
                *current = Arc::new(next);
                true
            }
        });
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = poke.notified() => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

async fn all_matches(
    client: &mut OversightClient<Channel>,
) -> Result<Vec<v1::MatchMetadata>, tonic::Status> {
    let mut out = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_matches(v1::ListMatchesRequest {
                include_resolved: true,
                page_size: 5000,
                page_token,
                ..Default::default()
            })
            .await?
            .into_inner();
        out.extend(page.matches);
        if page.next_page_token.is_empty() {
            return Ok(out);
        }
        page_token = page.next_page_token;
    }
}

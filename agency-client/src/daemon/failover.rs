//! A broker run as several replicas on one database: the daemon talks to one replica at a
//! time and moves to the next by itself when the one in use stops answering.
//!
//! Every call and stream goes through one balanced channel whose only member is the replica
//! in use, so nothing else in the daemon knows there are several. A probe asks the replica in
//! use for the federation parameters every few seconds; when it does not answer, the others
//! are asked in order and the first that answers becomes the member. Calls that failed
//! meanwhile were answered UNAVAILABLE and are retried as any broker outage is (the outbox
//! keeps its order, the alert feed resumes from its cursor): no replica holds state of its
//! own, so nothing is lost or done twice by the move.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use deconfliction_proto::v1;
use deconfliction_proto::v1::broker_client::BrokerClient;
use tokio::sync::{mpsc, watch};
use tonic::transport::channel::Change;
use tonic::transport::{Channel, Endpoint};

use super::link::LinkError;

pub struct Replicas {
    /// Address and endpoint of each replica, in the configured order.
    members: Vec<(String, Endpoint)>,
    /// Direct channels to each, for the probes.
    probes: Vec<Channel>,
    current: AtomicUsize,
    changes: mpsc::Sender<Change<usize, Endpoint>>,
}

impl Replicas {
    /// The balanced channel (starting on the first replica) and its controller.
    pub(super) fn new(members: Vec<(String, Endpoint)>) -> Result<(Channel, Self), LinkError> {
        let Some((_, first)) = members.first() else {
            return Err(LinkError::Config("[broker] address: none given".into()));
        };
        let (channel, changes) = Channel::balance_channel(4);
        changes
            .try_send(Change::Insert(0, first.clone()))
            .map_err(|e| LinkError::Config(format!("broker replicas: {e}")))?;
        let probes = members.iter().map(|(_, e)| e.connect_lazy()).collect();
        Ok((
            channel,
            Self {
                members,
                probes,
                current: AtomicUsize::new(0),
                changes,
            },
        ))
    }

    /// The address of the replica in use.
    pub fn current(&self) -> &str {
        let i = self.current.load(Ordering::Acquire);
        self.members.get(i).map_or("", |(a, _)| a.as_str())
    }

    async fn answers(&self, i: usize, timeout: Duration) -> bool {
        let Some(channel) = self.probes.get(i) else {
            return false;
        };
        let mut request = tonic::Request::new(v1::GetFederationInfoRequest {});
        request.set_timeout(timeout);
        BrokerClient::new(channel.clone())
            .get_federation_info(request)
            .await
            .is_ok()
    }

    /// Probes the replica in use; if it does not answer, moves to the first other one that
    /// does. Returns the new address when it moved.
    pub(super) async fn probe(&self, timeout: Duration) -> Option<String> {
        let now = self.current.load(Ordering::Acquire);
        if self.answers(now, timeout).await {
            return None;
        }
        let n = self.members.len();
        for step in 1..n {
            let next = (now + step) % n;
            if self.answers(next, timeout).await {
                let (_, endpoint) = &self.members[next];
                if self
                    .changes
                    .send(Change::Insert(next, endpoint.clone()))
                    .await
                    .is_err()
                {
                    return None;
                }
                let _ = self.changes.send(Change::Remove(now)).await;
                self.current.store(next, Ordering::Release);
                return Some(self.members[next].0.clone());
            }
        }
        None
    }
}

/// Keeps the daemon on a replica that answers, until `stop`.
pub(super) async fn run(
    replicas: std::sync::Arc<Replicas>,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let timeout = every.clamp(Duration::from_millis(500), Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let from = replicas.current().to_string();
        if let Some(to) = replicas.probe(timeout).await {
            tracing::warn!(from = %from, to = %to, "broker replica not answering; moved to another");
        }
    }
}

//! The control API (`deconfliction.agent.v1.AgencyControl`) served on the Unix socket.

use std::sync::Arc;
use std::time::{Duration, Instant};

use deconfliction_proto::v1;
use deconfliction_proto::v1::broker_client::BrokerClient;
use tokio::sync::watch;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

use super::core::Core;
use super::epochs;
use super::link::Link;
use super::records::Action;
use super::store::{Batch, LAST_ALERT_SEQ, alert_key, match_federation_key};
use super::timing::now_unix;
use super::tokenize::{self, TokenizeError};
use super::views::{alert_view, op_view};
use super::{ops, watch as watch_feed};
use crate::control::pb;
use crate::control::pb::agency_control_server::AgencyControl;
use crate::control::selector_from_proto;
use crate::opfile::{
    MAX_LABEL_CHARS, OperationSpec, SelectorSpec, parse_operation_id, validate_selector,
};

/// Longest a control call waits for the broker's confirmation.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// The service; one per daemon.
pub struct ControlService {
    core: Arc<Core>,
    shutdown: watch::Receiver<bool>,
}

impl ControlService {
    /// The broker that holds match `id`: a joint federation's when its alerts came from one,
    /// else our own. Match ids are UUIDs, unique across brokers.
    /// Tells the broker holding each match that an officer acknowledged an alert about it
    /// (for the watch centre's view and an exercise's report). Best effort, in the
    /// background: the acknowledgement itself is local and already stored.
    fn tell_acknowledged(&self, matches: Vec<String>) {
        for id in matches {
            let Ok((mut broker, timeout)) = self.broker_of(&id) else {
                continue;
            };
            tokio::spawn(async move {
                let request = timed(
                    v1::AcknowledgeMatchRequest {
                        match_id: id.clone(),
                    },
                    timeout,
                );
                if let Err(s) = broker.acknowledge_match(request).await {
                    tracing::debug!(match_id = %id, code = ?s.code(), "acknowledgement not told to the broker");
                }
            });
        }
    }

    fn broker_of(&self, id: &str) -> Result<(BrokerClient<Channel>, Duration), Status> {
        let federation: Option<String> = self.core.store.get(&match_federation_key(id))?;
        let joint = federation.and_then(|f| self.core.joints.iter().find(|j| j.name == f));
        Ok(match joint {
            Some(j) => (j.broker.clone(), j.call_timeout),
            None => (self.core.link.broker.clone(), self.core.link.call_timeout),
        })
    }

    /// A service over `core`; `watch` streams end when `shutdown` turns true.
    pub fn new(core: Arc<Core>, shutdown: watch::Receiver<bool>) -> Self {
        Self { core, shutdown }
    }

    async fn reply(&self, acc: ops::Accepted, wait_ms: u32) -> Result<pb::OperationReply, Status> {
        if let Some(seq) = acc.outbox_seq {
            let wait = Duration::from_millis(u64::from(wait_ms)).min(MAX_WAIT);
            if !wait.is_zero() {
                self.core.wait_outbox(seq, wait).await;
            }
        }
        let op = self.core.store.op(&acc.op.id)?.unwrap_or(acc.op);
        Ok(pb::OperationReply {
            operation: Some(op_view(&self.core, &op)?),
            created: acc.created,
        })
    }
}

fn selectors_from_wire(list: &[pb::Selector]) -> Result<Vec<SelectorSpec>, Status> {
    list.iter()
        .enumerate()
        .map(|(i, s)| {
            let at = |e: String| Status::invalid_argument(format!("selectors[{i}]: {e}"));
            let (selector, label) = selector_from_proto(s).map_err(at)?;
            if label.chars().count() > MAX_LABEL_CHARS {
                return Err(at(format!(
                    "label longer than {MAX_LABEL_CHARS} characters"
                )));
            }
            validate_selector(&selector).map_err(|e| at(e.0))?;
            Ok(SelectorSpec { selector, label })
        })
        .collect()
}

fn window_from_wire(w: &v1::Window) -> (i64, i64) {
    (w.start_unix, w.end_unix)
}

/// UNAVAILABLE with advice, for a broker that cannot be reached now.
fn broker_status(core: &Core, status: Status) -> Status {
    if matches!(
        status.code(),
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Unknown
    ) {
        Status::unavailable(format!(
            "cannot reach the broker at {} ({}); try again when `deconflict status` shows it \
             reachable",
            core.link.address,
            core.link.describe(&status)
        ))
    } else {
        status
    }
}

fn match_id(id: &str) -> Result<String, Status> {
    let id = id.trim();
    if id.is_empty() {
        return Err(Status::invalid_argument(
            "match id missing (see deconflict alerts)",
        ));
    }
    Ok(id.to_owned())
}

type WatchStream = ReceiverStream<Result<pb::WatchEvent, Status>>;

/// A request with a deadline.
fn timed<T>(message: T, timeout: Duration) -> Request<T> {
    let mut r = Request::new(message);
    r.set_timeout(timeout);
    r
}

#[tonic::async_trait]
impl AgencyControl for ControlService {
    async fn register(
        &self,
        request: Request<pb::RegisterRequest>,
    ) -> Result<Response<pb::OperationReply>, Status> {
        let req = request.into_inner();
        let operation_id = match req.operation_id.trim() {
            "" => None,
            id => Some(parse_operation_id(id).map_err(|e| Status::invalid_argument(e.0))?),
        };
        let window = req
            .window
            .as_ref()
            .map(window_from_wire)
            .ok_or_else(|| Status::invalid_argument("window: missing"))?;
        let spec = OperationSpec {
            operation_id,
            case_reference: req.case_reference.clone(),
            window,
            selectors: selectors_from_wire(&req.selectors)?,
            release_to: req.release_to.clone(),
        };
        let source = if req.source.is_empty() {
            "control"
        } else {
            &req.source
        };
        let acc = ops::register(&self.core, spec, source).await?;
        Ok(Response::new(self.reply(acc, req.wait_ms).await?))
    }

    async fn amend(
        &self,
        request: Request<pb::AmendRequest>,
    ) -> Result<Response<pb::OperationReply>, Status> {
        let req = request.into_inner();
        let add = selectors_from_wire(&req.add_selectors)?;
        let window = req.window.as_ref().map(window_from_wire);
        let acc = ops::amend(
            &self.core,
            req.operation_id.trim(),
            add,
            req.remove_selector_ids.clone(),
            window,
        )
        .await?;
        Ok(Response::new(self.reply(acc, req.wait_ms).await?))
    }

    async fn close(
        &self,
        request: Request<pb::CloseRequest>,
    ) -> Result<Response<pb::OperationReply>, Status> {
        let req = request.into_inner();
        let acc = ops::close(&self.core, req.operation_id.trim()).await?;
        Ok(Response::new(self.reply(acc, req.wait_ms).await?))
    }

    async fn list_operations(
        &self,
        request: Request<pb::ListOperationsRequest>,
    ) -> Result<Response<pb::ListOperationsResponse>, Status> {
        let include_closed = request.into_inner().include_closed;
        let mut ops = self.core.store.ops()?;
        ops.retain(|o| include_closed || !o.closed);
        ops.sort_by_key(|o| (o.created_unix, o.id.clone()));
        let operations = ops
            .iter()
            .map(|o| op_view(&self.core, o))
            .collect::<Result<_, _>>()?;
        Ok(Response::new(pb::ListOperationsResponse { operations }))
    }

    async fn get_operation(
        &self,
        request: Request<pb::GetOperationRequest>,
    ) -> Result<Response<pb::LocalOperation>, Status> {
        let id = request.into_inner().operation_id;
        let op = self.core.store.op(id.trim())?.ok_or_else(|| {
            Status::not_found(format!(
                "no operation {id} in this agency (see deconflict ops --all)"
            ))
        })?;
        Ok(Response::new(op_view(&self.core, &op)?))
    }

    async fn check(
        &self,
        request: Request<pb::CheckRequest>,
    ) -> Result<Response<pb::CheckResponse>, Status> {
        let req = request.into_inner();
        let specs = selectors_from_wire(&req.selectors)?;
        if specs.is_empty() {
            return Err(Status::invalid_argument(
                "give at least one selector to check",
            ));
        }
        let now = now_unix();
        let window = req.window.unwrap_or(v1::Window {
            start_unix: now,
            end_unix: now + 3600,
        });
        let core = &self.core;
        // Asked afresh, not from what was last seen: a check is answered by the broker now,
        // so an officer whose broker is down is told that (not that tokens could not be
        // made), and the broker is still the federation this daemon serves (live or drill).
        let info = core
            .link
            .refresh_info(core.link.call_timeout)
            .await
            .map_err(|s| broker_status(core, s))?;
        let plan = core.link.plan().await.map_err(|s| broker_status(core, s))?;
        let params = Link::params(&info).map_err(Status::failed_precondition)?;
        let selectors: Vec<_> = specs.iter().map(|s| s.selector.clone()).collect();
        let tokens = tokenize::derive(core, &selectors, &params, &plan)
            .await
            .map_err(|e| match e {
                TokenizeError::Transient(m) => Status::unavailable(format!(
                    "cannot reach the token service now ({m}); try again when `deconflict \
                     status` shows it reachable"
                )),
                TokenizeError::Permanent(m) => Status::invalid_argument(m),
            })?;
        let mut unique: Vec<[u8; 32]> = Vec::new();
        let mut entries = Vec::new();
        for (sel, toks) in selectors.iter().zip(&tokens) {
            for (t, kind) in toks.iter().zip(tokenize::wire_kinds(sel, toks.len())) {
                if !unique.contains(t) {
                    unique.push(*t);
                    entries.push(v1::TokenEntry {
                        token: t.to_vec(),
                        kind,
                        local_ref: 0,
                    });
                }
            }
        }
        let hits = core
            .link
            .broker
            .clone()
            .check(core.link.request(v1::CheckRequest {
                window: Some(window),
                tokens: entries,
            }))
            .await
            .map_err(|s| broker_status(core, s))?
            .into_inner()
            .hits;
        let hit_of = |t: &[u8; 32]| {
            unique
                .iter()
                .position(|u| u == t)
                .and_then(|i| hits.get(i).copied())
                .unwrap_or(false)
        };
        let results = req
            .selectors
            .iter()
            .zip(&tokens)
            .enumerate()
            .map(|(i, (sel, toks))| pb::CheckResult {
                selector: Some(sel.clone()),
                index: i as u32,
                hit: toks.iter().any(hit_of),
            })
            .collect();
        tracing::info!(selectors = specs.len(), "check answered");
        Ok(Response::new(pb::CheckResponse { results }))
    }

    async fn list_alerts(
        &self,
        request: Request<pb::ListAlertsRequest>,
    ) -> Result<Response<pb::ListAlertsResponse>, Status> {
        let req = request.into_inner();
        let mut alerts: Vec<_> = self
            .core
            .store
            .alerts_after(req.after_seq, usize::MAX)?
            .into_iter()
            .filter(|a| req.include_acked || !a.acked)
            .filter(|a| req.match_id.is_empty() || a.match_id == req.match_id)
            .collect();
        if req.limit > 0 && alerts.len() > req.limit as usize {
            alerts.drain(..alerts.len() - req.limit as usize);
        }
        Ok(Response::new(pb::ListAlertsResponse {
            alerts: alerts.iter().map(alert_view).collect(),
        }))
    }

    async fn get_alert(
        &self,
        request: Request<pb::GetAlertRequest>,
    ) -> Result<Response<pb::AlertView>, Status> {
        let seq = request.into_inner().seq;
        let alert = self.core.store.alert(seq)?.ok_or_else(|| {
            Status::not_found(format!("no alert {seq} (see deconflict alerts --all)"))
        })?;
        Ok(Response::new(alert_view(&alert)))
    }

    async fn ack_alerts(
        &self,
        request: Request<pb::AckAlertsRequest>,
    ) -> Result<Response<pb::AckAlertsResponse>, Status> {
        let req = request.into_inner();
        let core = &self.core;
        let mut matches: Vec<String> = Vec::new();
        let (acked, unacked) = {
            let _writer = core.store.write_lock();
            let all = core.store.alerts_after(0, usize::MAX)?;
            if let Some(bad) = req.seqs.iter().find(|s| !all.iter().any(|a| a.seq == **s)) {
                return Err(Status::not_found(format!(
                    "no alert {bad} (see deconflict alerts --all)"
                )));
            }
            let mut batch = Batch::default();
            let mut acked = 0;
            let mut unacked = 0;
            for mut a in all {
                if !a.acked && (req.seqs.contains(&a.seq) || a.seq <= req.upto) {
                    a.acked = true;
                    batch.put(alert_key(a.seq), &a)?;
                    acked += 1;
                    if !a.match_id.is_empty() && !matches.contains(&a.match_id) {
                        matches.push(a.match_id.clone());
                    }
                } else if !a.acked {
                    unacked += 1;
                }
            }
            core.store.apply(batch)?;
            (acked, unacked)
        };
        core.store.flush().await?;
        self.tell_acknowledged(matches);
        Ok(Response::new(pb::AckAlertsResponse { acked, unacked }))
    }

    type WatchStream = WatchStream;

    async fn watch(
        &self,
        request: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let req = request.into_inner();
        let rx = watch_feed::start(self.core.clone(), req, self.shutdown.clone());
        Ok(Response::new(rx))
    }

    async fn identify(
        &self,
        _: Request<pb::IdentifyRequest>,
    ) -> Result<Response<pb::IdentifyResponse>, Status> {
        let link = &self.core.link;
        Ok(Response::new(pb::IdentifyResponse {
            daemon_version: env!("CARGO_PKG_VERSION").into(),
            drill_id: link.drill.clone().unwrap_or_default(),
            drill_name: link
                .info()
                .and_then(|i| i.drill)
                .map(|d| d.name)
                .unwrap_or_default(),
        }))
    }

    async fn status(
        &self,
        _: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        let core = &self.core;
        let timeout = Duration::from_millis(core.config.daemon.status_probe_timeout_ms.max(100));
        let started = Instant::now();
        let broker = core.link.refresh_info(timeout).await;
        let broker_ms = started.elapsed().as_millis() as u32;
        let started = Instant::now();
        let served = core.link.refresh_served(timeout).await;
        let token_ms = started.elapsed().as_millis() as u32;
        let info = core.link.info();
        let alerts = core.store.alerts_after(0, usize::MAX)?;
        let open_operations = core.store.ops()?.iter().filter(|o| !o.closed).count() as u64;
        let health = core.health();
        let pins = core.link.pins();
        let now = now_unix();
        let (plan, advice) = match &served {
            Ok(s) => (
                epochs::plan(&pins, s, now).map_err(|e| e.to_string()),
                epochs::advice(&pins, s, now).unwrap_or_default(),
            ),
            Err(e) => (Err(e.clone()), String::new()),
        };
        let previous = served.as_ref().ok().and_then(|s| s.previous(now));
        let mut joint = Vec::with_capacity(core.joints.len());
        for link in &core.joints {
            joint.push(link.probe(timeout).await);
        }
        let rederiving = core
            .store
            .outbox()?
            .iter()
            .filter(|i| matches!(i.action, Action::Rederive))
            .count() as u64;
        Ok(Response::new(pb::StatusResponse {
            daemon_version: env!("CARGO_PKG_VERSION").into(),
            agency_id: info
                .as_ref()
                .map(|i| i.agency_id.clone())
                .unwrap_or_default(),
            broker_address: core.link.address.clone(),
            broker: Some(pb::Reachability {
                reachable: broker.is_ok(),
                error: broker
                    .as_ref()
                    .err()
                    .map(|s| core.link.describe(s))
                    .unwrap_or_default(),
                latency_ms: broker_ms,
            }),
            token_service: Some(pb::Reachability {
                reachable: served.is_ok(),
                error: served.as_ref().err().cloned().unwrap_or_default(),
                latency_ms: token_ms,
            }),
            outbox_depth: core.store.outbox_len() as u64,
            outbox_error: health.outbox_error.unwrap_or_default(),
            pinned_key_epoch: pins.first().map_or(0, |p| p.epoch()),
            published_key_epoch: info.as_ref().map_or(0, |i| i.token_service_key_epoch),
            key_matches: plan.is_ok(),
            last_alert_seq: core.store.get_u64(LAST_ALERT_SEQ)?,
            unacked_alerts: alerts.iter().filter(|a| !a.acked).count() as u64,
            open_operations,
            subscribed: health.subscribed,
            previous_pinned_key_epoch: pins.get(1).map_or(0, |p| p.epoch()),
            served_key_epochs: served.as_ref().map(|s| s.epochs(now)).unwrap_or_default(),
            previous_key_valid_until_unix: previous.map_or(0, |(_, until)| until),
            deriving_key_epochs: plan.as_ref().map(|p| p.derive.clone()).unwrap_or_default(),
            key_error: plan.err().unwrap_or_default(),
            key_advice: advice,
            rederiving_operations: rederiving,
            joint,
            drill: info.as_ref().and_then(|i| i.drill.clone()).or_else(|| {
                core.link.drill.as_ref().map(|id| v1::DrillInfo {
                    drill_id: id.clone(),
                    ..Default::default()
                })
            }),
        }))
    }

    async fn send_message(
        &self,
        request: Request<pb::SendMessageRequest>,
    ) -> Result<Response<v1::MatchView>, Status> {
        let req = request.into_inner();
        let id = match_id(&req.match_id)?;
        let (mut broker, timeout) = self.broker_of(&id)?;
        let answer = broker
            .send_message(timed(
                v1::SendMessageRequest {
                    match_id: id,
                    text: req.text,
                },
                timeout,
            ))
            .await
            .map_err(|s| broker_status(&self.core, s))?
            .into_inner();
        Ok(Response::new(answer.r#match.unwrap_or_default()))
    }

    async fn disclose(
        &self,
        request: Request<pb::DiscloseRequest>,
    ) -> Result<Response<v1::MatchView>, Status> {
        let req = request.into_inner();
        let id = match_id(&req.match_id)?;
        let (mut broker, timeout) = self.broker_of(&id)?;
        broker
            .disclose(timed(
                v1::DiscloseRequest {
                    match_id: id,
                    card: req.card,
                },
                timeout,
            ))
            .await
            .map_err(|s| broker_status(&self.core, s))
    }

    async fn withdraw_disclosure(
        &self,
        request: Request<pb::MatchRequest>,
    ) -> Result<Response<v1::MatchView>, Status> {
        let id = match_id(&request.into_inner().match_id)?;
        let (mut broker, timeout) = self.broker_of(&id)?;
        broker
            .withdraw_disclosure(timed(
                v1::WithdrawDisclosureRequest { match_id: id },
                timeout,
            ))
            .await
            .map_err(|s| broker_status(&self.core, s))
    }

    async fn resolve_match(
        &self,
        request: Request<pb::ResolveMatchRequest>,
    ) -> Result<Response<v1::MatchView>, Status> {
        let req = request.into_inner();
        let id = match_id(&req.match_id)?;
        let (mut broker, timeout) = self.broker_of(&id)?;
        broker
            .resolve_match(timed(
                v1::ResolveMatchRequest {
                    match_id: id,
                    outcome: req.outcome,
                    note: req.note,
                },
                timeout,
            ))
            .await
            .map_err(|s| broker_status(&self.core, s))
    }

    async fn reopen_match(
        &self,
        request: Request<pb::MatchRequest>,
    ) -> Result<Response<v1::MatchView>, Status> {
        let id = match_id(&request.into_inner().match_id)?;
        let (mut broker, timeout) = self.broker_of(&id)?;
        broker
            .reopen_match(timed(v1::ReopenMatchRequest { match_id: id }, timeout))
            .await
            .map_err(|s| broker_status(&self.core, s))
    }

    async fn get_match(
        &self,
        request: Request<pb::MatchRequest>,
    ) -> Result<Response<v1::MatchView>, Status> {
        let id = match_id(&request.into_inner().match_id)?;
        let (mut broker, timeout) = self.broker_of(&id)?;
        broker
            .get_match(timed(v1::GetMatchRequest { match_id: id }, timeout))
            .await
            .map_err(|s| broker_status(&self.core, s))
    }
}

//! The alert subscription: `Subscribe(after = the broker seq last stored, its incarnation)`,
//! then for each alert: resolve it to our own operation and selectors, store it under the next
//! local seq and flush, tell the sinks and `watch`, and only then `Ack` it at the broker. A
//! crash at any point loses nothing (the broker keeps what was not acknowledged) and
//! duplicates nothing (alerts at or below the stored broker seq are skipped).
//!
//! A broker restored from a backup refuses the old place (FAILED_PRECONDITION, a new queue
//! incarnation): we start over from its queue's beginning. Alerts the backup still held and
//! we had already taken may then arrive again, under new local numbers: a restore may repeat,
//! never lose.

use std::sync::Arc;
use std::time::Duration;

use deconfliction_proto::v1;
use deconfliction_proto::v1::alert::Event;
use deconfliction_proto::v1::broker_client::BrokerClient;
use tokio::sync::watch;
use tonic::transport::Channel;

use super::core::Core;
use super::records::{AlertRecord, AlertSelector, CardRecord};
use super::store::{
    BROKER_ALERT_SEQ, BROKER_INCARNATION, Batch, LAST_ALERT_SEQ, StoreError, alert_key,
    match_federation_key, op_key,
};
use super::timing::{Backoff, now_unix};
use super::views::{alert_view, outcome_name, state_name};
use crate::control::pb;

/// Where alerts come from: our own broker, or a joint federation's.
#[derive(Clone)]
pub struct Feed {
    /// Empty for our own federation; else the joint federation's name.
    pub federation: String,
    pub broker: BrokerClient<Channel>,
    pub call_timeout: Duration,
}

impl Feed {
    /// Our own broker's alerts.
    pub fn home(core: &Core) -> Self {
        Self {
            federation: String::new(),
            broker: core.link.broker.clone(),
            call_timeout: core.link.call_timeout,
        }
    }

    fn keys(&self) -> (Vec<u8>, Vec<u8>) {
        if self.federation.is_empty() {
            (BROKER_ALERT_SEQ.to_vec(), BROKER_INCARNATION.to_vec())
        } else {
            let base = format!("m/joint/{}/", self.federation);
            (
                format!("{base}broker_alert_seq").into_bytes(),
                format!("{base}broker_incarnation").into_bytes(),
            )
        }
    }

    /// Where this broker's queue was left: (its seq, its incarnation).
    fn cursor(&self, core: &Core) -> Result<(u64, u64), StoreError> {
        if self.federation.is_empty() {
            return core.store.broker_cursor();
        }
        let (seq, incarnation) = self.keys();
        Ok((core.store.get_u64(&seq)?, core.store.get_u64(&incarnation)?))
    }

    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(message);
        r.set_timeout(self.call_timeout);
        r
    }
}

/// Runs until `shutdown` turns true.
pub async fn run(core: Arc<Core>, feed: Feed, mut shutdown: watch::Receiver<bool>) {
    let mut backoff = Backoff::new(core.retry_initial(), core.retry_max());
    loop {
        if *shutdown.borrow() {
            return;
        }
        match subscribe_once(&core, &feed, &mut shutdown, &mut backoff).await {
            Ok(true) => return,
            Ok(false) => {}
            Err(e) => tracing::error!(error = %e, "alerts: local store failure"),
        }
        if feed.federation.is_empty() {
            core.set_health(|h| h.subscribed = false);
        }
        let wait = backoff.next_wait();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// One subscription until it ends. Ok(true): shut down.
async fn subscribe_once(
    core: &Arc<Core>,
    feed: &Feed,
    shutdown: &mut watch::Receiver<bool>,
    backoff: &mut Backoff,
) -> Result<bool, StoreError> {
    if feed.federation.is_empty()
        && let Err(status) = core.link.refresh_info(feed.call_timeout).await
    {
        // Never take alerts from a broker of another federation (a drill's, or live).
        if status.code() == tonic::Code::FailedPrecondition {
            tracing::error!(reason = status.message(), "alerts: not subscribing");
        }
        return Ok(false);
    }
    let (after, incarnation) = feed.cursor(core)?;
    let mut broker = feed.broker.clone();
    let call = broker.subscribe(v1::SubscribeRequest { after, incarnation });
    let mut stream = tokio::select! {
        r = call => match r {
            Ok(r) => r.into_inner(),
            Err(status) if status.code() == tonic::Code::FailedPrecondition => {
                start_over(core, feed, after, incarnation, status.message()).await?;
                backoff.reset();
                return Ok(false);
            }
            Err(status) => {
                tracing::debug!(code = ?status.code(), message = status.message(), "alerts: cannot subscribe");
                return Ok(false);
            }
        },
        _ = shutdown.changed() => return Ok(true),
    };
    tracing::info!(after, incarnation, federation = %feed.federation, "alerts: subscribed");
    if feed.federation.is_empty() {
        core.set_health(|h| h.subscribed = true);
    }
    backoff.reset();
    loop {
        let next = tokio::select! {
            n = stream.message() => n,
            _ = shutdown.changed() => return Ok(true),
        };
        match next {
            Ok(Some(alert)) => handle(core, feed, alert).await?,
            Ok(None) => {
                tracing::info!("alerts: the broker ended the subscription");
                return Ok(false);
            }
            Err(status) => {
                tracing::info!(code = ?status.code(), "alerts: subscription broken");
                return Ok(false);
            }
        }
    }
}

/// The broker no longer has our place in its queue (it was restored from a backup): forget
/// the place, so that the next subscription reads the queue from its beginning.
async fn start_over(
    core: &Arc<Core>,
    feed: &Feed,
    after: u64,
    incarnation: u64,
    why: &str,
) -> Result<(), StoreError> {
    tracing::warn!(
        after,
        incarnation,
        federation = %feed.federation,
        "alerts: the broker's alert queue started over ({why}); reading it again from its \
         beginning: alerts may repeat, none is lost"
    );
    {
        let _writer = core.store.write_lock();
        let (seq_key, incarnation_key) = feed.keys();
        let mut batch = Batch::default();
        batch.put_u64(seq_key, 0);
        batch.put_u64(incarnation_key, 0);
        core.store.apply(batch)?;
    }
    core.store.flush().await
}

/// Stores one alert (if new), tells sinks and watchers, acknowledges it at the broker.
pub async fn handle(core: &Arc<Core>, feed: &Feed, alert: v1::Alert) -> Result<(), StoreError> {
    let record = {
        let _writer = core.store.write_lock();
        let (broker_seq, incarnation) = feed.cursor(core)?;
        let same_queue = incarnation == 0 || incarnation == alert.incarnation;
        if same_queue && alert.seq <= broker_seq {
            None
        } else {
            let seq = core.store.get_u64(LAST_ALERT_SEQ)? + 1;
            let mut record = resolve(core, &alert, seq)?;
            record.federation = feed.federation.clone();
            let (seq_key, incarnation_key) = feed.keys();
            let mut batch = Batch::default();
            batch.put(alert_key(seq), &record)?;
            batch.put_u64(LAST_ALERT_SEQ.to_vec(), seq);
            batch.put_u64(seq_key, alert.seq);
            batch.put_u64(incarnation_key, alert.incarnation);
            if !record.federation.is_empty() && !record.match_id.is_empty() {
                // So that the relay finds the broker holding the match without a scan.
                batch.put(match_federation_key(&record.match_id), &record.federation)?;
            }
            if let Some(mut op) = core.store.op(&record.operation_id)?
                && !record.match_id.is_empty()
                && !op.match_ids.contains(&record.match_id)
            {
                op.match_ids.push(record.match_id.clone());
                batch.put(op_key(&op.id), &op)?;
            }
            core.store.apply(batch)?;
            Some(record)
        }
    };
    if let Some(record) = record {
        let seq = record.seq;
        core.store.flush().await?;
        if core.config.sinks.log {
            tracing::info!(
                seq,
                exercise = record.exercise,
                federation = %record.federation,
                kind = %record.kind,
                match_id = %record.match_id,
                operation_id = %record.operation_id,
                selectors = record.selectors.len(),
                unresolved = record.unresolved_refs.len(),
                "alert"
            );
        }
        core.alerts_stored.send_replace(seq);
        core.publish(pb::watch_event::Event::Alert(alert_view(&record)));
    }
    let mut broker = feed.broker.clone();
    let ack = v1::AckRequest {
        upto: alert.seq,
        incarnation: alert.incarnation,
    };
    if let Err(status) = broker.ack(feed.request(ack)).await {
        // Harmless: the next subscription starts after the stored seq anyway.
        tracing::debug!(seq = alert.seq, code = ?status.code(), "alerts: ack failed");
    }
    Ok(())
}

fn kind_name(event: Option<&Event>) -> &'static str {
    match event {
        Some(Event::Match(_)) => "match",
        Some(Event::Checked(_)) => "checked",
        Some(Event::Message(_)) => "message",
        Some(Event::Contact(_)) => "contact",
        Some(Event::MatchState(_)) => "match_state",
        Some(Event::AlertsPurged(_)) => "alerts_purged",
        Some(Event::Drill(d)) if d.halted => "drill_halted",
        Some(Event::Drill(_)) => "drill_ended",
        None => "unknown",
    }
}

/// The alert in the agency's own terms, under local number `seq`.
fn resolve(core: &Core, alert: &v1::Alert, seq: u64) -> Result<AlertRecord, StoreError> {
    let mut rec = AlertRecord {
        seq,
        federation: String::new(),
        at_unix: alert.at_unix,
        received_unix: now_unix(),
        kind: kind_name(alert.event.as_ref()).into(),
        acked: false,
        match_id: String::new(),
        operation_id: String::new(),
        case_reference: String::new(),
        created: false,
        new_tokens: 0,
        selectors: Vec::new(),
        unresolved_refs: Vec::new(),
        pinyin_only: Vec::new(),
        text: None,
        card: None,
        state: None,
        outcome: None,
        note: None,
        by_you: false,
        drill_id: core.link.drill.clone().unwrap_or_default(),
        exercise: core.link.drill.is_some(),
    };
    let mut refs: Vec<u64> = Vec::new();
    match &alert.event {
        Some(Event::Match(m)) => {
            rec.match_id = m.match_id.clone();
            rec.operation_id = m.operation_id.clone();
            rec.created = m.created;
            rec.new_tokens = m.new_tokens;
            refs = m.tokens.iter().map(|t| t.local_ref).collect();
            rec.pinyin_only = pinyin_only(&m.tokens);
        }
        Some(Event::Checked(c)) => {
            rec.operation_id = c.operation_id.clone();
            refs = c.tokens.iter().map(|t| t.local_ref).collect();
            rec.pinyin_only = pinyin_only(&c.tokens);
        }
        Some(Event::Message(m)) => {
            rec.match_id = m.match_id.clone();
            rec.operation_id = m.operation_id.clone();
            rec.text = Some(m.text.clone());
        }
        Some(Event::Contact(c)) => {
            rec.match_id = c.match_id.clone();
            rec.operation_id = c.operation_id.clone();
            rec.card = Some(c.card.clone().map(card_record).unwrap_or_default());
        }
        Some(Event::MatchState(s)) => {
            rec.match_id = s.match_id.clone();
            rec.operation_id = s.operation_id.clone();
            rec.state = Some(state_name(s.state).into());
            rec.outcome = Some(outcome_name(s.outcome).into());
            rec.note = Some(s.note.clone());
            rec.by_you = s.by_you;
        }
        Some(Event::AlertsPurged(p)) => {
            rec.note = Some(format!(
                "{} alert(s) (#{} to #{}) were never acknowledged and the broker's retention \
                 removed them after {} days; list your operations' matches \
                 (deconflict ops ID) to see what they spoke of",
                p.count,
                p.first_seq,
                p.last_seq,
                p.older_than_seconds / 86_400
            ));
        }
        Some(Event::Drill(d)) if d.halted => {
            rec.note = Some(format!(
                "EXERCISE HALTED by the controller: {}. Stop all exercise activity now.",
                d.reason
            ));
        }
        Some(Event::Drill(_)) => {
            rec.note =
                Some("The exercise has ended; its data is being purged at the broker.".to_owned());
        }
        None => {}
    }
    if let Some(op) = core.store.op(&rec.operation_id)? {
        rec.case_reference = op.case_reference;
    }
    refs.sort_unstable();
    refs.dedup();
    for r in refs {
        match core.store.sel(r)? {
            Some(sel) => rec.selectors.push(AlertSelector {
                id: sel.id,
                selector: sel.selector,
                label: sel.label,
            }),
            None => rec.unresolved_refs.push(r),
        }
    }
    Ok(rec)
}

/// The selectors (local refs) all of whose matched tokens are a person's Pinyin form.
fn pinyin_only(tokens: &[v1::MatchedToken]) -> Vec<u64> {
    let pinyin = v1::SelectorKind::PersonPinyin as i32;
    let mut refs: Vec<u64> = tokens
        .iter()
        .filter(|t| t.kind == pinyin)
        .map(|t| t.local_ref)
        .filter(|r| !tokens.iter().any(|t| t.local_ref == *r && t.kind != pinyin))
        .collect();
    refs.sort_unstable();
    refs.dedup();
    refs
}

fn card_record(c: v1::ContactCard) -> CardRecord {
    CardRecord {
        unit_name: c.unit_name,
        officer: c.officer,
        phone: c.phone,
        secure_email: c.secure_email,
        note: c.note,
    }
}

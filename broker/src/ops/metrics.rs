//! Prometheus metrics: counts and ids only, never a token. Served as text on a loopback
//! port by [`serve`].

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AgencyLabel {
    pub agency: String,
}

/// Evaluations per agency and key epoch: during a rotation's overlap, who still derives under
/// the previous epoch.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EvaluationLabel {
    pub agency: String,
    pub key_epoch: u32,
}

/// Tokens per selector kind (`person`, `cnid`, `person_pinyin`, ...).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: String,
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub registrations: Counter,
    pub registered_tokens: Family<KindLabel, Counter>,
    pub amendments: Counter,
    pub closes: Counter,
    pub checks: Counter,
    pub check_hits: Counter,
    pub matches_created: Counter,
    pub matches_grown: Counter,
    pub alerts_delivered: Counter,
    pub token_evaluations: Family<EvaluationLabel, Counter>,
    pub refused_connections: Family<ReasonLabel, Counter>,
    pub refused_calls: Family<ReasonLabel, Counter>,
    pub alert_queue_depth: Family<AgencyLabel, Gauge>,
    pub store_bytes: Gauge,
    pub token_filter_bytes: Gauge,
    pub index_rebuild_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    pub crl_stale: Gauge,
    pub drills_running: Gauge,
    pub operations_expired: Counter,
    pub flush_seconds: Histogram,
    pub flush_group_size: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("deconfliction");
        let m = Self {
            registrations: Counter::default(),
            registered_tokens: Family::default(),
            amendments: Counter::default(),
            closes: Counter::default(),
            checks: Counter::default(),
            check_hits: Counter::default(),
            matches_created: Counter::default(),
            matches_grown: Counter::default(),
            alerts_delivered: Counter::default(),
            token_evaluations: Family::default(),
            refused_connections: Family::default(),
            refused_calls: Family::default(),
            alert_queue_depth: Family::default(),
            store_bytes: Gauge::default(),
            token_filter_bytes: Gauge::default(),
            index_rebuild_seconds: Gauge::default(),
            crl_stale: Gauge::default(),
            drills_running: Gauge::default(),
            operations_expired: Counter::default(),
            flush_seconds: Histogram::new([
                0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1, 0.5,
            ]),
            flush_group_size: Histogram::new([1.0, 2.0, 4.0, 8.0, 16.0, 64.0, 256.0]),
            registry: Registry::default(),
        };
        m.register_traffic(&mut registry);
        m.register_state(&mut registry);
        Self { registry, ..m }
    }

    /// What agencies ask of the broker and what it refuses.
    fn register_traffic(&self, r: &mut Registry) {
        r.register(
            "registrations",
            "Operations registered",
            self.registrations.clone(),
        );
        r.register(
            "registered_tokens",
            "Tokens registered or added, per selector kind",
            self.registered_tokens.clone(),
        );
        r.register("amendments", "Operations amended", self.amendments.clone());
        r.register("closes", "Operations closed", self.closes.clone());
        r.register("checks", "Hit/no-hit checks answered", self.checks.clone());
        r.register(
            "check_hits",
            "Checked tokens that hit",
            self.check_hits.clone(),
        );
        r.register(
            "matches_created",
            "Matches created",
            self.matches_created.clone(),
        );
        r.register(
            "matches_grown",
            "Matches that grew",
            self.matches_grown.clone(),
        );
        r.register(
            "alerts_delivered",
            "Alerts sent on Subscribe streams",
            self.alerts_delivered.clone(),
        );
        r.register(
            "token_evaluations",
            "Blinded elements evaluated, per agency and key epoch",
            self.token_evaluations.clone(),
        );
        r.register(
            "refused_connections",
            "TLS connections refused, by reason",
            self.refused_connections.clone(),
        );
        r.register(
            "refused_calls",
            "Calls refused, by reason",
            self.refused_calls.clone(),
        );
    }

    /// The broker's state: queues, store, indexes, certificates, durability.
    fn register_state(&self, r: &mut Registry) {
        r.register(
            "alert_queue_depth",
            "Unacknowledged alerts, per agency",
            self.alert_queue_depth.clone(),
        );
        r.register(
            "store_bytes",
            "Store size on disk",
            self.store_bytes.clone(),
        );
        r.register(
            "token_filter_bytes",
            "Memory of the filter over stored tokens (it grows in stages)",
            self.token_filter_bytes.clone(),
        );
        r.register(
            "index_rebuild_seconds",
            "How long the last start took to rebuild the in-memory indexes",
            self.index_rebuild_seconds.clone(),
        );
        r.register(
            "crl_stale",
            "1 while the CRL is past its next-update time (re-sign it: pki crl)",
            self.crl_stale.clone(),
        );
        r.register(
            "drills_running",
            "Exercises served beside the live federation now",
            self.drills_running.clone(),
        );
        r.register(
            "operations_expired",
            "Operations expired at window end",
            self.operations_expired.clone(),
        );
        r.register(
            "flush_seconds",
            "Group-commit flush latency",
            self.flush_seconds.clone(),
        );
        r.register(
            "flush_group_size",
            "Writes covered by one group flush",
            self.flush_group_size.clone(),
        );
    }

    pub fn connection_refused(&self, reason: &str) {
        self.refused_connections
            .get_or_create(&ReasonLabel {
                reason: reason.to_owned(),
            })
            .inc();
    }

    pub fn call_refused(&self, reason: &str) {
        self.refused_calls
            .get_or_create(&ReasonLabel {
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Counts registered tokens by their selector kind (the wire number): tallied per kind
    /// first, so a registration of thousands of tokens touches each label once.
    pub fn tokens_registered(&self, kinds: impl IntoIterator<Item = i32>) {
        let mut per_kind = std::collections::BTreeMap::<i32, u64>::new();
        for kind in kinds {
            *per_kind.entry(kind).or_default() += 1;
        }
        for (kind, n) in per_kind {
            let name = deconfliction_proto::v1::SelectorKind::try_from(kind)
                .map(|k| {
                    k.as_str_name()
                        .trim_start_matches("SELECTOR_KIND_")
                        .to_ascii_lowercase()
                })
                .unwrap_or_else(|_| "unknown".into());
            self.registered_tokens
                .get_or_create(&KindLabel { kind: name })
                .inc_by(n);
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// Serves `GET /metrics` (any path, in fact) as Prometheus text until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    let app = axum::Router::new().fallback(move || {
        let metrics = metrics.clone();
        async move {
            (
                [(
                    axum::http::header::CONTENT_TYPE,
                    "text/plain; version=0.0.4",
                )],
                metrics.render(),
            )
        }
    });
    let stop = async move {
        let _ = shutdown.wait_for(|s| *s).await;
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
    {
        tracing::error!(error = %e, "metrics endpoint stopped");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn serves_prometheus_text_over_http_and_stops_on_shutdown() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let metrics = Arc::new(Metrics::new());
        metrics.call_refused("role");
        let (stop, stopped) = watch::channel(false);
        let server = tokio::spawn(serve(listener, metrics, stopped));

        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        conn.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.contains("text/plain; version=0.0.4"), "{answer}");
        assert!(answer.contains("reason=\"role\""), "{answer}");

        stop.send(true).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), server)
            .await
            .unwrap()
            .unwrap();
    }
}

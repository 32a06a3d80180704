//! The watch centre's console (`deconflict-broker console serve`): web pages for the watch
//! officers, served by a process that holds the watch centre's client certificate and calls
//! the broker's `Oversight` service over mutual TLS, like any other watch-centre client.
//!
//! It sees only what `Oversight` answers (match metadata, progress, the watch centre's own
//! claims and notes, the agency board): never a token, a message, a card or a case
//! reference. It does not reach into the ledger or the store, even when it runs in the same
//! process as a broker (a test), and an architecture test keeps it that way.
//!
//! Modules: `config` (console.toml), `link` (the Oversight channel and the poller keeping the
//! latest snapshot), `queue`, `detail`,
//! `board` and `stats` (the pages), `events` (live updates by server-sent events), `words`
//! (the catalogue's names for kinds, states and outcomes).

mod board;
pub mod config;
mod detail;
mod events;
pub mod link;
mod queue;
mod stats;
mod words;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use deconfliction_proto::v1::oversight_client::OversightClient;
use deconfliction_web::Lang;
use deconfliction_web::accounts::Accounts;
use deconfliction_web::auth::{Ctx, Gatekeeper, Site};
use deconfliction_web::clock::Clock;
use deconfliction_web::layout::Shell;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tonic::transport::Channel;

pub use config::ConsoleConfig;
use link::Snapshot;

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Link(#[from] link::LinkError),
    #[error(transparent)]
    Serve(#[from] deconfliction_web::serve::ServeError),
    #[error(transparent)]
    Accounts(#[from] deconfliction_web::accounts::AccountError),
}

/// Unix seconds now.
pub(crate) fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Everything the pages share.
pub(crate) struct State {
    gate: Gatekeeper,
    clock: Clock,
    escalate_secs: i64,
    snapshot: watch::Receiver<Arc<Snapshot>>,
    poke: Arc<Notify>,
    client: OversightClient<Channel>,
}

type Shared = Arc<State>;

impl Site for State {
    fn gate(&self) -> &Gatekeeper {
        &self.gate
    }

    fn sign_in_hint(&self, lang: Lang) -> String {
        lang.t("console.sign_in_hint")
    }

    fn record(&self, officer: &str, action: &'static str) {
        tracing::info!(officer, action, "watch officer session");
    }

    fn shell(&self, ctx: &Ctx, title: String, active: &str) -> Shell {
        const NAV: [(&str, &str); 3] = [
            ("/", "console.nav.queue"),
            ("/agencies", "console.nav.agencies"),
            ("/stats", "console.nav.stats"),
        ];
        let lang = ctx.lang;
        let banner = self.snapshot.borrow().error.as_ref().map(|e| {
            maud::html! { (lang.tf("console.broker_unreachable", &[("reason", e)])) }
        });
        ctx.shell("console.product", title, &NAV, active, banner)
    }
}

/// A console serving.
pub struct RunningConsole {
    pub addr: SocketAddr,
    /// `http://…` on loopback, `https://…` with TLS.
    pub url: String,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for RunningConsole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningConsole")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl RunningConsole {
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }

    /// Resolves when the console has stopped (a signal or [`RunningConsole::shutdown`]).
    pub async fn wait(self) {
        for t in self.tasks {
            let _ = t.await;
        }
    }

    pub fn stopper(&self) -> watch::Sender<bool> {
        self.shutdown.clone()
    }
}

/// Starts the console: binds its port, starts polling the broker, serves the pages.
pub async fn start(config: ConsoleConfig) -> Result<RunningConsole, ConsoleError> {
    config.check().map_err(ConsoleError::Config)?;
    let c = &config.console;
    let accounts = Accounts::new(&c.officers);
    // A damaged officers file is refused at start, not at the first sign-in.
    let officers = accounts.list()?;
    if officers.is_empty() {
        tracing::warn!(
            file = %c.officers.display(),
            "no officer can sign in yet: add one with `deconflict-broker console officers add`"
        );
    }
    let tls = match (&c.tls_cert, &c.tls_key) {
        (Some(cert), Some(key)) => Some(deconfliction_web::serve::tls_config(cert, key)?),
        _ => None,
    };
    let listener = deconfliction_web::serve::bind(c.listen, tls.as_ref()).await?;
    let addr = listener
        .local_addr()
        .map_err(|e| ConsoleError::Config(e.to_string()))?;
    let url = format!("{}://{addr}", if tls.is_some() { "https" } else { "http" });
    let client = link::oversight(&config.broker)?;
    let (shutdown, shutdown_rx) = watch::channel(false);
    let (snapshot_tx, snapshot) = watch::channel(Arc::new(Snapshot::default()));
    let poke = Arc::new(Notify::new());
    let state = Arc::new(State {
        gate: Gatekeeper::new(
            accounts,
            Duration::from_secs(c.session_idle_minutes * 60),
            config.language().map_err(ConsoleError::Config)?,
            tls.is_some(),
        ),
        clock: config.clock().map_err(ConsoleError::Config)?,
        escalate_secs: i64::from(c.escalate_within_hours) * 3600,
        snapshot,
        poke: poke.clone(),
        client: client.clone(),
    });
    let poller = tokio::spawn(link::poll(
        client,
        Duration::from_millis(c.refresh_millis),
        snapshot_tx,
        poke,
        shutdown_rx.clone(),
    ));
    let server = tokio::spawn(deconfliction_web::serve::serve(
        listener,
        tls,
        router(state),
        shutdown_rx,
    ));
    tracing::info!(%addr, officers = officers.len(), "watch centre console serving");
    Ok(RunningConsole {
        addr,
        url,
        shutdown,
        tasks: vec![poller, server],
    })
}

fn router(state: Shared) -> Router {
    let pages = Router::new()
        .route("/", get(queue::page))
        .route("/matches/{id}", get(detail::page))
        .route("/matches/{id}/claim", post(detail::claim))
        .route("/matches/{id}/release", post(detail::release))
        .route("/matches/{id}/escalate", post(detail::escalate))
        .route("/matches/{id}/note", post(detail::note))
        .route("/agencies", get(board::page))
        .route("/stats", get(stats::page))
        .route("/events", get(events::stream))
        .merge(deconfliction_web::auth::routes::<State>())
        .with_state(state);
    deconfliction_web::layout::finish(pages)
}

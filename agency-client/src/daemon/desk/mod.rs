//! The duty desk: web pages for an agency's duty officers, served by agencyd itself (it holds
//! the agency's plaintext, so alerts can say "your phone +86 138 … in case 2026-114"). Off
//! unless `[desk] enabled = true`.
//!
//! The desk is a client of the control API, in process: every page calls
//! [`ControlService`] exactly as the `deconflict` CLI does over the socket, so a form is
//! checked by the same normalization and refused with the same words. Only its journal
//! (who did what at the desk) is its own.
//!
//! Modules: `alerts` (alerts as they arrive, acknowledge), `matches` (one match: the
//! conversation, disclosure with a confirmation step, resolution), `operations` (list,
//! search, one operation, close, amend), `form` (the selector rows of the register and amend
//! forms), `import` (a batch file with a progress bar), `status` (the link), `events` (live
//! regions), `map` (places over province outlines), `journal`, `words`.

mod alerts;
mod events;
mod form;
mod import;
pub(crate) mod journal;
mod map;
mod matches;
mod operations;
mod status;
mod words;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use deconfliction_web::Lang;
use deconfliction_web::accounts::Accounts;
use deconfliction_web::auth::{Ctx, Gatekeeper, Site};
use deconfliction_web::clock::Clock;
use deconfliction_web::layout::Shell;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_stream::StreamExt;
use tonic::Request;

use super::core::Core;
use super::service::ControlService;
use crate::control::pb;
use crate::control::pb::agency_control_server::AgencyControl;

/// Everything the desk's pages share.
pub(crate) struct Desk {
    gate: Gatekeeper,
    clock: Clock,
    control: ControlService,
    core: Arc<Core>,
    /// Bumped at every alert or operation event (and by an import's progress), for the live
    /// regions.
    changes: watch::Receiver<u64>,
    bump: watch::Sender<u64>,
    imports: import::Imports,
}

type Shared = Arc<Desk>;

impl Site for Desk {
    fn gate(&self) -> &Gatekeeper {
        &self.gate
    }

    fn sign_in_hint(&self, lang: Lang) -> String {
        lang.t("desk.sign_in_hint")
    }

    fn record(&self, officer: &str, action: &'static str) {
        tracing::info!(officer, action, "duty officer session");
    }

    fn shell(&self, ctx: &Ctx, title: String, active: &str) -> Shell {
        const NAV: [(&str, &str); 5] = [
            ("/", "desk.nav.alerts"),
            ("/operations", "desk.nav.operations"),
            ("/operations/new", "desk.nav.register"),
            ("/import", "desk.nav.import"),
            ("/status", "desk.nav.status"),
        ];
        let lang = ctx.lang;
        let banner = self.core.link.drill.as_ref().map(|id| {
            maud::html! { (lang.tf("desk.exercise", &[("drill", id)])) }
        });
        ctx.shell("desk.product", title, &NAV, active, banner)
    }
}

impl Desk {
    /// A control call's answer, or its refusal in the daemon's own words.
    fn refusal(status: &tonic::Status) -> String {
        status.message().to_owned()
    }

    /// The federation's H3 parameters (the broker's, once it was reached; else the spec's
    /// defaults), for drawing the cells a place's tokens come from.
    fn h3_params(&self) -> token_spec::normalize::FederationParams {
        self.core
            .link
            .info()
            .and_then(|info| super::link::Link::params(&info).ok())
            .unwrap_or_default()
    }

    /// The map of the geo selectors among `selectors` (None when there is none).
    fn map_of(
        &self,
        lang: Lang,
        selectors: &[pb::Selector],
        matched: bool,
    ) -> Option<maud::Markup> {
        let places: Vec<map::Place> = selectors
            .iter()
            .filter_map(|s| match &s.kind {
                Some(pb::selector::Kind::Geo(g)) => Some(map::Place {
                    lat: g.lat,
                    lng: g.lng,
                    label: if s.label.is_empty() {
                        format!("{:.4}, {:.4}", g.lat, g.lng)
                    } else {
                        s.label.clone()
                    },
                    matched,
                }),
                _ => None,
            })
            .collect();
        if places.is_empty() {
            return None;
        }
        let maps = map::draw(lang, &places, self.h3_params());
        Some(maud::html! {
            h2 { (lang.t("desk.map.title")) }
            div.maps #map {
                @for svg in maps { div.chart { (deconfliction_web::layout::trusted(svg)) } }
            }
            p.hint { (lang.t(if matched { "desk.map.matched_hint" } else { "desk.map.hint" })) }
        })
    }

    async fn journal(
        &self,
        session: &deconfliction_web::session::Session,
        entry: journal::DeskAction,
    ) {
        let entry = journal::DeskAction {
            officer: session.officer.clone(),
            label: session.label.clone(),
            ..entry
        };
        if let Err(e) = journal::record(&self.core.store, entry).await {
            tracing::error!(error = %e, "the duty desk's journal could not be written");
        }
    }
}

/// The desk serving, as part of a daemon.
pub(crate) struct RunningDesk {
    pub addr: SocketAddr,
    pub tasks: Vec<JoinHandle<()>>,
}

/// Starts the desk: binds its port, follows the daemon's events, serves the pages until
/// `shutdown`.
pub(crate) async fn start(
    core: Arc<Core>,
    control: ControlService,
    shutdown: watch::Receiver<bool>,
) -> Result<RunningDesk, String> {
    let config = core.config.desk.clone();
    let accounts = Accounts::new(core.config.desk_officers_path());
    let officers = accounts.list().map_err(|e| e.to_string())?;
    if officers.is_empty() {
        tracing::warn!(
            file = %accounts.path().display(),
            "no duty officer can sign in yet: add one with `agencyd desk-officers add`"
        );
    }
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => {
            Some(deconfliction_web::serve::tls_config(cert, key).map_err(|e| e.to_string())?)
        }
        _ => None,
    };
    let listener = deconfliction_web::serve::bind(config.listen, tls.as_ref())
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let (bump, changes) = watch::channel(0u64);
    let desk = Arc::new(Desk {
        gate: Gatekeeper::new(
            accounts,
            Duration::from_secs(config.session_idle_minutes * 60),
            Lang::parse(&config.language).unwrap_or(Lang::ZhCn),
            tls.is_some(),
        ),
        clock: Clock::parse(&config.time_zone).unwrap_or_default(),
        control,
        core,
        changes,
        bump,
        imports: import::Imports::default(),
    });
    let follower = tokio::spawn(follow(desk.clone(), shutdown.clone()));
    let server = tokio::spawn(deconfliction_web::serve::serve(
        listener,
        tls,
        router(desk),
        shutdown,
    ));
    tracing::info!(%addr, officers = officers.len(), "duty desk serving");
    Ok(RunningDesk {
        addr,
        tasks: vec![follower, server],
    })
}

/// Follows the daemon's own event feed (the one `deconflict watch` reads) and bumps the
/// change counter at every event (an alert stored, an operation confirmed or refused); a feed
/// that ends is followed again a second later. Countdowns and ages move with the live
/// streams' own refresh, not here.
async fn follow(desk: Shared, mut shutdown: watch::Receiver<bool>) {
    loop {
        let request = Request::new(pb::WatchRequest {
            after_seq: 0,
            backlog: false,
        });
        match desk.control.watch(request).await {
            Ok(stream) => {
                let mut stream = stream.into_inner();
                loop {
                    tokio::select! {
                        event = stream.next() => match event {
                            Some(_) => desk.bump.send_modify(|n| *n += 1),
                            None => break,
                        },
                        _ = shutdown.wait_for(|s| *s) => return,
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "the duty desk cannot follow the daemon's events"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

fn router(desk: Shared) -> Router {
    let pages = Router::new()
        .route("/", get(alerts::page))
        .route("/alerts/ack", post(alerts::ack))
        .route("/matches/{id}", get(matches::page))
        .route(
            "/matches/{id}/disclose",
            get(matches::disclose_form).post(matches::disclose),
        )
        .route("/matches/{id}/{verb}", post(matches::change))
        .route("/operations", get(operations::list))
        .route(
            "/operations/new",
            get(operations::new_form).post(operations::register),
        )
        .route("/operations/{id}", get(operations::page))
        .route("/operations/{id}/close", post(operations::close))
        .route("/operations/{id}/amend", post(operations::amend))
        .route("/import", get(import::form).post(import::upload))
        .route("/import/{id}", get(import::progress))
        .route("/status", get(status::page))
        .route("/events", get(events::stream))
        .merge(deconfliction_web::auth::routes::<Desk>())
        .with_state(desk);
    deconfliction_web::layout::finish(pages)
}

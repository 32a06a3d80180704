//! The link as the desk sees it: the broker reachable or not, the token service and its key
//! epoch, the outbox and its last error, the alert subscription.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use deconfliction_web::auth::Site;
use deconfliction_web::layout::{self, notice};
use maud::html;
use tonic::Request;

use super::Shared;
use crate::control::pb;
use crate::control::pb::agency_control_server::AgencyControl;

pub(crate) async fn page(State(desk): State<Shared>, headers: HeaderMap) -> Response {
    let (ctx, _) = match desk.gate.require(&headers, "/status") {
        Ok(pair) => pair,
        Err(r) => return r,
    };
    let lang = ctx.lang;
    let shell = desk.shell(&ctx, lang.t("desk.status.title"), "/status");
    let status = desk
        .control
        .status(Request::new(pb::StatusRequest {}))
        .await;
    let reach = |r: &Option<pb::Reachability>| {
        let r = r.clone().unwrap_or_default();
        html! {
            @if r.reachable {
                span.badge.ok { (lang.t("desk.status.reachable")) } " " span.muted { (r.latency_ms) " ms" }
            } @else {
                span.badge.danger { (lang.t("desk.status.unreachable")) } " " (r.error)
            }
        }
    };
    let body = match status {
        Err(e) => notice("error", e.message()),
        Ok(s) => {
            let s = s.into_inner();
            html! {
                table #link-status { tbody {
                    tr { th { (lang.t("desk.status.agency")) } td { (s.agency_id) } }
                    tr { th { (lang.t("desk.status.broker")) } td { (s.broker_address) br; (reach(&s.broker)) } }
                    tr { th { (lang.t("desk.status.token_service")) } td { (reach(&s.token_service)) } }
                    tr { th { (lang.t("desk.status.key_epoch")) } td {
                        (lang.tf("desk.status.epochs", &[("pinned", &s.pinned_key_epoch.to_string()), ("published", &s.published_key_epoch.to_string())]))
                        @if !s.key_error.is_empty() { br; span.field-error { (s.key_error) } }
                        @if !s.key_advice.is_empty() { br; span.muted { (s.key_advice) } }
                    } }
                    tr { th { (lang.t("desk.status.outbox")) } td {
                        (s.outbox_depth)
                        @if !s.outbox_error.is_empty() { br; span.field-error { (s.outbox_error) } }
                    } }
                    tr { th { (lang.t("desk.status.subscription")) } td {
                        @if s.subscribed { span.badge.ok { (lang.t("desk.status.live")) } } @else { span.badge.warn { (lang.t("desk.status.not_live")) } }
                    } }
                    tr { th { (lang.t("desk.status.alerts")) } td { (lang.tf("desk.status.alert_counts", &[("last", &s.last_alert_seq.to_string()), ("unacked", &s.unacked_alerts.to_string())])) } }
                    tr { th { (lang.t("desk.status.operations")) } td { (s.open_operations) } }
                } }
            }
        }
    };
    layout::page(&shell, body).into_response()
}

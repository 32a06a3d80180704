//! Statistics with pictures: matches per day over the last four weeks, stacked by agency (a
//! provincial bureau is an agency), the open matches per agency, and the outcomes of the
//! resolved ones. Drawn by the server as SVG from the same snapshot as the queue.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use deconfliction_web::auth::Site;
use deconfliction_web::layout::{self, trusted};
use deconfliction_web::svg;
use maud::html;

use super::{Shared, words};

const DAYS: i64 = 28;

pub(crate) async fn page(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let (ctx, _session) = match state.gate.require(&headers, "/stats") {
        Ok(pair) => pair,
        Err(r) => return r,
    };
    let lang = ctx.lang;
    let s = state.snapshot.borrow().clone();
    let now = super::now();
    let clock = state.clock;
    let first_day = clock.day_start(now) - (DAYS - 1) * 86_400;
    let columns: Vec<String> = (0..DAYS)
        .map(|d| clock.day(first_day + d * 86_400 + 3600))
        .collect();
    // A match counts for each agency it involves (once for a match within one agency).
    let mut per_agency: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut open_per_agency: BTreeMap<String, u64> = BTreeMap::new();
    let mut outcomes: BTreeMap<String, u64> = BTreeMap::new();
    for m in &s.matches {
        let mut agencies = m.agency_ids.clone();
        agencies.dedup();
        let day = (m.created_unix - first_day).div_euclid(86_400);
        for a in &agencies {
            if (0..DAYS).contains(&day) {
                let row = per_agency
                    .entry(a.clone())
                    .or_insert_with(|| vec![0; DAYS as usize]);
                row[day as usize] += 1;
            }
            if !words::is_resolved(m) {
                *open_per_agency.entry(a.clone()).or_default() += 1;
            }
        }
        if words::is_resolved(m) {
            *outcomes.entry(words::outcome(lang, m.outcome)).or_default() += 1;
        }
    }
    let series: Vec<String> = per_agency
        .keys()
        .map(|a| s.agency_name(a).to_owned())
        .collect();
    let values: Vec<Vec<u64>> = per_agency.into_values().collect();
    let per_day = svg::stacked_bars(&lang.t("console.stats.per_day"), &columns, &series, &values);
    let open_rows: Vec<(String, u64)> = open_per_agency
        .into_iter()
        .map(|(a, n)| (s.agency_name(&a).to_owned(), n))
        .collect();
    let open_chart = svg::bars(&lang.t("console.stats.open_per_agency"), &open_rows);
    let outcome_rows: Vec<(String, u64)> = outcomes.into_iter().collect();
    let outcome_chart = svg::bars(&lang.t("console.stats.outcomes"), &outcome_rows);
    let shell = state.shell(&ctx, lang.t("console.stats.title"), "/stats");
    let body = html! {
        p.hint { (lang.tf("console.stats.hint", &[("days", &DAYS.to_string()), ("zone", &clock.zone())])) }
        h2 { (lang.t("console.stats.per_day")) }
        div.chart #chart-per-day { (trusted(per_day)) }
        h2 { (lang.t("console.stats.open_per_agency")) }
        @if open_rows.is_empty() { p.muted { (lang.t("console.queue.empty")) } }
        @else { div.chart #chart-open { (trusted(open_chart)) } }
        h2 { (lang.t("console.stats.outcomes")) }
        @if outcome_rows.is_empty() { p.muted { (lang.t("console.queue.none_resolved")) } }
        @else { div.chart #chart-outcomes { (trusted(outcome_chart)) } }
    };
    layout::page(&shell, body).into_response()
}

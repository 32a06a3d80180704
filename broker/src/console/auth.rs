//! Signing in and out, the session every page but the sign-in form needs, the CSRF check on
//! every form, and the language switch.

// The `Err` of these checks is the handler's early answer (a redirect, a refusal), returned
// once per request: boxing it would buy nothing.
#![allow(clippy::result_large_err)]

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::header::{LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use deconfliction_web::Lang;
use deconfliction_web::accounts::SignInRefused;
use deconfliction_web::i18n::LANG_COOKIE;
use deconfliction_web::layout::{notice, page, url_path};
use deconfliction_web::session::{
    SESSION_COOKIE, SIGN_IN_COOKIE, Session, cookie, random_token, same_secret, set_cookie,
};
use maud::html;
use serde::Deserialize;

use super::{Ctx, Shared};

/// A redirect after a form (303: the browser follows with a GET).
pub(crate) fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(LOCATION, url_path(to))]).into_response()
}

/// The request's session, or a redirect to the sign-in form that comes back here. An officer
/// removed from the officers file is signed out at their next request.
pub(crate) fn require(
    state: &Shared,
    headers: &HeaderMap,
    path: &str,
) -> Result<(Ctx, Session), Response> {
    let ctx = state.ctx(headers, path);
    let Some(session) = ctx.session.clone() else {
        return Err(see_other(&format!("/login?next={}", url_path(path))));
    };
    match state.accounts.officer(&session.officer) {
        Ok(Some(_)) => Ok((ctx, session)),
        Ok(None) => {
            state.sessions.end_officer(&session.officer);
            Err(see_other("/login"))
        }
        Err(e) => Err((StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response()),
    }
}

/// Refuses a form whose CSRF token is not its session's (a post forged by another site).
pub(crate) fn check_csrf(ctx: &Ctx, session: &Session, sent: &str) -> Result<(), Response> {
    if same_secret(&session.csrf, sent) {
        return Ok(());
    }
    tracing::warn!(officer = %session.officer, "console form refused: CSRF token missing or wrong");
    Err(forbidden(ctx.lang))
}

pub(crate) fn forbidden(lang: Lang) -> Response {
    (
        StatusCode::FORBIDDEN,
        html! {
            (maud::DOCTYPE)
            html lang=(lang.tag()) {
                head { meta charset="utf-8"; title { (lang.t("common.forbidden_title")) } link rel="stylesheet" href="/static/web.css"; }
                body { main { h1 { (lang.t("common.forbidden_title")) } p { (lang.t("common.forbidden_text")) } a href="/" { (lang.t("common.back")) } } }
            }
        },
    )
        .into_response()
}

#[derive(Debug, Deserialize, Default)]
pub(crate) struct Next {
    #[serde(default)]
    next: String,
}

pub(crate) async fn login_form(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<Next>,
) -> Response {
    let ctx = state.ctx(&headers, "/login");
    render_login(&state, &ctx, &q.next, None, StatusCode::OK)
}

fn render_login(
    state: &Shared,
    ctx: &Ctx,
    next: &str,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let lang = ctx.lang;
    let token = random_token();
    let shell = state.shell(ctx, lang.t("console.sign_in.title"), "");
    let body = html! {
        div.login.panel {
            @if let Some(e) = &error { (notice("error", e)) }
            form.stack method="post" action="/login" {
                input type="hidden" name="csrf" value=(token);
                input type="hidden" name="next" value=(url_path(if next.is_empty() { "/" } else { next }));
                label for="name" { (lang.t("common.officer_name")) }
                input #name type="text" name="name" autocomplete="username" required autofocus;
                label for="password" { (lang.t("common.password")) }
                input #password type="password" name="password" autocomplete="current-password" required;
                div.actions { button type="submit" { (lang.t("common.sign_in_button")) } }
            }
            p.hint { (lang.t("console.sign_in.hint")) }
        }
    };
    let cookie = set_cookie(SIGN_IN_COOKIE, &token, state.secure_cookies, Some(600));
    (status, [(SET_COOKIE, cookie)], page(&shell, body)).into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
}

pub(crate) async fn login(
    State(state): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let ctx = state.ctx(&headers, "/login");
    let paired = cookie(&headers, SIGN_IN_COOKIE).is_some_and(|c| same_secret(c, &form.csrf));
    if !paired {
        tracing::warn!("console sign-in refused: CSRF token missing or wrong");
        return forbidden(ctx.lang);
    }
    let attempt = {
        let state = state.clone();
        let (name, password) = (form.name.clone(), form.password.clone());
        // Argon2 takes tens of milliseconds: off the async threads.
        tokio::task::spawn_blocking(move || {
            state.sign_in.attempt(&state.accounts, &name, &password)
        })
        .await
    };
    let lang = ctx.lang;
    match attempt {
        Ok(Ok(officer)) => {
            let (id, _) = state.sessions.start(&officer.name, &officer.label());
            tracing::info!(officer = %officer.name, "watch officer signed in");
            let cookie = set_cookie(SESSION_COOKIE, &id, state.secure_cookies, None);
            let gone = set_cookie(SIGN_IN_COOKIE, "", state.secure_cookies, Some(0));
            let mut response = see_other(if form.next.is_empty() {
                "/"
            } else {
                &form.next
            });
            let headers = response.headers_mut();
            for c in [cookie, gone] {
                if let Ok(v) = c.parse() {
                    headers.append(SET_COOKIE, v);
                }
            }
            response
        }
        Ok(Err(SignInRefused::Wrong)) => {
            tracing::info!(officer = %form.name.trim(), "watch officer sign-in refused: wrong name or password");
            render_login(
                &state,
                &ctx,
                &form.next,
                Some(lang.t("common.sign_in_wrong")),
                StatusCode::UNAUTHORIZED,
            )
        }
        Ok(Err(SignInRefused::Locked(left))) => {
            let minutes = left.as_secs().div_ceil(60).to_string();
            render_login(
                &state,
                &ctx,
                &form.next,
                Some(lang.tf("common.sign_in_locked", &[("minutes", &minutes)])),
                StatusCode::TOO_MANY_REQUESTS,
            )
        }
        Ok(Err(SignInRefused::Unavailable(reason))) => render_login(
            &state,
            &ctx,
            &form.next,
            Some(reason),
            StatusCode::SERVICE_UNAVAILABLE,
        ),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "sign-in failed").into_response(),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

pub(crate) async fn logout(
    State(state): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<CsrfOnly>,
) -> Response {
    let (ctx, session) = match require(&state, &headers, "/") {
        Ok(pair) => pair,
        Err(r) => return r,
    };
    if let Err(r) = check_csrf(&ctx, &session, &form.csrf) {
        return r;
    }
    state.sessions.end(&headers);
    tracing::info!(officer = %session.officer, "watch officer signed out");
    let mut response = see_other("/login");
    if let Ok(v) = set_cookie(SESSION_COOKIE, "", state.secure_cookies, Some(0)).parse() {
        response.headers_mut().append(SET_COOKIE, v);
    }
    response
}

/// The language switch: remembered in a cookie for a year.
pub(crate) async fn language(
    State(state): State<Shared>,
    Path(tag): Path<String>,
    Query(q): Query<Next>,
) -> Response {
    let Some(lang) = Lang::parse(&tag) else {
        return (StatusCode::NOT_FOUND, format!("no language {tag:?}")).into_response();
    };
    let mut response = see_other(if q.next.is_empty() { "/" } else { &q.next });
    if let Ok(v) = set_cookie(
        LANG_COOKIE,
        lang.tag(),
        state.secure_cookies,
        Some(365 * 86_400),
    )
    .parse()
    {
        response.headers_mut().append(SET_COOKIE, v);
    }
    response
}

//! Signing in and out, the session every page but the sign-in form needs, the CSRF check on
//! every form, and the language switch: the same for both consoles, which plug in their own
//! page shell through [`Site`].

// The `Err` of these checks is the handler's early answer (a redirect, a refusal), returned
// once per request: boxing it would buy nothing.
#![allow(clippy::result_large_err)]

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::header::{ACCEPT_LANGUAGE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::html;
use serde::Deserialize;

use crate::Lang;
use crate::accounts::{Accounts, SignIn, SignInRefused};
use crate::i18n::LANG_COOKIE;
use crate::layout::{NavItem, Shell, notice, page, url_path};
use crate::session::{
    SESSION_COOKIE, SIGN_IN_COOKIE, Session, Sessions, cookie, random_token, same_secret,
    set_cookie,
};

/// Who may sign in, and the sessions of those who did.
#[derive(Debug)]
pub struct Gatekeeper {
    pub accounts: Accounts,
    pub sign_in: SignIn,
    pub sessions: Sessions,
    pub default_lang: Lang,
    /// Cookies are marked `Secure` (the site is served over TLS).
    pub secure: bool,
}

impl Gatekeeper {
    pub fn new(accounts: Accounts, idle: Duration, default_lang: Lang, secure: bool) -> Self {
        Self {
            accounts,
            sign_in: SignIn::default(),
            sessions: Sessions::new(idle),
            default_lang,
            secure,
        }
    }

    /// What a page knows about the request it answers.
    pub fn ctx(&self, headers: &HeaderMap, path: &str) -> Ctx {
        let lang = Lang::choose(
            cookie(headers, LANG_COOKIE),
            headers.get(ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()),
            self.default_lang,
        );
        Ctx {
            lang,
            session: self.sessions.get(headers),
            path: path.to_owned(),
        }
    }

    /// The request's session, or a redirect to the sign-in form that comes back here. An
    /// officer removed from the officers file is signed out at their next request.
    pub fn require(&self, headers: &HeaderMap, path: &str) -> Result<(Ctx, Session), Response> {
        let ctx = self.ctx(headers, path);
        let Some(session) = ctx.session.clone() else {
            return Err(see_other(&format!("/login?next={}", url_path(path))));
        };
        match self.accounts.officer(&session.officer) {
            Ok(Some(_)) => Ok((ctx, session)),
            Ok(None) => {
                self.sessions.end_officer(&session.officer);
                Err(see_other("/login"))
            }
            Err(e) => Err((StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response()),
        }
    }

    /// [`Gatekeeper::require`], then the form's CSRF token checked against the session's.
    pub fn require_form(
        &self,
        headers: &HeaderMap,
        path: &str,
        csrf: &str,
    ) -> Result<(Ctx, Session), Response> {
        let (ctx, session) = self.require(headers, path)?;
        if !same_secret(&session.csrf, csrf) {
            tracing::warn!(officer = %session.officer, "form refused: CSRF token missing or wrong");
            return Err(forbidden(ctx.lang));
        }
        Ok((ctx, session))
    }
}

/// What a page knows about the request it answers.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub lang: Lang,
    pub session: Option<Session>,
    pub path: String,
}

impl Ctx {
    /// The shell of a site's page: its product name (a catalogue key), the page's title, its
    /// navigation as (path, catalogue key) shown to a signed-in officer only with `active`
    /// marked, the officer's sign-out form, and a band above the content if any.
    pub fn shell(
        &self,
        product_key: &str,
        title: String,
        nav: &[(&str, &str)],
        active: &str,
        banner: Option<maud::Markup>,
    ) -> Shell {
        let lang = self.lang;
        let nav = match &self.session {
            Some(_) => nav
                .iter()
                .map(|(href, key)| NavItem {
                    href: (*href).to_owned(),
                    label: lang.t(key),
                    active: *href == active,
                })
                .collect(),
            None => Vec::new(),
        };
        Shell {
            lang,
            product: lang.t(product_key),
            title,
            nav,
            officer: self
                .session
                .as_ref()
                .map(|s| (s.label.clone(), s.csrf.clone())),
            live: None,
            path: self.path.clone(),
            banner,
        }
    }
}

/// A site built on the gatekeeper: it draws its own shell around the shared pages.
pub trait Site: Send + Sync + 'static {
    fn gate(&self) -> &Gatekeeper;
    /// The shell around a page of this site (`active`: the navigation entry to mark).
    fn shell(&self, ctx: &Ctx, title: String, active: &str) -> Shell;
    /// The line under the sign-in form.
    fn sign_in_hint(&self, lang: Lang) -> String;
    /// Records a sign-in or sign-out in the site's own log.
    fn record(&self, officer: &str, action: &'static str);
}

/// A redirect after a form (303: the browser follows with a GET).
pub fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(LOCATION, url_path(to))]).into_response()
}

/// The answer to a forged form: 403 and nothing changed.
pub fn forbidden(lang: Lang) -> Response {
    (
        StatusCode::FORBIDDEN,
        html! {
            (maud::DOCTYPE)
            html lang=(lang.tag()) {
                head {
                    meta charset="utf-8";
                    title { (lang.t("common.forbidden_title")) }
                    (crate::layout::style())
                }
                body { main {
                    h1 { (lang.t("common.forbidden_title")) }
                    p { (lang.t("common.forbidden_text")) }
                    a href="/" { (lang.t("common.home")) }
                } }
            }
        },
    )
        .into_response()
}

/// `/login`, `/logout` and `/lang/{tag}` for a site.
pub fn routes<S: Site>() -> Router<Arc<S>> {
    Router::new()
        .route("/login", get(login_form::<S>).post(login::<S>))
        .route("/logout", post(logout::<S>))
        .route("/lang/{tag}", get(language::<S>))
}

#[derive(Debug, Deserialize, Default)]
struct Next {
    #[serde(default)]
    next: String,
}

async fn login_form<S: Site>(
    State(site): State<Arc<S>>,
    headers: HeaderMap,
    Query(q): Query<Next>,
) -> Response {
    let ctx = site.gate().ctx(&headers, "/login");
    render_login(site.as_ref(), &ctx, &q.next, None, StatusCode::OK)
}

fn render_login<S: Site>(
    site: &S,
    ctx: &Ctx,
    next: &str,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let lang = ctx.lang;
    let token = random_token();
    let shell = site.shell(ctx, lang.t("common.sign_in_title"), "");
    let next = url_path(if next.is_empty() { "/" } else { next });
    let body = html! {
        div.login.panel {
            @if let Some(e) = &error { (notice("error", e)) }
            form.stack method="post" action="/login" {
                input type="hidden" name="csrf" value=(token);
                input type="hidden" name="next" value=(next);
                label for="name" { (lang.t("common.officer_name")) }
                input #name type="text" name="name" autocomplete="username" required autofocus;
                label for="password" { (lang.t("common.password")) }
                input #password type="password" name="password" autocomplete="current-password" required;
                div.actions { button type="submit" { (lang.t("common.sign_in_button")) } }
            }
            p.hint { (site.sign_in_hint(lang)) }
        }
    };
    let cookie = set_cookie(SIGN_IN_COOKIE, &token, site.gate().secure, Some(600));
    (status, [(SET_COOKIE, cookie)], page(&shell, body)).into_response()
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
}

async fn login<S: Site>(
    State(site): State<Arc<S>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let gate = site.gate();
    let ctx = gate.ctx(&headers, "/login");
    let paired = cookie(&headers, SIGN_IN_COOKIE).is_some_and(|c| same_secret(c, &form.csrf));
    if !paired {
        tracing::warn!("sign-in refused: CSRF token missing or wrong");
        return forbidden(ctx.lang);
    }
    let attempt = {
        let site = site.clone();
        let (name, password) = (form.name.clone(), form.password.clone());
        // Argon2 takes tens of milliseconds: off the async threads.
        tokio::task::spawn_blocking(move || {
            let gate = site.gate();
            gate.sign_in.attempt(&gate.accounts, &name, &password)
        })
        .await
    };
    let lang = ctx.lang;
    let refused = |message: String, status: StatusCode| {
        render_login(site.as_ref(), &ctx, &form.next, Some(message), status)
    };
    match attempt {
        Ok(Ok(officer)) => {
            let (id, _) = gate.sessions.start(&officer.name, &officer.label());
            site.record(&officer.name, "sign_in");
            let mut response = see_other(if form.next.is_empty() {
                "/"
            } else {
                &form.next
            });
            for c in [
                set_cookie(SESSION_COOKIE, &id, gate.secure, None),
                set_cookie(SIGN_IN_COOKIE, "", gate.secure, Some(0)),
            ] {
                if let Ok(v) = c.parse() {
                    response.headers_mut().append(SET_COOKIE, v);
                }
            }
            response
        }
        Ok(Err(SignInRefused::Wrong)) => {
            tracing::info!(officer = %form.name.trim(), "sign-in refused: wrong name or password");
            refused(lang.t("common.sign_in_wrong"), StatusCode::UNAUTHORIZED)
        }
        Ok(Err(SignInRefused::Locked(left))) => {
            let minutes = left.as_secs().div_ceil(60).to_string();
            refused(
                lang.tf("common.sign_in_locked", &[("minutes", &minutes)]),
                StatusCode::TOO_MANY_REQUESTS,
            )
        }
        Ok(Err(SignInRefused::Unavailable(reason))) => {
            refused(reason, StatusCode::SERVICE_UNAVAILABLE)
        }
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "sign-in failed").into_response(),
    }
}

#[derive(Debug, Deserialize)]
struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

async fn logout<S: Site>(
    State(site): State<Arc<S>>,
    headers: HeaderMap,
    Form(form): Form<CsrfOnly>,
) -> Response {
    let gate = site.gate();
    let (_, session) = match gate.require_form(&headers, "/", &form.csrf) {
        Ok(pair) => pair,
        Err(r) => return r,
    };
    gate.sessions.end(&headers);
    site.record(&session.officer, "sign_out");
    let mut response = see_other("/login");
    if let Ok(v) = set_cookie(SESSION_COOKIE, "", gate.secure, Some(0)).parse() {
        response.headers_mut().append(SET_COOKIE, v);
    }
    response
}

/// The language switch: remembered in a cookie for a year.
async fn language<S: Site>(
    State(site): State<Arc<S>>,
    Path(tag): Path<String>,
    Query(q): Query<Next>,
) -> Response {
    let Some(lang) = Lang::parse(&tag) else {
        return (StatusCode::NOT_FOUND, format!("no language {tag:?}")).into_response();
    };
    let mut response = see_other(if q.next.is_empty() { "/" } else { &q.next });
    let cookie = set_cookie(
        LANG_COOKIE,
        lang.tag(),
        site.gate().secure,
        Some(365 * 86_400),
    );
    if let Ok(v) = cookie.parse() {
        response.headers_mut().append(SET_COOKIE, v);
    }
    response
}

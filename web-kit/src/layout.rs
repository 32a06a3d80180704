//! The page shell both consoles share: head, navigation, the language switch, the signed-in
//! officer with the sign-out form, and the live-update hook. The stylesheet is inline and the
//! one small script is served by the binary itself: agency networks have no internet.

use axum::Router;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::routing::get;
use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::i18n::Lang;

const CSS: &str = include_str!("../assets/web.css");
const LIVE_JS: &str = include_str!("../assets/live.js");

/// `/static/live.js` (the stylesheet is inline in every page), and the security headers on
/// every answer of `router`.
pub fn finish(router: Router) -> Router {
    router
        .route(
            "/static/live.js",
            get(|| async {
                (
                    [
                        (CONTENT_TYPE, "text/javascript; charset=utf-8"),
                        (CACHE_CONTROL, "max-age=3600"),
                    ],
                    LIVE_JS,
                )
            }),
        )
        .layer(axum::middleware::map_response(security_headers))
}

/// One entry of the navigation bar.
#[derive(Debug, Clone)]
pub struct NavItem {
    pub href: String,
    pub label: String,
    pub active: bool,
}

/// What the shell around a page needs.
#[derive(Debug, Clone)]
pub struct Shell {
    pub lang: Lang,
    /// The product's name (the top-left corner) and the page's own title.
    pub product: String,
    pub title: String,
    pub nav: Vec<NavItem>,
    /// The signed-in officer's label and the session's CSRF token (for sign-out).
    pub officer: Option<(String, String)>,
    /// The server-sent events this page listens to, if it updates by itself.
    pub live: Option<String>,
    /// This page's path, for the language switch to come back to.
    pub path: String,
    /// A band above the content (an exercise, the broker unreachable…).
    pub banner: Option<Markup>,
}

/// A whole page: the shell with `body` inside.
pub fn page(shell: &Shell, body: Markup) -> Markup {
    let lang = shell.lang;
    html! {
        (DOCTYPE)
        html lang=(lang.tag()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (shell.title) " · " (shell.product) }
                // Inline: a page renders from its one response (the script only adds updates).
                (style())
                @if shell.live.is_some() {
                    script src="/static/live.js" defer {}
                }
            }
            body data-live=[shell.live.as_deref()] {
                header.top {
                    span.product { (shell.product) }
                    nav {
                        @for item in &shell.nav {
                            a href=(item.href) class=[item.active.then_some("active")] { (item.label) }
                        }
                    }
                    span.spacer {}
                    span #live-status .live-status hidden title=(lang.t("common.live_lost_help")) {
                        (lang.t("common.live_lost"))
                    }
                    span.langs {
                        @for other in Lang::ALL {
                            @if other == lang {
                                strong { (other.t("common.language_name")) }
                            } @else {
                                a href={ "/lang/" (other.tag()) "?next=" (url_path(&shell.path)) } hreflang=(other.tag()) {
                                    (other.t("common.language_name"))
                                }
                            }
                        }
                    }
                    @if let Some((label, csrf)) = &shell.officer {
                        span.officer { (lang.tf("common.signed_in_as", &[("officer", label)])) }
                        form.inline method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(csrf);
                            button type="submit" { (lang.t("common.sign_out")) }
                        }
                    }
                }
                @if let Some(banner) = &shell.banner {
                    div.banner { (banner) }
                }
                main { h1 { (shell.title) } (body) }
                @if shell.live.is_some() {
                    noscript { p.hint { (lang.t("common.noscript")) } }
                }
            }
        }
    }
}

/// A path kept only if it is one of ours (starts with a single `/`), for `next=` links.
pub fn url_path(path: &str) -> String {
    if path.starts_with('/') && !path.starts_with("//") {
        path.chars()
            .map(|c| match c {
                ' ' => "%20".to_owned(),
                '&' => "%26".to_owned(),
                '#' => "%23".to_owned(),
                c => c.to_string(),
            })
            .collect()
    } else {
        "/".to_owned()
    }
}

/// The stylesheet, inline.
pub fn style() -> Markup {
    html! { style { (PreEscaped(CSS)) } }
}

/// Headers every answer carries: pages hold plaintext (the desk) and session-bound forms, so
/// they are not cached, framed, sniffed or sent on as a referrer; scripts come only from the
/// site itself.
pub async fn security_headers(mut response: axum::response::Response) -> axum::response::Response {
    use axum::http::HeaderValue;
    let headers = response.headers_mut();
    for (name, value) in [
        ("cache-control", "no-store"),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        (
            "content-security-policy",
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'self'; \
             connect-src 'self'; img-src 'self' data:; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    ] {
        if !headers.contains_key(name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    response
}

/// A message box in a page (an error from the broker, a refused form).
pub fn notice(kind: &str, text: &str) -> Markup {
    html! { div class={ "notice " (kind) } role="alert" { (text) } }
}

/// Raw markup that is known to be safe (an SVG the server drew).
pub fn trusted(svg: String) -> Markup {
    PreEscaped(svg)
}

//! Signed-in sessions (an opaque random id in a cookie, the rest in memory) and the CSRF
//! token each session's forms carry.
//!
//! The cookie is `HttpOnly` and `SameSite=Strict`, and `Secure` when the console is served
//! over TLS. A session ends after an idle time, after an absolute lifetime, at sign-out, and
//! when the console restarts (officers sign in again; nothing else is lost).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use axum::http::header::COOKIE;
use rand_core::RngCore;

pub const SESSION_COOKIE: &str = "dc_session";
/// The cookie the sign-in form's CSRF token is paired with (no session exists yet).
pub const SIGN_IN_COOKIE: &str = "dc_signin";
/// The longest a session lasts, however active.
pub const ABSOLUTE_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// 32 random bytes, hex.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand_core::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Compares secrets without an early exit.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The value of cookie `name` in a request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value (`max_age` None: a session cookie; Some(0): delete it).
pub fn set_cookie(name: &str, value: &str, secure: bool, max_age: Option<u64>) -> String {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if secure {
        c.push_str("; Secure");
    }
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    c
}

/// One signed-in officer.
#[derive(Debug, Clone)]
pub struct Session {
    /// The sign-in name (the officers file is checked again at each request).
    pub officer: String,
    /// How the officer is named on screens and in audit records.
    pub label: String,
    pub csrf: String,
    started: Instant,
    last_used: Instant,
}

/// Every live session of one console process.
#[derive(Debug)]
pub struct Sessions {
    idle: Duration,
    live: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    pub fn new(idle: Duration) -> Self {
        Self {
            idle,
            live: Mutex::default(),
        }
    }

    /// Starts a session; answers its id (for the cookie).
    pub fn start(&self, officer: &str, label: &str) -> (String, Session) {
        let id = random_token();
        let now = Instant::now();
        let session = Session {
            officer: officer.to_owned(),
            label: label.to_owned(),
            csrf: random_token(),
            started: now,
            last_used: now,
        };
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        live.retain(|_, s| self.alive(s, now));
        live.insert(id.clone(), session.clone());
        (id, session)
    }

    fn alive(&self, s: &Session, now: Instant) -> bool {
        now.duration_since(s.last_used) < self.idle
            && now.duration_since(s.started) < ABSOLUTE_LIFETIME
    }

    /// The session of a request's cookie, if it is still alive (and marks it used).
    pub fn get(&self, headers: &HeaderMap) -> Option<Session> {
        let id = cookie(headers, SESSION_COOKIE)?;
        let now = Instant::now();
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let alive = live.get(id).is_some_and(|s| self.alive(s, now));
        if !alive {
            live.remove(id);
            return None;
        }
        let s = live.get_mut(id)?;
        s.last_used = now;
        Some(s.clone())
    }

    /// Whether the session of a request's cookie is alive, without marking it used (a live
    /// stream must not keep an unattended screen signed in).
    pub fn is_alive(&self, headers: &HeaderMap) -> bool {
        let Some(id) = cookie(headers, SESSION_COOKIE) else {
            return false;
        };
        let live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        live.get(id).is_some_and(|s| self.alive(s, Instant::now()))
    }

    /// Ends the session of a request's cookie.
    pub fn end(&self, headers: &HeaderMap) {
        if let Some(id) = cookie(headers, SESSION_COOKIE) {
            self.live
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(id);
        }
    }

    /// Ends every session of an officer (removed from the officers file).
    pub fn end_officer(&self, officer: &str) {
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, s| s.officer != officer);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn with_cookie(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(COOKIE, value.parse().unwrap());
        h
    }

    #[test]
    fn a_session_is_found_by_its_cookie_and_ends_when_idle() {
        let sessions = Sessions::new(Duration::from_millis(50));
        let (id, s) = sessions.start("liwei", "Li Wei (liwei)");
        let headers = with_cookie(&format!("other=1; {SESSION_COOKIE}={id}"));
        assert_eq!(sessions.get(&headers).unwrap().csrf, s.csrf);
        assert!(
            sessions
                .get(&with_cookie(&format!("{SESSION_COOKIE}=forged")))
                .is_none()
        );
        std::thread::sleep(Duration::from_millis(80));
        assert!(sessions.get(&headers).is_none());
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
        assert_eq!(random_token().len(), 64);
        assert!(set_cookie("a", "b", true, Some(0)).contains("Secure; Max-Age=0"));
    }
}

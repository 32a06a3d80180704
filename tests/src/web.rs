//! A small HTTP/1.1 client for the consoles' end-to-end tests: keeps cookies like a browser,
//! posts forms, and reads the CSRF token out of a page.

use std::collections::BTreeMap;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// A response, read whole.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub headers: hyper::HeaderMap,
    pub location: Option<String>,
    pub body: String,
}

/// One browser: a base URL, a cookie jar, an `Accept-Language`.
pub struct Browser {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
    pub cookies: BTreeMap<String, String>,
    pub language: String,
}

impl Browser {
    pub fn new(base: &str, language: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            client: Client::builder(TokioExecutor::new()).build_http(),
            cookies: BTreeMap::new(),
            language: language.to_owned(),
        }
    }

    /// Posts a multipart form: `fields`, and a file `file_name` holding `text`.
    pub async fn post_file(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        file_name: &str,
        text: &str,
    ) -> Page {
        const BOUNDARY: &str = "deconflictionboundary7MA4YWxkTrZu0gW";
        let mut body = String::new();
        for (k, v) in fields {
            body.push_str(&format!(
                "--{BOUNDARY}\r\ncontent-disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
            ));
        }
        body.push_str(&format!(
            "--{BOUNDARY}\r\ncontent-disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\n\
             content-type: application/octet-stream\r\n\r\n{text}\r\n--{BOUNDARY}--\r\n"
        ));
        self.send_typed(
            Method::POST,
            path,
            Some((format!("multipart/form-data; boundary={BOUNDARY}"), body)),
        )
        .await
    }

    async fn send(&mut self, method: Method, path: &str, form: Option<String>) -> Page {
        let typed = form.map(|f| ("application/x-www-form-urlencoded".to_owned(), f));
        self.send_typed(method, path, typed).await
    }

    async fn send_typed(
        &mut self,
        method: Method,
        path: &str,
        body: Option<(String, String)>,
    ) -> Page {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("accept-language", &self.language);
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            req = req.header(COOKIE, jar.join("; "));
        }
        let body = match body {
            Some((content_type, f)) => {
                req = req.header(CONTENT_TYPE, content_type);
                Full::new(Bytes::from(f))
            }
            None => Full::new(Bytes::new()),
        };
        let response = self.client.request(req.body(body).unwrap()).await.unwrap();
        for c in response.headers().get_all(SET_COOKIE) {
            let c = c.to_str().unwrap();
            let pair = c.split(';').next().unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            if c.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
        let status = response.status();
        let location = response
            .headers()
            .get(LOCATION)
            .map(|v| v.to_str().unwrap().to_owned());
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Page {
            status,
            headers,
            location,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        self.send(Method::GET, path, None).await
    }

    /// Posts `fields` as a form (values percent-encoded).
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        self.send(Method::POST, path, Some(body.join("&"))).await
    }

    /// Signs in through the form; the response to the form's post.
    pub async fn sign_in(&mut self, name: &str, password: &str) -> Page {
        let form = self.get("/login").await;
        let csrf = csrf_of(&form.body);
        self.post(
            "/login",
            &[
                ("csrf", &csrf),
                ("next", "/"),
                ("name", name),
                ("password", password),
            ],
        )
        .await
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The CSRF token of the first form in a page.
pub fn csrf_of(body: &str) -> String {
    let at = body
        .find("name=\"csrf\" value=\"")
        .expect("no CSRF field in the page");
    let rest = &body[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

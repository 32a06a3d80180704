//! `console.toml`: where the watch centre's console listens, who may sign in, and how it
//! reaches the broker (the watch centre's own certificate). docs/configuration.md describes
//! every key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use deconfliction_web::Lang;
use deconfliction_web::clock::Clock;
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ConsoleConfigError {
    #[error("cannot read {}: {reason}", path.display())]
    Read { path: PathBuf, reason: String },
    #[error("{}: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    #[serde(default)]
    pub console: ConsoleSection,
    pub broker: BrokerLink,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleSection {
    /// Loopback unless `tls_cert` and `tls_key` are set.
    pub listen: SocketAddr,
    /// The officers file (`deconflict-broker console officers`).
    pub officers: PathBuf,
    /// The pages' language when the browser asks for neither: `zh-CN` or `en`.
    pub language: String,
    /// The deployment's time zone as an offset (`+08:00`: China Standard Time).
    pub time_zone: String,
    /// Unresolved conflicts whose earlier operation starts within this many hours are marked
    /// for escalation and sort first.
    pub escalate_within_hours: u32,
    /// A session ends after this many minutes without a request.
    pub session_idle_minutes: u64,
    /// How often the console asks the broker for the queue, in milliseconds.
    pub refresh_millis: u64,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

impl Default for ConsoleSection {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8480)),
            officers: PathBuf::from("officers.toml"),
            language: "zh-CN".to_owned(),
            time_zone: "+08:00".to_owned(),
            escalate_within_hours: 24,
            session_idle_minutes: 30,
            refresh_millis: 500,
            tls_cert: None,
            tls_key: None,
        }
    }
}

/// The broker and the watch centre's client certificate.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerLink {
    /// `https://host:port`.
    pub address: String,
    /// The name the broker's certificate must hold (default: the host of `address`).
    #[serde(default)]
    pub server_name: Option<String>,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl ConsoleConfig {
    /// Reads `path`; relative paths in it are taken from its folder.
    pub fn load(path: &Path) -> Result<Self, ConsoleConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConsoleConfigError::Read {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let mut config: ConsoleConfig =
            toml::from_str(&text).map_err(|e| ConsoleConfigError::Invalid {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let rebase = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        rebase(&mut config.console.officers);
        rebase(&mut config.broker.ca);
        rebase(&mut config.broker.cert);
        rebase(&mut config.broker.key);
        if let Some(p) = config.console.tls_cert.as_mut() {
            rebase(p);
        }
        if let Some(p) = config.console.tls_key.as_mut() {
            rebase(p);
        }
        config
            .check()
            .map_err(|reason| ConsoleConfigError::Invalid {
                path: path.to_path_buf(),
                reason,
            })?;
        Ok(config)
    }

    /// The checks `load` makes, for configurations built in code too.
    pub fn check(&self) -> Result<(), String> {
        let c = &self.console;
        self.language()?;
        self.clock()?;
        if c.tls_cert.is_some() != c.tls_key.is_some() {
            return Err(
                "console.tls_cert and console.tls_key go together: set both or neither".into(),
            );
        }
        if c.tls_cert.is_none() && !c.listen.ip().is_loopback() {
            return Err(format!(
                "console.listen = {} is not loopback: set console.tls_cert and console.tls_key \
                 to serve a network",
                c.listen
            ));
        }
        if !(100..=60_000).contains(&c.refresh_millis) {
            return Err("console.refresh_millis must be between 100 and 60000".into());
        }
        if !(1..=24 * 60).contains(&c.session_idle_minutes) {
            return Err("console.session_idle_minutes must be between 1 and 1440".into());
        }
        if !self.broker.address.starts_with("https://") {
            return Err(format!(
                "broker.address {:?} must start with https:// (the broker speaks mutual TLS)",
                self.broker.address
            ));
        }
        Ok(())
    }

    pub fn language(&self) -> Result<Lang, String> {
        Lang::parse(&self.console.language).ok_or_else(|| {
            format!(
                "console.language {:?} is not one the console speaks: zh-CN or en",
                self.console.language
            )
        })
    }

    pub fn clock(&self) -> Result<Clock, String> {
        Clock::parse(&self.console.time_zone).ok_or_else(|| {
            format!(
                "console.time_zone {:?} is not an offset like +08:00",
                self.console.time_zone
            )
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("console.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    const BROKER: &str = "[broker]\naddress = \"https://127.0.0.1:7443\"\nca = \"ca.pem\"\ncert = \"w.pem\"\nkey = \"w.key\"\n";

    #[test]
    fn a_minimal_file_loads_with_paths_beside_it() {
        let (dir, path) = write(BROKER);
        let c = ConsoleConfig::load(&path).unwrap();
        assert_eq!(c.broker.ca, dir.path().join("ca.pem"));
        assert_eq!(c.console.officers, dir.path().join("officers.toml"));
        assert!(c.console.listen.ip().is_loopback());
    }

    #[test]
    fn bad_settings_are_named() {
        for (extra, needle) in [
            ("[console]\nlisten = \"0.0.0.0:8480\"\n", "not loopback"),
            ("[console]\nlanguage = \"fr\"\n", "console.language"),
            ("[console]\ntime_zone = \"CST\"\n", "console.time_zone"),
            ("[console]\ntls_cert = \"c.pem\"\n", "go together"),
            ("[console]\nbogus = 1\n", "bogus"),
        ] {
            let (_dir, path) = write(&format!("{extra}{BROKER}"));
            let err = ConsoleConfig::load(&path).unwrap_err().to_string();
            assert!(err.contains(needle), "{extra}: {err}");
        }
    }
}

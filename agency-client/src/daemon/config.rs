//! agencyd's configuration: a TOML file, any key overridable from the environment as
//! `AGENCYD__<SECTION>__<KEY>` (e.g. `AGENCYD__BROKER__ADDRESS=broker.example:7443`).
//! Relative paths are taken from the configuration file's folder.

use std::path::{Path, PathBuf};

use env_config::Depth;
use serde::{Deserialize, Serialize};

/// Prefix of environment overrides.
pub const ENV_PREFIX: &str = "AGENCYD__";

/// The whole configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonConfig {
    /// The agency's certificate, key and the federation CA.
    pub tls: TlsSection,
    /// Where the broker is.
    pub broker: BrokerSection,
    /// The pinned token-service key, and where the service is if not at the broker.
    pub token_service: TokenServiceSection,
    /// Local folders, socket and timings.
    pub daemon: DaemonSection,
    /// Where alerts go besides the local store.
    pub sinks: SinksSection,
    /// Logging.
    pub log: LogSection,
    /// Joint federations this agency takes part in besides its own (token spec section 5):
    /// operations marked releasable to one are also registered at its broker, under tokens
    /// made with both countries' key shares. Nothing else ever leaves home.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub joint: Vec<JointSection>,
    /// Set when this daemon takes part in an exercise (docs/drills.md): `[broker]` is then the
    /// drill's port and `[token_service]` pins the drill's key. A drill daemon has a data
    /// folder of its own, holds nothing live, and refuses a broker that is not that drill.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drill: Option<DrillSection>,
    /// The duty desk: web pages for the agency's duty officers, served by this daemon (which
    /// holds the agency's plaintext). Off unless enabled.
    #[serde(default)]
    pub desk: DeskSection,
}

/// `[desk]`: the duty desk (docs/desk.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeskSection {
    pub enabled: bool,
    /// Loopback unless `tls_cert` and `tls_key` are set.
    pub listen: std::net::SocketAddr,
    /// The officers file (default: `<data_dir>/desk-officers.toml`), managed with
    /// `agencyd desk-officers`.
    pub officers: Option<PathBuf>,
    /// `zh-CN` or `en`: the pages' language when the browser asks for neither.
    pub language: String,
    /// The time zone operations' windows are typed and shown in (`+08:00`).
    pub time_zone: String,
    pub session_idle_minutes: u64,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

impl Default for DeskSection {
    fn default() -> Self {
        Self {
            enabled: false,
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 8490)),
            officers: None,
            language: "zh-CN".into(),
            time_zone: "+08:00".into(),
            session_idle_minutes: 30,
            tls_cert: None,
            tls_key: None,
        }
    }
}

/// `[drill]`: the exercise this daemon takes part in.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DrillSection {
    /// The drill's id, as the controller announced it.
    pub id: String,
}

/// `[[joint]]`: one joint federation.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JointSection {
    /// Its name, as operations are released to it (`deconflict register --release-to NAME`):
    /// 1 to 32 of a-z, 0-9 and '-'.
    pub name: String,
    /// `host:port` of the joint broker.
    pub broker: String,
    /// The CA its broker's certificate chains to (default: `[tls] ca`).
    pub broker_ca: Option<PathBuf>,
    /// Name to check the joint broker's certificate against (default: the address's host).
    pub tls_domain: Option<String>,
    /// The two key shares' token services, each with the key this agency pins for it.
    pub share_a: JointShareSection,
    pub share_b: JointShareSection,
}

/// One key share's token service.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JointShareSection {
    /// `host:port` of the token service serving this share.
    pub address: String,
    /// The CA its certificate chains to (default: `[tls] ca`).
    pub ca: Option<PathBuf>,
    /// Name to check its certificate against (default: the address's host).
    pub tls_domain: Option<String>,
    /// The share's public key (64 hex digits) as the two countries' administrators agreed.
    pub public_key: String,
    /// Its key epoch (not 0).
    pub key_epoch: u32,
    /// During a rotation of this share, the key pinned before (`public_key`/`key_epoch` being
    /// the new one): released operations carry joint tokens of both until the previous epoch
    /// is no longer served, so that agencies not yet moved keep matching them.
    pub previous_public_key: Option<String>,
    /// Its key epoch.
    pub previous_key_epoch: u32,
}

/// Whether `name` can name a joint federation.
/// A drill id as the broker accepts it: 1 to 40 of a-z, 0-9 and '-', not starting with '-'.
pub fn drill_id_ok(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 40
        && !id.starts_with('-')
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

pub fn joint_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// `[tls]`: PEM files.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSection {
    /// The agency's client certificate.
    pub cert: PathBuf,
    /// Its private key (keep it mode 0600, readable by agencyd's user only).
    pub key: PathBuf,
    /// The federation CA certificate.
    pub ca: PathBuf,
}

/// `[broker]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerSection {
    /// `host:port` or `https://host:port`.
    pub address: String,
    /// Further replicas of the same broker (one shared database), tried in order when the
    /// one in use stops answering. Their certificates must hold `tls_domain` (or their host).
    pub replicas: Vec<String>,
    /// Name to check the broker's certificate against (default: the address's host).
    pub tls_domain: Option<String>,
    /// How often the replica in use is probed when there are replicas, seconds.
    pub failover_probe_seconds: u64,
    /// Deadline of one call to the broker, seconds.
    pub call_timeout_seconds: u64,
    /// Deadline of a TCP+TLS connection attempt, seconds.
    pub connect_timeout_seconds: u64,
}

impl Default for BrokerSection {
    fn default() -> Self {
        Self {
            address: "127.0.0.1:7443".into(),
            replicas: Vec::new(),
            tls_domain: None,
            failover_probe_seconds: 2,
            call_timeout_seconds: 20,
            connect_timeout_seconds: 5,
        }
    }
}

/// `[token_service]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenServiceSection {
    /// The public key (64 hex digits) handed out by the federation administrator.
    pub public_key: String,
    /// Its key epoch (not 0).
    pub key_epoch: u32,
    /// During a key rotation, the key pinned before (`public_key`/`key_epoch` being the new
    /// one): new selectors get tokens of both epochs until the previous one ends, so that
    /// agencies not yet moved still match them. Remove it once the overlap is over.
    pub previous_public_key: Option<String>,
    /// Its key epoch.
    pub previous_key_epoch: u32,
    /// `host:port` when the token service runs apart from the broker (default: the broker's).
    pub address: Option<String>,
    /// Name to check its certificate against (default: the address's host).
    pub tls_domain: Option<String>,
}

/// `[daemon]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonSection {
    /// The local store and the default home of everything below (created mode 0700).
    pub data_dir: PathBuf,
    /// The control socket (default: `$XDG_RUNTIME_DIR/agencyd/agencyd.sock`, else
    /// `/run/agencyd/agencyd.sock`: where `deconflict` looks by default).
    pub socket: Option<PathBuf>,
    /// The drop folder (default: `<data_dir>/inbox`); `done/` and `failed/` are made beside
    /// the files in it.
    pub inbox_dir: Option<PathBuf>,
    /// How often the inbox is looked at, milliseconds. A file is taken only once its size
    /// and modification time were the same at two looks in a row.
    pub inbox_poll_ms: u64,
    /// First wait between retries (outbox, alert subscription), milliseconds; it doubles
    /// after each failure.
    pub retry_initial_ms: u64,
    /// Largest wait between retries, milliseconds.
    pub retry_max_ms: u64,
    /// Deadline of the `status` probes of the broker and token service, milliseconds.
    pub status_probe_timeout_ms: u64,
    /// How often the token service is asked which key epochs it serves, seconds (also at
    /// the end of a rotation's overlap); open operations are re-derived when that changes.
    pub key_poll_seconds: u64,
}

impl Default for DaemonSection {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("agencyd-data"),
            socket: None,
            inbox_dir: None,
            inbox_poll_ms: 1000,
            retry_initial_ms: 500,
            retry_max_ms: 30_000,
            status_probe_timeout_ms: 3000,
            key_poll_seconds: 300,
        }
    }
}

/// `[sinks]`: every alert is stored locally first, then handed to each of these.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SinksSection {
    /// Append-only JSON-lines file, one alert per line (with the agency's own selectors).
    pub jsonl: Option<PathBuf>,
    /// `https://host:port/path` (or `http://` to this host): each alert is POSTed as JSON.
    /// The payload holds the agency's own selectors and contact cards in clear.
    pub webhook: Option<String>,
    /// The CA (PEM) that the https receiver's certificate must chain to: pinned, the only
    /// one trusted for the webhook. Required for `https://`.
    pub webhook_ca: Option<PathBuf>,
    /// Allow `http://` to a host other than this one (loopback). Off: plaintext selectors
    /// would cross the network unencrypted.
    pub webhook_allow_plain_http: bool,
    /// Deadline of one webhook attempt, milliseconds.
    pub webhook_timeout_ms: u64,
    /// Log each alert (ids and counts only, never selectors).
    pub log: bool,
}

impl Default for SinksSection {
    fn default() -> Self {
        Self {
            jsonl: None,
            webhook: None,
            webhook_ca: None,
            webhook_allow_plain_http: false,
            webhook_timeout_ms: 5000,
            log: true,
        }
    }
}

/// `[log]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSection {
    /// `tracing` filter, e.g. `info` or `agency_client=debug`.
    pub level: String,
    /// JSON lines instead of text.
    pub json: bool,
}

impl Default for LogSection {
    fn default() -> Self {
        Self {
            level: "info".into(),
            json: false,
        }
    }
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The TOML (after environment overrides) does not fit the schema.
    #[error("configuration: {0}")]
    Invalid(String),
    /// A required key is absent from the file and the environment.
    #[error("{file}: {key} is missing ({what}): add it, or set {env}")]
    Missing {
        /// The configuration file (or "the environment" without one).
        file: String,
        /// `[section] key`.
        key: &'static str,
        /// What it is.
        what: &'static str,
        /// The environment variable that sets it.
        env: &'static str,
    },
}

impl DaemonConfig {
    /// Reads `path` (if given), applies `AGENCYD__*` overrides from `env`, and resolves
    /// relative paths against the file's folder.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let (mut table, base) = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| ConfigError::Read {
                    path: p.display().to_string(),
                    reason: e.to_string(),
                })?;
                let table: toml::Table = toml::from_str(&text)
                    .map_err(|e| ConfigError::Invalid(format!("{}: {e}", p.display())))?;
                let base = p.parent().map(Path::to_path_buf).unwrap_or_default();
                (table, base)
            }
            None => (toml::Table::new(), PathBuf::new()),
        };
        env_config::apply_overrides(&mut table, ENV_PREFIX, Depth::SectionAndKey, env)
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let mut config: DaemonConfig = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid(e.to_string()))?;
        config.resolve_paths(&base);
        config.check_required(path)?;
        Ok(config)
    }

    /// The keys without which agencyd cannot even reach the broker, named with their file.
    fn check_required(&self, path: Option<&Path>) -> Result<(), ConfigError> {
        let file = path.map_or_else(
            || "the environment (no --config file)".to_owned(),
            |p| p.display().to_string(),
        );
        let required = [
            (
                self.tls.cert.as_os_str().is_empty(),
                "[tls] cert",
                "the agency's certificate, PEM",
                "AGENCYD__TLS__CERT",
            ),
            (
                self.tls.key.as_os_str().is_empty(),
                "[tls] key",
                "the certificate's private key, PEM",
                "AGENCYD__TLS__KEY",
            ),
            (
                self.tls.ca.as_os_str().is_empty(),
                "[tls] ca",
                "the federation CA certificate, PEM: ca.pem from the administrator",
                "AGENCYD__TLS__CA",
            ),
            (
                self.broker.address.trim().is_empty(),
                "[broker] address",
                "host:port of the broker",
                "AGENCYD__BROKER__ADDRESS",
            ),
        ];
        if let Some((_, key, what, env)) = required.into_iter().find(|(missing, ..)| *missing) {
            return Err(ConfigError::Missing {
                file,
                key,
                what,
                env,
            });
        }
        self.check_joint(&file)?;
        self.check_drill(&file)?;
        self.check_desk(&file)
    }

    /// The duty desk's settings, checked even while it is off (so turning it on is safe).
    fn check_desk(&self, file: &str) -> Result<(), ConfigError> {
        let d = &self.desk;
        let bad = |m: String| Err(ConfigError::Invalid(format!("{file}: [desk] {m}")));
        if deconfliction_web::Lang::parse(&d.language).is_none() {
            return bad(format!("language {:?}: zh-CN or en", d.language));
        }
        if deconfliction_web::clock::Clock::parse(&d.time_zone).is_none() {
            return bad(format!(
                "time_zone {:?}: an offset like +08:00",
                d.time_zone
            ));
        }
        if d.tls_cert.is_some() != d.tls_key.is_some() {
            return bad("tls_cert and tls_key go together: set both or neither".into());
        }
        if d.tls_cert.is_none() && !d.listen.ip().is_loopback() {
            return bad(format!(
                "listen = {} is not loopback: set tls_cert and tls_key to serve a network",
                d.listen
            ));
        }
        if !(1..=24 * 60).contains(&d.session_idle_minutes) {
            return bad("session_idle_minutes must be between 1 and 1440".into());
        }
        Ok(())
    }

    /// The duty desk's officers file.
    pub fn desk_officers_path(&self) -> PathBuf {
        self.desk
            .officers
            .clone()
            .unwrap_or_else(|| self.daemon.data_dir.join("desk-officers.toml"))
    }

    /// A drill daemon names its drill and takes part in nothing else.
    fn check_drill(&self, file: &str) -> Result<(), ConfigError> {
        let Some(drill) = &self.drill else {
            return Ok(());
        };
        if !drill_id_ok(&drill.id) {
            return Err(ConfigError::Invalid(format!(
                "{file}: [drill] id {:?}: the drill's id as announced (a-z, 0-9 and '-')",
                drill.id
            )));
        }
        if !self.joint.is_empty() {
            return Err(ConfigError::Invalid(format!(
                "{file}: [drill] and [[joint]] together: a drill daemon takes part in the drill \
                 only; run it beside your live agencyd, with its own data folder"
            )));
        }
        Ok(())
    }

    /// Each joint federation: a usable, unique name, a broker, both shares with a key.
    fn check_joint(&self, file: &str) -> Result<(), ConfigError> {
        let bad = |what: String| ConfigError::Invalid(format!("{file}: [[joint]] {what}"));
        let mut names = std::collections::HashSet::new();
        for j in &self.joint {
            if !joint_name_ok(&j.name) {
                return Err(bad(format!(
                    "name {:?}: use 1 to 32 of a-z, 0-9 and '-'",
                    j.name
                )));
            }
            if !names.insert(j.name.as_str()) {
                return Err(bad(format!("name {:?} is given twice", j.name)));
            }
            if j.broker.trim().is_empty() {
                return Err(bad(format!("{}: broker (host:port) is missing", j.name)));
            }
            for (key, share) in [("share_a", &j.share_a), ("share_b", &j.share_b)] {
                if share.address.trim().is_empty() {
                    return Err(bad(format!("{}: {key}.address is missing", j.name)));
                }
                token_spec::token::PinnedKey::from_hex(&share.public_key, share.key_epoch)
                    .map_err(|e| bad(format!("{}: {key}: {e}", j.name)))?;
                if let Some(previous) = &share.previous_public_key {
                    if share.previous_key_epoch == share.key_epoch {
                        return Err(bad(format!(
                            "{}: {key}.previous_key_epoch must differ from key_epoch",
                            j.name
                        )));
                    }
                    token_spec::token::PinnedKey::from_hex(previous, share.previous_key_epoch)
                        .map_err(|e| bad(format!("{}: {key} (previous): {e}", j.name)))?;
                }
            }
        }
        Ok(())
    }

    fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() && !p.as_os_str().is_empty() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.tls.cert);
        fix(&mut self.tls.key);
        fix(&mut self.tls.ca);
        fix(&mut self.daemon.data_dir);
        for p in [
            &mut self.daemon.socket,
            &mut self.daemon.inbox_dir,
            &mut self.sinks.jsonl,
            &mut self.sinks.webhook_ca,
            &mut self.desk.officers,
            &mut self.desk.tls_cert,
            &mut self.desk.tls_key,
        ]
        .into_iter()
        .flatten()
        {
            fix(p);
        }
        for j in &mut self.joint {
            for p in [&mut j.broker_ca, &mut j.share_a.ca, &mut j.share_b.ca]
                .into_iter()
                .flatten()
            {
                fix(p);
            }
        }
    }

    /// The control socket's path.
    pub fn socket_path(&self) -> PathBuf {
        self.daemon
            .socket
            .clone()
            .unwrap_or_else(crate::control::default_socket_path)
    }

    /// The inbox folder's path.
    pub fn inbox_path(&self) -> PathBuf {
        self.daemon
            .inbox_dir
            .clone()
            .unwrap_or_else(|| self.daemon.data_dir.join("inbox"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn file_and_env_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agencyd.toml");
        std::fs::write(
            &path,
            "[tls]\ncert = \"cert.pem\"\nkey = \"/abs/key.pem\"\nca = \"ca.pem\"\n\
             [broker]\naddress = \"a:1\"\n[sinks]\njsonl = \"alerts.jsonl\"\n",
        )
        .unwrap();
        let env = [
            ("AGENCYD__BROKER__ADDRESS".to_string(), "b:2".to_string()),
            ("AGENCYD__DAEMON__INBOX_POLL_MS".into(), "50".into()),
            ("AGENCYD__SINKS__LOG".into(), "false".into()),
            ("OTHER".into(), "x".into()),
        ];
        let c = DaemonConfig::load(Some(&path), env).unwrap();
        assert_eq!(c.broker.address, "b:2");
        assert_eq!(c.daemon.inbox_poll_ms, 50);
        assert!(!c.sinks.log);
        assert_eq!(c.tls.cert, dir.path().join("cert.pem"));
        assert_eq!(c.tls.key, PathBuf::from("/abs/key.pem"));
        assert_eq!(c.sinks.jsonl, Some(dir.path().join("alerts.jsonl")));
        assert_eq!(c.inbox_path(), dir.path().join("agencyd-data/inbox"));
    }

    #[test]
    fn errors_are_clear() {
        let env = [("AGENCYD__BROKER__ADRESS".to_string(), "x".to_string())];
        let err = DaemonConfig::load(None, env).unwrap_err().to_string();
        assert!(err.contains("adress"), "{err}");
        let env = [("AGENCYD__BROKER".to_string(), "x".to_string())];
        assert!(DaemonConfig::load(None, env).is_err());
        let err = DaemonConfig::load(Some(Path::new("/nonexistent.toml")), [])
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent.toml"), "{err}");
    }
}

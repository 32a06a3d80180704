//! The broker's TOML configuration, with environment overrides.
//!
//! Any key can be overridden by `DECONFLICT_BROKER__<SECTION>__<KEY>` (upper-case, double
//! underscores between levels), e.g. `DECONFLICT_BROKER__SERVER__LISTEN=0.0.0.0:7443`.
//! Relative paths are relative to the configuration file's folder.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const ENV_PREFIX: &str = "DECONFLICT_BROKER__";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("configuration {path} is not valid: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("environment override {var} is not valid: {reason}")]
    Env { var: String, reason: String },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[derive(Default)]
pub struct BrokerConfig {
    pub server: ServerSection,
    pub tls: TlsSection,
    pub secrets: SecretsSection,
    pub token_service: TokenServiceSection,
    pub policy: PolicySection,
    pub federation: FederationSection,
    pub retention: RetentionSection,
    pub store: StoreSection,
    /// Agencies known at start (roles); an admin's later changes are kept over these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agencies: Vec<AgencySection>,
    /// A joint federation's broker (token spec section 5): the two key shares whose token
    /// services make its tokens, published to agencies. None in a home federation; exactly
    /// two in a joint one, whose broker serves no token service itself.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub joint_shares: Vec<JointShareSection>,
    /// Exercises served beside the live federation (see docs/drills.md).
    pub drills: DrillsSection,
    /// Set only in the configuration the live broker derives for one of its drills: never
    /// read from a file, so no live broker can be configured into being a drill by mistake.
    #[serde(skip)]
    pub drill: Option<DrillIdentity>,
}

/// Exercises this broker serves beside itself, each a federation of its own (own port, token
/// key, pepper and store), started and ended by an admin (`deconflict-broker drill`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DrillsSection {
    /// Serve drills at all (a joint broker or a stand-alone token service never does).
    pub enabled: bool,
    /// Where each drill's store and secrets live while it runs (default: `drills` in the data
    /// folder); a drill's folder is removed when it ends.
    pub root: Option<PathBuf>,
    /// Drills running at once.
    pub max_running: usize,
    /// The longest a drill may be started for, in days.
    pub max_days: f64,
    /// After the end is announced, how long participants have to receive it before the drill
    /// stops and its data is purged, in seconds.
    pub end_grace_seconds: u64,
}

impl Default for DrillsSection {
    fn default() -> Self {
        Self {
            enabled: true,
            root: None,
            max_running: 4,
            max_days: 14.0,
            end_grace_seconds: 5,
        }
    }
}

impl DrillsSection {
    pub fn root(&self, data_dir: &Path) -> PathBuf {
        self.root.clone().unwrap_or_else(|| data_dir.join("drills"))
    }
}

/// What a drill's own broker knows of itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrillIdentity {
    pub id: String,
    pub name: String,
    pub starts: i64,
    pub ends: i64,
}

/// One key share of a joint federation, as published by its broker.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JointShareSection {
    /// Whose share, as people say it ("China (Yunnan)", "Lao PDR").
    pub name: String,
    /// The share's public key (64 hex digits): what that side's token service publishes.
    pub public_key: String,
    pub key_epoch: u32,
}

/// Where the ledger lives: the embedded store (sled, one process) or a PostgreSQL-family
/// database shared by any number of broker replicas.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSection {
    /// `sled` (the default: a folder under `server.data_dir`) or `postgres`.
    pub backend: StoreBackend,
    /// sled's page cache, in MiB. The broker's resident memory is about this plus the
    /// in-memory indexes (about 90 bytes per stored token) plus sled's own bookkeeping;
    /// docs/operations.md gives the budget at 10 M stored tokens.
    pub cache_mib: u64,
    /// The database, when `backend = "postgres"`.
    pub postgres: PostgresSection,
}

impl Default for StoreSection {
    fn default() -> Self {
        Self {
            backend: StoreBackend::Sled,
            cache_mib: 256,
            postgres: PostgresSection::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    Sled,
    Postgres,
}

/// The connection string holds a password, so it is read from a file or the environment,
/// never from this file or the command line.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PostgresSection {
    /// A file (0600) holding the connection string, `postgresql://user:pw@host:5432/db` or
    /// `host=... user=... dbname=...`.
    pub url_file: Option<PathBuf>,
    /// Or the environment variable that holds it (a Kubernetes Secret, a systemd credential).
    pub url_env: Option<String>,
    /// The CA that signed the database server's certificate: TLS to the database, verified.
    /// Without it the connection is plain (loopback or a private network only).
    pub ca_cert: Option<PathBuf>,
    /// Connections for reads (the writer and the wake-up listener have one each).
    pub pool_size: usize,
    pub connect_timeout_seconds: u64,
}

impl Default for PostgresSection {
    fn default() -> Self {
        Self {
            url_file: None,
            url_env: None,
            ca_cert: None,
            pool_size: 8,
            connect_timeout_seconds: 5,
        }
    }
}

/// How long ended things are kept, in days (fractions allowed; 0 or less keeps forever).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionSection {
    pub ended_operation_days: f64,
    pub resolved_match_days: f64,
    /// Unread alerts, which also carry relay messages.
    pub alert_days: f64,
    pub sweep_seconds: u64,
}

impl Default for RetentionSection {
    fn default() -> Self {
        Self {
            ended_operation_days: 90.0,
            resolved_match_days: 90.0,
            alert_days: 30.0,
            sweep_seconds: 3600,
        }
    }
}

impl RetentionSection {
    pub fn to_policy(&self) -> crate::ledger::Retention {
        let secs = |days: f64| (days > 0.0).then(|| (days * 86_400.0).round() as i64);
        crate::ledger::Retention {
            ended_operations: secs(self.ended_operation_days),
            resolved_matches: secs(self.resolved_match_days),
            alerts: secs(self.alert_days),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgencySection {
    pub id: String,
    /// `agency`, `watch-centre` or `admin`.
    #[serde(default = "default_role")]
    pub role: String,
    #[serde(default)]
    pub display_name: String,
}

fn default_role() -> String {
    "agency".into()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    pub listen: SocketAddr,
    /// Prometheus text endpoint; keep it on loopback.
    pub metrics_listen: Option<SocketAddr>,
    pub data_dir: PathBuf,
    pub expiry_sweep_seconds: u64,
    /// Plain-TCP gRPC health endpoint for orchestrators that cannot speak mTLS (kubelet).
    pub health_listen: Option<SocketAddr>,
    /// The only folder `admin backup` writes into (each backup a new folder below it);
    /// without it, backups over the network are refused.
    pub backup_root: Option<PathBuf>,
    /// TLS handshakes in progress at once; connections beyond are closed at once (a flood of
    /// half-open connections cannot starve the agencies already connected).
    pub max_pending_handshakes: usize,
    /// Deadline of one call (streams: of opening them), seconds.
    pub request_timeout_seconds: u64,
    /// Concurrent calls (HTTP/2 streams) on one connection.
    pub max_streams_per_connection: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSection {
    pub ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub crl: Option<PathBuf>,
    /// How often the CRL and certificates are checked for changes (0: only on SIGHUP).
    pub reload_poll_seconds: u64,
    /// Also accept TLS 1.2 clients (default: TLS 1.3 only).
    pub allow_tls12: bool,
    /// A CRL past its next-update time: `warn` (serve, and say so loudly) or `refuse`.
    pub stale_crl: crate::transport::tls::StaleCrl,
    /// The namespace of `ca_cert`'s agencies where several CAs are trusted (a joint broker):
    /// their ids read `namespace/id`. Empty: ids as their certificates name them.
    pub namespace: String,
    /// Partner federations' CAs trusted besides `ca_cert` (a joint broker, or a token service
    /// serving a partner's agencies), each with its namespace and its own CRL.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partner_cas: Vec<crate::transport::tls::PartnerTrust>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsSection {
    pub pepper: PathBuf,
    /// The peppers that `deconflict-broker pepper rekey` added, oldest first. Every one is
    /// needed for as long as the store it re-keyed is in use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pepper_rekeys: Vec<PathBuf>,
    /// The key of the audit checkpoints' MAC (32 bytes, 0600), kept outside the store:
    /// whoever can rewrite the store cannot also mint the broker's checkpoints.
    pub audit_key: PathBuf,
}

impl SecretsSection {
    /// Every pepper layer's file, the original first.
    pub fn pepper_paths(&self) -> Vec<PathBuf> {
        std::iter::once(self.pepper.clone())
            .chain(self.pepper_rekeys.iter().cloned())
            .collect()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenServiceSection {
    /// Serve the token service in this process (the default).
    pub enabled: bool,
    pub seed: PathBuf,
    pub key_epoch: u32,
    /// Public key of an external token service (hex), published when `enabled` is false.
    pub external_public_key: Option<String>,
    pub quota_per_minute: u64,
    pub quota_per_day: u64,
    /// Key rotation: the previous epoch's seed file, served alongside the current key until
    /// `previous_valid_until` (RFC 3339, e.g. "2026-12-31T00:00:00Z").
    pub previous_seed: Option<PathBuf>,
    pub previous_key_epoch: u32,
    pub previous_valid_until: Option<String>,
    /// A stand-alone token service mirrors the broker's registry from this address
    /// (`https://host:port`), so that the admin's suspensions and role changes reach it.
    pub registry_broker: Option<String>,
    /// The token service's client certificate and key at the broker (enrolled there with the
    /// token-service role).
    pub registry_cert: Option<PathBuf>,
    pub registry_key: Option<PathBuf>,
    /// How often the mirror is refreshed.
    pub registry_refresh_seconds: u64,
    /// Evaluations are refused once the mirror could not be refreshed for this long: a
    /// suspension must not go unnoticed for longer.
    pub registry_stale_seconds: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicySection {
    pub max_tokens_per_operation: usize,
    pub max_window_days: i64,
    pub match_same_agency: bool,
    /// Checked tokens per second, per agency (sustained).
    pub check_rate_per_second: f64,
    /// Checked tokens an agency may use at once above the sustained rate.
    pub check_burst: f64,
    /// Registered (or added) tokens per second, per agency (sustained).
    pub registration_rate_per_second: f64,
    /// Registered tokens an agency may use at once above the sustained rate.
    pub registration_burst: f64,
    /// Alert streams (Subscribe) one agency may hold open at once.
    pub max_alert_streams_per_agency: usize,
    pub max_message_bytes: usize,
    /// Refuse agencies that hold a valid certificate but are not in the registry.
    pub require_enrolment: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FederationSection {
    pub h3_resolution: u32,
    pub h3_disk_radius: u32,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7443)),
            metrics_listen: None,
            data_dir: PathBuf::from("data"),
            expiry_sweep_seconds: 30,
            health_listen: None,
            backup_root: None,
            max_pending_handshakes: 256,
            request_timeout_seconds: 60,
            max_streams_per_connection: 128,
        }
    }
}

impl Default for TlsSection {
    fn default() -> Self {
        Self {
            ca_cert: PathBuf::from("pki/ca.pem"),
            server_cert: PathBuf::from("pki/broker.pem"),
            server_key: PathBuf::from("pki/broker.key"),
            crl: Some(PathBuf::from("pki/crl.pem")),
            reload_poll_seconds: 5,
            allow_tls12: false,
            stale_crl: crate::transport::tls::StaleCrl::Warn,
            namespace: String::new(),
            partner_cas: Vec::new(),
        }
    }
}

impl Default for SecretsSection {
    fn default() -> Self {
        Self {
            pepper: PathBuf::from("secrets/pepper"),
            pepper_rekeys: Vec::new(),
            audit_key: PathBuf::from("secrets/audit-checkpoint.key"),
        }
    }
}

impl Default for TokenServiceSection {
    fn default() -> Self {
        Self {
            enabled: true,
            seed: PathBuf::from("secrets/token-service.seed"),
            key_epoch: 1,
            external_public_key: None,
            quota_per_minute: 100_000,
            quota_per_day: 5_000_000,
            previous_seed: None,
            previous_key_epoch: 0,
            previous_valid_until: None,
            registry_broker: None,
            registry_cert: None,
            registry_key: None,
            registry_refresh_seconds: 5,
            registry_stale_seconds: 60,
        }
    }
}

impl Default for PolicySection {
    fn default() -> Self {
        Self {
            max_tokens_per_operation: 10_000,
            max_window_days: 366,
            match_same_agency: true,
            check_rate_per_second: 2_000.0,
            check_burst: 20_000.0,
            registration_rate_per_second: 5_000.0,
            registration_burst: 50_000.0,
            max_alert_streams_per_agency: 4,
            max_message_bytes: 1024 * 1024,
            require_enrolment: false,
        }
    }
}

impl Default for FederationSection {
    fn default() -> Self {
        Self {
            h3_resolution: 9,
            h3_disk_radius: 1,
        }
    }
}

impl BrokerConfig {
    /// Reads `path`, applies environment overrides, and resolves relative paths.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::from_toml(&text, base, std::env::vars()).map_err(|e| match e {
            ConfigError::Parse { reason, .. } => ConfigError::Parse {
                path: path.to_owned(),
                reason,
            },
            other => other,
        })
    }

    pub fn from_toml(
        text: &str,
        base: &Path,
        env: impl Iterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let parse = |reason: String| ConfigError::Parse {
            path: PathBuf::from("<config>"),
            reason,
        };
        let mut value: toml::Table = toml::from_str(text).map_err(|e| parse(e.to_string()))?;
        env_config::apply_overrides(&mut value, ENV_PREFIX, env_config::Depth::Any, env).map_err(
            |e| ConfigError::Env {
                var: e.var,
                reason: e.problem.to_string(),
            },
        )?;
        let mut config: BrokerConfig = toml::Value::Table(value)
            .try_into()
            .map_err(|e: toml::de::Error| parse(e.to_string()))?;
        config.resolve_paths(base);
        Ok(config)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.server.data_dir);
        if let Some(root) = &mut self.server.backup_root {
            fix(root);
        }
        if let Some(root) = &mut self.drills.root {
            fix(root);
        }
        fix(&mut self.tls.ca_cert);
        fix(&mut self.tls.server_cert);
        fix(&mut self.tls.server_key);
        if let Some(crl) = &mut self.tls.crl {
            fix(crl);
        }
        for partner in &mut self.tls.partner_cas {
            fix(&mut partner.ca_cert);
            if let Some(crl) = &mut partner.crl {
                fix(crl);
            }
        }
        fix(&mut self.secrets.pepper);
        fix(&mut self.secrets.audit_key);
        for p in &mut self.secrets.pepper_rekeys {
            fix(p);
        }
        fix(&mut self.token_service.seed);
        for p in [
            &mut self.token_service.previous_seed,
            &mut self.token_service.registry_cert,
            &mut self.token_service.registry_key,
        ]
        .into_iter()
        .flatten()
        {
            fix(p);
        }
    }
}

/// The configuration as TOML (for `dev` mode and tests that run the broker as a process).
pub fn to_toml(config: &BrokerConfig) -> Result<String, String> {
    toml::to_string(config).map_err(|e| e.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_and_relative_paths() {
        let env = vec![
            (
                "DECONFLICT_BROKER__SERVER__LISTEN".to_string(),
                "0.0.0.0:9000".to_string(),
            ),
            (
                "DECONFLICT_BROKER__POLICY__MATCH_SAME_AGENCY".to_string(),
                "false".to_string(),
            ),
        ];
        let c = BrokerConfig::from_toml(
            "[server]\ndata_dir = \"d\"\n",
            Path::new("/etc/dcf"),
            env.into_iter(),
        )
        .unwrap();
        assert_eq!(c.server.listen.port(), 9000);
        assert!(!c.policy.match_same_agency);
        assert_eq!(c.server.data_dir, PathBuf::from("/etc/dcf/d"));
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = BrokerConfig::from_toml(
            "[server]\nlisten_addr = 1\n",
            Path::new("."),
            std::iter::empty(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("listen_addr"), "{err}");
    }
}

//! Shared harness for the end-to-end tests: a federation made at test time (CA, broker and
//! agency certificates from rcgen), a real broker on `127.0.0.1:0` in a temp folder, and
//! mTLS clients per agency.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use deconflict_broker::config::BrokerConfig;
use deconflict_broker::identity::AgencyId;
use deconflict_broker::pki::dir::PkiDir;
use deconflict_broker::pki::{self, CertAndKey, Validity};
use deconflict_broker::server::{Mode, RunningBroker, start};
use deconfliction_proto::v1;
use deconfliction_proto::v1::broker_client::BrokerClient;
use rand::RngCore;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

pub use calls::{contact_card, first_match_id, match_of, register_shared, subscribe};
pub use deconfliction_proto::v1::SelectorKind;

/// A federation in a temp folder: its PKI, its broker's configuration, and (while running)
/// the broker.
pub struct Federation {
    pub dir: tempfile::TempDir,
    pub pki: PkiDir,
    pub config: BrokerConfig,
    pub broker: Option<RunningBroker>,
}

impl Federation {
    /// Creates the PKI and configuration, and starts the broker.
    pub async fn start(agencies: &[&str]) -> Self {
        Self::start_with(agencies, |_| {}).await
    }

    pub async fn start_with(agencies: &[&str], adjust: impl FnOnce(&mut BrokerConfig)) -> Self {
        Self::start_named("Test federation CA", agencies, adjust).await
    }

    /// As [`Federation::start_with`], with a CA of its own name (two federations trusted
    /// side by side, as a joint broker does, need CAs with different names).
    pub async fn start_named(
        ca_name: &str,
        agencies: &[&str],
        adjust: impl FnOnce(&mut BrokerConfig),
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let pki = PkiDir::create(&dir.path().join("pki"), ca_name, 2).unwrap();
        let server = pki
            .issue_server(
                "broker",
                &["localhost".into()],
                &["127.0.0.1".parse().unwrap()],
                2,
            )
            .unwrap();
        PkiDir::save(
            &server,
            &dir.path().join("pki/broker.pem"),
            &dir.path().join("pki/broker.key"),
        )
        .unwrap();
        for a in agencies {
            let cert = pki.issue_agency(&AgencyId::parse(a).unwrap(), 2).unwrap();
            save_agency(dir.path(), a, &cert);
        }
        let mut config = BrokerConfig::default();
        config.server.listen = "127.0.0.1:0".parse().unwrap();
        config.server.data_dir = dir.path().join("data");
        config.server.expiry_sweep_seconds = 1;
        config.tls.ca_cert = dir.path().join("pki/ca.pem");
        config.tls.server_cert = dir.path().join("pki/broker.pem");
        config.tls.server_key = dir.path().join("pki/broker.key");
        config.tls.crl = Some(pki.crl_path());
        config.tls.reload_poll_seconds = 0;
        config.secrets.pepper = dir.path().join("secrets/pepper");
        config.secrets.audit_key = dir.path().join("secrets/audit-checkpoint.key");
        config.token_service.seed = dir.path().join("secrets/token-service.seed");
        adjust(&mut config);
        if pg::suite_on_postgres()
            && config.store.backend == deconflict_broker::config::StoreBackend::Sled
        {
            pg::use_postgres(&mut config, dir.path());
        }
        let mut fed = Self {
            dir,
            pki,
            config,
            broker: None,
        };
        fed.start_broker().await;
        fed
    }

    pub async fn start_broker(&mut self) {
        assert!(self.broker.is_none(), "broker already running");
        let running = start(&self.config, Mode::Broker).await.unwrap();
        // Later starts reuse the port, so clients made before a restart still work.
        self.config.server.listen = running.addr;
        self.broker = Some(running);
    }

    pub async fn stop_broker(&mut self) {
        if let Some(b) = self.broker.take() {
            b.shutdown().await;
        }
    }

    pub async fn restart(&mut self) {
        self.stop_broker().await;
        self.start_broker().await;
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.config.server.listen
    }

    pub fn agency_dir(&self, agency: &str) -> PathBuf {
        self.dir.path().join("agencies").join(agency)
    }

    pub fn ca_pem(&self) -> String {
        self.pki.ca().cert_pem.clone()
    }

    /// An mTLS client for `agency`, with the certificate issued at start.
    pub async fn client(&self, agency: &str) -> BrokerClient<Channel> {
        BrokerClient::new(self.channel(agency).await.unwrap())
    }

    pub async fn channel(&self, agency: &str) -> Result<Channel, tonic::transport::Error> {
        self.channel_at(self.addr(), agency).await
    }

    /// The same, to another broker of this federation (a replica on the same database).
    pub async fn channel_at(
        &self,
        addr: std::net::SocketAddr,
        agency: &str,
    ) -> Result<Channel, tonic::transport::Error> {
        let dir = self.agency_dir(agency);
        let cert = std::fs::read_to_string(dir.join("cert.pem")).unwrap();
        let key = std::fs::read_to_string(dir.join("key.pem")).unwrap();
        connect(addr, &self.ca_pem(), Some((&cert, &key))).await
    }

    pub async fn client_at(
        &self,
        addr: std::net::SocketAddr,
        agency: &str,
    ) -> BrokerClient<Channel> {
        BrokerClient::new(self.channel_at(addr, agency).await.unwrap())
    }

    /// The broker's store, as its configuration names it (the sled folder, or the database),
    /// for tests that look at or tamper with what is stored. The broker must be stopped for
    /// sled (it holds the folder's lock).
    pub fn open_store(&self) -> std::sync::Arc<dyn deconflict_broker::store::Store> {
        deconflict_broker::server::open_store(&self.config).unwrap()
    }

    /// Every file holding what the broker stored: its data folder and, on PostgreSQL, the
    /// database cluster's own files (tables and write-ahead log), for the leak scans.
    pub fn stored_files(&self) -> Vec<PathBuf> {
        let mut files = scan::files_under(self.data_dir());
        if self.config.store.backend == deconflict_broker::config::StoreBackend::Postgres {
            files.extend(scan::files_under(&pg::shared().data()));
        }
        files
    }

    /// Another broker process on this federation's store (a replica: same database, same
    /// secrets, its own port and data folder), started in this process.
    pub async fn start_replica(&self, n: usize) -> RunningBroker {
        let mut config = self.config.clone();
        config.server.listen = "127.0.0.1:0".parse().unwrap();
        config.server.data_dir = self.dir.path().join(format!("replica-{n}"));
        start(&config, Mode::Broker).await.unwrap()
    }

    /// A server certificate of this federation's CA for localhost and 127.0.0.1 (a second
    /// service beside the broker: a token service, a joint broker), saved as `dir/name.pem`
    /// and `dir/name.key`; their paths.
    pub fn server_cert(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        localhost_server_cert(&self.pki, dir, name)
    }

    /// This federation's configuration for a second service beside its broker (a token
    /// service, say) in `root`: its own address, data folder and localhost certificate, and
    /// its token-service seed at `root/name.seed`.
    pub fn service_config(&self, root: &Path, name: &str) -> BrokerConfig {
        let (cert, key) = self.server_cert(root, name);
        let mut c = self.config.clone();
        c.server.listen = "127.0.0.1:0".parse().unwrap();
        c.server.data_dir = root.join("data");
        c.tls.server_cert = cert;
        c.tls.server_key = key;
        c.token_service.seed = root.join(format!("{name}.seed"));
        c
    }

    /// The broker's data folder (for leak scans).
    pub fn data_dir(&self) -> &Path {
        &self.config.server.data_dir
    }
}

/// A server certificate of `pki`'s CA for localhost and 127.0.0.1, saved as `dir/name.pem` and
/// `dir/name.key`; their paths.
pub fn localhost_server_cert(pki: &PkiDir, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let c = pki
        .issue_server(
            name,
            &["localhost".into()],
            &["127.0.0.1".parse().unwrap()],
            2,
        )
        .unwrap();
    let (cert, key) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    PkiDir::save(&c, &cert, &key).unwrap();
    (cert, key)
}

fn save_agency(root: &Path, agency: &str, cert: &CertAndKey) {
    let dir = root.join("agencies").join(agency);
    PkiDir::save(cert, &dir.join("cert.pem"), &dir.join("key.pem")).unwrap();
}

/// Connects to `addr` over TLS, trusting `ca_pem`, presenting `identity` if given.
pub async fn connect(
    addr: std::net::SocketAddr,
    ca_pem: &str,
    identity: Option<(&str, &str)>,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .domain_name("localhost");
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    Endpoint::from_shared(format!("https://{addr}"))?
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(20))
        .connect()
        .await
}

/// A fresh, random 32-byte token.
pub fn token() -> Vec<u8> {
    let mut t = vec![0u8; 32];
    rand::thread_rng().fill_bytes(&mut t);
    t
}

pub fn entry(token: &[u8], kind: SelectorKind, local_ref: u64) -> v1::TokenEntry {
    v1::TokenEntry {
        token: token.to_vec(),
        kind: kind as i32,
        local_ref,
    }
}

pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// A window from an hour ago to `hours` from now.
pub fn window_hours(hours: i64) -> v1::Window {
    v1::Window {
        start_unix: now() - 3600,
        end_unix: now() + hours * 3600,
    }
}

pub fn registration(tokens: Vec<v1::TokenEntry>) -> v1::RegisterOperationRequest {
    v1::RegisterOperationRequest {
        operation_id: uuid::Uuid::new_v4().to_string(),
        window: Some(window_hours(24)),
        tokens,
        case_reference: String::new(),
    }
}

/// Reads the next `n` alerts from a subscription, failing after `within`.
pub async fn next_alerts(
    stream: &mut tonic::Streaming<v1::Alert>,
    n: usize,
    within: Duration,
) -> Vec<v1::Alert> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    while out.len() < n {
        match tokio::time::timeout_at(deadline, stream.message()).await {
            Ok(Ok(Some(alert))) => out.push(alert),
            Ok(Ok(None)) => panic!("alert stream ended after {} of {n} alerts", out.len()),
            Ok(Err(status)) => panic!("alert stream failed: {status}"),
            Err(_) => panic!("only {} of {n} alerts within {within:?}", out.len()),
        }
    }
    out
}

/// Asserts that no alert arrives within `within`.
pub async fn no_alert(stream: &mut tonic::Streaming<v1::Alert>, within: Duration) {
    if let Ok(Ok(Some(alert))) = tokio::time::timeout(within, stream.message()).await {
        panic!("unexpected alert {alert:?}");
    }
}

/// Issues a certificate for `agency` with an explicit validity (e.g. already expired).
pub fn agency_cert_with(ca: &CertAndKey, agency: &str, validity: Validity) -> CertAndKey {
    pki::issue_agency(ca, &AgencyId::parse(agency).unwrap(), validity).unwrap()
}

/// Every alert of the subscription's backlog, until `quiet` passes with nothing new.
pub async fn drain(stream: &mut tonic::Streaming<v1::Alert>, quiet: Duration) -> Vec<v1::Alert> {
    let mut out = Vec::new();
    while let Ok(Ok(Some(alert))) = tokio::time::timeout(quiet, stream.message()).await {
        out.push(alert);
    }
    out
}

/// A binary of the workspace next to this test executable (target/<profile>/), built by
/// `cargo test --workspace` (the crates that own them have integration tests of their own).
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let bin = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: run the suite with `cargo test --workspace` (or build it)",
        bin.display()
    );
    bin
}

/// The `deconflict-broker` binary.
pub fn broker_binary() -> PathBuf {
    workspace_binary("deconflict-broker")
}

/// The `deconflict` binary.
pub fn deconflict_binary() -> PathBuf {
    workspace_binary("deconflict")
}

/// A free loopback port (bound, then released) for a broker run as a child process.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Federation {
    /// Writes the configuration as a TOML file, for a broker run as a child process.
    pub fn write_config(&self) -> PathBuf {
        let path = self.dir.path().join("broker.toml");
        std::fs::write(&path, toml_string(&self.config)).unwrap();
        path
    }
}

fn toml_string(config: &BrokerConfig) -> String {
    deconflict_broker::config::to_toml(config).unwrap()
}

// ----- Token service helpers -----------------------------------------------------------------

/// The broker's key epoch as configured, and the public key derived from the token-service seed
/// file: what the federation administrator hands each agency to pin. (The broker creates the
/// seed on first start, so call this after [`Federation::start`].)
pub fn pinned_key(config: &BrokerConfig) -> token_spec::token::PinnedKey {
    let seed = std::fs::read(&config.token_service.seed).unwrap();
    let service =
        token_spec::token::derive_keypair_from_seed(&seed, token_spec::token::TOKEN_SERVICE_INFO)
            .unwrap();
    token_spec::token::PinnedKey::new(service.public_key(), config.token_service.key_epoch).unwrap()
}

/// Writes a 32-byte token-service seed where `config` expects it, before the broker starts
/// (use inside [`Federation::start_with`]).
pub fn write_token_seed(config: &BrokerConfig, seed: &[u8; 32]) {
    write_secret(&config.token_service.seed, seed);
}

/// Seeds the registry with `(agency, role)` pairs (`watch-centre`, `admin`, ...): use inside
/// [`Federation::start_with`].
pub fn enrol_roles(config: &mut BrokerConfig, roles: &[(&str, &str)]) {
    config.agencies = roles
        .iter()
        .map(|(id, role)| deconflict_broker::config::AgencySection {
            id: (*id).into(),
            role: (*role).into(),
            display_name: String::new(),
        })
        .collect();
}

/// Writes a secret file as an operator must (mode 0600): the broker refuses any other.
pub fn write_secret(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

impl Federation {
    /// A token deriver for `agency` against the broker's token service, pinning the key the
    /// administrator would hand out.
    pub async fn deriver(&self, agency: &str) -> token_spec::token::TokenDeriver {
        token_spec::token::TokenDeriver::from_channel(
            self.channel(agency).await.unwrap(),
            pinned_key(&self.config),
        )
    }

    /// `agency`'s certificate and key (PEM), as saved at start.
    pub fn agency_pem(&self, agency: &str) -> (String, String) {
        let dir = self.agency_dir(agency);
        (
            std::fs::read_to_string(dir.join("cert.pem")).unwrap(),
            std::fs::read_to_string(dir.join("key.pem")).unwrap(),
        )
    }
}

/// The wire kind of a normalization kind.
pub fn wire_kind(kind: token_spec::normalize::SelectorKind) -> SelectorKind {
    use token_spec::normalize::SelectorKind as K;
    match kind {
        K::Person => SelectorKind::Person,
        K::Phone => SelectorKind::Phone,
        K::Plate => SelectorKind::Plate,
        K::Vin => SelectorKind::Vin,
        K::Imei => SelectorKind::Imei,
        K::Email => SelectorKind::Email,
        K::Iban => SelectorKind::Iban,
        K::Wallet => SelectorKind::Wallet,
        K::Handle => SelectorKind::Handle,
        K::Address => SelectorKind::Address,
        K::Geo => SelectorKind::Geo,
        K::Cnid => SelectorKind::Cnid,
        K::Passport => SelectorKind::Passport,
        K::Permit => SelectorKind::Permit,
        K::Card => SelectorKind::Card,
        K::Org => SelectorKind::Org,
    }
}

/// Normalizes `selectors`, derives their tokens through `deriver`, and returns one entry per
/// token, `local_ref` being the selector's index (a geo selector gives several entries). On
/// any error nothing is returned, so nothing can be registered.
pub async fn selector_entries(
    deriver: &mut token_spec::token::TokenDeriver,
    selectors: &[token_spec::normalize::Selector],
) -> Result<Vec<v1::TokenEntry>, token_spec::token::TokenError> {
    let params = token_spec::normalize::FederationParams::default();
    let mut forms = Vec::new();
    let mut owners = Vec::new();
    for (i, s) in selectors.iter().enumerate() {
        for f in token_spec::normalize::canonical_forms_tagged(s, &params).unwrap() {
            // A name's Pinyin form has a kind of its own, as agencyd sends it.
            let kind = match f.form {
                token_spec::normalize::Form::Pinyin => SelectorKind::PersonPinyin,
                _ => wire_kind(s.kind()),
            };
            forms.push(f.bytes);
            owners.push((i as u64, kind));
        }
    }
    let tokens = deriver.tokens(&forms).await?;
    Ok(tokens
        .iter()
        .zip(owners)
        .map(|(t, (i, kind))| entry(t, kind, i))
        .collect())
}

// ----- agencyd helpers -----------------------------------------------------------------------

/// A configuration for an in-process `agencyd` of `agency` against this federation's broker,
/// with everything (store, socket, inbox, JSON-lines sink) under `root`, and short poll and
/// retry intervals so that tests run quickly.
pub fn agencyd_config(
    fed: &Federation,
    agency: &str,
    root: &Path,
) -> agency_client::daemon::DaemonConfig {
    std::fs::create_dir_all(root).unwrap();
    let ca = root.join("ca.pem");
    std::fs::write(&ca, fed.ca_pem()).unwrap();
    let pin = pinned_key(&fed.config);
    let mut c = agency_client::daemon::DaemonConfig::default();
    c.tls.cert = fed.agency_dir(agency).join("cert.pem");
    c.tls.key = fed.agency_dir(agency).join("key.pem");
    c.tls.ca = ca;
    c.broker.address = fed.addr().to_string();
    c.broker.tls_domain = Some("localhost".into());
    c.broker.call_timeout_seconds = 10;
    c.broker.connect_timeout_seconds = 2;
    c.token_service.public_key = hex::encode(pin.public_key());
    c.token_service.key_epoch = pin.epoch();
    c.daemon.data_dir = root.join("data");
    c.daemon.socket = Some(root.join("agencyd.sock"));
    c.daemon.inbox_dir = Some(root.join("inbox"));
    c.daemon.inbox_poll_ms = 50;
    c.daemon.retry_initial_ms = 100;
    c.daemon.retry_max_ms = 500;
    c.sinks.jsonl = Some(root.join("alerts.jsonl"));
    c
}

/// Polls `probe` every 50 ms until it returns Some, failing after `within`.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Writes `text` into `dir` as `name` the way an operation file must be dropped: written under
/// a `.tmp` name, then renamed.
pub fn drop_file(dir: &Path, name: &str, text: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let tmp = dir.join(format!("{name}.tmp"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

pub mod agencyd;
pub mod calls;
pub mod chrome;
pub mod console;
pub mod desk;
pub mod drill;
pub mod joint;
pub mod local;
pub mod pg;
pub mod scan;
pub mod sim;
pub mod web;

//! The controller's side of the broker: its configuration (`controller.toml`), the admin
//! connection to the live broker that starts, halts and ends the drill, and the same
//! certificate's view of the drill's matches (an admin may read `Oversight`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use deconfliction_proto::v1;
use deconfliction_proto::v1::admin_client::AdminClient;
use deconfliction_proto::v1::oversight_client::OversightClient;
use serde::Deserialize;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::scenario::Scenario;

/// `controller.toml`. Relative paths are relative to the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControllerConfig {
    /// The live broker, `https://host:port`; drills are served on the same host.
    pub broker: String,
    /// The name the broker's certificate holds (default: the host of `broker`).
    #[serde(default)]
    pub server_name: Option<String>,
    pub ca: PathBuf,
    /// An admin certificate and key of the federation.
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The simulated bureaus' certificates: `<id>.pem` and `<id>.key`, or `<id>/cert.pem` and
    /// `<id>/key.pem`, issued by the federation CA like any agency's.
    pub parties_dir: PathBuf,
    /// Where the simulated bureaus' daemons keep their (exercise-only) data while it runs.
    pub work_dir: PathBuf,
}

impl ControllerConfig {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("controller configuration {}: {e}", path.display()))?;
        let mut c: Self = toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("controller configuration {}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [
            &mut c.ca,
            &mut c.cert,
            &mut c.key,
            &mut c.parties_dir,
            &mut c.work_dir,
        ] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        Ok(c)
    }

    /// The host of `broker`.
    pub fn host(&self) -> String {
        let rest = self.broker.split("://").nth(1).unwrap_or(&self.broker);
        match rest.strip_prefix('[') {
            Some(v6) => format!("[{}]", v6.split(']').next().unwrap_or(v6)),
            None => rest.split([':', '/']).next().unwrap_or(rest).to_owned(),
        }
    }

    /// A simulated bureau's certificate and key.
    pub fn party_files(&self, id: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
        let flat = (
            self.parties_dir.join(format!("{id}.pem")),
            self.parties_dir.join(format!("{id}.key")),
        );
        let nested = (
            self.parties_dir.join(id).join("cert.pem"),
            self.parties_dir.join(id).join("key.pem"),
        );
        [flat, nested]
            .into_iter()
            .find(|(c, k)| c.exists() && k.exists())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "no certificate for simulated bureau {id} in {} ({id}.pem and {id}.key, or \
                     {id}/cert.pem and {id}/key.pem): issue one with `deconflict-broker pki \
                     issue-agency --agency {id}`",
                    self.parties_dir.display()
                )
            })
    }

    fn tls(&self) -> anyhow::Result<ClientTlsConfig> {
        let read = |p: &PathBuf| {
            std::fs::read_to_string(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))
        };
        let host = self.host();
        let name = self
            .server_name
            .clone()
            .unwrap_or_else(|| host.trim_matches(['[', ']']).to_owned());
        Ok(ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(read(&self.ca)?))
            .identity(Identity::from_pem(read(&self.cert)?, read(&self.key)?))
            .domain_name(name))
    }

    async fn channel(&self, url: &str) -> anyhow::Result<Channel> {
        Endpoint::from_shared(url.to_owned())
            .map_err(|e| anyhow::anyhow!("{url}: {e}"))?
            .tls_config(self.tls()?)?
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .connect()
            .await
            .map_err(|e| anyhow::anyhow!("cannot reach {url}: {e}"))
    }
}

/// A drill the broker started.
#[derive(Debug, Clone)]
pub struct Started {
    pub drill_id: String,
    pub name: String,
    pub port: u16,
    /// `host:port` for participants' `[broker] address`.
    pub address: String,
    pub public_key_hex: String,
    pub key_epoch: u32,
    pub starts_unix: i64,
    pub ends_unix: i64,
}

impl Started {
    /// What a trainee adds to a second agencyd's configuration.
    pub fn join_snippet(&self) -> String {
        format!(
            "[drill]\nid = \"{}\"\n\n[broker]\naddress = \"{}\"\n\n[token_service]\npublic_key = \
             \"{}\"\nkey_epoch = {}\n",
            self.drill_id, self.address, self.public_key_hex, self.key_epoch
        )
    }
}

pub struct Controller {
    pub config: ControllerConfig,
    admin: AdminClient<Channel>,
}

fn refused(what: &str, s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!(
        "{what}: the broker refused: {} ({:?})",
        s.message(),
        s.code()
    )
}

impl Controller {
    pub async fn connect(config: ControllerConfig) -> anyhow::Result<Self> {
        let admin = AdminClient::new(config.channel(&config.broker).await?);
        Ok(Self { config, admin })
    }

    /// Starts the scenario's drill (under `id` when given), with its simulated bureaus.
    pub async fn start(
        &mut self,
        scenario: &Scenario,
        id: Option<&str>,
        minute_seconds: f64,
        port: u16,
    ) -> anyhow::Result<Started> {
        let drill_id = id.unwrap_or(&scenario.drill.id).to_owned();
        let seconds = (scenario.drill.duration_minutes * minute_seconds)
            .ceil()
            .max(1.0) as u64;
        let simulated = scenario
            .parties
            .iter()
            .map(|p| v1::EnrolAgencyRequest {
                agency_id: p.id.clone(),
                role: v1::Role::Agency as i32,
                display_name: p.name.clone(),
            })
            .collect();
        let s = self
            .admin
            .start_drill(v1::StartDrillRequest {
                drill_id: drill_id.clone(),
                name: scenario.drill.name.clone(),
                duration_seconds: seconds,
                port: u32::from(port),
                simulated,
            })
            .await
            .map_err(|s| refused("starting the drill", s))?
            .into_inner();
        let info = s.info.unwrap_or_default();
        let port = u16::try_from(s.port).map_err(|_| anyhow::anyhow!("port {}", s.port))?;
        Ok(Started {
            drill_id,
            name: info.name,
            port,
            address: format!("{}:{port}", self.config.host()),
            public_key_hex: hex::encode(&s.token_service_public_key),
            key_epoch: s.token_service_key_epoch,
            starts_unix: info.starts_unix,
            ends_unix: info.ends_unix,
        })
    }

    pub async fn halt(&mut self, drill_id: &str, reason: &str) -> anyhow::Result<()> {
        self.admin
            .halt_drill(v1::HaltDrillRequest {
                drill_id: drill_id.to_owned(),
                reason: reason.to_owned(),
            })
            .await
            .map_err(|s| refused("halting the drill", s))?;
        Ok(())
    }

    /// Ends the drill: participants are told, its data purged. Returns the records purged.
    pub async fn end(&mut self, drill_id: &str) -> anyhow::Result<u64> {
        Ok(self
            .admin
            .end_drill(v1::EndDrillRequest {
                drill_id: drill_id.to_owned(),
            })
            .await
            .map_err(|s| refused("ending the drill", s))?
            .into_inner()
            .records_purged)
    }

    /// The drill's matches as its watch centre sees them, resolved ones included (one look;
    /// to look again and again, keep a [`Controller::watch`]).
    pub async fn matches(&self, started: &Started) -> anyhow::Result<Vec<v1::MatchMetadata>> {
        self.watch(started).await?.matches().await
    }

    /// A connection to the drill's watch-centre view, kept for repeated looks.
    pub async fn watch(&self, started: &Started) -> anyhow::Result<DrillWatch> {
        let url = format!("https://{}", started.address);
        Ok(DrillWatch {
            oversight: OversightClient::new(self.config.channel(&url).await?),
        })
    }
}

/// The drill's matches, read through one connection.
pub struct DrillWatch {
    oversight: OversightClient<Channel>,
}

impl DrillWatch {
    pub async fn matches(&self) -> anyhow::Result<Vec<v1::MatchMetadata>> {
        let mut oversight = self.oversight.clone();
        let mut out = Vec::new();
        let mut token = String::new();
        loop {
            let page = oversight
                .list_matches(v1::ListMatchesRequest {
                    include_resolved: true,
                    page_token: token,
                    ..Default::default()
                })
                .await
                .map_err(|s| refused("listing the drill's matches", s))?
                .into_inner();
            out.extend(page.matches);
            if page.next_page_token.is_empty() {
                return Ok(out);
            }
            token = page.next_page_token;
        }
    }
}

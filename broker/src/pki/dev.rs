//! `deconflict-broker dev`: a development federation folder, created on first start.
//!
//! Layout (all under one folder, by default `./dev-federation`):
//! `broker.toml`, `pki/` (CA, broker certificate, CRL), `agencies/<id>/` (agency certificate,
//! key and the CA), `secrets/` (pepper and token-service seed), `data/` (the store).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

use crate::identity::AgencyId;
use crate::pki::dir::{PkiDir, PkiDirError};

/// The agencies a development federation starts with.
pub const DEV_AGENCIES: &[&str] = &["yn-psb", "gd-psb", "gx-psb", "national-bureau"];
/// The development federation's watch centre (its certificate beside the agencies', its role
/// seeded in `broker.toml`), for `deconflict-broker watch` and the console.
pub const DEV_WATCH_CENTRE: &str = "watch-centre";

#[derive(Debug, thiserror::Error)]
pub enum DevError {
    #[error(transparent)]
    Pki(#[from] PkiDirError),
    #[error("{path}: {reason}")]
    Io { path: String, reason: String },
}

/// Creates the folder if it has no `broker.toml` yet. Returns true when it was created.
pub fn ensure_dev_federation(dir: &Path, listen: SocketAddr) -> Result<bool, DevError> {
    let config_path = dir.join("broker.toml");
    if config_path.exists() {
        return Ok(false);
    }
    let io = |e: std::io::Error| DevError::Io {
        path: dir.display().to_string(),
        reason: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let pki = PkiDir::create(&dir.join("pki"), "Development federation CA", 365)?;
    let server = pki.issue_server(
        "deconflict-broker",
        &["localhost".to_string()],
        &[IpAddr::V4(Ipv4Addr::LOCALHOST)],
        365,
    )?;
    PkiDir::save(
        &server,
        &dir.join("pki/broker.pem"),
        &dir.join("pki/broker.key"),
    )?;
    for id in DEV_AGENCIES.iter().chain([&DEV_WATCH_CENTRE]) {
        let agency = AgencyId::parse_local(id).map_err(|e| DevError::Io {
            path: (*id).to_string(),
            reason: e.to_string(),
        })?;
        let cert = pki.issue_agency(&agency, 365)?;
        let folder = dir.join("agencies").join(id);
        PkiDir::save(&cert, &folder.join("cert.pem"), &folder.join("key.pem"))?;
        std::fs::write(folder.join("ca.pem"), &pki.ca().cert_pem).map_err(io)?;
    }
    let config = format!(
        "# Development federation: NOT for production (keys were generated on this machine).\n\
         [server]\nlisten = \"{listen}\"\ndata_dir = \"data\"\nmetrics_listen = \"127.0.0.1:0\"\n\n\
         [tls]\nca_cert = \"pki/ca.pem\"\nserver_cert = \"pki/broker.pem\"\n\
         server_key = \"pki/broker.key\"\ncrl = \"pki/crl.pem\"\n\n\
         [secrets]\npepper = \"secrets/pepper\"\n\n\
         [token_service]\nseed = \"secrets/token-service.seed\"\nkey_epoch = 1\n\n\
         [[agencies]]\nid = \"{DEV_WATCH_CENTRE}\"\nrole = \"watch-centre\"\n\
         display_name = \"值班中心 (development)\"\n"
    );
    // The watch centre's console, ready to serve once an officer is added.
    let console = format!(
        "# The watch centre's console for the development federation (docs/console.md).\n\
         [console]\nofficers = \"officers.toml\"\n\n\
         [broker]\naddress = \"https://127.0.0.1:{port}\"\nca = \"pki/ca.pem\"\n\
         cert = \"agencies/{DEV_WATCH_CENTRE}/cert.pem\"\nkey = \"agencies/{DEV_WATCH_CENTRE}/key.pem\"\n",
        port = listen.port()
    );
    std::fs::write(dir.join("console.toml"), console).map_err(io)?;
    std::fs::write(&config_path, config).map_err(io)?;
    Ok(true)
}

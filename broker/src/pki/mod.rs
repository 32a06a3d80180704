//! Certificate tooling for the federation's operators: making certificates and CRLs
//! (`certs`), the PKI folder the `pki` subcommands keep (`dir`), and the development
//! federation (`dev`). The serving path never calls into this module; it only reads the files.

mod certs;
pub mod dev;
pub mod dir;

pub use certs::{
    CertAndKey, PkiError, Revoked, Validity, create_ca, issue_agency, issue_server, serial_of,
    write_crl, write_crl_between,
};

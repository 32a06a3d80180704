//! The contract is usable outside Rust: a Python grpcio client, with stubs generated from
//! `proto/` at test time, registers and checks over mTLS against the Rust broker.
//! It needs Python 3 with `venv`; grpcio and grpcio-tools come from PyPI, installed once into a
//! virtual environment under the build folder (`target/python-venv/`), never into the
//! machine's own Python.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use deconfliction_proto::v1;
use deconfliction_tests::*;

/// The virtual environment's Python, with grpcio and grpcio-tools, made on first use so that
/// the README's test command passes on a fresh machine too.
fn venv_python() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let venv = target.join("python-venv");
    let python = venv.join("bin/python");
    let importable = || {
        Command::new(&python)
            .args(["-c", "import grpc, grpc_tools"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if importable() {
        return python;
    }
    let made = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status();
    assert!(
        made.is_ok_and(|s| s.success()),
        "the interop test needs Python 3 with venv (Debian: apt-get install python3-venv)"
    );
    let install = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(["grpcio==1.85.*", "grpcio-tools==1.85.*"])
        .status();
    assert!(
        install.is_ok_and(|s| s.success()) && importable(),
        "could not install grpcio and grpcio-tools from PyPI into {}",
        venv.display()
    );
    python
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_grpcio_client_registers_and_checks_over_mtls() {
    let python = venv_python();
    let fed = Federation::start(&["yn-psb"]).await;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let agency = fed.agency_dir("yn-psb");
    let ca = fed.dir.path().join("pki/ca.pem");
    let addr = fed.addr().to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(root.join("python/interop.py"))
            .arg(root.join("../proto"))
            .arg(addr)
            .arg(ca)
            .arg(agency.join("cert.pem"))
            .arg(agency.join("key.pem"))
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(
        result["agency_id"], "yn-psb",
        "identity from the certificate"
    );
    assert_eq!(result["hits"], serde_json::json!([true, false]));
    assert_eq!(result["bad_request"], "INVALID_ARGUMENT");
    // The Rust side sees what Python registered.
    let mut yn = fed.client("yn-psb").await;
    let op = yn
        .get_operation(v1::GetOperationRequest {
            operation_id: result["operation_id"].as_str().unwrap().into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(op.token_count, 1);
}

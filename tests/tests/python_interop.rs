//! The contract is usable outside Rust: a Python grpcio client, with stubs generated from
//! `proto/` at test time, registers and checks over mTLS against the Rust broker.
//! grpcio and grpcio-tools come from PyPI (`.ci/run` installs them; the test does if missing).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use deconfliction_proto::v1;
use deconfliction_tests::*;

/// Installs grpcio and grpcio-tools (from PyPI) when they are missing, so that the README's
/// test command passes on a fresh machine too.
fn ensure_grpcio() {
    let importable = || {
        Command::new("python3")
            .args(["-c", "import grpc, grpc_tools"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if importable() {
        return;
    }
    let install = Command::new("python3")
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
        "python3 with grpcio and grpcio-tools is needed: `pip install grpcio grpcio-tools`"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_grpcio_client_registers_and_checks_over_mtls() {
    ensure_grpcio();
    let fed = Federation::start(&["yn-psb"]).await;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let agency = fed.agency_dir("yn-psb");
    let ca = fed.dir.path().join("pki/ca.pem");
    let addr = fed.addr().to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
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

//! The operator's `pki` subcommands, run as a person would.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn broker() -> Command {
    Command::new(env!("CARGO_BIN_EXE_deconflict-broker"))
}

#[test]
fn pki_subcommands_issue_revoke_and_explain_mistakes() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let run = |args: &[&str]| {
        let out = broker().args(args).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let p = pki.to_str().unwrap();
    assert!(run(&["pki", "init-ca", "--dir", p]).0);
    // A second CA in the same folder would orphan every certificate: refused.
    let (ok, text) = run(&["pki", "init-ca", "--dir", p]);
    assert!(!ok && text.contains("refusing to overwrite"), "{text}");
    let server = dir.path().join("broker");
    let (ok, text) = run(&[
        "pki",
        "issue-server",
        "--dir",
        p,
        "--dns",
        "localhost",
        "--ip",
        "127.0.0.1",
        "--out",
        server.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    assert!(dir.path().join("broker.pem").exists() && dir.path().join("broker.key").exists());
    let agency = dir.path().join("yn-psb");
    let (ok, text) = run(&[
        "pki",
        "issue-agency",
        "--dir",
        p,
        "--agency",
        "yn-psb",
        "--out",
        agency.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    let (ok, text) = run(&[
        "pki",
        "issue-agency",
        "--dir",
        p,
        "--agency",
        "Yunnan PSB",
        "--out",
        agency.to_str().unwrap(),
    ]);
    assert!(!ok && text.contains("invalid agency id"), "{text}");
    let crl_before = std::fs::read(pki.join("crl.pem")).unwrap();
    let (ok, text) = run(&[
        "pki",
        "revoke",
        "--dir",
        p,
        "--cert",
        dir.path().join("yn-psb.pem").to_str().unwrap(),
    ]);
    assert!(ok && text.contains("revoked serial"), "{text}");
    assert_ne!(std::fs::read(pki.join("crl.pem")).unwrap(), crl_before);
    assert!(run(&["pki", "crl", "--dir", p]).0);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(pki.join("ca.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "CA key readable by others");
    }
}

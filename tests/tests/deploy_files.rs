//! The deployment files say what the code does: manifests parse, probes name the real health
//! port and service, and the units start subcommands that exist.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use deconflict_broker::config::BrokerConfig;
use yaml_rust2::{Yaml, YamlLoader};

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

fn docs(file: &str) -> Vec<Yaml> {
    let text = std::fs::read_to_string(deploy().join("kubernetes").join(file)).unwrap();
    YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{file} does not parse: {e}"))
}

fn of_kind<'a>(docs: &'a [Yaml], kind: &str) -> &'a Yaml {
    docs.iter()
        .find(|d| d["kind"].as_str() == Some(kind))
        .unwrap_or_else(|| panic!("no {kind} in the manifests"))
}

#[test]
fn kubernetes_probes_name_the_real_health_port_and_service() {
    let docs = docs("broker.yaml");
    for kind in [
        "ConfigMap",
        "Service",
        "StatefulSet",
        "PodDisruptionBudget",
        "NetworkPolicy",
    ] {
        of_kind(&docs, kind);
    }
    let toml = of_kind(&docs, "ConfigMap")["data"]["broker.toml"]
        .as_str()
        .unwrap();
    let config =
        BrokerConfig::from_toml(toml, Path::new("/"), std::iter::empty()).unwrap_or_else(|e| {
            panic!("the ConfigMap's broker.toml is not a valid configuration: {e}")
        });
    let health_port = config
        .server
        .health_listen
        .expect("no health_listen")
        .port() as i64;
    let grpc_port = config.server.listen.port() as i64;

    let pod = &of_kind(&docs, "StatefulSet")["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    for probe in ["readinessProbe", "livenessProbe"] {
        let grpc = &container[probe]["grpc"];
        assert_eq!(grpc["port"].as_i64(), Some(health_port), "{probe} port");
        assert_eq!(
            grpc["service"].as_str(),
            Some(deconfliction_proto::v1::broker_server::SERVICE_NAME),
            "{probe} service"
        );
    }
    let ports: Vec<i64> = container["ports"]
        .as_vec()
        .unwrap()
        .iter()
        .filter_map(|p| p["containerPort"].as_i64())
        .collect();
    assert!(
        ports.contains(&grpc_port) && ports.contains(&health_port),
        "{ports:?}"
    );
    let data = container["volumeMounts"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|m| m["name"].as_str() == Some("data"))
        .expect("no data volume mount");
    assert_eq!(
        data["mountPath"].as_str().map(PathBuf::from),
        Some(config.server.data_dir.clone())
    );
    assert_eq!(
        of_kind(&docs, "Service")["spec"]["ports"][0]["port"].as_i64(),
        Some(grpc_port)
    );
}

#[test]
fn systemd_units_start_existing_subcommands_with_hardening() {
    for (unit, sub) in [
        ("deconflict-broker.service", " serve "),
        ("deconflict-token-service.service", " token-service "),
    ] {
        let text = std::fs::read_to_string(deploy().join("systemd").join(unit)).unwrap();
        let exec = text.lines().find(|l| l.starts_with("ExecStart=")).unwrap();
        assert!(exec.contains(sub), "{unit}: {exec}");
        for needed in [
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "StateDirectory=",
            "Restart=",
        ] {
            assert!(text.contains(needed), "{unit} lacks {needed}");
        }
        let out = std::process::Command::new(deconfliction_tests::broker_binary())
            .args([sub.trim(), "--help"])
            .output()
            .unwrap();
        assert!(out.status.success(), "deconflict-broker{sub}--help fails");
    }
}

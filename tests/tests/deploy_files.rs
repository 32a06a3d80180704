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
        ("deconflict-console.service", " console serve "),
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
            .args(sub.split_whitespace().chain(["--help"]))
            .output()
            .unwrap();
        assert!(out.status.success(), "deconflict-broker{sub}--help fails");
    }
}

/// `Key=value` of a systemd unit.
fn unit_value<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key}="))
}

#[test]
fn agencyd_unit_and_its_sample_configuration_agree() {
    let dir = deploy().join("systemd");
    let unit = std::fs::read_to_string(dir.join("agencyd.service")).unwrap();
    for needed in [
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "StateDirectory=",
        "RuntimeDirectory=",
        "Restart=",
    ] {
        assert!(unit.contains(needed), "agencyd.service lacks {needed}");
    }
    // agencyd stops on SIGHUP's default action: the unit must not "reload" it.
    assert!(!unit.contains("ExecReload"), "agencyd has no reload");
    let exec: Vec<&str> = unit_value(&unit, "ExecStart").split_whitespace().collect();
    assert!(exec[0].ends_with("/agencyd"), "{exec:?}");
    let config_path = exec[exec.iter().position(|a| *a == "--config").unwrap() + 1];
    assert_eq!(
        Path::new(config_path).parent(),
        Some(
            Path::new("/etc")
                .join(unit_value(&unit, "ConfigurationDirectory"))
                .as_path()
        )
    );
    // The unit's command line, with the sample configuration in place of the installed one.
    let sample = dir.join("agencyd.toml");
    let out = std::process::Command::new(deconfliction_tests::workspace_binary("agencyd"))
        .args(exec[1..].iter().map(|a| {
            if *a == config_path {
                sample.as_os_str()
            } else {
                std::ffi::OsStr::new(a)
            }
        }))
        .arg("--print-config")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "agencyd rejects the unit's command line: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let config = agency_client::daemon::DaemonConfig::load(Some(&sample), []).unwrap();
    assert_eq!(
        config.daemon.data_dir,
        Path::new("/var/lib").join(unit_value(&unit, "StateDirectory"))
    );
    assert_eq!(
        config.socket_path().parent(),
        Some(
            Path::new("/run")
                .join(unit_value(&unit, "RuntimeDirectory"))
                .as_path()
        )
    );
}

#[test]
fn containerfile_copies_real_binaries_and_sets_real_keys() {
    let text = std::fs::read_to_string(deploy().join("container/Containerfile")).unwrap();
    let copied: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("COPY --from=build /src/target/release/"))
        .filter_map(|rest| rest.split_whitespace().next())
        .collect();
    assert_eq!(copied.len(), 3, "{copied:?}");
    for bin in &copied {
        // Built by the workspace (this panics with a message if not) and by the image.
        deconfliction_tests::workspace_binary(bin);
        assert!(
            text.contains(&format!("--bin {bin}")),
            "{bin} is copied, not built"
        );
    }
    for target in ["AS build", "AS agencyd", "AS broker"] {
        assert!(text.contains(target), "no stage {target}");
    }
    // The agencyd image's environment: real overrides, and the CLI finds the daemon's socket.
    let env: Vec<(String, String)> = text
        .split("ENV ")
        .nth(1)
        .unwrap()
        .split('\n')
        .map_while(|l| {
            let l = l.trim().trim_end_matches('\\').trim();
            l.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned()))
        })
        .collect();
    assert_eq!(env.len(), 3, "{env:?}");
    // The image's environment on top of the file an operator mounts at /etc/agencyd.
    let dir = tempfile::tempdir().unwrap();
    let mounted = dir.path().join("agencyd.toml");
    std::fs::write(
        &mounted,
        "[tls]\ncert = \"/etc/agencyd/cert.pem\"\nkey = \"/etc/agencyd/key.pem\"\n\
         ca = \"/etc/agencyd/ca.pem\"\n[broker]\naddress = \"broker.example:7443\"\n",
    )
    .unwrap();
    let config = agency_client::daemon::DaemonConfig::load(Some(&mounted), env.clone()).unwrap();
    assert_eq!(config.daemon.data_dir, Path::new("/data"));
    let socket = env
        .iter()
        .find(|(k, _)| k == agency_client::control::SOCKET_ENV)
        .map(|(_, v)| PathBuf::from(v));
    assert_eq!(socket, Some(config.socket_path()));
}

/// Every key of a serialized configuration as the reference writes it: "`[section]`",
/// "`[section] key`", and "`[[array]]`", "`[[array]] key`" for arrays of tables.
fn reference_names(table: &toml::Table) -> Vec<String> {
    let mut names = Vec::new();
    for (name, value) in table {
        match value {
            toml::Value::Table(section) => {
                names.push(format!("`[{name}]`"));
                for (key, value) in section {
                    match value {
                        // A sub-table (`[store.postgres]`) is written under its own heading.
                        toml::Value::Table(sub) => {
                            names.push(format!("`[{name}.{key}]`"));
                            names.extend(sub.keys().map(|k| format!("`[{name}.{key}] {k}`")));
                        }
                        _ => names.push(format!("`[{name}] {key}`")),
                    }
                }
            }
            toml::Value::Array(entries) if entries.iter().all(toml::Value::is_table) => {
                names.push(format!("`[[{name}]]`"));
                for entry in entries.iter().filter_map(toml::Value::as_table) {
                    names.extend(entry.keys().map(|key| format!("`[[{name}]] {key}`")));
                }
            }
            _ => names.push(format!("`{name}`")),
        }
    }
    names
}

#[test]
fn configuration_reference_names_every_key() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/configuration.md");
    let text = std::fs::read_to_string(&path).unwrap();
    // Both files have a [tls] and a [token_service]: each file's keys are looked for in its
    // own part of the reference.
    let (broker_part, agencyd_part) = text
        .split_once("\n## agencyd.toml\n")
        .expect("no \"## agencyd.toml\" heading");

    // The broker's defaults, with one entry in each array so that their keys are serialized.
    let mut broker = BrokerConfig::default();
    broker
        .agencies
        .push(deconflict_broker::config::AgencySection {
            id: "gd-psb".into(),
            role: "agency".into(),
            display_name: "Guangdong".into(),
        });
    broker.secrets.pepper_rekeys.push(PathBuf::from("pepper-2"));
    let broker_toml: toml::Table =
        toml::from_str(&deconflict_broker::config::to_toml(&broker).unwrap()).unwrap();
    let mut broker_names = reference_names(&broker_toml);
    // Options that are None by default, so absent from the TOML.
    broker_names.extend(
        [
            "`[server] metrics_listen`",
            "`[server] health_listen`",
            "`[server] backup_root`",
            "`[token_service] external_public_key`",
            "`[token_service] previous_seed`",
            "`[token_service] previous_valid_until`",
            "`[token_service] registry_broker`",
            "`[token_service] registry_cert`",
            "`[token_service] registry_key`",
            "`[store.postgres] url_file`",
            "`[store.postgres] url_env`",
            "`[store.postgres] ca_cert`",
        ]
        .map(String::from),
    );

    let agencyd_toml: toml::Table = toml::from_str(
        &toml::to_string(&agency_client::daemon::config::DaemonConfig::default()).unwrap(),
    )
    .unwrap();
    let mut agencyd_names = reference_names(&agencyd_toml);
    agencyd_names.extend(
        [
            "`[broker] tls_domain`",
            "`[token_service] previous_public_key`",
            "`[token_service] address`",
            "`[token_service] tls_domain`",
            "`[daemon] socket`",
            "`[daemon] inbox_dir`",
            "`[sinks] jsonl`",
            "`[sinks] webhook`",
            "`[sinks] webhook_ca`",
        ]
        .map(String::from),
    );

    // The console's sample names every key (optional ones commented out are added here).
    let (agencyd_part, console_part) = agencyd_part
        .split_once("\n## console.toml\n")
        .expect("no \"## console.toml\" heading");
    let sample = deploy().join("console/console.toml");
    let console = deconflict_broker::console::ConsoleConfig::load(&sample).unwrap();
    assert_eq!(console.console.listen.port(), 8480);
    let console_toml: toml::Table =
        toml::from_str(&std::fs::read_to_string(&sample).unwrap()).unwrap();
    let mut console_names = reference_names(&console_toml);
    console_names.extend(
        [
            "`[console] tls_cert`",
            "`[console] tls_key`",
            "`[broker] server_name`",
        ]
        .map(String::from),
    );

    for (file, part, names) in [
        ("broker.toml", broker_part, &broker_names),
        ("agencyd.toml", agencyd_part, &agencyd_names),
        ("console.toml", console_part, &console_names),
    ] {
        assert!(names.len() > 10, "{file}: {names:?}");
        let missing: Vec<&String> = names
            .iter()
            .filter(|n| !part.contains(n.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "docs/configuration.md does not describe these keys of {file}: {missing:?}"
        );
    }
}

/// The default Kubernetes deployment runs the token service apart: the broker publishes an
/// external key and mounts no seed; the token service's own manifest serves it.
#[test]
fn kubernetes_runs_the_token_service_apart_from_the_broker() {
    let broker = docs("broker.yaml");
    let toml = of_kind(&broker, "ConfigMap")["data"]["broker.toml"]
        .as_str()
        .unwrap();
    let config = BrokerConfig::from_toml(toml, Path::new("/"), std::iter::empty()).unwrap();
    assert!(!config.token_service.enabled);
    assert!(config.token_service.external_public_key.is_some());
    let ts = docs("token-service.yaml");
    let toml = of_kind(&ts, "ConfigMap")["data"]["token-service.toml"]
        .as_str()
        .unwrap();
    let config = BrokerConfig::from_toml(toml, Path::new("/"), std::iter::empty()).unwrap();
    let pod = &of_kind(&ts, "StatefulSet")["spec"]["template"]["spec"];
    let args: Vec<&str> = pod["containers"][0]["args"]
        .as_vec()
        .unwrap()
        .iter()
        .filter_map(|a| a.as_str())
        .collect();
    assert_eq!(args.first(), Some(&"token-service"), "{args:?}");
    let grpc = &pod["containers"][0]["readinessProbe"]["grpc"];
    assert_eq!(
        grpc["port"].as_i64(),
        config.server.health_listen.map(|a| i64::from(a.port()))
    );
    assert_eq!(
        grpc["service"].as_str(),
        Some(deconfliction_proto::v1::token_service_server::SERVICE_NAME)
    );
}

#[test]
fn shipped_drill_scenarios_and_controller_configuration_read() {
    let dir = deploy().join("drills");
    let mut scenarios = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name == "controller.toml" {
            let c = deconflict_drill::controller::ControllerConfig::load(&path).unwrap();
            assert!(c.broker.starts_with("https://"));
            continue;
        }
        let s = deconflict_drill::scenario::Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(!s.trainees.is_empty() && !s.parties.is_empty(), "{name}");
        assert!(
            s.injects.iter().any(|i| !i.expect.is_empty()),
            "{name}: a drill expects something of its trainees"
        );
        scenarios.push(name);
    }
    scenarios.sort();
    assert_eq!(
        scenarios,
        [
            "cross-border-trafficking.toml",
            "mekong-route.toml",
            "telecom-fraud.toml"
        ]
    );
}

/// The replicated example runs stateless replicas on PostgreSQL: the configuration names the
/// database through the environment, and the Deployment fills that variable from a Secret.
#[test]
fn kubernetes_replicas_share_a_database_through_a_secret() {
    let docs = docs("broker-postgres.yaml");
    let toml = of_kind(&docs, "ConfigMap")["data"]["broker.toml"]
        .as_str()
        .unwrap();
    let config = BrokerConfig::from_toml(toml, Path::new("/"), std::iter::empty())
        .unwrap_or_else(|e| panic!("the ConfigMap's broker.toml is not valid: {e}"));
    assert_eq!(
        config.store.backend,
        deconflict_broker::config::StoreBackend::Postgres
    );
    let var = config.store.postgres.url_env.clone().expect("url_env");
    assert!(config.store.postgres.url_file.is_none());
    let deployment = of_kind(&docs, "Deployment");
    assert!(deployment["spec"]["replicas"].as_i64().unwrap() >= 2);
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let env = container["env"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|e| e["name"].as_str() == Some(var.as_str()))
        .expect("the connection string's variable is not set");
    let secret = env["valueFrom"]["secretKeyRef"]["name"].as_str().unwrap();
    assert_eq!(
        of_kind(&docs, "Secret")["metadata"]["name"].as_str(),
        Some(secret)
    );
    // Never on the command line.
    let args = format!("{:?}", container["args"]);
    assert!(!args.contains("postgresql://"), "{args}");
    of_kind(&docs, "PodDisruptionBudget");
}

//! Architecture invariants that a build can check: the broker cannot see plaintext because it
//! cannot even link the code that makes it, and TLS uses ring only.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

/// package name -> dependency names, from the workspace's Cargo.lock.
fn lock_graph() -> BTreeMap<String, Vec<String>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock");
    let text = std::fs::read_to_string(path).unwrap();
    let mut graph = BTreeMap::new();
    for block in text.split("[[package]]").skip(1) {
        let mut name = String::new();
        let mut deps = Vec::new();
        let mut in_deps = false;
        for line in block.lines() {
            let line = line.trim();
            if let Some(n) = line.strip_prefix("name = ") {
                name = n.trim_matches('"').to_string();
            } else if line.starts_with("dependencies = [") {
                in_deps = true;
            } else if in_deps && line.starts_with(']') {
                in_deps = false;
            } else if in_deps {
                // "name", or "name version" when several versions are locked.
                let d = line.trim_matches(|c| c == '"' || c == ',');
                deps.push(d.split(' ').next().unwrap_or(d).to_string());
            }
        }
        graph.entry(name).or_insert_with(Vec::new).extend(deps);
    }
    graph
}

fn closure(graph: &BTreeMap<String, Vec<String>>, root: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![root.to_string()];
    while let Some(p) = stack.pop() {
        if seen.insert(p.clone()) {
            stack.extend(graph.get(&p).cloned().unwrap_or_default());
        }
    }
    seen
}

#[test]
fn broker_never_links_normalization_code() {
    let graph = lock_graph();
    assert!(
        graph.contains_key("deconflict-broker"),
        "Cargo.lock has no broker package"
    );
    // One path to unicode-normalization is allowed and is not normalization of selectors:
    // PostgreSQL's SCRAM login prepares the *database password* with SASLprep (RFC 4013,
    // the `stringprep` crate, used by `postgres-protocol` alone). Nothing else may reach it.
    let dependents_of = |name: &str| -> Vec<&String> {
        graph
            .iter()
            .filter(|(_, deps)| deps.iter().any(|d| d == name))
            .map(|(p, _)| p)
            .collect()
    };
    assert_eq!(
        dependents_of("stringprep"),
        [&"postgres-protocol".to_string()],
        "stringprep is linked for something else than PostgreSQL's SASLprep"
    );
    let mut pruned = graph.clone();
    pruned.remove("stringprep");
    let reach = closure(&pruned, "deconflict-broker");
    for forbidden in [
        "agency-client",
        "token-spec",
        "deconflict-drill",
        "phonenumber",
        "h3o",
        "unicode-normalization",
    ] {
        assert!(
            !reach.contains(forbidden),
            "deconflict-broker depends (perhaps indirectly) on {forbidden}"
        );
    }
}

#[test]
fn tls_uses_ring_only() {
    let graph = lock_graph();
    for root in ["deconflict-broker", "agency-client"] {
        let reach = closure(&graph, root);
        assert!(
            !reach.contains("aws-lc-rs") && !reach.contains("aws-lc-sys"),
            "{root} pulls in aws-lc"
        );
    }
}

#[test]
fn token_spec_links_no_daemon_store_or_file_format_code() {
    let graph = lock_graph();
    assert!(
        graph.contains_key("token-spec"),
        "Cargo.lock has no token-spec package"
    );
    let reach = closure(&graph, "token-spec");
    for forbidden in ["agency-client", "deconflict-broker", "sled", "toml", "clap"] {
        assert!(
            !reach.contains(forbidden),
            "token-spec depends (perhaps indirectly) on {forbidden}"
        );
    }
}

fn repo() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Every `.rs` file under `dir` (relative to the repository), recursively.
fn rust_files(dir: &str) -> Vec<std::path::PathBuf> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&repo().join(dir), &mut out);
    out
}

/// The code map section of ARCHITECTURE.md, and the "where a change lands" table above it.
fn code_map() -> String {
    let text = std::fs::read_to_string(repo().join("ARCHITECTURE.md")).unwrap();
    let start = text
        .find("| to add")
        .expect("the 'where a change lands' table");
    let end = text
        .find("## Architecture invariants")
        .expect("an invariants section");
    text[start..end].to_string()
}

const TOP_FOLDERS: [&str; 8] = [
    "proto/",
    "web-kit/",
    "broker/",
    "agency-client/",
    "env-config/",
    "tests/",
    "fuzz/",
    "docs/",
];

#[test]
fn every_path_the_code_map_names_exists() {
    let map = code_map();
    let mut checked = 0;
    for (i, quoted) in map.split('`').enumerate() {
        if i % 2 == 0 || !TOP_FOLDERS.iter().any(|f| quoted.starts_with(f)) {
            continue;
        }
        assert!(
            repo().join(quoted.trim_end_matches('/')).exists(),
            "ARCHITECTURE.md names `{quoted}`, which does not exist"
        );
        checked += 1;
    }
    assert!(checked > 40, "only {checked} paths found in the code map");
}

#[test]
fn every_module_is_in_the_code_map() {
    let map = code_map();
    // Each folder's files are named in the code map's paragraph that names the folder (the
    // "where a change lands" table above it names folders too, but not their files).
    let sections = &map[map.find("## Code map").expect("a code map section")..];
    let paragraphs: Vec<&str> = sections
        .split("\n- ")
        .flat_map(|p| p.split("\n\n"))
        .collect();
    for folder in [
        "broker/src/transport/",
        "broker/src/grpc/",
        "broker/src/ledger/",
        "broker/src/store/",
        "broker/src/tokens/",
        "broker/src/secrets/",
        "broker/src/ops/",
        "broker/src/server/",
        "broker/src/pki/",
        "broker/src/drills/",
        "broker/src/console/",
        "broker/src/bin/deconflict-broker/",
        "web-kit/src/",
        "drill/src/",
        "agency-client/src/daemon/",
        "agency-client/src/daemon/desk/",
        "agency-client/token-spec/src/normalize/",
        "agency-client/token-spec/src/token/",
    ] {
        let paragraph = paragraphs
            .iter()
            .find(|p| p.contains(&format!("`{folder}`")))
            .unwrap_or_else(|| panic!("ARCHITECTURE.md's code map has no paragraph for {folder}"));
        for file in std::fs::read_dir(repo().join(folder)).unwrap() {
            let name = file.unwrap().file_name().to_string_lossy().into_owned();
            if name == "mod.rs" || name == "main.rs" {
                continue;
            }
            let named = if name.ends_with(".rs") {
                name.clone()
            } else {
                format!("{name}/")
            };
            assert!(
                paragraph.contains(&format!("`{named}`")) || paragraph.contains(&named),
                "{folder}{name} is not named in its code map paragraph"
            );
        }
    }
    // The broker's top-level modules are named by their full path.
    for file in std::fs::read_dir(repo().join("broker/src")).unwrap() {
        let path = file.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name == "lib.rs" || name == "bin" {
            continue;
        }
        let named = if path.is_dir() {
            format!("broker/src/{name}/")
        } else {
            format!("broker/src/{name}")
        };
        assert!(map.contains(&named), "{named} is not in the code map");
    }
}

/// Lines of code (not comments) in `files` that contain `needle`.
fn code_lines_with(files: &[std::path::PathBuf], needle: &str) -> Vec<String> {
    let mut hits = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if code.contains(needle) {
                hits.push(format!("{}:{}: {}", f.display(), n + 1, line.trim()));
            }
        }
    }
    hits
}

#[test]
fn each_broker_layer_knows_only_the_layers_below_it() {
    let below_grpc: Vec<_> = [
        "broker/src/ledger",
        "broker/src/store",
        "broker/src/tokens",
        "broker/src/secrets",
    ]
    .iter()
    .flat_map(|d| rust_files(d))
    .collect();
    for needle in ["tonic::", "use tonic", "crate::grpc", "crate::transport"] {
        let hits = code_lines_with(&below_grpc, needle);
        assert!(
            hits.is_empty(),
            "the domain reaches up with {needle}: {hits:#?}"
        );
    }
    let store = rust_files("broker/src/store");
    let hits = code_lines_with(&store, "crate::ledger");
    assert!(hits.is_empty(), "the store knows the ledger: {hits:#?}");
    let transport = rust_files("broker/src/transport");
    let hits = code_lines_with(&transport, "crate::grpc");
    assert!(hits.is_empty(), "transport knows the services: {hits:#?}");
}

#[test]
fn only_grpc_status_builds_a_tonic_status() {
    let files: Vec<_> = rust_files("broker/src")
        .into_iter()
        .filter(|f| !f.components().any(|c| c.as_os_str() == "bin"))
        .filter(|f| !f.ends_with("grpc/status.rs"))
        .collect();
    let mut hits = code_lines_with(&files, "Status::new(");
    for ctor in [
        "invalid_argument(",
        "not_found(",
        "permission_denied(",
        "unauthenticated(",
        "internal(",
        "unavailable(",
        "failed_precondition(",
        "resource_exhausted(",
        "already_exists(",
        "Status::from(",
    ] {
        hits.extend(code_lines_with(
            &files,
            &format!("Status::{}", ctor.trim_start_matches("Status::")),
        ));
    }
    assert!(
        hits.is_empty(),
        "a Status built outside grpc/status.rs: {hits:#?}"
    );
}

/// The watch centre's console is a client of `Oversight`: it never reaches into the ledger,
/// the store or the access gate, and web-kit knows nothing of the protocol.
#[test]
fn the_console_is_a_client_of_oversight_only() {
    for file in rust_files("broker/src/console") {
        let text = std::fs::read_to_string(&file).unwrap();
        for forbidden in [
            "crate::ledger",
            "crate::core",
            "crate::store",
            "crate::transport",
            "crate::grpc",
            "crate::server",
        ] {
            assert!(
                !text.contains(forbidden),
                "{} uses {forbidden}: the console may only call Oversight",
                file.display()
            );
        }
    }
    let graph = lock_graph();
    let reach = closure(&graph, "deconfliction-web");
    for forbidden in [
        "deconfliction-proto",
        "tonic",
        "deconflict-broker",
        "agency-client",
    ] {
        assert!(
            !reach.contains(forbidden),
            "deconfliction-web depends (perhaps indirectly) on {forbidden}"
        );
    }
}

/// Every word the consoles show comes from the catalogues: each key the code names (in a
/// `t("…")`/`tf("…")` call or as a `"section.key"` literal of a catalogue section) is in both.
#[test]
fn every_catalogue_key_the_code_uses_exists() {
    use deconfliction_web::Lang;
    use deconfliction_web::i18n::catalogue_keys;
    let keys = catalogue_keys(Lang::En).unwrap();
    assert_eq!(keys, catalogue_keys(Lang::ZhCn).unwrap());
    let sections = [
        "common.",
        "console.",
        "desk.",
        "kind.",
        "outcome.",
        "role.",
        "state.",
        "progress.",
        "time.",
    ];
    let mut used = BTreeSet::new();
    for dir in [
        "broker/src/console",
        "agency-client/src/daemon/desk",
        "web-kit/src",
    ] {
        // config.rs names configuration keys (`console.language`) in its messages.
        for file in rust_files(dir)
            .into_iter()
            .filter(|f| !f.ends_with("config.rs"))
        {
            let text = std::fs::read_to_string(&file).unwrap();
            for (i, piece) in text.split('"').enumerate() {
                let is_key = i % 2 == 1
                    && sections.iter().any(|s| piece.starts_with(s))
                    && piece
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c == '.' || c == '_')
                    && !piece.ends_with('.');
                if is_key {
                    used.insert(piece.to_owned());
                }
            }
        }
    }
    assert!(used.len() > 150, "only {} keys found", used.len());
    let missing: Vec<&String> = used.iter().filter(|k| !keys.contains(k)).collect();
    assert!(
        missing.is_empty(),
        "keys the code uses but no catalogue holds: {missing:?}"
    );
}

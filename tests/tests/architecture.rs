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
    let reach = closure(&graph, "deconflict-broker");
    for forbidden in [
        "agency-client",
        "token-spec",
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

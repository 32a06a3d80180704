//! Fails when the committed generated code under `src/gen/` no longer matches the `.proto`
//! files. With `DECONFLICTION_REGEN=1` it rewrites the committed files instead.

use std::path::{Path, PathBuf};

use prost::Message;

const PROTOS: &[&str] = &[
    "deconfliction/v1/broker.proto",
    "deconfliction/v1/token_service.proto",
];

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Generates code and the descriptor set into `out`.
fn generate(out: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let root = crate_dir();
    let files: Vec<PathBuf> = PROTOS.iter().map(|p| root.join(p)).collect();
    let fds = protox::compile(&files, [&root])?;
    std::fs::write(out.join("descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .emit_rerun_if_changed(false)
        .out_dir(out)
        .compile_fds(fds)?;
    Ok(())
}

#[test]
fn generated_code_is_fresh() -> Result<(), Box<dyn std::error::Error>> {
    let committed = crate_dir().join("src/gen");
    if std::env::var_os("DECONFLICTION_REGEN").is_some() {
        std::fs::create_dir_all(&committed)?;
        generate(&committed)?;
        return Ok(());
    }
    let fresh = tempfile::tempdir()?;
    generate(fresh.path())?;
    for name in ["deconfliction.v1.rs", "descriptor.bin"] {
        let want = std::fs::read(fresh.path().join(name))?;
        let have = std::fs::read(committed.join(name)).unwrap_or_default();
        assert!(
            want == have,
            "proto/src/gen/{name} is stale: run `DECONFLICTION_REGEN=1 cargo test -p \
             deconfliction-proto --test codegen` and commit the result"
        );
    }
    Ok(())
}

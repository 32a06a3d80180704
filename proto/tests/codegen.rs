//! Fails when the committed generated code under `src/gen/` no longer matches the `.proto`
//! files. With `DECONFLICTION_REGEN=1` it rewrites the committed files instead.

use std::path::{Path, PathBuf};

use prost::Message;

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Generates code and the descriptor set into `out`.
fn generate(out: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let root = crate_dir();
    let mut files = Vec::new();
    find_protos(&root.join("deconfliction"), &mut files)?;
    files.sort();
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

/// Every `.proto` under `dir`, so a new file cannot be forgotten here.
fn find_protos(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            find_protos(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
    Ok(())
}

fn generated_files(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    Ok(names)
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
    let names = generated_files(fresh.path())?;
    assert_eq!(
        names,
        generated_files(&committed)?,
        "proto/src/gen/ holds other files than the generator makes: regenerate and commit"
    );
    for name in &names {
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

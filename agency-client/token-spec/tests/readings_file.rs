//! The Pinyin readings table that `build.rs` compiles in is the spec's normative file: the
//! project's copy has the published SHA-256 and line count, and is byte for byte the
//! federation's shared copy when that is beside the checkout.

mod common;

use sha2::{Digest, Sha256};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const NAME: &str = "pinyin-readings.tsv";
/// From the spec (TOKEN-SPEC.md, *person: the Pinyin form*).
const SPEC_SHA256: &str = "f16bda7981b7a9ba415cedbf767e81dd36c8284012f2898d551769458d7a0540";
const SPEC_LINES: usize = 41_620;

#[test]
fn project_copy_is_the_published_file() -> TestResult {
    let bytes = std::fs::read(common::project_file(NAME))?;
    assert_eq!(hex::encode(Sha256::digest(&bytes)), SPEC_SHA256);
    assert_eq!(bytes.iter().filter(|&&b| b == b'\n').count(), SPEC_LINES);
    assert_eq!(bytes.last(), Some(&b'\n'));
    Ok(())
}

#[test]
fn project_copy_equals_shared_copy() -> TestResult {
    let Some(shared) = common::shared_file(NAME) else {
        return Ok(());
    };
    let ours = std::fs::read(common::project_file(NAME))?;
    let theirs = std::fs::read(&shared)?;
    assert!(
        ours == theirs,
        "data/{NAME} differs from {}: copy the federation's file byte for byte",
        shared.display()
    );
    Ok(())
}

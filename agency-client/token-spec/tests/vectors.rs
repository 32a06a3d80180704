//! Conformance with the federation's vectors: every case's canonical bytes, token (through a
//! real blind / evaluate-with-proof / verify / finalize round trip) and, where given, stored
//! form. The project's own copy (`data/token-vectors.json`) always runs, so a fresh clone
//! checks itself; the shared file (`shared/token-vectors.json` beside the checkout) runs too
//! when present, so that a partner's newer vectors are caught.

mod common;

use std::path::Path;

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use time::Date;
use time::macros::date;
use token_spec::normalize::{FederationParams, Selector, canonical_forms_on, canonical_text};
use token_spec::token::{BlindedBatch, derive_keypair_from_seed};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const NAME: &str = "token-vectors.json";

/// "Today" for the date checks (`person`'s date of birth, the date in a `cnid`): after every
/// valid date in the file and before its future-date error case (2999-01-01), and fixed so
/// that the test gives the same answer every day.
const TODAY: Date = date!(2025 - 06 - 30);

fn vectors(path: &Path) -> Result<Value, Box<dyn std::error::Error>> {
    let raw = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the vectors at {}: {e}", path.display()))?;
    Ok(serde_json::from_str(&raw)?)
}

#[test]
fn project_vectors() -> TestResult {
    check_file(&common::project_file(NAME))
}

#[test]
fn shared_vectors() -> TestResult {
    match common::shared_file(NAME) {
        Some(path) => check_file(&path),
        None => Ok(()),
    }
}

/// The header's key, then every case.
fn check_file(path: &Path) -> TestResult {
    let file = vectors(path)?;
    derived_public_key_matches_header(&file)?;
    every_case(&file, path)
}

fn header_hex(file: &Value, key: &str) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let s = file[key]
        .as_str()
        .ok_or_else(|| format!("header {key} missing"))?;
    Ok(hex::decode(s)?)
}

/// A string or a list of strings, as a list (geo cases give lists).
fn strings(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned))
            .collect(),
        _ => None,
    }
}

fn derived_public_key_matches_header(file: &Value) -> TestResult {
    let seed = header_hex(file, "oprf_seed_hex")?;
    let info = file["oprf_info"]
        .as_str()
        .ok_or("header oprf_info missing")?;
    assert_eq!(info.as_bytes(), token_spec::token::TOKEN_SERVICE_INFO);
    let service = derive_keypair_from_seed(&seed, info.as_bytes())?;
    assert_eq!(
        hex::encode(service.public_key()),
        file["oprf_public_key_hex"].as_str().unwrap_or("")
    );
    Ok(())
}

fn every_case(file: &Value, path: &Path) -> TestResult {
    let seed = header_hex(file, "oprf_seed_hex")?;
    let info = file["oprf_info"]
        .as_str()
        .ok_or("header oprf_info missing")?;
    let pinned = header_hex(file, "oprf_public_key_hex")?;
    let pepper = header_hex(file, "pepper_hex")?;
    let service = derive_keypair_from_seed(&seed, info.as_bytes())?;
    let params = FederationParams {
        h3_resolution: u8::try_from(file["h3_res"].as_u64().unwrap_or(9))?,
        disk_radius: u32::try_from(file["k"].as_u64().unwrap_or(1))?,
    };
    let cases = file["cases"].as_array().ok_or("no cases")?;
    assert!(!cases.is_empty());

    let mut failures = Vec::new();
    let (mut rejected, mut derived, mut stored) = (0, 0, 0);
    for case in cases {
        let id = case["id"].as_str().unwrap_or("?");
        let kind = case["kind"].as_str().unwrap_or("");
        let result = Selector::from_json(kind, &case["input"])
            .and_then(|sel| canonical_forms_on(&sel, &params, TODAY));
        if case["error"].as_bool() == Some(true) {
            match result {
                Err(_) => rejected += 1,
                Ok(forms) => failures.push(format!(
                    "{id}: should be rejected, gave {:?}",
                    forms.iter().map(|f| canonical_text(f)).collect::<Vec<_>>()
                )),
            }
            continue;
        }
        let forms = match result {
            Ok(forms) => forms,
            Err(err) => {
                failures.push(format!("{id}: rejected: {err}"));
                continue;
            }
        };
        let got_hex: Vec<String> = forms.iter().map(hex::encode).collect();
        let want_hex = strings(&case["canonical_hex"]).ok_or(format!("{id}: no canonical_hex"))?;
        if got_hex != want_hex {
            failures.push(format!(
                "{id}: canonical {:?}, want {:?}",
                forms.iter().map(|f| canonical_text(f)).collect::<Vec<_>>(),
                strings(&case["canonical_text"]).unwrap_or_default()
            ));
            continue;
        }
        // The full client round trip: blind, batch-evaluate with proof, verify against the
        // pinned key from the file, finalize.
        let batch = BlindedBatch::blind(forms.clone())?;
        let (evaluated, proof) = service.evaluate(batch.blinded_elements())?;
        let tokens = batch.finalize(&evaluated, &proof, &pinned)?;
        let got_tokens: Vec<String> = tokens.iter().map(hex::encode).collect();
        let want_tokens = strings(&case["token_hex"]).ok_or(format!("{id}: no token_hex"))?;
        if got_tokens != want_tokens {
            failures.push(format!("{id}: tokens {got_tokens:?}, want {want_tokens:?}"));
            continue;
        }
        derived += 1;
        if let Some(want_stored) = strings(&case["stored_hex"]) {
            let got_stored = tokens
                .iter()
                .map(|t| {
                    let mut mac = Hmac::<Sha256>::new_from_slice(&pepper)?;
                    mac.update(t);
                    Ok(hex::encode(mac.finalize().into_bytes()))
                })
                .collect::<Result<Vec<_>, hmac::digest::InvalidLength>>()?;
            if got_stored != want_stored {
                failures.push(format!("{id}: stored {got_stored:?}, want {want_stored:?}"));
            } else {
                stored += 1;
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{}: {} of {} cases fail:\n{}",
        path.display(),
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    eprintln!(
        "{}: {} cases: {derived} derived, {rejected} rejected, {stored} stored checked",
        path.display(),
        cases.len()
    );
    assert_eq!(derived + rejected, cases.len());
    Ok(())
}

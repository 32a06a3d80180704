//! Conformance with the joint-federation vectors (token spec section 5): both shares' keys and
//! their sum, every case's canonical bytes and joint token through a real blind / two
//! evaluations with proofs / verify both / add / unblind / finalize round trip, the token under
//! share A alone, and the worked example step by step. The project's copy always runs; the
//! federation's shared copy too, when it is beside the checkout.

mod common;

use std::path::Path;

use serde_json::Value;
use sha2::{Digest, Sha512};
use time::macros::date;
use token_spec::normalize::{FederationParams, Selector, canonical_forms_on};
use token_spec::token::{
    BlindedBatch, DevTokenService, ShareAnswer, derive_keypair_from_seed, joint_public_key,
};
use voprf::{Group, Ristretto255};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const NAME: &str = "joint-vectors.json";

fn load(path: &Path) -> Result<Value, Box<dyn std::error::Error>> {
    let raw = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(serde_json::from_str(&raw)?)
}

fn text<'a>(v: &'a Value, key: &str) -> Result<&'a str, String> {
    v[key].as_str().ok_or_else(|| format!("{key} missing"))
}

fn hex32(v: &Value, key: &str) -> Result<[u8; 32], Box<dyn std::error::Error>> {
    let bytes = hex::decode(text(v, key)?)?;
    Ok(<[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| format!("{key}: not 32 bytes"))?)
}

fn share(v: &Value) -> Result<(DevTokenService, [u8; 32]), Box<dyn std::error::Error>> {
    let service = derive_keypair_from_seed(
        &hex::decode(text(v, "seed_hex")?)?,
        text(v, "info")?.as_bytes(),
    )?;
    let pk = hex32(v, "public_key_hex")?;
    assert_eq!(service.public_key(), pk, "a share's key from its seed");
    Ok((service, pk))
}

fn hex_list(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn check_file(path: &Path) -> TestResult {
    let file = load(path)?;
    let (a, pk_a) = share(&file["share_a"])?;
    let (b, pk_b) = share(&file["share_b"])?;
    assert_eq!(
        hex::encode(joint_public_key(&pk_a, &pk_b)?),
        text(&file, "joint_public_key_hex")?,
        "P = P_A + P_B"
    );
    let params = FederationParams {
        h3_resolution: 9,
        disk_radius: 1,
    };
    let cases = file["cases"].as_array().ok_or("no cases")?;
    assert!(!cases.is_empty());
    for case in cases {
        let id = text(case, "id")?;
        let selector = Selector::from_json(text(case, "kind")?, &case["input"])?;
        let forms = canonical_forms_on(&selector, &params, date!(2025 - 06 - 30))?;
        let got: Vec<String> = forms.iter().map(hex::encode).collect();
        assert_eq!(
            got,
            hex_list(&case["canonical_hex"]),
            "{id}: canonical forms"
        );

        let batch = BlindedBatch::blind(forms.clone())?;
        let (za, proof_a) = a.evaluate(batch.blinded_elements())?;
        let (zb, proof_b) = b.evaluate(batch.blinded_elements())?;
        let joint = batch.finalize_joint(
            ShareAnswer {
                evaluated: &za,
                proof: &proof_a,
                public_key: &pk_a,
            },
            ShareAnswer {
                evaluated: &zb,
                proof: &proof_b,
                public_key: &pk_b,
            },
        )?;
        let joint: Vec<String> = joint.iter().map(hex::encode).collect();
        assert_eq!(
            joint,
            hex_list(&case["joint_token_hex"]),
            "{id}: joint tokens"
        );

        // One share alone gives other tokens: what a side could compute by itself.
        let alone = BlindedBatch::blind(forms.clone())?;
        let (z, proof) = a.evaluate(alone.blinded_elements())?;
        let alone: Vec<String> = alone
            .finalize(&z, &proof, &pk_a)?
            .iter()
            .map(hex::encode)
            .collect();
        assert_eq!(
            alone,
            hex_list(&case["token_hex_under_share_a_alone"]),
            "{id}: share A alone"
        );
        assert!(alone.iter().all(|t| !joint.contains(t)), "{id}");
    }
    worked_example(&file["flow"], &a, &b)?;
    eprintln!(
        "{}: {} cases and the worked example",
        path.display(),
        cases.len()
    );
    Ok(())
}

/// The spec's worked example, step by step with its fixed blind: each intermediate value is
/// recomputed here with the group operations and compared.
fn worked_example(flow: &Value, a: &DevTokenService, b: &DevTokenService) -> TestResult {
    type G = Ristretto255;
    let input = hex::decode(text(flow, "canonical_hex")?)?;
    let blind = G::deserialize_scalar(&hex32(flow, "blind_scalar_hex")?)
        .map_err(|e| format!("blind_scalar_hex: {e:?}"))?;
    let dst: [&[u8]; 2] = [b"HashToGroup-", b"OPRFV1-\x01-ristretto255-SHA512"];
    let hashed =
        G::hash_to_curve::<Sha512>(&[&input], &dst).map_err(|e| format!("HashToGroup: {e:?}"))?;
    let blinded = hashed * blind;
    let hexed = |e| hex::encode(G::serialize_elem(e));
    assert_eq!(
        hexed(blinded),
        text(flow, "blinded_element_hex")?,
        "B = r·H(x)"
    );
    let blinded_bytes = hex32(flow, "blinded_element_hex")?;
    let (za, _) = a.evaluate(&[blinded_bytes])?;
    let (zb, _) = b.evaluate(&[blinded_bytes])?;
    assert_eq!(hex::encode(za[0]), text(flow, "evaluated_by_a_hex")?);
    assert_eq!(hex::encode(zb[0]), text(flow, "evaluated_by_b_hex")?);
    let element = |bytes: &[u8; 32]| {
        G::deserialize_elem(bytes).map_err(|e| format!("evaluated element: {e:?}"))
    };
    let sum = element(&za[0])? + element(&zb[0])?;
    assert_eq!(hexed(sum), text(flow, "sum_hex")?, "Z = Z_A + Z_B");
    let unblinded = sum * G::invert_scalar(blind);
    assert_eq!(hexed(unblinded), text(flow, "unblinded_hex")?, "N = r⁻¹·Z");
    let n = G::serialize_elem(unblinded);
    let mut hash = Sha512::new();
    hash.update(u16::try_from(input.len())?.to_be_bytes());
    hash.update(&input);
    hash.update(u16::try_from(n.len())?.to_be_bytes());
    hash.update(n);
    hash.update(b"Finalize");
    let token = hash.finalize();
    assert_eq!(
        hex::encode(&token[..32]),
        text(flow, "joint_token_hex")?,
        "Finalize"
    );
    Ok(())
}

#[test]
fn project_joint_vectors() -> TestResult {
    check_file(&common::project_file(NAME))
}

#[test]
fn shared_joint_vectors() -> TestResult {
    let Some(shared) = common::shared_file(NAME) else {
        return Ok(());
    };
    check_file(&shared)?;
    let ours = std::fs::read(common::project_file(NAME))?;
    assert!(
        ours == std::fs::read(&shared)?,
        "data/{NAME} differs from {}: copy the federation's file byte for byte",
        shared.display()
    );
    Ok(())
}

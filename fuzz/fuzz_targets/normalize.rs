//! Normalization of arbitrary input for every selector kind: an error or canonical forms,
//! never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use token_spec::normalize::{FederationParams, Selector, canonical_forms};

const KINDS: &[&str] = &[
    "person", "phone", "plate", "vin", "imei", "email", "iban", "wallet", "handle", "address",
    "geo",
];

fuzz_target!(|data: &[u8]| {
    let Some((&k, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let mut parts = text.splitn(3, '\u{1f}');
    let (a, b) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let kind = KINDS[k as usize % KINDS.len()];
    let input = serde_json::json!({
        "names": [a, b], "dob": b, "text": a, "region": b, "country": b, "chain": a,
        "address": b, "platform": a, "handle": b,
        "lat": a.parse::<f64>().unwrap_or(0.0), "lng": b.parse::<f64>().unwrap_or(0.0),
    });
    if let Ok(selector) = Selector::from_json(kind, &input) {
        let _ = canonical_forms(&selector, &FederationParams::default());
    }
});

//! The `deconflict normalize` command, run as a process.

use std::process::Command;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn deconflict(args: &[&str]) -> std::io::Result<std::process::Output> {
    Command::new(env!("CARGO_BIN_EXE_deconflict"))
        .args(args)
        .output()
}

#[test]
fn one_selector_text_and_json() -> TestResult {
    let out = deconflict(&[
        "normalize",
        "phone",
        "--text",
        "138 0013 8000",
        "--region",
        "CN",
    ])?;
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout)?;
    assert!(text.contains("dcf1|phone|+8613800138000"), "{text}");
    assert!(
        text.contains("646366310070686f6e65002b38363133383030313338303030"),
        "{text}"
    );

    let out = deconflict(&[
        "normalize",
        "geo",
        "--lat",
        "-16.5",
        "--lng",
        "179.9999",
        "--json",
    ])?;
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(v["canonical_hex"].as_array().map(Vec::len), Some(7));
    Ok(())
}

#[test]
fn bad_input_exits_2_with_message() -> TestResult {
    let out = deconflict(&["normalize", "imei", "--text", "3520990017614"])?;
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr)?;
    assert!(err.contains("imei: text: "), "{err}");
    assert!(out.stdout.is_empty());
    Ok(())
}

#[test]
fn vectors_file_one_line_per_case() -> TestResult {
    let dir = std::env::temp_dir().join(format!("deconflict-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("cases.json");
    let body = serde_json::json!({"h3_res": 8, "k": 0, "cases": [
        {"id": "a", "kind": "vin", "input": {"text": "1hgcm826-33a004352"}},
        {"id": "b", "kind": "ship", "input": {}},
        {"id": "c", "kind": "geo", "input": {"lat": "north"}},
        {"id": "d", "kind": "geo", "input": {"lat": 39.9, "lng": 116.4}},
        7
    ]});
    std::fs::write(&path, body.to_string())?;
    let out = deconflict(&["normalize", "--vectors", path.to_str().ok_or("path")?])?;
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert_eq!(lines.len(), 5);
    assert_eq!(
        lines[0]["canonical_hex"],
        "646366310076696e00314847434d383236333341303034333532"
    );
    assert!(lines[1]["error"].is_string() && lines[2]["error"].is_string());
    // Header parameters apply: K = 0 gives one cell, resolution 8 starts with 88.
    let geo = lines[3]["canonical_hex"].as_array().ok_or("geo list")?;
    assert_eq!(geo.len(), 1);
    let text = String::from_utf8(hex::decode(geo[0].as_str().ok_or("hex")?)?)?;
    assert!(text.starts_with("dcf1\0geo\x008\x0088"), "{text:?}");
    assert!(lines[4]["error"].is_string());

    std::fs::write(&path, "not json")?;
    let out = deconflict(&["normalize", "--vectors", path.to_str().ok_or("path")?])?;
    assert!(!out.status.success());
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

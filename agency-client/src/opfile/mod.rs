//! The operation file format: what an officer or a case system drops into agencyd's `inbox/`,
//! or hands to `deconflict register --file` (documented with examples in `docs/agency.md`).
//!
//! ```json
//! { "case_reference": "YN-2025-0042",
//!   "window": { "start": "2025-06-01", "days": 90 },
//!   "selectors": [ { "kind": "phone", "text": "138 0013 8000", "region": "CN" } ] }
//! ```
//!
//! The same document can be written as TOML. Every selector is normalized here already, so a
//! file is refused as a whole, with the selector, field and reason named, before anything of
//! it is stored or sent.

use token_spec::normalize::{FederationParams, Selector, canonical_forms};

mod batch;
mod flags;
mod selector_json;
mod window;

use serde_json::{Map, Value};

pub use batch::{BatchError, CSV_COLUMNS, parse_csv, parse_jsonl};
pub use flags::parse_selector_flag;
pub use selector_json::{describe, selector_fields, selector_from_json, selector_to_json};
pub use window::{check_window, parse_instant, parse_window};

/// Longest case reference accepted (characters).
pub const MAX_CASE_REFERENCE_CHARS: usize = 200;
/// Longest selector label accepted (characters).
pub const MAX_LABEL_CHARS: usize = 200;
/// Most selectors in one operation file.
pub const MAX_SELECTORS: usize = 10_000;

/// One selector with the officer's label.
#[derive(Debug, Clone, PartialEq)]
pub struct SelectorSpec {
    /// The selector's input fields as given.
    pub selector: Selector,
    /// Free text for the officer; may be empty.
    pub label: String,
}

/// A validated operation, ready to be stored and registered.
#[derive(Debug, Clone, PartialEq)]
pub struct OperationSpec {
    /// The UUID given in the file, if any (text form, lower case).
    pub operation_id: Option<String>,
    /// Free text that stays with the agency.
    pub case_reference: String,
    /// `[start, end)` in Unix seconds.
    pub window: (i64, i64),
    /// At least one selector.
    pub selectors: Vec<SelectorSpec>,
    /// Joint federations it is released to (`release_to = ["mekong"]`); empty: home only.
    pub release_to: Vec<String>,
}

/// Why an operation file was refused: one line a duty officer can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SpecError(pub String);

impl SpecError {
    fn at(path: &str, reason: impl std::fmt::Display) -> Self {
        Self(format!("{path}: {reason}"))
    }
}

/// Whether a file name looks like JSON or TOML.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// `.json`
    Json,
    /// `.toml`
    Toml,
}

impl FileFormat {
    /// The format of a file name by its extension (case-insensitive), if it is one of ours.
    pub fn of(name: &str) -> Option<Self> {
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".json") {
            Some(Self::Json)
        } else if lower.ends_with(".toml") {
            Some(Self::Toml)
        } else {
            None
        }
    }
}

/// Parses and validates an operation file's text. `now` (Unix seconds) fills in a missing
/// window start.
pub fn parse_operation_text(
    text: &str,
    format: FileFormat,
    now: i64,
) -> Result<OperationSpec, SpecError> {
    let value = match format {
        FileFormat::Json => serde_json::from_str::<Value>(text)
            .map_err(|e| SpecError(format!("not valid JSON: {e}")))?,
        FileFormat::Toml => {
            let table: toml::Table =
                toml::from_str(text).map_err(|e| SpecError(format!("not valid TOML: {e}")))?;
            toml_to_json(toml::Value::Table(table))
        }
    };
    parse_operation_value(&value, now)
}

/// Validates an operation document already parsed to JSON.
pub fn parse_operation_value(value: &Value, now: i64) -> Result<OperationSpec, SpecError> {
    let obj = value
        .as_object()
        .ok_or_else(|| SpecError("the document must be an object (a table in TOML)".into()))?;
    reject_unknown(
        obj,
        "operation",
        &[
            "operation_id",
            "case_reference",
            "window",
            "selectors",
            "release_to",
        ],
    )?;
    let operation_id = match obj.get("operation_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(parse_operation_id(s)?),
        Some(_) => return Err(SpecError::at("operation_id", "expected a UUID string")),
    };
    let case_reference = match obj.get("case_reference") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(SpecError::at("case_reference", "expected a string")),
    };
    check_text("case_reference", &case_reference, MAX_CASE_REFERENCE_CHARS)?;
    let window = match obj.get("window") {
        Some(w) => parse_window(w, now).map_err(|e| SpecError::at("window", e))?,
        None => {
            return Err(SpecError::at(
                "window",
                "missing: give { start = ..., end = ... } or { days = N }",
            ));
        }
    };
    let items = match obj.get("selectors") {
        Some(Value::Array(items)) => items,
        Some(_) => return Err(SpecError::at("selectors", "expected a list of selectors")),
        None => return Err(SpecError::at("selectors", "missing: list at least one")),
    };
    let selectors = parse_selector_list(items)?;
    let release_to = match obj.get("release_to") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(names)) => names
            .iter()
            .map(|n| {
                n.as_str().map(str::to_owned).ok_or_else(|| {
                    SpecError::at("release_to", "expected a list of joint federation names")
                })
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(SpecError::at(
                "release_to",
                "expected a list of joint federation names",
            ));
        }
    };
    Ok(OperationSpec {
        operation_id,
        case_reference,
        window,
        selectors,
        release_to,
    })
}

/// Validates a list of selector objects (`{kind, label?, ...fields}`).
pub fn parse_selector_list(items: &[Value]) -> Result<Vec<SelectorSpec>, SpecError> {
    if items.is_empty() {
        return Err(SpecError::at("selectors", "empty: list at least one"));
    }
    if items.len() > MAX_SELECTORS {
        return Err(SpecError::at(
            "selectors",
            format!(
                "{} selectors; at most {MAX_SELECTORS} per operation",
                items.len()
            ),
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            parse_selector(item).map_err(|e| SpecError(format!("selectors[{i}]: {e}")))
        })
        .collect()
}

/// One selector object, validated and normalized (default federation parameters: they only
/// change which H3 cells a geo point gives, never whether it is valid).
pub fn parse_selector(item: &Value) -> Result<SelectorSpec, SpecError> {
    let (selector, label) = selector_from_json(item)?;
    check_text("label", &label, MAX_LABEL_CHARS)?;
    validate_selector(&selector)?;
    Ok(SelectorSpec { selector, label })
}

/// Runs the normalization rules on `selector`; the error names kind, field and reason.
pub fn validate_selector(selector: &Selector) -> Result<(), SpecError> {
    canonical_forms(selector, &FederationParams::default())
        .map(|_| ())
        .map_err(|e| SpecError(e.to_string()))
}

/// A UUID in any accepted text form, returned hyphenated and lower case.
pub fn parse_operation_id(text: &str) -> Result<String, SpecError> {
    uuid::Uuid::parse_str(text.trim())
        .map(|u| u.hyphenated().to_string())
        .map_err(|e| SpecError::at("operation_id", format!("not a UUID ({e})")))
}

fn check_text(field: &str, text: &str, max_chars: usize) -> Result<(), SpecError> {
    if text.chars().count() > max_chars {
        return Err(SpecError::at(
            field,
            format!("longer than {max_chars} characters"),
        ));
    }
    if text.contains('\0') {
        return Err(SpecError::at(field, "contains U+0000"));
    }
    Ok(())
}

pub(crate) fn reject_unknown(
    obj: &Map<String, Value>,
    what: &str,
    allowed: &[&str],
) -> Result<(), SpecError> {
    if let Some(key) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(SpecError(format!(
            "unknown field `{key}` in {what} (expected one of: {})",
            allowed.join(", ")
        )));
    }
    Ok(())
}

/// TOML to JSON, with TOML dates and date-times as their RFC 3339 text.
pub fn toml_to_json(value: toml::Value) -> Value {
    match value {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::from(i),
        toml::Value::Float(f) => serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(items) => Value::Array(items.into_iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => {
            Value::Object(t.into_iter().map(|(k, v)| (k, toml_to_json(v))).collect())
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const NOW: i64 = 1_750_000_000;

    #[test]
    fn release_to_names_joint_federations() {
        let doc = |release: &str| {
            format!(
                r#"{{"window": {{"days": 7}}, "selectors": [{{"kind": "email", "text": "a@b.example"}}]{release}}}"#
            )
        };
        let spec = parse_operation_text(&doc(""), FileFormat::Json, NOW).unwrap();
        assert!(spec.release_to.is_empty(), "home only unless released");
        let spec =
            parse_operation_text(&doc(r#", "release_to": ["mekong"]"#), FileFormat::Json, NOW)
                .unwrap();
        assert_eq!(spec.release_to, vec!["mekong".to_string()]);
        for bad in [r#", "release_to": "mekong""#, r#", "release_to": [7]"#] {
            let e = parse_operation_text(&doc(bad), FileFormat::Json, NOW).unwrap_err();
            assert!(e.0.starts_with("release_to:"), "{e}");
        }
    }

    #[test]
    fn json_file_parses() {
        let text = r#"{
            "operation_id": "6F9619FF-8B86-D011-B42D-00C04FC964FF",
            "case_reference": "YN-2025-0042",
            "window": { "start": "2025-06-01T00:00:00Z", "end": "2025-09-01T00:00:00Z" },
            "selectors": [
                { "kind": "phone", "text": "138 0013 8000", "region": "CN", "label": "mobile" },
                { "kind": "person", "names": ["Zhang", "Wei"], "dob": "1985-03-12" },
                { "kind": "geo", "lat": 25.04, "lng": 102.71 }
            ]
        }"#;
        let spec = parse_operation_text(text, FileFormat::Json, NOW).unwrap();
        assert_eq!(
            spec.operation_id.as_deref(),
            Some("6f9619ff-8b86-d011-b42d-00c04fc964ff")
        );
        assert_eq!(spec.selectors.len(), 3);
        assert_eq!(spec.selectors[0].label, "mobile");
        assert_eq!(spec.window, (1_748_736_000, 1_756_684_800));
    }

    #[test]
    fn toml_file_parses_with_native_dates() {
        let text = r#"
            case_reference = "GD-7"
            [window]
            start = 2025-06-01T00:00:00Z
            days = 30
            [[selectors]]
            kind = "plate"
            country = "CN"
            text = "粤B 12345"
        "#;
        let spec = parse_operation_text(text, FileFormat::Toml, NOW).unwrap();
        assert_eq!(spec.window, (1_748_736_000, 1_748_736_000 + 30 * 86_400));
        assert_eq!(spec.selectors[0].selector.kind().as_str(), "plate");
    }

    #[test]
    fn errors_name_the_problem() {
        let cases = [
            (r#"[]"#, "must be an object"),
            (r#"{"selectors": []}"#, "window: missing"),
            (
                r#"{"window": {"days": 1}, "selectors": []}"#,
                "selectors: empty",
            ),
            (r#"{"window": {"days": 1}}"#, "selectors: missing"),
            (
                r#"{"window": {"days": 1}, "selectors": [{"kind": "vin", "text": "short"}]}"#,
                "selectors[0]: vin: text: ",
            ),
            (
                r#"{"window": {"days": 1}, "selectors": [{"kind": "phone", "txt": "1"}]}"#,
                "selectors[0]: unknown field `txt` in phone selector",
            ),
            (
                r#"{"window": {"days": 1}, "selectors": [{"kind": "car"}]}"#,
                "selectors[0]: unknown selector kind \"car\"",
            ),
            (
                r#"{"window": {"days": 1}, "selector": []}"#,
                "unknown field `selector`",
            ),
            (
                r#"{"operation_id": "x", "window": {"days": 1}, "selectors": []}"#,
                "operation_id: not a UUID",
            ),
            (
                r#"{"window": {"start": "2025-06-02", "end": "2025-06-01"}, "selectors": []}"#,
                "window: end must be after start",
            ),
        ];
        for (text, want) in cases {
            let err = parse_operation_text(text, FileFormat::Json, NOW).unwrap_err();
            assert!(err.0.contains(want), "{text}: {err}");
        }
        let err = parse_operation_text("{", FileFormat::Json, NOW).unwrap_err();
        assert!(err.0.starts_with("not valid JSON"), "{err}");
        let err = parse_operation_text("a = ", FileFormat::Toml, NOW).unwrap_err();
        assert!(err.0.starts_with("not valid TOML"), "{err}");
    }

    #[test]
    fn formats_by_extension() {
        assert_eq!(FileFormat::of("a.JSON"), Some(FileFormat::Json));
        assert_eq!(FileFormat::of("a.toml"), Some(FileFormat::Toml));
        assert_eq!(FileFormat::of("a.json.tmp"), None);
    }
}

//! Operation windows: `{ start, end }` or `{ start, days }`, in RFC 3339, a plain date
//! (`YYYY-MM-DD`, midnight UTC) or Unix seconds.

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime, macros::format_description};

use super::reject_unknown;

/// Longest window accepted locally (the broker applies its own, usually shorter, policy).
const MAX_DAYS: i64 = 3660;

/// A point in time: RFC 3339 text, `YYYY-MM-DD` (midnight UTC), or Unix seconds.
pub fn parse_instant(value: &Value) -> Result<i64, String> {
    match value {
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| "expected whole Unix seconds".to_string()),
        Value::String(s) => parse_instant_text(s),
        _ => Err("expected a date, a date-time or Unix seconds".into()),
    }
}

fn parse_instant_text(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(t.unix_timestamp());
    }
    if let Ok(d) = Date::parse(text, format_description!("[year]-[month]-[day]")) {
        return Ok(d.midnight().assume_utc().unix_timestamp());
    }
    if let Ok(n) = text.parse::<i64>() {
        return Ok(n);
    }
    Err(format!(
        "{text:?} is not a date: use 2025-06-01, 2025-06-01T08:00:00Z or 2025-06-01T08:00:00+08:00"
    ))
}

/// A window object; a missing start means `now`.
pub fn parse_window(value: &Value, now: i64) -> Result<(i64, i64), String> {
    let obj = value
        .as_object()
        .ok_or_else(|| "expected { start = ..., end = ... } or { days = N }".to_string())?;
    reject_unknown(obj, "window", &["start", "end", "days"]).map_err(|e| e.0)?;
    let start = match obj.get("start") {
        None | Some(Value::Null) => now,
        Some(v) => parse_instant(v).map_err(|e| format!("start: {e}"))?,
    };
    let end = match (obj.get("end"), obj.get("days")) {
        (Some(_), Some(_)) => return Err("give either end or days, not both".into()),
        (Some(v), None) => parse_instant(v).map_err(|e| format!("end: {e}"))?,
        (None, Some(v)) => {
            let days = days_of(v)?;
            start.saturating_add(days.saturating_mul(86_400))
        }
        (None, None) => return Err("missing end: give end = <date> or days = N".into()),
    };
    check_window(start, end)?;
    Ok((start, end))
}

fn days_of(v: &Value) -> Result<i64, String> {
    let days = v
        .as_i64()
        .ok_or_else(|| "days: expected a whole number".to_string())?;
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(format!("days: must be between 1 and {MAX_DAYS}"));
    }
    Ok(days)
}

/// The local sanity rules of a window: end after start, not absurdly long.
pub fn check_window(start: i64, end: i64) -> Result<(), String> {
    if end <= start {
        return Err("end must be after start".into());
    }
    if end - start > MAX_DAYS * 86_400 {
        return Err(format!("longer than {MAX_DAYS} days"));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn instants() {
        assert_eq!(parse_instant(&json!("1970-01-02")).unwrap(), 86_400);
        assert_eq!(
            parse_instant(&json!("1970-01-01T08:00:00+08:00")).unwrap(),
            0
        );
        assert_eq!(parse_instant(&json!(42)).unwrap(), 42);
        assert!(
            parse_instant(&json!("yesterday"))
                .unwrap_err()
                .contains("not a date")
        );
        assert!(parse_instant(&json!(true)).is_err());
    }

    #[test]
    fn windows() {
        assert_eq!(
            parse_window(&json!({"days": 2}), 100).unwrap(),
            (100, 100 + 172_800)
        );
        assert_eq!(
            parse_window(&json!({"start": 5, "end": 9}), 0).unwrap(),
            (5, 9)
        );
        assert!(parse_window(&json!({"start": 9, "end": 5}), 0).is_err());
        assert!(parse_window(&json!({"end": 9, "days": 1}), 0).is_err());
        assert!(parse_window(&json!({"days": 0}), 0).is_err());
        assert!(
            parse_window(&json!({"start": 1}), 0)
                .unwrap_err()
                .contains("missing end")
        );
        assert!(
            parse_window(&json!({"until": 1}), 0)
                .unwrap_err()
                .contains("`until`")
        );
    }
}

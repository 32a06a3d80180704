//! Batches for `deconflict import`: JSON lines (one operation document per line) or CSV (one
//! selector per row, rows grouped into operations by the `operation` column).

use serde_json::{Map, Value};
use token_spec::normalize::SelectorKind;

use super::{OperationSpec, parse_operation_value, parse_selector};

/// One bad line of a batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct BatchError {
    /// 1-based line number in the file.
    pub line: usize,
    /// What is wrong with it.
    pub message: String,
}

/// Every operation of a JSON-lines batch with the line it came from, or every bad line.
pub fn parse_jsonl(text: &str, now: i64) -> Result<Vec<(usize, OperationSpec)>, Vec<BatchError>> {
    let mut ok = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let parsed = serde_json::from_str::<Value>(line)
            .map_err(|e| format!("not valid JSON: {e}"))
            .and_then(|v| parse_operation_value(&v, now).map_err(|e| e.0));
        match parsed {
            Ok(spec) => ok.push((line_no, spec)),
            Err(message) => errors.push(BatchError {
                line: line_no,
                message,
            }),
        }
    }
    if errors.is_empty() {
        Ok(ok)
    } else {
        Err(errors)
    }
}

/// Columns a CSV batch may have (a header row is required).
pub const CSV_COLUMNS: &[&str] = &[
    "operation",
    "operation_id",
    "case_reference",
    "start",
    "end",
    "days",
    "kind",
    "label",
    "text",
    "region",
    "country",
    "names",
    "dob",
    "chain",
    "address",
    "platform",
    "handle",
    "lat",
    "lng",
    // A permit's type (`hkmo`, `tw`, `cnhkmo`).
    "type",
];

/// Every operation of a CSV batch (with the line of its first row), or every bad row.
///
/// Rows with the same `operation` value (or, without that column, the same `case_reference`)
/// form one operation; its id and window come from its first row. `names` holds the name
/// parts separated by spaces.
pub fn parse_csv(text: &str, now: i64) -> Result<Vec<(usize, OperationSpec)>, Vec<BatchError>> {
    let rows = split_csv(text).map_err(|e| vec![e])?;
    let Some((_, header)) = rows.first() else {
        return Err(vec![BatchError {
            line: 1,
            message: "empty file: a header row is required".into(),
        }]);
    };
    let header: Vec<String> = header
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    if let Some(bad) = header.iter().find(|h| !CSV_COLUMNS.contains(&h.as_str())) {
        return Err(vec![BatchError {
            line: 1,
            message: format!(
                "unknown column `{bad}` (expected: {})",
                CSV_COLUMNS.join(", ")
            ),
        }]);
    }
    let mut groups: Vec<Group> = Vec::new();
    let mut errors = Vec::new();
    for (line, cells) in rows.iter().skip(1) {
        let row = Row {
            header: &header,
            cells,
        };
        let get = |name: &str| row.get(name);
        if cells.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        match row_selector(&row) {
            Ok(sel) => {
                let key = match (get("operation"), get("case_reference")) {
                    ("", "") => format!("line {line}"),
                    ("", case) => format!("case {case}"),
                    (op, _) => format!("op {op}"),
                };
                if let Some(g) = groups.iter_mut().find(|g| g.0 == key) {
                    g.3.push(sel);
                } else {
                    groups.push((key, *line, row_operation(&row), vec![sel]));
                }
            }
            Err(message) => errors.push(BatchError {
                line: *line,
                message,
            }),
        }
    }
    let mut ok = Vec::new();
    for (_, line, mut doc, selectors) in groups {
        doc.insert("selectors".into(), Value::Array(selectors));
        match parse_operation_value(&Value::Object(doc), now) {
            Ok(spec) => ok.push((line, spec)),
            Err(e) => errors.push(BatchError { line, message: e.0 }),
        }
    }
    if errors.is_empty() {
        Ok(ok)
    } else {
        errors.sort_by_key(|e| e.line);
        Err(errors)
    }
}

/// Rows of one operation: group key, first line, the document so far, its selectors.
type Group = (String, usize, Map<String, Value>, Vec<Value>);

/// One CSV row, read by column name.
struct Row<'a> {
    header: &'a [String],
    cells: &'a [String],
}

impl Row<'_> {
    /// The trimmed cell of column `name` ("" when absent).
    fn get(&self, name: &str) -> &str {
        self.header
            .iter()
            .position(|h| h == name)
            .and_then(|i| self.cells.get(i))
            .map_or("", |s| s.trim())
    }
}

fn row_operation(row: &Row<'_>) -> Map<String, Value> {
    let get = |name: &str| row.get(name);
    let mut doc = Map::new();
    for key in ["operation_id", "case_reference"] {
        if !get(key).is_empty() {
            doc.insert(key.into(), Value::String(get(key).into()));
        }
    }
    let mut window = Map::new();
    for key in ["start", "end"] {
        if !get(key).is_empty() {
            window.insert(key.into(), Value::String(get(key).into()));
        }
    }
    if !get("days").is_empty() {
        let days = get("days")
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(get("days").into()));
        window.insert("days".into(), days);
    }
    doc.insert("window".into(), Value::Object(window));
    doc
}

/// The selector of one row, validated.
fn row_selector(row: &Row<'_>) -> Result<Value, String> {
    let get = |name: &str| row.get(name);
    let kind: SelectorKind = get("kind")
        .parse()
        .map_err(|e: token_spec::normalize::UnknownKind| format!("kind: {e}"))?;
    let mut obj = Map::new();
    obj.insert("kind".into(), Value::String(kind.as_str().into()));
    if !get("label").is_empty() {
        obj.insert("label".into(), Value::String(get("label").into()));
    }
    for &field in super::selector_fields(kind) {
        let cell = get(field);
        let value = match field {
            "names" => Value::Array(
                cell.split_whitespace()
                    .map(|s| Value::String(s.into()))
                    .collect(),
            ),
            "lat" | "lng" => match cell.parse::<f64>() {
                Ok(n) => serde_json::Number::from_f64(n)
                    .map(Value::Number)
                    .ok_or_else(|| format!("{field}: not a finite number"))?,
                Err(_) => return Err(format!("{kind}: {field}: expected a number")),
            },
            "region" if cell.is_empty() => continue,
            _ => Value::String(cell.into()),
        };
        obj.insert(field.into(), value);
    }
    let value = Value::Object(obj);
    parse_selector(&value).map_err(|e| e.0)?;
    Ok(value)
}

/// RFC 4180 records with the line each starts on: commas, double quotes, `""` escapes,
/// quoted line breaks.
fn split_csv(text: &str) -> Result<Vec<(usize, Vec<String>)>, BatchError> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut line = 1;
    let mut row_line = 1;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => {
                if c == '\n' {
                    line += 1;
                }
                cell.push(c);
            }
            (false, '"') if cell.is_empty() => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut cell)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut cell));
                rows.push((row_line, std::mem::take(&mut row)));
                line += 1;
                row_line = line;
            }
            (false, c) => cell.push(c),
        }
    }
    if quoted {
        return Err(BatchError {
            line: row_line,
            message: "a quoted cell is never closed".into(),
        });
    }
    if !cell.is_empty() || !row.is_empty() {
        row.push(cell);
        rows.push((row_line, row));
    }
    Ok(rows)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn csv_groups_rows_into_operations() {
        let text = "operation,case_reference,days,kind,text,region,names,dob\n\
                    a,YN-1,30,phone,138 0013 8000,CN,,\n\
                    a,YN-1,30,person,,,\"Zhang Wei\",1985-03-12\n\
                    b,YN-2,10,email,x@example.com,,,\n";
        let ops = parse_csv(text, 1_000).unwrap();
        assert_eq!(ops.len(), 2);
        assert_eq!(ops[0].0, 2);
        assert_eq!(ops[0].1.selectors.len(), 2);
        assert_eq!(ops[0].1.case_reference, "YN-1");
        assert_eq!(ops[1].1.window, (1_000, 1_000 + 10 * 86_400));
    }

    #[test]
    fn csv_takes_the_identifiers_of_the_spec_revision() {
        let text = "operation,days,kind,text,country,type,names\n\
                    a,30,cnid,110105491231002,,,\n\
                    a,30,passport,E12345678,CN,,\n\
                    a,30,permit,H1234567801,,hkmo,\n\
                    a,30,card,6222 0200 0000 0000 000,,,\n\
                    a,30,org,91350100M000100Y43,,,\n";
        let ops = parse_csv(text, 1_000).unwrap();
        assert_eq!(ops.len(), 1);
        assert_eq!(ops[0].1.selectors.len(), 5);
        // A wrong check character is named, on its line.
        let errs = parse_csv("days,kind,text\n5,cnid,110105194912310021\n", 0).unwrap_err();
        assert_eq!(errs[0].line, 2);
        assert!(errs[0].message.contains("cnid"), "{}", errs[0]);
    }

    #[test]
    fn csv_reports_every_bad_row() {
        let text = "kind,text,days\nvin,short,5\ncar,x,5\nemail,a@b.cn,5\n";
        let errs = parse_csv(text, 0).unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert_eq!(errs[0].line, 2);
        assert!(errs[0].message.contains("vin: text"), "{}", errs[0]);
        assert!(
            errs[1].message.contains("unknown selector kind"),
            "{}",
            errs[1]
        );
        let errs = parse_csv("kind,colour\n", 0).unwrap_err();
        assert!(errs[0].message.contains("unknown column `colour`"));
        assert!(parse_csv("kind,text\n\"open", 0).is_err());
    }

    #[test]
    fn jsonl_lines() {
        let text = "{\"window\":{\"days\":1},\"selectors\":[{\"kind\":\"email\",\"text\":\"a@b.cn\"}]}\n\
                    \n\
                    {\"window\":{\"days\":1}}\n";
        let errs = parse_jsonl(text, 0).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].line, 3);
        let ok = parse_jsonl(text.lines().next().unwrap(), 0).unwrap();
        assert_eq!(ok.len(), 1);
    }
}

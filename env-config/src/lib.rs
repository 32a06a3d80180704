//! Environment overrides of a TOML configuration, `PREFIX<SECTION>__<KEY>=value`, in one place
//! so that the broker and agencyd read them by the same rules.
//!
//! A variable without the prefix is ignored. The rest of its name, split at `__` and
//! lower-cased, is the path of the key to set; sections are created as needed. The value is
//! read as a TOML value when it parses as one (`50`, `false`, `"quoted"`, `[1, 2]`) and as a
//! plain string otherwise (`broker.example:7443`). Schema checks (unknown keys, wrong types)
//! stay with the caller, which deserializes the table afterwards.

/// How many levels a variable's name may have after the prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// Any path: `KEY`, `SECTION__KEY`, `SECTION__SUB__KEY`, …
    Any,
    /// Exactly `SECTION__KEY`; any other shape is refused.
    SectionAndKey,
}

/// Why an override was refused. It names the variable, never its value (which may be a
/// secret's path or an address the operator would rather not see echoed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {problem}")]
pub struct EnvOverrideError {
    /// The variable's full name.
    pub var: String,
    /// What is wrong with it.
    pub problem: Problem,
}

/// What is wrong with one override.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// The name does not have the shape [`Depth`] asks for.
    #[error("expected {prefix}<SECTION>__<KEY>")]
    Shape {
        /// The prefix, to show the expected shape in full.
        prefix: String,
    },
    /// A level of the path already holds a value that is not a table.
    #[error("{0} is not a section")]
    NotASection(String),
}

/// Applies every variable of `env` whose name starts with `prefix` to `table`, in order (a
/// later variable for the same key wins). Stops at the first bad one.
pub fn apply_overrides(
    table: &mut toml::Table,
    prefix: &str,
    depth: Depth,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(), EnvOverrideError> {
    for (var, raw) in env {
        let Some(rest) = var.strip_prefix(prefix) else {
            continue;
        };
        let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        set_path(table, prefix, depth, &path, &raw)
            .map_err(|problem| EnvOverrideError { var, problem })?;
    }
    Ok(())
}

/// Sets `table.a.b… = raw` (see [`parse_value`]), creating the sections on the way.
fn set_path(
    table: &mut toml::Table,
    prefix: &str,
    depth: Depth,
    path: &[String],
    raw: &str,
) -> Result<(), Problem> {
    let shape = || Problem::Shape {
        prefix: prefix.to_owned(),
    };
    if depth == Depth::SectionAndKey && path.len() != 2 {
        return Err(shape());
    }
    let (key, sections) = path.split_last().ok_or_else(shape)?;
    let mut current = table;
    for section in sections {
        current = current
            .entry(section.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .ok_or_else(|| Problem::NotASection(section.clone()))?;
    }
    current.insert(key.clone(), parse_value(raw));
    Ok(())
}

/// `raw` as a TOML value when it parses as one, else as a string.
fn parse_value(raw: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn table(text: &str) -> toml::Table {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn sets_typed_values_and_ignores_other_variables() {
        let mut t = table("[broker]\naddress = \"a:1\"\n");
        let env = vars(&[
            ("P__BROKER__ADDRESS", "b:2"),
            ("P__DAEMON__POLL_MS", "50"),
            ("P__SINKS__LOG", "false"),
            ("P__SINKS__NAME", "\"quoted\""),
            ("OTHER__SINKS__LOG", "true"),
        ]);
        apply_overrides(&mut t, "P__", Depth::SectionAndKey, env).unwrap();
        let want = table(
            "[broker]\naddress = \"b:2\"\n[daemon]\npoll_ms = 50\n\
             [sinks]\nlog = false\nname = \"quoted\"\n",
        );
        assert_eq!(t, want);
    }

    #[test]
    fn any_depth_sets_top_level_and_nested_keys() {
        let mut t = toml::Table::new();
        let env = vars(&[("P__MODE", "dev"), ("P__A__B__C", "[1, 2]")]);
        apply_overrides(&mut t, "P__", Depth::Any, env).unwrap();
        assert_eq!(t, table("mode = \"dev\"\n[a.b]\nc = [1, 2]\n"));
    }

    #[test]
    fn later_variable_wins() {
        let mut t = toml::Table::new();
        let env = vars(&[("P__S__K", "1"), ("P__S__K", "2")]);
        apply_overrides(&mut t, "P__", Depth::Any, env).unwrap();
        assert_eq!(t, table("[s]\nk = 2\n"));
    }

    #[test]
    fn section_and_key_refuses_other_shapes() {
        for name in ["P__BROKER", "P__A__B__C"] {
            let mut t = toml::Table::new();
            let err = apply_overrides(&mut t, "P__", Depth::SectionAndKey, vars(&[(name, "x")]))
                .unwrap_err();
            assert_eq!(err.var, name);
            assert_eq!(
                err.to_string(),
                format!("{name}: expected P__<SECTION>__<KEY>")
            );
            assert!(t.is_empty(), "nothing applied");
        }
    }

    #[test]
    fn a_value_in_the_way_of_a_section_is_refused_by_name() {
        let mut t = table("server = 1\n");
        let env = vars(&[("P__SERVER__LISTEN", "secret-value")]);
        let err = apply_overrides(&mut t, "P__", Depth::Any, env).unwrap_err();
        assert_eq!(err.problem, Problem::NotASection("server".into()));
        let text = err.to_string();
        assert!(text.contains("P__SERVER__LISTEN"), "{text}");
        assert!(!text.contains("secret-value"), "{text}");
    }

    #[test]
    fn stops_at_the_first_bad_variable() {
        let mut t = toml::Table::new();
        let env = vars(&[("P__S__K", "1"), ("P__BAD", "x"), ("P__S__L", "2")]);
        assert!(apply_overrides(&mut t, "P__", Depth::SectionAndKey, env).is_err());
        assert_eq!(t, table("[s]\nk = 1\n"));
    }
}

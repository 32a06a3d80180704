//! A scenario file (TOML): the drill, the simulated bureaus the controller plays, the trainees,
//! and the injects on a timeline with the reactions expected of the trainees. Everything is
//! checked when the file is read, so that a drill never stops half-way on a typo: a bad file
//! is refused with the inject and field that are wrong.
//!
//! Selectors and windows are written as in an operation file (docs/agency.md), so a scenario
//! author uses the same words as a duty officer.

use std::path::Path;

use agency_client::opfile::{self, OperationSpec, SelectorSpec};
use serde::Deserialize;
use serde_json::Value;

/// What a trainee is expected to do about a match an inject causes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reaction {
    /// The trainee's agencyd received the alert (the broker's queue was acknowledged).
    Seen,
    /// A duty officer acknowledged it (`deconflict ack`).
    Acknowledge,
    /// The trainee wrote to the other party through the relay.
    Contact,
    /// The trainee disclosed its contact card.
    Disclose,
    /// The trainee resolved the match.
    Resolve,
}

impl Reaction {
    pub const ALL: [Reaction; 5] = [
        Reaction::Seen,
        Reaction::Acknowledge,
        Reaction::Contact,
        Reaction::Disclose,
        Reaction::Resolve,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reaction::Seen => "seen",
            Reaction::Acknowledge => "acknowledge",
            Reaction::Contact => "contact",
            Reaction::Disclose => "disclose",
            Reaction::Resolve => "resolve",
        }
    }
}

/// What an inject does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The party registers an operation (window from the inject's time).
    Register,
    /// The party checks selectors without registering ("an unknown agency checks X").
    Check,
    /// The party closes the operation an earlier inject registered.
    Close,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    drill: DrillSection,
    #[serde(default, rename = "party")]
    parties: Vec<Party>,
    #[serde(default, rename = "trainee")]
    trainees: Vec<Trainee>,
    #[serde(default, rename = "inject")]
    injects: Vec<RawInject>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillSection {
    /// The drill's id at the broker (lower-case letters, digits, '-'); `--id` overrides it.
    pub id: String,
    pub name: String,
    /// How long the drill runs at the broker, in scenario minutes (it is purged at the end).
    pub duration_minutes: f64,
    /// Between the start and T+0: time for the trainees to join.
    #[serde(default)]
    pub lead_minutes: f64,
    /// How long after the last inject trainees still have to react.
    #[serde(default = "default_observe")]
    pub observe_minutes: f64,
}

fn default_observe() -> f64 {
    30.0
}

/// A bureau nobody plays: the controller registers and checks for it, and answers a trainee
/// the way a real desk would (its card disclosed at once, a scripted reply).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Party {
    pub id: String,
    pub name: String,
    /// Disclosed on every match it gets, so that a trainee's disclosure completes the exchange.
    #[serde(default)]
    pub card: Option<Card>,
    /// Sent once on a match after the trainee's first message.
    #[serde(default)]
    pub reply: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Card {
    pub unit_name: String,
    #[serde(default)]
    pub officer: String,
    #[serde(default)]
    pub phone: String,
    #[serde(default)]
    pub secure_email: String,
    #[serde(default)]
    pub note: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trainee {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInject {
    at_minutes: f64,
    party: String,
    action: Action,
    /// The scenario's name for the operation (a later `close` names it).
    #[serde(default)]
    operation: String,
    #[serde(default)]
    brief: String,
    #[serde(default)]
    expect: Vec<Reaction>,
    /// Trainees expected to match (empty: whoever does).
    #[serde(default)]
    expect_from: Vec<String>,
    #[serde(default)]
    within_minutes: Option<f64>,
    #[serde(default)]
    window: Option<toml::Value>,
    #[serde(default)]
    selectors: Vec<toml::Value>,
}

/// One step of the timeline, checked.
#[derive(Debug, Clone)]
pub struct Inject {
    /// Its number in the file, from 1 (how the report names it).
    pub number: usize,
    pub at_minutes: f64,
    pub party: String,
    pub action: Action,
    pub operation: String,
    pub brief: String,
    pub expect: Vec<Reaction>,
    pub expect_from: Vec<String>,
    pub within_minutes: Option<f64>,
    /// The window as written (resolved when the inject is played).
    pub window: Option<Value>,
    pub selectors: Vec<SelectorSpec>,
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub drill: DrillSection,
    pub parties: Vec<Party>,
    pub trainees: Vec<Trainee>,
    /// In time order.
    pub injects: Vec<Inject>,
}

#[derive(Debug, thiserror::Error)]
#[error("scenario {file}: {problem}")]
pub struct ScenarioError {
    pub file: String,
    pub problem: String,
}

impl Scenario {
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
            file: path.display().to_string(),
            problem: e.to_string(),
        })?;
        Self::parse(&text).map_err(|problem| ScenarioError {
            file: path.display().to_string(),
            problem,
        })
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
        let drill = file.drill;
        if !agency_client::daemon::config::drill_id_ok(&drill.id) {
            return Err(format!(
                "[drill] id {:?}: 1 to 40 lower-case letters, digits or '-'",
                drill.id
            ));
        }
        for (what, v) in [
            ("duration_minutes", drill.duration_minutes),
            ("lead_minutes", drill.lead_minutes),
            ("observe_minutes", drill.observe_minutes),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(format!(
                    "[drill] {what} must be a number of minutes, 0 or more"
                ));
            }
        }
        let mut injects = Vec::with_capacity(file.injects.len());
        for (i, raw) in file.injects.into_iter().enumerate() {
            injects.push(
                inject(i + 1, raw, &file.parties, &file.trainees)
                    .map_err(|e| format!("inject {}: {e}", i + 1))?,
            );
        }
        injects.sort_by(|a, b| a.at_minutes.total_cmp(&b.at_minutes));
        let last = injects.last().map_or(0.0, |i| i.at_minutes);
        if drill.lead_minutes + last + drill.observe_minutes > drill.duration_minutes {
            return Err(format!(
                "[drill] duration_minutes {} is shorter than lead ({}) + the last inject (T+{}) \
                 + observe ({})",
                drill.duration_minutes, drill.lead_minutes, last, drill.observe_minutes
            ));
        }
        check_closes(&injects)?;
        Ok(Self {
            drill,
            parties: file.parties,
            trainees: file.trainees,
            injects,
        })
    }

    pub fn party(&self, id: &str) -> Option<&Party> {
        self.parties.iter().find(|p| p.id == id)
    }
}

fn inject(
    number: usize,
    raw: RawInject,
    parties: &[Party],
    trainees: &[Trainee],
) -> Result<Inject, String> {
    if !raw.at_minutes.is_finite() || raw.at_minutes < 0.0 {
        return Err("at_minutes must be 0 or more".into());
    }
    if !parties.iter().any(|p| p.id == raw.party) {
        return Err(format!(
            "party {:?} is not a [[party]] of this scenario",
            raw.party
        ));
    }
    if let Some(t) = raw
        .expect_from
        .iter()
        .find(|t| !trainees.iter().any(|x| &x.id == *t))
    {
        return Err(format!(
            "expect_from {t:?} is not a [[trainee]] of this scenario"
        ));
    }
    let selectors: Vec<Value> = raw
        .selectors
        .into_iter()
        .map(opfile::toml_to_json)
        .collect();
    let selectors = match raw.action {
        Action::Close if !selectors.is_empty() => {
            return Err("a close names its operation only, no selectors".into());
        }
        Action::Close => Vec::new(),
        _ if selectors.is_empty() => return Err("selectors: at least one".into()),
        _ => opfile::parse_selector_list(&selectors).map_err(|e| e.0)?,
    };
    if matches!(raw.action, Action::Register | Action::Close) && raw.operation.is_empty() {
        return Err("operation: give the operation a name (a later close names it)".into());
    }
    let window = raw.window.map(opfile::toml_to_json);
    if raw.action == Action::Register {
        // Checked now against a fixed time: only its shape can be wrong.
        let w = window
            .clone()
            .ok_or("window: give { days = N } or { start, end }")?;
        opfile::parse_window(&w, 0).map_err(|e| format!("window: {e}"))?;
    }
    Ok(Inject {
        number,
        at_minutes: raw.at_minutes,
        party: raw.party,
        action: raw.action,
        operation: raw.operation,
        brief: raw.brief,
        expect: raw.expect,
        expect_from: raw.expect_from,
        within_minutes: raw.within_minutes,
        window,
        selectors,
    })
}

/// A close names an operation an earlier inject of the same party registered.
fn check_closes(injects: &[Inject]) -> Result<(), String> {
    for (i, inj) in injects.iter().enumerate() {
        if inj.action != Action::Close {
            continue;
        }
        let registered = injects[..i].iter().any(|e| {
            e.action == Action::Register && e.operation == inj.operation && e.party == inj.party
        });
        if !registered {
            return Err(format!(
                "inject {}: close of {:?}, which no earlier inject of {} registered",
                inj.number, inj.operation, inj.party
            ));
        }
    }
    Ok(())
}

/// The operation an inject registers, its window starting when it is played.
pub fn operation(inject: &Inject, now: i64) -> Result<OperationSpec, String> {
    let window = inject
        .window
        .as_ref()
        .ok_or("no window")
        .map_err(str::to_owned)?;
    let window = opfile::parse_window(window, now)?;
    Ok(OperationSpec {
        operation_id: None,
        case_reference: format!("EXERCISE {}", inject.operation),
        window,
        selectors: inject.selectors.clone(),
        release_to: Vec::new(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[drill]
id = "t-1"
name = "Test"
duration_minutes = 60
lead_minutes = 1

[[party]]
id = "sim-yn"
name = "Yunnan (simulated)"

[[trainee]]
id = "gx-psb"
name = "Guangxi"

[[inject]]
at_minutes = 5
party = "sim-yn"
action = "register"
operation = "route"
expect = ["acknowledge", "contact"]
expect_from = ["gx-psb"]
window = { days = 3 }
selectors = [{ kind = "phone", text = "+86 138 0013 8000" }]

[[inject]]
at_minutes = 2
party = "sim-yn"
action = "check"
selectors = [{ kind = "plate", country = "CN", text = "云A12345" }]

[[inject]]
at_minutes = 9
party = "sim-yn"
action = "close"
operation = "route"
"#;

    #[test]
    fn a_good_scenario_reads_in_time_order() {
        let s = Scenario::parse(GOOD).unwrap();
        let order: Vec<usize> = s.injects.iter().map(|i| i.number).collect();
        assert_eq!(order, vec![2, 1, 3]);
        assert_eq!(
            s.injects[1].expect,
            vec![Reaction::Acknowledge, Reaction::Contact]
        );
        let op = operation(&s.injects[1], 1_000).unwrap();
        assert_eq!(op.window, (1_000, 1_000 + 3 * 86_400));
        assert!(op.case_reference.starts_with("EXERCISE"));
    }

    #[test]
    fn mistakes_name_the_inject_and_field() {
        let bad = |from: &str, to: &str| Scenario::parse(&GOOD.replace(from, to)).unwrap_err();
        assert!(
            bad(
                "party = \"sim-yn\"\naction = \"register\"",
                "party = \"nobody\"\naction = \"register\""
            )
            .contains("inject 1: party \"nobody\"")
        );
        assert!(bad("+86 138 0013 8000", "not a phone").contains("inject 1"));
        assert!(bad("\"contact\"]", "\"call\"]").contains("call"));
        assert!(bad("expect_from = [\"gx-psb\"]", "expect_from = [\"zz\"]").contains("zz"));
        assert!(bad("duration_minutes = 60", "duration_minutes = 5").contains("shorter"));
        let close_other = format!(
            "{}other\"\n",
            GOOD.trim_end().strip_suffix("route\"").unwrap()
        );
        assert!(
            Scenario::parse(&close_other)
                .unwrap_err()
                .contains("which no earlier")
        );
        assert!(bad("id = \"t-1\"", "id = \"T 1\"").contains("[drill] id"));
    }
}

//! The after-action report, in the way exercise programmes evaluate a drill: for every inject,
//! which trainees it reached and when each did what was expected of it (saw the alert, an
//! officer acknowledged it, made contact, disclosed, resolved), measured from the moment the
//! match existed; what was late or missed; the same per participant, and for the controller a
//! summary. The times come from the broker's record of each match (its watch-centre view),
//! never from what the trainees say of themselves.

use std::collections::BTreeMap;

use deconfliction_proto::v1;
use serde::Serialize;

use crate::play::Played;
use crate::scenario::{Action, Reaction, Scenario};

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Always true: this report is about an exercise.
    pub exercise: bool,
    pub drill_id: String,
    pub name: String,
    pub t0_unix: i64,
    pub ended_unix: i64,
    pub minute_seconds: f64,
    pub halted: Option<String>,
    pub summary: Summary,
    pub injects: Vec<InjectReport>,
    pub participants: Vec<ParticipantReport>,
    /// Matches between trainees that no inject scripted (they found each other).
    pub unscripted: Vec<Response>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub expected: usize,
    pub met: usize,
    pub late: usize,
    pub missed: usize,
    /// Expected and not done yet (missed once the drill is over).
    pub pending: usize,
    pub injects_played: usize,
    pub injects_failed: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct InjectReport {
    pub number: usize,
    pub at_minutes: f64,
    pub party: String,
    pub action: Action,
    pub brief: String,
    pub played_unix: Option<i64>,
    pub error: Option<String>,
    /// register: matches made at once; check: selectors that hit.
    pub count: u32,
    pub responses: Vec<Response>,
    /// Trainees expected to match that never did (they never registered the overlapping
    /// operation).
    pub never_matched: Vec<String>,
}

/// One trainee's handling of one match.
#[derive(Debug, Clone, Serialize)]
pub struct Response {
    pub trainee: String,
    pub match_id: String,
    pub match_created_unix: i64,
    pub steps: Vec<Step>,
    /// Whom the match was with (an inject's party, or another trainee).
    pub other: String,
    pub inject: Option<usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub reaction: Reaction,
    pub expected: bool,
    pub at_unix: Option<i64>,
    /// Scenario minutes after the match existed.
    pub after_minutes: Option<f64>,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Expected, and done in time.
    Met,
    /// Expected, done after `within_minutes`.
    Late,
    /// Expected and not done.
    Missed,
    /// Not expected, done anyway.
    Done,
    /// Neither expected nor done.
    NotDone,
}

#[derive(Debug, Clone, Serialize)]
pub struct ParticipantReport {
    pub id: String,
    pub name: String,
    pub matches: usize,
    pub met: usize,
    pub late: usize,
    pub missed: usize,
    pub never_matched: usize,
    /// Scenario minutes from match to seen / acknowledged, median over its matches.
    pub median_seen_minutes: Option<f64>,
    pub median_acknowledged_minutes: Option<f64>,
}

impl Report {
    /// What one participant is given: its own rows only (how other bureaus did is the
    /// controller's to share, not the report's).
    pub fn for_participant(&self, id: &str) -> Report {
        let mut own = self.clone();
        for i in &mut own.injects {
            i.responses.retain(|r| r.trainee == id);
            i.never_matched.retain(|t| t == id);
        }
        own.participants.retain(|p| p.id == id);
        own.unscripted.retain(|r| r.trainee == id);
        let (expected, met, late, missed) = own.participants.first().map_or((0, 0, 0, 0), |p| {
            let expected = own
                .injects
                .iter()
                .flat_map(|i| &i.responses)
                .flat_map(|r| &r.steps)
                .filter(|s| s.expected)
                .count()
                + p.never_matched;
            (expected, p.met, p.late, p.missed)
        });
        own.summary = Summary {
            expected,
            met,
            late,
            missed,
            pending: missed,
            ..self.summary.clone()
        };
        own
    }
}

fn time_of(p: &v1::MatchProgress, r: Reaction) -> i64 {
    match r {
        Reaction::Seen => p.seen_unix,
        Reaction::Acknowledge => p.acknowledged_unix,
        Reaction::Contact => p.first_message_unix,
        Reaction::Disclose => p.disclosed_unix,
        Reaction::Resolve => p.resolved_unix,
    }
}

/// What was expected of a trainee on a match, and from when it is measured.
struct Expected<'a> {
    inject: Option<usize>,
    reactions: &'a [Reaction],
    within: Option<f64>,
    from_unix: i64,
    minute_seconds: f64,
}

fn response(m: &v1::MatchMetadata, trainee: &str, other: &str, e: &Expected<'_>) -> Response {
    let (inject, expect, within, from_unix, minute_seconds) = (
        e.inject,
        e.reactions,
        e.within,
        e.from_unix,
        e.minute_seconds,
    );
    let progress = m
        .progress
        .iter()
        .find(|p| p.agency_id == trainee)
        .cloned()
        .unwrap_or_default();
    let start = m.created_unix.max(from_unix);
    let steps = Reaction::ALL
        .iter()
        .map(|&reaction| {
            let at = time_of(&progress, reaction);
            let expected = expect.contains(&reaction);
            let after = (at > 0).then(|| (at - start).max(0) as f64 / minute_seconds.max(0.001));
            let verdict = match (expected, after) {
                (true, Some(a)) if within.is_some_and(|w| a > w) => Verdict::Late,
                (true, Some(_)) => Verdict::Met,
                (true, None) => Verdict::Missed,
                (false, Some(_)) => Verdict::Done,
                (false, None) => Verdict::NotDone,
            };
            Step {
                reaction,
                expected,
                at_unix: (at > 0).then_some(at),
                after_minutes: after.map(|a| (a * 10.0).round() / 10.0),
                verdict,
            }
        })
        .collect();
    Response {
        trainee: trainee.to_owned(),
        match_id: m.match_id.clone(),
        match_created_unix: m.created_unix,
        steps,
        other: other.to_owned(),
        inject,
    }
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

pub fn build(scenario: &Scenario, played: &Played) -> Report {
    let by_id: BTreeMap<&str, &v1::MatchMetadata> = played
        .matches
        .iter()
        .map(|m| (m.match_id.as_str(), m))
        .collect();
    let party_ids: Vec<&str> = scenario.parties.iter().map(|p| p.id.as_str()).collect();
    let mut scripted = std::collections::BTreeSet::new();
    let mut injects = Vec::new();
    for inject in &scenario.injects {
        let done = played.injects.iter().find(|p| p.number == inject.number);
        let mut responses = Vec::new();
        if inject.action == Action::Register
            && let Some(done) = done
        {
            // The party's matches on this inject's operation (its alerts name the operation).
            let op = played
                .party_matches
                .iter()
                .filter(|(party, _)| *party == inject.party)
                .filter(|(_, pm)| operation_of(played, inject, pm));
            for (_, pm) in op {
                let Some(m) = by_id.get(pm.match_id.as_str()) else {
                    continue;
                };
                scripted.insert(m.match_id.clone());
                for trainee in m.agency_ids.iter().filter(|a| **a != inject.party) {
                    let expected = Expected {
                        inject: Some(inject.number),
                        reactions: &inject.expect,
                        within: inject.within_minutes,
                        from_unix: done.played_unix,
                        minute_seconds: played.minute_seconds,
                    };
                    responses.push(response(m, trainee, &inject.party, &expected));
                }
            }
        }
        let never_matched = inject
            .expect_from
            .iter()
            .filter(|t| !responses.iter().any(|r| &r.trainee == *t))
            .cloned()
            .collect();
        injects.push(InjectReport {
            number: inject.number,
            at_minutes: inject.at_minutes,
            party: inject.party.clone(),
            action: inject.action,
            brief: inject.brief.clone(),
            played_unix: done.map(|d| d.played_unix),
            error: done.and_then(|d| d.error.clone()),
            count: done.map_or(0, |d| d.count),
            responses,
            never_matched,
        });
    }
    let unscripted = played
        .matches
        .iter()
        .filter(|m| !scripted.contains(&m.match_id))
        .filter(|m| {
            m.agency_ids
                .iter()
                .all(|a| !party_ids.contains(&a.as_str()))
        })
        .flat_map(|m| {
            let ids = m.agency_ids.clone();
            ids.iter()
                .enumerate()
                .map(|(i, t)| {
                    let other = ids.get(1 - i.min(1)).cloned().unwrap_or_default();
                    let nothing = Expected {
                        inject: None,
                        reactions: &[],
                        within: None,
                        from_unix: m.created_unix,
                        minute_seconds: played.minute_seconds,
                    };
                    response(m, t, &other, &nothing)
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let mut summary = Summary {
        injects_played: played.injects.iter().filter(|p| p.error.is_none()).count(),
        injects_failed: played.injects.iter().filter(|p| p.error.is_some()).count(),
        ..Summary::default()
    };
    for r in injects.iter().flat_map(|i| &i.responses) {
        for s in &r.steps {
            match s.verdict {
                Verdict::Met => summary.met += 1,
                Verdict::Late => summary.late += 1,
                Verdict::Missed => summary.pending += 1,
                _ => {}
            }
            summary.expected += usize::from(s.expected);
        }
    }
    let never: usize = injects.iter().map(|i| i.never_matched.len()).sum();
    summary.pending += never;
    summary.expected += never;
    if played.over {
        // Once the drill is over, what is still pending was missed.
        summary.missed = summary.pending;
    }
    let participants = participants(scenario, &injects);
    Report {
        exercise: true,
        drill_id: played.started.drill_id.clone(),
        name: scenario.drill.name.clone(),
        t0_unix: played.t0_unix,
        ended_unix: played.ended_unix,
        minute_seconds: played.minute_seconds,
        halted: played.halted.clone(),
        summary,
        injects,
        participants,
        unscripted,
    }
}

/// Whether the party's match `pm` is on the operation `inject` registered.
fn operation_of(
    played: &Played,
    inject: &crate::scenario::Inject,
    pm: &crate::parties::PartyMatch,
) -> bool {
    played
        .operations
        .get(&(inject.party.clone(), inject.operation.clone()))
        .is_some_and(|op| *op == pm.operation_id)
}

fn participants(scenario: &Scenario, injects: &[InjectReport]) -> Vec<ParticipantReport> {
    scenario
        .trainees
        .iter()
        .map(|t| {
            let mine: Vec<&Response> = injects
                .iter()
                .flat_map(|i| &i.responses)
                .filter(|r| r.trainee == t.id)
                .collect();
            let count = |v: Verdict| {
                mine.iter()
                    .flat_map(|r| &r.steps)
                    .filter(|s| s.verdict == v)
                    .count()
            };
            let minutes = |reaction: Reaction| {
                median(
                    mine.iter()
                        .flat_map(|r| &r.steps)
                        .filter(|s| s.reaction == reaction)
                        .filter_map(|s| s.after_minutes)
                        .collect(),
                )
            };
            let never = injects
                .iter()
                .filter(|i| i.never_matched.contains(&t.id))
                .count();
            ParticipantReport {
                id: t.id.clone(),
                name: t.name.clone(),
                matches: mine.len(),
                met: count(Verdict::Met),
                late: count(Verdict::Late),
                missed: count(Verdict::Missed) + never,
                never_matched: never,
                median_seen_minutes: minutes(Reaction::Seen),
                median_acknowledged_minutes: minutes(Reaction::Acknowledge),
            }
        })
        .collect()
}

//! Playing a scenario against a started drill: the simulated bureaus come up, each inject is
//! played at its time (scenario minutes times `minute_seconds`), the parties answer as
//! scripted, and the drill's matches are read from its watch-centre view until the trainees
//! have done what was expected or the time is up.

use std::path::PathBuf;
use std::time::Duration;

use deconfliction_proto::v1;
use tokio::time::Instant;

use crate::controller::{Controller, Started};
use crate::parties::{PartyMatch, SimParty};
use crate::report;
use crate::scenario::{Action, Scenario};

#[derive(Debug, Clone)]
pub struct PlayOptions {
    /// Real seconds per scenario minute (60 in a real drill; less in a rehearsal or a test).
    pub minute_seconds: f64,
    /// Stop observing as soon as every expected reaction was seen (else: at the end of the
    /// observation time).
    pub until_done: bool,
    /// How often the parties read their alerts and the matches are read.
    pub tick: Duration,
}

impl Default for PlayOptions {
    fn default() -> Self {
        Self {
            minute_seconds: 60.0,
            until_done: false,
            tick: Duration::from_millis(500),
        }
    }
}

/// What happened to one inject.
#[derive(Debug, Clone)]
pub struct PlayedInject {
    pub number: usize,
    pub played_unix: i64,
    /// Matches the registration made at once, or checked selectors that hit.
    pub count: u32,
    pub error: Option<String>,
}

/// A played scenario, for the report.
#[derive(Debug, Clone)]
pub struct Played {
    pub started: Started,
    pub t0_unix: i64,
    pub ended_unix: i64,
    pub minute_seconds: f64,
    pub injects: Vec<PlayedInject>,
    /// Each simulated party's matches.
    pub party_matches: Vec<(String, PartyMatch)>,
    /// The drill's matches at the end, as its watch centre sees them.
    pub matches: Vec<v1::MatchMetadata>,
    pub halted: Option<String>,
    /// (party, scenario operation name) → the broker's operation id.
    pub operations: std::collections::BTreeMap<(String, String), String>,
    /// False while it is still being played (what is pending may still be done).
    pub over: bool,
}

fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Plays `scenario` on the drill `started`, its simulated parties working in `work`.
pub async fn play(
    controller: &Controller,
    scenario: &Scenario,
    started: &Started,
    work: PathBuf,
    opts: &PlayOptions,
) -> anyhow::Result<Played> {
    let mut parties = Vec::with_capacity(scenario.parties.len());
    for p in &scenario.parties {
        let dir = work.join(&p.id);
        parties.push(SimParty::start(&controller.config, started, p, &dir).await?);
    }
    let result = run(controller, scenario, started, &mut parties, opts).await;
    for p in parties {
        p.stop().await;
    }
    // The parties' folders hold the exercise's plaintext: gone with the exercise.
    if let Err(e) = std::fs::remove_dir_all(&work) {
        tracing::warn!(path = %work.display(), error = %e, "drill: simulated parties' folder not removed");
    }
    result
}

async fn run(
    controller: &Controller,
    scenario: &Scenario,
    started: &Started,
    parties: &mut [SimParty],
    opts: &PlayOptions,
) -> anyhow::Result<Played> {
    let minute = Duration::from_secs_f64(opts.minute_seconds.max(0.001));
    let at = |minutes: f64| minute.mul_f64(minutes.max(0.0));
    let begin = Instant::now();
    let t0 = begin + at(scenario.drill.lead_minutes);
    let t0_unix = now_unix() + at(scenario.drill.lead_minutes).as_secs() as i64;
    let mut played = Vec::with_capacity(scenario.injects.len());
    let mut halted = None;
    for inject in &scenario.injects {
        halted = wait_until(t0 + at(inject.at_minutes), parties, opts.tick).await?;
        if halted.is_some() {
            break;
        }
        let Some(party) = parties.iter_mut().find(|p| p.party.id == inject.party) else {
            continue;
        };
        let now = now_unix();
        let outcome = match inject.action {
            Action::Register => party.register(inject, now).await,
            Action::Check => party.check(inject).await,
            Action::Close => party.close(inject).await.map(|()| 0),
        };
        if let Err(e) = &outcome {
            tracing::warn!(inject = inject.number, error = %e, "drill: inject not played");
        } else {
            tracing::info!(inject = inject.number, party = %inject.party, "drill: inject played");
        }
        played.push(PlayedInject {
            number: inject.number,
            played_unix: now,
            count: *outcome.as_ref().unwrap_or(&0),
            error: outcome.err().map(|e| e.to_string()),
        });
    }
    let last = scenario.injects.last().map_or(0.0, |i| i.at_minutes);
    let deadline = t0 + at(last + scenario.drill.observe_minutes);
    let progress = Progress {
        started,
        t0_unix,
        minute_seconds: opts.minute_seconds,
        played: &played,
    };
    let watch = controller.watch(started).await?;
    let mut matches = Vec::new();
    while halted.is_none() {
        halted = react_all(parties).await?;
        matches = watch.matches().await?;
        let done = opts.until_done && {
            let snapshot = snapshot(&progress, parties, &matches, None, false);
            report::build(scenario, &snapshot).summary.pending == 0
        };
        if done || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(opts.tick).await;
    }
    if halted.is_some() {
        matches = watch.matches().await.unwrap_or(matches);
    }
    Ok(snapshot(&progress, parties, &matches, halted, true))
}

/// What a snapshot is taken of, besides the parties and the matches.
struct Progress<'a> {
    started: &'a Started,
    t0_unix: i64,
    minute_seconds: f64,
    played: &'a [PlayedInject],
}

fn snapshot(
    at: &Progress<'_>,
    parties: &[SimParty],
    matches: &[v1::MatchMetadata],
    halted: Option<String>,
    over: bool,
) -> Played {
    Played {
        started: at.started.clone(),
        t0_unix: at.t0_unix,
        ended_unix: now_unix(),
        minute_seconds: at.minute_seconds,
        injects: at.played.to_vec(),
        party_matches: parties
            .iter()
            .flat_map(|p| p.matches.values().map(|m| (p.party.id.clone(), m.clone())))
            .collect(),
        matches: matches.to_vec(),
        halted,
        operations: parties
            .iter()
            .flat_map(|p| {
                p.operations
                    .iter()
                    .map(|(name, id)| ((p.party.id.clone(), name.clone()), id.clone()))
            })
            .collect(),
        over,
    }
}

/// Lets every party react until `when`; returns the halt reason if the drill was halted.
async fn wait_until(
    when: Instant,
    parties: &mut [SimParty],
    tick: Duration,
) -> anyhow::Result<Option<String>> {
    loop {
        if let Some(reason) = react_all(parties).await? {
            return Ok(Some(reason));
        }
        let now = Instant::now();
        if now >= when {
            return Ok(None);
        }
        tokio::time::sleep(tick.min(when - now)).await;
    }
}

async fn react_all(parties: &mut [SimParty]) -> anyhow::Result<Option<String>> {
    for p in parties.iter_mut() {
        p.react().await?;
        if let Some(reason) = &p.halted {
            return Ok(Some(reason.clone()));
        }
    }
    Ok(None)
}

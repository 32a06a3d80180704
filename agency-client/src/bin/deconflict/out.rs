//! Output: aligned tables and short lines for people, JSON for scripts; colour only on a
//! terminal (and never with NO_COLOR set).

use std::io::IsTerminal;

use agency_client::control::{pb, selector_from_proto};
use agency_client::opfile::describe;
use time::OffsetDateTime;
use time::macros::format_description;

/// Whether to colour stdout.
pub(crate) fn colour() -> bool {
    std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none()
        && std::env::var("TERM").map_or(true, |t| t != "dumb")
}

/// `text` in bold red (alerts, hits) when colouring.
pub(crate) fn alarm(text: &str) -> String {
    if colour() {
        format!("\x1b[1;31m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

/// `text` in bold when colouring.
pub(crate) fn bold(text: &str) -> String {
    if colour() {
        format!("\x1b[1m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

/// `2025-06-01 08:00Z` (UTC).
pub(crate) fn time(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(format_description!("[year]-[month]-[day] [hour]:[minute]Z"))
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

/// A selector as one line: `#12 phone 138 0013 8000 (CN) [mobile]`.
/// A selector in words, without its id and label (`resident ID 11010519491231002X`).
pub(crate) fn selector_words(sel: &pb::Selector) -> String {
    match selector_from_proto(sel) {
        Ok((s, _)) => describe(&s),
        Err(_) => "(unreadable selector)".into(),
    }
}

pub(crate) fn selector(sel: &pb::Selector) -> String {
    let text = selector_words(sel);
    let mut line = if sel.id > 0 {
        format!("#{} {text}", sel.id)
    } else {
        text
    };
    if !sel.label.is_empty() {
        line.push_str(&format!(" [{}]", sel.label));
    }
    line
}

/// Prints rows under headers, columns aligned.
pub(crate) fn table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let pad = widths.get(i).copied().unwrap_or(0)
                - cell
                    .chars()
                    .count()
                    .min(widths.get(i).copied().unwrap_or(0));
            out.push_str(cell);
            if i + 1 < cells.len() {
                out.push_str(&" ".repeat(pad + 2));
            }
        }
        out
    };
    println!(
        "{}",
        bold(&line(headers.iter().map(|h| h.to_string()).collect()))
    );
    for row in rows {
        println!("{}", line(row.clone()));
    }
}

/// Prints a JSON value on one line.
pub(crate) fn json(value: &serde_json::Value) {
    println!("{value}");
}

/// The sync state's word.
pub(crate) fn sync_name(sync: i32) -> &'static str {
    match pb::SyncState::try_from(sync) {
        Ok(pb::SyncState::Queued) => "queued",
        Ok(pb::SyncState::Synced) => "synced",
        Ok(pb::SyncState::Rejected) => "rejected",
        _ => "unknown",
    }
}

/// The alert kind's word.
pub(crate) fn alert_kind_name(kind: i32) -> &'static str {
    match pb::AlertKind::try_from(kind) {
        Ok(pb::AlertKind::Match) => "match",
        Ok(pb::AlertKind::Checked) => "checked",
        Ok(pb::AlertKind::Message) => "message",
        Ok(pb::AlertKind::Contact) => "contact",
        Ok(pb::AlertKind::MatchState) => "match_state",
        Ok(pb::AlertKind::AlertsPurged) => "alerts_purged",
        Ok(pb::AlertKind::DrillHalted) => "drill_halted",
        Ok(pb::AlertKind::DrillEnded) => "drill_ended",
        _ => "unknown",
    }
}

/// The banner every command prints (on stderr, so that JSON on stdout stays clean) when it
/// talks to a drill's agencyd: an exercise must never be taken for the real thing.
pub(crate) fn exercise_banner(drill_id: &str, name: &str) {
    let name = if name.is_empty() {
        String::new()
    } else {
        format!(" ({name})")
    };
    let text = format!("*** EXERCISE · drill {drill_id}{name} · not a real operation ***");
    if std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none() {
        eprintln!("\x1b[1;30;43m{text}\x1b[0m");
    } else {
        eprintln!("{text}");
    }
}

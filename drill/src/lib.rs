//! The exercise controller (docs/drills.md). A coordination centre scripts a drill as a
//! scenario (`scenario`), the live broker serves it as a federation of its own
//! (`controller`: start, halt, end through the admin service), bureaus nobody plays are
//! simulated by real agencyd instances this process drives (`parties`), the timeline is
//! played (`play`) and the after-action report is built from the broker's record of each
//! match (`report`, `html`).
//!
//! This crate holds scenario plaintext (fictional selectors) and normalizes it like any
//! agency; it is never linked into the broker, which must not see a selector.

pub mod controller;
pub mod html;
pub mod parties;
pub mod play;
pub mod report;
pub mod scenario;

use std::path::Path;

/// Writes the controller's report (`report.json`, `report.html`) into `dir` (created), and
/// each participant's own (`participants/<id>.json`, `.html`: its rows only).
pub fn write_report(dir: &Path, report: &report::Report) -> anyhow::Result<()> {
    write_pair(dir, "report", report)?;
    for p in &report.participants {
        write_pair(
            &dir.join("participants"),
            &p.id,
            &report.for_participant(&p.id),
        )?;
    }
    Ok(())
}

fn write_pair(dir: &Path, name: &str, report: &report::Report) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("report folder {}: {e}", dir.display()))?;
    let write = |file: String, text: String| {
        let path = dir.join(file);
        std::fs::write(&path, text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    };
    write(
        format!("{name}.json"),
        serde_json::to_string_pretty(report)?,
    )?;
    write(format!("{name}.html"), html::render(report))
}

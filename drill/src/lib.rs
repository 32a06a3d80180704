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

/// Writes `report.json` and `report.html` into `dir` (created).
pub fn write_report(dir: &Path, report: &report::Report) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("report folder {}: {e}", dir.display()))?;
    let json = serde_json::to_string_pretty(report)?;
    std::fs::write(dir.join("report.json"), json)
        .map_err(|e| anyhow::anyhow!("{}: {e}", dir.join("report.json").display()))?;
    std::fs::write(dir.join("report.html"), html::render(report))
        .map_err(|e| anyhow::anyhow!("{}: {e}", dir.join("report.html").display()))?;
    Ok(())
}

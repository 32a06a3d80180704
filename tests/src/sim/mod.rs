//! Simulated provinces: a federation of provincial public-security bureaus (any of the 34
//! provincial-level divisions, plus the national bureau and a watch centre) running seeded,
//! realistic operation mixes against a real broker, checked against a ground truth computed
//! from canonical forms and windows alone.
//!
//! [`generate`] makes the operations (and plants overlaps, whose kinds [`overlap`] names) from
//! the identifiers of [`ident`] and [`docs`], written as [`spell`] says, [`truth`] says which
//! pairs must match, [`run`] registers everything through mTLS clients with tokens from the token
//! service and collects the alerts, [`report`] compares and summarizes, [`leak`] scans the
//! alerts.

pub mod docs;
pub mod generate;
pub mod ident;
pub mod leak;
pub mod mekong;
pub mod overlap;
pub mod provinces;
pub mod report;
pub mod run;
pub mod scenario;
pub mod spell;
pub mod truth;

pub use generate::{SimConfig, Simulation, generate};
pub use report::{Comparison, compare, differences, summary};
pub use run::{Outcome, RunOptions, run};
pub use truth::{Truth, expected};

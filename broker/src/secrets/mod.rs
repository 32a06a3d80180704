//! The broker's secrets: the pepper chain that keys every stored token, and the 0600 files
//! secrets live in.

pub mod file;
pub mod pepper;

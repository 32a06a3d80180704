//! What the integration tests share: where the project's data copies and the federation's
//! shared files are, and the rule for a shared file that is absent.

use std::path::PathBuf;

/// A file of the crate's `data/` folder: the project's own copy, so that a fresh clone with
/// nothing beside it still checks itself.
pub fn project_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join(name)
}

/// The federation's shared copy of `name` (`../shared/` beside the workspace root), when
/// it is there. Absent: on CI (`CI` set), where the checkout has it beside, a failure; on a
/// developer's machine a printed note, and `None`.
pub fn shared_file(name: &str) -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared")
        .join(name);
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI is set but the shared {name} is missing at {}: CI must check the project's copy \
         against the federation's",
        path.display()
    );
    eprintln!(
        "skipped: no shared {name} at {} (only the project's copy is checked)",
        path.display()
    );
    None
}

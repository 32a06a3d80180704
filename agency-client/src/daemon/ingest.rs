//! The drop folder. A `*.json` or `*.toml` operation file placed in `inbox/` is validated,
//! normalized and accepted like a `deconflict register` (then tokenized and sent by the
//! outbox); it moves to `inbox/done/`, or to `inbox/failed/` beside `<name>.error.txt` saying
//! what is wrong.
//!
//! Half-written files are never taken: dotfiles and names ending in `.tmp`, `.part` or `~`
//! are ignored (write under such a name, then rename: a rename within one file system is
//! atomic), and any other file is taken only when its size and modification time were the
//! same at two looks in a row.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use super::core::Core;
use super::ops;
use super::store::make_private_dir;
use super::timing::now_unix;
use crate::opfile::{FileFormat, parse_operation_text};

/// Largest operation file read (bytes).
const MAX_FILE: u64 = 16 * 1024 * 1024;

/// Whether a file name is one the inbox never touches (in-progress or hidden).
pub fn ignored(name: &str) -> bool {
    name.starts_with('.')
        || name.ends_with(".tmp")
        || name.ends_with(".part")
        || name.ends_with('~')
        || name.ends_with(".error.txt")
}

/// Creates `inbox/`, `inbox/done/` and `inbox/failed/` (mode 0700).
pub fn prepare(inbox: &Path) -> std::io::Result<()> {
    for dir in [
        inbox.to_path_buf(),
        inbox.join("done"),
        inbox.join("failed"),
    ] {
        make_private_dir(&dir)?;
    }
    Ok(())
}

/// Runs until `shutdown` turns true.
pub async fn run(core: Arc<Core>, mut shutdown: watch::Receiver<bool>) {
    let inbox = core.config.inbox_path();
    let poll = Duration::from_millis(core.config.daemon.inbox_poll_ms.max(10));
    let mut seen: HashMap<PathBuf, (u64, Option<SystemTime>)> = HashMap::new();
    loop {
        if let Err(e) = scan(&core, &inbox, &mut seen).await {
            tracing::warn!(dir = %inbox.display(), error = %e, "inbox: cannot read the folder");
        }
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = shutdown.changed() => return,
        }
    }
}

async fn scan(
    core: &Arc<Core>,
    inbox: &Path,
    seen: &mut HashMap<PathBuf, (u64, Option<SystemTime>)>,
) -> std::io::Result<()> {
    let mut present = Vec::new();
    let mut entries = std::fs::read_dir(inbox)?.collect::<Result<Vec<_>, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        if ignored(&name) || !entry.file_type()?.is_file() {
            continue;
        }
        let path = entry.path();
        let meta = entry.metadata()?;
        let stamp = (meta.len(), meta.modified().ok());
        present.push(path.clone());
        if seen.get(&path) != Some(&stamp) {
            // New or still changing: look again next time.
            seen.insert(path, stamp);
            continue;
        }
        seen.remove(&path);
        take(core, inbox, &path, &name, meta.len()).await;
    }
    seen.retain(|p, _| present.contains(p));
    Ok(())
}

/// Processes one stable file.
async fn take(core: &Arc<Core>, inbox: &Path, path: &Path, name: &str, len: u64) {
    let outcome = match FileFormat::of(name) {
        None => Err("not an operation file: the name must end in .json or .toml".to_string()),
        Some(_) if len > MAX_FILE => Err(format!("larger than {MAX_FILE} bytes")),
        Some(format) => match std::fs::read_to_string(path) {
            Err(e) => Err(format!("cannot read as UTF-8 text: {e}")),
            Ok(text) => match parse_operation_text(&text, format, now_unix()) {
                Err(e) => Err(e.0),
                Ok(spec) => {
                    let count = spec.selectors.len();
                    match ops::register(core, spec, &format!("inbox:{name}")).await {
                        Ok(acc) => Ok((acc.op.id, count, acc.created)),
                        Err(status) if status.code() == tonic::Code::Internal => {
                            // The store failed: leave the file for the next look.
                            tracing::error!(
                                file = name,
                                "inbox: not taken; the local store failed"
                            );
                            return;
                        }
                        Err(status) => Err(status.message().to_owned()),
                    }
                }
            },
        },
    };
    match outcome {
        Ok((op_id, count, created)) => {
            tracing::info!(file = name, operation_id = %op_id, selectors = count, new = created, "inbox: accepted");
            if let Err(e) = move_to(path, &inbox.join("done"), name) {
                tracing::error!(file = name, error = %e, "inbox: accepted but cannot move to done/");
            }
        }
        Err(reason) => {
            // The reason may quote the file's selectors: it goes to the error file only.
            tracing::warn!(file = name, "inbox: refused; see failed/{name}.error.txt");
            let failed = inbox.join("failed");
            let result = move_to(path, &failed, name).and_then(|dest| {
                let note = failed.join(format!(
                    "{}.error.txt",
                    dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
                ));
                std::fs::write(
                    note,
                    format!("{name} was not registered: {reason}\nNothing of it was stored or sent. Fix the file and drop it into the inbox again.\n"),
                )
            });
            if let Err(e) = result {
                tracing::error!(file = name, error = %e, "inbox: cannot move to failed/");
            }
        }
    }
}

/// Moves `path` into `dir` under `name`, or `name` with a time suffix if that is taken.
fn move_to(path: &Path, dir: &Path, name: &str) -> std::io::Result<PathBuf> {
    let mut dest = dir.join(name);
    if dest.exists() {
        let stamp = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        dest = dir.join(format!("{stamp}-{name}"));
    }
    std::fs::rename(path, &dest)?;
    Ok(dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_progress_names_are_ignored() {
        for name in [
            ".op.json",
            "op.json.tmp",
            "op.json.part",
            "op.json~",
            "a.error.txt",
        ] {
            assert!(ignored(name), "{name}");
        }
        assert!(!ignored("op.json"));
        assert!(!ignored("op.txt"));
    }
}

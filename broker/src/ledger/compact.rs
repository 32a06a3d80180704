//! Offline compaction: sled never gives back all the space of the page versions that random
//! inserts leave behind (at 10 M stored tokens a store written in place holds about four times
//! its data, 550 bytes per token), but a copy written in key order holds about two and a half
//! (341 bytes per token; docs/BENCHMARKS.md). With the broker stopped, the store is copied
//! in key order into `store.compacting`, the copy is checked (every record, the audit chain and
//! its head), and the two folders are swapped by renames.
//!
//! A crash at any point leaves something a broker will not mistake for an empty store: before
//! the first rename the original is untouched; between the two renames there is no `store`
//! folder, and the broker refuses to start (see [`interrupted`]) until a second run of the
//! compaction finishes the swap, which the `COMPLETE` mark in the checked copy allows.

use std::path::{Path, PathBuf};

use super::audit::{AuditEvent, AuditLog, Verdict, verify};
use crate::store::{SledStore, Store, StoreError, WriteBatch, bytes_under, count_records};

const WORK: &str = "store.compacting";
const OLD: &str = "store.old";
/// Written into the copy once it is checked: only such a copy may become the store.
const COMPLETE: &str = "COMPLETE";

#[derive(Debug, thiserror::Error)]
pub enum CompactError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path}: {reason}")]
    Io { path: PathBuf, reason: String },
    #[error("there is no store in {0}: nothing to compact")]
    NoStore(PathBuf),
    #[error(
        "{0} exists from an earlier compaction: keep it elsewhere or delete it, then run the \
         compaction again"
    )]
    OldInTheWay(PathBuf),
    #[error("the copy does not match the store ({0}); the store is left as it was")]
    CopyDiffers(String),
}

/// What a compaction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compacted {
    pub records: u64,
    pub bytes_before: u64,
    pub bytes_after: u64,
    /// An interrupted compaction was finished rather than a new one made.
    pub resumed: bool,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CompactError + '_ {
    move |e| CompactError::Io {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// Why a broker must not start on `data_dir`: a compaction stopped between its two renames,
/// so there is no store folder, but the data is there under another name.
pub fn interrupted(data_dir: &Path) -> Option<String> {
    let store = data_dir.join("store");
    let parked = [data_dir.join(OLD), data_dir.join(WORK)];
    if store.exists() || !parked.iter().any(|p| p.exists()) {
        return None;
    }
    Some(format!(
        "{} is missing but a store compaction left {} and {}: run `deconflict-broker store \
         compact` again to finish it (a broker started now would begin with an empty store)",
        store.display(),
        parked[0].display(),
        parked[1].display()
    ))
}

/// Compacts the store in `data_dir` (the broker must be stopped), or finishes a compaction
/// that a crash interrupted. The old copy is deleted unless `keep_old`.
pub fn compact(data_dir: &Path, keep_old: bool, now: i64) -> Result<Compacted, CompactError> {
    let store_dir = data_dir.join("store");
    let work = data_dir.join(WORK);
    let old = data_dir.join(OLD);
    if !store_dir.exists() && work.join(COMPLETE).exists() && old.exists() {
        let records = count_records(&SledStore::open(&work)?)?;
        swap_in(&work, &store_dir, &old, keep_old)?;
        return Ok(Compacted {
            records,
            bytes_before: 0,
            bytes_after: bytes_under(&store_dir),
            resumed: true,
        });
    }
    if !store_dir.exists() {
        return Err(CompactError::NoStore(data_dir.to_path_buf()));
    }
    if old.exists() {
        return Err(CompactError::OldInTheWay(old));
    }
    if work.exists() {
        // A copy a crash interrupted before it was checked: the store itself is intact.
        std::fs::remove_dir_all(&work).map_err(io(&work))?;
    }
    let bytes_before = bytes_under(&store_dir);
    let records = {
        let source = SledStore::open(&store_dir)?;
        let copied = source.export_to(&work)?;
        let target = SledStore::open(&work)?;
        check_copy(&source, &target, copied)?;
        // The compaction leaves its trace in the chain it copied.
        let event = AuditEvent::new("broker", "store_compact")
            .count("records", copied)
            .count("bytes_before", bytes_before);
        AuditLog::open(&target)?.apply_with(&target, WriteBatch::default(), vec![event], now)?;
        target.flush_blocking()?;
        copied
    };
    let mark = work.join(COMPLETE);
    std::fs::write(&mark, b"checked\n").map_err(io(&mark))?;
    sync(&work)?;
    swap_in(&work, &store_dir, &old, keep_old)?;
    Ok(Compacted {
        records,
        bytes_before,
        bytes_after: bytes_under(&store_dir),
        resumed: false,
    })
}

/// Every record arrived, and the audit chain is whole and ends where the store's does.
fn check_copy(source: &dyn Store, target: &dyn Store, copied: u64) -> Result<(), CompactError> {
    let counted = count_records(target)?;
    if counted != copied {
        return Err(CompactError::CopyDiffers(format!(
            "{copied} records copied, {counted} found in the copy"
        )));
    }
    let records = match verify(target)? {
        Verdict::Intact { records } => records,
        Verdict::Broken { seq, reason } => {
            return Err(CompactError::CopyDiffers(format!(
                "audit chain broken at record {seq}: {reason}"
            )));
        }
    };
    let (from, to) = (
        AuditLog::open(source)?.head(),
        AuditLog::open(target)?.head(),
    );
    if from != to || records != to.seq {
        return Err(CompactError::CopyDiffers(format!(
            "audit head {} in the store, {} in the copy",
            from.text(),
            to.text()
        )));
    }
    Ok(())
}

fn swap_in(work: &Path, store: &Path, old: &Path, keep_old: bool) -> Result<(), CompactError> {
    let data_dir = store.parent().unwrap_or(Path::new("."));
    if store.exists() {
        std::fs::rename(store, old).map_err(io(store))?;
        sync(data_dir)?;
    }
    std::fs::rename(work, store).map_err(io(work))?;
    sync(data_dir)?;
    let mark = store.join(COMPLETE);
    std::fs::remove_file(&mark).map_err(io(&mark))?;
    if !keep_old {
        std::fs::remove_dir_all(old).map_err(io(old))?;
    }
    Ok(())
}

/// Makes a folder's entries (a rename, a new file) durable.
fn sync(dir: &Path) -> Result<(), CompactError> {
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io(dir))
}

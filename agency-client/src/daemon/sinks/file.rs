//! The JSON-lines file sink: one alert per line, appended and synced, file mode 0600.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::daemon::records::AlertRecord;

/// Bytes read back from the end of the file to find the last seq written.
const TAIL: u64 = 256 * 1024;

/// An append-only JSON-lines file.
pub struct FileSink {
    path: PathBuf,
    file: File,
    last_seq: u64,
}

impl FileSink {
    /// Opens (creating) the file and reads the last seq it holds.
    pub fn open(path: &Path) -> Result<Self, String> {
        let fail = |e: std::io::Error| format!("[sinks] jsonl {}: {e}", path.display());
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .mode(0o600)
            .open(path)
            .map_err(fail)?;
        let last_seq = last_seq_in(&mut file).map_err(fail)?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
            last_seq,
        })
    }

    /// The highest seq in the file (0 when empty).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Appends one alert (skipping one the file already holds) and syncs it to disk.
    pub fn append(&mut self, alert: &AlertRecord) -> Result<(), String> {
        if alert.seq <= self.last_seq {
            return Ok(());
        }
        let mut line = serde_json::to_vec(alert).map_err(|e| e.to_string())?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| format!("{}: {e}", self.path.display()))?;
        self.last_seq = alert.seq;
        Ok(())
    }
}

/// The `seq` of the last complete line (a torn last line, from a crash mid-write, is ignored;
/// the next append starts a fresh line after it).
fn last_seq_in(file: &mut File) -> std::io::Result<u64> {
    let len = file.metadata()?.len();
    let start = len.saturating_sub(TAIL);
    file.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail)?;
    let complete = tail.ends_with(b"\n");
    if !complete && !tail.is_empty() {
        // Terminate the torn line so the next record starts on its own line.
        file.write_all(b"\n")?;
    }
    let text = String::from_utf8_lossy(&tail);
    let mut lines: Vec<&str> = text.lines().collect();
    if !complete {
        lines.pop();
    }
    Ok(lines
        .iter()
        .rev()
        .find_map(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .ok()
                .and_then(|v| v.get("seq").and_then(serde_json::Value::as_u64))
        })
        .unwrap_or(0))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn alert(seq: u64) -> AlertRecord {
        AlertRecord {
            seq,
            federation: String::new(),
            at_unix: 1,
            received_unix: 2,
            kind: "match".into(),
            acked: false,
            match_id: "m".into(),
            operation_id: "o".into(),
            case_reference: String::new(),
            created: true,
            new_tokens: 1,
            selectors: Vec::new(),
            unresolved_refs: Vec::new(),
            pinyin_only: Vec::new(),
            text: None,
            card: None,
            state: None,
            outcome: None,
            note: None,
            by_you: false,
            drill_id: String::new(),
            exercise: false,
        }
    }

    #[test]
    fn appends_once_and_survives_torn_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts.jsonl");
        {
            let mut sink = FileSink::open(&path).unwrap();
            sink.append(&alert(1)).unwrap();
            sink.append(&alert(2)).unwrap();
            sink.append(&alert(2)).unwrap();
        }
        // A crash mid-line.
        OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"seq\":3,")
            .unwrap();
        let mut sink = FileSink::open(&path).unwrap();
        assert_eq!(sink.last_seq(), 2);
        sink.append(&alert(3)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let seqs: Vec<u64> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .map(|v| v["seq"].as_u64().unwrap())
            .collect();
        assert_eq!(seqs, [1, 2, 3]);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

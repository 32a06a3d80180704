//! Compiles `data/pinyin-readings.tsv` (the spec's normative readings table, kept byte for byte
//! as published) into a compact table the library embeds: the distinct syllables, and per code
//! point a `u16` index into them, stored in runs of nearby code points so that a lookup is one
//! binary search over a few thousand runs and one read. Doing it here, not at run time, keeps
//! the 600 KB text out of the binary and parsing out of every process start.

use std::collections::BTreeSet;
use std::error::Error;
use std::fmt::Write as _;
use std::path::PathBuf;

/// Gaps up to this many code points are filled with [`NONE`] rather than starting a new run:
/// fewer runs, a shorter search, at a few bytes per gap.
const MAX_GAP: u32 = 32;
/// The index of a code point without a reading.
const NONE: u16 = u16::MAX;

fn main() -> Result<(), Box<dyn Error>> {
    let tsv_path = "data/pinyin-readings.tsv";
    println!("cargo::rerun-if-changed={tsv_path}");
    let tsv = std::fs::read_to_string(tsv_path)?;

    let mut entries: Vec<(u32, &str)> = Vec::with_capacity(42_000);
    for (n, line) in tsv.lines().enumerate() {
        let bad = |what: &str| format!("{tsv_path}:{}: {what}", n + 1);
        let (hex, syllable) = line.split_once('\t').ok_or_else(|| bad("no tab"))?;
        let cp = u32::from_str_radix(hex, 16).map_err(|_| bad("code point is not hex"))?;
        if syllable.is_empty() || !syllable.bytes().all(|b| b.is_ascii_lowercase()) {
            return Err(bad("syllable is not [a-z]+").into());
        }
        if entries.last().is_some_and(|&(prev, _)| prev >= cp) {
            return Err(bad("not in ascending code point order").into());
        }
        entries.push((cp, syllable));
    }

    let syllables: Vec<&str> = entries
        .iter()
        .map(|&(_, s)| s)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let index_of = |s: &str| -> Result<u16, Box<dyn Error>> {
        let i = syllables.binary_search(&s).map_err(|_| "syllable lost")?;
        Ok(u16::try_from(i)?)
    };

    // Runs: (first code point, last code point, offset of the first in the index array).
    let mut runs: Vec<(u32, u32, u32)> = Vec::new();
    let mut index: Vec<u16> = Vec::with_capacity(entries.len() * 2);
    for &(cp, syllable) in &entries {
        match runs.last_mut() {
            Some(run) if cp - run.1 <= MAX_GAP => {
                let gap = usize::try_from(cp - run.1 - 1)?;
                index.extend(std::iter::repeat_n(NONE, gap));
                run.1 = cp;
            }
            _ => runs.push((cp, cp, u32::try_from(index.len())?)),
        }
        index.push(index_of(syllable)?);
    }

    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let bytes: Vec<u8> = index.iter().flat_map(|i| i.to_le_bytes()).collect();
    std::fs::write(out_dir.join("pinyin_index.bin"), bytes)?;

    let mut src = String::new();
    writeln!(src, "/// Distinct syllables of the readings table, sorted.")?;
    writeln!(src, "static SYLLABLES: [&str; {}] = [", syllables.len())?;
    for s in &syllables {
        writeln!(src, "    {s:?},")?;
    }
    writeln!(src, "];")?;
    writeln!(
        src,
        "/// Runs of code points: (first, last, offset into INDEX), ascending."
    )?;
    writeln!(src, "static RUNS: [(u32, u32, u32); {}] = [", runs.len())?;
    for (first, last, offset) in &runs {
        writeln!(src, "    ({first:#x}, {last:#x}, {offset}),")?;
    }
    writeln!(src, "];")?;
    writeln!(
        src,
        "/// Per code point of the runs, its syllable's index as u16 LE; {NONE:#x}: no reading."
    )?;
    writeln!(
        src,
        "static INDEX: &[u8] = include_bytes!(concat!(env!(\"OUT_DIR\"), \"/pinyin_index.bin\"));"
    )?;
    writeln!(src, "/// Lines of the table (its entries).")?;
    writeln!(
        src,
        "#[cfg(test)]\nconst ENTRIES: usize = {};",
        entries.len()
    )?;
    std::fs::write(out_dir.join("pinyin_table.rs"), src)?;
    Ok(())
}

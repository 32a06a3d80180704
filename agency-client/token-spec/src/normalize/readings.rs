//! The Hanyu Pinyin reading of one ideograph, from the spec's `pinyin-readings.tsv`.
//!
//! The table is normative (every client must read a character alike), so it ships inside the
//! crate (`data/`) and `build.rs` compiles it into runs of code points with a `u16` syllable
//! index each: one binary search and one read per character, nothing parsed at run time.

include!(concat!(env!("OUT_DIR"), "/pinyin_table.rs"));

/// The syllable of `c` (`[a-z]+`, no tone), or `None` when the table has no line for it.
pub(super) fn reading(c: char) -> Option<&'static str> {
    let cp = u32::from(c);
    let run = RUNS
        .partition_point(|&(first, _, _)| first <= cp)
        .checked_sub(1)?;
    let (first, last, offset) = RUNS[run];
    if cp > last {
        return None;
    }
    let at = usize::try_from(offset + (cp - first)).ok()? * 2;
    let index = u16::from_le_bytes([*INDEX.get(at)?, *INDEX.get(at + 1)?]);
    SYLLABLES.get(usize::from(index)).copied()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// The compiled table gives back every line of the file, and nothing else.
    #[test]
    fn every_line_round_trips() {
        let tsv = include_str!("../../data/pinyin-readings.tsv");
        let mut lines = 0;
        for line in tsv.lines() {
            let (hex, syllable) = line.split_once('\t').unwrap();
            let c = char::from_u32(u32::from_str_radix(hex, 16).unwrap()).unwrap();
            assert_eq!(reading(c), Some(syllable), "{hex}");
            lines += 1;
        }
        assert_eq!(lines, ENTRIES);
        let listed = (0..=0x3_134F)
            .filter_map(char::from_u32)
            .filter(|&c| reading(c).is_some())
            .count();
        assert_eq!(listed, ENTRIES);
    }

    #[test]
    fn examples() {
        assert_eq!(reading('张'), Some("zhang"));
        assert_eq!(reading('吕'), Some("lyu"));
        assert_eq!(reading('a'), None);
        assert_eq!(reading('\u{10FFFF}'), None);
    }
}

//! Charts drawn by the server as SVG: stacked bars per day and plain horizontal bars. No
//! script, no external resources; text is escaped.

use std::fmt::Write;

/// A colour per series, in order (enough to tell a dozen provinces apart).
const PALETTE: [&str; 12] = [
    "#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#0a7d8c", "#bf3989", "#57606a",
    "#fb8500", "#2da44e", "#6e40c9", "#953800",
];

pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Bars per column (a day), stacked by series (an agency). `columns` label the x axis,
/// `series` name the stacks; `values[s][c]` is series `s` in column `c`.
pub fn stacked_bars(
    title: &str,
    columns: &[String],
    series: &[String],
    values: &[Vec<u64>],
) -> String {
    let (width, height, left, bottom, top) = (900.0_f64, 300.0_f64, 40.0, 40.0, 28.0);
    let plot_h = height - bottom - top;
    let n = columns.len().max(1) as f64;
    let slot = (width - left - 10.0) / n;
    let totals: Vec<u64> = (0..columns.len())
        .map(|c| values.iter().map(|s| s.get(c).copied().unwrap_or(0)).sum())
        .collect();
    let max = totals.iter().copied().max().unwrap_or(0).max(1) as f64;
    let legend_rows = series.len().div_ceil(4) as f64;
    let total_h = height + legend_rows * 18.0 + 6.0;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {total_h}" role="img" aria-label="{t}" width="100%"><title>{t}</title>"#,
        t = escape(title)
    );
    // Grid: zero, half and the maximum.
    for frac in [0.0, 0.5, 1.0] {
        let y = top + plot_h * (1.0 - frac);
        let _ = write!(
            s,
            r##"<line x1="{left}" y1="{y:.1}" x2="{x2:.1}" y2="{y:.1}" stroke="#d6dbe2"/><text x="{tx:.1}" y="{ty:.1}" font-size="11" text-anchor="end" fill="#5b6675">{v}</text>"##,
            x2 = width - 10.0,
            tx = left - 4.0,
            ty = y + 4.0,
            v = (max * frac).round() as u64
        );
    }
    for (c, label) in columns.iter().enumerate() {
        let x = left + slot * c as f64 + slot * 0.15;
        let w = slot * 0.7;
        let mut y = top + plot_h;
        for (si, row) in values.iter().enumerate() {
            let v = row.get(c).copied().unwrap_or(0);
            if v == 0 {
                continue;
            }
            let h = plot_h * v as f64 / max;
            y -= h;
            let _ = write!(
                s,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="{f}"><title>{name}: {v}</title></rect>"#,
                f = PALETTE[si % PALETTE.len()],
                name = escape(series.get(si).map_or("", String::as_str))
            );
        }
        // Label every column when few, else every seventh (weeks).
        if columns.len() <= 14 || c % 7 == 0 || c + 1 == columns.len() {
            let _ = write!(
                s,
                r##"<text x="{tx:.1}" y="{ty:.1}" font-size="11" text-anchor="middle" fill="#5b6675">{l}</text>"##,
                tx = x + w / 2.0,
                ty = top + plot_h + 16.0,
                l = escape(label)
            );
        }
    }
    for (i, name) in series.iter().enumerate() {
        let (col, row) = ((i % 4) as f64, (i / 4) as f64);
        let (x, y) = (left + col * 215.0, height + row * 18.0);
        let _ = write!(
            s,
            r##"<rect x="{x:.1}" y="{ry:.1}" width="12" height="12" fill="{f}"/><text x="{tx:.1}" y="{y:.1}" font-size="12" fill="#1c2430">{n}</text>"##,
            ry = y - 10.0,
            tx = x + 17.0,
            f = PALETTE[i % PALETTE.len()],
            n = escape(name)
        );
    }
    s.push_str("</svg>");
    s
}

/// One horizontal bar per label.
pub fn bars(title: &str, rows: &[(String, u64)]) -> String {
    let (width, row_h, label_w) = (900.0_f64, 24.0_f64, 260.0_f64);
    let height = row_h * rows.len().max(1) as f64 + 10.0;
    let max = rows.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1) as f64;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" aria-label="{t}" width="100%"><title>{t}</title>"#,
        t = escape(title)
    );
    for (i, (label, v)) in rows.iter().enumerate() {
        let y = 5.0 + row_h * i as f64;
        let w = (width - label_w - 60.0) * *v as f64 / max;
        let _ = write!(
            s,
            r##"<text x="{lx:.1}" y="{ty:.1}" font-size="12" text-anchor="end" fill="#1c2430">{l}</text><rect x="{label_w}" y="{ry:.1}" width="{w:.1}" height="16" fill="#1f6feb"/><text x="{vx:.1}" y="{ty:.1}" font-size="12" fill="#5b6675">{v}</text>"##,
            lx = label_w - 8.0,
            ty = y + 13.0,
            ry = y + 1.0,
            vx = label_w + w + 6.0,
            l = escape(label)
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_escape_their_text_and_draw_a_bar_per_value() {
        let svg = stacked_bars(
            "per day <all>",
            &["12-01".into(), "12-02".into()],
            &["粤 <gd>".into(), "yn".into()],
            &[vec![1, 0], vec![2, 3]],
        );
        assert!(svg.contains("&lt;gd&gt;") && !svg.contains("<gd>"));
        assert_eq!(
            svg.matches("<rect").count(),
            3 + 2,
            "three bars, two legend keys"
        );
        let svg = bars("totals", &[("a".into(), 5), ("b".into(), 0)]);
        assert_eq!(svg.matches("<rect").count(), 2);
    }
}

//! The after-action report as one HTML page (no script, no external resource: it opens on an
//! agency network and prints): an EXERCISE banner, the summary, a timeline picture (SVG drawn
//! here) with a row per trainee, and the tables behind it.

use std::fmt::Write;

use crate::report::{Report, Response, Verdict};
use crate::scenario::Reaction;

fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn colour(r: Reaction) -> &'static str {
    match r {
        Reaction::Seen => "#6b7280",
        Reaction::Acknowledge => "#2563eb",
        Reaction::Contact => "#7c3aed",
        Reaction::Disclose => "#d97706",
        Reaction::Resolve => "#059669",
    }
}

fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Met => "met",
        Verdict::Late => "LATE",
        Verdict::Missed => "MISSED",
        Verdict::Done => "done",
        Verdict::NotDone => "–",
    }
}

fn minutes_since(report: &Report, unix: i64) -> f64 {
    (unix - report.t0_unix) as f64 / report.minute_seconds.max(0.001)
}

/// The timeline: scenario minutes across, a row per trainee; injects as dashed lines, each
/// reaction as a dot in its colour.
fn timeline(report: &Report) -> String {
    let trainees: Vec<&str> = report.participants.iter().map(|p| p.id.as_str()).collect();
    let responses: Vec<&Response> = report
        .injects
        .iter()
        .flat_map(|i| &i.responses)
        .chain(&report.unscripted)
        .collect();
    let mut end = minutes_since(report, report.ended_unix).max(1.0);
    for i in &report.injects {
        end = end.max(i.at_minutes);
    }
    let (left, width, row) = (140.0, 760.0, 34.0);
    let height = 50.0 + row * trainees.len().max(1) as f64;
    let x = |m: f64| left + width * (m.max(0.0) / end).min(1.0);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{height}" role="img" aria-label="timeline">"#,
        w = left + width + 20.0
    );
    for (n, t) in trainees.iter().enumerate() {
        let y = 40.0 + row * n as f64;
        let _ = write!(
            svg,
            r##"<text x="4" y="{ty}" font-size="12">{}</text><line x1="{left}" y1="{y}" x2="{x2}" y2="{y}" stroke="#e5e7eb"/>"##,
            esc(t),
            ty = y + 4.0,
            x2 = left + width
        );
        for r in responses.iter().filter(|r| r.trainee == *t) {
            for s in &r.steps {
                if let Some(at) = s.at_unix {
                    let _ = write!(
                        svg,
                        r#"<circle cx="{:.1}" cy="{y}" r="5" fill="{}"><title>{} {} (match {})</title></circle>"#,
                        x(minutes_since(report, at)),
                        colour(s.reaction),
                        esc(t),
                        s.reaction.as_str(),
                        esc(&r.match_id)
                    );
                }
            }
        }
    }
    for i in &report.injects {
        let xi = x(i.at_minutes);
        let _ = write!(
            svg,
            r##"<line x1="{xi:.1}" y1="18" x2="{xi:.1}" y2="{y2}" stroke="#dc2626" stroke-dasharray="3,3"/><text x="{xi:.1}" y="14" font-size="11" text-anchor="middle">#{}</text>"##,
            i.number,
            y2 = height - 10.0
        );
    }
    let _ = write!(
        svg,
        r#"<text x="{left}" y="{}" font-size="11">T+0</text><text x="{}" y="{}" font-size="11" text-anchor="end">T+{:.0} min</text></svg>"#,
        height - 2.0,
        left + width,
        height - 2.0,
        end
    );
    svg
}

fn legend() -> String {
    Reaction::ALL
        .iter()
        .map(|r| {
            format!(
                r#"<span><svg width="12" height="12"><circle cx="6" cy="6" r="5" fill="{}"/></svg> {}</span>"#,
                colour(*r),
                r.as_str()
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn responses_table(out: &mut String, responses: &[Response]) {
    out.push_str("<table><tr><th>trainee</th><th>match</th>");
    for r in Reaction::ALL {
        let _ = write!(out, "<th>{}</th>", r.as_str());
    }
    out.push_str("</tr>");
    for r in responses {
        let _ = write!(
            out,
            "<tr><td>{}</td><td><code>{}</code></td>",
            esc(&r.trainee),
            esc(&r.match_id)
        );
        for s in &r.steps {
            let when = s
                .after_minutes
                .map(|m| format!(" +{m} min"))
                .unwrap_or_default();
            let class = match s.verdict {
                Verdict::Late | Verdict::Missed => " class=\"bad\"",
                Verdict::Met => " class=\"good\"",
                _ => "",
            };
            let _ = write!(out, "<td{class}>{}{when}</td>", verdict_word(s.verdict));
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
}

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>EXERCISE — after-action report {id}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1000px}}.banner{{background:#facc15;color:#000;font-weight:bold;padding:.6em;text-align:center;font-size:1.3em;border:3px solid #000}}
table{{border-collapse:collapse;margin:.5em 0 1.5em}}td,th{{border:1px solid #d1d5db;padding:.25em .5em;font-size:.9em}}.bad{{background:#fee2e2}}.good{{background:#dcfce7}}.halt{{background:#dc2626;color:#fff;padding:.5em;font-weight:bold}}</style></head><body>
<div class="banner">EXERCISE · 演习 · drill {id} · not a real operation</div>
<h1>After-action report: {name}</h1>"#,
        id = esc(&report.drill_id),
        name = esc(&report.name)
    );
    if let Some(reason) = &report.halted {
        let _ = write!(
            out,
            r#"<p class="halt">Halted by the controller: {}</p>"#,
            esc(reason)
        );
    }
    let s = &report.summary;
    let _ = write!(
        out,
        "<h2>Summary</h2><table><tr><th>expected reactions</th><th>met</th><th>late</th><th>missed</th><th>injects played</th><th>injects failed</th></tr><tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr></table>",
        s.expected, s.met, s.late, s.missed, s.injects_played, s.injects_failed
    );
    let _ = write!(
        out,
        "<h2>Timeline</h2>{}<p>{}</p>",
        timeline(report),
        legend()
    );
    out.push_str("<h2>Participants</h2><table><tr><th>trainee</th><th>matches</th><th>met</th><th>late</th><th>missed</th><th>never matched</th><th>median to seen</th><th>median to acknowledged</th></tr>");
    for p in &report.participants {
        let m = |v: Option<f64>| v.map_or("–".to_owned(), |m| format!("{m} min"));
        let _ = write!(
            out,
            "<tr><td>{} ({})</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&p.name),
            esc(&p.id),
            p.matches,
            p.met,
            p.late,
            p.missed,
            p.never_matched,
            m(p.median_seen_minutes),
            m(p.median_acknowledged_minutes)
        );
    }
    out.push_str("</table><h2>Injects</h2>");
    for i in &report.injects {
        let _ = write!(
            out,
            "<h3>#{} T+{} min · {} · {:?}</h3><p>{}</p>",
            i.number,
            i.at_minutes,
            esc(&i.party),
            i.action,
            esc(&i.brief)
        );
        if let Some(e) = &i.error {
            let _ = write!(out, "<p class=\"bad\">Not played: {}</p>", esc(e));
        }
        if !i.never_matched.is_empty() {
            let _ = write!(
                out,
                "<p class=\"bad\">Expected to match and never did: {}</p>",
                esc(&i.never_matched.join(", "))
            );
        }
        if !i.responses.is_empty() {
            responses_table(&mut out, &i.responses);
        }
    }
    if !report.unscripted.is_empty() {
        out.push_str("<h2>Trainees who found each other (not scripted)</h2>");
        responses_table(&mut out, &report.unscripted);
    }
    out.push_str("<div class=\"banner\">EXERCISE · 演习</div></body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(esc("<b>&\"'"), "&lt;b&gt;&amp;&quot;&#39;");
    }
}

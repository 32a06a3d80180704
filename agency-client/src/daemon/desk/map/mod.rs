//! The map of places, drawn by the desk as SVG: province outlines of the PRC (Natural Earth,
//! public domain, shipped in `outlines.json`: `tools/boundaries/convert.py` says how it was
//! made), an operation's geo selectors as points, and the H3 cells its tokens were derived
//! from (at the federation's resolution and disk radius), the matched ones in red. No tile
//! server, no internet: the outlines are compiled in, the cells computed here. Only the desk
//! draws it: the broker and the watch centre never see a place.

use std::fmt::Write;
use std::sync::OnceLock;

use deconfliction_web::Lang;
use deconfliction_web::svg::escape;
use serde::Deserialize;
use token_spec::normalize::FederationParams;

#[derive(Debug, Deserialize)]
struct Outlines {
    provinces: Vec<Province>,
}

#[derive(Debug, Deserialize)]
struct Province {
    zh: String,
    en: String,
    /// Outer rings as [lng, lat].
    rings: Vec<Vec<[f64; 2]>>,
}

fn outlines() -> &'static Outlines {
    static OUTLINES: OnceLock<Outlines> = OnceLock::new();
    OUTLINES.get_or_init(|| {
        serde_json::from_str(include_str!("outlines.json")).unwrap_or(Outlines {
            provinces: Vec::new(),
        })
    })
}

/// One geo selector to draw.
#[derive(Debug, Clone)]
pub(crate) struct Place {
    pub lat: f64,
    pub lng: f64,
    pub label: String,
    /// Part of a match (its cells drawn in red).
    pub matched: bool,
}

/// A box in degrees: west, south, east, north.
#[derive(Debug, Clone, Copy)]
struct View {
    w: f64,
    s: f64,
    e: f64,
    n: f64,
}

impl View {
    const CHINA: View = View {
        w: 73.0,
        s: 17.5,
        e: 135.5,
        n: 54.0,
    };

    /// A box around `points` with at least `min_pad` degrees on each side, widened or
    /// heightened to a 4:3 frame.
    fn around(points: &[(f64, f64)], min_pad: f64) -> View {
        if points.is_empty() {
            return View::CHINA;
        }
        let (mut w, mut s, mut e, mut n) = (180.0_f64, 90.0_f64, -180.0_f64, -90.0_f64);
        for (lat, lng) in points {
            w = w.min(*lng);
            e = e.max(*lng);
            s = s.min(*lat);
            n = n.max(*lat);
        }
        let pad = ((e - w).max(n - s) * 0.3).max(min_pad);
        let mut v = View {
            w: w - pad,
            s: s - pad,
            e: e + pad,
            n: n + pad,
        };
        let k = ((v.s + v.n) / 2.0).to_radians().cos().max(0.2);
        let (width, height) = ((v.e - v.w) * k, v.n - v.s);
        if width < height * 4.0 / 3.0 {
            let grow = (height * 4.0 / 3.0 - width) / k / 2.0;
            v.w -= grow;
            v.e += grow;
        } else {
            let grow = (width * 3.0 / 4.0 - height) / 2.0;
            v.s -= grow;
            v.n += grow;
        }
        v
    }

    /// Whether a ring's bounding box meets the view (a province around a close view has no
    /// vertex inside it, yet fills it).
    fn touches(&self, ring: &[[f64; 2]]) -> bool {
        let (mut w, mut s, mut e, mut n) = (180.0_f64, 90.0_f64, -180.0_f64, -90.0_f64);
        for [lng, lat] in ring {
            w = w.min(*lng);
            e = e.max(*lng);
            s = s.min(*lat);
            n = n.max(*lat);
        }
        w <= self.e && e >= self.w && s <= self.n && n >= self.s
    }
}

/// Degrees to SVG units: equirectangular, shrunk east-west by the cosine of the view's middle
/// latitude so that shapes keep their proportions at these latitudes.
struct Projection {
    view: View,
    k: f64,
    scale: f64,
}

impl Projection {
    const WIDTH: f64 = 640.0;

    fn new(view: View) -> Self {
        let k = ((view.s + view.n) / 2.0).to_radians().cos().max(0.2);
        let scale = Self::WIDTH / ((view.e - view.w) * k);
        Self { view, k, scale }
    }

    fn height(&self) -> f64 {
        (self.view.n - self.view.s) * self.scale
    }

    fn xy(&self, lat: f64, lng: f64) -> (f64, f64) {
        (
            (lng - self.view.w) * self.k * self.scale,
            (self.view.n - lat) * self.scale,
        )
    }

    fn path(&self, ring: impl Iterator<Item = (f64, f64)>) -> String {
        let mut d = String::new();
        for (i, (lat, lng)) in ring.enumerate() {
            let (x, y) = self.xy(lat, lng);
            let _ = write!(d, "{}{x:.1} {y:.1}", if i == 0 { "M" } else { "L" });
        }
        d.push('Z');
        d
    }
}

/// A cell's outline as (lat, lng) vertices.
type Ring = Vec<(f64, f64)>;
/// Each place's cells, and whether the place is part of a match.
type CellSets = [(bool, Vec<Ring>)];

/// The cells a geo point's tokens come from: the point's cell and its disk.
fn cells(place: &Place, params: FederationParams) -> Vec<Ring> {
    let Ok(point) = h3o::LatLng::new(place.lat, place.lng) else {
        return Vec::new();
    };
    let Ok(res) = h3o::Resolution::try_from(params.h3_resolution) else {
        return Vec::new();
    };
    let disk: Vec<h3o::CellIndex> = point.to_cell(res).grid_disk(params.disk_radius);
    disk.into_iter()
        .map(|cell| cell.boundary().iter().map(|v| (v.lat(), v.lng())).collect())
        .collect()
}

/// The maps of `places`: the region around them with its province outlines, and beside it a
/// close view of the cells (cells of a few hundred metres vanish at a province's scale). All
/// of China when there is no place.
pub(crate) fn draw(lang: Lang, places: &[Place], params: FederationParams) -> Vec<String> {
    let cell_sets: Vec<(bool, Vec<Ring>)> = places
        .iter()
        .map(|p| (p.matched, cells(p, params)))
        .collect();
    let points: Vec<(f64, f64)> = places.iter().map(|p| (p.lat, p.lng)).collect();
    let mut maps = vec![draw_view(lang, View::around(&points, 2.0), places, &[])];
    if !places.is_empty() {
        let corners: Vec<(f64, f64)> = cell_sets
            .iter()
            .flat_map(|(_, rings)| rings.iter().flatten().copied())
            .chain(points.iter().copied())
            .collect();
        maps.push(draw_view(
            lang,
            View::around(&corners, 0.002),
            places,
            &cell_sets,
        ));
    }
    maps
}

fn draw_view(lang: Lang, view: View, places: &[Place], cell_sets: &CellSets) -> String {
    let proj = Projection::new(view);
    let height = proj.height();
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {height:.0}" width="100%" role="img" aria-label="{t}"><title>{t}</title><rect width="{w}" height="{height:.0}" fill="#eaf2fb"/>"##,
        w = Projection::WIDTH,
        t = escape(&lang.t("desk.map.title"))
    );
    let mut labels = Vec::new();
    for p in &outlines().provinces {
        let shown: Vec<&Vec<[f64; 2]>> = p.rings.iter().filter(|r| proj.view.touches(r)).collect();
        if shown.is_empty() {
            continue;
        }
        let d: String = shown
            .iter()
            .map(|r| proj.path(r.iter().map(|[lng, lat]| (*lat, *lng))))
            .collect();
        let name = if lang == Lang::ZhCn { &p.zh } else { &p.en };
        let _ = write!(
            svg,
            r##"<path d="{d}" fill="#fbfaf5" stroke="#8a96a6" stroke-width="0.8"><title>{n}</title></path>"##,
            n = escape(name)
        );
        // The label at the middle of its largest shown ring, if inside the view.
        if let Some(largest) = shown.iter().max_by_key(|r| r.len()) {
            let (sum_lng, sum_lat) = largest
                .iter()
                .fold((0.0, 0.0), |(a, b), [lng, lat]| (a + lng, b + lat));
            let n = largest.len() as f64;
            let (x, y) = proj.xy(sum_lat / n, sum_lng / n);
            if (0.0..=Projection::WIDTH).contains(&x) && (0.0..=height).contains(&y) {
                labels.push((x, y, name.clone()));
            }
        }
    }
    for (x, y, name) in labels {
        let _ = write!(
            svg,
            r##"<text x="{x:.1}" y="{y:.1}" font-size="12" text-anchor="middle" fill="#5b6675">{n}</text>"##,
            n = escape(&name)
        );
    }
    for (matched, rings) in cell_sets {
        let (fill, stroke) = if *matched {
            ("#d1242f", "#8c1820")
        } else {
            ("#1f6feb", "#0b3d91")
        };
        for ring in rings {
            let _ = write!(
                svg,
                r##"<path class="cell" d="{d}" fill="{fill}" fill-opacity="0.35" stroke="{stroke}" stroke-width="0.6"/>"##,
                d = proj.path(ring.iter().copied())
            );
        }
    }
    for p in places {
        let (x, y) = proj.xy(p.lat, p.lng);
        let _ = write!(
            svg,
            r##"<circle cx="{x:.1}" cy="{y:.1}" r="3.5" fill="#1c2430"/><text x="{tx:.1}" y="{ty:.1}" font-size="13" fill="#1c2430">{l}</text>"##,
            tx = x + 6.0,
            ty = y - 6.0,
            l = escape(&p.label)
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_province_level_division_is_shipped() {
        let names: Vec<&str> = outlines().provinces.iter().map(|p| p.zh.as_str()).collect();
        assert_eq!(names.len(), 34, "{names:?}");
        for needed in ["广东", "云南", "新疆", "台湾", "香港", "澳门"] {
            assert!(names.contains(&needed), "{needed} missing");
        }
    }

    #[test]
    fn a_place_is_drawn_with_its_cells_over_its_province() {
        let kunming = Place {
            lat: 25.04,
            lng: 102.71,
            label: "仓库 <A>".into(),
            matched: true,
        };
        let maps = draw(Lang::ZhCn, &[kunming], FederationParams::default());
        let (region, close) = (&maps[0], &maps[1]);
        assert!(region.contains("云南"));
        assert!(
            !region.contains("黑龙江"),
            "a province far from the place is not drawn"
        );
        assert!(region.contains("仓库 &lt;A&gt;"), "labels are escaped");
        // The default disk: seven cells, in red for a match.
        assert_eq!(close.matches(r#"class="cell""#).count(), 7);
        assert!(close.contains("#d1242f"));
        let whole = draw(Lang::En, &[], FederationParams::default());
        assert_eq!(whole.len(), 1);
        assert!(whole[0].contains("Heilongjiang") && !whole[0].contains(r#"class="cell""#));
    }
}

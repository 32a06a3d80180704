//! `address` and `geo`: places.

use h3o::{LatLng, Resolution};

use super::fold::fold;
use super::{FederationParams, MAX_DISK_RADIUS, NormalizeError, SelectorKind, country_code};

/// Fields `CC`, `TEXT`: the country as for `plate` and fold(text). Free-text addresses only
/// match when written alike; `geo` is the selector for places.
pub(super) fn address(country: &str, text: &str) -> Result<Vec<String>, NormalizeError> {
    const KIND: SelectorKind = SelectorKind::Address;
    let cc = country_code(KIND, country)?;
    let text = fold(text);
    if text.is_empty() {
        return Err(NormalizeError::invalid(
            KIND,
            "text",
            "no letters or digits",
        ));
    }
    Ok(vec![cc, text])
}

/// Fields `RES`, `CELL`, once per cell: the H3 cell of the point at the federation's
/// resolution and every cell of the grid disk of radius K around it (7 cells for K = 1, 6 next
/// to a pentagon), so that two points about two cells apart still share a token. RES is
/// decimal, CELL 15 lowercase hex digits. The coordinates are used as given (no rounding):
/// latitude must be in [-90, 90], longitude in [-180, 180] (both ends allowed; -180 and 180
/// are the same meridian), both finite.
pub(super) fn geo(
    lat: f64,
    lng: f64,
    params: &FederationParams,
) -> Result<Vec<Vec<String>>, NormalizeError> {
    const KIND: SelectorKind = SelectorKind::Geo;
    if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
        return Err(NormalizeError::invalid(
            KIND,
            "lat",
            "must be a number from -90 to 90",
        ));
    }
    if !lng.is_finite() || !(-180.0..=180.0).contains(&lng) {
        return Err(NormalizeError::invalid(
            KIND,
            "lng",
            "must be a number from -180 to 180",
        ));
    }
    let res = Resolution::try_from(params.h3_resolution).map_err(|_| {
        NormalizeError::Params(format!(
            "H3 resolution {} is not 0 to 15",
            params.h3_resolution
        ))
    })?;
    if params.disk_radius > MAX_DISK_RADIUS {
        return Err(NormalizeError::Params(format!(
            "grid disk radius {} is over {MAX_DISK_RADIUS}",
            params.disk_radius
        )));
    }
    let point =
        LatLng::new(lat, lng).map_err(|e| NormalizeError::invalid(KIND, "lat", e.to_string()))?;
    let cells: Vec<h3o::CellIndex> = point.to_cell(res).grid_disk(params.disk_radius);
    let res_field = u8::from(res).to_string();
    Ok(cells
        .into_iter()
        .map(|cell| vec![res_field.clone(), format!("{:015x}", u64::from(cell))])
        .collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            address("CN", "北京市朝阳区建国路88号").unwrap(),
            ["CN", "北 京 市 朝 阳 区 建 国 路 88 号"]
        );
        assert_eq!(
            address("VN", "123 Đường Lê Lợi, Quận 1, TP. Hồ Chí Minh").unwrap(),
            ["VN", "123 duong le loi quan 1 tp ho chi minh"]
        );
        assert!(address("CN", " ,;·").is_err());
        assert!(address("C", "x").is_err());
    }

    #[test]
    fn geo_disk() {
        let p = FederationParams::default();
        let forms = geo(39.9075, 116.39723, &p).unwrap();
        assert_eq!(forms.len(), 7);
        assert!(forms.iter().any(|f| f[1] == "8931aa42803ffff"));
        assert!(forms.iter().all(|f| f[0] == "9" && f[1].len() == 15));
        let zero = FederationParams {
            disk_radius: 0,
            ..p
        };
        assert_eq!(geo(39.9075, 116.39723, &zero).unwrap().len(), 1);
    }

    #[test]
    fn geo_ranges() {
        let p = FederationParams::default();
        assert!(geo(90.0, 180.0, &p).is_ok());
        assert!(geo(-90.0, -180.0, &p).is_ok());
        assert!(geo(90.5, 0.0, &p).is_err());
        assert!(geo(0.0, -180.5, &p).is_err());
        assert!(geo(f64::NAN, 0.0, &p).is_err());
        assert!(geo(0.0, f64::INFINITY, &p).is_err());
        let bad = FederationParams {
            h3_resolution: 16,
            ..p
        };
        assert!(matches!(
            geo(0.0, 0.0, &bad),
            Err(NormalizeError::Params(_))
        ));
        let wide = FederationParams {
            disk_radius: 11,
            ..p
        };
        assert!(matches!(
            geo(0.0, 0.0, &wide),
            Err(NormalizeError::Params(_))
        ));
    }
}

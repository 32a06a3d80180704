//! The 34 provincial-level divisions of China, with the national bureau and the watch centre:
//! names, agency ids (`<iso-3166-2 code>-psb`), capitals, plate prefixes and border prefectures.

/// A country across the border of a border prefecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Neighbour {
    Vietnam,
    Myanmar,
}

/// A prefecture on the land border, where cross-border trafficking starts.
#[derive(Debug, Clone, Copy)]
pub struct BorderPrefecture {
    pub name: &'static str,
    pub name_zh: &'static str,
    /// Plate prefix of the prefecture, e.g. `云N` for Dehong.
    pub plate: &'static str,
    pub lat: f64,
    pub lng: f64,
    pub neighbour: Neighbour,
}

/// One provincial-level division and its public-security bureau.
#[derive(Debug, Clone, Copy)]
pub struct Province {
    /// Lowercase English key (`yunnan`).
    pub key: &'static str,
    pub name: &'static str,
    pub name_zh: &'static str,
    /// ISO 3166-2:CN code, lowercase (`yn`); the agency id is `<code>-psb`.
    pub code: &'static str,
    /// Plate prefix character (`云`); empty where plates are not mainland ones.
    pub plate: &'static str,
    pub capital_zh: &'static str,
    pub lat: f64,
    pub lng: f64,
    pub border: &'static [BorderPrefecture],
}

impl Province {
    /// The bureau's agency id, as its certificate names it (`yn-psb`).
    pub fn agency_id(&self) -> String {
        format!("{}-psb", self.code)
    }

    /// The province's two-digit code in GB/T 2260 (the first two digits of the address code
    /// of a resident ID and of a company's credit code): `53` for Yunnan. Hong Kong (81),
    /// Macao (82) and Taiwan (71) residents carry travel permits instead of resident IDs.
    pub fn gb_code(&self) -> u8 {
        match self.code {
            "bj" => 11,
            "tj" => 12,
            "he" => 13,
            "sx" => 14,
            "nm" => 15,
            "ln" => 21,
            "jl" => 22,
            "hl" => 23,
            "sh" => 31,
            "js" => 32,
            "zj" => 33,
            "ah" => 34,
            "fj" => 35,
            "jx" => 36,
            "sd" => 37,
            "ha" => 41,
            "hb" => 42,
            "hn" => 43,
            "gd" => 44,
            "gx" => 45,
            "hi" => 46,
            "cq" => 50,
            "sc" => 51,
            "gz" => 52,
            "yn" => 53,
            "xz" => 54,
            "sn" => 61,
            "gs" => 62,
            "qh" => 63,
            "nx" => 64,
            "xj" => 65,
            "tw" => 71,
            "hk" => 81,
            _ => 82, // mo
        }
    }

    /// Whether the province's own people carry travel permits rather than resident IDs.
    pub fn permit_format(&self) -> bool {
        self.gb_code() > 70
    }

    /// A municipality directly under the central government (its address codes have no
    /// prefecture-level cities).
    pub fn municipality(&self) -> bool {
        matches!(self.gb_code(), 11 | 12 | 31 | 50)
    }
}

/// The national bureau's agency id.
pub const NATIONAL_BUREAU: &str = "national-bureau";
/// The watch centre's agency id (role `watch-centre`: it registers nothing, it watches).
pub const WATCH_CENTRE: &str = "watch-centre";

const fn bp(
    name: &'static str,
    name_zh: &'static str,
    plate: &'static str,
    lat: f64,
    lng: f64,
    neighbour: Neighbour,
) -> BorderPrefecture {
    BorderPrefecture {
        name,
        name_zh,
        plate,
        lat,
        lng,
        neighbour,
    }
}

const YUNNAN_BORDER: &[BorderPrefecture] = &[
    bp("Dehong", "德宏", "云N", 24.013, 97.851, Neighbour::Myanmar),
    bp(
        "Lincang",
        "临沧",
        "云S",
        23.884,
        100.089,
        Neighbour::Myanmar,
    ),
    bp(
        "Xishuangbanna",
        "西双版纳",
        "云K",
        22.008,
        100.797,
        Neighbour::Myanmar,
    ),
    bp("Honghe", "红河", "云G", 22.529, 103.939, Neighbour::Vietnam),
    bp(
        "Wenshan",
        "文山",
        "云H",
        23.369,
        104.244,
        Neighbour::Vietnam,
    ),
];

const GUANGXI_BORDER: &[BorderPrefecture] = &[
    bp(
        "Chongzuo",
        "崇左",
        "桂F",
        22.094,
        106.755,
        Neighbour::Vietnam,
    ),
    bp(
        "Fangchenggang",
        "防城港",
        "桂P",
        21.548,
        107.972,
        Neighbour::Vietnam,
    ),
    bp("Baise", "百色", "桂L", 23.134, 106.417, Neighbour::Vietnam),
];

#[allow(clippy::too_many_arguments)]
const fn p(
    key: &'static str,
    name: &'static str,
    name_zh: &'static str,
    code: &'static str,
    plate: &'static str,
    capital_zh: &'static str,
    lat: f64,
    lng: f64,
) -> Province {
    Province {
        key,
        name,
        name_zh,
        code,
        plate,
        capital_zh,
        lat,
        lng,
        border: &[],
    }
}

/// All 34, in the order simulations take them: the drug and trafficking routes first
/// (Yunnan, Guangdong, Guangxi, ...), so that a small federation still has its routes.
pub const PROVINCES: [Province; 34] = [
    Province {
        border: YUNNAN_BORDER,
        ..p(
            "yunnan", "Yunnan", "云南", "yn", "云", "昆明", 25.038, 102.718,
        )
    },
    p(
        "guangdong",
        "Guangdong",
        "广东",
        "gd",
        "粤",
        "广州",
        23.129,
        113.264,
    ),
    Province {
        border: GUANGXI_BORDER,
        ..p(
            "guangxi", "Guangxi", "广西", "gx", "桂", "南宁", 22.817, 108.366,
        )
    },
    p(
        "fujian", "Fujian", "福建", "fj", "闽", "福州", 26.074, 119.296,
    ),
    p(
        "guizhou", "Guizhou", "贵州", "gz", "贵", "贵阳", 26.647, 106.630,
    ),
    p(
        "henan", "Henan", "河南", "ha", "豫", "郑州", 34.747, 113.625,
    ),
    p(
        "hunan", "Hunan", "湖南", "hn", "湘", "长沙", 28.228, 112.939,
    ),
    p(
        "zhejiang", "Zhejiang", "浙江", "zj", "浙", "杭州", 30.274, 120.155,
    ),
    p(
        "shanghai", "Shanghai", "上海", "sh", "沪", "上海", 31.230, 121.474,
    ),
    p(
        "shandong", "Shandong", "山东", "sd", "鲁", "济南", 36.651, 117.120,
    ),
    p(
        "sichuan", "Sichuan", "四川", "sc", "川", "成都", 30.573, 104.066,
    ),
    p(
        "beijing", "Beijing", "北京", "bj", "京", "北京", 39.904, 116.407,
    ),
    p(
        "hong-kong",
        "Hong Kong",
        "香港",
        "hk",
        "",
        "香港",
        22.320,
        114.170,
    ),
    p("macau", "Macau", "澳门", "mo", "", "澳门", 22.199, 113.544),
    p(
        "anhui", "Anhui", "安徽", "ah", "皖", "合肥", 31.821, 117.227,
    ),
    p(
        "jiangxi", "Jiangxi", "江西", "jx", "赣", "南昌", 28.682, 115.858,
    ),
    p(
        "jiangsu", "Jiangsu", "江苏", "js", "苏", "南京", 32.060, 118.797,
    ),
    p(
        "hubei", "Hubei", "湖北", "hb", "鄂", "武汉", 30.593, 114.305,
    ),
    p(
        "chongqing",
        "Chongqing",
        "重庆",
        "cq",
        "渝",
        "重庆",
        29.563,
        106.551,
    ),
    p(
        "hainan", "Hainan", "海南", "hi", "琼", "海口", 20.044, 110.199,
    ),
    p(
        "tianjin", "Tianjin", "天津", "tj", "津", "天津", 39.084, 117.201,
    ),
    p(
        "hebei",
        "Hebei",
        "河北",
        "he",
        "冀",
        "石家庄",
        38.042,
        114.514,
    ),
    p(
        "shanxi", "Shanxi", "山西", "sx", "晋", "太原", 37.870, 112.549,
    ),
    p(
        "inner-mongolia",
        "Inner Mongolia",
        "内蒙古",
        "nm",
        "蒙",
        "呼和浩特",
        40.842,
        111.749,
    ),
    p(
        "liaoning", "Liaoning", "辽宁", "ln", "辽", "沈阳", 41.805, 123.431,
    ),
    p(
        "jilin", "Jilin", "吉林", "jl", "吉", "长春", 43.817, 125.324,
    ),
    p(
        "heilongjiang",
        "Heilongjiang",
        "黑龙江",
        "hl",
        "黑",
        "哈尔滨",
        45.803,
        126.535,
    ),
    p(
        "shaanxi", "Shaanxi", "陕西", "sn", "陕", "西安", 34.341, 108.940,
    ),
    p(
        "gansu", "Gansu", "甘肃", "gs", "甘", "兰州", 36.061, 103.834,
    ),
    p(
        "qinghai", "Qinghai", "青海", "qh", "青", "西宁", 36.617, 101.778,
    ),
    p(
        "ningxia", "Ningxia", "宁夏", "nx", "宁", "银川", 38.487, 106.231,
    ),
    p(
        "xinjiang",
        "Xinjiang",
        "新疆",
        "xj",
        "新",
        "乌鲁木齐",
        43.825,
        87.617,
    ),
    p("tibet", "Tibet", "西藏", "xz", "藏", "拉萨", 29.652, 91.172),
    p(
        "taiwan", "Taiwan", "台湾", "tw", "", "台北", 25.033, 121.565,
    ),
];

/// The first `n` provinces of [`PROVINCES`] (at most 34).
pub fn first(n: usize) -> Vec<&'static Province> {
    PROVINCES.iter().take(n).collect()
}

/// A province by key, English or Chinese name, code or agency id (`yunnan`, `Yunnan`,
/// `云南`, `yn`, `yn-psb`).
pub fn by_name(name: &str) -> Option<&'static Province> {
    let n = name.trim().to_ascii_lowercase();
    PROVINCES.iter().find(|p| {
        p.key == n
            || p.name.to_ascii_lowercase() == n
            || p.name_zh == name.trim()
            || p.code == n
            || p.agency_id() == n
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thirty_four_distinct_valid_ids() {
        let mut ids: Vec<String> = PROVINCES.iter().map(Province::agency_id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 34);
        for id in ids
            .iter()
            .map(String::as_str)
            .chain([NATIONAL_BUREAU, WATCH_CENTRE])
        {
            deconflict_broker::identity::AgencyId::parse(id).unwrap();
        }
        assert_eq!(by_name("Yunnan").unwrap().agency_id(), "yn-psb");
        assert_eq!(by_name("广东").unwrap().code, "gd");
        assert_eq!(by_name("gx-psb").unwrap().key, "guangxi");
        let mut gb: Vec<u8> = PROVINCES.iter().map(Province::gb_code).collect();
        gb.sort_unstable();
        gb.dedup();
        assert_eq!(gb.len(), 34, "each province its own GB/T 2260 code");
        assert_eq!(by_name("mo").unwrap().gb_code(), 82);
    }
}

//! Real-world identifiers ([`Ident`]), drawn at random: people (Han, Vietnamese and Burmese
//! names), phones (China, Vietnam, Myanmar, Hong Kong), plates, IMEIs, valid IBANs, wallets,
//! handles, addresses and places. How they are written down is [`super::spell`]'s business.

use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

/// A telephone number's country and national significant number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhoneCountry {
    China,
    Vietnam,
    Myanmar,
    HongKong,
}

/// One real-world identifier, independent of how it is written.
#[derive(Debug, Clone, PartialEq)]
pub enum Ident {
    /// A Han name (family, given) or a romanized one (words with and without diacritics).
    Person {
        han: Option<(String, String)>,
        latin: Vec<(&'static str, &'static str)>,
        dob: String,
    },
    Phone {
        country: PhoneCountry,
        nsn: String,
    },
    /// Plate country, prefix (`云A`, `29A`) and the rest (`12345`).
    Plate {
        country: &'static str,
        prefix: String,
        rest: String,
    },
    /// The 14 identifying digits.
    Imei(String),
    Iban(String),
    Wallet {
        chain: &'static str,
        address: String,
    },
    Handle {
        platform: &'static str,
        handle: String,
    },
    /// A Chinese address as its parts (province, city, district, road, number, unit).
    Address(Vec<String>),
    Geo {
        lat: f64,
        lng: f64,
    },
}

const FAMILY: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "林", "罗", "高", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹", "彭", "曾",
];
const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "敏", "静", "强", "磊", "军", "洋", "勇", "艳", "杰", "涛", "明", "超",
    "秀英", "华", "平", "刚", "桂英", "建华", "志强", "海燕", "晓东", "文", "斌", "鹏", "辉", "丽",
    "玉兰",
];
/// Vietnamese name words: (with diacritics, plain).
const VN_FAMILY: &[(&str, &str)] = &[
    ("Nguyễn", "Nguyen"),
    ("Trần", "Tran"),
    ("Lê", "Le"),
    ("Phạm", "Pham"),
    ("Hoàng", "Hoang"),
    ("Vũ", "Vu"),
    ("Đặng", "Dang"),
    ("Bùi", "Bui"),
];
const VN_GIVEN: &[(&str, &str)] = &[
    ("Văn", "Van"),
    ("Thị", "Thi"),
    ("Đức", "Duc"),
    ("Hùng", "Hung"),
    ("Thu", "Thu"),
    ("Lan", "Lan"),
    ("Minh", "Minh"),
    ("Hương", "Huong"),
    ("Quốc", "Quoc"),
];
/// Burmese names, romanized (no family names).
const MM_WORDS: &[(&str, &str)] = &[
    ("Aung", "Aung"),
    ("Kyaw", "Kyaw"),
    ("Min", "Min"),
    ("Mya", "Mya"),
    ("Win", "Win"),
    ("Thida", "Thida"),
    ("Zaw", "Zaw"),
    ("Htun", "Htun"),
    ("Nyein", "Nyein"),
];
const CN_MOBILE: &[&str] = &[
    "130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "155",
    "157", "158", "159", "166", "176", "177", "180", "181", "186", "187", "188", "189", "199",
];
const PLATE_LETTERS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
const DISTRICTS: &[&str] = &["城关区", "新华区", "滨江区", "高新区", "开发区", "西山区"];
const ROADS: &[&str] = &[
    "人民路",
    "解放路",
    "建设路",
    "中山路",
    "北京路",
    "环城南路",
    "长江路",
    "幸福街",
    "工业大道",
];
const BECH32: &[u8] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
const BASE58: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

fn digits(rng: &mut StdRng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
        .collect()
}

fn from_alphabet(rng: &mut StdRng, alphabet: &[u8], n: usize) -> String {
    (0..n)
        .map(|_| char::from(alphabet[rng.gen_range(0..alphabet.len())]))
        .collect()
}

pub fn han_person(rng: &mut StdRng) -> Ident {
    let given: String = (0..rng.gen_range(1..=2))
        .map(|_| *GIVEN.choose(rng).unwrap_or(&"伟"))
        .collect();
    Ident::Person {
        han: Some((FAMILY.choose(rng).unwrap_or(&"王").to_string(), given)),
        latin: Vec::new(),
        dob: dob(rng),
    }
}

pub fn foreign_person(rng: &mut StdRng, vietnamese: bool) -> Ident {
    let latin = if vietnamese {
        vec![
            *VN_FAMILY.choose(rng).unwrap_or(&VN_FAMILY[0]),
            *VN_GIVEN.choose(rng).unwrap_or(&VN_GIVEN[0]),
            *VN_GIVEN.choose(rng).unwrap_or(&VN_GIVEN[1]),
        ]
    } else {
        (0..rng.gen_range(2..=3))
            .map(|_| *MM_WORDS.choose(rng).unwrap_or(&MM_WORDS[0]))
            .collect()
    };
    Ident::Person {
        han: None,
        latin,
        dob: dob(rng),
    }
}

fn dob(rng: &mut StdRng) -> String {
    format!(
        "{}-{:02}-{:02}",
        rng.gen_range(1960..=2004),
        rng.gen_range(1..=12),
        rng.gen_range(1..=28)
    )
}

pub fn phone(rng: &mut StdRng, country: PhoneCountry) -> Ident {
    let nsn = match country {
        PhoneCountry::China => format!(
            "{}{}",
            CN_MOBILE.choose(rng).unwrap_or(&"138"),
            digits(rng, 8)
        ),
        PhoneCountry::Vietnam => format!("9{}{}", rng.gen_range(0..10), digits(rng, 7)),
        PhoneCountry::Myanmar => format!(
            "9{}{}",
            ["7", "6", "4", "9"].choose(rng).unwrap_or(&"7"),
            digits(rng, 8)
        ),
        PhoneCountry::HongKong => format!(
            "{}{}",
            ["5", "6", "9"].choose(rng).unwrap_or(&"6"),
            digits(rng, 7)
        ),
    };
    Ident::Phone { country, nsn }
}

/// A mainland plate with `prefix` such as `云A` (or a random city letter when `prefix` is a
/// single province character).
pub fn cn_plate(rng: &mut StdRng, prefix: &str) -> Ident {
    let mut prefix = prefix.to_string();
    if prefix.chars().count() == 1 {
        prefix.push(char::from(PLATE_LETTERS[rng.gen_range(0..8)]));
    }
    let rest = if rng.gen_bool(0.2) {
        format!("D{}", digits(rng, 5)) // new-energy plate
    } else {
        format!("{}{}", from_alphabet(rng, PLATE_LETTERS, 1), digits(rng, 4))
    };
    Ident::Plate {
        country: "CN",
        prefix,
        rest,
    }
}

pub fn vn_plate(rng: &mut StdRng) -> Ident {
    let prefix = format!(
        "{}{}",
        rng.gen_range(11..=99),
        from_alphabet(rng, PLATE_LETTERS, 1)
    );
    Ident::Plate {
        country: "VN",
        prefix,
        rest: digits(rng, 5),
    }
}

pub fn imei(rng: &mut StdRng) -> Ident {
    Ident::Imei(format!("35{}", digits(rng, 12)))
}

pub(super) fn luhn_digit(body: &str) -> u32 {
    let sum: u32 = body
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                let x = d * 2;
                x / 10 + x % 10
            } else {
                d
            }
        })
        .sum();
    (10 - sum % 10) % 10
}

pub fn iban(rng: &mut StdRng) -> Ident {
    let (cc, bban) = match rng.gen_range(0..4) {
        0 => ("DE", digits(rng, 18)),
        1 => (
            "GB",
            format!(
                "{}{}",
                from_alphabet(rng, b"ABCDEFGHJKLMNPRSTUVWXYZ", 4),
                digits(rng, 14)
            ),
        ),
        2 => ("AE", digits(rng, 19)),
        _ => ("CY", digits(rng, 24)),
    };
    let rearranged = format!("{bban}{cc}00");
    let mut rem = 0u32;
    for c in rearranged.chars() {
        let v = c.to_digit(36).unwrap_or(0);
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    Ident::Iban(format!("{cc}{:02}{bban}", 98 - rem))
}

pub fn wallet(rng: &mut StdRng) -> Ident {
    match rng.gen_range(0..3) {
        0 => Ident::Wallet {
            chain: "eth",
            address: from_alphabet(rng, b"0123456789abcdef", 40),
        },
        1 => Ident::Wallet {
            chain: "btc",
            address: format!("bc1q{}", from_alphabet(rng, BECH32, 38)),
        },
        _ => Ident::Wallet {
            chain: "tron",
            address: format!("T{}", from_alphabet(rng, BASE58, 33)),
        },
    }
}

pub fn handle(rng: &mut StdRng) -> Ident {
    const WORDS: &[&str] = &[
        "Dragon", "Golden", "Lucky", "Tiger", "Jade", "Star", "King", "Boss",
    ];
    let handle = format!(
        "{}{}{}",
        WORDS.choose(rng).unwrap_or(&"Lucky"),
        WORDS.choose(rng).unwrap_or(&"Star"),
        digits(rng, 4)
    );
    let platform = ["telegram", "wechat", "whatsapp"]
        .choose(rng)
        .copied()
        .unwrap_or("telegram");
    Ident::Handle { platform, handle }
}

pub fn address(rng: &mut StdRng, province_zh: &str, city_zh: &str) -> Ident {
    let mut parts = vec![
        province_zh.to_string(),
        format!("{city_zh}市"),
        DISTRICTS.choose(rng).unwrap_or(&"城关区").to_string(),
        ROADS.choose(rng).unwrap_or(&"人民路").to_string(),
        format!("{}号", rng.gen_range(1..=999)),
    ];
    if rng.gen_bool(0.6) {
        parts.push(format!(
            "{}栋{}单元{}室",
            rng.gen_range(1..=20),
            rng.gen_range(1..=6),
            rng.gen_range(101..=2804)
        ));
    }
    Ident::Address(parts)
}

/// A point about `metres` from (`lat`, `lng`) in a random direction.
pub fn geo_near(rng: &mut StdRng, lat: f64, lng: f64, metres: f64) -> Ident {
    let bearing = rng.gen_range(0.0..std::f64::consts::TAU);
    let dlat = metres * bearing.cos() / 111_320.0;
    let dlng = metres * bearing.sin() / (111_320.0 * lat.to_radians().cos());
    Ident::Geo {
        lat: lat + dlat,
        lng: lng + dlng,
    }
}

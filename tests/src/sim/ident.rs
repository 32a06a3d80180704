//! Real-world identifiers ([`Ident`]), drawn at random: people (Han, Vietnamese and Burmese
//! names), phones (China, Vietnam, Myanmar, Hong Kong), plates, IMEIs, valid IBANs, wallets,
//! handles, addresses and places; identity documents, cards and companies are drawn in
//! [`super::docs`]. How they are written down is [`super::spell`]'s business.

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
    /// A Han name or a romanized one (words with and without diacritics).
    Person {
        han: Option<HanName>,
        latin: Vec<(&'static str, &'static str)>,
        dob: String,
    },
    /// A Chinese person as a foreign partner knows them: only the Pinyin of their name, in
    /// Latin letters, as their passport writes it (family name, given name as one word).
    Pinyin {
        family: String,
        given: String,
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
    /// A resident identity number, its 18 characters (the 15-digit first-generation number
    /// is one way of writing it for those born before 2000).
    Cnid(String),
    /// A PRC travel permit: type (`hkmo`, `tw`) and lifetime number (`H12345678`).
    Permit {
        permit_type: &'static str,
        number: String,
    },
    Passport {
        country: &'static str,
        number: String,
    },
    /// A bank card number (UnionPay: `62` first).
    Card(String),
    /// A company's unified social credit code.
    Org(String),
}

/// A name written in Han ideographs, with the Pinyin a passport gives it.
#[derive(Debug, Clone, PartialEq)]
pub struct HanName {
    pub family: String,
    pub given: String,
    /// Family and given name in Pinyin, lowercase, each one word (`zhang`, `xiaoming`).
    pub pinyin: (String, String),
}

impl Ident {
    /// This identifier as a foreign partner knows it: a Han name only by its Pinyin (`None`
    /// for anything else).
    pub fn known_abroad(&self) -> Option<Ident> {
        match self {
            Ident::Person {
                han: Some(name),
                dob,
                ..
            } => Some(Ident::Pinyin {
                family: name.pinyin.0.clone(),
                given: name.pinyin.1.clone(),
                dob: dob.clone(),
            }),
            _ => None,
        }
    }

    /// Whether this is an identity document, a card or a company: what a second unit most
    /// often finds the same target by.
    pub fn is_document(&self) -> bool {
        matches!(
            self,
            Ident::Cnid(_)
                | Ident::Permit { .. }
                | Ident::Passport { .. }
                | Ident::Card(_)
                | Ident::Org(_)
        )
    }
}

/// Family names with their Pinyin as a passport writes it (a surname's reading where it
/// differs: 曾 zeng, 单 shan; compound 欧阳 ouyang; 徐 and 许 are both xu).
const FAMILY: &[(&str, &str)] = &[
    ("王", "wang"),
    ("李", "li"),
    ("张", "zhang"),
    ("刘", "liu"),
    ("陈", "chen"),
    ("杨", "yang"),
    ("黄", "huang"),
    ("赵", "zhao"),
    ("吴", "wu"),
    ("周", "zhou"),
    ("徐", "xu"),
    ("孙", "sun"),
    ("马", "ma"),
    ("朱", "zhu"),
    ("胡", "hu"),
    ("郭", "guo"),
    ("何", "he"),
    ("林", "lin"),
    ("罗", "luo"),
    ("高", "gao"),
    ("郑", "zheng"),
    ("梁", "liang"),
    ("谢", "xie"),
    ("宋", "song"),
    ("唐", "tang"),
    ("许", "xu"),
    ("韩", "han"),
    ("冯", "feng"),
    ("邓", "deng"),
    ("曹", "cao"),
    ("彭", "peng"),
    ("曾", "zeng"),
    ("单", "shan"),
    ("欧阳", "ouyang"),
];
const GIVEN: &[(&str, &str)] = &[
    ("伟", "wei"),
    ("芳", "fang"),
    ("娜", "na"),
    ("敏", "min"),
    ("静", "jing"),
    ("强", "qiang"),
    ("磊", "lei"),
    ("军", "jun"),
    ("洋", "yang"),
    ("勇", "yong"),
    ("艳", "yan"),
    ("杰", "jie"),
    ("涛", "tao"),
    ("明", "ming"),
    ("超", "chao"),
    ("秀英", "xiuying"),
    ("华", "hua"),
    ("平", "ping"),
    ("刚", "gang"),
    ("桂英", "guiying"),
    ("建华", "jianhua"),
    ("志强", "zhiqiang"),
    ("海燕", "haiyan"),
    ("晓东", "xiaodong"),
    ("文", "wen"),
    ("斌", "bin"),
    ("鹏", "peng"),
    ("辉", "hui"),
    ("丽", "li"),
    ("玉兰", "yulan"),
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

pub(super) fn digits(rng: &mut StdRng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
        .collect()
}

pub(super) fn from_alphabet(rng: &mut StdRng, alphabet: &[u8], n: usize) -> String {
    (0..n)
        .map(|_| char::from(alphabet[rng.gen_range(0..alphabet.len())]))
        .collect()
}

pub fn han_person(rng: &mut StdRng) -> Ident {
    let parts: Vec<(&str, &str)> = (0..rng.gen_range(1..=2))
        .map(|_| *GIVEN.choose(rng).unwrap_or(&GIVEN[0]))
        .collect();
    let (family, family_pinyin) = *FAMILY.choose(rng).unwrap_or(&FAMILY[0]);
    Ident::Person {
        han: Some(HanName {
            family: family.to_string(),
            given: parts.iter().map(|p| p.0).collect(),
            pinyin: (
                family_pinyin.to_string(),
                parts.iter().map(|p| p.1).collect(),
            ),
        }),
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

/// A real date of birth, 1960 to 2004, `YYYY-MM-DD`.
fn dob(rng: &mut StdRng) -> String {
    let (year, month) = (rng.gen_range(1960..=2004), rng.gen_range(1..=12));
    let days = match month {
        2 if year % 4 == 0 => 29, // 2000 is a leap year too
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    format!("{year}-{month:02}-{:02}", rng.gen_range(1..=days))
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

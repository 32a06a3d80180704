//! `deconflict normalize`: canonical forms, offline (no broker, no token service).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use serde_json::{Value, json};
use token_spec::normalize::{
    FederationParams, Form, Selector, SelectorKind, canonical_forms, canonical_forms_tagged,
    canonical_text,
};

use crate::EXIT_BAD_INPUT;

/// One output line of `--vectors` (a struct, so that `id` comes first).
#[derive(serde::Serialize)]
struct CaseLine {
    id: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    canonical_hex: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// The `--json` output of one selector: strings, or lists for `geo` and for a selector with
/// several forms (a person with a Pinyin form); `form` names each (`written`, `pinyin`, `cell`).
#[derive(serde::Serialize)]
struct OneLine {
    kind: &'static str,
    canonical_text: Value,
    canonical_hex: Value,
    form: Value,
}

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, arg_required_else_help = true)]
pub(crate) struct Args {
    /// Normalize every case of a file in the token-vectors.json format: one JSON line per case.
    #[arg(long, value_name = "FILE")]
    vectors: Option<PathBuf>,

    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,

    /// H3 resolution for `geo` (the federation's parameter).
    #[arg(long, global = true, default_value_t = FederationParams::default().h3_resolution)]
    h3_res: u8,

    /// Grid-disk radius K for `geo` (the federation's parameter).
    #[arg(long, global = true, default_value_t = FederationParams::default().disk_radius)]
    k: u32,

    #[command(subcommand)]
    selector: Option<SelectorArgs>,
}

/// One selector, by kind, with the spec's input fields as flags.
#[derive(Debug, clap::Subcommand)]
enum SelectorArgs {
    /// Name parts (any order, repeat --name) and date of birth (YYYY-MM-DD).
    Person {
        #[arg(long = "name", required = true)]
        names: Vec<String>,
        #[arg(long)]
        dob: String,
    },
    /// Telephone number and default region (two letters; none or ZZ: the number needs +).
    Phone {
        #[arg(long)]
        text: String,
        #[arg(long)]
        region: Option<String>,
    },
    /// Registration plate and its country (two letters).
    Plate {
        #[arg(long)]
        country: String,
        #[arg(long)]
        text: String,
    },
    /// Vehicle identification number.
    Vin {
        #[arg(long)]
        text: String,
    },
    /// IMEI (14 or 15 digits) or IMEISV (16 digits).
    Imei {
        #[arg(long)]
        text: String,
    },
    /// E-mail address.
    Email {
        #[arg(long)]
        text: String,
    },
    /// IBAN.
    Iban {
        #[arg(long)]
        text: String,
    },
    /// Crypto-currency address and its chain (btc, eth, ...).
    Wallet {
        #[arg(long)]
        chain: String,
        #[arg(long)]
        address: String,
    },
    /// Online handle and its platform (telegram, wechat, x, ...).
    Handle {
        #[arg(long)]
        platform: String,
        #[arg(long)]
        handle: String,
    },
    /// Free-text address and its country (two letters).
    Address {
        #[arg(long)]
        country: String,
        #[arg(long)]
        text: String,
    },
    /// WGS 84 point in degrees.
    Geo {
        #[arg(long, allow_negative_numbers = true)]
        lat: f64,
        #[arg(long, allow_negative_numbers = true)]
        lng: f64,
    },
    /// PRC resident identity number (18 characters, or 15 digits), or a permit in its format.
    Cnid {
        #[arg(long)]
        text: String,
    },
    /// Passport number and its issuing country (two letters).
    Passport {
        #[arg(long)]
        country: String,
        #[arg(long)]
        text: String,
    },
    /// PRC travel permit number and its type (hkmo, tw, cnhkmo).
    Permit {
        #[arg(long = "type")]
        permit_type: String,
        #[arg(long)]
        text: String,
    },
    /// Bank card number (12 to 19 digits).
    Card {
        #[arg(long)]
        text: String,
    },
    /// Unified social credit code of an organisation.
    Org {
        #[arg(long)]
        text: String,
    },
}

impl From<SelectorArgs> for Selector {
    fn from(args: SelectorArgs) -> Self {
        match args {
            SelectorArgs::Person { names, dob } => Selector::Person { names, dob },
            SelectorArgs::Phone { text, region } => Selector::Phone { text, region },
            SelectorArgs::Plate { country, text } => Selector::Plate { country, text },
            SelectorArgs::Vin { text } => Selector::Vin { text },
            SelectorArgs::Imei { text } => Selector::Imei { text },
            SelectorArgs::Email { text } => Selector::Email { text },
            SelectorArgs::Iban { text } => Selector::Iban { text },
            SelectorArgs::Wallet { chain, address } => Selector::Wallet { chain, address },
            SelectorArgs::Handle { platform, handle } => Selector::Handle { platform, handle },
            SelectorArgs::Address { country, text } => Selector::Address { country, text },
            SelectorArgs::Geo { lat, lng } => Selector::Geo { lat, lng },
            SelectorArgs::Cnid { text } => Selector::Cnid { text },
            SelectorArgs::Passport { country, text } => Selector::Passport { country, text },
            SelectorArgs::Permit { permit_type, text } => Selector::Permit { permit_type, text },
            SelectorArgs::Card { text } => Selector::Card { text },
            SelectorArgs::Org { text } => Selector::Org { text },
        }
    }
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let params = FederationParams {
        h3_resolution: args.h3_res,
        disk_radius: args.k,
    };
    match (args.vectors, args.selector) {
        (Some(path), _) => run_vectors(&path),
        (None, Some(selector)) => Ok(run_one(selector.into(), &params, args.json)),
        (None, None) => anyhow::bail!("give a selector kind or --vectors FILE"),
    }
}

fn run_one(selector: Selector, params: &FederationParams, as_json: bool) -> ExitCode {
    let forms = match canonical_forms_tagged(&selector, params) {
        Ok(forms) => forms,
        Err(err) => {
            eprintln!("deconflict: {err}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    if as_json {
        let texts: Vec<String> = forms.iter().map(|f| canonical_text(&f.bytes)).collect();
        let hexes: Vec<String> = forms.iter().map(|f| hex::encode(&f.bytes)).collect();
        let names: Vec<&str> = forms.iter().map(|f| f.form.as_str()).collect();
        let kind = selector.kind();
        let (canonical_text, canonical_hex, form) = match (&texts[..], &hexes[..], &names[..]) {
            ([text], [hex], [name]) if kind != SelectorKind::Geo => {
                (json!(text), json!(hex), json!(name))
            }
            _ => (json!(texts), json!(hexes), json!(names)),
        };
        let line = OneLine {
            kind: kind.as_str(),
            canonical_text,
            canonical_hex,
            form,
        };
        match serde_json::to_string(&line) {
            Ok(out) => println!("{out}"),
            Err(err) => {
                eprintln!("deconflict: {err}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        for form in &forms {
            let note = match form.form {
                Form::Pinyin => "  (the name in Pinyin)",
                Form::Written | Form::Cell => "",
            };
            let bytes = &form.bytes;
            println!("{}{note}\n  {}", canonical_text(bytes), hex::encode(bytes));
        }
    }
    ExitCode::SUCCESS
}

/// Every case gives one line, an error line included; `canonical_hex` is a list for `geo` and
/// for a selector with several forms (as in the vectors file), a string otherwise: rejected input is a result, not a
/// failure. Only an unreadable or malformed file fails the command.
fn run_vectors(path: &PathBuf) -> anyhow::Result<ExitCode> {
    let raw =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let file: Value =
        serde_json::from_str(&raw).with_context(|| format!("{} is not JSON", path.display()))?;
    let cases = file
        .get("cases")
        .and_then(Value::as_array)
        .with_context(|| format!("{} has no \"cases\" list", path.display()))?;
    let params = params_from_header(&file)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for case in cases {
        writeln!(out, "{}", serde_json::to_string(&case_line(case, &params))?)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `h3_res` and `k` from the file header, defaults where absent.
fn params_from_header(file: &Value) -> anyhow::Result<FederationParams> {
    let mut params = FederationParams::default();
    if let Some(v) = file.get("h3_res") {
        params.h3_resolution = v
            .as_u64()
            .and_then(|n| u8::try_from(n).ok())
            .context("header h3_res is not a small whole number")?;
    }
    if let Some(v) = file.get("k") {
        params.disk_radius = v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .context("header k is not a whole number")?;
    }
    Ok(params)
}

fn case_line(case: &Value, params: &FederationParams) -> CaseLine {
    let id = case.get("id").cloned().unwrap_or(Value::Null);
    let error = |e: &str| CaseLine {
        id: id.clone(),
        canonical_hex: None,
        error: Some(e.into()),
    };
    if !case.is_object() {
        return error("case is not a JSON object");
    }
    let Some(kind) = case.get("kind").and_then(Value::as_str) else {
        return error("case has no \"kind\" string");
    };
    let input = case.get("input").unwrap_or(&Value::Null);
    let result = Selector::from_json(kind, input)
        .and_then(|sel| canonical_forms(&sel, params).map(|forms| (sel, forms)));
    match result {
        Ok((sel, forms)) => {
            let hexes: Vec<String> = forms.iter().map(hex::encode).collect();
            let canonical = match &hexes[..] {
                [one] if sel.kind() != SelectorKind::Geo => json!(one),
                _ => json!(hexes),
            };
            CaseLine {
                id,
                canonical_hex: Some(canonical),
                error: None,
            }
        }
        Err(err) => CaseLine {
            id,
            canonical_hex: None,
            error: Some(err.to_string()),
        },
    }
}

//! `email`, `handle` and `wallet`: online identities.

use unicode_normalization::UnicodeNormalization;

use super::{NormalizeError, SelectorKind};

/// Field `EMAIL`.
///
/// Trim, NFKC, full lowercase. Then exactly one `@` with something on both sides and no
/// white space anywhere. The whole address is lowercased, local part included: providers
/// treat it case-insensitively in practice, and a missed match costs more than a false one,
/// which the duty officers' call sorts out. Provider-specific aliases (dots, `+tag`) are not
/// folded: they are not universal.
pub(super) fn email(text: &str) -> Result<String, NormalizeError> {
    const KIND: SelectorKind = SelectorKind::Email;
    let email = text.trim().nfkc().collect::<String>().to_lowercase();
    if email.chars().any(char::is_whitespace) {
        return Err(NormalizeError::invalid(
            KIND,
            "text",
            "contains white space",
        ));
    }
    let mut parts = email.split('@');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(local), Some(domain), None) if !local.is_empty() && !domain.is_empty() => Ok(email),
        (_, _, Some(_)) => Err(NormalizeError::invalid(KIND, "text", "more than one '@'")),
        (_, None, _) => Err(NormalizeError::invalid(KIND, "text", "no '@'")),
        _ => Err(NormalizeError::invalid(
            KIND,
            "text",
            "empty before or after '@'",
        )),
    }
}

/// Fields `PLATFORM`, `HANDLE`.
///
/// PLATFORM: trim, ASCII lowercase, `[a-z0-9.-]+` (`telegram`, `wechat`, `x`).
/// HANDLE: NFKC, trim, one leading `@` dropped (how handles are quoted, not part of them),
/// lowercase; it must not be empty or hold white space.
pub(super) fn handle(platform: &str, handle: &str) -> Result<Vec<String>, NormalizeError> {
    const KIND: SelectorKind = SelectorKind::Handle;
    let platform = ascii_name(KIND, "platform", platform, |b| b == b'.' || b == b'-')?;
    let nfkc: String = handle.nfkc().collect();
    let trimmed = nfkc.trim();
    let handle = trimmed.strip_prefix('@').unwrap_or(trimmed).to_lowercase();
    if handle.is_empty() {
        return Err(NormalizeError::invalid(KIND, "handle", "empty"));
    }
    if handle.chars().any(char::is_whitespace) {
        return Err(NormalizeError::invalid(
            KIND,
            "handle",
            "contains white space",
        ));
    }
    Ok(vec![platform, handle])
}

/// Fields `CHAIN`, `ADDRESS`.
///
/// CHAIN: trim, ASCII lowercase, `[a-z0-9-]+`. ADDRESS: trimmed; no white space inside, not
/// empty. Case is only folded where the encoding ignores it: `0x` + 40 hex digits (Ethereum
/// and EVM chains; EIP-55 mixed case is a checksum, not part of the address) is written `0x` +
/// lowercase hex, and bech32 (`bc1`, `tb1`, `ltc1` in any case) is ASCII-lowercased. Anything
/// else (base58 ...) is case-significant and kept as written.
pub(super) fn wallet(chain: &str, address: &str) -> Result<Vec<String>, NormalizeError> {
    const KIND: SelectorKind = SelectorKind::Wallet;
    let chain = ascii_name(KIND, "chain", chain, |b| b == b'-')?;
    let address = address.trim();
    if address.is_empty() {
        return Err(NormalizeError::invalid(KIND, "address", "empty"));
    }
    if address.chars().any(char::is_whitespace) {
        return Err(NormalizeError::invalid(
            KIND,
            "address",
            "contains white space",
        ));
    }
    let hex40 = address
        .strip_prefix("0x")
        .or_else(|| address.strip_prefix("0X"))
        .filter(|h| h.len() == 40 && h.bytes().all(|b| b.is_ascii_hexdigit()));
    let address = if let Some(hex) = hex40 {
        format!("0x{}", hex.to_ascii_lowercase())
    } else if is_bech32_prefixed(address) {
        address.to_ascii_lowercase()
    } else {
        address.to_owned()
    };
    Ok(vec![chain, address])
}

fn is_bech32_prefixed(address: &str) -> bool {
    ["bc1", "tb1", "ltc1"].iter().any(|p| {
        address
            .get(..p.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(p))
    })
}

/// A protocol-ish name (platform, chain): trimmed, ASCII lowercase, `[a-z0-9]` plus `extra`.
fn ascii_name(
    kind: SelectorKind,
    field: &'static str,
    value: &str,
    extra: impl Fn(u8) -> bool,
) -> Result<String, NormalizeError> {
    let name = value.trim().to_ascii_lowercase();
    if name.is_empty() {
        return Err(NormalizeError::invalid(kind, field, "empty"));
    }
    if name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || extra(b))
    {
        Ok(name)
    } else {
        Err(NormalizeError::invalid(
            kind,
            field,
            format!(
                "{name:?} has characters other than a-z, 0-9{}",
                if extra(b'.') { ", '.', '-'" } else { ", '-'" }
            ),
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(
            email("Zhang.Wei@Example.CN").unwrap(),
            "zhang.wei@example.cn"
        );
        assert_eq!(
            email("  zhang.wei@example.cn \n").unwrap(),
            "zhang.wei@example.cn"
        );
        assert_eq!(
            email("ｚｈａｎｇ＠ｅｘａｍｐｌｅ．ｃｎ").unwrap(),
            "zhang@example.cn"
        );
        assert!(email("zhang@wei@example.cn").is_err());
        assert!(email("zhang wei@example.cn").is_err());
        assert!(email("zhang\u{3000}wei@example.cn").is_err());
        assert!(email("@example.cn").is_err());
        assert!(email("zhang@").is_err());
        assert!(email("zhang").is_err());
        assert!(email("").is_err());
    }

    #[test]
    fn handles() {
        assert_eq!(
            handle("telegram", "@ZhangWei_88").unwrap(),
            ["telegram", "zhangwei_88"]
        );
        assert_eq!(
            handle(" Telegram ", "zhangwei_88").unwrap(),
            ["telegram", "zhangwei_88"]
        );
        assert_eq!(handle("x", " ＠Ｚｈａｎｇ ").unwrap(), ["x", "zhang"]);
        assert_eq!(handle("x", "@@z").unwrap(), ["x", "@z"]);
        assert!(handle("telegram", "@").is_err());
        assert!(handle("telegram", "zhang wei").is_err());
        assert!(handle("tele gram", "zhang").is_err());
        assert!(handle("", "zhang").is_err());
        assert!(handle("微信", "zhang").is_err());
    }

    #[test]
    fn wallets() {
        let eth = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed";
        assert_eq!(
            wallet("eth", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed").unwrap()[1],
            eth
        );
        assert_eq!(
            wallet(" ETH ", "0X5AAEB6053F3E94C9B9A09F33669435E7EF1BEAED").unwrap(),
            ["eth", eth]
        );
        let b58 = "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa";
        assert_eq!(wallet("btc", b58).unwrap()[1], b58);
        assert_eq!(
            wallet("btc", "BC1QAR0SRRR7XFKVY5L643LYDNW9RE59GTZZWF5MDQ").unwrap()[1],
            "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"
        );
        assert_eq!(wallet("ltc", "LTC1QXYZ").unwrap()[1], "ltc1qxyz");
        // Not 40 hex digits: kept as written.
        assert_eq!(wallet("eth", "0xABC").unwrap()[1], "0xABC");
        assert!(wallet("eth", "0x5aAeb6053F3E94C9b9A09f 33669435E7Ef1BeAed").is_err());
        assert!(wallet("eth", "  ").is_err());
        assert!(wallet("e.th", "0xabc").is_err());
    }
}

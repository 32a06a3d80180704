//! Why the broker or the token service could not be reached, in words an operator can act on:
//! a certificate that does not hold the name agencyd connected by is the first thing people
//! meet when they connect by IP, and tonic's "transport error" does not say so.

use std::error::Error;

/// The TLS name agencyd expects a server's certificate to hold, and where that name came from.
#[derive(Debug, Clone)]
pub struct ExpectedName {
    /// The name (or IP) checked against the certificate.
    pub name: String,
    /// The configuration key that sets it (`broker.tls_domain`, ...).
    pub key: &'static str,
    /// Whether the name was taken from the address because the key is unset.
    pub from_address: bool,
}

/// The status's message and its causes, each once (tonic repeats a cause in its message).
fn chain(status: &tonic::Status) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |text: String| {
        if !text.is_empty() && !out.iter().any(|seen| seen.contains(&text)) {
            out.retain(|seen| !text.contains(seen.as_str()));
            out.push(text);
        }
    };
    add(status.message().to_owned());
    let mut next = status.source();
    while let Some(err) = next {
        add(err.to_string());
        next = err.source();
    }
    out
}

/// Describes a failed call: the code, the message, and its causes once; a certificate that
/// does not hold the expected name is said in words, with the key that fixes it.
pub fn describe(status: &tonic::Status, expected: &ExpectedName) -> String {
    let causes = chain(status);
    let mismatch = causes
        .iter()
        .any(|c| c.contains("NotValidForName") || c.contains("not valid for name"));
    if mismatch {
        let typed = if expected.from_address {
            format!(
                "{} (the host of the address; set {} when connecting by another name or by an \
                 IP the certificate does not hold)",
                expected.name, expected.key
            )
        } else {
            format!("{} (from {})", expected.name, expected.key)
        };
        return format!(
            "the server's certificate is not valid for {typed}: set {} to a name the \
             certificate holds",
            expected.key
        );
    }
    let code = token_spec::token::grpc_code_name(status.code());
    format!("{code}: {}", causes.join(": "))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Inner;
    impl std::fmt::Display for Inner {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "invalid peer certificate: NotValidForName")
        }
    }
    impl Error for Inner {}

    #[test]
    fn a_name_mismatch_names_what_was_typed_and_the_key_that_fixes_it() {
        let status = tonic::Status::from_error(Box::new(Inner));
        let said = describe(
            &status,
            &ExpectedName {
                name: "10.1.2.3".into(),
                key: "broker.tls_domain",
                from_address: true,
            },
        );
        assert!(said.contains("not valid for 10.1.2.3"), "{said}");
        assert!(said.contains("set broker.tls_domain"), "{said}");
        assert!(!said.contains("localhost"), "{said}");
    }

    #[test]
    fn other_failures_keep_their_code_and_say_each_cause_once() {
        let status = tonic::Status::unavailable("connection refused");
        let said = describe(
            &status,
            &ExpectedName {
                name: "broker.example".into(),
                key: "broker.tls_domain",
                from_address: true,
            },
        );
        assert_eq!(said.matches("connection refused").count(), 1, "{said}");
    }
}

//! The broker's pepper: `stored = HMAC-SHA256(pepper, token)`. The raw token is hashed as soon
//! as a request is validated and is never kept, logged or sent.

use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::secret_file::{SecretFileError, load_or_create_secret};

pub const PEPPER_LEN: usize = 32;

#[derive(Clone)]
pub struct Pepper([u8; PEPPER_LEN]);

impl std::fmt::Debug for Pepper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pepper(..)")
    }
}

impl Pepper {
    pub fn from_bytes(bytes: [u8; PEPPER_LEN]) -> Self {
        Self(bytes)
    }

    /// Loads the pepper file, creating it with a fresh random pepper (mode 0600) if absent.
    pub fn load_or_create(path: &Path) -> Result<Self, SecretFileError> {
        load_or_create_secret(path, "pepper").map(Self)
    }

    pub fn stored(&self, token: &[u8]) -> [u8; 32] {
        // HMAC accepts keys of any length, so this cannot fail for our 32-byte key.
        let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(&self.0) {
            Ok(mac) => mac,
            Err(_) => unreachable_key_length(),
        };
        mac.update(token);
        mac.finalize().into_bytes().into()
    }
}

#[cold]
fn unreachable_key_length() -> ! {
    // hmac::Hmac::new_from_slice only fails for block-size-limited MACs, not HMAC.
    std::process::abort()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_spec_vector() {
        // From ../shared/token-vectors.json (person-latin-family-first).
        let pepper = Pepper::from_bytes([0x11; 32]);
        let token = hex::decode("24147800270631305f5c8a43558084182946a86305f7b6bf5680b0ef4116579f")
            .unwrap();
        assert_eq!(
            hex::encode(pepper.stored(&token)),
            "d61b15859218abf5d6f24cde5b2eb1f3ee1a9787fc90b814cb3947edddb2fc63"
        );
    }
}

//! The broker's pepper: `stored = HMAC-SHA256(pepper, token)`. The raw token is hashed as soon
//! as a request is validated and is never kept, logged or sent.
//!
//! A pepper can be rotated without any raw token: `deconflict-broker pepper rekey` applies a
//! new layer on top of every stored value, offline (see [`crate::ledger::rekey`]). The
//! pepper is then a chain, the original first:
//!
//! ```text
//! stored = HMAC(p_n, … HMAC(p_2, HMAC(p_1, token)))
//! ```
//!
//! A leaked earlier layer is useless against a store re-keyed after the leak: testing a guess
//! needs every layer. The store records a fingerprint of each layer ([`Pepper::bind`]), so a
//! broker given the wrong pepper files refuses to start instead of silently missing every
//! match.

use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::secrets::file::{SecretFileError, load_or_create_secret, load_secret};
use crate::store::{Store, StoreError, WriteBatch};

pub const PEPPER_LEN: usize = 32;

/// Where the store keeps the fingerprints of the pepper layers it was written with.
pub const FINGERPRINT_KEY: &[u8] = b"meta/pepper";
/// Present while a re-keyed store is being written; a broker refuses to open such a store.
pub const REKEY_INCOMPLETE_KEY: &[u8] = b"meta/rekey-incomplete";
/// Bytes of one layer's fingerprint.
const FINGERPRINT_LEN: usize = 8;
const FINGERPRINT_LABEL: &[u8] = b"deconfliction pepper fingerprint v1";

/// One 32-byte pepper layer.
#[derive(Clone)]
pub struct PepperLayer([u8; PEPPER_LEN]);

impl std::fmt::Debug for PepperLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PepperLayer(..)")
    }
}

impl PepperLayer {
    pub fn from_bytes(bytes: [u8; PEPPER_LEN]) -> Self {
        Self(bytes)
    }

    pub fn hmac(&self, input: &[u8]) -> [u8; 32] {
        // HMAC accepts keys of any length, so this cannot fail for our 32-byte key.
        let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(&self.0) {
            Ok(mac) => mac,
            Err(_) => unreachable_key_length(),
        };
        mac.update(input);
        mac.finalize().into_bytes().into()
    }

    /// A short public name of the layer: a PRF output on a fixed label, which says nothing of
    /// the pepper but lets an operator (and the store) tell two peppers apart.
    pub fn fingerprint(&self) -> [u8; FINGERPRINT_LEN] {
        let full = self.hmac(FINGERPRINT_LABEL);
        let mut out = [0u8; FINGERPRINT_LEN];
        out.copy_from_slice(&full[..FINGERPRINT_LEN]);
        out
    }
}

/// The pepper chain, the original layer first.
#[derive(Clone, Debug)]
pub struct Pepper {
    layers: Vec<PepperLayer>,
}

/// Why the pepper cannot be used with a store.
#[derive(Debug, thiserror::Error)]
pub enum PepperError {
    #[error(transparent)]
    File(#[from] SecretFileError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "this store was written with {stored} pepper layer(s) but the configuration gives \
         {configured} (secrets.pepper plus {} in secrets.pepper_rekeys): {hint}",
        configured.saturating_sub(1)
    )]
    LayerCount {
        stored: usize,
        configured: usize,
        hint: &'static str,
    },
    #[error(
        "pepper file {path} (layer {layer}) is not the pepper this store was written with \
         (fingerprint {configured}, the store expects {stored}); with it the broker would miss \
         every match. Configure the pepper files that belong to this store"
    )]
    Mismatch {
        layer: usize,
        path: String,
        configured: String,
        stored: String,
    },
    #[error(
        "this store is a pepper re-key that did not finish (interrupted?); delete its data \
         folder and run `deconflict-broker pepper rekey` again"
    )]
    RekeyIncomplete,
    #[error("stored pepper fingerprint is corrupt ({0} bytes)")]
    CorruptFingerprint(usize),
}

impl Pepper {
    /// A single-layer pepper (a store never re-keyed).
    pub fn from_bytes(bytes: [u8; PEPPER_LEN]) -> Self {
        Self {
            layers: vec![PepperLayer(bytes)],
        }
    }

    /// Loads the pepper file, creating it with a fresh random pepper (mode 0600) if absent.
    /// Re-key layers must exist: a missing one is an error, never a new random pepper.
    pub fn load(first: &Path, rekeys: &[PathBuf]) -> Result<Self, SecretFileError> {
        let first = if rekeys.is_empty() {
            load_or_create_secret(first, "pepper")?
        } else {
            load_secret(first, "pepper")?
        };
        Self::chain(first, rekeys)
    }

    /// A single-layer pepper from `path`, created if absent (benchmarks and tools).
    pub fn load_or_create(path: &Path) -> Result<Self, SecretFileError> {
        Self::load(path, &[])
    }

    /// Loads the pepper file only if it exists (offline tools never create one).
    pub fn load_existing(first: &Path, rekeys: &[PathBuf]) -> Result<Self, SecretFileError> {
        Self::chain(load_secret(first, "pepper")?, rekeys)
    }

    fn chain(first: [u8; PEPPER_LEN], rekeys: &[PathBuf]) -> Result<Self, SecretFileError> {
        let mut layers = vec![PepperLayer(first)];
        for path in rekeys {
            layers.push(PepperLayer(load_secret(path, "re-key pepper")?));
        }
        Ok(Self { layers })
    }

    /// This chain with `layer` on top.
    pub fn with_layer(&self, layer: PepperLayer) -> Self {
        let mut layers = self.layers.clone();
        layers.push(layer);
        Self { layers }
    }

    /// Number of layers (1 for a pepper never rotated).
    pub fn generation(&self) -> usize {
        self.layers.len()
    }

    pub fn layers(&self) -> &[PepperLayer] {
        &self.layers
    }

    /// What the broker stores for `token`.
    pub fn stored(&self, token: &[u8]) -> [u8; 32] {
        self.stored_at(token, self.layers.len())
    }

    /// What a broker with only the first `generation` layers stored for `token`.
    pub fn stored_at(&self, token: &[u8], generation: usize) -> [u8; 32] {
        let mut layers = self.layers.iter().take(generation.max(1));
        let mut value = match layers.next() {
            Some(first) => first.hmac(token),
            None => unreachable_key_length(),
        };
        for layer in layers {
            value = layer.hmac(&value);
        }
        value
    }

    /// A value computed with the first `generation` layers, as the re-keys since then have
    /// rewritten it (each applied its own layer on top).
    pub fn lift(&self, mut value: [u8; 32], generation: usize) -> [u8; 32] {
        for layer in self.layers.iter().skip(generation) {
            value = layer.hmac(&value);
        }
        value
    }

    fn fingerprints(&self) -> Vec<u8> {
        self.layers.iter().flat_map(|l| l.fingerprint()).collect()
    }

    /// The layers' fingerprints in hex, for operators comparing pepper files.
    pub fn fingerprints_hex(&self) -> Vec<String> {
        self.layers
            .iter()
            .map(|l| hex::encode(l.fingerprint()))
            .collect()
    }

    /// Checks this chain against the fingerprints `store` records, recording them if the store
    /// has none yet (a new store, or one written before fingerprints were kept). `paths`
    /// names the layers' files in error messages.
    pub fn bind(&self, store: &dyn Store, paths: &[PathBuf]) -> Result<(), PepperError> {
        if self.verify(store, paths)? {
            return Ok(());
        }
        let mut batch = WriteBatch::default();
        let (key, value) = self.fingerprint_entry();
        batch.put(key, value);
        store.apply(batch)?;
        store.flush_blocking()?;
        Ok(())
    }

    /// As [`Pepper::bind`] without writing: Ok(false) when the store records no fingerprint.
    pub fn verify(&self, store: &dyn Store, paths: &[PathBuf]) -> Result<bool, PepperError> {
        if store.get(REKEY_INCOMPLETE_KEY)?.is_some() {
            return Err(PepperError::RekeyIncomplete);
        }
        let Some(stored) = store.get(FINGERPRINT_KEY)? else {
            return Ok(false);
        };
        if stored.is_empty() || stored.len() % FINGERPRINT_LEN != 0 {
            return Err(PepperError::CorruptFingerprint(stored.len()));
        }
        let stored: Vec<&[u8]> = stored.chunks(FINGERPRINT_LEN).collect();
        if stored.len() != self.layers.len() {
            return Err(PepperError::LayerCount {
                stored: stored.len(),
                configured: self.layers.len(),
                hint: if stored.len() > self.layers.len() {
                    "the store was re-keyed: list every re-key pepper file in \
                     secrets.pepper_rekeys, oldest first"
                } else {
                    "is secrets.pepper_rekeys set for a store that was not re-keyed? Point \
                     server.data_dir at the folder `pepper rekey` wrote"
                },
            });
        }
        for (i, (layer, want)) in self.layers.iter().zip(stored).enumerate() {
            let have = layer.fingerprint();
            if have.as_slice() != want {
                return Err(PepperError::Mismatch {
                    layer: i + 1,
                    path: paths
                        .get(i)
                        .map_or_else(|| "?".into(), |p| p.display().to_string()),
                    configured: hex::encode(have),
                    stored: hex::encode(want),
                });
            }
        }
        Ok(true)
    }

    /// The batch entry that records this chain's fingerprints.
    pub fn fingerprint_entry(&self) -> (Vec<u8>, Vec<u8>) {
        (FINGERPRINT_KEY.to_vec(), self.fingerprints())
    }
}

#[cold]
fn unreachable_key_length() -> ! {
    // hmac::Hmac::new_from_slice only fails for block-size-limited MACs, not HMAC, and a
    // chain always has its first layer.
    std::process::abort()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::store::SledStore;

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

    #[test]
    fn a_layer_applies_on_top_of_the_stored_value() {
        let one = Pepper::from_bytes([1; 32]);
        let two = one.with_layer(PepperLayer::from_bytes([2; 32]));
        let token = [9u8; 32];
        let old = one.stored(&token);
        assert_eq!(two.stored(&token), two.layers()[1].hmac(&old));
        assert_eq!(two.stored_at(&token, 1), old);
        assert_eq!(two.lift(old, 1), two.stored(&token));
        assert_eq!(two.lift(old, 2), old);
        assert_ne!(two.stored(&token), old);
    }

    #[test]
    fn the_store_refuses_other_peppers() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let paths = [PathBuf::from("p1"), PathBuf::from("p2")];
        let one = Pepper::from_bytes([1; 32]);
        assert!(!one.verify(&store, &paths).unwrap());
        one.bind(&store, &paths).unwrap();
        assert!(one.verify(&store, &paths).unwrap());

        let other = Pepper::from_bytes([3; 32]);
        let err = other.bind(&store, &paths).unwrap_err().to_string();
        assert!(
            err.contains("p1") && err.contains("miss every match"),
            "{err}"
        );

        let two = one.with_layer(PepperLayer::from_bytes([2; 32]));
        let err = two.bind(&store, &paths).unwrap_err().to_string();
        assert!(err.contains("not re-keyed"), "{err}");

        let mut batch = WriteBatch::default();
        let (k, v) = two.fingerprint_entry();
        batch.put(k, v);
        store.apply(batch).unwrap();
        let err = one.bind(&store, &paths).unwrap_err().to_string();
        assert!(err.contains("pepper_rekeys, oldest first"), "{err}");
        two.bind(&store, &paths).unwrap();

        let mut batch = WriteBatch::default();
        batch.put(REKEY_INCOMPLETE_KEY.to_vec(), Vec::new());
        store.apply(batch).unwrap();
        assert!(matches!(
            two.bind(&store, &paths),
            Err(PepperError::RekeyIncomplete)
        ));
    }
}

//! 256-bit secret keys: zeroized on drop, never printed.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::Rng;

/// Length of every key in the vault (KEK, DEK, fingerprint key), in bytes.
pub(crate) const KEY_LEN: usize = 32;

/// A 256-bit secret key. Zeroized on drop; `Debug` prints no key bytes.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct Key256([u8; KEY_LEN]);

impl Key256 {
    /// A fresh key from `rng`.
    pub(crate) fn generate(rng: &dyn Rng) -> Key256 {
        let mut key = Key256([0u8; KEY_LEN]);
        rng.fill(&mut key.0);
        key
    }

    /// Copies the key out of `bytes` if it has exactly [`KEY_LEN`] bytes.
    pub(crate) fn from_slice(bytes: &[u8]) -> Option<Key256> {
        if bytes.len() != KEY_LEN {
            return None;
        }
        let mut key = Key256([0u8; KEY_LEN]);
        key.0.copy_from_slice(bytes);
        Some(key)
    }

    /// The key bytes. Never log them.
    pub(crate) fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// Decodes a standard (padded) base64 key. The error message never echoes
    /// the input.
    pub(crate) fn from_base64(text: &str) -> Result<Key256, String> {
        let bytes = Zeroizing::new(
            STANDARD
                .decode(text.trim())
                .map_err(|_| "is not valid base64".to_owned())?,
        );
        Key256::from_slice(&bytes).ok_or_else(|| {
            format!(
                "must be {KEY_LEN} bytes (256 bits) of base64, found {} bytes",
                bytes.len()
            )
        })
    }

    /// Appends the standard (padded) base64 encoding of the key to `out`.
    pub(crate) fn append_base64(&self, out: &mut String) {
        STANDARD.encode_string(self.0, out);
    }
}

impl fmt::Debug for Key256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key256([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let key = Key256([0xAB; KEY_LEN]);
        let text = format!("{key:?}");
        assert_eq!(text, "Key256([REDACTED])");
        let mut b64 = String::new();
        key.append_base64(&mut b64);
        assert!(!text.contains(&b64));
    }

    #[test]
    fn base64_round_trip_and_errors() {
        let key = Key256([7; KEY_LEN]);
        let mut b64 = String::new();
        key.append_base64(&mut b64);
        assert_eq!(Key256::from_base64(&b64).unwrap().expose(), key.expose());
        assert_eq!(
            Key256::from_base64("!!!").unwrap_err(),
            "is not valid base64"
        );
        assert!(
            Key256::from_base64("AAAA")
                .unwrap_err()
                .contains("found 3 bytes")
        );
    }
}

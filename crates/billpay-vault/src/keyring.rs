//! The keyring: versioned key-encryption keys, the active version and the
//! fingerprint key.

use std::collections::BTreeMap;
use std::fmt;

use hmac::Mac as _;
use zeroize::Zeroizing;

use crate::envelope::{self, Sealed};
use crate::key::{KEY_LEN, Key256};
use crate::{Rng, VaultError};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// SHA-256's block size: HMAC pads shorter keys with zeros to this length.
const HMAC_BLOCK_LEN: usize = 64;

/// The vault's keys: versioned key-encryption keys (KEKs) with one active, and
/// the fingerprint key.
///
/// It comes from a file ([`Keyring::load`]) or from an environment variable's
/// text ([`Keyring::from_toml`]), never from the database. `Debug` prints the
/// versions and the active one only. Every key is zeroized when the keyring is
/// dropped.
#[derive(Clone)]
pub struct Keyring {
    /// KEKs by version. Boxed so the map's node moves never copy key bytes.
    keks: BTreeMap<u32, Box<Key256>>,
    /// The version new records are sealed under; always a key of `keks`.
    active: u32,
    /// The HMAC-SHA256 key for fingerprints; not rotated with the KEKs.
    fingerprint_key: Box<Key256>,
}

impl Keyring {
    /// A new keyring: KEK version 1 (active) and a fingerprint key, all from `rng`.
    pub fn generate(rng: &dyn Rng) -> Keyring {
        let mut keks = BTreeMap::new();
        keks.insert(1, Box::new(Key256::generate(rng)));
        Keyring {
            keks,
            active: 1,
            fingerprint_key: Box::new(Key256::generate(rng)),
        }
    }

    /// Builds a keyring from parts, checking the invariants: at least one KEK,
    /// versions from 1, the active version present, no key used twice.
    pub(crate) fn from_parts(
        keks: BTreeMap<u32, Box<Key256>>,
        active: u32,
        fingerprint_key: Box<Key256>,
    ) -> Result<Keyring, VaultError> {
        let invalid = |m: String| Err(VaultError::InvalidKeyring(m));
        if keks.is_empty() {
            return invalid("[keys] is empty: at least one key-encryption key is required".into());
        }
        if keks.contains_key(&0) {
            return invalid("key versions start at 1; version 0 is not allowed".into());
        }
        if !keks.contains_key(&active) {
            return invalid(format!(
                "the active version {active} is not in [keys] (versions present: {})",
                join_versions(keks.keys().copied())
            ));
        }
        let entries: Vec<(String, &Key256)> = keks
            .iter()
            .map(|(v, k)| (format!("key version {v}"), &**k))
            .chain(std::iter::once((
                "the fingerprint key".to_owned(),
                &*fingerprint_key,
            )))
            .collect();
        for (i, (name_a, a)) in entries.iter().enumerate() {
            for (name_b, b) in &entries[i + 1..] {
                if a.expose() == b.expose() {
                    return invalid(format!(
                        "{name_a} and {name_b} are the same key; every key must be distinct"
                    ));
                }
            }
        }
        Ok(Keyring {
            keks,
            active,
            fingerprint_key,
        })
    }

    pub(crate) fn keks(&self) -> &BTreeMap<u32, Box<Key256>> {
        &self.keks
    }

    pub(crate) fn fingerprint_key(&self) -> &Key256 {
        &self.fingerprint_key
    }

    /// The KEK version new records are sealed under.
    pub fn active_version(&self) -> u32 {
        self.active
    }

    /// Every KEK version held, ascending.
    pub fn versions(&self) -> Vec<u32> {
        self.keks.keys().copied().collect()
    }

    /// Adds a new KEK version (one above the highest held) from `rng`, makes it
    /// active and returns it. Older versions stay until [`Keyring::retire`]d, so
    /// existing records still open; [`Keyring::rewrap`] moves them over.
    ///
    /// Save the keyring (and its backup) before sealing anything under the new
    /// version, or those records cannot be opened after a restart.
    pub fn rotate(&mut self, rng: &dyn Rng) -> u32 {
        let version = self.next_version();
        self.keks.insert(version, Box::new(Key256::generate(rng)));
        self.active = version;
        version
    }

    fn next_version(&self) -> u32 {
        let highest = self.keks.keys().next_back().copied().unwrap_or(0);
        match highest.checked_add(1) {
            Some(v) => v,
            // Only after version u32::MAX: reuse the lowest free number. The map
            // cannot hold 2^32 keys, so one is always free.
            None => (1..=u32::MAX)
                .find(|v| !self.keks.contains_key(v))
                .unwrap_or(u32::MAX),
        }
    }

    /// Removes a KEK version. Records still wrapped under it can no longer be
    /// opened ([`VaultError::UnknownKeyVersion`]): rewrap them first. The active
    /// version is refused ([`VaultError::RetireActive`]).
    pub fn retire(&mut self, version: u32) -> Result<(), VaultError> {
        if version == self.active {
            return Err(VaultError::RetireActive(version));
        }
        match self.keks.remove(&version) {
            Some(_) => Ok(()),
            None => Err(VaultError::UnknownKeyVersion(version)),
        }
    }

    /// Whether `sealed` is wrapped under an older KEK than the active one.
    pub fn needs_rewrap(&self, sealed: &Sealed) -> bool {
        sealed.kek_version != self.active
    }

    fn kek(&self, version: u32) -> Result<&Key256, VaultError> {
        self.keks
            .get(&version)
            .map(|k| &**k)
            .ok_or(VaultError::UnknownKeyVersion(version))
    }

    /// Encrypts `plaintext` for the record `record_id` under a fresh data key,
    /// wrapped under the active KEK.
    pub fn seal(
        &self,
        record_id: &str,
        plaintext: &[u8],
        rng: &dyn Rng,
    ) -> Result<Sealed, VaultError> {
        let kek = self.kek(self.active)?;
        let dek = Key256::generate(rng);
        let ciphertext = envelope::encrypt_data(&dek, record_id, plaintext, rng)?;
        let wrapped_key = envelope::wrap_dek(kek, self.active, record_id, &dek, rng)?;
        Ok(Sealed {
            kek_version: self.active,
            wrapped_key,
            ciphertext,
        })
    }

    /// Decrypts `sealed` for the record `record_id`. Any tampering (a flipped
    /// byte, another record's id, another key) is an error, never a panic.
    pub fn open(&self, record_id: &str, sealed: &Sealed) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let decoded = sealed.decode()?;
        let kek = self.kek(sealed.kek_version)?;
        let dek = envelope::unwrap_dek(kek, sealed.kek_version, record_id, &decoded.wrapped_key)?;
        envelope::decrypt_data(&dek, record_id, &decoded.ciphertext)
    }

    /// Re-wraps the record's data key under the active KEK without touching
    /// the ciphertext. The wrapped key is authenticated first, so a tampered
    /// record is refused rather than re-blessed. A record already under the
    /// active version is returned unchanged.
    pub fn rewrap(
        &self,
        record_id: &str,
        sealed: &Sealed,
        rng: &dyn Rng,
    ) -> Result<Sealed, VaultError> {
        let decoded = sealed.decode()?;
        let old_kek = self.kek(sealed.kek_version)?;
        let dek =
            envelope::unwrap_dek(old_kek, sealed.kek_version, record_id, &decoded.wrapped_key)?;
        if sealed.kek_version == self.active {
            return Ok(sealed.clone());
        }
        let kek = self.kek(self.active)?;
        let wrapped_key = envelope::wrap_dek(kek, self.active, record_id, &dek, rng)?;
        Ok(Sealed {
            kek_version: self.active,
            wrapped_key,
            ciphertext: sealed.ciphertext.clone(),
        })
    }

    /// Keyed fingerprint of `value` in `domain`: lowercase hex of
    /// HMAC-SHA256(fingerprint key, domain || 0x00 || value), 64 characters.
    ///
    /// Deterministic for one keyring, so equal values in the same domain match
    /// without decrypting; unrelated across keyrings and across domains. Use the
    /// domain to separate kinds of value and scopes (for example
    /// `"card:acct_123"`); a domain must not contain a NUL byte.
    pub fn fingerprint(&self, domain: &str, value: &str) -> String {
        // HMAC zero-pads keys shorter than the block size, so keying with the
        // padded 64-byte block is the same HMAC and needs no fallible call.
        let mut block = Zeroizing::new([0u8; HMAC_BLOCK_LEN]);
        block[..KEY_LEN].copy_from_slice(self.fingerprint_key.expose());
        let mut mac = <HmacSha256 as hmac::digest::KeyInit>::new((&*block).into());
        mac.update(domain.as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut hex = String::with_capacity(digest.len() * 2);
        for byte in digest {
            hex.push(hex_digit(byte >> 4));
            hex.push(hex_digit(byte & 0x0f));
        }
        hex
    }
}

fn hex_digit(nibble: u8) -> char {
    char::from(b"0123456789abcdef"[usize::from(nibble & 0x0f)])
}

pub(crate) fn join_versions(versions: impl Iterator<Item = u32>) -> String {
    let list: Vec<String> = versions.map(|v| v.to_string()).collect();
    if list.is_empty() {
        "none".into()
    } else {
        list.join(", ")
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("active", &self.active)
            .field("versions", &self.versions())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_hmac_key_equals_plain_hmac() {
        let rng = |buf: &mut [u8]| buf.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
        let keyring = Keyring::generate(&rng);
        let mut mac = HmacSha256::new_from_slice(keyring.fingerprint_key.expose()).unwrap();
        mac.update(b"card\0value");
        let expected: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(keyring.fingerprint("card", "value"), expected);
    }

    #[test]
    fn next_version_after_max_reuses_a_free_number() {
        let rng = |buf: &mut [u8]| buf.iter_mut().for_each(|b| *b = 9);
        let mut keyring = Keyring::generate(&rng);
        keyring
            .keks
            .insert(u32::MAX, Box::new(Key256::generate(&rng)));
        assert_eq!(keyring.next_version(), 2);
    }
}

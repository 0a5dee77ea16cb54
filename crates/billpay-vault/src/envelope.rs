//! Envelope encryption: AES-256-GCM under a per-record data key (DEK), the DEK
//! wrapped with AES-256-GCM under a key-encryption key (KEK).
//!
//! Wire format (both fields standard padded base64):
//!
//! * `wrapped_key` = nonce (12) || AES-GCM(KEK, DEK) (32 + 16-byte tag), with
//!   associated data `"billpay-vault/v1/dek" || 0x00 || kek_version (u32 BE) || record_id`;
//! * `ciphertext` = nonce (12) || AES-GCM(DEK, plaintext) (len + 16-byte tag),
//!   with associated data `"billpay-vault/v1/data" || 0x00 || record_id`.
//!
//! Nonces are random. Each DEK encrypts exactly one plaintext, and KEK wraps
//! use random 96-bit nonces, which is safe far beyond any realistic number of
//! records per KEK version (rotate long before 2^32 wraps).

use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes256Gcm, KeyInit};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::key::{KEY_LEN, Key256};
use crate::{Rng, VaultError};

/// AES-GCM nonce length in bytes.
const NONCE_LEN: usize = 12;
/// AES-GCM tag length in bytes.
const TAG_LEN: usize = 16;
/// Exact decoded length of a wrapped DEK.
const WRAPPED_LEN: usize = NONCE_LEN + KEY_LEN + TAG_LEN;

const DEK_AAD_LABEL: &[u8] = b"billpay-vault/v1/dek";
const DATA_AAD_LABEL: &[u8] = b"billpay-vault/v1/data";

/// A sealed record: what the store keeps. Every field is non-secret (without
/// the keyring it reveals nothing but the plaintext's length).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    /// The KEK version the data key is wrapped under.
    pub kek_version: u32,
    /// Base64 of nonce (12 bytes) || AES-256-GCM(KEK, DEK).
    pub wrapped_key: String,
    /// Base64 of nonce (12 bytes) || AES-256-GCM(DEK, plaintext).
    pub ciphertext: String,
}

/// The decoded byte forms of a [`Sealed`], shape-checked.
pub(crate) struct Decoded {
    pub(crate) wrapped_key: Vec<u8>,
    pub(crate) ciphertext: Vec<u8>,
}

impl Sealed {
    /// Decodes both fields and checks their lengths.
    pub(crate) fn decode(&self) -> Result<Decoded, VaultError> {
        let wrapped_key = STANDARD
            .decode(self.wrapped_key.trim())
            .map_err(|_| VaultError::Malformed("the wrapped key is not valid base64".into()))?;
        if wrapped_key.len() != WRAPPED_LEN {
            return Err(VaultError::Malformed(format!(
                "the wrapped key must be {WRAPPED_LEN} bytes, found {}",
                wrapped_key.len()
            )));
        }
        let ciphertext = STANDARD
            .decode(self.ciphertext.trim())
            .map_err(|_| VaultError::Malformed("the ciphertext is not valid base64".into()))?;
        if ciphertext.len() < NONCE_LEN + TAG_LEN {
            return Err(VaultError::Malformed(format!(
                "the ciphertext must be at least {} bytes, found {}",
                NONCE_LEN + TAG_LEN,
                ciphertext.len()
            )));
        }
        Ok(Decoded {
            wrapped_key,
            ciphertext,
        })
    }
}

/// Associated data binding a wrapped DEK to its record and KEK version.
fn dek_aad(kek_version: u32, record_id: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(DEK_AAD_LABEL.len() + 1 + 4 + record_id.len());
    aad.extend_from_slice(DEK_AAD_LABEL);
    aad.push(0);
    aad.extend_from_slice(&kek_version.to_be_bytes());
    aad.extend_from_slice(record_id.as_bytes());
    aad
}

/// Associated data binding a ciphertext to its record.
fn data_aad(record_id: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(DATA_AAD_LABEL.len() + 1 + record_id.len());
    aad.extend_from_slice(DATA_AAD_LABEL);
    aad.push(0);
    aad.extend_from_slice(record_id.as_bytes());
    aad
}

fn cipher(key: &[u8; KEY_LEN]) -> Aes256Gcm {
    Aes256Gcm::new(key.into())
}

/// nonce || AES-256-GCM(key, plaintext, aad), with a fresh random nonce.
fn encrypt(
    key: &[u8; KEY_LEN],
    aad: &[u8],
    plaintext: &[u8],
    rng: &dyn Rng,
) -> Result<Vec<u8>, VaultError> {
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill(&mut nonce);
    let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let tag = cipher(key).encrypt_in_place_detached((&nonce).into(), aad, &mut out[NONCE_LEN..]);
    match tag {
        Ok(tag) => {
            out.extend_from_slice(&tag);
            Ok(out)
        }
        Err(_) => {
            // Only reachable for plaintexts beyond AES-GCM's limit (~64 GiB);
            // the buffer may still hold plaintext, so wipe it.
            out.zeroize();
            Err(VaultError::Malformed(
                "the plaintext is too large to seal".into(),
            ))
        }
    }
}

/// Decrypts nonce || ciphertext || tag. Any authentication failure is
/// [`VaultError::Tampered`].
fn decrypt(
    key: &[u8; KEY_LEN],
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, VaultError> {
    let Some((nonce, rest)) = sealed.split_first_chunk::<NONCE_LEN>() else {
        return Err(VaultError::Tampered);
    };
    let Some((body, tag)) = rest.split_last_chunk::<TAG_LEN>() else {
        return Err(VaultError::Tampered);
    };
    let mut plaintext = Zeroizing::new(body.to_vec());
    cipher(key)
        .decrypt_in_place_detached(nonce.into(), aad, &mut plaintext, tag.into())
        .map_err(|_| VaultError::Tampered)?;
    Ok(plaintext)
}

/// Wraps `dek` under `kek` for `record_id`; returns the base64 wrapped key.
pub(crate) fn wrap_dek(
    kek: &Key256,
    kek_version: u32,
    record_id: &str,
    dek: &Key256,
    rng: &dyn Rng,
) -> Result<String, VaultError> {
    let wrapped = encrypt(
        kek.expose(),
        &dek_aad(kek_version, record_id),
        dek.expose(),
        rng,
    )?;
    Ok(STANDARD.encode(wrapped))
}

/// Unwraps a decoded wrapped key.
pub(crate) fn unwrap_dek(
    kek: &Key256,
    kek_version: u32,
    record_id: &str,
    wrapped: &[u8],
) -> Result<Key256, VaultError> {
    let dek = decrypt(kek.expose(), &dek_aad(kek_version, record_id), wrapped)?;
    Key256::from_slice(&dek).ok_or(VaultError::Tampered)
}

/// Encrypts `plaintext` under `dek` for `record_id`; returns base64.
pub(crate) fn encrypt_data(
    dek: &Key256,
    record_id: &str,
    plaintext: &[u8],
    rng: &dyn Rng,
) -> Result<String, VaultError> {
    let ciphertext = encrypt(dek.expose(), &data_aad(record_id), plaintext, rng)?;
    Ok(STANDARD.encode(ciphertext))
}

/// Decrypts a decoded ciphertext under `dek` for `record_id`.
pub(crate) fn decrypt_data(
    dek: &Key256,
    record_id: &str,
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, VaultError> {
    decrypt(dek.expose(), &data_aad(record_id), ciphertext)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counting_rng() -> impl Fn(&mut [u8]) {
        let state = std::cell::Cell::new(1u8);
        move |buf: &mut [u8]| {
            for b in buf.iter_mut() {
                state.set(state.get().wrapping_mul(31).wrapping_add(7));
                *b = state.get();
            }
        }
    }

    #[test]
    fn aad_layout_is_stable() {
        assert_eq!(
            dek_aad(2, "pm_1"),
            b"billpay-vault/v1/dek\0\0\0\0\x02pm_1".to_vec()
        );
        assert_eq!(data_aad("pm_1"), b"billpay-vault/v1/data\0pm_1".to_vec());
    }

    #[test]
    fn encrypt_layout_and_round_trip() {
        let rng = counting_rng();
        let key = Key256::generate(&rng);
        let sealed = encrypt(key.expose(), b"aad", b"hello", &rng).unwrap();
        assert_eq!(sealed.len(), NONCE_LEN + 5 + TAG_LEN);
        assert_eq!(
            &decrypt(key.expose(), b"aad", &sealed).unwrap()[..],
            b"hello"
        );
        assert_eq!(
            decrypt(key.expose(), b"other", &sealed).unwrap_err(),
            VaultError::Tampered
        );
        assert_eq!(
            decrypt(key.expose(), b"aad", &sealed[..20]).unwrap_err(),
            VaultError::Tampered
        );
    }
}

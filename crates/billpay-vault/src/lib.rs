//! The crypto core of billpay's card-and-bank vault (PCI DSS requirement 3).
//!
//! This crate owns:
//!
//! * the **key hierarchy**: versioned 256-bit key-encryption keys (KEKs), one of
//!   them active, held in a [`Keyring`] that is loaded from a file or an
//!   environment variable and never from the database; plus a separate 256-bit
//!   fingerprint key that is not rotated with the KEKs;
//! * **envelope encryption**: every record gets its own random 256-bit data key
//!   (DEK). The plaintext is encrypted with AES-256-GCM under the DEK and the DEK
//!   is wrapped with AES-256-GCM under the active KEK. Both layers bind the
//!   record id as associated data (the wrap also binds the KEK version), so a
//!   [`Sealed`] value cannot be moved to another record. [`Keyring::rewrap`]
//!   moves a record to the active KEK without touching its ciphertext;
//! * **keyed fingerprints** (PCI DSS 3.5.1.1): [`Keyring::fingerprint`] is an
//!   HMAC-SHA256 under the fingerprint key, so the platform can recognise the
//!   same card or bank account without decrypting anything;
//! * the **keyring file** format ([`Keyring::from_toml`], [`Keyring::to_toml`])
//!   and its atomic, owner-only storage ([`Keyring::load`], [`Keyring::save`]).
//!
//! It is pure: no SQL, no HTTP, no services, no async, no clock and no logging.
//! It must not depend on the store, the services or the HTTP layer; they depend
//! on it. Randomness is injected through [`Rng`] (billpay's Random seam), so the
//! caller decides where secure random bytes come from.
//!
//! Secret key material lives in types that are zeroized on drop, and no key type
//! prints key bytes in its `Debug` output. Decrypted plaintext is returned as
//! [`zeroize::Zeroizing`] so it is wiped when the caller drops it.
//!
//! ```
//! use billpay_vault::Keyring;
//!
//! // In production, fill from the operating system's random source.
//! let counter = std::cell::Cell::new(0u8);
//! let rng = |buf: &mut [u8]| {
//!     for b in buf.iter_mut() {
//!         counter.set(counter.get().wrapping_add(37));
//!         *b = counter.get();
//!     }
//! };
//! let keyring = Keyring::generate(&rng);
//! let sealed = keyring.seal("pm_1", b"4111111111111111", &rng)?;
//! assert_eq!(&keyring.open("pm_1", &sealed)?[..], b"4111111111111111");
//! assert!(keyring.open("pm_2", &sealed).is_err());
//! # Ok::<(), billpay_vault::VaultError>(())
//! ```

#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![warn(missing_docs)]

mod envelope;
mod error;
mod file;
mod key;
mod keyring;

pub use envelope::Sealed;
pub use error::VaultError;
pub use keyring::Keyring;

/// Where secure random bytes come from (billpay's Random seam).
///
/// Implementations must fill the whole buffer with bytes from a
/// cryptographically secure source. Keys and nonces are drawn from it, so a
/// predictable source breaks the vault.
pub trait Rng {
    /// Fills `buf` with secure random bytes.
    fn fill(&self, buf: &mut [u8]);
}

impl<F: Fn(&mut [u8])> Rng for F {
    fn fill(&self, buf: &mut [u8]) {
        self(buf)
    }
}

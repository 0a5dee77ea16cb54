//! The vault's errors. None of them carries key material or plaintext.

/// Everything that can go wrong in the vault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    /// The sealed record names a KEK version that the keyring does not hold.
    #[error("the keyring has no key version {0}: it was retired or the wrong keyring is loaded")]
    UnknownKeyVersion(u32),
    /// Authentication failed: the record was altered, belongs to another record
    /// id, or was sealed under a different key.
    #[error(
        "the stored payment method could not be decrypted: it was altered or belongs to another record"
    )]
    Tampered,
    /// The keyring text or file is not a valid keyring.
    #[error("the keyring is invalid: {0}")]
    InvalidKeyring(String),
    /// The active KEK version cannot be retired.
    #[error("the active key version {0} cannot be retired")]
    RetireActive(u32),
    /// Reading or writing the keyring file failed.
    #[error("keyring file {path}: {message}")]
    Io {
        /// The keyring file's path.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The sealed record is not shaped like one (bad base64, wrong length), or
    /// the plaintext is too large to seal.
    #[error("malformed sealed record: {0}")]
    Malformed(String),
}

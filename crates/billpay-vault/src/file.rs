//! The keyring file: TOML text, read and written without echoing key material
//! in any error, saved atomically with owner-only permissions.
//!
//! ```toml
//! # (header comment)
//! active = 2
//! fingerprint_key = "<base64 32 bytes>"
//!
//! [keys]
//! 1 = "<base64 32 bytes>"
//! 2 = "<base64 32 bytes>"
//! ```

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use zeroize::{Zeroize, Zeroizing};

use crate::key::Key256;
use crate::{Keyring, VaultError};

const HEADER: &str = "\
# billpay vault keyring
#
# This file holds the master keys that protect every stored card and bank
# account number:
#   [keys]           the key-encryption keys, one per version (256-bit, base64);
#   active           the version new records are sealed under;
#   fingerprint_key  the key for fingerprints that recognise a card or bank
#                    account without decrypting it (never rotated).
#
# KEEP IT SECRET. Anyone with this file and a copy of the database can read every
# stored card and bank account number. Readable by the billpay service user only
# (mode 0600); never commit it, never store it in the database or next to
# database backups.
#
# KEEP IT BACKED UP, separately from the database. If it is lost, every stored
# payment method is lost with it. Back it up again after every rotation, and do
# not retire a version while records are still sealed under it (rewrap first).
";

const TOP_LEVEL_FIELDS: [&str; 3] = ["active", "fingerprint_key", "keys"];

fn invalid(message: impl Into<String>) -> VaultError {
    VaultError::InvalidKeyring(message.into())
}

/// 1-based line of `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()
        .iter()
        .take(offset)
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

impl Keyring {
    /// Parses the keyring file format, checking that every key is 32 bytes of
    /// base64, that versions are whole numbers from 1, that the active version
    /// exists and that no key is used twice. Errors say what is wrong and where
    /// but never echo key material.
    pub fn from_toml(text: &str) -> Result<Keyring, VaultError> {
        let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let at = e
                .span()
                .map(|span| format!(" at line {}", line_of(text, span.start)))
                .unwrap_or_default();
            invalid(format!("not valid TOML{at}: {}", e.message().trim()))
        })?;
        let result = keyring_from_table(&table);
        wipe_table(&mut table);
        result
    }

    /// The keyring in the file format, with a header comment saying what it is
    /// and that it must be kept secret and backed up. The text holds every key:
    /// treat it as secret.
    pub fn to_toml(&self) -> String {
        let mut out = String::with_capacity(self.toml_capacity());
        self.write_toml(&mut out);
        out
    }

    fn toml_capacity(&self) -> usize {
        HEADER.len() + 128 + (self.keks().len() + 1) * 64
    }

    fn write_toml(&self, out: &mut String) {
        out.push_str(HEADER);
        out.push('\n');
        out.push_str(&format!("active = {}\n", self.active_version()));
        out.push_str("fingerprint_key = \"");
        self.fingerprint_key().append_base64(out);
        out.push_str("\"\n\n[keys]\n");
        for (version, key) in self.keks() {
            out.push_str(&format!("{version} = \""));
            key.append_base64(out);
            out.push_str("\"\n");
        }
    }

    /// Reads and parses a keyring file.
    pub fn load(path: &Path) -> Result<Keyring, VaultError> {
        let text = Zeroizing::new(fs::read_to_string(path).map_err(|e| io_error(path, &e))?);
        Keyring::from_toml(&text).map_err(|e| match e {
            VaultError::InvalidKeyring(m) => {
                VaultError::InvalidKeyring(format!("{}: {m}", path.display()))
            }
            other => other,
        })
    }

    /// Writes the keyring file atomically (a temporary file in the same folder,
    /// flushed, then renamed over `path`, then the folder flushed), with mode
    /// 0600 on Unix. On error the old file, if any, is left as it was.
    pub fn save(&self, path: &Path) -> Result<(), VaultError> {
        let mut text = Zeroizing::new(String::with_capacity(self.toml_capacity()));
        self.write_toml(&mut text);
        write_atomically(path, text.as_bytes())
    }
}

fn keyring_from_table(table: &toml::Table) -> Result<Keyring, VaultError> {
    for name in table.keys() {
        if !TOP_LEVEL_FIELDS.contains(&name.as_str()) {
            return Err(invalid(format!(
                "unknown field `{name}` (expected active, fingerprint_key and [keys])"
            )));
        }
    }

    let active = match table.get("active") {
        None => return Err(invalid("missing `active` (the active key version)")),
        Some(toml::Value::Integer(v)) => parse_version(*v)
            .ok_or_else(|| invalid("`active` must be a key version from 1 to 4294967295"))?,
        Some(_) => return Err(invalid("`active` must be a whole number (a key version)")),
    };

    let fingerprint_key = match table.get("fingerprint_key") {
        None => return Err(invalid("missing `fingerprint_key`")),
        Some(toml::Value::String(s)) => {
            Key256::from_base64(s).map_err(|m| invalid(format!("`fingerprint_key` {m}")))?
        }
        Some(_) => return Err(invalid("`fingerprint_key` must be a base64 string")),
    };

    let keys = match table.get("keys") {
        None => {
            return Err(invalid(
                "missing [keys]: at least one key-encryption key is required",
            ));
        }
        Some(toml::Value::Table(keys)) => keys,
        Some(_) => return Err(invalid("`keys` must be a table of version = \"base64\"")),
    };
    let mut keks = BTreeMap::new();
    for (name, value) in keys {
        let version = name
            .parse::<u32>()
            .ok()
            .filter(|v| *v >= 1 && v.to_string() == *name)
            .ok_or_else(|| {
                invalid(format!(
                    "[keys] entry `{name}` is not a key version (a whole number from 1)"
                ))
            })?;
        let key = match value {
            toml::Value::String(s) => {
                Key256::from_base64(s).map_err(|m| invalid(format!("key version {version} {m}")))?
            }
            _ => {
                return Err(invalid(format!(
                    "key version {version} must be a base64 string"
                )));
            }
        };
        keks.insert(version, Box::new(key));
    }

    Keyring::from_parts(keks, active, Box::new(fingerprint_key))
}

fn parse_version(v: i64) -> Option<u32> {
    u32::try_from(v).ok().filter(|v| *v >= 1)
}

/// Overwrites every string in the parsed table (best effort: the parser's own
/// temporaries are out of reach).
fn wipe_table(table: &mut toml::Table) {
    for (_, value) in table.iter_mut() {
        wipe_value(value);
    }
}

fn wipe_value(value: &mut toml::Value) {
    match value {
        toml::Value::String(s) => s.zeroize(),
        toml::Value::Table(t) => wipe_table(t),
        toml::Value::Array(items) => items.iter_mut().for_each(wipe_value),
        _ => {}
    }
}

fn io_error(path: &Path, error: &io::Error) -> VaultError {
    VaultError::Io {
        path: path.display().to_string(),
        message: error.to_string(),
    }
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), VaultError> {
    let file_name = path.file_name().ok_or_else(|| VaultError::Io {
        path: path.display().to_string(),
        message: "is not a file path".into(),
    })?;
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };

    let (temp_path, mut file) = create_temp(dir, file_name).map_err(|e| io_error(path, &e))?;
    let written = (|| {
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temp_path, path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&temp_path);
        return Err(io_error(path, &e));
    }
    sync_dir(dir).map_err(|e| VaultError::Io {
        path: path.display().to_string(),
        message: format!("written, but its folder could not be flushed to disk: {e}"),
    })
}

/// Creates a new, empty, owner-only temporary file next to the target.
fn create_temp(dir: &Path, file_name: &std::ffi::OsStr) -> io::Result<(PathBuf, File)> {
    let pid = std::process::id();
    let mut last_error = None;
    for _ in 0..64 {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut name = std::ffi::OsString::from(".");
        name.push(file_name);
        name.push(format!(".{pid}.{n}.tmp"));
        let temp_path = dir.join(name);
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        match options.open(&temp_path) {
            Ok(file) => {
                // The umask can only remove bits; make the mode exact anyway.
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt as _;
                    if let Err(e) = file.set_permissions(fs::Permissions::from_mode(0o600)) {
                        drop(file);
                        let _ = fs::remove_file(&temp_path);
                        return Err(e);
                    }
                }
                return Ok((temp_path, file));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_error = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::other("could not create a temporary file")))
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_numbers() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 4), 3);
    }

    #[test]
    fn versions() {
        assert_eq!(parse_version(0), None);
        assert_eq!(parse_version(-1), None);
        assert_eq!(parse_version(1), Some(1));
        assert_eq!(parse_version(i64::from(u32::MAX) + 1), None);
    }
}

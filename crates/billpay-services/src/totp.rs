//! Authenticator-app codes (TOTP, RFC 6238) for customers and staff: HMAC-SHA1, 6 digits,
//! 30-second steps, one step of clock drift allowed each way, every code accepted at most once.
//!
//! The secret (160 random bits from the injected source) is sealed by the vault like a saved
//! card, with the row id as associated data, and is readable only inside these functions. An
//! owner ("customer:<id>", "staff:<id>") first gets a *pending* secret, shown once as a QR code
//! and as text; it becomes *active* with its first right code, replacing any earlier one.
//! `last_step` in the row, moved by a conditional UPDATE, makes a code that worked once
//! useless afterwards on every instance (RFC 6238 section 5.2).

use billpay_domain::SecretString;
use billpay_store::totp::{self as q, TotpSecretRow};
use billpay_vault::Sealed;
use jiff::SignedDuration;
use totp_rs::{Algorithm, Builder, Totp};

use crate::{Billpay, ServiceError};

/// Bytes of a new secret (RFC 4226 recommends 160 bits).
const SECRET_BYTES: usize = 20;
/// Seconds per step.
const STEP_SECS: u64 = 30;
/// How long a QR code shown stays good for its first code.
pub const PENDING_TTL: SignedDuration = SignedDuration::from_mins(30);

/// What an owner needs to add the account to an authenticator app. `Debug` shows nothing.
pub struct Enrolment {
    /// The secret in base32, grouped by four for typing.
    pub secret_text: SecretString,
    /// The `otpauth://` link the QR code holds.
    pub uri: SecretString,
    /// The QR code as an inline `<svg>` element (no XML prolog), with an accessible name.
    pub qr_svg: String,
}

impl std::fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Enrolment(..)")
    }
}

/// The result of checking a code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TotpCheck {
    Accepted,
    /// Not the code of the current, previous or next step.
    Wrong,
    /// The right code, already used once.
    Replayed,
    /// The owner has no active authenticator.
    NotEnrolled,
}

fn totp(secret: Vec<u8>, issuer: &str, label: &str) -> Result<Totp, ServiceError> {
    // The otpauth label is "issuer:account"; neither part may hold a colon.
    let clean = |s: &str| s.replace(':', " ").trim().to_string();
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(STEP_SECS)
        .with_secret(secret)
        .with_issuer(Some(clean(issuer)))
        .with_account_name(clean(label))
        .build()
        .map_err(|e| ServiceError::Store(billpay_store::StoreError::Config(format!("TOTP: {e}"))))
}

/// The step a code matches at `unix_secs` (current, previous or next), if any. Anything but
/// 6 digits (spaces and dashes aside) matches nothing.
fn matching_step(t: &Totp, code: &str, unix_secs: u64) -> Option<u64> {
    let digits: String = code
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    if digits.len() != 6 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    t.check(&digits, unix_secs)
}

/// The 6-digit code of `secret` at `unix_secs` (demo mode and tests show it).
pub fn code_at(secret: &[u8], unix_secs: u64) -> String {
    match totp(secret.to_vec(), "billpay", "code") {
        Ok(t) => t.generate(unix_secs).to_string(),
        Err(_) => String::new(),
    }
}

/// The secret from its text as shown on the enrolment page (base32, spaces and case ignored),
/// as an authenticator app reads it.
pub fn secret_from_text(text: &str) -> Option<Vec<u8>> {
    let compact: String = text
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    totp_rs::Secret::try_from_base32(compact)
        .ok()
        .map(|s| s.as_ref().to_vec())
}

/// Base32 without padding, grouped by four characters.
fn grouped_base32(secret: &[u8]) -> String {
    let text = totp_rs::Secret::from(secret.to_vec()).to_base32();
    text.trim_end_matches('=')
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// An inline SVG QR code of `text`.
fn qr_svg(text: &str) -> Result<String, ServiceError> {
    let code = qrcode::QrCode::new(text.as_bytes())
        .map_err(|e| ServiceError::Store(billpay_store::StoreError::Config(format!("QR: {e}"))))?;
    let svg = code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    let start = svg.find("<svg").unwrap_or(0);
    Ok(svg[start..].replacen(
        "<svg ",
        "<svg role=\"img\" aria-label=\"QR code to add this account to an authenticator app\" ",
        1,
    ))
}

fn unix_secs(micros: i64) -> u64 {
    u64::try_from(micros.div_euclid(1_000_000)).unwrap_or(0)
}

fn corrupt(what: &str) -> ServiceError {
    ServiceError::Store(billpay_store::StoreError::Corrupt(format!(
        "authenticator secret: {what}"
    )))
}

impl Billpay {
    fn open_totp(&self, row: &TotpSecretRow) -> Result<zeroize::Zeroizing<Vec<u8>>, ServiceError> {
        let sealed = Sealed {
            kek_version: u32::try_from(row.kek_version).map_err(|_| corrupt("key version"))?,
            wrapped_key: row.wrapped_key.clone(),
            ciphertext: row.ciphertext.clone(),
        };
        self.vault()?
            .open(&row.id, &sealed)
            .map_err(|_| corrupt("it does not open with the vault's keys"))
    }

    fn enrolment(&self, secret: &[u8], label: &str) -> Result<Enrolment, ServiceError> {
        let t = totp(secret.to_vec(), &self.config().biller.name, label)?;
        let uri = t
            .to_url()
            .map_err(|e| corrupt(&format!("no otpauth link: {e}")))?;
        Ok(Enrolment {
            secret_text: SecretString::new(grouped_base32(secret)),
            qr_svg: qr_svg(&uri)?,
            uri: SecretString::new(uri),
        })
    }

    /// Starts (or restarts) adding an authenticator for `owner`: a new pending secret, shown
    /// under `label` (the email or staff name the app lists it by).
    pub async fn totp_begin(&self, owner: &str, label: &str) -> Result<Enrolment, ServiceError> {
        let vault = self.vault()?;
        let mut secret = zeroize::Zeroizing::new(vec![0u8; SECRET_BYTES]);
        self.random.fill(&mut secret);
        let id = self.new_id("totp");
        let rng = |b: &mut [u8]| self.random.fill(b);
        let sealed = vault
            .keyring()
            .seal(&id, &secret, &rng)
            .map_err(|e| corrupt(&format!("sealing failed: {e}")))?;
        let now = self.clock.now_micros();
        let row = TotpSecretRow {
            id,
            owner: owner.to_string(),
            state: "pending".into(),
            kek_version: i64::from(sealed.kek_version),
            wrapped_key: sealed.wrapped_key,
            ciphertext: sealed.ciphertext,
            last_step: 0,
            created_at: now,
        };
        let stale = now - PENDING_TTL.as_micros() as i64;
        self.store
            .write(move |c| {
                Box::pin(async move {
                    q::delete_stale_pending(c, stale).await?;
                    q::insert_pending(c, &row).await
                })
            })
            .await?;
        self.enrolment(&secret, label)
    }

    /// The pending secret of `owner` again (to show the same QR code after a wrong code), if
    /// it is still good.
    pub async fn totp_pending(
        &self,
        owner: &str,
        label: &str,
    ) -> Result<Option<Enrolment>, ServiceError> {
        let row = {
            let mut c = self.store.read_conn().await?;
            q::secret(&mut c, owner, "pending").await?
        };
        let now = self.clock.now_micros();
        match row.filter(|r| r.created_at > now - PENDING_TTL.as_micros() as i64) {
            Some(r) => Ok(Some(self.enrolment(&self.open_totp(&r)?, label)?)),
            None => Ok(None),
        }
    }

    /// Finishes adding an authenticator: `code` must be the pending secret's current code.
    /// Then that secret is the owner's only active one. False: wrong code (or nothing pending).
    pub async fn totp_confirm(&self, owner: &str, code: &str) -> Result<bool, ServiceError> {
        let row = {
            let mut c = self.store.read_conn().await?;
            q::secret(&mut c, owner, "pending").await?
        };
        let now = self.clock.now_micros();
        let Some(row) = row.filter(|r| r.created_at > now - PENDING_TTL.as_micros() as i64) else {
            return Ok(false);
        };
        let secret = self.open_totp(&row)?;
        let t = totp(secret.to_vec(), &self.config().biller.name, "code")?;
        let Some(step) = matching_step(&t, code, unix_secs(now)) else {
            return Ok(false);
        };
        let step = i64::try_from(step).map_err(|_| corrupt("step"))?;
        let owner = owner.to_string();
        let id = row.id.clone();
        Ok(self
            .store
            .write(move |c| Box::pin(async move { q::activate(c, &owner, &id, step).await }))
            .await?)
    }

    /// Checks a code against the owner's active authenticator; a right code is used up.
    pub async fn totp_verify(&self, owner: &str, code: &str) -> Result<TotpCheck, ServiceError> {
        let row = {
            let mut c = self.store.read_conn().await?;
            q::secret(&mut c, owner, "active").await?
        };
        let Some(row) = row else {
            return Ok(TotpCheck::NotEnrolled);
        };
        let secret = self.open_totp(&row)?;
        let t = totp(secret.to_vec(), &self.config().biller.name, "code")?;
        let now = self.clock.now_micros();
        let Some(step) = matching_step(&t, code, unix_secs(now)) else {
            return Ok(TotpCheck::Wrong);
        };
        let step = i64::try_from(step).map_err(|_| corrupt("step"))?;
        let id = row.id.clone();
        let fresh = self
            .store
            .write(move |c| Box::pin(async move { q::use_step(c, &id, step).await }))
            .await?;
        Ok(if fresh {
            TotpCheck::Accepted
        } else {
            TotpCheck::Replayed
        })
    }

    /// Whether the owner has an active authenticator.
    pub async fn totp_enrolled(&self, owner: &str) -> Result<bool, ServiceError> {
        let mut c = self.store.read_conn().await?;
        Ok(q::secret(&mut c, owner, "active").await?.is_some())
    }

    /// The current code of the owner's active authenticator, for `serve --demo` only (a demo
    /// user has no phone with the app). None if not enrolled.
    pub async fn totp_demo_code(&self, owner: &str) -> Result<Option<String>, ServiceError> {
        let row = {
            let mut c = self.store.read_conn().await?;
            q::secret(&mut c, owner, "active").await?
        };
        match row {
            Some(r) => {
                let secret = self.open_totp(&r)?;
                Ok(Some(code_at(&secret, unix_secs(self.clock.now_micros()))))
            }
            None => Ok(None),
        }
    }

    /// Removes the owner's authenticator (active and pending).
    pub async fn totp_remove(&self, owner: &str) -> Result<u64, ServiceError> {
        let owner = owner.to_string();
        Ok(self
            .store
            .write(move |c| Box::pin(async move { q::delete_owner(c, &owner).await }))
            .await?)
    }

    /// Re-wraps every authenticator secret's data key under the active key version. Returns
    /// how many.
    pub async fn rewrap_totp_secrets(&self) -> Result<u64, ServiceError> {
        let vault = self.vault()?;
        vault.reload();
        let keyring = vault.keyring();
        let active = i64::from(keyring.active_version());
        let mut done = 0u64;
        loop {
            let batch = {
                let mut c = self.store.read_conn().await?;
                q::under_other_keys(&mut c, active, 100).await?
            };
            if batch.is_empty() {
                break;
            }
            let mut updates = Vec::with_capacity(batch.len());
            for row in &batch {
                let sealed = Sealed {
                    kek_version: u32::try_from(row.kek_version).unwrap_or(0),
                    wrapped_key: row.wrapped_key.clone(),
                    ciphertext: row.ciphertext.clone(),
                };
                let rng = |buf: &mut [u8]| self.random.fill(buf);
                let new = keyring
                    .rewrap(&row.id, &sealed, &rng)
                    .map_err(|e| corrupt(&format!("re-wrap failed: {e}")))?;
                updates.push((row.id.clone(), row.wrapped_key.clone(), new));
            }
            let n = self
                .store
                .write(move |c| {
                    Box::pin(async move {
                        let mut n = 0u64;
                        for (id, old, new) in &updates {
                            if q::rewrap(c, id, old, i64::from(new.kek_version), &new.wrapped_key)
                                .await?
                            {
                                n += 1;
                            }
                        }
                        Ok::<_, billpay_store::StoreError>(n)
                    })
                })
                .await?;
            if n == 0 {
                // Every row of the batch changed under us; read again.
                tokio::task::yield_now().await;
            }
            done += n;
        }
        Ok(done)
    }

    /// Authenticator secrets per key version: (version, count).
    pub async fn totp_per_key_version(&self) -> Result<Vec<(i64, i64)>, ServiceError> {
        let mut c = self.store.read_conn().await?;
        Ok(q::per_key_version(&mut c).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 6238 appendix B, SHA-1 column (8 digits there; the last 6 are ours).
    #[test]
    fn codes_match_the_rfc_test_vectors() {
        let secret = b"12345678901234567890";
        assert_eq!(code_at(secret, 59), "287082");
        assert_eq!(code_at(secret, 1_111_111_109), "081804");
        assert_eq!(code_at(secret, 1_234_567_890), "005924");
        assert_eq!(code_at(secret, 2_000_000_000), "279037");
    }

    #[test]
    fn a_code_matches_its_step_and_its_neighbours_only() {
        let secret = b"12345678901234567890".to_vec();
        let t = totp(secret, "Demo: Power", "a@b.example").unwrap();
        let now = 1_234_567_890u64;
        let code = t.generate(now).to_string();
        assert_eq!(matching_step(&t, &code, now), Some(now / 30));
        assert_eq!(matching_step(&t, &code, now + 30), Some(now / 30));
        assert_eq!(matching_step(&t, &code, now - 30), Some(now / 30));
        assert_eq!(matching_step(&t, &code, now + 90), None);
        let spaced = format!("{} {}", &code[..3], &code[3..]);
        assert_eq!(matching_step(&t, &spaced, now), Some(now / 30));
        assert_eq!(matching_step(&t, "12345", now), None);
        assert_eq!(matching_step(&t, "abcdef", now), None);
        assert_eq!(matching_step(&t, "", now), None);
    }

    #[test]
    fn the_qr_code_is_an_inline_svg_with_a_name() {
        let svg = qr_svg("otpauth://totp/x:y?secret=ABC").unwrap();
        assert!(svg.starts_with("<svg role=\"img\" aria-label="));
        assert!(!svg.contains("<?xml"));
    }

    #[test]
    fn the_secret_text_is_grouped_base32_and_reads_back() {
        let text = grouped_base32(b"12345678901234567890");
        assert_eq!(text, "GEZD GNBV GY3T QOJQ GEZD GNBV GY3T QOJQ");
        assert_eq!(
            secret_from_text(&text.to_lowercase()).as_deref(),
            Some(&b"12345678901234567890"[..])
        );
        assert_eq!(secret_from_text("not base32!"), None);
    }
}

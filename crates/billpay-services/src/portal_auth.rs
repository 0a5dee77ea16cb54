//! Registered portal customers: enrolment, sign-in with a password and a one-time code sent by
//! email, sign-out everywhere.
//!
//! Passwords are hashed with argon2id (salt from the injected random source) and checked
//! against a list of common passwords. A sign-in is two steps: the password, then a 6-digit
//! code emailed through the outbox; only after the code does the session get the customer, and
//! under a new id. An unknown email and a wrong password get the same answer after the same
//! work (an argon2 verification against a fixed hash). Failed passwords are counted per
//! customer and lock the sign-in for a while; each code takes a few attempts and lives
//! minutes. The code is kept only as a hash; its email's outbox row is overwritten once the
//! code is used, replaced or expired.

use std::sync::OnceLock;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use billpay_domain::{AccountNumber, PostalCode, SecretString};
use billpay_store::portal::{self as q, PortalCodeRow, PortalCustomerRow};
use billpay_store::queries;
use billpay_store::rows::OutboxRow;
use jiff::SignedDuration;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::portal::{FieldError, PortalSession, SecondFactor, SessionToken};
use crate::totp::TotpCheck;
use crate::{Billpay, Payment, ServiceError};

/// Where a one-time code goes.
#[derive(Clone, Debug)]
pub(crate) enum CodeTo {
    Email(String),
    Text(String),
}

/// The owner of a customer's authenticator secret.
pub fn customer_owner(customer_id: &str) -> String {
    format!("customer:{customer_id}")
}

/// "your phone ending in 34": enough to recognise the number, not to learn it.
pub fn phone_hint(e164: &str) -> String {
    let digits: Vec<char> = e164.chars().filter(char::is_ascii_digit).collect();
    let last: String = digits[digits.len().saturating_sub(2)..].iter().collect();
    format!("your phone ending in {last}")
}

/// Shortest password accepted, in characters.
pub const PASSWORD_CHARS_MIN: usize = 12;
/// Longest password accepted, in characters (argon2 takes any length; this bounds the work).
pub const PASSWORD_CHARS_MAX: usize = 128;
/// How long a sign-in code is good for.
pub const CODE_TTL: SignedDuration = SignedDuration::from_mins(10);
/// Wrong entries a code takes before it is void.
pub const CODE_ATTEMPTS_MAX: i64 = 5;
/// Wrong passwords in a row before the sign-in locks.
pub const SIGNIN_FAILURES_MAX: i64 = 10;
/// How long a locked sign-in stays locked.
pub const SIGNIN_LOCK: SignedDuration = SignedDuration::from_mins(15);
/// How long a password reset link works.
pub const RESET_TTL: SignedDuration = SignedDuration::from_mins(30);
/// Outbox rows of used or expired codes redacted per sweep.
const REDACT_BATCH: i64 = 200;

/// Words every password list starts with; a password that is one of these with digits and
/// symbols around it (`Password1234!`) is refused. Compiled in from `common-passwords.txt`.
const COMMON: &str = include_str!("common-passwords.txt");

fn common_words() -> &'static std::collections::HashSet<&'static str> {
    static SET: OnceLock<std::collections::HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| {
        COMMON
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    })
}

/// What is wrong with a new password, in the customer's words; None if it is fine.
pub fn password_problem(password: &str, email: &str, account_number: &str) -> Option<String> {
    let chars = password.chars().count();
    if chars < PASSWORD_CHARS_MIN {
        return Some(format!(
            "Use at least {PASSWORD_CHARS_MIN} characters. A few unrelated words make a strong password that is easy to remember."
        ));
    }
    if chars > PASSWORD_CHARS_MAX {
        return Some(format!("Use at most {PASSWORD_CHARS_MAX} characters."));
    }
    let lower = password.to_lowercase();
    let letters: String = lower.chars().filter(|c| c.is_alphabetic()).collect();
    let distinct: std::collections::HashSet<char> = lower.chars().collect();
    let words = common_words();
    let is_sequence = {
        let b = lower.as_bytes();
        b.windows(2).all(|w| w[1] == w[0].wrapping_add(1))
            || b.windows(2).all(|w| w[0] == w[1].wrapping_add(1))
    };
    if words.contains(lower.as_str())
        || words.contains(letters.as_str())
        || letters.is_empty()
        || distinct.len() <= 3
        || is_sequence
    {
        return Some(
            "This password is on the lists attackers try first. Choose something less common."
                .into(),
        );
    }
    let local = email.split('@').next().unwrap_or("").to_lowercase();
    if (local.len() >= 4 && lower.contains(&local))
        || (!account_number.is_empty() && lower.contains(account_number))
    {
        return Some("Do not use your email address or account number in your password.".into());
    }
    None
}

fn argon2() -> Argon2<'static> {
    // OWASP's argon2id settings: 19 MiB, 2 passes, 1 lane.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub(crate) fn hash_password(password: &str, salt: [u8; 16]) -> Result<String, ServiceError> {
    argon2()
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| ServiceError::invalid("password", "This password cannot be used."))
}

pub(crate) fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(h) => argon2().verify_password(password.as_bytes(), &h).is_ok(),
        Err(_) => false,
    }
}

/// [`verify_password`] on a blocking thread: Argon2 takes tens of milliseconds of CPU, which
/// must not stall the async workers serving other requests.
pub(crate) async fn verify_password_off_thread(password: &str, phc: String) -> bool {
    let pw = SecretString::new(password.to_string());
    tokio::task::spawn_blocking(move || verify_password(pw.expose_secret(), &phc))
        .await
        .unwrap_or(false)
}

/// A hash no password matches, verified when there is no customer so both answers cost the
/// same.
pub(crate) fn decoy_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        hash_password("no customer has this password", [7u8; 16]).unwrap_or_default()
    })
}

fn code_hash(code_id: &str, code: &str) -> String {
    hex::encode(Sha256::digest(format!("{code_id}:{code}").as_bytes()))
}

/// The questions a customer may choose from: facts that are not on a bill or a public
/// profile.
pub const SECURITY_QUESTIONS: &[&str] = &[
    "What was the name of your first pet?",
    "In what city did your parents meet?",
    "What was the make of your first car?",
    "What is the name of the street you grew up on?",
    "What was your childhood nickname?",
    "What is the middle name of your oldest sibling?",
];

/// An answer as compared: lower case, with every space removed ("New  York" = "newyork").
pub fn normalize_answer(answer: &str) -> String {
    answer
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Lower-case, trimmed; None unless it looks like an address.
pub fn normalize_email(input: &str) -> Option<String> {
    let e = input.trim().to_lowercase();
    let (local, domain) = e.split_once('@')?;
    let ok = !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && e.len() <= 254
        && !e.chars().any(|c| c.is_whitespace() || c == '<' || c == '>');
    ok.then_some(e)
}

/// The message for enrolment details that match no account: the same whichever was wrong.
pub const ENROL_NO_MATCH: &str = "We could not match these details to an account. Check the account number, service ZIP code and the email address we have on file for you.";

/// A signed-in customer's home page.
#[derive(Clone, Debug)]
pub struct Dashboard {
    pub summary: crate::AccountSummary,
    pub payments: Vec<Payment>,
    pub autopay: Option<crate::autopay::Autopay>,
    pub email: String,
}

/// Payments the dashboard lists.
pub const DASHBOARD_PAYMENTS_MAX: i64 = 25;

impl Billpay {
    /// Creates a sign-in for an account. The account must match the number, service ZIP and,
    /// when the account has one, the email on file; a mismatch of any of them gets one
    /// answer. Returns the customer id, or what is wrong with each field.
    pub async fn portal_enrol(
        &self,
        number: &AccountNumber,
        zip: &PostalCode,
        email: &str,
        password: &SecretString,
    ) -> Result<Result<String, Vec<FieldError>>, ServiceError> {
        let mut errors = Vec::new();
        let email = normalize_email(email);
        if email.is_none() {
            errors.push(FieldError {
                field: "email",
                message: "Enter an email address, like name@example.com.".into(),
            });
        }
        if let Some(p) = password_problem(
            password.expose_secret(),
            email.as_deref().unwrap_or(""),
            number.as_str(),
        ) {
            errors.push(FieldError {
                field: "password",
                message: p,
            });
        }
        let Some(email) = email.filter(|_| errors.is_empty()) else {
            return Ok(Err(errors));
        };
        let found = self.portal_find_account(number, zip).await?;
        let summary = match found {
            Some(s)
                if s.account
                    .email
                    .as_deref()
                    .is_none_or(|on_file| on_file.trim().eq_ignore_ascii_case(&email)) =>
            {
                s
            }
            _ => {
                return Ok(Err(vec![FieldError {
                    field: "account_number",
                    message: ENROL_NO_MATCH.into(),
                }]));
            }
        };
        let mut salt = [0u8; 16];
        self.random.fill(&mut salt);
        let pw = SecretString::new(password.expose_secret().to_string());
        let hash = tokio::task::spawn_blocking(move || hash_password(pw.expose_secret(), salt))
            .await
            .map_err(|_| ServiceError::invalid("password", "This password cannot be used."))??;
        let now = self.clock.now_micros();
        let row = PortalCustomerRow {
            id: self.new_id("cus"),
            account_id: summary.account.id.clone(),
            email: email.clone(),
            password_hash: hash,
            failed_signins: 0,
            locked_until: None,
            created_at: now,
            updated_at: now,
            second_factor: "email".into(),
            sms_phone: None,
        };
        let notice = OutboxRow {
            id: self.new_id("msg"),
            kind: "email.portal_enrolled".into(),
            dedupe_key: format!("portal_enrolled:{}", row.id),
            recipient: summary
                .account
                .email
                .clone()
                .unwrap_or_else(|| email.clone()),
            payload_json: serde_json::json!({ "email": email }).to_string(),
            created_at: now,
            sent_at: None,
            attempts: 0,
        };
        let id = row.id.clone();
        let created = self
            .store
            .write(move |c| {
                Box::pin(async move {
                    let created = q::insert_customer(c, &row).await?;
                    if created {
                        queries::insert_outbox(c, &notice).await?;
                    }
                    Ok::<_, billpay_store::StoreError>(created)
                })
            })
            .await?;
        if !created {
            return Ok(Err(vec![FieldError {
                field: "email",
                message: "This account or this email address already has an online sign-in. Sign in instead.".into(),
            }]));
        }
        Ok(Ok(id))
    }

    /// Checks an email and password. On success emails a sign-in code and returns the
    /// customer to ask it of; an unknown email and a wrong password both give None.
    pub async fn portal_check_password(
        &self,
        email: &str,
        password: &SecretString,
    ) -> Result<Option<String>, ServiceError> {
        let email = normalize_email(email).unwrap_or_default();
        let row = {
            let mut c = self.store.read_conn().await?;
            q::customer_by_email(&mut c, &email).await?
        };
        let phc = row
            .as_ref()
            .map(|r| r.password_hash.clone())
            .unwrap_or_else(|| decoy_hash().to_string());
        let matches = verify_password_off_thread(password.expose_secret(), phc).await;
        let locked = || ServiceError::Conflict {
            code: "signin_locked",
            message: format!(
                "Too many wrong passwords. Sign-in is paused for {} minutes; you can still pay without signing in.",
                SIGNIN_LOCK.as_mins()
            ),
        };
        let Some(customer) = row else {
            return match self
                .unknown_signin_failed("portal", &email, SIGNIN_FAILURES_MAX, SIGNIN_LOCK)
                .await?
            {
                Some(_) => Err(locked()),
                None => Ok(None),
            };
        };
        let now = self.clock.now_micros();
        if customer.locked_until.is_some_and(|until| until > now) {
            return Err(locked());
        }
        let id = customer.id.clone();
        if !matches {
            let lock_until = now + SIGNIN_LOCK.as_micros() as i64;
            self.store
                .write(move |c| {
                    Box::pin(async move {
                        q::record_failed_signin(c, &id, SIGNIN_FAILURES_MAX, lock_until, now).await
                    })
                })
                .await?;
            metrics::counter!("billpay_portal_signins_total", "outcome" => "bad_password")
                .increment(1);
            return Ok(None);
        }
        self.store
            .write(move |c| Box::pin(async move { q::clear_failed_signins(c, &id, now).await }))
            .await?;
        // An authenticator app needs nothing sent.
        if SecondFactor::from_column(&customer.second_factor) != SecondFactor::Totp {
            self.portal_send_code(&customer).await?;
        }
        Ok(Some(customer.id))
    }

    /// Whether `password` is the customer's current password (to confirm a sensitive change).
    pub(crate) async fn portal_password_is(
        &self,
        customer_id: &str,
        password: &SecretString,
    ) -> Result<bool, ServiceError> {
        let phc = {
            let mut c = self.store.read_conn().await?;
            q::customer(&mut c, customer_id).await?
        }
        .ok_or(ServiceError::NotFound { what: "customer" })?
        .password_hash;
        Ok(verify_password_off_thread(password.expose_secret(), phc).await)
    }

    /// Emails a new sign-in code (any earlier one stops working).
    pub async fn portal_resend_code(&self, customer_id: &str) -> Result<(), ServiceError> {
        let row = {
            let mut c = self.store.read_conn().await?;
            q::customer(&mut c, customer_id).await?
        };
        let row = row.ok_or(ServiceError::NotFound { what: "customer" })?;
        if SecondFactor::from_column(&row.second_factor) == SecondFactor::Totp {
            // The app makes its own codes; nothing is sent.
            return Ok(());
        }
        self.portal_send_code(&row).await
    }

    async fn portal_send_code(&self, customer: &PortalCustomerRow) -> Result<(), ServiceError> {
        let to = match (
            SecondFactor::from_column(&customer.second_factor),
            &customer.sms_phone,
        ) {
            (SecondFactor::Sms, Some(phone)) => CodeTo::Text(phone.clone()),
            _ => CodeTo::Email(customer.email.clone()),
        };
        self.portal_send_code_to(&customer.id, "signin", to).await
    }

    /// Sends a new one-time code for `purpose` (`signin`, or `phone` to prove a number) by
    /// email or text; any earlier live code of that purpose stops working.
    pub(crate) async fn portal_send_code_to(
        &self,
        customer_id: &str,
        purpose: &'static str,
        to: CodeTo,
    ) -> Result<(), ServiceError> {
        // Rejection sampling: every 6-digit code equally likely.
        let code = loop {
            let n = self.random.next_u64();
            if n < u64::MAX - (u64::MAX % 1_000_000) {
                break format!("{:06}", n % 1_000_000);
            }
        };
        let now = self.clock.now_micros();
        let code_id = self.new_id("code");
        let minutes = CODE_TTL.as_mins();
        let (kind, recipient, payload) = match to {
            CodeTo::Email(email) => (
                "email.signin_code",
                email,
                serde_json::json!({ "code": code, "minutes": minutes }),
            ),
            CodeTo::Text(phone) => (
                "sms.signin_code",
                phone,
                serde_json::json!({ "message": format!(
                    "Your code is {code}. It works once, for {minutes} minutes. We never ask for it by phone, chat or email."
                ) }),
            ),
        };
        let outbox = OutboxRow {
            id: self.new_id("msg"),
            kind: kind.into(),
            dedupe_key: format!("signin_code:{code_id}"),
            recipient,
            payload_json: payload.to_string(),
            created_at: now,
            sent_at: None,
            attempts: 0,
        };
        let row = PortalCodeRow {
            id: code_id.clone(),
            customer_id: customer_id.to_string(),
            purpose: purpose.into(),
            code_hash: code_hash(&code_id, &code),
            outbox_id: Some(outbox.id.clone()),
            attempts: 0,
            expires_at: now + CODE_TTL.as_micros() as i64,
            used_at: None,
            created_at: now,
        };
        let customer_id = customer_id.to_string();
        self.store
            .write(move |c| {
                Box::pin(async move {
                    q::end_codes_of(c, &customer_id, purpose, now).await?;
                    queries::insert_outbox(c, &outbox).await?;
                    q::insert_code(c, &row).await
                })
            })
            .await?;
        self.portal_redact_codes().await?;
        Ok(())
    }

    /// Overwrites the emails of codes used, replaced or expired. Returns how many.
    pub async fn portal_redact_codes(&self) -> Result<usize, ServiceError> {
        let now = self.clock.now_micros();
        let code_gone =
            serde_json::json!({ "code": "(used or expired)", "minutes": CODE_TTL.as_mins() })
                .to_string();
        let link_gone =
            serde_json::json!({ "url": "(used or expired)", "minutes": RESET_TTL.as_mins() })
                .to_string();
        let text_gone =
            serde_json::json!({ "message": "(a one-time code, used or expired)" }).to_string();
        Ok(self
            .store
            .write(move |c| {
                Box::pin(async move {
                    let rows = q::codes_to_redact(c, now, REDACT_BATCH).await?;
                    for (code_id, outbox_id, purpose, kind) in &rows {
                        let redacted = if purpose == "reset" {
                            &link_gone
                        } else if kind.starts_with(crate::sms::KIND_PREFIX) {
                            &text_gone
                        } else {
                            &code_gone
                        };
                        q::redact_outbox_payload(c, outbox_id, redacted, now).await?;
                        q::forget_code_outbox(c, code_id, now).await?;
                    }
                    Ok::<_, billpay_store::StoreError>(rows.len())
                })
            })
            .await?)
    }

    /// Checks the code of a sign-in in progress (emailed, texted, or from the authenticator
    /// app). Right: the session becomes the customer's, under a new id. Wrong: why, in the
    /// customer's words.
    pub async fn portal_check_code(
        &self,
        session: &PortalSession,
        code: &str,
    ) -> Result<Result<(SessionToken, PortalSession), String>, ServiceError> {
        let Some(customer_id) = session.data.pending_customer.clone() else {
            return Ok(Err("Sign in with your email and password first.".into()));
        };
        let customer = {
            let mut c = self.store.read_conn().await?;
            q::customer(&mut c, &customer_id).await?
        };
        let customer = customer.ok_or(ServiceError::NotFound { what: "customer" })?;
        let checked = if SecondFactor::from_column(&customer.second_factor) == SecondFactor::Totp {
            self.portal_check_app_code(&customer, code).await?
        } else {
            self.portal_check_sent_code(&customer.id, "signin", code)
                .await?
        };
        if let Err(why) = checked {
            return Ok(Err(why));
        }
        self.portal_redact_codes().await?;
        Ok(Ok(self.portal_complete_signin(session, &customer).await?))
    }

    /// Checks a code of the authenticator app. Wrong codes count as failed sign-ins and lock
    /// the sign-in like wrong passwords.
    async fn portal_check_app_code(
        &self,
        customer: &PortalCustomerRow,
        code: &str,
    ) -> Result<Result<(), String>, ServiceError> {
        let now = self.clock.now_micros();
        if customer.locked_until.is_some_and(|until| until > now) {
            return Ok(Err(format!(
                "Too many wrong codes. Sign-in is paused for {} minutes.",
                SIGNIN_LOCK.as_mins()
            )));
        }
        let why = match self
            .totp_verify(&customer_owner(&customer.id), code)
            .await?
        {
            TotpCheck::Accepted => {
                let id = customer.id.clone();
                self.store
                    .write(move |c| {
                        Box::pin(async move { q::clear_failed_signins(c, &id, now).await })
                    })
                    .await?;
                return Ok(Ok(()));
            }
            TotpCheck::Wrong => {
                "That code is not right. Enter the 6-digit code your authenticator app shows now."
            }
            TotpCheck::Replayed => {
                "That code was already used. Wait for the next code in your authenticator app."
            }
            TotpCheck::NotEnrolled => {
                "No authenticator app is set up for this account. Answer your security questions, or call us."
            }
        };
        let id = customer.id.clone();
        let lock_until = now + SIGNIN_LOCK.as_micros() as i64;
        self.store
            .write(move |c| {
                Box::pin(async move {
                    q::record_failed_signin(c, &id, SIGNIN_FAILURES_MAX, lock_until, now).await
                })
            })
            .await?;
        metrics::counter!("billpay_portal_signins_total", "outcome" => "bad_code").increment(1);
        Ok(Err(why.into()))
    }

    /// Checks a code that was emailed or texted for `purpose`, using it up when right.
    pub(crate) async fn portal_check_sent_code(
        &self,
        customer_id: &str,
        purpose: &'static str,
        code: &str,
    ) -> Result<Result<(), String>, ServiceError> {
        let live = {
            let mut c = self.store.read_conn().await?;
            q::live_code(&mut c, customer_id, purpose).await?
        };
        let now = self.clock.now_micros();
        let Some(live) = live.filter(|l| l.expires_at > now) else {
            return Ok(Err("This code has expired. Send a new code.".into()));
        };
        if live.attempts >= CODE_ATTEMPTS_MAX {
            let id = live.id.clone();
            self.store
                .write(move |c| Box::pin(async move { q::end_code(c, &id, now).await }))
                .await?;
            return Ok(Err("Too many wrong codes. Send a new code.".into()));
        }
        let digits: String = code.chars().filter(|c| c.is_ascii_digit()).collect();
        let right = bool::from(
            code_hash(&live.id, &digits)
                .as_bytes()
                .ct_eq(live.code_hash.as_bytes()),
        );
        if !right {
            let id = live.id.clone();
            self.store
                .write(move |c| Box::pin(async move { q::bump_code_attempts(c, &id).await }))
                .await?;
            metrics::counter!("billpay_portal_signins_total", "outcome" => "bad_code").increment(1);
            return Ok(Err(
                "That code is not right. Check the newest message from us and try again.".into(),
            ));
        }
        let id = live.id.clone();
        let ended = self
            .store
            .write(move |c| Box::pin(async move { q::end_code(c, &id, now).await }))
            .await?;
        if !ended {
            return Ok(Err("This code was already used. Send a new code.".into()));
        }
        Ok(Ok(()))
    }

    /// The second factor passed: the session becomes the customer's, under a new id.
    async fn portal_complete_signin(
        &self,
        session: &PortalSession,
        customer: &PortalCustomerRow,
    ) -> Result<(SessionToken, PortalSession), ServiceError> {
        let account = {
            let mut c = self.store.read_conn().await?;
            queries::account_by_id(&mut c, &customer.account_id).await?
        }
        .ok_or(ServiceError::NotFound { what: "account" })?;
        let mut moved = session.clone();
        moved.data.pending_customer = None;
        moved.data.pending_factor = None;
        moved.data.pending_hint = None;
        moved.data.account_number = Some(account.account_number.clone());
        moved.data.checkout = None;
        let rotated = self
            .portal_rotate(
                &moved,
                Some(customer.account_id.clone()),
                Some(customer.id.clone()),
            )
            .await?;
        metrics::counter!("billpay_portal_signins_total", "outcome" => "signed_in").increment(1);
        Ok(rotated)
    }

    /// The signed-in customer's chosen security questions (the answers are not readable).
    pub async fn portal_my_security_questions(
        &self,
        session: &PortalSession,
    ) -> Result<Vec<String>, ServiceError> {
        let customer_id = session
            .customer_id
            .clone()
            .ok_or(ServiceError::NotFound { what: "customer" })?;
        let mut c = self.store.read_conn().await?;
        Ok(q::security_answers(&mut c, &customer_id)
            .await?
            .into_iter()
            .map(|r| r.question)
            .collect())
    }

    /// Sets the signed-in customer's two security questions (indexes into
    /// [`SECURITY_QUESTIONS`]) and answers; the answers are hashed with argon2id after
    /// normalizing (lower case, no spaces).
    pub async fn portal_set_security_questions(
        &self,
        session: &PortalSession,
        chosen: [(usize, &str); 2],
    ) -> Result<Result<(), Vec<FieldError>>, ServiceError> {
        let customer_id = session
            .customer_id
            .clone()
            .ok_or(ServiceError::NotFound { what: "customer" })?;
        let mut errors = Vec::new();
        if chosen[0].0 == chosen[1].0 {
            errors.push(FieldError {
                field: "question_2",
                message: "Choose two different questions.".into(),
            });
        }
        for (i, (q_index, answer)) in chosen.iter().enumerate() {
            if *q_index >= SECURITY_QUESTIONS.len() {
                errors.push(FieldError {
                    field: if i == 0 { "question_1" } else { "question_2" },
                    message: "Choose a question from the list.".into(),
                });
            }
            if normalize_answer(answer).chars().count() < 3 {
                errors.push(FieldError {
                    field: if i == 0 { "answer_1" } else { "answer_2" },
                    message: "Give an answer of at least 3 letters or digits.".into(),
                });
            }
        }
        if !errors.is_empty() {
            return Ok(Err(errors));
        }
        let now = self.clock.now_micros();
        let mut rows = Vec::new();
        for (seq, (q_index, answer)) in chosen.iter().enumerate() {
            let mut salt = [0u8; 16];
            self.random.fill(&mut salt);
            let normalized = SecretString::new(normalize_answer(answer));
            let hash = tokio::task::spawn_blocking(move || {
                hash_password(normalized.expose_secret(), salt)
            })
            .await
            .map_err(|_| ServiceError::invalid("answer", "This answer cannot be used."))??;
            rows.push(q::SecurityAnswerRow {
                customer_id: customer_id.clone(),
                seq: seq as i64 + 1,
                question: SECURITY_QUESTIONS[*q_index].to_string(),
                answer_hash: hash,
                created_at: now,
            });
        }
        self.store
            .write(move |c| {
                Box::pin(async move { q::replace_security_answers(c, &customer_id, &rows).await })
            })
            .await?;
        Ok(Ok(()))
    }

    /// The questions of the customer whose sign-in waits for its second factor.
    pub async fn portal_pending_questions(
        &self,
        session: &PortalSession,
    ) -> Result<Vec<String>, ServiceError> {
        let Some(customer_id) = session.data.pending_customer.clone() else {
            return Ok(Vec::new());
        };
        let mut c = self.store.read_conn().await?;
        Ok(q::security_answers(&mut c, &customer_id)
            .await?
            .into_iter()
            .map(|r| r.question)
            .collect())
    }

    /// The recovery path: both security answers right (case and spaces ignored) stand in for
    /// the emailed code. Wrong answers count as failed sign-ins (and lock it like passwords).
    pub async fn portal_check_answers(
        &self,
        session: &PortalSession,
        answers: &[String],
    ) -> Result<Result<(SessionToken, PortalSession), String>, ServiceError> {
        let Some(customer_id) = session.data.pending_customer.clone() else {
            return Ok(Err("Sign in with your email and password first.".into()));
        };
        let (customer, stored) = {
            let mut c = self.store.read_conn().await?;
            (
                q::customer(&mut c, &customer_id).await?,
                q::security_answers(&mut c, &customer_id).await?,
            )
        };
        let customer = customer.ok_or(ServiceError::NotFound { what: "customer" })?;
        let now = self.clock.now_micros();
        if customer.locked_until.is_some_and(|until| until > now) {
            return Ok(Err(format!(
                "Too many wrong answers. Sign-in is paused for {} minutes.",
                SIGNIN_LOCK.as_mins()
            )));
        }
        if stored.len() != 2 || answers.len() != 2 {
            return Ok(Err(
                "No security questions are set for this account. Send a new code, or call us."
                    .into(),
            ));
        }
        let pairs: Vec<(String, String)> = stored
            .iter()
            .zip(answers)
            .map(|(r, a)| (r.answer_hash.clone(), normalize_answer(a)))
            .collect();
        let all_right = tokio::task::spawn_blocking(move || {
            // Both are checked, whatever the first gives: the same work either way.
            pairs
                .iter()
                .map(|(hash, answer)| verify_password(answer, hash))
                .fold(true, |ok, this| ok & this)
        })
        .await
        .unwrap_or(false);
        if !all_right {
            let id = customer.id.clone();
            let lock_until = now + SIGNIN_LOCK.as_micros() as i64;
            self.store
                .write(move |c| {
                    Box::pin(async move {
                        q::record_failed_signin(c, &id, SIGNIN_FAILURES_MAX, lock_until, now).await
                    })
                })
                .await?;
            return Ok(Err("The answers do not match the ones you gave us.".into()));
        }
        // The emailed code is no longer needed.
        let id = customer.id.clone();
        self.store
            .write(move |c| {
                Box::pin(async move {
                    q::end_codes_of(c, &id, "signin", now).await?;
                    q::clear_failed_signins(c, &id, now).await
                })
            })
            .await?;
        self.portal_redact_codes().await?;
        Ok(Ok(self.portal_complete_signin(session, &customer).await?))
    }

    /// Emails a password reset link to the customer with this email, if there is one (the
    /// caller answers the same either way). `base_url` is the site's public address; the link
    /// is `<base_url>/reset/<code id>.<token>` and works once, for [`RESET_TTL`].
    ///
    /// Returns at once: the lookup and the email are made after, so how long the answer takes
    /// does not say whether the address has a sign-in.
    pub async fn portal_request_reset(
        &self,
        email: &str,
        base_url: &str,
    ) -> Result<(), ServiceError> {
        let app = self.clone();
        let (email, base_url) = (email.to_string(), base_url.to_string());
        tokio::spawn(async move {
            if let Err(e) = app.portal_send_reset(&email, &base_url).await {
                tracing::error!(error = %e, "a password reset email could not be made");
            }
        });
        Ok(())
    }

    async fn portal_send_reset(&self, email: &str, base_url: &str) -> Result<(), ServiceError> {
        let email = normalize_email(email).unwrap_or_default();
        let row = {
            let mut c = self.store.read_conn().await?;
            q::customer_by_email(&mut c, &email).await?
        };
        let Some(customer) = row else {
            return Ok(());
        };
        let mut raw = zeroize::Zeroizing::new([0u8; 32]);
        self.random.fill(raw.as_mut());
        let token = zeroize::Zeroizing::new(hex::encode(raw.as_ref()));
        let now = self.clock.now_micros();
        let code_id = self.new_id("rst");
        let url = format!(
            "{}/reset/{code_id}.{}",
            base_url.trim_end_matches('/'),
            token.as_str()
        );
        let outbox = OutboxRow {
            id: self.new_id("msg"),
            kind: "email.password_reset".into(),
            dedupe_key: format!("password_reset:{code_id}"),
            recipient: customer.email.clone(),
            payload_json: serde_json::json!({ "url": url, "minutes": RESET_TTL.as_mins() })
                .to_string(),
            created_at: now,
            sent_at: None,
            attempts: 0,
        };
        let row = PortalCodeRow {
            id: code_id.clone(),
            customer_id: customer.id.clone(),
            purpose: "reset".into(),
            code_hash: code_hash(&code_id, &token),
            outbox_id: Some(outbox.id.clone()),
            attempts: 0,
            expires_at: now + RESET_TTL.as_micros() as i64,
            used_at: None,
            created_at: now,
        };
        let customer_id = customer.id.clone();
        self.store
            .write(move |c| {
                Box::pin(async move {
                    q::end_codes_of(c, &customer_id, "reset", now).await?;
                    queries::insert_outbox(c, &outbox).await?;
                    q::insert_code(c, &row).await
                })
            })
            .await?;
        self.portal_redact_codes().await?;
        Ok(())
    }

    /// The live reset code a link names (`<code id>.<token>`), if the link is good.
    async fn reset_code(&self, link: &str) -> Result<Option<PortalCodeRow>, ServiceError> {
        let Some((id, token)) = link.split_once('.') else {
            return Ok(None);
        };
        let row = {
            let mut c = self.store.read_conn().await?;
            q::code(&mut c, id).await?
        };
        let now = self.clock.now_micros();
        Ok(row.filter(|r| {
            r.purpose == "reset"
                && r.used_at.is_none()
                && r.expires_at > now
                && bool::from(
                    code_hash(id, token)
                        .as_bytes()
                        .ct_eq(r.code_hash.as_bytes()),
                )
        }))
    }

    /// Whether a reset link still works.
    pub async fn portal_reset_link_ok(&self, link: &str) -> Result<bool, ServiceError> {
        Ok(self.reset_code(link).await?.is_some())
    }

    /// Sets a new password through a reset link: the link is used up, and every session of
    /// the customer ends. Returns what is wrong with the password, or that the link is dead.
    pub async fn portal_reset_password(
        &self,
        link: &str,
        password: &SecretString,
    ) -> Result<Result<(), FieldError>, ServiceError> {
        let dead = || FieldError {
            field: "password",
            message: "This link has expired or was already used. Ask for a new one.".into(),
        };
        let Some(code) = self.reset_code(link).await? else {
            return Ok(Err(dead()));
        };
        let (customer, account_number) = {
            let mut c = self.store.read_conn().await?;
            let customer = q::customer(&mut c, &code.customer_id)
                .await?
                .ok_or(ServiceError::NotFound { what: "customer" })?;
            let number = queries::account_by_id(&mut c, &customer.account_id)
                .await?
                .map(|a| a.account_number)
                .unwrap_or_default();
            (customer, number)
        };
        if let Some(p) =
            password_problem(password.expose_secret(), &customer.email, &account_number)
        {
            return Ok(Err(FieldError {
                field: "password",
                message: p,
            }));
        }
        let mut salt = [0u8; 16];
        self.random.fill(&mut salt);
        let pw = SecretString::new(password.expose_secret().to_string());
        let hash = tokio::task::spawn_blocking(move || hash_password(pw.expose_secret(), salt))
            .await
            .map_err(|_| ServiceError::invalid("password", "This password cannot be used."))??;
        let now = self.clock.now_micros();
        let (code_id, customer_id) = (code.id.clone(), customer.id.clone());
        let changed = self
            .store
            .write(move |c| {
                Box::pin(async move {
                    if !q::end_code(c, &code_id, now).await? {
                        return Ok::<_, billpay_store::StoreError>(false);
                    }
                    q::set_password(c, &customer_id, &hash, now).await?;
                    q::delete_customer_sessions(c, &customer_id).await?;
                    Ok(true)
                })
            })
            .await?;
        if !changed {
            return Ok(Err(dead()));
        }
        self.portal_redact_codes().await?;
        Ok(Ok(()))
    }

    /// Remembers which customer a session is asking the code of.
    pub async fn portal_await_code(
        &self,
        session: &mut PortalSession,
        customer_id: String,
    ) -> Result<(), ServiceError> {
        let customer = {
            let mut c = self.store.read_conn().await?;
            q::customer(&mut c, &customer_id).await?
        }
        .ok_or(ServiceError::NotFound { what: "customer" })?;
        let factor = SecondFactor::from_column(&customer.second_factor);
        session.data.pending_hint = match (factor, &customer.sms_phone) {
            (SecondFactor::Sms, Some(phone)) => Some(phone_hint(phone)),
            _ => None,
        };
        session.data.pending_factor = Some(factor);
        session.data.pending_customer = Some(customer_id);
        self.portal_save(session).await
    }

    /// Ends every session of the customer, on every device. Returns how many.
    pub async fn portal_sign_out_everywhere(&self, customer_id: &str) -> Result<u64, ServiceError> {
        let id = customer_id.to_string();
        Ok(self
            .store
            .write(move |c| Box::pin(async move { q::delete_customer_sessions(c, &id).await }))
            .await?)
    }

    /// The signed-in customer's account at a glance, with its payment history.
    pub async fn portal_dashboard(
        &self,
        session: &PortalSession,
    ) -> Result<Dashboard, ServiceError> {
        let (Some(customer_id), Some(number)) = (&session.customer_id, session.verified_account())
        else {
            return Err(ServiceError::NotFound { what: "customer" });
        };
        let customer = {
            let mut c = self.store.read_conn().await?;
            q::customer(&mut c, customer_id).await?
        }
        .ok_or(ServiceError::NotFound { what: "customer" })?;
        let summary = self.account_summary(&number).await?;
        if summary.account.id != customer.account_id {
            return Err(ServiceError::NotFound { what: "customer" });
        }
        Ok(Dashboard {
            payments: self
                .account_payments(&number, None, DASHBOARD_PAYMENTS_MAX)
                .await?,
            autopay: self.autopay(&number).await?,
            email: customer.email,
            summary,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_short_and_personal_passwords_are_refused() {
        for bad in [
            "short",
            "Password1234!",
            "123456789012",
            "qwertyuiop12",
            "aaaaaaaaaaaaaaa",
            "abcdefghijklmn",
            "iloveyou2026!!",
            "grace.hopper-1906",
            "my100000000017pw",
        ] {
            assert!(
                password_problem(bad, "grace.hopper@example.com", "100000000017").is_some(),
                "{bad}"
            );
        }
        for good in [
            "correct horse battery",
            "Riverbend-Otter-Lamp-9",
            "tea kettle umbrella",
        ] {
            assert_eq!(
                password_problem(good, "grace.hopper@example.com", "100000000017"),
                None,
                "{good}"
            );
        }
    }

    #[test]
    fn argon2id_hashes_verify_and_differ_by_salt() {
        let a = hash_password("correct horse battery", [1; 16]).unwrap();
        let b = hash_password("correct horse battery", [2; 16]).unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b);
        assert!(verify_password("correct horse battery", &a));
        assert!(!verify_password("correct horse batterY", &a));
        assert!(!verify_password("anything", decoy_hash()));
    }

    #[test]
    fn emails_are_normalized() {
        assert_eq!(
            normalize_email("  Grace@Example.COM "),
            Some("grace@example.com".into())
        );
        assert_eq!(normalize_email("grace"), None);
        assert_eq!(normalize_email("grace@localhost"), None);
        assert_eq!(normalize_email("a b@example.com"), None);
    }
}

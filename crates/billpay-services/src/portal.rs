//! The customer portal's sessions and its guest quick-pay flow.
//!
//! A session lives in the database (`portal_sessions`); the browser holds only a random token
//! whose SHA-256 is the row's key. Every session has a CSRF synchronizer token. Sessions end
//! after [`PortalConfig::session_idle`] without a request or [`PortalConfig::session_absolute`]
//! after they started, whichever comes first; the id changes whenever the session gains a
//! privilege (a verified account, a sign-in), so an id planted before cannot be used after.
//!
//! Quick pay: account number and service ZIP → amount → card or bank account → review → pay.
//! The lookup gives one answer, after the same work, whether the account does not exist or
//! the ZIP is wrong (no account enumeration). Card and bank digits entered for the payment are
//! sealed with the vault under the checkout's id and destroyed when the payment completes; the
//! session's readable state holds only brand and last four. Each review form carries its own
//! idempotency key, so a double click or a resubmitted form pays once.

use billpay_domain::{
    AccountNumber, BankAccountNumber, BankAccountType, CardExpiry, CardNumber, Channel, Cvc,
    Language, Money, PostalCode, RoutingNumber,
};
use billpay_store::portal::{self as q, PortalSessionRow};
use billpay_store::queries;
use billpay_vault::Sealed;
use jiff::SignedDuration;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::payments::{Idempotency, NewMethod, PaymentRequest, PaymentResult};
use crate::{AccountSummary, Billpay, Payment, ServiceError};

/// Payments and receipts a session remembers (the newest are kept).
pub const SESSION_REMEMBERED_MAX: usize = 20;
/// Longest a session's last-seen time may lag behind, to spare a write per page view.
const TOUCH_EVERY: SignedDuration = SignedDuration::from_secs(60);
/// Expired sessions deleted per sweep.
pub const SESSION_SWEEP_BATCH: i64 = 500;

/// The portal's settings: branding and session lifetimes.
#[derive(Clone, Debug)]
pub struct PortalConfig {
    /// The biller's main colour (`#rrggbb`): header, buttons, links.
    pub brand_color: String,
    /// When representatives answer the phone, as shown to customers.
    pub support_hours: String,
    /// A session unused this long ends.
    pub session_idle: SignedDuration,
    /// A session ends this long after it started, however busy.
    pub session_absolute: SignedDuration,
    /// Serve `/demo/mailbox` (every email in the outbox, rendered). `serve --demo` only.
    pub demo_mailbox: bool,
    /// Requests per client address per window.
    pub limits: crate::limits::PortalLimits,
    /// The header a trusted proxy puts the client's address in (lower case); None: the
    /// connection's address.
    pub client_ip_header: Option<String>,
    /// Hours (start, end) representatives answer live chat in the biller's time zone; None:
    /// around the clock.
    pub chat_hours: Option<(u8, u8)>,
}

impl Default for PortalConfig {
    fn default() -> Self {
        PortalConfig {
            brand_color: "#0b5394".into(),
            support_hours: "Monday to Saturday, 8 am to 8 pm".into(),
            session_idle: SignedDuration::from_mins(20),
            session_absolute: SignedDuration::from_hours(12),
            demo_mailbox: false,
            limits: crate::limits::PortalLimits::default(),
            client_ip_header: None,
            chat_hours: None,
        }
    }
}

/// Whether `s` is a `#rrggbb` colour (it is written into the stylesheet).
pub fn is_hex_color(s: &str) -> bool {
    s.len() == 7 && s.starts_with('#') && s[1..].chars().all(|c| c.is_ascii_hexdigit())
}

/// The session's flow state, stored readable: nothing secret.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SessionData {
    /// The account a guest verified (account number and ZIP).
    pub account_number: Option<String>,
    pub checkout: Option<Checkout>,
    /// Payments made in this session: (idempotency key of the form, payment id).
    pub paid: Vec<(String, String)>,
    /// A sign-in past its password, waiting for the emailed code (customer id).
    #[serde(default)]
    pub pending_customer: Option<String>,
    /// How that sign-in's second factor is proven, and where a code went ("your phone
    /// ending in 34"): what the code page says.
    #[serde(default)]
    pub pending_factor: Option<SecondFactor>,
    #[serde(default)]
    pub pending_hint: Option<String>,
    /// A number being proven for texted sign-in codes (E.164).
    #[serde(default)]
    pub pending_phone: Option<String>,
    /// The live-chat conversation this browser started.
    #[serde(default)]
    pub chat: Option<String>,
    /// The chat pay request the checkout in progress answers.
    #[serde(default)]
    pub pay_request: Option<String>,
}

/// How a registered customer proves the second factor at sign-in.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SecondFactor {
    /// A code emailed to the address on file.
    Email,
    /// A code texted to a number proven with a code.
    Sms,
    /// An authenticator app (TOTP).
    Totp,
}

impl SecondFactor {
    pub fn as_str(self) -> &'static str {
        match self {
            SecondFactor::Email => "email",
            SecondFactor::Sms => "sms",
            SecondFactor::Totp => "totp",
        }
    }

    /// The stored column; anything unknown falls back to email codes.
    pub fn from_column(s: &str) -> SecondFactor {
        match s {
            "sms" => SecondFactor::Sms,
            "totp" => SecondFactor::Totp,
            _ => SecondFactor::Email,
        }
    }
}

/// A quick payment being put together.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Checkout {
    /// Associated data of the sealed digits; a new checkout for every new method.
    pub id: String,
    pub amount_minor: Option<i64>,
    /// "Visa ending in 4242": what the review page shows.
    pub method_description: Option<String>,
    pub method_kind: Option<String>,
}

/// A portal session as the channel sees it.
#[derive(Clone)]
pub struct PortalSession {
    /// SHA-256 (hex) of the browser's token.
    pub id: String,
    pub csrf_token: String,
    pub account_id: Option<String>,
    pub customer_id: Option<String>,
    pub data: SessionData,
    sealed: Option<Sealed>,
    pub created_at: i64,
    pub last_seen_at: i64,
}

impl std::fmt::Debug for PortalSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortalSession")
            .field("account_id", &self.account_id)
            .field("customer_id", &self.customer_id)
            .finish_non_exhaustive()
    }
}

impl PortalSession {
    /// Whether `token` is this session's CSRF token (constant time).
    pub fn csrf_matches(&self, token: &str) -> bool {
        !token.is_empty() && bool::from(self.csrf_token.as_bytes().ct_eq(token.as_bytes()))
    }

    /// The payment made with the form whose key is `form_key`, if any.
    pub fn paid_with(&self, form_key: &str) -> Option<&str> {
        self.data
            .paid
            .iter()
            .find(|(k, _)| k == form_key)
            .map(|(_, p)| p.as_str())
    }

    pub fn verified_account(&self) -> Option<AccountNumber> {
        self.data
            .account_number
            .as_deref()
            .and_then(|n| AccountNumber::parse(n).ok())
    }

    fn from_row(r: PortalSessionRow) -> Result<PortalSession, ServiceError> {
        let data = serde_json::from_str(&r.data_json).unwrap_or_default();
        let sealed = match (
            r.sealed_kek_version,
            r.sealed_wrapped_key,
            r.sealed_ciphertext,
        ) {
            (Some(v), Some(wrapped_key), Some(ciphertext)) => Some(Sealed {
                kek_version: u32::try_from(v).map_err(|_| corrupt("key version"))?,
                wrapped_key,
                ciphertext,
            }),
            _ => None,
        };
        Ok(PortalSession {
            id: r.id,
            csrf_token: r.csrf_token,
            account_id: r.account_id,
            customer_id: r.customer_id,
            data,
            sealed,
            created_at: r.created_at,
            last_seen_at: r.last_seen_at,
        })
    }

    fn to_row(&self) -> PortalSessionRow {
        PortalSessionRow {
            id: self.id.clone(),
            csrf_token: self.csrf_token.clone(),
            account_id: self.account_id.clone(),
            customer_id: self.customer_id.clone(),
            data_json: serde_json::to_string(&self.data).unwrap_or_else(|_| "{}".into()),
            sealed_kek_version: self.sealed.as_ref().map(|s| i64::from(s.kek_version)),
            sealed_wrapped_key: self.sealed.as_ref().map(|s| s.wrapped_key.clone()),
            sealed_ciphertext: self.sealed.as_ref().map(|s| s.ciphertext.clone()),
            created_at: self.created_at,
            last_seen_at: self.last_seen_at,
        }
    }
}

fn corrupt(what: &str) -> ServiceError {
    ServiceError::Store(billpay_store::StoreError::Corrupt(format!(
        "portal session: {what}"
    )))
}

/// The browser's session token: the cookie's value. Never logged.
pub struct SessionToken(Zeroizing<String>);

impl SessionToken {
    pub(crate) fn from_hex(token: String) -> SessionToken {
        SessionToken(Zeroizing::new(token))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionToken(***)")
    }
}

fn session_id_of(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Card or bank digits typed for one payment: sealed between the method page and the pay
/// button, zeroized in memory.
#[derive(Default, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct EnteredMethod {
    pub kind: String,
    pub card_number: String,
    pub exp_month: String,
    pub exp_year: String,
    pub cvc: String,
    pub postal_code: String,
    pub routing_number: String,
    pub bank_account_number: String,
    pub account_type: String,
    pub holder_name: String,
    /// A saved method of the signed-in customer (`pm_…`), when `kind` is "saved".
    #[serde(default)]
    pub saved_token: String,
}

impl std::fmt::Debug for EnteredMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EnteredMethod({}, ***)", self.kind)
    }
}

/// A field that did not parse: the form's field name and what is wrong, for the customer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

fn field(field: &'static str, message: impl Into<String>) -> FieldError {
    FieldError {
        field,
        message: message.into(),
    }
}

impl EnteredMethod {
    /// Parses the digits into a payment method, or says what is wrong with each field.
    pub fn parse(&self, today: jiff::civil::Date) -> Result<NewMethod, Vec<FieldError>> {
        let mut errors = Vec::new();
        match self.kind.as_str() {
            "card" => {
                let number = match CardNumber::parse(&self.card_number) {
                    Ok(n) => Some(n),
                    Err(_) => {
                        errors.push(field(
                            "card_number",
                            "Enter the card number as it appears on the card (13 to 19 digits); this one is not a valid card number.",
                        ));
                        None
                    }
                };
                let month = self
                    .exp_month
                    .trim()
                    .parse::<u8>()
                    .ok()
                    .filter(|m| (1..=12).contains(m));
                if month.is_none() {
                    errors.push(field("exp_month", "Enter the expiration month as 1 to 12."));
                }
                let year = self
                    .exp_year
                    .trim()
                    .parse::<u16>()
                    .ok()
                    .map(|y| if y < 100 { 2000 + y } else { y });
                let expiry = match (month, year) {
                    (Some(m), Some(y)) => match CardExpiry::new(m, y) {
                        Ok(e) if e.is_expired(today) => {
                            errors.push(field("exp_year", "This card has expired."));
                            None
                        }
                        Ok(e) => Some(e),
                        Err(_) => {
                            errors.push(field(
                                "exp_year",
                                "Enter the expiration year as on the card, like 2029 or 29.",
                            ));
                            None
                        }
                    },
                    (Some(_), None) => {
                        errors.push(field(
                            "exp_year",
                            "Enter the expiration year as on the card, like 2029 or 29.",
                        ));
                        None
                    }
                    _ => None,
                };
                let cvc = number
                    .as_ref()
                    .and_then(|n| match Cvc::parse(&self.cvc, n.brand()) {
                        Ok(c) => Some(c),
                        Err(_) => {
                            errors.push(field(
                                "cvc",
                                format!(
                                    "Enter the {}-digit security code from the card.",
                                    n.brand().cvc_len()
                                ),
                            ));
                            None
                        }
                    });
                let postal_code = match PostalCode::parse(&self.postal_code) {
                    Ok(p) => Some(p),
                    Err(_) => {
                        errors.push(field(
                            "postal_code",
                            "Enter the billing ZIP code of the card (5 digits).",
                        ));
                        None
                    }
                };
                match (number, expiry, cvc, postal_code) {
                    (Some(number), Some(expiry), Some(cvc), Some(postal_code))
                        if errors.is_empty() =>
                    {
                        Ok(NewMethod::Card {
                            number,
                            expiry,
                            cvc,
                            postal_code: Some(postal_code),
                        })
                    }
                    _ => Err(errors),
                }
            }
            "saved" if !self.saved_token.is_empty() => Ok(NewMethod::Saved {
                token: self.saved_token.clone(),
            }),
            "ach" => {
                let routing = RoutingNumber::parse(&self.routing_number)
                    .map_err(|_| {
                        errors.push(field(
                            "routing_number",
                            "Enter the 9-digit routing number from the bottom left of a check; this one is not a valid routing number.",
                        ))
                    })
                    .ok();
                let account = BankAccountNumber::parse(&self.bank_account_number)
                    .map_err(|_| {
                        errors.push(field(
                            "bank_account_number",
                            "Enter the account number from your check (4 to 17 digits).",
                        ))
                    })
                    .ok();
                let account_type = BankAccountType::parse(&self.account_type);
                if account_type.is_none() {
                    errors.push(field("account_type", "Choose checking or savings."));
                }
                let holder = self.holder_name.trim();
                if holder.is_empty() || holder.chars().count() > 100 {
                    errors.push(field("holder_name", "Enter the name on the bank account."));
                }
                match (routing, account, account_type) {
                    (Some(routing), Some(account), Some(account_type)) if errors.is_empty() => {
                        Ok(NewMethod::Ach {
                            routing,
                            account,
                            account_type,
                            holder_name: holder.to_string(),
                        })
                    }
                    _ => Err(errors),
                }
            }
            _ => Err(vec![field("method", "Choose a card or a bank account.")]),
        }
    }
}

/// What pressing "Pay" led to.
#[derive(Debug)]
pub enum PayOutcome {
    /// Paid (or, for a form sent again, paid before): show this payment.
    Paid(Payment),
    /// Declined: the payment, and why in the customer's words.
    Declined(Payment, billpay_domain::DeclineCode),
    /// The processor's answer was lost; the payment will be resolved. Show it as pending.
    InDoubt(Payment),
    /// The same amount was paid moments ago: ask before paying again.
    Duplicate { question: String },
}

impl Billpay {
    /// Starts a new, anonymous session.
    pub async fn portal_start_session(
        &self,
    ) -> Result<(SessionToken, PortalSession), ServiceError> {
        let (token, session) = self.portal_new_session(SessionData::default(), None, None);
        let row = session.to_row();
        self.store
            .write(move |c| Box::pin(async move { q::insert_session(c, &row).await }))
            .await?;
        Ok((token, session))
    }

    fn portal_new_session(
        &self,
        data: SessionData,
        account_id: Option<String>,
        customer_id: Option<String>,
    ) -> (SessionToken, PortalSession) {
        let mut raw = Zeroizing::new([0u8; 32]);
        self.random.fill(raw.as_mut());
        let token = SessionToken(Zeroizing::new(hex::encode(raw.as_ref())));
        let mut csrf = [0u8; 32];
        self.random.fill(&mut csrf);
        let now = self.clock.now_micros();
        let session = PortalSession {
            id: session_id_of(token.expose()),
            csrf_token: hex::encode(csrf),
            account_id,
            customer_id,
            data,
            sealed: None,
            created_at: now,
            last_seen_at: now,
        };
        (token, session)
    }

    /// The session a browser's token names, if it exists and has not timed out. A timed-out
    /// session is deleted (with any sealed digits).
    pub async fn portal_session(&self, token: &str) -> Result<Option<PortalSession>, ServiceError> {
        if token.len() != 64 || !token.chars().all(|c| c.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let id = session_id_of(token);
        let row = {
            let mut c = self.store.read_conn().await?;
            q::session(&mut c, &id).await?
        };
        let Some(row) = row else { return Ok(None) };
        let now = self.clock.now_micros();
        let cfg = &self.config().portal;
        let idle_us = cfg.session_idle.as_micros() as i64;
        let absolute_us = cfg.session_absolute.as_micros() as i64;
        if now - row.last_seen_at > idle_us || now - row.created_at > absolute_us {
            self.store
                .write(move |c| Box::pin(async move { q::delete_session(c, &id).await }))
                .await?;
            return Ok(None);
        }
        let mut session = PortalSession::from_row(row)?;
        if now - session.last_seen_at > TOUCH_EVERY.as_micros() as i64 {
            let id = session.id.clone();
            self.store
                .write(move |c| Box::pin(async move { q::touch_session(c, &id, now).await }))
                .await?;
            session.last_seen_at = now;
        }
        Ok(Some(session))
    }

    /// Stores a session's state.
    pub async fn portal_save(&self, session: &PortalSession) -> Result<(), ServiceError> {
        let mut row = session.to_row();
        row.last_seen_at = self.clock.now_micros();
        let found = self
            .store
            .write(move |c| Box::pin(async move { q::update_session(c, &row).await }))
            .await?;
        if !found {
            return Err(ServiceError::NotFound { what: "session" });
        }
        Ok(())
    }

    /// Replaces a session by a new one with a new id and CSRF token and the same state (one
    /// transaction): done whenever the session gains a privilege, so an id known before
    /// (planted, or seen over someone's shoulder) is worth nothing after.
    pub async fn portal_rotate(
        &self,
        old: &PortalSession,
        account_id: Option<String>,
        customer_id: Option<String>,
    ) -> Result<(SessionToken, PortalSession), ServiceError> {
        let (token, mut session) =
            self.portal_new_session(old.data.clone(), account_id, customer_id);
        session.sealed = old.sealed.clone();
        let row = session.to_row();
        let old_id = old.id.clone();
        self.store
            .write(move |c| {
                Box::pin(async move {
                    q::delete_session(c, &old_id).await?;
                    q::insert_session(c, &row).await
                })
            })
            .await?;
        Ok((token, session))
    }

    /// Ends a session (sign out); its sealed digits go with it.
    pub async fn portal_end_session(&self, session: &PortalSession) -> Result<(), ServiceError> {
        let id = session.id.clone();
        self.store
            .write(move |c| Box::pin(async move { q::delete_session(c, &id).await }))
            .await?;
        Ok(())
    }

    /// Deletes timed-out sessions (a batch). Returns how many.
    pub async fn portal_sweep_sessions(&self) -> Result<u64, ServiceError> {
        let now = self.clock.now_micros();
        let cfg = &self.config().portal;
        let idle_before = now - cfg.session_idle.as_micros() as i64;
        let started_before = now - cfg.session_absolute.as_micros() as i64;
        Ok(self
            .store
            .write(move |c| {
                Box::pin(async move {
                    q::delete_expired_sessions(c, idle_before, started_before, SESSION_SWEEP_BATCH)
                        .await
                })
            })
            .await?)
    }

    /// Finds an account by number and service ZIP. The same answer (None) and the same work
    /// (one lookup, one constant-time comparison) whether the account does not exist or the
    /// ZIP is wrong, so the form cannot be used to learn which account numbers exist.
    pub async fn portal_find_account(
        &self,
        number: &AccountNumber,
        zip: &PostalCode,
    ) -> Result<Option<AccountSummary>, ServiceError> {
        let row = {
            let mut c = self.store.read_conn().await?;
            queries::account_by_number(&mut c, number.as_str()).await?
        };
        // A fixed value to compare against when there is no account, so both paths compare.
        let stored: String = row
            .as_ref()
            .map(|r| r.postal_code.chars().take(5).collect())
            .unwrap_or_else(|| "\u{0}\u{0}\u{0}\u{0}\u{0}".into());
        let given = zip.zip5();
        let matches = bool::from(stored.as_bytes().ct_eq(given.as_bytes()));
        if row.is_none() || !matches {
            metrics::counter!("billpay_portal_lookups_total", "outcome" => "no_match").increment(1);
            return Ok(None);
        }
        metrics::counter!("billpay_portal_lookups_total", "outcome" => "found").increment(1);
        Ok(Some(self.account_summary(number).await?))
    }

    /// Binds a guest session to the account it verified, under a new session id.
    pub async fn portal_verify_guest(
        &self,
        session: &PortalSession,
        summary: &AccountSummary,
    ) -> Result<(SessionToken, PortalSession), ServiceError> {
        let mut data = session.data.clone();
        data.account_number = Some(summary.account.account_number.as_str().to_string());
        data.checkout = None;
        let mut moved = session.clone();
        moved.data = data;
        moved.sealed = None;
        // A signed-in customer who looks up another account leaves their sign-in behind: the
        // session is then a guest's of that account, never the customer's with its history.
        let customer = if session.account_id.as_deref() == Some(summary.account.id.as_str()) {
            session.customer_id.clone()
        } else {
            None
        };
        self.portal_rotate(&moved, Some(summary.account.id.clone()), customer)
            .await
    }

    /// Sets the amount of the payment being put together.
    pub async fn portal_set_amount(
        &self,
        session: &mut PortalSession,
        amount: Money,
    ) -> Result<(), ServiceError> {
        if !amount.is_positive() {
            return Err(ServiceError::invalid(
                "amount",
                "Enter an amount more than $0.00.",
            ));
        }
        if amount.minor_units() > crate::payments::PAYMENT_AMOUNT_MAX_MINOR {
            return Err(ServiceError::invalid(
                "amount",
                format!(
                    "One payment can be at most {}.",
                    Money::new(crate::payments::PAYMENT_AMOUNT_MAX_MINOR, amount.currency())
                ),
            ));
        }
        let checkout = session.data.checkout.get_or_insert_with(Checkout::default);
        checkout.amount_minor = Some(amount.minor_units());
        self.portal_save(session).await
    }

    /// Checks the digits typed for the payment and seals them for the pay button. Returns the
    /// field errors when they do not parse (nothing is stored then).
    pub async fn portal_set_method(
        &self,
        session: &mut PortalSession,
        entered: &EnteredMethod,
    ) -> Result<Result<(), Vec<FieldError>>, ServiceError> {
        let today = self.clock.now().to_zoned(jiff::tz::TimeZone::UTC).date();
        let method = match entered.parse(today) {
            Ok(m) => m,
            Err(errors) => return Ok(Err(errors)),
        };
        let (kind, description) = match &method {
            NewMethod::Card { number, .. } => (
                "card",
                format!(
                    "{} ending in {}",
                    number.brand().display_name(),
                    number.last4()
                ),
            ),
            NewMethod::Ach {
                account,
                account_type,
                ..
            } => (
                "ach",
                format!(
                    "{} account ending in {}",
                    account_type.as_str(),
                    account.last4()
                ),
            ),
            NewMethod::Saved { token } => {
                // Only the signed-in customer's own saved methods.
                let mine = match (&session.customer_id, session.verified_account()) {
                    (Some(_), Some(number)) => self
                        .payment_methods(&number)
                        .await?
                        .into_iter()
                        .find(|m| &m.id == token),
                    _ => None,
                };
                match mine {
                    // A saved bank account is still a bank debit: the review page shows its
                    // authorization.
                    Some(m) if m.summary.kind == billpay_domain::MethodKind::Ach => {
                        ("ach", m.summary.describe())
                    }
                    Some(m) => ("card", m.summary.describe()),
                    None => {
                        return Ok(Err(vec![FieldError {
                            field: "method",
                            message: "Choose one of your saved payment methods, or enter a card or bank account.".into(),
                        }]));
                    }
                }
            }
        };
        drop(method);
        let checkout_id = self.new_id("chk");
        let sealed = self.portal_seal(&checkout_id, entered)?;
        let checkout = session.data.checkout.get_or_insert_with(Checkout::default);
        checkout.id = checkout_id;
        checkout.method_kind = Some(kind.into());
        checkout.method_description = Some(description);
        session.sealed = Some(sealed);
        self.portal_save(session).await?;
        Ok(Ok(()))
    }

    fn portal_seal(
        &self,
        checkout_id: &str,
        entered: &EnteredMethod,
    ) -> Result<Sealed, ServiceError> {
        let vault = self.vault.as_ref().ok_or_else(|| ServiceError::Conflict {
            code: "vault_unavailable",
            message: "card and bank details cannot be taken without the vault keyring".into(),
        })?;
        let plain = Zeroizing::new(serde_json::to_vec(entered).map_err(|_| corrupt("method"))?);
        let random = self.random.clone();
        let rng = move |b: &mut [u8]| random.fill(b);
        vault
            .keyring()
            .seal(checkout_id, &plain, &rng)
            .map_err(|e| corrupt(&format!("sealing failed: {e}")))
    }

    fn portal_open(&self, session: &PortalSession) -> Result<Option<EnteredMethod>, ServiceError> {
        let (Some(sealed), Some(checkout)) = (&session.sealed, &session.data.checkout) else {
            return Ok(None);
        };
        let vault = self
            .vault
            .as_ref()
            .ok_or_else(|| corrupt("sealed without a vault"))?;
        let plain = vault
            .open(&checkout.id, sealed)
            .map_err(|_| corrupt("sealed digits do not open"))?;
        Ok(Some(
            serde_json::from_slice(&plain).map_err(|_| corrupt("method"))?,
        ))
    }

    /// Pays the checkout of a session with the idempotency key of the review form. A form
    /// sent again (double click, back and resubmit) gets the first payment, never a second.
    pub async fn portal_pay(
        &self,
        session: &mut PortalSession,
        form_key: &str,
        confirm_duplicate: bool,
        client: Option<String>,
    ) -> Result<PayOutcome, ServiceError> {
        if let Some(id) = session.paid_with(form_key) {
            let payment = self.payment(id).await?;
            return Ok(match PaymentResult::of(payment) {
                PaymentResult::Completed(p) => PayOutcome::Paid(p),
                PaymentResult::Declined(p, code) => PayOutcome::Declined(p, code),
                PaymentResult::InDoubt(p) => PayOutcome::InDoubt(p),
            });
        }
        let account_number = session
            .verified_account()
            .ok_or(ServiceError::NotFound { what: "account" })?;
        let checkout = session
            .data
            .checkout
            .clone()
            .ok_or_else(|| ServiceError::invalid("amount", "Start the payment again."))?;
        let amount = checkout
            .amount_minor
            .ok_or_else(|| ServiceError::invalid("amount", "Choose an amount to pay."))?;
        let account = self.account(&account_number).await?;
        let entered = self
            .portal_open(session)?
            .ok_or_else(|| ServiceError::invalid("method", "Enter a card or bank account."))?;
        let today = self.clock.now().to_zoned(jiff::tz::TimeZone::UTC).date();
        let method = entered.parse(today).map_err(|e| {
            ServiceError::invalid(
                "method",
                e.first().map(|f| f.message.clone()).unwrap_or_default(),
            )
        })?;
        let idem = Idempotency::new(format!("portal:{}", checkout.id), form_key)?;
        let request = PaymentRequest {
            account_number,
            amount: Money::new(amount, account.currency),
            channel: Channel::Web,
            method,
            confirm_duplicate,
            tel_authorization: None,
            limit_to_balance: false,
            risk: Some(crate::risk::RiskSource {
                ip: client,
                device: Some(session.id.clone()),
                ani: None,
            }),
        };
        let result = match self.create_payment_result(idem, request).await {
            Ok(r) => r,
            Err(ServiceError::Duplicate {
                previous_payment_id,
                ..
            }) => {
                let prev = self.payment(&previous_payment_id).await?;
                return Ok(PayOutcome::Duplicate {
                    question: duplicate_question(&prev, self.clock.now()),
                });
            }
            Err(e) => return Err(e),
        };
        let payment = result.payment().clone();
        session
            .data
            .paid
            .push((form_key.to_string(), payment.id.clone()));
        let excess = session
            .data
            .paid
            .len()
            .saturating_sub(SESSION_REMEMBERED_MAX);
        session.data.paid.drain(..excess);
        let outcome = match result {
            PaymentResult::Completed(p) => PayOutcome::Paid(p),
            PaymentResult::Declined(p, code) => PayOutcome::Declined(p, code),
            PaymentResult::InDoubt(p) => PayOutcome::InDoubt(p),
        };
        // A payment asked for in the chat: its outcome (and masked method) goes back into the
        // conversation, for the representative. The payment stands whatever happens here.
        if let Some(request) = session.data.pay_request.clone() {
            if let Err(e) = self.chat_pay_result(&request, &outcome).await {
                tracing::error!(error = %e, "chat pay request outcome not recorded");
            }
            if matches!(outcome, PayOutcome::Paid(_) | PayOutcome::InDoubt(_)) {
                session.data.pay_request = None;
            }
        }
        // The digits are needed no more: paid, or declined (another method is asked for).
        session.sealed = None;
        if let Some(c) = session.data.checkout.as_mut() {
            c.method_description = None;
            c.method_kind = None;
        }
        if matches!(outcome, PayOutcome::Paid(_) | PayOutcome::InDoubt(_)) {
            session.data.checkout = None;
        }
        self.portal_save(session).await?;
        Ok(outcome)
    }

    /// A payment this session may see: one it made, or one on the account it signed in to.
    pub async fn portal_payment(
        &self,
        session: &PortalSession,
        payment_id: &str,
    ) -> Result<Payment, ServiceError> {
        let made_here = session.data.paid.iter().any(|(_, p)| p == payment_id);
        let payment = self.payment(payment_id).await?;
        let own_account = session.customer_id.is_some()
            && session.account_id.as_deref() == Some(payment.account_id.as_str());
        if made_here || own_account {
            Ok(payment)
        } else {
            Err(ServiceError::NotFound { what: "payment" })
        }
    }
}

/// "You paid $84.10 by phone 3 minutes ago. Pay again?"
pub fn duplicate_question(prev: &Payment, now: jiff::Timestamp) -> String {
    let mins = (now.as_second() - prev.created_at.as_second()).max(0) / 60;
    let ago = match mins {
        0 => "less than a minute ago".to_string(),
        1 => "1 minute ago".to_string(),
        n => format!("{n} minutes ago"),
    };
    let how = prev.channel.describe(Language::En);
    format!("You paid {} {how} {ago}. Pay again?", prev.amount)
}

/// Messages the demo mailbox lists.
pub const MAILBOX_LIST_MAX: i64 = 100;

/// One email in the demo mailbox.
#[derive(Clone, Debug)]
pub struct MailboxMessage {
    pub id: String,
    pub to: String,
    pub subject: String,
    /// queued, sending, sent or failed.
    pub status: String,
    pub created_at: jiff::Timestamp,
    pub text: String,
}

impl Billpay {
    /// The newest emails and text messages of the outbox, rendered as they are (or would be)
    /// sent: the demo mailbox, so a newcomer reads receipts and codes without a mail server or
    /// a phone.
    pub async fn demo_mailbox(&self) -> Result<Vec<MailboxMessage>, ServiceError> {
        let mut rows = {
            let mut c = self.store.read_conn().await?;
            let mut rows = q::recent_outbox(&mut c, "email.", MAILBOX_LIST_MAX).await?;
            rows.extend(q::recent_outbox(&mut c, crate::sms::KIND_PREFIX, MAILBOX_LIST_MAX).await?);
            rows
        };
        rows.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        rows.truncate(MAILBOX_LIST_MAX as usize);
        Ok(rows.into_iter().map(|r| self.mailbox_message(r)).collect())
    }

    pub async fn demo_mailbox_message(&self, id: &str) -> Result<MailboxMessage, ServiceError> {
        let row = {
            let mut c = self.store.read_conn().await?;
            q::outbox_row(&mut c, id).await?
        };
        match row {
            Some(r)
                if r.kind.starts_with("email.") || r.kind.starts_with(crate::sms::KIND_PREFIX) =>
            {
                Ok(self.mailbox_message(r))
            }
            _ => Err(ServiceError::NotFound { what: "message" }),
        }
    }

    fn mailbox_message(&self, r: billpay_store::outbox::DeliveryRow) -> MailboxMessage {
        let rendered = if r.kind.starts_with(crate::sms::KIND_PREFIX) {
            crate::sms::render_sms(&r.kind, &r.payload_json, &self.config().biller.name)
                .map(|text| ("Text message".to_string(), text))
                .map_err(|e| e.to_string())
        } else {
            self.render_outbox_row(&r.kind, &r.payload_json)
                .map(|m| (m.subject, m.text))
                .map_err(|e| e.to_string())
        };
        let (subject, text) = match rendered {
            Ok(m) => m,
            Err(e) => (format!("({})", r.kind), e),
        };
        MailboxMessage {
            id: r.id,
            to: r.recipient,
            subject,
            status: r.status,
            created_at: crate::clock::from_micros(r.created_at),
            text,
        }
    }
}

//! The Stripe connector: card payments as PaymentIntents created and confirmed in one call,
//! bank debits as `us_bank_account` PaymentIntents (when enabled), refunds, lookups by our key,
//! and the webhook signature check.
//!
//! - Every POST carries `Idempotency-Key` = billpay's processor key (`billpay-<payment id>`), and
//!   the same key in `metadata[billpay_key]`, so a retried call replays Stripe's first answer and
//!   an answer that was lost can be found again by searching for the key.
//! - The raw card number reaches this module only from the vault or the request at charge time,
//!   is sent in the form body (`payment_method_data[card][number]`) and is wiped from the form
//!   after the call. Stripe's answers are parsed into the few fields billpay keeps (ids, status,
//!   error codes); no response body is stored or logged.
//! - Calls have a deadline each, a bounded number of attempts with exponential backoff and full
//!   jitter, and a circuit breaker: after `breaker_failures` calls in a row that found Stripe
//!   unreachable or failing, calls fail at once (nothing sent) for `breaker_cooldown`, then one
//!   trial call decides whether it closes again.
//!
//! Retrying a POST is safe only because of the idempotency key, and only where Stripe did not
//! keep an answer: a connection that was never made, 429 (rate limited, nothing done), 409
//! `idempotency_key_in_use` (the first call is still running), a timeout (the replay returns the
//! first call's answer), or a 5xx that says `Stripe-Should-Retry: true`. Any other 5xx is
//! stored by Stripe under the key and would only replay, so the payment is left in doubt and
//! resolved by lookup.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use billpay_domain::{BankAccountType, DeclineCode, Money, SecretString};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use crate::clock::{Clock, Random};
use crate::processor::*;

/// Stripe's API root.
pub const STRIPE_API_BASE: &str = "https://api.stripe.com";
/// Stripe's default tolerance for a webhook signature's timestamp.
pub const WEBHOOK_TOLERANCE_SECS: i64 = 300;
/// How long after a PaymentIntent is created Stripe's search is relied on to find it: Stripe
/// documents search data as usually current within a minute. In-doubt payments are looked up
/// no sooner than this, so a search that finds nothing means the call never reached Stripe.
pub const SEARCH_SETTLE: jiff::SignedDuration = jiff::SignedDuration::from_mins(5);
/// Longest backoff between two attempts of one call.
const BACKOFF_MS_MAX: u64 = 2_000;
/// First backoff (doubled per attempt, then jittered).
const BACKOFF_MS_BASE: u64 = 100;
/// Most attempts of one call, whatever the configuration says.
const ATTEMPTS_MAX: u32 = 5;
/// Pages of 100 PaymentIntents read for one settlement report.
const LIST_PAGES_MAX: usize = 200;
/// Refunds listed per charge when looking one up by key.
const REFUNDS_LISTED_MAX: u32 = 100;

#[derive(Clone)]
pub struct StripeConfig {
    /// `https://api.stripe.com`, or a local server in tests.
    pub api_base: String,
    /// `sk_test_…` or `sk_live_…`.
    pub secret_key: SecretString,
    /// `whsec_…`: the signing secret of the webhook endpoint.
    pub webhook_secret: Option<SecretString>,
    pub webhook_tolerance_secs: i64,
    /// Send bank debits to Stripe as `us_bank_account` payments. Off: bank debits are refused
    /// (unless billpay originates them itself in NACHA files, `[ach] originate`).
    pub bank_debits: bool,
    /// Deadline of one HTTP attempt.
    pub request_timeout: Duration,
    /// Attempts of one call (1 = no retry), at most 5.
    pub max_attempts: u32,
    /// Consecutive failed calls that open the circuit.
    pub breaker_failures: u32,
    /// How long an open circuit refuses calls.
    pub breaker_cooldown: Duration,
}

impl std::fmt::Debug for StripeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeConfig")
            .field("api_base", &self.api_base)
            .field("bank_debits", &self.bank_debits)
            .field("request_timeout", &self.request_timeout)
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

impl StripeConfig {
    pub fn new(api_base: impl Into<String>, secret_key: SecretString) -> Self {
        StripeConfig {
            api_base: api_base.into(),
            secret_key,
            webhook_secret: None,
            webhook_tolerance_secs: WEBHOOK_TOLERANCE_SECS,
            bank_debits: false,
            request_timeout: Duration::from_secs(8),
            max_attempts: 3,
            breaker_failures: 5,
            breaker_cooldown: Duration::from_secs(30),
        }
    }
}

#[derive(Default)]
struct Breaker {
    failures_in_row: u32,
    open_until_micros: Option<i64>,
}

pub struct StripeProcessor {
    config: StripeConfig,
    client: reqwest::Client,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
    breaker: Mutex<Breaker>,
}

impl std::fmt::Debug for StripeProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeProcessor")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// How one HTTP exchange ended.
enum Reply {
    /// Stripe answered (any status); the body parsed as JSON (or `Null`).
    Answer { status: u16, body: Value },
    /// The answer may or may not reflect work done: timed out, or a 5xx Stripe keeps.
    Unknown(String),
    /// Nothing reached Stripe (connection refused, open circuit, rate limited throughout).
    NotSent(String),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Verb {
    Get,
    Post,
}

impl StripeProcessor {
    pub fn new(
        config: StripeConfig,
        clock: Arc<dyn Clock>,
        random: Arc<dyn Random>,
    ) -> Result<Self, ProcessorError> {
        let client = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout)
            .build()
            .map_err(|e| ProcessorError::Unavailable(format!("HTTP client: {e}")))?;
        Ok(StripeProcessor {
            config,
            client,
            clock,
            random,
            breaker: Mutex::new(Breaker::default()),
        })
    }

    pub fn config(&self) -> &StripeConfig {
        &self.config
    }

    /// Whether the circuit refuses calls now.
    pub fn circuit_open(&self) -> bool {
        let now = self.clock.now_micros();
        self.breaker
            .lock()
            .map(|b| b.open_until_micros.is_some_and(|t| now < t))
            .unwrap_or(false)
    }

    fn breaker_allows(&self) -> bool {
        !self.circuit_open()
    }

    fn breaker_record(&self, healthy: bool) {
        let Ok(mut b) = self.breaker.lock() else {
            return;
        };
        if healthy {
            *b = Breaker::default();
            return;
        }
        b.failures_in_row = b.failures_in_row.saturating_add(1);
        if b.failures_in_row >= self.config.breaker_failures.max(1) {
            let cooldown = i64::try_from(self.config.breaker_cooldown.as_micros()).unwrap_or(0);
            b.open_until_micros = Some(self.clock.now_micros().saturating_add(cooldown));
            tracing::warn!(
                failures = b.failures_in_row,
                "Stripe circuit opened: calls fail at once until the cooldown ends"
            );
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let cap = BACKOFF_MS_BASE
            .saturating_mul(1u64 << attempt.min(10))
            .min(BACKOFF_MS_MAX);
        // Full jitter: anywhere between zero and the cap.
        Duration::from_millis(self.random.next_u64() % (cap + 1))
    }

    /// One call with its retries. `idem` is the Idempotency-Key of a POST.
    async fn call(
        &self,
        verb: Verb,
        path: &str,
        form: &[(String, String)],
        idem: Option<&str>,
    ) -> Reply {
        let reply = self.call_inner(verb, path, form, idem).await;
        let outcome = match &reply {
            Reply::Answer { .. } => "answered",
            Reply::Unknown(_) => "unknown",
            Reply::NotSent(_) => "not_sent",
        };
        metrics::counter!("billpay_processor_calls_total", "processor" => "stripe", "outcome" => outcome)
            .increment(1);
        reply
    }

    async fn call_inner(
        &self,
        verb: Verb,
        path: &str,
        form: &[(String, String)],
        idem: Option<&str>,
    ) -> Reply {
        if !self.breaker_allows() {
            return Reply::NotSent("the circuit to Stripe is open after repeated failures".into());
        }
        let url = format!("{}{}", self.config.api_base.trim_end_matches('/'), path);
        let attempts = self.config.max_attempts.clamp(1, ATTEMPTS_MAX);
        let mut last = Reply::NotSent("no attempt made".into());
        let mut maybe_done = false;
        for attempt in 0..attempts {
            if attempt > 0 {
                tokio::time::sleep(self.backoff(attempt)).await;
            }
            let mut req = match verb {
                Verb::Get => self.client.get(&url).query(form),
                Verb::Post => self.client.post(&url).form(form),
            };
            req = req.bearer_auth(self.config.secret_key.expose_secret());
            if let Some(k) = idem {
                req = req.header("Idempotency-Key", k);
            }
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) if e.is_connect() => {
                    last = Reply::NotSent(format!("cannot connect to Stripe: {}", e.without_url()));
                    continue;
                }
                Err(e) => {
                    // Sent, perhaps done: a replay under the same key is safe.
                    maybe_done = true;
                    last = Reply::Unknown(if e.is_timeout() {
                        "Stripe did not answer in time".into()
                    } else {
                        format!("the connection to Stripe failed: {}", e.without_url())
                    });
                    continue;
                }
            };
            let status = resp.status().as_u16();
            let should_retry = resp
                .headers()
                .get("stripe-should-retry")
                .and_then(|v| v.to_str().ok())
                .map(|v| v == "true");
            let body = match resp.text().await {
                Ok(t) => serde_json::from_str(&t).unwrap_or(Value::Null),
                Err(_) => {
                    maybe_done = true;
                    last = Reply::Unknown("Stripe's answer was cut off".into());
                    continue;
                }
            };
            let retry = match status {
                429 => should_retry != Some(false),
                409 => err_code(&body) == Some("idempotency_key_in_use"),
                500..=599 => should_retry == Some(true) || verb == Verb::Get,
                _ => false,
            };
            if retry && attempt + 1 < attempts {
                if status >= 500 {
                    maybe_done = true;
                }
                last = Reply::Unknown(format!("Stripe answered {status}"));
                continue;
            }
            if status >= 500 || status == 409 {
                self.breaker_record(false);
                return Reply::Unknown(format!("Stripe answered {status}"));
            }
            if status == 429 {
                last = Reply::NotSent("Stripe is limiting requests (429)".into());
                break;
            }
            self.breaker_record(true);
            return Reply::Answer { status, body };
        }
        self.breaker_record(false);
        match last {
            Reply::NotSent(m) if maybe_done => Reply::Unknown(m),
            other => other,
        }
    }

    fn card_form(req: &ChargeRequest) -> Result<Vec<(String, String)>, ProcessorError> {
        let mut f: Vec<(String, String)> = vec![
            ("amount".into(), req.amount.minor_units().to_string()),
            (
                "currency".into(),
                req.amount.currency().code().to_ascii_lowercase(),
            ),
            ("confirm".into(), "true".into()),
            ("description".into(), req.description.clone()),
            ("metadata[billpay_key]".into(), req.key.clone()),
            (
                "metadata[billpay_payment_id]".into(),
                req.context.payment_id.clone(),
            ),
            (
                "metadata[billpay_account]".into(),
                req.context.account_number.clone(),
            ),
        ];
        match &req.method {
            ChargeMethod::Card {
                number,
                expiry,
                cvc,
                postal_code,
            } => {
                f.push(("payment_method_types[]".into(), "card".into()));
                f.push(("payment_method_data[type]".into(), "card".into()));
                f.push((
                    "payment_method_data[card][number]".into(),
                    number.expose_secret().to_string(),
                ));
                f.push((
                    "payment_method_data[card][exp_month]".into(),
                    expiry.month().to_string(),
                ));
                f.push((
                    "payment_method_data[card][exp_year]".into(),
                    expiry.year().to_string(),
                ));
                if let Some(cvc) = cvc {
                    f.push((
                        "payment_method_data[card][cvc]".into(),
                        cvc.expose_secret().to_string(),
                    ));
                }
                if let Some(zip) = postal_code {
                    f.push((
                        "payment_method_data[billing_details][address][postal_code]".into(),
                        zip.as_str().to_string(),
                    ));
                }
            }
            ChargeMethod::Bank {
                routing,
                account,
                account_type,
                holder_name,
            } => {
                f.push(("payment_method_types[]".into(), "us_bank_account".into()));
                f.push(("payment_method_data[type]".into(), "us_bank_account".into()));
                f.push((
                    "payment_method_data[us_bank_account][routing_number]".into(),
                    routing.as_str().to_string(),
                ));
                f.push((
                    "payment_method_data[us_bank_account][account_number]".into(),
                    account.expose_secret().to_string(),
                ));
                f.push((
                    "payment_method_data[us_bank_account][account_holder_type]".into(),
                    "individual".into(),
                ));
                f.push((
                    "payment_method_data[us_bank_account][account_type]".into(),
                    match account_type {
                        BankAccountType::Savings => "savings",
                        _ => "checking",
                    }
                    .into(),
                ));
                f.push((
                    "payment_method_data[billing_details][name]".into(),
                    holder_name.clone(),
                ));
                // The customer accepted the debit on our channel (web, phone, API), and
                // billpay keeps that authorization; Stripe records it as an offline mandate.
                f.push((
                    "mandate_data[customer_acceptance][type]".into(),
                    "offline".into(),
                ));
                f.push((
                    "payment_method_options[us_bank_account][verification_method]".into(),
                    "microdeposits".into(),
                ));
            }
        }
        Ok(f)
    }

    async fn get_json(
        &self,
        path: &str,
        query: &[(String, String)],
    ) -> Result<Value, ProcessorError> {
        match self.call(Verb::Get, path, query, None).await {
            Reply::Answer { status: 200, body } => Ok(body),
            Reply::Answer { status, body } => Err(ProcessorError::Rejected(format!(
                "Stripe answered {status} ({})",
                err_code(&body).unwrap_or("no code")
            ))),
            Reply::Unknown(m) | Reply::NotSent(m) => Err(ProcessorError::Unavailable(m)),
        }
    }

    /// The PaymentIntent with this id, as Stripe has it now.
    pub async fn payment_intent(&self, id: &str) -> Result<Value, ProcessorError> {
        check_id(id, "pi_")?;
        self.get_json(&format!("/v1/payment_intents/{id}"), &[])
            .await
    }

    /// The dispute with this id, as Stripe has it now.
    pub async fn dispute(&self, id: &str) -> Result<Value, ProcessorError> {
        check_id(id, "dp_")?;
        self.get_json(&format!("/v1/disputes/{id}"), &[]).await
    }

    /// The refunds of a PaymentIntent, as Stripe has them now (at most 100).
    pub async fn refunds_of(&self, pi_id: &str) -> Result<Vec<Value>, ProcessorError> {
        check_id(pi_id, "pi_")?;
        let q = vec![
            ("payment_intent".to_string(), pi_id.to_string()),
            ("limit".to_string(), REFUNDS_LISTED_MAX.to_string()),
        ];
        let body = self.get_json("/v1/refunds", &q).await?;
        Ok(body["data"].as_array().cloned().unwrap_or_default())
    }

    /// What a PaymentIntent's current state means for billpay; `None` while it is undecided.
    pub fn outcome_of(pi: &Value) -> Option<ChargeOutcome> {
        let id = pi["id"].as_str()?.to_string();
        let bank = pi["payment_method_types"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t == "us_bank_account"));
        match pi["status"].as_str()? {
            "succeeded" if bank => Some(ChargeOutcome::Accepted { reference: id }),
            "succeeded" => Some(ChargeOutcome::Approved { reference: id }),
            "processing" if bank => Some(ChargeOutcome::Accepted { reference: id }),
            "requires_action" => Some(ChargeOutcome::Declined {
                code: DeclineCode::AuthenticationRequired,
                reference: Some(id),
            }),
            "requires_payment_method" | "canceled" => {
                let err = &pi["last_payment_error"];
                let code = if bank {
                    bank_failure(err["code"].as_str().unwrap_or(""))
                } else {
                    stripe_decline(err["code"].as_str(), err["decline_code"].as_str())
                };
                Some(ChargeOutcome::Declined {
                    code,
                    reference: Some(id),
                })
            }
            _ => None,
        }
    }

    fn charge_answer(&self, status: u16, body: &Value) -> Result<ChargeOutcome, ProcessorError> {
        match status {
            200 => match Self::outcome_of(body) {
                Some(o) => Ok(o),
                // A card payment still processing: its outcome comes by webhook or lookup.
                None => Err(ProcessorError::Timeout),
            },
            402 => {
                let e = &body["error"];
                let reference = e["payment_intent"]["id"].as_str().map(str::to_string);
                let code = if e["payment_method"]["type"] == "us_bank_account" {
                    bank_failure(e["code"].as_str().unwrap_or(""))
                } else {
                    stripe_decline(e["code"].as_str(), e["decline_code"].as_str())
                };
                Ok(ChargeOutcome::Declined { code, reference })
            }
            400 if body["error"]["type"] == "card_error" => Ok(ChargeOutcome::Declined {
                code: stripe_decline(
                    body["error"]["code"].as_str(),
                    body["error"]["decline_code"].as_str(),
                ),
                reference: None,
            }),
            401 | 403 => Err(ProcessorError::Unavailable(
                "Stripe refused the secret key (check [stripe] secret_key)".into(),
            )),
            _ => Err(ProcessorError::Rejected(format!(
                "Stripe answered {status} ({})",
                err_code(body).unwrap_or("no code")
            ))),
        }
    }

    async fn search_key(&self, key: &str) -> Result<Option<Value>, ProcessorError> {
        // Keys are ours ("billpay-" + an id): letters, digits, '-' and '_', nothing to escape.
        if !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b':')
        {
            return Err(ProcessorError::Rejected(
                "a processor key has characters Stripe's search cannot quote".into(),
            ));
        }
        let q = vec![(
            "query".to_string(),
            format!("metadata['billpay_key']:'{key}'"),
        )];
        let body = self.get_json("/v1/payment_intents/search", &q).await?;
        Ok(body["data"].as_array().and_then(|d| d.first()).cloned())
    }

    fn refund_answer(status: u16, body: &Value) -> Result<RefundOutcome, ProcessorError> {
        match status {
            200 => match body["status"].as_str() {
                Some("succeeded" | "pending") => Ok(RefundOutcome::Refunded {
                    reference: body["id"].as_str().unwrap_or_default().to_string(),
                }),
                _ => Ok(RefundOutcome::Declined {
                    code: DeclineCode::TransactionNotAllowed,
                }),
            },
            400 | 402 => Ok(RefundOutcome::Declined {
                code: DeclineCode::TransactionNotAllowed,
            }),
            401 | 403 => Err(ProcessorError::Unavailable(
                "Stripe refused the secret key (check [stripe] secret_key)".into(),
            )),
            _ => Err(ProcessorError::Rejected(format!(
                "Stripe answered {status} ({})",
                err_code(body).unwrap_or("no code")
            ))),
        }
    }

    async fn refund_call(
        &self,
        key: &str,
        charge_reference: &str,
        amount: Option<Money>,
    ) -> Result<RefundOutcome, ProcessorError> {
        check_id(charge_reference, "pi_")?;
        let mut form = vec![
            ("payment_intent".to_string(), charge_reference.to_string()),
            ("metadata[billpay_key]".to_string(), key.to_string()),
        ];
        if let Some(a) = amount {
            form.push(("amount".into(), a.minor_units().to_string()));
        }
        match self.call(Verb::Post, "/v1/refunds", &form, Some(key)).await {
            Reply::Answer { status, body } => Self::refund_answer(status, &body),
            Reply::Unknown(m) => {
                tracing::warn!(cause = %m, "Stripe refund call ended without an answer");
                Err(ProcessorError::Timeout)
            }
            Reply::NotSent(m) => Err(ProcessorError::Unavailable(m)),
        }
    }
}

fn err_code(body: &Value) -> Option<&str> {
    body["error"]["code"].as_str()
}

/// Ids go into URL paths: only Stripe's id alphabet is accepted.
fn check_id(id: &str, prefix: &str) -> Result<(), ProcessorError> {
    let ok = id.starts_with(prefix)
        && id.len() <= 255
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ProcessorError::Rejected(format!(
            "not a Stripe id of the form {prefix}…"
        )))
    }
}

/// Stripe's card error `code` and `decline_code` as billpay's decline taxonomy. The taxonomy
/// uses Stripe's decline-code vocabulary, so most codes are the same word; the rest are
/// Stripe's synonyms and the top-level error codes.
pub fn stripe_decline(code: Option<&str>, decline_code: Option<&str>) -> DeclineCode {
    use DeclineCode::*;
    let alias = |s: &str| -> Option<DeclineCode> {
        Some(match s {
            "invalid_cvc" => IncorrectCvc,
            "invalid_number" => IncorrectNumber,
            "invalid_expiry_month" | "invalid_expiry_year" => ExpiredCard,
            "merchant_blacklist" | "security_violation" => Fraudulent,
            "withdrawal_count_limit_exceeded" => CardVelocityExceeded,
            "restricted_card" | "not_permitted" | "service_not_allowed" => TransactionNotAllowed,
            "revocation_of_authorization"
            | "revocation_of_all_authorizations"
            | "stop_payment_order" => DoNotTryAgain,
            "issuer_not_available" | "reenter_transaction" => TryAgainLater,
            "no_action_taken" | "new_account_information_available" => DoNotHonor,
            "invalid_amount"
            | "testmode_decline"
            | "offline_pin_required"
            | "online_or_offline_pin_required" => GenericDecline,
            "authentication_required" | "card_declined_authentication_required" => {
                AuthenticationRequired
            }
            _ => return None,
        })
    };
    let known = |s: &str| {
        DeclineCode::parse(s)
            .filter(|d| !d.is_ach())
            .or_else(|| alias(s))
    };
    decline_code
        .and_then(known)
        .or_else(|| code.filter(|c| *c != "card_declined").and_then(known))
        .unwrap_or(GenericDecline)
}

/// A failed or returned `us_bank_account` payment's failure code as a NACHA return reason.
pub fn bank_failure(code: &str) -> DeclineCode {
    use DeclineCode::*;
    match code {
        "insufficient_funds" => AchR01,
        "account_closed" | "bank_account_closed" => AchR02,
        "no_account" | "bank_account_unusable" => AchR03,
        "invalid_account_number" => AchR04,
        "debit_not_authorized" | "unauthorized_debit" => AchR10,
        "account_frozen" | "bank_account_frozen" => AchR16,
        "bank_account_restricted" => AchR16,
        "invalid_currency" => CurrencyNotSupported,
        other => DeclineCode::parse(other)
            .filter(|d| d.is_ach())
            .unwrap_or(AchR06),
    }
}

#[async_trait]
impl Processor for StripeProcessor {
    fn name(&self) -> &'static str {
        "stripe"
    }

    fn accepts_bank_debits(&self) -> bool {
        self.config.bank_debits
    }

    async fn charge(&self, req: &ChargeRequest) -> Result<ChargeOutcome, ProcessorError> {
        if matches!(req.method, ChargeMethod::Bank { .. }) && !self.config.bank_debits {
            return Err(ProcessorError::Rejected(
                "bank debits through Stripe are not enabled ([stripe] bank_debits)".into(),
            ));
        }
        let mut form = Self::card_form(req)?;
        let reply = self
            .call(Verb::Post, "/v1/payment_intents", &form, Some(&req.key))
            .await;
        for (_, v) in form.iter_mut() {
            v.zeroize();
        }
        drop(form);
        match reply {
            Reply::Answer { status, body } => self.charge_answer(status, &body),
            Reply::Unknown(m) => {
                tracing::warn!(cause = %m, "Stripe charge call ended without an answer");
                Err(ProcessorError::Timeout)
            }
            Reply::NotSent(m) => Err(ProcessorError::Unavailable(m)),
        }
    }

    async fn refund(
        &self,
        key: &str,
        charge_reference: &str,
        amount: Money,
    ) -> Result<RefundOutcome, ProcessorError> {
        self.refund_call(key, charge_reference, Some(amount)).await
    }

    async fn void(
        &self,
        key: &str,
        charge_reference: &str,
    ) -> Result<RefundOutcome, ProcessorError> {
        // Captured PaymentIntents cannot be canceled; a full refund is Stripe's void.
        self.refund_call(key, charge_reference, None).await
    }

    async fn lookup(&self, key: &str) -> Result<Lookup, ProcessorError> {
        match self.search_key(key).await? {
            None => Ok(Lookup::NotFound),
            Some(pi) => match Self::outcome_of(&pi) {
                Some(o) => Ok(Lookup::Charge(o)),
                // Still deciding (3-D Secure, card processing): stay in doubt.
                None => Err(ProcessorError::Unavailable(
                    "the payment is still undecided at Stripe".into(),
                )),
            },
        }
    }

    async fn lookup_refund(
        &self,
        key: &str,
        charge_reference: &str,
    ) -> Result<Lookup, ProcessorError> {
        check_id(charge_reference, "pi_")?;
        let q = vec![
            ("payment_intent".to_string(), charge_reference.to_string()),
            ("limit".to_string(), REFUNDS_LISTED_MAX.to_string()),
        ];
        let body = self.get_json("/v1/refunds", &q).await?;
        let found = body["data"]
            .as_array()
            .and_then(|d| d.iter().find(|r| r["metadata"]["billpay_key"] == key));
        Ok(match found {
            None => Lookup::NotFound,
            Some(r) => Lookup::Refund(Self::refund_answer(200, r)?),
        })
    }

    async fn transactions(
        &self,
        from_micros: i64,
        to_micros: i64,
    ) -> Result<Option<Vec<ProcessorTx>>, ProcessorError> {
        let (from, to) = (from_micros / 1_000_000, to_micros / 1_000_000);
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..LIST_PAGES_MAX {
            let mut q = vec![
                ("created[gte]".to_string(), from.to_string()),
                ("created[lt]".to_string(), to.to_string()),
                ("limit".to_string(), "100".to_string()),
            ];
            if let Some(a) = &after {
                q.push(("starting_after".into(), a.clone()));
            }
            let body = self.get_json("/v1/payment_intents", &q).await?;
            let page = body["data"].as_array().cloned().unwrap_or_default();
            for pi in &page {
                let status = match pi["status"].as_str().unwrap_or("") {
                    "succeeded" => "succeeded",
                    "processing" => "processing",
                    "requires_payment_method" | "canceled" => "failed",
                    other => other,
                };
                out.push(ProcessorTx {
                    key: pi["metadata"]["billpay_key"].as_str().map(str::to_string),
                    reference: pi["id"].as_str().unwrap_or_default().to_string(),
                    amount: pi["amount"].as_i64().unwrap_or(0),
                    currency: pi["currency"]
                        .as_str()
                        .unwrap_or_default()
                        .to_ascii_uppercase(),
                    status: status.to_string(),
                });
            }
            match (body["has_more"].as_bool(), page.last()) {
                (Some(true), Some(last)) => after = last["id"].as_str().map(str::to_string),
                _ => return Ok(Some(out)),
            }
        }
        Err(ProcessorError::Rejected(format!(
            "more than {} PaymentIntents in the period",
            LIST_PAGES_MAX * 100
        )))
    }

    async fn settlement(&self, reference: &str) -> Result<Settlement, ProcessorError> {
        let pi = self.payment_intent(reference).await?;
        Ok(match pi["status"].as_str() {
            Some("succeeded") => Settlement::Settled,
            Some("requires_payment_method" | "canceled") => Settlement::Returned(bank_failure(
                pi["last_payment_error"]["code"].as_str().unwrap_or(""),
            )),
            _ => Settlement::Pending,
        })
    }
}

/// Why a webhook was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no Stripe-Signature header")]
    Missing,
    #[error("the Stripe-Signature header has no t= timestamp or no v1= signature")]
    Malformed,
    #[error("the Stripe-Signature timestamp is outside the tolerance")]
    Stale,
    #[error("no v1 signature in Stripe-Signature matches the payload")]
    Mismatch,
}

/// The v1 signature Stripe computes: hex HMAC-SHA256 of "t.payload" under the endpoint secret.
pub fn webhook_signature(secret: &str, t: i64, payload: &[u8]) -> String {
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    hex::encode(mac.finalize().into_bytes())
}

/// Checks a `Stripe-Signature` header (`t=…,v1=…[,v1=…]`) against the payload: some v1 must
/// match, and `t` must be within `tolerance_secs` of `now_secs` either way.
pub fn verify_signature(
    secret: &str,
    header: Option<&str>,
    payload: &[u8],
    now_secs: i64,
    tolerance_secs: i64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut t: Option<i64> = None;
    let mut sigs: Vec<&str> = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse().ok(),
            Some(("v1", v)) => sigs.push(v),
            _ => {}
        }
    }
    let t = t.ok_or(SignatureError::Malformed)?;
    if sigs.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if now_secs.abs_diff(t) > tolerance_secs.unsigned_abs() {
        return Err(SignatureError::Stale);
    }
    let expected = webhook_signature(secret, t, payload);
    if sigs
        .iter()
        .any(|s| bool::from(s.as_bytes().ct_eq(expected.as_bytes())))
    {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_stripes_scheme() {
        let payload = br#"{"id":"evt_1","type":"payment_intent.succeeded"}"#;
        let sig = webhook_signature("whsec_test", 1_700_000_000, payload);
        // Computed independently (Python's hmac over b"1700000000." + payload).
        assert_eq!(
            sig,
            "001ce3ef73e456cedaab328328720d3ad59defb8bbd0f1518f46c04ad4ac0bb7"
        );
        let header = format!("t=1700000000,v1={sig}");
        let ok = |h: &str, now| verify_signature("whsec_test", Some(h), payload, now, 300);
        assert_eq!(ok(&header, 1_700_000_000), Ok(()));
        assert_eq!(ok(&header, 1_700_000_300), Ok(()));
        assert_eq!(ok(&header, 1_700_000_301), Err(SignatureError::Stale));
        assert_eq!(ok(&header, 1_699_999_699), Err(SignatureError::Stale));
        // A second, rolled secret's signature beside the right one still verifies.
        let two = format!("t=1700000000,v1={},v1={sig},v0=abc", "0".repeat(64));
        assert_eq!(ok(&two, 1_700_000_000), Ok(()));
        assert_eq!(
            verify_signature("whsec_other", Some(&header), payload, 1_700_000_000, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature("whsec_test", Some(&header), b"{}", 1_700_000_000, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(ok("v1=abc", 0), Err(SignatureError::Malformed));
        assert_eq!(
            ok("t=1700000000", 1_700_000_000),
            Err(SignatureError::Malformed)
        );
        assert_eq!(ok("garbage", 0), Err(SignatureError::Malformed));
        assert_eq!(
            verify_signature("s", None, payload, 0, 300),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn decline_codes_map_onto_the_taxonomy() {
        use DeclineCode::*;
        let d = |c: &str, dc: Option<&str>| stripe_decline(Some(c), dc);
        assert_eq!(
            d("card_declined", Some("insufficient_funds")),
            InsufficientFunds
        );
        assert_eq!(d("card_declined", Some("lost_card")), LostCard);
        assert_eq!(d("card_declined", Some("stolen_card")), StolenCard);
        assert_eq!(d("card_declined", Some("fraudulent")), Fraudulent);
        assert_eq!(d("card_declined", Some("merchant_blacklist")), Fraudulent);
        assert_eq!(d("card_declined", Some("generic_decline")), GenericDecline);
        assert_eq!(d("card_declined", Some("do_not_honor")), DoNotHonor);
        assert_eq!(
            d("card_declined", Some("card_velocity_exceeded")),
            CardVelocityExceeded
        );
        assert_eq!(d("card_declined", Some("something_new")), GenericDecline);
        assert_eq!(d("card_declined", None), GenericDecline);
        assert_eq!(d("expired_card", None), ExpiredCard);
        assert_eq!(d("incorrect_cvc", None), IncorrectCvc);
        assert_eq!(d("incorrect_number", None), IncorrectNumber);
        assert_eq!(d("incorrect_zip", None), IncorrectZip);
        assert_eq!(d("processing_error", None), ProcessingError);
        assert_eq!(d("invalid_expiry_year", None), ExpiredCard);
        assert_eq!(d("authentication_required", None), AuthenticationRequired);
        // An ACH code name is never taken for a card decline.
        assert_eq!(d("card_declined", Some("R01")), GenericDecline);
        assert_eq!(stripe_decline(None, None), GenericDecline);
        for c in DeclineCode::all().iter().filter(|c| !c.is_ach()) {
            assert_eq!(d("card_declined", Some(c.as_str())), *c);
        }
    }

    #[test]
    fn bank_failures_map_onto_return_reasons() {
        use DeclineCode::*;
        assert_eq!(bank_failure("insufficient_funds"), AchR01);
        assert_eq!(bank_failure("account_closed"), AchR02);
        assert_eq!(bank_failure("no_account"), AchR03);
        assert_eq!(bank_failure("invalid_account_number"), AchR04);
        assert_eq!(bank_failure("debit_not_authorized"), AchR10);
        assert_eq!(bank_failure("account_frozen"), AchR16);
        assert_eq!(bank_failure("R09"), AchR09);
        assert_eq!(bank_failure("whatever"), AchR06);
        assert_eq!(bank_failure(""), AchR06);
    }
}

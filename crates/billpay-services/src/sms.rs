//! Text-message (SMS) delivery of the outbox through an HTTP provider with Twilio's
//! Messages API shape: `POST {api_base}/2010-04-01/Accounts/{AccountSid}/Messages.json`, HTTP
//! basic authentication with the account SID and auth token, a form with `To`, `Body` and
//! `From` (or `MessagingServiceSid`), answered `201` with the message's JSON, or `4xx` with
//! `{"code": …, "message": …}`.
//!
//! Rows of kind `sms.*` are leased and recorded exactly as the email sender's are (see
//! [`crate::email`]): one sender holds a row at a time; a provider that is down, throttling
//! (429) or refusing our credentials queues the row again with backoff, up to `max_attempts`;
//! a message the provider rejects (a number that cannot receive texts, a recipient who replied
//! STOP) fails at once with the reason kept for `billpay outbox`. **At most once:** the API
//! takes no idempotency key, so when a request went out and no answer came back (a timeout, a
//! broken connection) the message may have been sent; the row fails as interrupted and is never
//! re-sent automatically. An operator checks the provider's message log and requeues it with
//! `billpay outbox retry` if it never left.
//!
//! The body never reaches a log or an error: it can hold a one-time code.

use std::time::Duration;

use billpay_domain::SecretString;
use billpay_store::outbox::DeliveryRow;

use crate::email::{Attempt, Channel, DeliveryReport, clip};
use crate::{Billpay, ServiceError};

/// The kinds this sender delivers.
pub const KIND_PREFIX: &str = "sms.";
/// The longest body Twilio accepts (it splits it into segments).
pub const BODY_LEN_MAX: usize = 1600;
/// Messages in flight to the provider at once.
const CONCURRENCY: usize = 4;

const INTERRUPTED: &str = "interrupted: the sender stopped while the provider had the request, \
    so the text may or may not have been sent; check the provider's message log, then \
    `billpay outbox retry` it if it never left";

/// The provider account texts are sent from. Its `Debug` never shows the token.
#[derive(Clone, Debug)]
pub struct SmsConfig {
    /// `https://api.twilio.com`, or a compatible provider's API root.
    pub api_base: String,
    pub account_sid: String,
    pub auth_token: SecretString,
    /// The sending number (E.164)...
    pub from: Option<String>,
    /// ...or a messaging service that picks one.
    pub messaging_service_sid: Option<String>,
    /// Attempts before a message fails for good.
    pub max_attempts: i64,
    /// How long one request to the provider may take.
    pub timeout: Duration,
}

/// The text of an `sms.*` outbox row: its payload's `message`, introduced by the biller's name
/// (a text from an unknown number must say who sent it). Reminders also say how to stop them.
pub fn render_sms(kind: &str, payload_json: &str, biller: &str) -> Result<String, String> {
    let payload: serde_json::Value = serde_json::from_str(payload_json)
        .map_err(|_| "the message's payload is not JSON".to_string())?;
    let message = payload
        .get("message")
        .and_then(|m| m.as_str())
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| "the message's payload has no text (\"message\")".to_string())?;
    let mut body = if message.starts_with(biller) {
        message.to_string()
    } else {
        format!("{biller}: {message}")
    };
    if kind == "sms.reminder" {
        body.push_str(" Reply STOP to opt out.");
    }
    if body.chars().count() > BODY_LEN_MAX {
        return Err(format!("the text is longer than {BODY_LEN_MAX} characters"));
    }
    Ok(body)
}

/// A phone number as the provider takes it: + and 8 to 15 digits.
fn is_e164(n: &str) -> bool {
    n.strip_prefix('+').is_some_and(|d| {
        (8..=15).contains(&d.len()) && d.chars().all(|c| c.is_ascii_digit()) && !d.starts_with('0')
    })
}

/// Twilio's code for "the recipient replied STOP".
const CODE_STOPPED: i64 = 21610;

fn provider_code(body: &str) -> Option<i64> {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()?
        .get("code")?
        .as_i64()
}

/// What the provider's error code means for the customer's record.
fn explain(code: i64) -> Option<&'static str> {
    Some(match code {
        CODE_STOPPED => "the recipient replied STOP to texts from this number",
        21211 => "the recipient's number is not a valid phone number",
        21614 => "the recipient's number cannot receive text messages",
        21408 => "texts to the recipient's country are not enabled on the provider account",
        21612 => "the provider cannot send from this number to the recipient",
        _ => return None,
    })
}

/// Classifies the provider's answer.
fn classify(status: u16, body: &str) -> Attempt {
    if (200..300).contains(&status) {
        return Attempt::Sent;
    }
    let json: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let code = json.get("code").and_then(|c| c.as_i64());
    let said = json
        .get("message")
        .and_then(|m| m.as_str())
        .map(clip)
        .unwrap_or_default();
    let detail = match (code, said.is_empty()) {
        (Some(c), false) => format!(" (provider error {c}: {said})"),
        (Some(c), true) => format!(" (provider error {c})"),
        (None, false) => format!(" ({said})"),
        (None, true) => String::new(),
    };
    match status {
        401 | 403 => Attempt::Transient(format!(
            "the provider refused our credentials (HTTP {status}): check [sms] account_sid and the auth token{detail}"
        )),
        429 => Attempt::Transient(format!("the provider is throttling us (HTTP 429){detail}")),
        400..=499 => {
            let why = code
                .and_then(explain)
                .unwrap_or("the provider rejected the message");
            Attempt::Permanent(format!("{why} (HTTP {status}){detail}"))
        }
        _ => Attempt::Transient(format!("the provider answered HTTP {status}{detail}")),
    }
}

impl SmsConfig {
    fn messages_url(&self) -> String {
        format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            self.api_base.trim_end_matches('/'),
            self.account_sid
        )
    }
}

impl Billpay {
    /// Leases due text messages and sends them once. Without an `[sms]` configuration, does
    /// nothing (rows stay queued).
    pub async fn deliver_sms(&self, owner: &str) -> Result<DeliveryReport, ServiceError> {
        let Some(cfg) = self.config().sms.clone() else {
            return Ok(DeliveryReport::default());
        };
        let (interrupted, batch) = self.lease_outbox(Channel::Sms, owner, INTERRUPTED).await?;
        let mut report = DeliveryReport {
            leased: batch.len() as u64,
            interrupted: interrupted.len() as u64,
            ..Default::default()
        };
        if batch.is_empty() {
            return Ok(report);
        }
        let client = reqwest::Client::builder().timeout(cfg.timeout).build();
        use futures::StreamExt;
        let outcomes: Vec<Result<Attempt, ServiceError>> = futures::stream::iter(batch)
            .map(|row| {
                let (cfg, client) = (&cfg, client.as_ref());
                async move {
                    let attempt = match client {
                        Ok(c) => self.send_sms(cfg, c, &row).await,
                        Err(e) => Attempt::Transient(format!("no HTTP client: {e}")),
                    };
                    self.record_attempt(Channel::Sms, cfg.max_attempts, row, owner, attempt)
                        .await
                }
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        for o in outcomes {
            report.tally(&o?);
        }
        Ok(report)
    }

    /// Runs delivery passes until no text is due. For tests and `billpay outbox send`.
    pub async fn drain_sms(&self, owner: &str) -> Result<DeliveryReport, ServiceError> {
        let mut total = DeliveryReport::default();
        for _ in 0..10_000 {
            let r = self.deliver_sms(owner).await?;
            total.add(&r);
            if r.leased == 0 {
                break;
            }
        }
        Ok(total)
    }

    /// How many text messages are waiting.
    pub async fn sms_queued(&self) -> Result<i64, ServiceError> {
        let mut c = self.store.read_conn().await?;
        Ok(billpay_store::outbox::queued_count(&mut c, KIND_PREFIX).await?)
    }

    /// The provider says the recipient replied STOP: their text consent is withdrawn on every
    /// account with that number, so no more reminders are queued for them.
    async fn stop_texts_to(&self, phone: &str) {
        let accounts = match self.store.read_conn().await {
            Ok(mut c) => billpay_store::collections::sms_consented_accounts(&mut c, phone)
                .await
                .unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        for number in accounts {
            let Ok(n) = billpay_domain::AccountNumber::parse(&number) else {
                continue;
            };
            match self
                .set_consent(
                    &n,
                    "sms",
                    false,
                    "text provider: the recipient replied STOP",
                )
                .await
            {
                Ok(_) => tracing::info!("text consent withdrawn: the recipient replied STOP"),
                Err(e) => tracing::warn!(error = %e, "could not withdraw text consent after STOP"),
            }
        }
    }

    async fn send_sms(
        &self,
        cfg: &SmsConfig,
        client: &reqwest::Client,
        row: &DeliveryRow,
    ) -> Attempt {
        let body = match render_sms(&row.kind, &row.payload_json, &self.config().biller.name) {
            Ok(b) => b,
            Err(e) => return Attempt::Permanent(e),
        };
        if !is_e164(&row.recipient) {
            return Attempt::Permanent(
                "the recipient is not a phone number in international form (+ and country code)"
                    .into(),
            );
        }
        let mut form = vec![("To", row.recipient.as_str()), ("Body", body.as_str())];
        match (&cfg.messaging_service_sid, &cfg.from) {
            (Some(service), _) => form.push(("MessagingServiceSid", service.as_str())),
            (None, Some(from)) => form.push(("From", from.as_str())),
            (None, None) => {
                return Attempt::Transient(
                    "[sms] has neither from nor messaging_service_sid".into(),
                );
            }
        }
        let sent = client
            .post(cfg.messages_url())
            .basic_auth(&cfg.account_sid, Some(cfg.auth_token.expose_secret()))
            .form(&form)
            .send()
            .await;
        drop(body);
        let answer = match sent {
            Ok(a) => a,
            // Nothing reached the provider: safe to try again.
            Err(e) if e.is_connect() || e.is_builder() => {
                return Attempt::Transient(format!(
                    "could not reach the provider: {}",
                    clip(&without_url(&e))
                ));
            }
            Err(e) => {
                return Attempt::Interrupted(format!(
                    "no answer from the provider after the request was sent ({}); the text may have been sent: check the provider's message log before `billpay outbox retry`",
                    clip(&without_url(&e))
                ));
            }
        };
        let status = answer.status().as_u16();
        let text = match answer.text().await {
            Ok(t) => t,
            Err(_) if (200..300).contains(&status) => String::new(),
            Err(e) => {
                return Attempt::Transient(format!(
                    "the provider's answer (HTTP {status}) was cut off: {}",
                    clip(&without_url(&e))
                ));
            }
        };
        let attempt = classify(status, &text);
        if (400..500).contains(&status) && provider_code(&text) == Some(CODE_STOPPED) {
            self.stop_texts_to(&row.recipient).await;
        }
        if matches!(attempt, Attempt::Sent) {
            let sid = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|j| j.get("sid").and_then(|s| s.as_str()).map(str::to_string))
                .unwrap_or_default();
            tracing::info!(outbox = %row.id, provider_sid = %sid, "text message accepted by the provider");
        }
        attempt
    }
}

/// A reqwest error's text without its URL (which holds the account SID).
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "the provider");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_says_who_sent_it_and_reminders_say_how_to_stop() {
        let body = render_sms(
            "sms.reminder",
            r#"{"message":"$84.10 is due Jan 15."}"#,
            "Riverbend",
        )
        .expect("renders");
        assert_eq!(
            body,
            "Riverbend: $84.10 is due Jan 15. Reply STOP to opt out."
        );
        let body = render_sms(
            "sms.code",
            r#"{"message":"Riverbend code: 123456"}"#,
            "Riverbend",
        )
        .expect("renders");
        assert_eq!(body, "Riverbend code: 123456");
        assert!(render_sms("sms.reminder", r#"{"what":"x"}"#, "R").is_err());
        assert!(render_sms("sms.reminder", "not json", "R").is_err());
        let long = format!(r#"{{"message":"{}"}}"#, "x".repeat(BODY_LEN_MAX));
        assert!(render_sms("sms.code", &long, "R").is_err());
    }

    #[test]
    fn phone_numbers_must_be_international() {
        assert!(is_e164("+15555550101"));
        assert!(!is_e164("5555550101"));
        assert!(!is_e164("+1555"));
        assert!(!is_e164("+1555555010a"));
        assert!(!is_e164("+05555550101"));
    }

    #[test]
    fn provider_answers_are_classified() {
        assert!(matches!(classify(201, "{}"), Attempt::Sent));
        assert!(matches!(classify(500, ""), Attempt::Transient(_)));
        assert!(matches!(classify(429, ""), Attempt::Transient(_)));
        assert!(matches!(
            classify(401, r#"{"code":20003}"#),
            Attempt::Transient(_)
        ));
        match classify(
            400,
            r#"{"code":21610,"message":"Attempt to send to unsubscribed recipient"}"#,
        ) {
            Attempt::Permanent(m) => {
                assert!(m.starts_with("the recipient replied STOP"), "{m}");
                assert!(m.contains("21610"), "{m}");
            }
            _ => panic!("21610 is permanent"),
        }
    }

    #[test]
    fn debug_never_shows_the_token() {
        let cfg = SmsConfig {
            api_base: "https://api.twilio.com".into(),
            account_sid: "AC123".into(),
            auth_token: SecretString::new("tok-9f8e7d".into()),
            from: Some("+18005550199".into()),
            messaging_service_sid: None,
            max_attempts: 10,
            timeout: Duration::from_secs(30),
        };
        assert!(!format!("{cfg:?}").contains("tok-9f8e7d"));
    }
}

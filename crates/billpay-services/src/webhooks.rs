//! Signed outbound webhooks: account events delivered to the biller's endpoints, one job per
//! event and endpoint, retried with backoff until the endpoint answers 2xx.
//!
//! Events: `service.suspended` and `service.restored` (written by collections in the
//! transaction of the change), and the payment movements `payment.posted`, `refund.posted` and
//! `payment.returned`, which [`Billpay::relay_ledger_events`] makes from the ledger. Every
//! money movement — a payment on any channel, the AutoPay batch, a mailed check, a refund, a
//! bank debit returned by a file, the sandbox or Stripe — ends in one journal entry, so reading
//! the journal is the one place that sees them all; each event's id is `evt_<entry id>`, the
//! same however often or by however many instances it is read, and the receiver deduplicates
//! on it (`Billpay-Event-Id` and the body's `id`).
//!
//! Each delivery is a JSON POST with the header
//! `Billpay-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`; the
//! receiver recomputes it with its endpoint secret and rejects old timestamps. The secret is
//! shown once at registration and kept sealed by the vault.

use billpay_store::collections::{self as q, EventRow, WebhookEndpointRow};
use billpay_vault::Sealed;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::jobs::JobError;
use crate::{Billpay, ServiceError};

/// Most ledger movements one relay pass turns into events.
pub const RELAY_BATCH_MAX: i64 = 200;
/// How far behind its cursor the relay reads again: a movement committed this long after the
/// clock was read for it is still seen (a write transaction takes far less).
pub const RELAY_OVERLAP_MICROS: i64 = 5 * 60 * 1_000_000;
const RELAY: &str = "ledger";

/// The event type of a ledger movement.
fn movement_event(kind: &str) -> &'static str {
    match kind {
        "refund" => "refund.posted",
        "return" => "payment.returned",
        _ => "payment.posted",
    }
}

/// How long one delivery may take.
pub const DELIVERY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The signature header value for `body` at unix time `t`.
pub fn signature(secret: &[u8], t: i64, body: &str) -> String {
    // HMAC takes a key of any length, so this never fails; an empty string would not verify.
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(format!("{t}.{body}").as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// A registered endpoint (the secret is returned once, at registration).
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub id: String,
    pub url: String,
}

impl Billpay {
    /// Registers an endpoint; returns it and its signing secret (shown only now).
    pub async fn add_webhook_endpoint(
        &self,
        url: &str,
    ) -> Result<(Endpoint, billpay_domain::SecretString), ServiceError> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| ServiceError::invalid("url", format!("not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "https" | "http") {
            return Err(ServiceError::invalid(
                "url",
                "the URL must be http or https",
            ));
        }
        let vault = self.vault()?;
        let mut raw = [0u8; 32];
        self.random.fill(&mut raw);
        let secret = format!("whsec_{}", hex::encode(raw));
        let id = self.new_id("we");
        let rng = |buf: &mut [u8]| self.random.fill(buf);
        let sealed = vault
            .keyring()
            .seal(&id, secret.as_bytes(), &rng)
            .map_err(crate::vault::vault_error)?;
        let row = WebhookEndpointRow {
            id: id.clone(),
            url: url.to_string(),
            kek_version: i64::from(sealed.kek_version),
            wrapped_key: sealed.wrapped_key,
            ciphertext: sealed.ciphertext,
            status: "active".into(),
            created_at: self.clock.now_micros(),
        };
        self.store
            .write(move |c| Box::pin(async move { q::insert_webhook_endpoint(c, &row).await }))
            .await?;
        Ok((
            Endpoint {
                id,
                url: url.to_string(),
            },
            billpay_domain::SecretString::new(secret),
        ))
    }

    /// Makes an event (and its deliveries) of each payment movement the ledger posted since
    /// the last pass; returns how many. Runs in the job runner's loop; safe on any number of
    /// instances at once (an event is inserted once, by its id).
    pub async fn relay_ledger_events(&self) -> Result<usize, ServiceError> {
        let cursor = {
            let mut c = self.store.read_conn().await?;
            q::relay_cursor(&mut c, RELAY).await?
        };
        let now = self.clock.now_micros();
        let (_, made) = self
            .relay_batch(
                cursor.saturating_sub(RELAY_OVERLAP_MICROS),
                Some((cursor, now)),
            )
            .await?;
        Ok(made)
    }

    /// Makes the events of every payment movement posted at or after `from` that has none yet,
    /// without reading or moving the relay's cursor: for movements recorded with past times
    /// (`billpay demo traffic`), which the cursor has already passed.
    pub async fn relay_ledger_events_since(&self, from: i64) -> Result<usize, ServiceError> {
        let mut made = 0;
        loop {
            let (rows, n) = self.relay_batch(from, None).await?;
            made += n;
            if rows == 0 {
                return Ok(made);
            }
        }
    }

    /// One batch of the relay: the movements from `from` without an event, made into events
    /// with their deliveries in one transaction, and (`cursor`: the cursor read and the time
    /// now) the cursor moved on in it. Returns (movements read, events made).
    async fn relay_batch(
        &self,
        from: i64,
        cursor: Option<(i64, i64)>,
    ) -> Result<(usize, usize), ServiceError> {
        let rows = {
            let mut c = self.store.read_conn().await?;
            billpay_store::reports::movements_without_event(&mut c, from, RELAY_BATCH_MAX).await?
        };
        let read = rows.len();
        let last = rows.last().map(|r| r.posted_at);
        // A full batch: carry on from its last entry. Otherwise everything up to now is read,
        // less the overlap kept for late commits.
        let next = cursor.map(|(at, now)| {
            match last {
                Some(l) if read as i64 >= RELAY_BATCH_MAX => l,
                _ => now.saturating_sub(RELAY_OVERLAP_MICROS),
            }
            .max(at)
        });
        let events: Vec<EventRow> = rows
            .into_iter()
            .map(|r| EventRow {
                id: format!("evt_{}", r.entry_id),
                account_id: r.account_id,
                kind: movement_event(&r.kind).into(),
                payload: serde_json::json!({
                    "account_number": r.account_number,
                    // What the movement did to the customer's balance, as in the posting file:
                    // a payment positive, a refund or return negative (minor units).
                    "amount": r.amount,
                    "currency": r.currency,
                    "payment_id": r.payment_id,
                    "confirmation_number": r.confirmation_number,
                    "channel": r.channel,
                    "method_type": r.method_type,
                    "payment_status": r.status,
                    "return_code": if r.kind == "return" { r.decline_code } else { None },
                    "entry_id": r.entry_id,
                    "posted_at": crate::clock::from_micros(r.posted_at).to_string(),
                })
                .to_string(),
                created_at: r.posted_at,
            })
            .collect();
        let this = self.clone();
        let made = self
            .store
            .write(move |c| {
                Box::pin(async move {
                    let mut made = 0;
                    for e in &events {
                        if q::insert_event_once(c, e).await? {
                            crate::collections::enqueue_deliveries(c, &this, e).await?;
                            made += 1;
                        }
                    }
                    if let Some(next) = next {
                        q::advance_relay_cursor(c, RELAY, next).await?;
                    }
                    Ok::<_, billpay_store::StoreError>(made)
                })
            })
            .await?;
        if made > 0 {
            metrics::counter!("billpay_webhook_events_total", "source" => "ledger")
                .increment(made as u64);
        }
        Ok((read, made))
    }

    pub(crate) async fn deliver_webhook(
        &self,
        payload: &serde_json::Value,
    ) -> Result<(), JobError> {
        let event_id = payload["event_id"].as_str().unwrap_or_default();
        let endpoint_id = payload["endpoint_id"].as_str().unwrap_or_default();
        let (event, endpoint) = {
            let mut c = self
                .store
                .read_conn()
                .await
                .map_err(|e| JobError::Retry(e.to_string()))?;
            (
                q::event(&mut c, event_id)
                    .await
                    .map_err(|e| JobError::Retry(e.to_string()))?
                    .ok_or_else(|| JobError::Fatal(format!("no event {event_id}")))?,
                q::webhook_endpoint(&mut c, endpoint_id)
                    .await
                    .map_err(|e| JobError::Retry(e.to_string()))?
                    .ok_or_else(|| JobError::Fatal(format!("no endpoint {endpoint_id}")))?,
            )
        };
        if endpoint.status != "active" {
            return Ok(());
        }
        let vault = self.vault().map_err(|e| JobError::Retry(e.to_string()))?;
        let secret = vault
            .open(
                &endpoint.id,
                &Sealed {
                    kek_version: u32::try_from(endpoint.kek_version).unwrap_or(0),
                    wrapped_key: endpoint.wrapped_key.clone(),
                    ciphertext: endpoint.ciphertext.clone(),
                },
            )
            .map_err(|e| JobError::Retry(format!("the endpoint's secret: {e}")))?;
        let body = serde_json::json!({
            "id": event.id,
            "type": event.kind,
            "created": crate::clock::from_micros(event.created_at).to_string(),
            "data": serde_json::from_str::<serde_json::Value>(&event.payload).unwrap_or_default(),
        })
        .to_string();
        let t = self.clock.now().as_second();
        let sig = signature(&secret, t, &body);
        let answer = reqwest::Client::builder()
            .timeout(DELIVERY_TIMEOUT)
            .build()
            .map_err(|e| JobError::Retry(e.to_string()))?
            .post(&endpoint.url)
            .header("Content-Type", "application/json")
            .header("Billpay-Signature", sig)
            .header("Billpay-Event-Id", &event.id)
            .body(body)
            .send()
            .await;
        match answer {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(JobError::Retry(format!(
                "the endpoint answered {}",
                r.status()
            ))),
            Err(e) => Err(JobError::Retry(format!(
                "the endpoint could not be reached: {e}"
            ))),
        }
    }
}

//! Signed outbound webhooks: account events (service suspended, restored) delivered to the
//! biller's endpoints, one job per event and endpoint, retried with backoff until the endpoint
//! answers 2xx.
//!
//! Each delivery is a JSON POST with the header
//! `Billpay-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`; the
//! receiver recomputes it with its endpoint secret and rejects old timestamps. The secret is
//! shown once at registration and kept sealed by the vault.

use billpay_store::collections::{self as q, WebhookEndpointRow};
use billpay_vault::Sealed;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::jobs::JobError;
use crate::{Billpay, ServiceError};

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

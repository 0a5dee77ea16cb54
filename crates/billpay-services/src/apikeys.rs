//! Biller API keys. A key is shown once, when created; only its SHA-256 is stored. Keys are
//! 256 random bits, so a fast hash is enough: there is nothing to brute-force.

use billpay_domain::SecretString;
use billpay_store::{queries, rows::ApiKeyRow};
use sha2::{Digest, Sha256};

use crate::{Billpay, ServiceError};

pub const API_KEY_PREFIX: &str = "bp_live_";

pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub created_at: jiff::Timestamp,
    pub revoked: bool,
}

impl ApiKey {
    fn from_row(r: &ApiKeyRow) -> ApiKey {
        ApiKey {
            id: r.id.clone(),
            name: r.name.clone(),
            prefix: r.prefix.clone(),
            created_at: crate::clock::from_micros(r.created_at),
            revoked: r.revoked_at.is_some(),
        }
    }
}

impl Billpay {
    /// Creates a key; the secret is returned once and never stored.
    pub async fn create_api_key(&self, name: &str) -> Result<(ApiKey, SecretString), ServiceError> {
        let name = name.trim();
        if name.is_empty() || name.len() > 100 {
            return Err(ServiceError::invalid(
                "name",
                "the key name must be 1 to 100 characters",
            ));
        }
        let mut bytes = [0u8; 32];
        self.random.fill(&mut bytes);
        let secret = SecretString::new(format!("{API_KEY_PREFIX}{}", hex::encode(bytes)));
        let row = ApiKeyRow {
            id: self.new_id("key"),
            name: name.to_string(),
            prefix: secret.expose_secret()[..API_KEY_PREFIX.len() + 6].to_string(),
            key_hash: hash_key(secret.expose_secret()),
            created_at: self.clock.now_micros(),
            revoked_at: None,
        };
        let key = ApiKey::from_row(&row);
        self.store
            .write(move |c| Box::pin(async move { queries::insert_api_key(c, &row).await }))
            .await?;
        Ok((key, secret))
    }

    /// The key a bearer token belongs to, if it is valid and not revoked.
    pub async fn authenticate(&self, token: &str) -> Result<Option<ApiKey>, ServiceError> {
        if !token.starts_with(API_KEY_PREFIX) || token.len() > 200 {
            return Ok(None);
        }
        let mut c = self.store.read_conn().await?;
        let row = queries::api_key_by_hash(&mut c, &hash_key(token)).await?;
        Ok(row
            .filter(|r| r.revoked_at.is_none())
            .map(|r| ApiKey::from_row(&r)))
    }

    pub async fn list_api_keys(&self) -> Result<Vec<ApiKey>, ServiceError> {
        let mut c = self.store.read_conn().await?;
        Ok(queries::list_api_keys(&mut c)
            .await?
            .iter()
            .map(ApiKey::from_row)
            .collect())
    }

    pub async fn revoke_api_key(&self, id: &str) -> Result<(), ServiceError> {
        let id = id.to_string();
        let now = self.clock.now_micros();
        let done = self
            .store
            .write(move |c| Box::pin(async move { queries::revoke_api_key(c, &id, now).await }))
            .await?;
        if done {
            Ok(())
        } else {
            Err(ServiceError::NotFound {
                what: "active API key",
            })
        }
    }
}

//! Saved payment methods: the vault. Card and bank account numbers go in once and only tokens
//! (`pm_…`) come out. Numbers are sealed with a per-record data key wrapped by a
//! key-encryption key from the keyring (a file or an environment variable, never the database);
//! a keyed fingerprint recognises the same card on one account without decrypting.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use billpay_domain::{
    AccountNumber, BankAccountNumber, BankAccountType, CardBrand, CardExpiry, CardNumber, Channel,
    MethodKind, PostalCode, RoutingNumber,
};
use billpay_store::rows::{AuditRow, PaymentMethodRow};
use billpay_store::{AnyConnection, StoreError, queries};
use billpay_vault::{Keyring, Sealed, VaultError};

use crate::processor::ChargeMethod;
use crate::{Billpay, MethodSummary, ServiceError};

/// Most saved methods one account may hold.
pub const SAVED_METHODS_MAX: i64 = 20;
/// Longest nickname.
const NICKNAME_LEN_MAX: usize = 40;

/// The keyring in use, reloaded when its file changes (so `billpay keys rotate` run beside a
/// live server takes effect without a restart).
pub struct Vault {
    keyring: RwLock<Arc<Keyring>>,
    file: Option<PathBuf>,
    loaded_mtime: Mutex<Option<SystemTime>>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault").field("file", &self.file).finish()
    }
}

fn mtime(path: &std::path::Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl Vault {
    /// A vault whose keyring lives in `path`.
    pub fn from_file(path: PathBuf) -> Result<Vault, VaultError> {
        let keyring = Keyring::load(&path)?;
        Ok(Vault {
            keyring: RwLock::new(Arc::new(keyring)),
            loaded_mtime: Mutex::new(mtime(&path)),
            file: Some(path),
        })
    }

    /// A vault with a fixed keyring (from an environment variable).
    pub fn fixed(keyring: Keyring) -> Vault {
        Vault {
            keyring: RwLock::new(Arc::new(keyring)),
            file: None,
            loaded_mtime: Mutex::new(None),
        }
    }

    pub fn file(&self) -> Option<&std::path::Path> {
        self.file.as_deref()
    }

    /// The keyring, re-read first if its file changed.
    pub fn keyring(&self) -> Arc<Keyring> {
        if let Some(path) = &self.file {
            let now = mtime(path);
            let changed = self.loaded_mtime.lock().map(|m| *m != now).unwrap_or(false);
            if changed {
                self.reload();
            }
        }
        self.keyring
            .read()
            .map(|k| k.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Re-reads the keyring file; keeps the current keyring if the file is unreadable.
    pub fn reload(&self) {
        let Some(path) = &self.file else { return };
        match Keyring::load(path) {
            Ok(k) => {
                if let Ok(mut slot) = self.keyring.write() {
                    *slot = Arc::new(k);
                }
                if let Ok(mut m) = self.loaded_mtime.lock() {
                    *m = mtime(path);
                }
                tracing::info!("vault keyring reloaded");
            }
            Err(e) => {
                tracing::error!(error = %e, "vault keyring file could not be re-read; keeping the loaded keyring")
            }
        }
    }

    /// Opens a sealed record; an unknown key version triggers one reload (a rotation may have
    /// happened in another process).
    pub fn open(
        &self,
        record_id: &str,
        sealed: &Sealed,
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, VaultError> {
        match self.keyring().open(record_id, sealed) {
            Err(VaultError::UnknownKeyVersion(_)) if self.file.is_some() => {
                self.reload();
                self.keyring().open(record_id, sealed)
            }
            other => other,
        }
    }
}

/// A card or bank account to save. No security code: it is never kept.
#[derive(Clone, Debug)]
pub enum MethodToSave {
    Card {
        number: CardNumber,
        expiry: CardExpiry,
        postal_code: Option<PostalCode>,
    },
    Ach {
        routing: RoutingNumber,
        account: BankAccountNumber,
        account_type: BankAccountType,
        holder_name: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedMethod {
    pub id: String,
    pub account_id: String,
    pub summary: MethodSummary,
    pub bank_name: Option<String>,
    pub nickname: Option<String>,
    pub is_default: bool,
    pub created_at: jiff::Timestamp,
}

impl SavedMethod {
    fn from_row(r: &PaymentMethodRow) -> Result<SavedMethod, StoreError> {
        Ok(SavedMethod {
            id: r.id.clone(),
            account_id: r.account_id.clone(),
            summary: MethodSummary {
                kind: MethodKind::parse(&r.kind)
                    .ok_or_else(|| StoreError::Corrupt(format!("method kind {:?}", r.kind)))?,
                brand: r.brand.as_deref().and_then(CardBrand::parse),
                last4: r.last4.clone(),
                exp_month: r.exp_month.and_then(|m| u8::try_from(m).ok()),
                exp_year: r.exp_year.and_then(|y| u16::try_from(y).ok()),
                bank_account_type: r
                    .bank_account_type
                    .as_deref()
                    .and_then(BankAccountType::parse),
            },
            bank_name: r.bank_name.clone(),
            nickname: r.nickname.clone(),
            is_default: r.is_default != 0,
            created_at: crate::clock::from_micros(r.created_at),
        })
    }

    pub fn expiry(&self) -> Option<CardExpiry> {
        match (self.summary.exp_month, self.summary.exp_year) {
            (Some(m), Some(y)) => CardExpiry::new(m, y).ok(),
            _ => None,
        }
    }

    /// "Your Visa ending in 4242 expires next month." when it is this month or next, or has
    /// expired.
    pub fn expiry_notice(&self, today: jiff::civil::Date) -> Option<String> {
        let expiry = self.expiry()?;
        let what = self.summary.describe();
        match expiry.months_until_expiry(today) {
            m if m < 0 || expiry.is_expired(today) => Some(format!(
                "Your {what} has expired. Please update it or add another way to pay."
            )),
            0 => Some(format!("Your {what} expires at the end of this month.")),
            1 => Some(format!("Your {what} expires next month.")),
            _ => None,
        }
    }
}

/// Changes a customer may make to a saved method.
#[derive(Clone, Debug, Default)]
pub struct MethodUpdate {
    pub nickname: Option<String>,
    pub expiry: Option<CardExpiry>,
    pub make_default: bool,
}

/// Who did something, for the audit trail.
#[derive(Clone, Debug)]
pub struct Actor {
    pub id: String,
    pub channel: Channel,
}

/// Bank names for a few well-known routing numbers; anything else shows no name.
fn bank_name(routing: &str) -> Option<&'static str> {
    Some(match routing {
        "110000000" => "Sandbox Test Bank",
        "021000021" => "JPMorgan Chase",
        "026009593" => "Bank of America",
        "121000248" => "Wells Fargo",
        "021000089" => "Citibank",
        "091000022" => "U.S. Bank",
        _ => return None,
    })
}

/// Appends one audit record: who, what, when, from which channel, never the secret.
// One argument per audit column keeps each call site readable as a record.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn audit(
    c: &mut AnyConnection,
    id: String,
    at: i64,
    actor: &Actor,
    action: &str,
    subject_id: &str,
    account_id: &str,
    detail: serde_json::Value,
) -> Result<(), StoreError> {
    queries::insert_audit(
        c,
        &audit_row(id, at, actor, action, subject_id, account_id, detail),
    )
    .await
}

/// The audit record of a vault operation on saved method `subject_id`.
pub(crate) fn audit_row(
    id: String,
    at: i64,
    actor: &Actor,
    action: &str,
    subject_id: &str,
    account_id: &str,
    detail: serde_json::Value,
) -> AuditRow {
    AuditRow {
        id,
        at,
        actor: actor.id.clone(),
        action: action.into(),
        subject_type: "payment_method".into(),
        subject_id: subject_id.into(),
        account_id: Some(account_id.into()),
        channel: Some(actor.channel.as_str().into()),
        detail: detail.to_string(),
    }
}

pub(crate) fn vault_error(e: VaultError) -> ServiceError {
    match e {
        VaultError::Tampered | VaultError::Malformed(_) | VaultError::UnknownKeyVersion(_) => {
            tracing::error!(error = %e, "a saved payment method could not be opened");
            ServiceError::Conflict {
                code: "payment_method_unreadable",
                message: "This saved payment method can't be used right now. Nothing was charged. Please pay with another method or add it again.".into(),
            }
        }
        other => ServiceError::Store(StoreError::Internal(other.to_string())),
    }
}

impl Billpay {
    pub(crate) fn vault(&self) -> Result<&Vault, ServiceError> {
        self.vault.as_deref().ok_or_else(|| {
            ServiceError::Store(StoreError::Config("no vault keyring is configured".into()))
        })
    }

    async fn account_id_of(&self, number: &AccountNumber) -> Result<String, ServiceError> {
        let mut c = self.store.read_conn().await?;
        Ok(queries::account_by_number(&mut c, number.as_str())
            .await?
            .ok_or(ServiceError::NotFound { what: "account" })?
            .id)
    }

    /// Saves a method. Saving a card or account the account already has returns that one
    /// (with any new expiry and nickname) instead of a second copy.
    pub async fn save_payment_method(
        &self,
        account: &AccountNumber,
        method: MethodToSave,
        update: MethodUpdate,
        actor: Actor,
    ) -> Result<(SavedMethod, bool), ServiceError> {
        let vault = self.vault()?;
        let keyring = vault.keyring();
        if let Some(n) = &update.nickname {
            check_nickname(n)?;
        }
        let id = self.new_id("pm");
        let now = self.clock.now_micros();
        let rng = |buf: &mut [u8]| self.random.fill(buf);
        let (mut row, fingerprint_kind) = match &method {
            MethodToSave::Card {
                number,
                expiry,
                postal_code,
            } => {
                if self.card_expired(expiry) {
                    return Err(ServiceError::invalid(
                        "exp_month",
                        "That card has expired. Please use a card with a later expiration date.",
                    ));
                }
                let sealed = keyring
                    .seal(&id, number.expose_secret().as_bytes(), &rng)
                    .map_err(vault_error)?;
                (
                    method_row(
                        &id,
                        "card",
                        sealed,
                        keyring.fingerprint("card", number.expose_secret()),
                        now,
                    )
                    .with_card(
                        number.brand().as_str(),
                        &number.last4(),
                        expiry,
                        postal_code.as_ref(),
                    ),
                    "card",
                )
            }
            MethodToSave::Ach {
                routing,
                account: acct,
                account_type,
                holder_name,
            } => {
                let sealed = keyring
                    .seal(&id, acct.expose_secret().as_bytes(), &rng)
                    .map_err(vault_error)?;
                let fp = keyring.fingerprint(
                    "ach",
                    &format!("{}:{}", routing.as_str(), acct.expose_secret()),
                );
                (
                    method_row(&id, "ach", sealed, fp, now).with_bank(
                        routing.as_str(),
                        &acct.last4(),
                        *account_type,
                        holder_name,
                        bank_name(routing.as_str()),
                    ),
                    "ach",
                )
            }
        };
        row.nickname = update.nickname.clone();
        let number = account.clone();
        let audit_id = self.new_id("aud");
        let make_default = update.make_default;
        let new_expiry = match &method {
            MethodToSave::Card { expiry, .. } => {
                Some((i64::from(expiry.month()), i64::from(expiry.year())))
            }
            MethodToSave::Ach { .. } => None,
        };
        let (saved, created) = self
            .store
            .write(move |c| {
                Box::pin(async move {
                    let account = queries::account_by_number(c, number.as_str())
                        .await?
                        .ok_or(ServiceError::NotFound { what: "account" })?;
                    queries::lock_account(c, &account.id, now).await?;
                    row.account_id = account.id.clone();
                    let existing = queries::active_method_by_fingerprint(c, &account.id, &row.fingerprint).await?;
                    let (id, created) = match existing {
                        Some(e) => {
                            queries::update_method_details(c, &e.id, row.nickname.as_deref(), new_expiry, now).await?;
                            (e.id, false)
                        }
                        None => {
                            if queries::count_active_methods(c, &account.id).await? >= SAVED_METHODS_MAX {
                                return Err(ServiceError::Conflict {
                                    code: "too_many_payment_methods",
                                    message: format!("An account can keep at most {SAVED_METHODS_MAX} saved payment methods. Remove one first."),
                                });
                            }
                            let first = queries::count_active_methods(c, &account.id).await? == 0;
                            row.is_default = i64::from(first || make_default);
                            queries::insert_payment_method(c, &row).await?;
                            (row.id.clone(), true)
                        }
                    };
                    if make_default {
                        queries::set_default_method(c, &account.id, &id, now).await?;
                    }
                    audit(c, audit_id, now, &actor, if created { "vault.save" } else { "vault.update" }, &id, &account.id,
                        serde_json::json!({"kind": fingerprint_kind})).await?;
                    let stored = queries::payment_method_by_id(c, &id).await?.ok_or(StoreError::NotFound)?;
                    Ok::<_, ServiceError>((SavedMethod::from_row(&stored)?, created))
                })
            })
            .await?;
        Ok((saved, created))
    }

    pub async fn payment_methods(
        &self,
        account: &AccountNumber,
    ) -> Result<Vec<SavedMethod>, ServiceError> {
        let account_id = self.account_id_of(account).await?;
        let mut c = self.store.read_conn().await?;
        let rows = queries::payment_methods_for_account(&mut c, &account_id).await?;
        rows.iter()
            .map(|r| SavedMethod::from_row(r).map_err(ServiceError::from))
            .collect()
    }

    /// One saved method of this account; another account's token is simply not found.
    pub async fn payment_method(
        &self,
        account: &AccountNumber,
        id: &str,
    ) -> Result<SavedMethod, ServiceError> {
        let row = self.method_row_for(account, id).await?;
        Ok(SavedMethod::from_row(&row)?)
    }

    async fn method_row_for(
        &self,
        account: &AccountNumber,
        id: &str,
    ) -> Result<PaymentMethodRow, ServiceError> {
        let account_id = self.account_id_of(account).await?;
        let mut c = self.store.read_conn().await?;
        queries::payment_method_by_id(&mut c, id)
            .await?
            .filter(|r| r.account_id == account_id && r.status == "active")
            .ok_or(ServiceError::NotFound {
                what: "payment method",
            })
    }

    pub async fn update_payment_method(
        &self,
        account: &AccountNumber,
        id: &str,
        update: MethodUpdate,
        actor: Actor,
    ) -> Result<SavedMethod, ServiceError> {
        let row = self.method_row_for(account, id).await?;
        if let Some(n) = &update.nickname {
            check_nickname(n)?;
        }
        if update.expiry.is_some() && row.kind != "card" {
            return Err(ServiceError::invalid(
                "exp_month",
                "only cards have an expiration date",
            ));
        }
        let now = self.clock.now_micros();
        let audit_id = self.new_id("aud");
        self.store
            .write(move |c| {
                Box::pin(async move {
                    let exp = update
                        .expiry
                        .map(|e| (i64::from(e.month()), i64::from(e.year())));
                    if !queries::update_method_details(
                        c,
                        &row.id,
                        update.nickname.as_deref(),
                        exp,
                        now,
                    )
                    .await?
                    {
                        return Err(ServiceError::NotFound {
                            what: "payment method",
                        });
                    }
                    if update.make_default {
                        queries::set_default_method(c, &row.account_id, &row.id, now).await?;
                    }
                    audit(
                        c,
                        audit_id,
                        now,
                        &actor,
                        "vault.update",
                        &row.id,
                        &row.account_id,
                        serde_json::json!({}),
                    )
                    .await?;
                    let stored = queries::payment_method_by_id(c, &row.id)
                        .await?
                        .ok_or(StoreError::NotFound)?;
                    Ok::<_, ServiceError>(SavedMethod::from_row(&stored)?)
                })
            })
            .await
    }

    /// Deletes a saved method. Its sealed number is destroyed; a default passes to the newest
    /// remaining method.
    pub async fn delete_payment_method(
        &self,
        account: &AccountNumber,
        id: &str,
        actor: Actor,
    ) -> Result<(), ServiceError> {
        let row = self.method_row_for(account, id).await?;
        let now = self.clock.now_micros();
        let audit_id = self.new_id("aud");
        self.store
            .write(move |c| {
                Box::pin(async move {
                    if !queries::delete_payment_method(c, &row.id, now).await? {
                        return Err(ServiceError::NotFound {
                            what: "payment method",
                        });
                    }
                    if row.is_default != 0
                        && let Some(next) = queries::payment_methods_for_account(c, &row.account_id)
                            .await?
                            .first()
                    {
                        queries::set_default_method(c, &row.account_id, &next.id, now).await?;
                    }
                    audit(
                        c,
                        audit_id,
                        now,
                        &actor,
                        "vault.delete",
                        &row.id,
                        &row.account_id,
                        serde_json::json!({}),
                    )
                    .await?;
                    Ok::<_, ServiceError>(())
                })
            })
            .await
    }

    /// Opens a saved method for one charge: the secrets exist only in the returned value.
    pub(crate) async fn open_saved(
        &self,
        account: &AccountNumber,
        token: &str,
    ) -> Result<(SavedMethod, ChargeMethod), ServiceError> {
        let row = self.method_row_for(account, token).await?;
        self.open_method_row(&row)
    }

    /// Opens a saved method's row (already checked to be the account's and active) for a charge.
    pub(crate) fn open_method_row(
        &self,
        row: &PaymentMethodRow,
    ) -> Result<(SavedMethod, ChargeMethod), ServiceError> {
        let saved = SavedMethod::from_row(row)?;
        let vault = self.vault()?;
        let sealed = Sealed {
            kek_version: u32::try_from(row.kek_version)
                .map_err(|_| vault_error(VaultError::Malformed("key version".into())))?,
            wrapped_key: row.wrapped_key.clone(),
            ciphertext: row.ciphertext.clone(),
        };
        let plain = vault.open(&row.id, &sealed).map_err(vault_error)?;
        let text = std::str::from_utf8(&plain).map_err(|_| vault_error(VaultError::Tampered))?;
        let method = match saved.summary.kind {
            MethodKind::Card => {
                let number =
                    CardNumber::parse(text).map_err(|_| vault_error(VaultError::Tampered))?;
                let expiry = saved
                    .expiry()
                    .ok_or_else(|| vault_error(VaultError::Malformed("expiry".into())))?;
                if self.card_expired(&expiry) {
                    return Err(ServiceError::invalid(
                        "payment_method[token]",
                        format!(
                            "Your {} has expired. Please update its expiration date or use another way to pay.",
                            saved.summary.describe()
                        ),
                    ));
                }
                ChargeMethod::Card {
                    number,
                    expiry,
                    cvc: None,
                    postal_code: row
                        .postal_code
                        .as_deref()
                        .and_then(|p| PostalCode::parse(p).ok()),
                }
            }
            MethodKind::Ach => ChargeMethod::Bank {
                routing: RoutingNumber::parse(row.routing_number.as_deref().unwrap_or_default())
                    .map_err(|_| vault_error(VaultError::Malformed("routing number".into())))?,
                account: BankAccountNumber::parse(text)
                    .map_err(|_| vault_error(VaultError::Tampered))?,
                account_type: saved
                    .summary
                    .bank_account_type
                    .unwrap_or(BankAccountType::Checking),
                holder_name: row.holder_name.clone().unwrap_or_default(),
            },
            MethodKind::Check | MethodKind::Pledge => {
                return Err(vault_error(VaultError::Malformed(
                    "a check is not a saved payment method".into(),
                )));
            }
        };
        Ok((saved, method))
    }

    /// Re-wraps every saved method's data key under the active key version, in batches, while
    /// payments go on. Returns how many were re-wrapped.
    pub async fn rewrap_payment_methods(&self) -> Result<u64, ServiceError> {
        let vault = self.vault()?;
        vault.reload();
        let keyring = vault.keyring();
        let active = i64::from(keyring.active_version());
        let mut done = 0u64;
        loop {
            let batch = {
                let mut c = self.store.read_conn().await?;
                queries::methods_under_other_keys(&mut c, active, 100).await?
            };
            if batch.is_empty() {
                break;
            }
            let now = self.clock.now_micros();
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
                    .map_err(vault_error)?;
                updates.push((
                    row.id.clone(),
                    row.account_id.clone(),
                    row.wrapped_key.clone(),
                    new,
                ));
            }
            let audit_ids: Vec<String> = updates.iter().map(|_| self.new_id("aud")).collect();
            let n = self
                .store
                .write(move |c| {
                    Box::pin(async move {
                        let actor = Actor {
                            id: "system:keys-rotate".into(),
                            channel: Channel::Api,
                        };
                        let mut n = 0u64;
                        for ((id, account_id, old, new), audit_id) in
                            updates.into_iter().zip(audit_ids)
                        {
                            if queries::rewrap_method(
                                c,
                                &id,
                                &old,
                                i64::from(new.kek_version),
                                &new.wrapped_key,
                            )
                            .await?
                            {
                                n += 1;
                                audit(
                                    c,
                                    audit_id,
                                    now,
                                    &actor,
                                    "vault.rewrap",
                                    &id,
                                    &account_id,
                                    serde_json::json!({"kek_version": new.kek_version}),
                                )
                                .await?;
                            }
                        }
                        Ok::<_, ServiceError>(n)
                    })
                })
                .await?;
            done += n;
        }
        Ok(done)
    }

    /// Live sealed methods per key version.
    pub async fn methods_per_key_version(&self) -> Result<Vec<(i64, i64)>, ServiceError> {
        let mut c = self.store.read_conn().await?;
        Ok(queries::methods_per_key_version(&mut c).await?)
    }
}

fn check_nickname(n: &str) -> Result<(), ServiceError> {
    if n.trim().is_empty()
        || n.chars().count() > NICKNAME_LEN_MAX
        || n.chars().any(|c| c.is_control())
    {
        return Err(ServiceError::invalid(
            "nickname",
            "a nickname is 1 to 40 characters",
        ));
    }
    if n.chars().filter(|c| c.is_ascii_digit()).count() >= 8 {
        return Err(ServiceError::invalid(
            "nickname",
            "a nickname must not contain a card or account number",
        ));
    }
    Ok(())
}

fn method_row(
    id: &str,
    kind: &str,
    sealed: Sealed,
    fingerprint: String,
    now: i64,
) -> PaymentMethodRow {
    PaymentMethodRow {
        id: id.into(),
        account_id: String::new(),
        kind: kind.into(),
        brand: None,
        last4: String::new(),
        exp_month: None,
        exp_year: None,
        postal_code: None,
        bank_account_type: None,
        routing_number: None,
        holder_name: None,
        bank_name: None,
        nickname: None,
        fingerprint,
        kek_version: i64::from(sealed.kek_version),
        wrapped_key: sealed.wrapped_key,
        ciphertext: sealed.ciphertext,
        is_default: 0,
        status: "active".into(),
        created_at: now,
        updated_at: now,
    }
}

trait RowExt {
    fn with_card(
        self,
        brand: &str,
        last4: &str,
        expiry: &CardExpiry,
        postal: Option<&PostalCode>,
    ) -> Self;
    fn with_bank(
        self,
        routing: &str,
        last4: &str,
        t: BankAccountType,
        holder: &str,
        bank: Option<&str>,
    ) -> Self;
}

impl RowExt for PaymentMethodRow {
    fn with_card(
        mut self,
        brand: &str,
        last4: &str,
        expiry: &CardExpiry,
        postal: Option<&PostalCode>,
    ) -> Self {
        self.brand = Some(brand.into());
        self.last4 = last4.into();
        self.exp_month = Some(i64::from(expiry.month()));
        self.exp_year = Some(i64::from(expiry.year()));
        self.postal_code = postal.map(|p| p.as_str().to_string());
        self
    }

    fn with_bank(
        mut self,
        routing: &str,
        last4: &str,
        t: BankAccountType,
        holder: &str,
        bank: Option<&str>,
    ) -> Self {
        self.last4 = last4.into();
        self.routing_number = Some(routing.into());
        self.bank_account_type = Some(t.as_str().into());
        self.holder_name = Some(holder.into());
        self.bank_name = bank.map(str::to_string);
        self
    }
}

//! Storage shapes, one per table. Integers are i64, instants are microseconds since the epoch.

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct AccountRow {
    pub id: String,
    pub account_number: String,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub postal_code: String,
    pub timezone: String,
    pub currency: String,
    pub service_status: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct StatementRow {
    pub id: String,
    pub account_id: String,
    pub statement_date: String,
    pub due_date: String,
    pub amount_due: i64,
    pub currency: String,
    pub lines_json: String,
    pub journal_id: String,
    pub created_at: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct PaymentRow {
    pub id: String,
    pub account_id: String,
    pub confirmation_number: String,
    pub amount: i64,
    pub currency: String,
    /// Convenience fee charged on top of `amount` (0 by default).
    pub fee_amount: i64,
    pub refunded_amount: i64,
    pub status: String,
    pub channel: String,
    pub method_type: String,
    pub brand: Option<String>,
    pub last4: String,
    pub exp_month: Option<i64>,
    pub exp_year: Option<i64>,
    pub bank_account_type: Option<String>,
    pub routing_number: Option<String>,
    pub holder_name: Option<String>,
    pub processor: String,
    pub processor_key: String,
    pub processor_ref: Option<String>,
    pub decline_code: Option<String>,
    pub journal_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// The saved method it was paid with, if any.
    pub payment_method_id: Option<String>,
}

/// A payment joined with its account number, as most readers want it.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct PaymentView {
    #[sqlx(flatten)]
    pub payment: PaymentRow,
    pub account_number: String,
    pub account_timezone: String,
}

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct RefundRow {
    pub id: String,
    pub payment_id: String,
    pub amount: i64,
    pub currency: String,
    pub status: String,
    pub processor_key: String,
    pub processor_ref: Option<String>,
    pub failure_code: Option<String>,
    pub journal_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct JournalRow {
    pub id: String,
    pub kind: String,
    pub source_type: String,
    pub source_id: String,
    pub account_id: String,
    pub currency: String,
    pub created_at: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct PostingRow {
    pub journal_id: String,
    pub seq: i64,
    pub ledger_account: String,
    pub amount: i64,
    pub currency: String,
}

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct IdempotencyRow {
    pub scope: String,
    pub idem_key: String,
    pub endpoint: String,
    pub request_hash: String,
    pub state: String,
    pub resource_id: Option<String>,
    pub response_status: Option<i64>,
    pub response_body: Option<String>,
    pub created_at: i64,
    pub completed_at: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct ApiKeyRow {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub key_hash: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct OutboxRow {
    pub id: String,
    pub kind: String,
    pub dedupe_key: String,
    pub recipient: String,
    pub payload_json: String,
    pub created_at: i64,
    pub sent_at: Option<i64>,
    pub attempts: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct SandboxTxRow {
    pub processor_key: String,
    pub kind: String,
    pub reference: String,
    pub parent_reference: Option<String>,
    pub amount: i64,
    pub currency: String,
    pub outcome: String,
    pub decline_code: Option<String>,
    pub settle_at: Option<i64>,
    pub return_code: Option<String>,
    pub created_at: i64,
}

/// A saved payment method. The number is only in `ciphertext`, sealed under a data key that is
/// wrapped by key-encryption key `kek_version`.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct PaymentMethodRow {
    pub id: String,
    pub account_id: String,
    pub kind: String,
    pub brand: Option<String>,
    pub last4: String,
    pub exp_month: Option<i64>,
    pub exp_year: Option<i64>,
    pub postal_code: Option<String>,
    pub bank_account_type: Option<String>,
    pub routing_number: Option<String>,
    pub holder_name: Option<String>,
    pub bank_name: Option<String>,
    pub nickname: Option<String>,
    pub fingerprint: String,
    pub kek_version: i64,
    pub wrapped_key: String,
    pub ciphertext: String,
    pub is_default: i64,
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditRow {
    pub id: String,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub subject_type: String,
    pub subject_id: String,
    pub account_id: Option<String>,
    pub channel: Option<String>,
    pub detail: String,
}

/// One phone call's state between webhooks. `state` holds no secret; the sealed_* columns hold
/// the digits keyed for a card or bank account, encrypted, until the payment or the call ends.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct IvrCallRow {
    pub call_sid: String,
    pub from_number: String,
    pub status: String,
    pub turn: i64,
    pub state: String,
    pub last_twiml: Option<String>,
    pub sealed_kek_version: Option<i64>,
    pub sealed_wrapped_key: Option<String>,
    pub sealed_ciphertext: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A NACHA TEL authorization given by phone for one bank debit.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct TelAuthorizationRow {
    pub payment_id: String,
    pub call_sid: String,
    pub text: String,
    pub authorized_at: i64,
}

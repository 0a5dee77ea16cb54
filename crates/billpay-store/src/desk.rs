//! Queries of the agent desk's phone hand-offs: a representative sends a caller to the phone
//! line to key a card, and the outcome comes back to the desk. Same conventions as
//! [`crate::queries`]: one function per query, `$N` placeholders, the same SQL on both engines.

use sqlx::AnyConnection;

use crate::StoreError;
use crate::rows::IvrCallRow;

type R<T> = Result<T, StoreError>;

/// A hand-off of a phone caller to the keypad card entry. Never holds a card digit.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct PhoneHandoffRow {
    pub id: String,
    /// The short code the phone line accepts (in the transfer URL).
    pub code: String,
    pub account_id: String,
    pub account_number: String,
    pub staff_id: String,
    pub amount: i64,
    pub currency: String,
    /// open, in_call, paid, declined, pending, not_completed or expired.
    pub status: String,
    pub call_sid: Option<String>,
    pub result: Option<String>,
    pub expires_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Stores a new hand-off unless an open, unexpired one already has its code (then false: the
/// caller draws another code).
pub async fn insert_handoff(c: &mut AnyConnection, r: &PhoneHandoffRow, now: i64) -> R<bool> {
    let taken = sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM desk_phone_handoffs WHERE code = $1 AND status = 'open' \
         AND expires_at > $2",
    )
    .bind(&r.code)
    .bind(now)
    .fetch_one(&mut *c)
    .await?;
    if taken > 0 {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO desk_phone_handoffs (id, code, account_id, account_number, staff_id, amount, \
         currency, status, call_sid, result, expires_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(&r.id)
    .bind(&r.code)
    .bind(&r.account_id)
    .bind(&r.account_number)
    .bind(&r.staff_id)
    .bind(r.amount)
    .bind(&r.currency)
    .bind(&r.status)
    .bind(&r.call_sid)
    .bind(&r.result)
    .bind(r.expires_at)
    .bind(r.created_at)
    .bind(r.updated_at)
    .execute(c)
    .await?;
    Ok(true)
}

pub async fn handoff(c: &mut AnyConnection, id: &str) -> R<Option<PhoneHandoffRow>> {
    Ok(
        sqlx::query_as::<_, PhoneHandoffRow>("SELECT * FROM desk_phone_handoffs WHERE id = $1")
            .bind(id)
            .fetch_optional(c)
            .await?,
    )
}

/// The open, unexpired hand-off with this code, if any.
pub async fn open_handoff_by_code(
    c: &mut AnyConnection,
    code: &str,
    now: i64,
) -> R<Option<PhoneHandoffRow>> {
    Ok(sqlx::query_as::<_, PhoneHandoffRow>(
        "SELECT * FROM desk_phone_handoffs WHERE code = $1 AND status = 'open' AND expires_at > $2 \
         ORDER BY created_at DESC LIMIT 1",
    )
    .bind(code)
    .bind(now)
    .fetch_optional(c)
    .await?)
}

/// Claims an open hand-off for a call: once, by one call. False if it was claimed, used or
/// expired meanwhile.
pub async fn claim_handoff(c: &mut AnyConnection, id: &str, call_sid: &str, now: i64) -> R<bool> {
    let done = sqlx::query(
        "UPDATE desk_phone_handoffs SET status = 'in_call', call_sid = $2, updated_at = $3 \
         WHERE id = $1 AND status = 'open' AND expires_at > $3",
    )
    .bind(id)
    .bind(call_sid)
    .bind(now)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records how the call's card entry ended; only once (from in_call).
pub async fn finish_handoff(
    c: &mut AnyConnection,
    id: &str,
    status: &str,
    result: &str,
    now: i64,
) -> R<bool> {
    let done = sqlx::query(
        "UPDATE desk_phone_handoffs SET status = $2, result = $3, updated_at = $4 \
         WHERE id = $1 AND status = 'in_call'",
    )
    .bind(id)
    .bind(status)
    .bind(result)
    .bind(now)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// An account's hand-offs, newest first.
pub async fn handoffs_of_account(
    c: &mut AnyConnection,
    account_id: &str,
    limit: i64,
) -> R<Vec<PhoneHandoffRow>> {
    Ok(sqlx::query_as::<_, PhoneHandoffRow>(
        "SELECT * FROM desk_phone_handoffs WHERE account_id = $1 \
         ORDER BY created_at DESC, id DESC LIMIT $2",
    )
    .bind(account_id)
    .bind(limit)
    .fetch_all(c)
    .await?)
}

/// Starts a call's flow again from a hand-off, whatever state it was left in (transferred,
/// ended): the new state, the next turn, no sealed digits. False if the call is unknown.
pub async fn ivr_call_restart(c: &mut AnyConnection, r: &IvrCallRow) -> R<bool> {
    let done = sqlx::query(
        "UPDATE ivr_calls SET status = $2, turn = $3, state = $4, last_twiml = $5, \
         sealed_kek_version = NULL, sealed_wrapped_key = NULL, sealed_ciphertext = NULL, \
         updated_at = $6 WHERE call_sid = $1",
    )
    .bind(&r.call_sid)
    .bind(&r.status)
    .bind(r.turn)
    .bind(&r.state)
    .bind(&r.last_twiml)
    .bind(r.updated_at)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// How many chat transcripts of a conversation are in the outbox.
pub async fn transcripts_queued(c: &mut AnyConnection, conversation_id: &str) -> R<i64> {
    Ok(sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM outbox WHERE kind = 'email.chat_transcript' AND dedupe_key LIKE $1",
    )
    .bind(format!("chat_transcript:{conversation_id}:%"))
    .fetch_one(c)
    .await?)
}

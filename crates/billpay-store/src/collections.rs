//! Queries for collections: holds, arrangements, account events and webhook endpoints, the
//! account's service status. Same conventions as [`crate::queries`].

use sqlx::AnyConnection;

use crate::StoreError;

type R<T> = Result<T, StoreError>;

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct HoldRow {
    pub id: String,
    pub account_id: String,
    pub kind: String,
    pub until_date: String,
    pub reason: String,
    pub created_by: String,
    pub created_at: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct ArrangementRow {
    pub id: String,
    pub account_id: String,
    pub kind: String,
    pub past_due: i64,
    pub currency: String,
    pub status: String,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct InstallmentRow {
    pub arrangement_id: String,
    pub seq: i64,
    pub due_date: String,
    pub amount: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct EventRow {
    pub id: String,
    pub account_id: String,
    pub kind: String,
    pub payload: String,
    pub created_at: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct WebhookEndpointRow {
    pub id: String,
    pub url: String,
    pub kek_version: i64,
    pub wrapped_key: String,
    pub ciphertext: String,
    pub status: String,
    pub created_at: i64,
}

pub async fn insert_hold(c: &mut AnyConnection, h: &HoldRow) -> R<()> {
    sqlx::query(
        "INSERT INTO account_holds (id, account_id, kind, until_date, reason, created_by, \
         created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&h.id)
    .bind(&h.account_id)
    .bind(&h.kind)
    .bind(&h.until_date)
    .bind(&h.reason)
    .bind(&h.created_by)
    .bind(h.created_at)
    .execute(c)
    .await?;
    Ok(())
}

/// The latest day any hold of the account runs through, if one covers `date` or later.
pub async fn hold_until(c: &mut AnyConnection, account_id: &str, date: &str) -> R<Option<String>> {
    let (until,): (Option<String>,) = sqlx::query_as(
        "SELECT MAX(until_date) FROM account_holds WHERE account_id = $1 AND until_date >= $2",
    )
    .bind(account_id)
    .bind(date)
    .fetch_one(c)
    .await?;
    Ok(until)
}

pub async fn holds_of(c: &mut AnyConnection, account_id: &str) -> R<Vec<HoldRow>> {
    Ok(sqlx::query_as::<_, HoldRow>(
        "SELECT * FROM account_holds WHERE account_id = $1 ORDER BY created_at, id",
    )
    .bind(account_id)
    .fetch_all(c)
    .await?)
}

pub async fn insert_arrangement(
    c: &mut AnyConnection,
    a: &ArrangementRow,
    installments: &[InstallmentRow],
) -> R<()> {
    sqlx::query(
        "INSERT INTO arrangements (id, account_id, kind, past_due, currency, status, created_by, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&a.id)
    .bind(&a.account_id)
    .bind(&a.kind)
    .bind(a.past_due)
    .bind(&a.currency)
    .bind(&a.status)
    .bind(&a.created_by)
    .bind(a.created_at)
    .bind(a.updated_at)
    .execute(&mut *c)
    .await?;
    for i in installments {
        sqlx::query(
            "INSERT INTO arrangement_installments (arrangement_id, seq, due_date, amount) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(&i.arrangement_id)
        .bind(i.seq)
        .bind(&i.due_date)
        .bind(i.amount)
        .execute(&mut *c)
        .await?;
    }
    Ok(())
}

pub async fn active_arrangement(
    c: &mut AnyConnection,
    account_id: &str,
) -> R<Option<ArrangementRow>> {
    Ok(sqlx::query_as::<_, ArrangementRow>(
        "SELECT * FROM arrangements WHERE account_id = $1 AND status = 'active' \
         ORDER BY created_at DESC LIMIT 1",
    )
    .bind(account_id)
    .fetch_optional(c)
    .await?)
}

pub async fn arrangement(c: &mut AnyConnection, id: &str) -> R<Option<ArrangementRow>> {
    Ok(
        sqlx::query_as::<_, ArrangementRow>("SELECT * FROM arrangements WHERE id = $1")
            .bind(id)
            .fetch_optional(c)
            .await?,
    )
}

pub async fn installments_of(c: &mut AnyConnection, id: &str) -> R<Vec<InstallmentRow>> {
    Ok(sqlx::query_as::<_, InstallmentRow>(
        "SELECT * FROM arrangement_installments WHERE arrangement_id = $1 ORDER BY seq",
    )
    .bind(id)
    .fetch_all(c)
    .await?)
}

pub async fn set_arrangement_status(
    c: &mut AnyConnection,
    id: &str,
    from: &str,
    to: &str,
    now: i64,
) -> R<bool> {
    let done = sqlx::query(
        "UPDATE arrangements SET status = $3, updated_at = $4 WHERE id = $1 AND status = $2",
    )
    .bind(id)
    .bind(from)
    .bind(to)
    .bind(now)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn broken_since(c: &mut AnyConnection, account_id: &str, since: i64) -> R<i64> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM arrangements WHERE account_id = $1 \
         AND status = 'broken' AND updated_at >= $2",
    )
    .bind(account_id)
    .bind(since)
    .fetch_one(c)
    .await?;
    Ok(n)
}

pub async fn insert_event(c: &mut AnyConnection, e: &EventRow) -> R<()> {
    insert_event_with(c, e, "").await.map(|_| ())
}

/// Inserts an event unless one with its id exists; true if inserted. Events with ids derived
/// from what caused them (the webhook relay's `evt_<ledger entry>`) are made once however many
/// relays see the cause.
pub async fn insert_event_once(c: &mut AnyConnection, e: &EventRow) -> R<bool> {
    insert_event_with(c, e, " ON CONFLICT (id) DO NOTHING").await
}

async fn insert_event_with(c: &mut AnyConnection, e: &EventRow, conflict: &str) -> R<bool> {
    let sql = format!(
        "INSERT INTO account_events (id, account_id, kind, payload, created_at) \
         VALUES ($1, $2, $3, $4, $5){conflict}"
    );
    let done = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&e.id)
        .bind(&e.account_id)
        .bind(&e.kind)
        .bind(&e.payload)
        .bind(e.created_at)
        .execute(c)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Where the relay named `name` has read the ledger up to (microseconds).
pub async fn relay_cursor(c: &mut AnyConnection, name: &str) -> R<i64> {
    Ok(
        sqlx::query_scalar::<_, i64>("SELECT cursor_at FROM event_relays WHERE name = $1")
            .bind(name)
            .fetch_optional(c)
            .await?
            .unwrap_or(0),
    )
}

/// Moves the relay's cursor forward (never back).
pub async fn advance_relay_cursor(c: &mut AnyConnection, name: &str, to: i64) -> R<()> {
    sqlx::query(
        "INSERT INTO event_relays (name, cursor_at) VALUES ($1, $2) \
         ON CONFLICT (name) DO UPDATE SET cursor_at = $2 WHERE event_relays.cursor_at < $2",
    )
    .bind(name)
    .bind(to)
    .execute(c)
    .await?;
    Ok(())
}

/// Events after the one with id `after` (ids are time-ordered), oldest first.
pub async fn events_after(c: &mut AnyConnection, after: &str, limit: i64) -> R<Vec<EventRow>> {
    Ok(sqlx::query_as::<_, EventRow>(
        "SELECT * FROM account_events WHERE id > $1 ORDER BY id LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(c)
    .await?)
}

pub async fn event(c: &mut AnyConnection, id: &str) -> R<Option<EventRow>> {
    Ok(
        sqlx::query_as::<_, EventRow>("SELECT * FROM account_events WHERE id = $1")
            .bind(id)
            .fetch_optional(c)
            .await?,
    )
}

pub async fn insert_webhook_endpoint(c: &mut AnyConnection, w: &WebhookEndpointRow) -> R<()> {
    sqlx::query(
        "INSERT INTO webhook_endpoints (id, url, kek_version, wrapped_key, ciphertext, status, \
         created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&w.id)
    .bind(&w.url)
    .bind(w.kek_version)
    .bind(&w.wrapped_key)
    .bind(&w.ciphertext)
    .bind(&w.status)
    .bind(w.created_at)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn webhook_endpoints(c: &mut AnyConnection) -> R<Vec<WebhookEndpointRow>> {
    Ok(sqlx::query_as::<_, WebhookEndpointRow>(
        "SELECT * FROM webhook_endpoints WHERE status = 'active' ORDER BY created_at, id",
    )
    .fetch_all(c)
    .await?)
}

pub async fn webhook_endpoint(c: &mut AnyConnection, id: &str) -> R<Option<WebhookEndpointRow>> {
    Ok(
        sqlx::query_as::<_, WebhookEndpointRow>("SELECT * FROM webhook_endpoints WHERE id = $1")
            .bind(id)
            .fetch_optional(c)
            .await?,
    )
}

/// Moves an account's service status; false when it was not in `from`.
pub async fn set_service_status(
    c: &mut AnyConnection,
    account_id: &str,
    from: &str,
    to: &str,
    now: i64,
) -> R<bool> {
    let done = sqlx::query(
        "UPDATE accounts SET service_status = $3, updated_at = $4 \
         WHERE id = $1 AND service_status = $2",
    )
    .bind(account_id)
    .bind(from)
    .bind(to)
    .bind(now)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn charge(c: &mut AnyConnection, id: &str) -> R<Option<crate::ach::ChargeRow>> {
    Ok(
        sqlx::query_as::<_, crate::ach::ChargeRow>("SELECT * FROM charges WHERE id = $1")
            .bind(id)
            .fetch_optional(c)
            .await?,
    )
}

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct ConsentRow {
    pub account_id: String,
    pub channel: String,
    pub status: String,
    pub source: String,
    pub consent_text: String,
    pub updated_at: i64,
}

pub async fn upsert_consent(c: &mut AnyConnection, r: &ConsentRow) -> R<()> {
    sqlx::query(
        "INSERT INTO contact_consents (account_id, channel, status, source, consent_text, \
         updated_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (account_id, channel) DO UPDATE \
         SET status = $3, source = $4, consent_text = $5, updated_at = $6",
    )
    .bind(&r.account_id)
    .bind(&r.channel)
    .bind(&r.status)
    .bind(&r.source)
    .bind(&r.consent_text)
    .bind(r.updated_at)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn consents_of(c: &mut AnyConnection, account_id: &str) -> R<Vec<ConsentRow>> {
    Ok(sqlx::query_as::<_, ConsentRow>(
        "SELECT * FROM contact_consents WHERE account_id = $1 ORDER BY channel",
    )
    .bind(account_id)
    .fetch_all(c)
    .await?)
}

/// Accounts with this phone number whose text-message consent is granted.
pub async fn sms_consented_accounts(c: &mut AnyConnection, phone: &str) -> R<Vec<String>> {
    Ok(sqlx::query_scalar::<_, String>(
        "SELECT a.account_number FROM accounts a JOIN contact_consents k ON k.account_id = a.id \
         WHERE a.phone = $1 AND k.channel = 'sms' AND k.status = 'granted' ORDER BY a.created_at",
    )
    .bind(phone)
    .fetch_all(c)
    .await?)
}

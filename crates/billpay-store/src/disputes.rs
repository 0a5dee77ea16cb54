//! Queries for inbound processor webhooks (the events already handled) and card disputes.
//! Same conventions as [`crate::queries`].

use sqlx::AnyConnection;

use crate::StoreError;

type R<T> = Result<T, StoreError>;

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct ProcessorEventRow {
    pub processor: String,
    pub event_id: String,
    pub event_type: String,
    pub object_id: String,
    pub outcome: String,
    pub received_at: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct DisputeRow {
    pub id: String,
    pub processor: String,
    pub processor_dispute_id: String,
    pub payment_id: String,
    pub account_id: String,
    pub amount: i64,
    pub currency: String,
    pub reason: String,
    pub status: String,
    pub journal_id: Option<String>,
    pub closing_journal_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The event as handled before, if it was.
pub async fn event_get(
    c: &mut AnyConnection,
    processor: &str,
    event_id: &str,
) -> R<Option<ProcessorEventRow>> {
    Ok(sqlx::query_as::<_, ProcessorEventRow>(
        "SELECT * FROM processor_events WHERE processor = $1 AND event_id = $2",
    )
    .bind(processor)
    .bind(event_id)
    .fetch_optional(c)
    .await?)
}

/// Records a handled event; false if it was recorded already.
pub async fn event_insert(c: &mut AnyConnection, e: &ProcessorEventRow) -> R<bool> {
    let done = sqlx::query(
        "INSERT INTO processor_events (processor, event_id, event_type, object_id, outcome, \
         received_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (processor, event_id) DO NOTHING",
    )
    .bind(&e.processor)
    .bind(&e.event_id)
    .bind(&e.event_type)
    .bind(&e.object_id)
    .bind(&e.outcome)
    .bind(e.received_at)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Forgets handled events received before `before` (Stripe redelivers for 3 days at most).
pub async fn events_prune(c: &mut AnyConnection, before: i64) -> R<u64> {
    let done = sqlx::query("DELETE FROM processor_events WHERE received_at < $1")
        .bind(before)
        .execute(c)
        .await?;
    Ok(done.rows_affected())
}

pub async fn dispute_insert(c: &mut AnyConnection, d: &DisputeRow) -> R<bool> {
    let done = sqlx::query(
        "INSERT INTO disputes (id, processor, processor_dispute_id, payment_id, account_id, \
         amount, currency, reason, status, journal_id, closing_journal_id, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
         ON CONFLICT (processor, processor_dispute_id) DO NOTHING",
    )
    .bind(&d.id)
    .bind(&d.processor)
    .bind(&d.processor_dispute_id)
    .bind(&d.payment_id)
    .bind(&d.account_id)
    .bind(d.amount)
    .bind(&d.currency)
    .bind(&d.reason)
    .bind(&d.status)
    .bind(&d.journal_id)
    .bind(&d.closing_journal_id)
    .bind(d.created_at)
    .bind(d.updated_at)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn dispute_by_processor_id(
    c: &mut AnyConnection,
    processor: &str,
    processor_dispute_id: &str,
) -> R<Option<DisputeRow>> {
    Ok(sqlx::query_as::<_, DisputeRow>(
        "SELECT * FROM disputes WHERE processor = $1 AND processor_dispute_id = $2",
    )
    .bind(processor)
    .bind(processor_dispute_id)
    .fetch_optional(c)
    .await?)
}

/// Moves a dispute from `from_status` to `status`, recording its reversal or closing entry when
/// given; conditional on the status it started from, so two deliveries racing cannot both post.
pub async fn dispute_update(
    c: &mut AnyConnection,
    id: &str,
    from_status: &str,
    status: &str,
    journal_id: Option<&str>,
    closing_journal_id: Option<&str>,
    now: i64,
) -> R<bool> {
    let done = sqlx::query(
        "UPDATE disputes SET status = $1, journal_id = COALESCE($2, journal_id), \
         closing_journal_id = COALESCE($3, closing_journal_id), updated_at = $4 \
         WHERE id = $5 AND status = $6",
    )
    .bind(status)
    .bind(journal_id)
    .bind(closing_journal_id)
    .bind(now)
    .bind(id)
    .bind(from_status)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn disputes_of_payment(c: &mut AnyConnection, payment_id: &str) -> R<Vec<DisputeRow>> {
    Ok(sqlx::query_as::<_, DisputeRow>(
        "SELECT * FROM disputes WHERE payment_id = $1 ORDER BY created_at, id",
    )
    .bind(payment_id)
    .fetch_all(c)
    .await?)
}

/// The disputes of an account's payments, newest first.
pub async fn disputes_of_account(c: &mut AnyConnection, account_id: &str) -> R<Vec<DisputeRow>> {
    Ok(sqlx::query_as::<_, DisputeRow>(
        "SELECT * FROM disputes WHERE account_id = $1 ORDER BY created_at DESC, id DESC",
    )
    .bind(account_id)
    .fetch_all(c)
    .await?)
}

/// Disputes newest first; only those in `status` when given.
pub async fn disputes_list(
    c: &mut AnyConnection,
    status: Option<&str>,
    limit: i64,
) -> R<Vec<DisputeRow>> {
    Ok(sqlx::query_as::<_, DisputeRow>(
        "SELECT * FROM disputes WHERE ($1 IS NULL OR status = $1) \
         ORDER BY created_at DESC, id DESC LIMIT $2",
    )
    .bind(status)
    .bind(limit.clamp(1, 500))
    .fetch_all(c)
    .await?)
}

/// For `billpay verify`: each dispute with what its entries post to the receivable. An open or
/// lost dispute must have reversed the payment (+amount); a won one or an inquiry
/// (`warning_…`) must net to zero.
pub async fn dispute_postings(c: &mut AnyConnection) -> R<Vec<(String, String, i64, i64)>> {
    Ok(sqlx::query_as::<_, (String, String, i64, i64)>(
        "SELECT d.id, d.status, d.amount, COALESCE((SELECT CAST(SUM(po.amount) AS BIGINT) \
           FROM journal_entries j JOIN postings po ON po.journal_id = j.id \
           JOIN accounts a ON a.id = d.account_id \
           WHERE j.source_type = 'dispute' AND j.source_id = d.id \
             AND po.ledger_account = 'ar:' || a.account_number), 0) FROM disputes d ORDER BY d.id",
    )
    .fetch_all(c)
    .await?)
}

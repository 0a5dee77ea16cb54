//! Queries for the job queue (leased rows), AutoPay enrollments and scheduled payments. Same
//! conventions as [`crate::queries`]. Leasing is the one place the engines differ: PostgreSQL
//! picks due jobs with `FOR UPDATE SKIP LOCKED`, so several workers never take the same row;
//! on SQLite the single writer already serializes every lease.

use sqlx::AnyConnection;

use crate::{Engine, StoreError};

type R<T> = Result<T, StoreError>;

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct JobRow {
    pub id: String,
    pub kind: String,
    pub business_key: String,
    pub payload: String,
    pub run_at: i64,
    pub status: String,
    pub attempts: i64,
    pub max_attempts: i64,
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct AutopayRow {
    pub account_id: String,
    pub payment_method_id: String,
    pub timing: String,
    pub days_before: i64,
    pub maximum: Option<i64>,
    pub status: String,
    pub channel: String,
    pub authorization_text: String,
    pub enrolled_at: i64,
    pub updated_at: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct ScheduledPaymentRow {
    pub id: String,
    pub account_id: String,
    pub payment_method_id: String,
    pub amount: i64,
    pub currency: String,
    pub channel: String,
    pub frequency: String,
    pub start_date: String,
    pub end_date: Option<String>,
    pub max_count: Option<i64>,
    pub made_count: i64,
    pub next_date: Option<String>,
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// The TEL authorization of a bank debit scheduled by phone.
    pub authorization_text: Option<String>,
    pub authorization_call_sid: Option<String>,
    pub authorization_at: Option<i64>,
}

// ---------------------------------------------------------------- jobs

/// Enqueues a job unless one with its business key exists; true when enqueued.
pub async fn enqueue(c: &mut AnyConnection, j: &JobRow) -> R<bool> {
    let done = sqlx::query(
        "INSERT INTO jobs (id, kind, business_key, payload, run_at, status, attempts, \
         max_attempts, lease_owner, lease_until, last_error, created_at, updated_at, finished_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
         ON CONFLICT (business_key) DO NOTHING",
    )
    .bind(&j.id)
    .bind(&j.kind)
    .bind(&j.business_key)
    .bind(&j.payload)
    .bind(j.run_at)
    .bind(&j.status)
    .bind(j.attempts)
    .bind(j.max_attempts)
    .bind(&j.lease_owner)
    .bind(j.lease_until)
    .bind(&j.last_error)
    .bind(j.created_at)
    .bind(j.updated_at)
    .bind(j.finished_at)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Leases up to `limit` due jobs to `owner` until `lease_until`: queued jobs whose time has
/// come, and running jobs whose lease ran out (their worker died).
pub async fn lease(
    c: &mut AnyConnection,
    engine: Engine,
    owner: &str,
    now: i64,
    lease_until: i64,
    limit: i64,
) -> R<Vec<JobRow>> {
    lease_kind(c, engine, owner, now, lease_until, limit, KindFilter::Any).await
}

/// Which kinds of job a lease takes.
#[derive(Clone, Copy, Debug)]
pub enum KindFilter<'a> {
    Any,
    Only(&'a str),
    Except(&'a str),
}

/// Leases up to `limit` due jobs of the kinds `kinds` lets through, oldest first.
pub async fn lease_kind(
    c: &mut AnyConnection,
    engine: Engine,
    owner: &str,
    now: i64,
    lease_until: i64,
    limit: i64,
    kinds: KindFilter<'_>,
) -> R<Vec<JobRow>> {
    // Queued jobs that are due, and running jobs whose lease ran out, each read in index order
    // (jobs_due, jobs_kind_due) and limited on its own: one query with an OR would collect and
    // sort every due job for each lease.
    let (kind_sql, kind) = match kinds {
        KindFilter::Any => ("", None),
        KindFilter::Only(k) => ("AND kind = $5", Some(k)),
        KindFilter::Except(k) => ("AND kind <> $5", Some(k)),
    };
    let lock = match engine {
        Engine::Postgres => "FOR UPDATE SKIP LOCKED",
        Engine::Sqlite => "",
    };
    let pick = format!(
        "SELECT id FROM (\
         SELECT id, run_at FROM (SELECT id, run_at FROM jobs WHERE status = 'queued' \
         AND run_at <= $2 {kind_sql} ORDER BY run_at, id LIMIT $4 {lock}) AS due \
         UNION ALL \
         SELECT id, run_at FROM (SELECT id, run_at FROM jobs WHERE status = 'running' \
         AND lease_until < $2 {kind_sql} ORDER BY run_at, id LIMIT $4 {lock}) AS expired\
         ) AS pick ORDER BY run_at, id LIMIT $4"
    );
    let sql = format!(
        "UPDATE jobs SET status = 'running', lease_owner = $1, lease_until = $3, \
         attempts = attempts + 1, updated_at = $2 WHERE id IN ({pick}) RETURNING *"
    );
    let mut q = sqlx::query_as::<_, JobRow>(sqlx::AssertSqlSafe(sql))
        .bind(owner)
        .bind(now)
        .bind(lease_until)
        .bind(limit);
    if let Some(k) = kind {
        q = q.bind(k);
    }
    let mut rows = q.fetch_all(c).await?;
    rows.sort_by(|a, b| (a.run_at, &a.id).cmp(&(b.run_at, &b.id)));
    Ok(rows)
}

/// Marks a leased job done; false when the lease was lost to another worker.
pub async fn finish(c: &mut AnyConnection, id: &str, owner: &str, now: i64) -> R<bool> {
    let done = sqlx::query(
        "UPDATE jobs SET status = 'done', finished_at = $3, updated_at = $3, lease_until = NULL \
         WHERE id = $1 AND lease_owner = $2 AND status = 'running'",
    )
    .bind(id)
    .bind(owner)
    .bind(now)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records a failed run: queued again at `retry_at`, or failed for good when `retry_at` is None.
pub async fn fail(
    c: &mut AnyConnection,
    id: &str,
    owner: &str,
    error: &str,
    retry_at: Option<i64>,
    now: i64,
) -> R<bool> {
    let done = sqlx::query(
        "UPDATE jobs SET status = CASE WHEN $4 IS NULL THEN 'failed' ELSE 'queued' END, \
         run_at = COALESCE($4, run_at), last_error = $3, lease_owner = NULL, lease_until = NULL, \
         updated_at = $5, finished_at = CASE WHEN $4 IS NULL THEN $5 ELSE NULL END \
         WHERE id = $1 AND lease_owner = $2 AND status = 'running'",
    )
    .bind(id)
    .bind(owner)
    .bind(error)
    .bind(retry_at)
    .bind(now)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Cancels queued jobs with keys starting with `prefix` (an AutoPay that was canceled).
pub async fn cancel_queued(c: &mut AnyConnection, key_prefix: &str, now: i64) -> R<u64> {
    let done = sqlx::query(
        "UPDATE jobs SET status = 'canceled', updated_at = $2, finished_at = $2 \
         WHERE status = 'queued' AND business_key LIKE $1",
    )
    .bind(format!("{key_prefix}%"))
    .bind(now)
    .execute(c)
    .await?;
    Ok(done.rows_affected())
}

pub async fn job_by_key(c: &mut AnyConnection, key: &str) -> R<Option<JobRow>> {
    Ok(
        sqlx::query_as::<_, JobRow>("SELECT * FROM jobs WHERE business_key = $1")
            .bind(key)
            .fetch_optional(c)
            .await?,
    )
}

/// Jobs in a status, by run time: for the operator's view.
pub async fn jobs_with_status(
    c: &mut AnyConnection,
    status: &str,
    from: i64,
    to: i64,
    limit: i64,
) -> R<Vec<JobRow>> {
    Ok(sqlx::query_as::<_, JobRow>(
        "SELECT * FROM jobs WHERE status = $1 AND run_at >= $2 AND run_at < $3 \
         ORDER BY run_at, id LIMIT $4",
    )
    .bind(status)
    .bind(from)
    .bind(to)
    .bind(limit)
    .fetch_all(c)
    .await?)
}

/// (kind, status, count) over every job.
pub async fn job_counts(c: &mut AnyConnection) -> R<Vec<(String, String, i64)>> {
    Ok(sqlx::query_as::<_, (String, String, i64)>(
        "SELECT kind, status, CAST(COUNT(*) AS BIGINT) FROM jobs GROUP BY kind, status \
         ORDER BY kind, status",
    )
    .fetch_all(c)
    .await?)
}

// ---------------------------------------------------------------- AutoPay

pub async fn upsert_autopay(c: &mut AnyConnection, a: &AutopayRow) -> R<()> {
    sqlx::query(
        "INSERT INTO autopay_enrollments (account_id, payment_method_id, timing, days_before, \
         maximum, status, channel, authorization_text, enrolled_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (account_id) DO UPDATE SET \
         payment_method_id = $2, timing = $3, days_before = $4, maximum = $5, status = $6, \
         channel = $7, authorization_text = $8, enrolled_at = $9, updated_at = $10",
    )
    .bind(&a.account_id)
    .bind(&a.payment_method_id)
    .bind(&a.timing)
    .bind(a.days_before)
    .bind(a.maximum)
    .bind(&a.status)
    .bind(&a.channel)
    .bind(&a.authorization_text)
    .bind(a.enrolled_at)
    .bind(a.updated_at)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn autopay(c: &mut AnyConnection, account_id: &str) -> R<Option<AutopayRow>> {
    Ok(
        sqlx::query_as::<_, AutopayRow>("SELECT * FROM autopay_enrollments WHERE account_id = $1")
            .bind(account_id)
            .fetch_optional(c)
            .await?,
    )
}

pub async fn set_autopay_status(
    c: &mut AnyConnection,
    account_id: &str,
    status: &str,
    now: i64,
) -> R<bool> {
    let done = sqlx::query(
        "UPDATE autopay_enrollments SET status = $2, updated_at = $3 WHERE account_id = $1",
    )
    .bind(account_id)
    .bind(status)
    .bind(now)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Active enrollments paying with a saved method (to stop them when the method is stopped).
pub async fn autopay_with_method(c: &mut AnyConnection, method_id: &str) -> R<Vec<AutopayRow>> {
    Ok(sqlx::query_as::<_, AutopayRow>(
        "SELECT * FROM autopay_enrollments WHERE payment_method_id = $1 AND status = 'active'",
    )
    .bind(method_id)
    .fetch_all(c)
    .await?)
}

// ---------------------------------------------------------------- scheduled payments

pub async fn insert_scheduled(c: &mut AnyConnection, s: &ScheduledPaymentRow) -> R<()> {
    sqlx::query(
        "INSERT INTO scheduled_payments (id, account_id, payment_method_id, amount, currency, \
         channel, frequency, start_date, end_date, max_count, made_count, next_date, status, \
         created_at, updated_at, authorization_text, authorization_call_sid, authorization_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
    )
    .bind(&s.id)
    .bind(&s.account_id)
    .bind(&s.payment_method_id)
    .bind(s.amount)
    .bind(&s.currency)
    .bind(&s.channel)
    .bind(&s.frequency)
    .bind(&s.start_date)
    .bind(&s.end_date)
    .bind(s.max_count)
    .bind(s.made_count)
    .bind(&s.next_date)
    .bind(&s.status)
    .bind(s.created_at)
    .bind(s.updated_at)
    .bind(&s.authorization_text)
    .bind(&s.authorization_call_sid)
    .bind(s.authorization_at)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn scheduled(c: &mut AnyConnection, id: &str) -> R<Option<ScheduledPaymentRow>> {
    Ok(
        sqlx::query_as::<_, ScheduledPaymentRow>("SELECT * FROM scheduled_payments WHERE id = $1")
            .bind(id)
            .fetch_optional(c)
            .await?,
    )
}

pub async fn scheduled_of_account(
    c: &mut AnyConnection,
    account_id: &str,
) -> R<Vec<ScheduledPaymentRow>> {
    Ok(sqlx::query_as::<_, ScheduledPaymentRow>(
        "SELECT * FROM scheduled_payments WHERE account_id = $1 ORDER BY created_at, id",
    )
    .bind(account_id)
    .fetch_all(c)
    .await?)
}

/// Moves a schedule on after one payment (or an edit); conditional on the count it started
/// from, so one occurrence can never advance it twice.
#[allow(clippy::too_many_arguments)]
pub async fn update_scheduled(
    c: &mut AnyConnection,
    id: &str,
    expected_made: i64,
    made_count: i64,
    next_date: Option<&str>,
    status: &str,
    amount: i64,
    payment_method_id: &str,
    now: i64,
) -> R<bool> {
    let done = sqlx::query(
        "UPDATE scheduled_payments SET made_count = $3, next_date = $4, status = $5, amount = $6, \
         payment_method_id = $7, updated_at = $8 WHERE id = $1 AND made_count = $2 \
         AND status = 'active'",
    )
    .bind(id)
    .bind(expected_made)
    .bind(made_count)
    .bind(next_date)
    .bind(status)
    .bind(amount)
    .bind(payment_method_id)
    .bind(now)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Receivable balance less card payments still in flight (processing, not yet posted): what
/// an automatic payment may take without ever paying more than is owed.
///
/// One statement, so one snapshot: read as two, on PostgreSQL a payment that posted between
/// them was counted neither as posted nor as in flight, and AutoPay charged a bill a phone
/// payment had just paid (found by `a_manual_payment_racing_autopay_never_overpays`).
pub async fn payable_balance(c: &mut AnyConnection, account_id: &str, receivable: &str) -> R<i64> {
    let (owed,): (i64,) = sqlx::query_as(
        "SELECT CAST(COALESCE((SELECT SUM(amount) FROM postings WHERE ledger_account = $1), 0) \
         - COALESCE((SELECT SUM(amount) FROM payments WHERE account_id = $2 \
         AND status IN ('pending', 'processing') AND journal_id IS NULL), 0) AS BIGINT)",
    )
    .bind(receivable)
    .bind(account_id)
    .fetch_one(c)
    .await?;
    Ok(owed)
}

/// Payments that count toward a statement: made on or after `since` and not failed, canceled
/// or returned.
pub async fn paid_since(c: &mut AnyConnection, account_id: &str, since: i64) -> R<i64> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COALESCE(CAST(SUM(amount - refunded_amount) AS BIGINT), 0) FROM payments \
         WHERE account_id = $1 AND created_at >= $2 \
         AND status IN ('pending', 'processing', 'succeeded', 'partially_refunded')",
    )
    .bind(account_id)
    .bind(since)
    .fetch_one(c)
    .await?;
    Ok(n)
}

pub async fn statement_by_id(
    c: &mut AnyConnection,
    id: &str,
) -> R<Option<crate::rows::StatementRow>> {
    Ok(
        sqlx::query_as::<_, crate::rows::StatementRow>("SELECT * FROM statements WHERE id = $1")
            .bind(id)
            .fetch_optional(c)
            .await?,
    )
}

/// Schedules a job, or moves it: a queued or canceled job with this key is (re)queued for
/// `run_at`; a job that already ran, or is running, is left alone. True when queued.
pub async fn schedule(c: &mut AnyConnection, j: &JobRow) -> R<bool> {
    if enqueue(c, j).await? {
        return Ok(true);
    }
    let done = sqlx::query(
        "UPDATE jobs SET status = 'queued', run_at = $2, payload = $3, updated_at = $4, \
         finished_at = NULL WHERE business_key = $1 AND status IN ('queued', 'canceled')",
    )
    .bind(&j.business_key)
    .bind(j.run_at)
    .bind(&j.payload)
    .bind(j.updated_at)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

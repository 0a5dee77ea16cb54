//! One function per query. Each takes a connection: inside [`crate::Store::write`] it is the
//! write transaction; for reads, a connection from [`crate::Store::reader`].

use sqlx::AnyConnection;

use crate::StoreError;
use crate::rows::*;

type R<T> = Result<T, StoreError>;

/// Most rows any list query returns.
pub const LIST_LIMIT_MAX: i64 = 500;

// ---------------------------------------------------------------- accounts

pub async fn insert_account(c: &mut AnyConnection, a: &AccountRow) -> R<()> {
    sqlx::query(
        "INSERT INTO accounts (id, account_number, name, email, phone, postal_code, timezone, \
         currency, service_status, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&a.id)
    .bind(&a.account_number)
    .bind(&a.name)
    .bind(&a.email)
    .bind(&a.phone)
    .bind(&a.postal_code)
    .bind(&a.timezone)
    .bind(&a.currency)
    .bind(&a.service_status)
    .bind(a.created_at)
    .bind(a.updated_at)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn account_by_number(c: &mut AnyConnection, number: &str) -> R<Option<AccountRow>> {
    Ok(
        sqlx::query_as::<_, AccountRow>("SELECT * FROM accounts WHERE account_number = $1")
            .bind(number)
            .fetch_optional(c)
            .await?,
    )
}

pub async fn account_by_id(c: &mut AnyConnection, id: &str) -> R<Option<AccountRow>> {
    Ok(
        sqlx::query_as::<_, AccountRow>("SELECT * FROM accounts WHERE id = $1")
            .bind(id)
            .fetch_optional(c)
            .await?,
    )
}

/// Takes the account's row lock for the rest of the transaction (PostgreSQL), so that checks
/// across the account's payments (the duplicate guard) are serialized. On SQLite the one
/// writer already serializes every write. Returns false if there is no such account.
pub async fn lock_account(c: &mut AnyConnection, account_id: &str, now: i64) -> R<bool> {
    let done = sqlx::query("UPDATE accounts SET updated_at = $2 WHERE id = $1")
        .bind(account_id)
        .bind(now)
        .execute(c)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn count_accounts(c: &mut AnyConnection) -> R<i64> {
    Ok(
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM accounts")
            .fetch_one(c)
            .await?,
    )
}

// ---------------------------------------------------------------- statements

pub async fn insert_statement(c: &mut AnyConnection, s: &StatementRow) -> R<()> {
    sqlx::query(
        "INSERT INTO statements (id, account_id, statement_date, due_date, amount_due, currency, \
         lines_json, journal_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&s.id)
    .bind(&s.account_id)
    .bind(&s.statement_date)
    .bind(&s.due_date)
    .bind(s.amount_due)
    .bind(&s.currency)
    .bind(&s.lines_json)
    .bind(&s.journal_id)
    .bind(s.created_at)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn latest_statement(c: &mut AnyConnection, account_id: &str) -> R<Option<StatementRow>> {
    Ok(sqlx::query_as::<_, StatementRow>(
        "SELECT * FROM statements WHERE account_id = $1 \
         ORDER BY statement_date DESC, created_at DESC LIMIT 1",
    )
    .bind(account_id)
    .fetch_optional(c)
    .await?)
}

pub async fn list_statements(c: &mut AnyConnection, account_id: &str) -> R<Vec<StatementRow>> {
    Ok(sqlx::query_as::<_, StatementRow>(
        "SELECT * FROM statements WHERE account_id = $1 ORDER BY statement_date DESC LIMIT $2",
    )
    .bind(account_id)
    .bind(LIST_LIMIT_MAX)
    .fetch_all(c)
    .await?)
}

// ---------------------------------------------------------------- ledger

/// Inserts a journal entry and its postings. Asserts, before writing, that the postings are
/// at least two, in the entry's currency, and sum to zero.
pub async fn insert_journal(
    c: &mut AnyConnection,
    j: &JournalRow,
    postings: &[(String, i64)],
) -> R<()> {
    if postings.len() < 2 {
        return Err(StoreError::Internal(
            "a journal entry needs two postings".into(),
        ));
    }
    let mut sum: i64 = 0;
    for (_, amount) in postings {
        sum = sum
            .checked_add(*amount)
            .ok_or_else(|| StoreError::Internal("posting sum overflows".into()))?;
    }
    if sum != 0 {
        return Err(StoreError::Internal(format!(
            "journal entry {} is unbalanced by {sum}",
            j.id
        )));
    }
    sqlx::query(
        "INSERT INTO journal_entries (id, kind, source_type, source_id, account_id, currency, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&j.id)
    .bind(&j.kind)
    .bind(&j.source_type)
    .bind(&j.source_id)
    .bind(&j.account_id)
    .bind(&j.currency)
    .bind(j.created_at)
    .execute(&mut *c)
    .await?;
    for (seq, (ledger_account, amount)) in postings.iter().enumerate() {
        sqlx::query(
            "INSERT INTO postings (journal_id, seq, ledger_account, amount, currency) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&j.id)
        .bind(seq as i64)
        .bind(ledger_account)
        .bind(*amount)
        .bind(&j.currency)
        .execute(&mut *c)
        .await?;
    }
    Ok(())
}

/// Sum of a ledger account's postings (for a receivable: what the customer owes).
pub async fn ledger_balance(c: &mut AnyConnection, ledger_account: &str) -> R<i64> {
    Ok(sqlx::query_scalar::<_, i64>(
        "SELECT COALESCE(CAST(SUM(amount) AS BIGINT), 0) FROM postings WHERE ledger_account = $1",
    )
    .bind(ledger_account)
    .fetch_one(c)
    .await?)
}

/// Journal entries whose postings do not sum to zero, or that have fewer than two postings.
pub async fn unbalanced_journals(c: &mut AnyConnection) -> R<Vec<(String, i64, i64)>> {
    Ok(sqlx::query_as::<_, (String, i64, i64)>(
        "SELECT j.id, COALESCE(CAST(SUM(p.amount) AS BIGINT), 0), COUNT(p.seq) FROM journal_entries j \
         LEFT JOIN postings p ON p.journal_id = j.id \
         GROUP BY j.id HAVING COALESCE(CAST(SUM(p.amount) AS BIGINT), 0) <> 0 OR COUNT(p.seq) < 2",
    )
    .fetch_all(c)
    .await?)
}

/// Postings whose currency differs from their journal entry's.
pub async fn mixed_currency_postings(c: &mut AnyConnection) -> R<i64> {
    Ok(sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM postings p JOIN journal_entries j ON j.id = p.journal_id \
         WHERE p.currency <> j.currency",
    )
    .fetch_one(c)
    .await?)
}

/// Total of every posting, per currency (each must be zero).
pub async fn ledger_totals(c: &mut AnyConnection) -> R<Vec<(String, i64)>> {
    Ok(sqlx::query_as::<_, (String, i64)>(
        "SELECT currency, COALESCE(CAST(SUM(amount) AS BIGINT), 0) FROM postings GROUP BY currency",
    )
    .fetch_all(c)
    .await?)
}

/// Journal entries whose source row does not exist.
pub async fn orphan_journals(c: &mut AnyConnection) -> R<Vec<(String, String, String)>> {
    Ok(sqlx::query_as::<_, (String, String, String)>(
        "SELECT j.id, j.source_type, j.source_id FROM journal_entries j \
         WHERE (j.source_type = 'statement' AND NOT EXISTS (SELECT 1 FROM statements s WHERE s.id = j.source_id)) \
            OR (j.source_type = 'payment' AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.id = j.source_id)) \
            OR (j.source_type = 'refund' AND NOT EXISTS (SELECT 1 FROM refunds r WHERE r.id = j.source_id)) \
            OR (j.source_type = 'charge' AND NOT EXISTS (SELECT 1 FROM charges g WHERE g.id = j.source_id)) \
            OR (j.source_type = 'dispute' AND NOT EXISTS (SELECT 1 FROM disputes d WHERE d.id = j.source_id)) \
            OR (j.source_type NOT IN ('statement', 'payment', 'refund', 'charge', 'dispute'))",
    )
    .fetch_all(c)
    .await?)
}

// ---------------------------------------------------------------- payments

/// A payment joined with its account, followed by the rest of the query.
macro_rules! payment_view {
    ($($tail:literal)+) => {
        concat!(
            "SELECT p.*, a.account_number AS account_number, a.timezone AS account_timezone \
             FROM payments p JOIN accounts a ON a.id = p.account_id ",
            $($tail),+
        )
    };
}

pub async fn insert_payment(c: &mut AnyConnection, p: &PaymentRow) -> R<()> {
    sqlx::query(
        "INSERT INTO payments (id, account_id, confirmation_number, amount, currency, fee_amount, \
         refunded_amount, status, channel, method_type, brand, last4, exp_month, exp_year, \
         bank_account_type, routing_number, holder_name, processor, processor_key, processor_ref, \
         decline_code, journal_id, created_at, updated_at, payment_method_id) VALUES ($1, $2, $3, $4, \
         $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, \
         $24, $25)",
    )
    .bind(&p.id)
    .bind(&p.account_id)
    .bind(&p.confirmation_number)
    .bind(p.amount)
    .bind(&p.currency)
    .bind(p.fee_amount)
    .bind(p.refunded_amount)
    .bind(&p.status)
    .bind(&p.channel)
    .bind(&p.method_type)
    .bind(&p.brand)
    .bind(&p.last4)
    .bind(p.exp_month)
    .bind(p.exp_year)
    .bind(&p.bank_account_type)
    .bind(&p.routing_number)
    .bind(&p.holder_name)
    .bind(&p.processor)
    .bind(&p.processor_key)
    .bind(&p.processor_ref)
    .bind(&p.decline_code)
    .bind(&p.journal_id)
    .bind(p.created_at)
    .bind(p.updated_at)
    .bind(&p.payment_method_id)
    .execute(c)
    .await?;
    Ok(())
}

/// Moves a payment from `from` to a new state, only if it is still in `from`.
/// Returns false when another writer moved it first.
#[allow(clippy::too_many_arguments)]
pub async fn update_payment_state(
    c: &mut AnyConnection,
    id: &str,
    from: &str,
    to: &str,
    processor_ref: Option<&str>,
    decline_code: Option<&str>,
    journal_id: Option<&str>,
    now: i64,
) -> R<bool> {
    let done = sqlx::query(
        "UPDATE payments SET status = $3, processor_ref = COALESCE($4, processor_ref), \
         decline_code = COALESCE($5, decline_code), journal_id = COALESCE($6, journal_id), \
         updated_at = $7 WHERE id = $1 AND status = $2 AND (journal_id IS NULL OR $6 IS NULL)",
    )
    .bind(id)
    .bind(from)
    .bind(to)
    .bind(processor_ref)
    .bind(decline_code)
    .bind(journal_id)
    .bind(now)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn set_payment_refunded(
    c: &mut AnyConnection,
    id: &str,
    from: &str,
    to: &str,
    refunded_amount: i64,
    now: i64,
) -> R<bool> {
    let done = sqlx::query(
        "UPDATE payments SET status = $3, refunded_amount = $4, updated_at = $5 \
         WHERE id = $1 AND status = $2",
    )
    .bind(id)
    .bind(from)
    .bind(to)
    .bind(refunded_amount)
    .bind(now)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The payment a processor key names (the key is unique per payment).
pub async fn payment_by_processor_key(c: &mut AnyConnection, key: &str) -> R<Option<PaymentView>> {
    Ok(
        sqlx::query_as::<_, PaymentView>(payment_view!("WHERE p.processor_key = $1"))
            .bind(key)
            .fetch_optional(c)
            .await?,
    )
}

/// The payment a processor reference names.
pub async fn payment_by_processor_ref(
    c: &mut AnyConnection,
    processor: &str,
    reference: &str,
) -> R<Option<PaymentView>> {
    Ok(sqlx::query_as::<_, PaymentView>(payment_view!(
        "WHERE p.processor = $1 AND p.processor_ref = $2"
    ))
    .bind(processor)
    .bind(reference)
    .fetch_optional(c)
    .await?)
}

pub async fn payment_by_id(c: &mut AnyConnection, id: &str) -> R<Option<PaymentView>> {
    Ok(
        sqlx::query_as::<_, PaymentView>(payment_view!("WHERE p.id = $1"))
            .bind(id)
            .fetch_optional(c)
            .await?,
    )
}

pub async fn payment_by_confirmation(
    c: &mut AnyConnection,
    confirmation: &str,
) -> R<Option<PaymentView>> {
    Ok(
        sqlx::query_as::<_, PaymentView>(payment_view!("WHERE p.confirmation_number = $1"))
            .bind(confirmation)
            .fetch_optional(c)
            .await?,
    )
}

pub async fn confirmation_exists(c: &mut AnyConnection, confirmation: &str) -> R<bool> {
    Ok(
        sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM payments WHERE confirmation_number = $1",
        )
        .bind(confirmation)
        .fetch_one(c)
        .await?
            > 0,
    )
}

/// An account's payments, newest first. `before` is the (created_at, id) of the last payment of
/// the previous page: the cursor names one payment exactly, so none sharing its instant is skipped.
pub async fn payments_for_account(
    c: &mut AnyConnection,
    account_id: &str,
    before: Option<(i64, &str)>,
    limit: i64,
) -> R<Vec<PaymentView>> {
    let (at, id) = before.unwrap_or((i64::MAX, ""));
    Ok(sqlx::query_as::<_, PaymentView>(payment_view!(
        "WHERE p.account_id = $1 AND (p.created_at < $2 OR (p.created_at = $2 AND p.id < $3)) \
         ORDER BY p.created_at DESC, p.id DESC LIMIT $4"
    ))
    .bind(account_id)
    .bind(at)
    .bind(id)
    .bind(limit.clamp(1, LIST_LIMIT_MAX))
    .fetch_all(c)
    .await?)
}

/// The newest payment of this amount on this account since `since` that may have moved money.
pub async fn recent_same_amount_payment(
    c: &mut AnyConnection,
    account_id: &str,
    amount: i64,
    currency: &str,
    since: i64,
) -> R<Option<PaymentView>> {
    Ok(sqlx::query_as::<_, PaymentView>(payment_view!(
        "WHERE p.account_id = $1 AND p.amount = $2 AND p.currency = $3 \
         AND p.created_at >= $4 AND p.status IN ('pending', 'processing', 'succeeded') \
         ORDER BY p.created_at DESC LIMIT 1"
    ))
    .bind(account_id)
    .bind(amount)
    .bind(currency)
    .bind(since)
    .fetch_optional(c)
    .await?)
}

/// Payments still `processing` with no processor answer recorded, created before `before`:
/// the processor call's outcome is unknown and must be asked for by key.
pub async fn in_doubt_payments(
    c: &mut AnyConnection,
    before: i64,
    limit: i64,
) -> R<Vec<PaymentView>> {
    Ok(sqlx::query_as::<_, PaymentView>(payment_view!(
        "WHERE p.status = 'processing' AND p.processor_ref IS NULL \
         AND p.created_at < $1 ORDER BY p.created_at LIMIT $2"
    ))
    .bind(before)
    .bind(limit.clamp(1, LIST_LIMIT_MAX))
    .fetch_all(c)
    .await?)
}

/// Bank debits accepted by the processor and waiting to settle.
pub async fn unsettled_bank_debits(c: &mut AnyConnection, limit: i64) -> R<Vec<PaymentView>> {
    Ok(sqlx::query_as::<_, PaymentView>(payment_view!(
        "WHERE p.status = 'processing' AND p.processor_ref IS NOT NULL \
         AND p.method_type = 'ach' ORDER BY p.created_at LIMIT $1"
    ))
    .bind(limit.clamp(1, LIST_LIMIT_MAX))
    .fetch_all(c)
    .await?)
}

/// Payments in a state that must have posted to the ledger, but with no journal entry.
pub async fn posted_payments_without_journal(c: &mut AnyConnection) -> R<Vec<(String, String)>> {
    Ok(sqlx::query_as::<_, (String, String)>(
        "SELECT p.id, p.status FROM payments p WHERE \
         (p.status IN ('succeeded', 'partially_refunded', 'refunded', 'returned') \
           OR (p.status = 'processing' AND p.method_type = 'ach' AND p.processor_ref IS NOT NULL)) \
         AND NOT EXISTS (SELECT 1 FROM journal_entries j WHERE j.source_type = 'payment' \
           AND j.source_id = p.id AND j.kind = 'payment')",
    )
    .fetch_all(c)
    .await?)
}

/// Payments that must not have posted (failed, canceled, pending) but have a journal entry.
pub async fn unposted_payments_with_journal(c: &mut AnyConnection) -> R<Vec<(String, String)>> {
    Ok(sqlx::query_as::<_, (String, String)>(
        "SELECT p.id, p.status FROM payments p WHERE \
         (p.status IN ('failed', 'canceled', 'pending') \
           OR (p.status = 'processing' AND p.processor_ref IS NULL)) \
         AND EXISTS (SELECT 1 FROM journal_entries j WHERE j.source_type = 'payment' AND j.source_id = p.id)",
    )
    .fetch_all(c)
    .await?)
}

/// All payments with their ledger posting totals on the customer's receivable, for verify.
pub async fn payment_postings(c: &mut AnyConnection) -> R<Vec<(String, String, i64, i64, i64)>> {
    Ok(sqlx::query_as::<_, (String, String, i64, i64, i64)>(
        "SELECT p.id, p.status, p.amount, p.refunded_amount, COALESCE((SELECT CAST(SUM(po.amount) AS BIGINT) \
           FROM journal_entries j JOIN postings po ON po.journal_id = j.id \
           JOIN accounts a ON a.id = p.account_id \
           WHERE j.source_type = 'payment' AND j.source_id = p.id \
             AND po.ledger_account = 'ar:' || a.account_number), 0) FROM payments p ORDER BY p.id",
    )
    .fetch_all(c)
    .await?)
}

pub async fn duplicate_confirmations(c: &mut AnyConnection) -> R<i64> {
    Ok(sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM (SELECT confirmation_number FROM payments \
         GROUP BY confirmation_number HAVING COUNT(*) > 1) d",
    )
    .fetch_one(c)
    .await?)
}

pub async fn count_payments(c: &mut AnyConnection) -> R<i64> {
    Ok(
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM payments")
            .fetch_one(c)
            .await?,
    )
}

/// Payment counts by status, for metrics and verify reports.
pub async fn payments_by_status(c: &mut AnyConnection) -> R<Vec<(String, i64)>> {
    Ok(sqlx::query_as::<_, (String, i64)>(
        "SELECT status, COUNT(*) FROM payments GROUP BY status ORDER BY status",
    )
    .fetch_all(c)
    .await?)
}

// ---------------------------------------------------------------- refunds

pub async fn insert_refund(c: &mut AnyConnection, r: &RefundRow) -> R<()> {
    sqlx::query(
        "INSERT INTO refunds (id, payment_id, amount, currency, status, processor_key, \
         processor_ref, failure_code, journal_id, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&r.id)
    .bind(&r.payment_id)
    .bind(r.amount)
    .bind(&r.currency)
    .bind(&r.status)
    .bind(&r.processor_key)
    .bind(&r.processor_ref)
    .bind(&r.failure_code)
    .bind(&r.journal_id)
    .bind(r.created_at)
    .bind(r.updated_at)
    .execute(c)
    .await?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub async fn update_refund_state(
    c: &mut AnyConnection,
    id: &str,
    from: &str,
    to: &str,
    processor_ref: Option<&str>,
    failure_code: Option<&str>,
    journal_id: Option<&str>,
    now: i64,
) -> R<bool> {
    let done = sqlx::query(
        "UPDATE refunds SET status = $3, processor_ref = COALESCE($4, processor_ref), \
         failure_code = COALESCE($5, failure_code), journal_id = COALESCE($6, journal_id), \
         updated_at = $7 WHERE id = $1 AND status = $2",
    )
    .bind(id)
    .bind(from)
    .bind(to)
    .bind(processor_ref)
    .bind(failure_code)
    .bind(journal_id)
    .bind(now)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn refunds_for_payment(c: &mut AnyConnection, payment_id: &str) -> R<Vec<RefundRow>> {
    Ok(sqlx::query_as::<_, RefundRow>(
        "SELECT * FROM refunds WHERE payment_id = $1 ORDER BY created_at, id",
    )
    .bind(payment_id)
    .fetch_all(c)
    .await?)
}

/// Refunds whose processor outcome is unknown, created before `before`.
pub async fn in_doubt_refunds(c: &mut AnyConnection, before: i64, limit: i64) -> R<Vec<RefundRow>> {
    Ok(sqlx::query_as::<_, RefundRow>(
        "SELECT * FROM refunds WHERE status = 'pending' AND created_at < $1 \
         ORDER BY created_at LIMIT $2",
    )
    .bind(before)
    .bind(limit.clamp(1, LIST_LIMIT_MAX))
    .fetch_all(c)
    .await?)
}

/// Takes the payment's row lock for the transaction (see [`lock_account`]).
pub async fn lock_payment(c: &mut AnyConnection, payment_id: &str, now: i64) -> R<bool> {
    let done = sqlx::query("UPDATE payments SET updated_at = $2 WHERE id = $1")
        .bind(payment_id)
        .bind(now)
        .execute(c)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Refunds of a payment whose journal sums disagree with their status, for verify.
pub async fn succeeded_refunds_without_journal(c: &mut AnyConnection) -> R<Vec<String>> {
    Ok(sqlx::query_scalar::<_, String>(
        "SELECT r.id FROM refunds r WHERE r.status = 'succeeded' AND NOT EXISTS \
         (SELECT 1 FROM journal_entries j WHERE j.source_type = 'refund' AND j.source_id = r.id)",
    )
    .fetch_all(c)
    .await?)
}

/// Payments whose recorded refunded amount differs from their succeeded refunds' total.
pub async fn refund_total_mismatches(c: &mut AnyConnection) -> R<Vec<(String, i64, i64)>> {
    Ok(sqlx::query_as::<_, (String, i64, i64)>(
        "SELECT p.id, p.refunded_amount, COALESCE((SELECT CAST(SUM(r.amount) AS BIGINT) FROM refunds r \
           WHERE r.payment_id = p.id AND r.status = 'succeeded'), 0) AS total \
         FROM payments p WHERE p.refunded_amount <> COALESCE((SELECT CAST(SUM(r.amount) AS BIGINT) FROM refunds r \
           WHERE r.payment_id = p.id AND r.status = 'succeeded'), 0) OR p.refunded_amount > p.amount",
    )
    .fetch_all(c)
    .await?)
}

// ---------------------------------------------------------------- idempotency

pub async fn idempotency_get(
    c: &mut AnyConnection,
    scope: &str,
    key: &str,
) -> R<Option<IdempotencyRow>> {
    Ok(sqlx::query_as::<_, IdempotencyRow>(
        "SELECT * FROM idempotency_keys WHERE scope = $1 AND idem_key = $2",
    )
    .bind(scope)
    .bind(key)
    .fetch_optional(c)
    .await?)
}

/// Claims a key. Returns false if the key was already claimed (by anyone, ever).
pub async fn idempotency_claim(c: &mut AnyConnection, row: &IdempotencyRow) -> R<bool> {
    let done = sqlx::query(
        "INSERT INTO idempotency_keys (scope, idem_key, endpoint, request_hash, state, resource_id, \
         response_status, response_body, created_at, completed_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (scope, idem_key) DO NOTHING",
    )
    .bind(&row.scope)
    .bind(&row.idem_key)
    .bind(&row.endpoint)
    .bind(&row.request_hash)
    .bind(&row.state)
    .bind(&row.resource_id)
    .bind(row.response_status)
    .bind(&row.response_body)
    .bind(row.created_at)
    .bind(row.completed_at)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Stores the response on every key still open on a resource (one in practice: the key that
/// started it). Uses the partial index on open keys.
pub async fn idempotency_complete_for_resource(
    c: &mut AnyConnection,
    resource_id: &str,
    status: i64,
    body: &str,
    now: i64,
) -> R<u64> {
    let done = sqlx::query(
        "UPDATE idempotency_keys SET state = 'completed', response_status = $2, response_body = $3, \
         completed_at = $4 WHERE resource_id = $1 AND state = 'started'",
    )
    .bind(resource_id)
    .bind(status)
    .bind(body)
    .bind(now)
    .execute(c)
    .await?;
    Ok(done.rows_affected())
}

/// Deletes completed keys created before `before`. Returns how many.
pub async fn idempotency_prune(c: &mut AnyConnection, before: i64) -> R<u64> {
    let done =
        sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1 AND state = 'completed'")
            .bind(before)
            .execute(c)
            .await?;
    Ok(done.rows_affected())
}

// ---------------------------------------------------------------- api keys

pub async fn insert_api_key(c: &mut AnyConnection, k: &ApiKeyRow) -> R<()> {
    sqlx::query(
        "INSERT INTO api_keys (id, name, prefix, key_hash, created_at, revoked_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&k.id)
    .bind(&k.name)
    .bind(&k.prefix)
    .bind(&k.key_hash)
    .bind(k.created_at)
    .bind(k.revoked_at)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn api_key_by_hash(c: &mut AnyConnection, hash: &str) -> R<Option<ApiKeyRow>> {
    Ok(
        sqlx::query_as::<_, ApiKeyRow>("SELECT * FROM api_keys WHERE key_hash = $1")
            .bind(hash)
            .fetch_optional(c)
            .await?,
    )
}

pub async fn list_api_keys(c: &mut AnyConnection) -> R<Vec<ApiKeyRow>> {
    Ok(
        sqlx::query_as::<_, ApiKeyRow>("SELECT * FROM api_keys ORDER BY created_at, id")
            .fetch_all(c)
            .await?,
    )
}

pub async fn revoke_api_key(c: &mut AnyConnection, id: &str, now: i64) -> R<bool> {
    let done =
        sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
            .bind(id)
            .bind(now)
            .execute(c)
            .await?;
    Ok(done.rows_affected() == 1)
}

// ---------------------------------------------------------------- outbox

/// Queues a message. The dedupe key makes queuing the same message twice a no-op.
pub async fn insert_outbox(c: &mut AnyConnection, o: &OutboxRow) -> R<bool> {
    let done = sqlx::query(
        "INSERT INTO outbox (id, kind, dedupe_key, recipient, payload_json, created_at, sent_at, attempts) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (dedupe_key) DO NOTHING",
    )
    .bind(&o.id)
    .bind(&o.kind)
    .bind(&o.dedupe_key)
    .bind(&o.recipient)
    .bind(&o.payload_json)
    .bind(o.created_at)
    .bind(o.sent_at)
    .bind(o.attempts)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn outbox_for_dedupe(c: &mut AnyConnection, dedupe_key: &str) -> R<Option<OutboxRow>> {
    Ok(
        sqlx::query_as::<_, OutboxRow>("SELECT * FROM outbox WHERE dedupe_key = $1")
            .bind(dedupe_key)
            .fetch_optional(c)
            .await?,
    )
}

// ---------------------------------------------------------------- sandbox processor

pub async fn sandbox_insert(c: &mut AnyConnection, t: &SandboxTxRow) -> R<bool> {
    let done = sqlx::query(
        "INSERT INTO sandbox_transactions (processor_key, kind, reference, parent_reference, amount, \
         currency, outcome, decline_code, settle_at, return_code, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (processor_key) DO NOTHING",
    )
    .bind(&t.processor_key)
    .bind(&t.kind)
    .bind(&t.reference)
    .bind(&t.parent_reference)
    .bind(t.amount)
    .bind(&t.currency)
    .bind(&t.outcome)
    .bind(&t.decline_code)
    .bind(t.settle_at)
    .bind(&t.return_code)
    .bind(t.created_at)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn sandbox_by_key(c: &mut AnyConnection, key: &str) -> R<Option<SandboxTxRow>> {
    Ok(sqlx::query_as::<_, SandboxTxRow>(
        "SELECT * FROM sandbox_transactions WHERE processor_key = $1",
    )
    .bind(key)
    .fetch_optional(c)
    .await?)
}

pub async fn sandbox_by_reference(
    c: &mut AnyConnection,
    reference: &str,
) -> R<Option<SandboxTxRow>> {
    Ok(
        sqlx::query_as::<_, SandboxTxRow>(
            "SELECT * FROM sandbox_transactions WHERE reference = $1",
        )
        .bind(reference)
        .fetch_optional(c)
        .await?,
    )
}

/// Total of succeeded refunds against a sandbox charge reference.
pub async fn sandbox_refunded_total(c: &mut AnyConnection, charge_reference: &str) -> R<i64> {
    Ok(sqlx::query_scalar::<_, i64>(
        "SELECT COALESCE(CAST(SUM(amount) AS BIGINT), 0) FROM sandbox_transactions \
         WHERE kind = 'refund' AND outcome = 'succeeded' AND parent_reference = $1",
    )
    .bind(charge_reference)
    .fetch_one(c)
    .await?)
}

/// The sandbox's sales and debits created in `[from, to)`, for the settlement report.
pub async fn sandbox_charges_between(
    c: &mut AnyConnection,
    from: i64,
    to: i64,
) -> R<Vec<SandboxTxRow>> {
    Ok(sqlx::query_as::<_, SandboxTxRow>(
        "SELECT * FROM sandbox_transactions WHERE kind IN ('sale', 'debit') \
         AND created_at >= $1 AND created_at < $2 ORDER BY created_at LIMIT 100000",
    )
    .bind(from)
    .bind(to)
    .fetch_all(c)
    .await?)
}

/// Payments created in `[from, to)` by processor, status and channel: count and total.
pub async fn payments_summary(
    c: &mut AnyConnection,
    from: i64,
    to: i64,
) -> R<Vec<(String, String, String, i64, i64)>> {
    Ok(sqlx::query_as::<_, (String, String, String, i64, i64)>(
        "SELECT processor, status, channel, COUNT(*), CAST(COALESCE(SUM(amount), 0) AS BIGINT) \
         FROM payments WHERE created_at >= $1 AND created_at < $2 \
         GROUP BY processor, status, channel ORDER BY processor, status, channel",
    )
    .bind(from)
    .bind(to)
    .fetch_all(c)
    .await?)
}

/// One payment of a day with what it charged and what its entries post to the receivable.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct PaymentLedgerRow {
    pub id: String,
    pub processor: String,
    pub processor_key: String,
    pub processor_ref: Option<String>,
    pub status: String,
    pub method_type: String,
    pub amount: i64,
    pub fee_amount: i64,
    pub currency: String,
    pub ar: i64,
}

/// Payments created in `[from, to)` with their receivable postings, for the settlement report.
pub async fn payments_with_ledger(
    c: &mut AnyConnection,
    from: i64,
    to: i64,
) -> R<Vec<PaymentLedgerRow>> {
    Ok(sqlx::query_as::<_, PaymentLedgerRow>(
        "SELECT p.id, p.processor, p.processor_key, p.processor_ref, p.status, p.method_type, \
           p.amount, p.fee_amount, p.currency, COALESCE((SELECT CAST(SUM(po.amount) AS BIGINT) \
           FROM journal_entries j JOIN postings po ON po.journal_id = j.id \
           JOIN accounts a ON a.id = p.account_id \
           WHERE j.source_type = 'payment' AND j.source_id = p.id \
             AND po.ledger_account = 'ar:' || a.account_number), 0) AS ar \
         FROM payments p WHERE p.created_at >= $1 AND p.created_at < $2 \
         ORDER BY p.created_at, p.id LIMIT 100000",
    )
    .bind(from)
    .bind(to)
    .fetch_all(c)
    .await?)
}

pub async fn sandbox_count(c: &mut AnyConnection, kind: &str) -> R<i64> {
    Ok(
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM sandbox_transactions WHERE kind = $1")
            .bind(kind)
            .fetch_one(c)
            .await?,
    )
}

/// Releases the open keys of a resource whose request certainly did nothing.
pub async fn idempotency_release_resource(c: &mut AnyConnection, resource_id: &str) -> R<()> {
    sqlx::query("DELETE FROM idempotency_keys WHERE resource_id = $1 AND state = 'started'")
        .bind(resource_id)
        .execute(c)
        .await?;
    Ok(())
}

/// Per account: receivable from postings, and the same figure recomputed from the documents
/// (statements plus charges, minus payments that posted and were not returned, plus succeeded refunds).
pub async fn account_balance_check(c: &mut AnyConnection) -> R<Vec<(String, i64, i64)>> {
    Ok(sqlx::query_as::<_, (String, i64, i64)>(
        "SELECT a.account_number, \
           COALESCE((SELECT CAST(SUM(p.amount) AS BIGINT) FROM postings p WHERE p.ledger_account = 'ar:' || a.account_number), 0), \
           COALESCE((SELECT CAST(SUM(s.amount_due) AS BIGINT) FROM statements s WHERE s.account_id = a.id), 0) \
           + COALESCE((SELECT CAST(SUM(g.amount) AS BIGINT) FROM charges g WHERE g.account_id = a.id), 0) \
           - COALESCE((SELECT CAST(SUM(y.amount) AS BIGINT) FROM payments y WHERE y.account_id = a.id AND \
               (y.status IN ('succeeded', 'partially_refunded', 'refunded') \
                OR (y.status = 'processing' AND y.method_type = 'ach' AND y.processor_ref IS NOT NULL))), 0) \
           + COALESCE((SELECT CAST(SUM(r.amount) AS BIGINT) FROM refunds r JOIN payments y ON y.id = r.payment_id \
               WHERE y.account_id = a.id AND r.status = 'succeeded'), 0) \
           + COALESCE((SELECT CAST(SUM(d.amount) AS BIGINT) FROM disputes d \
               WHERE d.account_id = a.id AND d.status <> 'won' \
                 AND SUBSTR(d.status, 1, 8) <> 'warning_'), 0) \
         FROM accounts a ORDER BY a.account_number",
    )
    .fetch_all(c)
    .await?)
}

/// Every confirmation number, for checking their check digits.
pub async fn all_confirmations(c: &mut AnyConnection) -> R<Vec<(String, String)>> {
    Ok(
        sqlx::query_as::<_, (String, String)>("SELECT id, confirmation_number FROM payments")
            .fetch_all(c)
            .await?,
    )
}

// ---------------------------------------------------------------- vault

pub async fn insert_payment_method(c: &mut AnyConnection, m: &PaymentMethodRow) -> R<()> {
    sqlx::query(
        "INSERT INTO payment_methods (id, account_id, kind, brand, last4, exp_month, exp_year, \
         postal_code, bank_account_type, routing_number, holder_name, bank_name, nickname, \
         fingerprint, kek_version, wrapped_key, ciphertext, is_default, status, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)",
    )
    .bind(&m.id)
    .bind(&m.account_id)
    .bind(&m.kind)
    .bind(&m.brand)
    .bind(&m.last4)
    .bind(m.exp_month)
    .bind(m.exp_year)
    .bind(&m.postal_code)
    .bind(&m.bank_account_type)
    .bind(&m.routing_number)
    .bind(&m.holder_name)
    .bind(&m.bank_name)
    .bind(&m.nickname)
    .bind(&m.fingerprint)
    .bind(m.kek_version)
    .bind(&m.wrapped_key)
    .bind(&m.ciphertext)
    .bind(m.is_default)
    .bind(&m.status)
    .bind(m.created_at)
    .bind(m.updated_at)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn payment_method_by_id(c: &mut AnyConnection, id: &str) -> R<Option<PaymentMethodRow>> {
    Ok(
        sqlx::query_as::<_, PaymentMethodRow>("SELECT * FROM payment_methods WHERE id = $1")
            .bind(id)
            .fetch_optional(c)
            .await?,
    )
}

/// An account's active saved methods, default first, then newest.
pub async fn payment_methods_for_account(
    c: &mut AnyConnection,
    account_id: &str,
) -> R<Vec<PaymentMethodRow>> {
    Ok(sqlx::query_as::<_, PaymentMethodRow>(
        "SELECT * FROM payment_methods WHERE account_id = $1 AND status = 'active' \
         ORDER BY is_default DESC, created_at DESC LIMIT $2",
    )
    .bind(account_id)
    .bind(LIST_LIMIT_MAX)
    .fetch_all(c)
    .await?)
}

pub async fn active_method_by_fingerprint(
    c: &mut AnyConnection,
    account_id: &str,
    fingerprint: &str,
) -> R<Option<PaymentMethodRow>> {
    Ok(sqlx::query_as::<_, PaymentMethodRow>(
        "SELECT * FROM payment_methods WHERE account_id = $1 AND fingerprint = $2 AND status = 'active'",
    )
    .bind(account_id)
    .bind(fingerprint)
    .fetch_optional(c)
    .await?)
}

pub async fn count_active_methods(c: &mut AnyConnection, account_id: &str) -> R<i64> {
    Ok(sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM payment_methods WHERE account_id = $1 AND status = 'active'",
    )
    .bind(account_id)
    .fetch_one(c)
    .await?)
}

/// Updates what a customer may change: nickname and expiry.
pub async fn update_method_details(
    c: &mut AnyConnection,
    id: &str,
    nickname: Option<&str>,
    exp: Option<(i64, i64)>,
    now: i64,
) -> R<bool> {
    let done = sqlx::query(
        "UPDATE payment_methods SET nickname = COALESCE($2, nickname), \
         exp_month = COALESCE($3, exp_month), exp_year = COALESCE($4, exp_year), updated_at = $5 \
         WHERE id = $1 AND status = 'active'",
    )
    .bind(id)
    .bind(nickname)
    .bind(exp.map(|e| e.0))
    .bind(exp.map(|e| e.1))
    .bind(now)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Makes one method the account's default and every other one not.
pub async fn set_default_method(
    c: &mut AnyConnection,
    account_id: &str,
    id: &str,
    now: i64,
) -> R<()> {
    sqlx::query(
        "UPDATE payment_methods SET is_default = CASE WHEN id = $2 THEN 1 ELSE 0 END, updated_at = $3 \
         WHERE account_id = $1 AND status = 'active'",
    )
    .bind(account_id)
    .bind(id)
    .bind(now)
    .execute(c)
    .await?;
    Ok(())
}

/// Deletes a saved method: the sealed number and its wrapped key are destroyed; brand and last
/// four stay for the payment history.
pub async fn delete_payment_method(c: &mut AnyConnection, id: &str, now: i64) -> R<bool> {
    let done = sqlx::query(
        "UPDATE payment_methods SET status = 'deleted', is_default = 0, wrapped_key = '', \
         ciphertext = '', updated_at = $2 WHERE id = $1 AND status = 'active'",
    )
    .bind(id)
    .bind(now)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Methods still sealed under another key version than `active`.
pub async fn methods_under_other_keys(
    c: &mut AnyConnection,
    active: i64,
    limit: i64,
) -> R<Vec<PaymentMethodRow>> {
    Ok(sqlx::query_as::<_, PaymentMethodRow>(
        "SELECT * FROM payment_methods WHERE kek_version <> $1 AND wrapped_key <> '' \
         ORDER BY id LIMIT $2",
    )
    .bind(active)
    .bind(limit.clamp(1, LIST_LIMIT_MAX))
    .fetch_all(c)
    .await?)
}

/// Replaces a method's wrapped data key, only if it is still the one that was re-wrapped.
pub async fn rewrap_method(
    c: &mut AnyConnection,
    id: &str,
    old_wrapped: &str,
    new_version: i64,
    new_wrapped: &str,
) -> R<bool> {
    let done = sqlx::query(
        "UPDATE payment_methods SET kek_version = $3, wrapped_key = $4 WHERE id = $1 AND wrapped_key = $2",
    )
    .bind(id)
    .bind(old_wrapped)
    .bind(new_version)
    .bind(new_wrapped)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// How many live sealed methods each key version holds.
pub async fn methods_per_key_version(c: &mut AnyConnection) -> R<Vec<(i64, i64)>> {
    Ok(sqlx::query_as::<_, (i64, i64)>(
        "SELECT kek_version, COUNT(*) FROM payment_methods WHERE wrapped_key <> '' \
         GROUP BY kek_version ORDER BY kek_version",
    )
    .fetch_all(c)
    .await?)
}

// ---------------------------------------------------------------- audit

pub async fn insert_audit(c: &mut AnyConnection, a: &AuditRow) -> R<()> {
    sqlx::query(
        "INSERT INTO audit_log (id, at, actor, action, subject_type, subject_id, account_id, channel, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&a.id)
    .bind(a.at)
    .bind(&a.actor)
    .bind(&a.action)
    .bind(&a.subject_type)
    .bind(&a.subject_id)
    .bind(&a.account_id)
    .bind(&a.channel)
    .bind(&a.detail)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn audit_for_subject(
    c: &mut AnyConnection,
    subject_type: &str,
    subject_id: &str,
) -> R<Vec<AuditRow>> {
    Ok(sqlx::query_as::<_, AuditRow>(
        "SELECT * FROM audit_log WHERE subject_type = $1 AND subject_id = $2 ORDER BY at, id LIMIT $3",
    )
    .bind(subject_type)
    .bind(subject_id)
    .bind(LIST_LIMIT_MAX)
    .fetch_all(c)
    .await?)
}

// ---------------------------------------------------------------- phone line (IVR)

/// Accounts whose phone is this number (at most two: the caller id is offered only when it
/// names exactly one account).
pub async fn accounts_by_phone(c: &mut AnyConnection, phone: &str) -> R<Vec<AccountRow>> {
    Ok(sqlx::query_as::<_, AccountRow>(
        "SELECT * FROM accounts WHERE phone = $1 ORDER BY created_at LIMIT 2",
    )
    .bind(phone)
    .fetch_all(c)
    .await?)
}

pub async fn ivr_call(c: &mut AnyConnection, call_sid: &str) -> R<Option<IvrCallRow>> {
    Ok(
        sqlx::query_as::<_, IvrCallRow>("SELECT * FROM ivr_calls WHERE call_sid = $1")
            .bind(call_sid)
            .fetch_optional(c)
            .await?,
    )
}

/// Replaces the flow state of a call that has left the flow (a transfer's outcome).
pub async fn ivr_call_set_state(
    c: &mut AnyConnection,
    call_sid: &str,
    state: &str,
    now: i64,
) -> R<bool> {
    let n = sqlx::query("UPDATE ivr_calls SET state = $2, updated_at = $3 WHERE call_sid = $1")
        .bind(call_sid)
        .bind(state)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected();
    Ok(n == 1)
}

/// Stores a new call (`expected_turn` None), or replaces its state when the stored turn is
/// `expected_turn` (optimistic: two instances answering the same call cannot both advance it).
/// Returns false when another writer got there first.
pub async fn ivr_call_save(
    c: &mut AnyConnection,
    r: &IvrCallRow,
    expected_turn: Option<i64>,
) -> R<bool> {
    let Some(expected_turn) = expected_turn else {
        return ivr_call_insert(c, r).await;
    };
    let updated = sqlx::query(
        "UPDATE ivr_calls SET status = $2, turn = $3, state = $4, last_twiml = $5, \
         sealed_kek_version = $6, sealed_wrapped_key = $7, sealed_ciphertext = $8, updated_at = $9 \
         WHERE call_sid = $1 AND turn = $10 AND status = 'active'",
    )
    .bind(&r.call_sid)
    .bind(&r.status)
    .bind(r.turn)
    .bind(&r.state)
    .bind(&r.last_twiml)
    .bind(r.sealed_kek_version)
    .bind(&r.sealed_wrapped_key)
    .bind(&r.sealed_ciphertext)
    .bind(r.updated_at)
    .bind(expected_turn)
    .execute(c)
    .await?
    .rows_affected();
    Ok(updated == 1)
}

/// Stores a new call; false when another instance stored it first.
pub async fn ivr_call_insert(c: &mut AnyConnection, r: &IvrCallRow) -> R<bool> {
    let inserted = sqlx::query(
        "INSERT INTO ivr_calls (call_sid, from_number, status, turn, state, last_twiml, \
         sealed_kek_version, sealed_wrapped_key, sealed_ciphertext, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (call_sid) DO NOTHING",
    )
    .bind(&r.call_sid)
    .bind(&r.from_number)
    .bind(&r.status)
    .bind(r.turn)
    .bind(&r.state)
    .bind(&r.last_twiml)
    .bind(r.sealed_kek_version)
    .bind(&r.sealed_wrapped_key)
    .bind(&r.sealed_ciphertext)
    .bind(r.created_at)
    .bind(r.updated_at)
    .execute(c)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// The provider says the call is over: mark it and destroy any sealed digits.
pub async fn ivr_call_end(
    c: &mut AnyConnection,
    call_sid: &str,
    status: &str,
    now: i64,
) -> R<bool> {
    let done = sqlx::query(
        "UPDATE ivr_calls SET status = $2, sealed_kek_version = NULL, sealed_wrapped_key = NULL, \
         sealed_ciphertext = NULL, updated_at = $3 WHERE call_sid = $1",
    )
    .bind(call_sid)
    .bind(status)
    .bind(now)
    .execute(c)
    .await?
    .rows_affected();
    Ok(done == 1)
}

/// Destroys the sealed digits of calls that have been silent since `before`: a call whose
/// provider never sent its final status must not keep card digits. Returns how many.
pub async fn ivr_wipe_idle_digits(c: &mut AnyConnection, before: i64) -> R<u64> {
    let done = sqlx::query(
        "UPDATE ivr_calls SET sealed_kek_version = NULL, sealed_wrapped_key = NULL, \
         sealed_ciphertext = NULL WHERE sealed_ciphertext IS NOT NULL AND updated_at < $1",
    )
    .bind(before)
    .execute(c)
    .await?;
    Ok(done.rows_affected())
}

pub async fn insert_tel_authorization(c: &mut AnyConnection, t: &TelAuthorizationRow) -> R<()> {
    sqlx::query(
        "INSERT INTO tel_authorizations (payment_id, call_sid, text, authorized_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (payment_id) DO NOTHING",
    )
    .bind(&t.payment_id)
    .bind(&t.call_sid)
    .bind(&t.text)
    .bind(t.authorized_at)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn tel_authorization(
    c: &mut AnyConnection,
    payment_id: &str,
) -> R<Option<TelAuthorizationRow>> {
    Ok(sqlx::query_as::<_, TelAuthorizationRow>(
        "SELECT * FROM tel_authorizations WHERE payment_id = $1",
    )
    .bind(payment_id)
    .fetch_optional(c)
    .await?)
}

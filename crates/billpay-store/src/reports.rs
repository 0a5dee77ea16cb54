//! Queries of the operator reports. Same conventions as [`crate::queries`].

use sqlx::AnyConnection;

use crate::StoreError;

type R<T> = Result<T, StoreError>;

/// One money movement of a customer payment as the ledger posted it: the payment itself, a
/// refund of it, or its return (a bank debit sent back).
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct PostingLineRow {
    pub entry_id: String,
    pub kind: String,
    pub posted_at: i64,
    pub account_id: String,
    pub account_number: String,
    pub currency: String,
    /// What it did to the customer's receivable, as a payment counts: a payment positive, a
    /// refund or return negative.
    pub amount: i64,
    pub payment_id: String,
    pub confirmation_number: String,
    pub channel: String,
    pub method_type: String,
    /// The payment's state now, and its decline or return code.
    pub status: String,
    pub decline_code: Option<String>,
}

/// The payment movements of the ledger, as [`PostingLineRow`]s; a query appends its `AND ...`
/// conditions and order. Shared by the posting file and the webhook relay, so both read a
/// movement the same way.
const MOVEMENTS: &str = "SELECT j.id AS entry_id, j.kind, j.created_at AS posted_at, \
       j.account_id, a.account_number, j.currency, \
       CAST(-COALESCE((SELECT SUM(po.amount) FROM postings po WHERE po.journal_id = j.id \
         AND po.ledger_account = 'ar:' || a.account_number), 0) AS BIGINT) AS amount, \
       p.id AS payment_id, p.confirmation_number, p.channel, p.method_type, p.status, \
       p.decline_code \
     FROM journal_entries j \
     JOIN accounts a ON a.id = j.account_id \
     LEFT JOIN refunds r ON j.source_type = 'refund' AND r.id = j.source_id \
     JOIN payments p ON p.id = (CASE WHEN j.source_type = 'refund' THEN r.payment_id \
       ELSE j.source_id END) \
     WHERE j.source_type IN ('payment', 'refund') AND j.kind <> 'fee' ";

/// How many payment movements were posted in `[from, to)` (microseconds): the posting file's
/// length, for a progress bar.
pub async fn movements_between(c: &mut AnyConnection, from: i64, to: i64) -> R<i64> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM journal_entries j \
         WHERE j.source_type IN ('payment', 'refund') AND j.kind <> 'fee' \
           AND j.created_at >= $1 AND j.created_at < $2",
    )
    .bind(from)
    .bind(to)
    .fetch_one(c)
    .await?;
    Ok(n)
}

/// The payment movements posted in `[from, to)` (microseconds), oldest first, after the entry
/// `(after_at, after_id)` (start with `(from - 1, "")`), at most `limit`.
pub async fn posting_lines(
    c: &mut AnyConnection,
    from: i64,
    to: i64,
    after: (i64, &str),
    limit: i64,
) -> R<Vec<PostingLineRow>> {
    let sql = format!(
        "{MOVEMENTS} AND j.created_at >= $1 AND j.created_at < $2 \
         AND (j.created_at > $3 OR (j.created_at = $3 AND j.id > $4)) \
         ORDER BY j.created_at, j.id LIMIT $5"
    );
    Ok(
        sqlx::query_as::<_, PostingLineRow>(sqlx::AssertSqlSafe(sql))
            .bind(from)
            .bind(to)
            .bind(after.0)
            .bind(after.1)
            .bind(limit)
            .fetch_all(c)
            .await?,
    )
}

/// The payment movements posted at or after `from` that have no account event yet (the
/// relay's event id is `evt_<entry id>`), oldest first, at most `limit`.
pub async fn movements_without_event(
    c: &mut AnyConnection,
    from: i64,
    limit: i64,
) -> R<Vec<PostingLineRow>> {
    let sql = format!(
        "{MOVEMENTS} AND j.created_at >= $1 AND NOT EXISTS (SELECT 1 FROM account_events e \
           WHERE e.id = 'evt_' || j.id) ORDER BY j.created_at, j.id LIMIT $2"
    );
    Ok(
        sqlx::query_as::<_, PostingLineRow>(sqlx::AssertSqlSafe(sql))
            .bind(from)
            .bind(limit)
            .fetch_all(c)
            .await?,
    )
}

/// One posting to a customer's receivable, for aging: its amount (a charge positive, a payment
/// negative), when the ledger posted it and, for a statement, its due date.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct ReceivablePostingRow {
    pub account_number: String,
    pub account_name: String,
    pub currency: String,
    pub amount: i64,
    pub posted_at: i64,
    pub due_date: Option<String>,
}

/// How many accounts there are.
pub async fn account_count(c: &mut AnyConnection) -> R<i64> {
    let (n,): (i64,) = sqlx::query_as("SELECT CAST(COUNT(*) AS BIGINT) FROM accounts")
        .fetch_one(c)
        .await?;
    Ok(n)
}

/// The account number ending the page of `limit` accounts after `after` in number order (the
/// last one there is when fewer are left; None when none are).
pub async fn account_page_end(c: &mut AnyConnection, after: &str, limit: i64) -> R<Option<String>> {
    let (last,): (Option<String>,) = sqlx::query_as(
        "SELECT MAX(account_number) FROM (SELECT account_number FROM accounts \
         WHERE account_number > $1 ORDER BY account_number LIMIT $2) page",
    )
    .bind(after)
    .bind(limit.max(1))
    .fetch_one(c)
    .await?;
    Ok(last)
}

/// Every posting to the receivables of the accounts numbered in `(after, last]`, up to `until`
/// (microseconds, exclusive), by account number.
pub async fn receivable_postings(
    c: &mut AnyConnection,
    until: i64,
    after: &str,
    last: &str,
) -> R<Vec<ReceivablePostingRow>> {
    Ok(sqlx::query_as::<_, ReceivablePostingRow>(
        "SELECT a.account_number, a.name AS account_name, po.currency, po.amount, \
           j.created_at AS posted_at, s.due_date \
         FROM accounts a \
         JOIN journal_entries j ON j.account_id = a.id \
         JOIN postings po ON po.journal_id = j.id \
         LEFT JOIN statements s ON j.source_type = 'statement' AND s.id = j.source_id \
         WHERE a.account_number > $2 AND a.account_number <= $3 \
           AND po.ledger_account = 'ar:' || a.account_number AND j.created_at < $1 \
         ORDER BY a.account_number, j.created_at, j.id",
    )
    .bind(until)
    .bind(after)
    .bind(last)
    .fetch_all(c)
    .await?)
}

/// A NACHA file written in a window, with what its own entries add up to.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct AchFileCheckRow {
    pub file_name: String,
    pub status: String,
    /// As the file's control records say.
    pub entry_count: i64,
    pub debit_total: i64,
    pub credit_total: i64,
    /// As its entries add up now (prenotes are zero-dollar debits).
    pub entries: i64,
    pub entry_debits: i64,
    pub entry_credits: i64,
}

/// The NACHA files made in `[from, to)` (microseconds), oldest first.
pub async fn ach_files_between(
    c: &mut AnyConnection,
    from: i64,
    to: i64,
) -> R<Vec<AchFileCheckRow>> {
    Ok(sqlx::query_as::<_, AchFileCheckRow>(
        "SELECT f.file_name, f.status, f.entry_count, f.debit_total, f.credit_total, \
           CAST((SELECT COUNT(*) FROM ach_entries e WHERE e.file_id = f.id) AS BIGINT) AS entries, \
           CAST(COALESCE((SELECT SUM(e.amount) FROM ach_entries e WHERE e.file_id = f.id \
             AND e.purpose <> 'credit'), 0) AS BIGINT) AS entry_debits, \
           CAST(COALESCE((SELECT SUM(e.amount) FROM ach_entries e WHERE e.file_id = f.id \
             AND e.purpose = 'credit'), 0) AS BIGINT) AS entry_credits \
         FROM ach_files f WHERE f.created_at >= $1 AND f.created_at < $2 \
         ORDER BY f.created_at, f.file_name",
    )
    .bind(from)
    .bind(to)
    .fetch_all(c)
    .await?)
}

/// A money entry of a NACHA file, with the payment or refund that made it.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct AchEntryCheckRow {
    pub entry_id: String,
    pub file_name: String,
    pub purpose: String,
    pub amount: i64,
    pub payment_id: Option<String>,
    /// The payment's amount with its fee, as debited.
    pub payment_charged: Option<i64>,
    pub payment_status: Option<String>,
    pub refund_id: Option<String>,
    pub refund_amount: Option<i64>,
}

/// The debits and credits of the NACHA files made in `[from, to)`.
pub async fn ach_entries_between(
    c: &mut AnyConnection,
    from: i64,
    to: i64,
) -> R<Vec<AchEntryCheckRow>> {
    Ok(sqlx::query_as::<_, AchEntryCheckRow>(
        "SELECT e.id AS entry_id, f.file_name, e.purpose, e.amount, e.payment_id, \
           p.amount + p.fee_amount AS payment_charged, p.status AS payment_status, \
           e.refund_id, r.amount AS refund_amount \
         FROM ach_entries e JOIN ach_files f ON f.id = e.file_id \
         LEFT JOIN payments p ON p.id = e.payment_id \
         LEFT JOIN refunds r ON r.id = e.refund_id \
         WHERE f.created_at >= $1 AND f.created_at < $2 AND e.purpose <> 'prenote' \
         ORDER BY f.created_at, e.id",
    )
    .bind(from)
    .bind(to)
    .fetch_all(c)
    .await?)
}

/// A bank return applied in a window, with the entry and payment it returned.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct AchReturnCheckRow {
    pub original_trace: String,
    pub code: String,
    pub outcome: String,
    pub entry_status: Option<String>,
    pub payment_id: Option<String>,
    pub payment_status: Option<String>,
}

/// The returns applied in `[from, to)`.
pub async fn ach_returns_between(
    c: &mut AnyConnection,
    from: i64,
    to: i64,
) -> R<Vec<AchReturnCheckRow>> {
    Ok(sqlx::query_as::<_, AchReturnCheckRow>(
        "SELECT i.original_trace, i.code, i.outcome, e.status AS entry_status, e.payment_id, \
           p.status AS payment_status \
         FROM ach_return_items i LEFT JOIN ach_entries e ON e.id = i.entry_id \
         LEFT JOIN payments p ON p.id = e.payment_id AND e.purpose = 'debit' \
         WHERE i.kind = 'return' AND i.applied_at >= $1 AND i.applied_at < $2 \
         ORDER BY i.applied_at, i.item_key",
    )
    .bind(from)
    .bind(to)
    .fetch_all(c)
    .await?)
}

/// A mailed check from a lockbox file, with the payment it was posted as.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct LockboxCheckRow {
    pub check_number: String,
    pub deposit_date: String,
    pub amount: i64,
    pub status: String,
    pub created_at: i64,
    pub payment_id: Option<String>,
    pub payment_amount: Option<i64>,
    pub payment_status: Option<String>,
}

/// The lockbox items imported, or resolved, in `[from, to)`.
pub async fn lockbox_items_between(
    c: &mut AnyConnection,
    from: i64,
    to: i64,
) -> R<Vec<LockboxCheckRow>> {
    Ok(sqlx::query_as::<_, LockboxCheckRow>(
        "SELECT l.check_number, l.deposit_date, l.amount, l.status, l.created_at, l.payment_id, \
           p.amount AS payment_amount, p.status AS payment_status \
         FROM lockbox_items l LEFT JOIN payments p ON p.id = l.payment_id \
         WHERE (l.created_at >= $1 AND l.created_at < $2) \
            OR (l.updated_at >= $1 AND l.updated_at < $2) \
         ORDER BY l.created_at, l.item_key",
    )
    .bind(from)
    .bind(to)
    .fetch_all(c)
    .await?)
}

/// The payments made in `[from, to)` whose bank debit billpay originates in its own NACHA
/// files (they are reconciled against the files, not the processor's list).
pub async fn nacha_debited_payments(c: &mut AnyConnection, from: i64, to: i64) -> R<Vec<String>> {
    Ok(sqlx::query_scalar::<_, String>(
        "SELECT p.id FROM payments p JOIN ach_entries e ON e.payment_id = p.id \
         WHERE e.purpose = 'debit' AND p.created_at >= $1 AND p.created_at < $2",
    )
    .bind(from)
    .bind(to)
    .fetch_all(c)
    .await?)
}

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
    let row: Option<(String,)> = sqlx::query_as(
        "SELECT account_number FROM accounts WHERE account_number > $1 \
         ORDER BY account_number LIMIT 1 OFFSET $2",
    )
    .bind(after)
    .bind(limit.max(1) - 1)
    .fetch_optional(&mut *c)
    .await?;
    if let Some((n,)) = row {
        return Ok(Some(n));
    }
    let (last,): (Option<String>,) =
        sqlx::query_as("SELECT MAX(account_number) FROM accounts WHERE account_number > $1")
            .bind(after)
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

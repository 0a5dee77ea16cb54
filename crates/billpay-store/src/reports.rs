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

/// The payment movements posted in `[from, to)` (microseconds), oldest first.
pub async fn posting_lines(c: &mut AnyConnection, from: i64, to: i64) -> R<Vec<PostingLineRow>> {
    let sql = format!(
        "{MOVEMENTS} AND j.created_at >= $1 AND j.created_at < $2 ORDER BY j.created_at, j.id"
    );
    Ok(
        sqlx::query_as::<_, PostingLineRow>(sqlx::AssertSqlSafe(sql))
            .bind(from)
            .bind(to)
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

/// Every posting to customers' receivables up to `until` (microseconds, exclusive), by
/// account number.
pub async fn receivable_postings(
    c: &mut AnyConnection,
    until: i64,
) -> R<Vec<ReceivablePostingRow>> {
    Ok(sqlx::query_as::<_, ReceivablePostingRow>(
        "SELECT a.account_number, a.name AS account_name, po.currency, po.amount, \
           j.created_at AS posted_at, s.due_date \
         FROM postings po \
         JOIN journal_entries j ON j.id = po.journal_id \
         JOIN accounts a ON a.id = j.account_id \
         LEFT JOIN statements s ON j.source_type = 'statement' AND s.id = j.source_id \
         WHERE po.ledger_account = 'ar:' || a.account_number AND j.created_at < $1 \
         ORDER BY a.account_number, j.created_at, j.id",
    )
    .bind(until)
    .fetch_all(c)
    .await?)
}

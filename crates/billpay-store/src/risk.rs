//! Queries of the payment risk rules: the attempts they count (`risk_events`) and the
//! decisions they made (`risk_decisions`). Same conventions as [`crate::queries`]: one
//! function per query, `$N` placeholders, the same SQL on both engines. Card numbers never
//! reach these tables: a card is its keyed fingerprint and its first six digits.

use sqlx::AnyConnection;

use crate::StoreError;

type R<T> = Result<T, StoreError>;

/// One payment attempt as the risk rules count it.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct RiskEventRow {
    pub id: String,
    pub at: i64,
    pub account_id: String,
    pub channel: String,
    pub payment_id: Option<String>,
    /// The client address (an IPv6 address's /64), for web and chat.
    pub ip: Option<String>,
    /// The browser's session, for web and chat.
    pub device: Option<String>,
    /// The caller's number, on the phone.
    pub ani: Option<String>,
    /// The card's keyed fingerprint.
    pub card_fp: Option<String>,
    /// The card's first six digits.
    pub bin: Option<String>,
    /// pending (sent to the processor), succeeded, declined or blocked.
    pub outcome: String,
    pub amount: i64,
}

/// One decision, with its reasons (codes, comma-separated, strongest first).
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct RiskDecisionRow {
    pub id: String,
    pub at: i64,
    pub account_id: String,
    pub channel: String,
    pub payment_id: Option<String>,
    pub action: String,
    pub score: i64,
    pub reasons: String,
    pub amount: i64,
    pub currency: String,
}

/// A source column the rules count by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Ip,
    Device,
    Ani,
}

/// The counts of [`source_counts`], one literal statement per source column.
macro_rules! source_sql {
    ($col:literal) => {
        concat!(
            "SELECT CAST(COALESCE(SUM(CASE WHEN outcome IN ('declined', 'blocked') THEN 1 ELSE 0 END), 0) AS BIGINT), ",
            "CAST(COUNT(DISTINCT CASE WHEN account_id <> $3 THEN account_id END) + 1 AS BIGINT) ",
            "FROM risk_events WHERE ",
            $col,
            " = $1 AND at >= $2"
        )
    };
}

impl Source {
    fn counts_sql(self) -> &'static str {
        match self {
            Source::Ip => source_sql!("ip"),
            Source::Device => source_sql!("device"),
            Source::Ani => source_sql!("ani"),
        }
    }
}

pub async fn insert_event(c: &mut AnyConnection, e: &RiskEventRow) -> R<()> {
    sqlx::query(
        "INSERT INTO risk_events (id, at, account_id, channel, payment_id, ip, device, ani, \
         card_fp, bin, outcome, amount) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&e.id)
    .bind(e.at)
    .bind(&e.account_id)
    .bind(&e.channel)
    .bind(&e.payment_id)
    .bind(&e.ip)
    .bind(&e.device)
    .bind(&e.ani)
    .bind(&e.card_fp)
    .bind(&e.bin)
    .bind(&e.outcome)
    .bind(e.amount)
    .execute(c)
    .await?;
    Ok(())
}

/// Records what became of the attempt that sent `payment_id` to the processor.
pub async fn set_outcome(c: &mut AnyConnection, payment_id: &str, outcome: &str) -> R<()> {
    sqlx::query("UPDATE risk_events SET outcome = $1 WHERE payment_id = $2")
        .bind(outcome)
        .bind(payment_id)
        .execute(c)
        .await?;
    Ok(())
}

pub async fn insert_decision(c: &mut AnyConnection, d: &RiskDecisionRow) -> R<()> {
    sqlx::query(
        "INSERT INTO risk_decisions (id, at, account_id, channel, payment_id, action, score, \
         reasons, amount, currency) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&d.id)
    .bind(d.at)
    .bind(&d.account_id)
    .bind(&d.channel)
    .bind(&d.payment_id)
    .bind(&d.action)
    .bind(d.score)
    .bind(&d.reasons)
    .bind(d.amount)
    .bind(&d.currency)
    .execute(c)
    .await?;
    Ok(())
}

/// The account's decisions, newest first.
pub async fn decisions_of_account(
    c: &mut AnyConnection,
    account_id: &str,
    limit: i64,
) -> R<Vec<RiskDecisionRow>> {
    Ok(sqlx::query_as::<_, RiskDecisionRow>(
        "SELECT * FROM risk_decisions WHERE account_id = $1 ORDER BY at DESC, id DESC LIMIT $2",
    )
    .bind(account_id)
    .bind(limit)
    .fetch_all(c)
    .await?)
}

/// Decisions of one action since `since`, newest first (the desk's list of refusals).
pub async fn decisions_since(
    c: &mut AnyConnection,
    action: &str,
    since: i64,
    limit: i64,
) -> R<Vec<RiskDecisionRow>> {
    Ok(sqlx::query_as::<_, RiskDecisionRow>(
        "SELECT * FROM risk_decisions WHERE action = $1 AND at >= $2 \
         ORDER BY at DESC, id DESC LIMIT $3",
    )
    .bind(action)
    .bind(since)
    .bind(limit)
    .fetch_all(c)
    .await?)
}

/// Of one source since `since`: the attempts declined or blocked, and the distinct accounts
/// tried counting `account_id` whether or not it was among them.
pub async fn source_counts(
    c: &mut AnyConnection,
    source: Source,
    value: &str,
    since: i64,
    account_id: &str,
) -> R<(i64, i64)> {
    let (bad, accounts): (i64, i64) = sqlx::query_as(source.counts_sql())
        .bind(value)
        .bind(since)
        .bind(account_id)
        .fetch_one(c)
        .await?;
    Ok((bad, accounts))
}

/// Of one card since `since`: its declines, and the distinct accounts it was tried on,
/// counting `account_id`.
pub async fn card_counts(
    c: &mut AnyConnection,
    card_fp: &str,
    since: i64,
    account_id: &str,
) -> R<(i64, i64)> {
    let (declines, accounts): (i64, i64) = sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(CASE WHEN outcome = 'declined' THEN 1 ELSE 0 END), 0) AS BIGINT), \
         CAST(COUNT(DISTINCT CASE WHEN account_id <> $3 THEN account_id END) + 1 AS BIGINT) \
         FROM risk_events WHERE card_fp = $1 AND at >= $2",
    )
    .bind(card_fp)
    .bind(since)
    .bind(account_id)
    .fetch_one(c)
    .await?;
    Ok((declines, accounts))
}

/// The distinct cards tried on an account since `since`, counting `card_fp`.
pub async fn account_cards(
    c: &mut AnyConnection,
    account_id: &str,
    since: i64,
    card_fp: &str,
) -> R<i64> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT CAST(COUNT(DISTINCT CASE WHEN card_fp <> $3 THEN card_fp END) + 1 AS BIGINT) \
         FROM risk_events WHERE account_id = $1 AND at >= $2",
    )
    .bind(account_id)
    .bind(since)
    .bind(card_fp)
    .fetch_one(c)
    .await?;
    Ok(n)
}

/// Declines of one card range since `since`.
pub async fn bin_declines(c: &mut AnyConnection, bin: &str, since: i64) -> R<i64> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM risk_events \
         WHERE bin = $1 AND at >= $2 AND outcome = 'declined'",
    )
    .bind(bin)
    .bind(since)
    .fetch_one(c)
    .await?;
    Ok(n)
}

/// Drops attempts older than `before` (they count in no window). Returns how many.
pub async fn prune_events(c: &mut AnyConnection, before: i64) -> R<u64> {
    let done = sqlx::query("DELETE FROM risk_events WHERE at < $1")
        .bind(before)
        .execute(c)
        .await?;
    Ok(done.rows_affected())
}

/// What the review rules compare a payment with: the account's current statement's amount due,
/// its balance, its largest payment since `since` that went through and is not held for review,
/// and how often the saved method `method_id` and a bank account paid before (each counting
/// only payments that went through and are not held). One statement, so one snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct AmountHistory {
    pub amount_due: i64,
    pub balance: i64,
    pub largest_payment: i64,
    pub method_uses: i64,
    pub bank_uses: i64,
}

/// The account's [`AmountHistory`]. `receivable` is its `ar:` ledger account; `method_id` is
/// the saved method paying now ("" for none: no id is empty).
pub async fn amount_history(
    c: &mut AnyConnection,
    account_id: &str,
    receivable: &str,
    since: i64,
    method_id: &str,
) -> R<AmountHistory> {
    Ok(sqlx::query_as::<_, AmountHistory>(
        "SELECT \
         CAST(COALESCE((SELECT amount_due FROM statements WHERE account_id = $1 \
           ORDER BY statement_date DESC LIMIT 1), 0) AS BIGINT) AS amount_due, \
         CAST(COALESCE((SELECT SUM(amount) FROM postings WHERE ledger_account = $2), 0) AS BIGINT) AS balance, \
         CAST(COALESCE(MAX(CASE WHEN p.created_at >= $3 THEN p.amount END), 0) AS BIGINT) AS largest_payment, \
         CAST(COALESCE(SUM(CASE WHEN p.payment_method_id = $4 THEN 1 ELSE 0 END), 0) AS BIGINT) AS method_uses, \
         CAST(COALESCE(SUM(CASE WHEN p.method_type = 'ach' THEN 1 ELSE 0 END), 0) AS BIGINT) AS bank_uses \
         FROM payments p WHERE p.account_id = $1 AND p.journal_id IS NOT NULL \
         AND p.status IN ('succeeded', 'partially_refunded', 'processing') \
         AND NOT EXISTS (SELECT 1 FROM payment_reviews r WHERE r.payment_id = p.id \
           AND (r.decided_at IS NULL OR r.decision = 'reject'))",
    )
    .bind(account_id)
    .bind(receivable)
    .bind(since)
    .bind(method_id)
    .fetch_one(c)
    .await?)
}

/// A payment held for review, with what the queue and the panel show of its payment (never a
/// card or bank number: brand and last four at most).
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct PaymentReviewRow {
    pub payment_id: String,
    pub account_id: String,
    pub reasons: String,
    pub score: i64,
    pub opened_at: i64,
    pub decided_at: Option<i64>,
    pub decided_by: Option<String>,
    /// The name of the staff member in `decided_by`.
    pub decided_by_name: Option<String>,
    pub decision: Option<String>,
    pub decision_reason: Option<String>,
    pub account_number: String,
    pub amount: i64,
    pub currency: String,
    pub refunded_amount: i64,
    pub status: String,
    pub channel: String,
    pub method_type: String,
    pub brand: Option<String>,
    pub last4: String,
    pub confirmation_number: String,
}

/// The columns of [`PaymentReviewRow`], from `payment_reviews r`, `payments p`, `accounts a`
/// and the deciding `staff_users s` (`decided_by` is `staff:<id>`, as in the audit log).
macro_rules! review_select {
    ($tail:literal) => {
        concat!(
            "SELECT r.payment_id, r.account_id, r.reasons, r.score, r.opened_at, r.decided_at, ",
            "r.decided_by, s.name AS decided_by_name, r.decision, r.decision_reason, ",
            "a.account_number, p.amount, p.currency, ",
            "p.refunded_amount, p.status, p.channel, p.method_type, p.brand, p.last4, ",
            "p.confirmation_number FROM payment_reviews r ",
            "JOIN payments p ON p.id = r.payment_id JOIN accounts a ON a.id = r.account_id ",
            "LEFT JOIN staff_users s ON r.decided_by = 'staff:' || s.id ",
            $tail
        )
    };
}

/// Opens the review of a payment the rules sent to review, if they did: called in the
/// transaction that records the processor's approval. Does nothing for any other payment, or
/// when the review is already open. True when a review was opened.
pub async fn open_review(c: &mut AnyConnection, payment_id: &str, now: i64) -> R<bool> {
    let done = sqlx::query(
        "INSERT INTO payment_reviews (payment_id, account_id, reasons, score, opened_at) \
         SELECT payment_id, account_id, reasons, score, $2 FROM risk_decisions \
         WHERE payment_id = $1 AND action = 'review' \
         ON CONFLICT (payment_id) DO NOTHING",
    )
    .bind(payment_id)
    .bind(now)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Open reviews, oldest first.
pub async fn open_reviews(c: &mut AnyConnection, limit: i64) -> R<Vec<PaymentReviewRow>> {
    Ok(sqlx::query_as::<_, PaymentReviewRow>(review_select!(
        "WHERE r.decided_at IS NULL ORDER BY r.opened_at, r.payment_id LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(c)
    .await?)
}

/// Open reviews in all.
pub async fn open_review_count(c: &mut AnyConnection) -> R<i64> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM payment_reviews WHERE decided_at IS NULL",
    )
    .fetch_one(c)
    .await?;
    Ok(n)
}

/// One payment's review, open or decided.
pub async fn review_of(c: &mut AnyConnection, payment_id: &str) -> R<Option<PaymentReviewRow>> {
    Ok(
        sqlx::query_as::<_, PaymentReviewRow>(review_select!("WHERE r.payment_id = $1"))
            .bind(payment_id)
            .fetch_optional(c)
            .await?,
    )
}

/// An account's reviews, newest first (the desk's account panel).
pub async fn reviews_of_account(
    c: &mut AnyConnection,
    account_id: &str,
    limit: i64,
) -> R<Vec<PaymentReviewRow>> {
    Ok(sqlx::query_as::<_, PaymentReviewRow>(review_select!(
        "WHERE r.account_id = $1 ORDER BY r.opened_at DESC, r.payment_id DESC LIMIT $2"
    ))
    .bind(account_id)
    .bind(limit)
    .fetch_all(c)
    .await?)
}

/// Records a person's decision on an open review: an approval of a review no one started to
/// reject, or the end of a rejection (its refund made). False when it was already decided, or
/// another decision was started: a review is decided once.
pub async fn decide_review(
    c: &mut AnyConnection,
    payment_id: &str,
    now: i64,
    decided_by: &str,
    decision: &str,
    reason: &str,
) -> R<bool> {
    let done = sqlx::query(
        "UPDATE payment_reviews SET decided_at = $2, decided_by = $3, decision = $4, \
         decision_reason = $5 WHERE payment_id = $1 AND decided_at IS NULL \
         AND (decision IS NULL OR decision = $4)",
    )
    .bind(payment_id)
    .bind(now)
    .bind(decided_by)
    .bind(decision)
    .bind(reason)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Starts rejecting an open review before its refund is asked for: from here an approval is
/// refused, so a payment is never both approved and refunded. A rejection already started
/// (its refund pending) may be started again. False when the review was decided or approved.
pub async fn start_rejection(
    c: &mut AnyConnection,
    payment_id: &str,
    decided_by: &str,
    reason: &str,
) -> R<bool> {
    let done = sqlx::query(
        "UPDATE payment_reviews SET decided_by = $2, decision = 'reject', decision_reason = $3 \
         WHERE payment_id = $1 AND decided_at IS NULL \
         AND (decision IS NULL OR decision = 'reject')",
    )
    .bind(payment_id)
    .bind(decided_by)
    .bind(reason)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Withdraws a rejection whose refund the processor refused: the review is open again.
pub async fn cancel_rejection(c: &mut AnyConnection, payment_id: &str) -> R<()> {
    sqlx::query(
        "UPDATE payment_reviews SET decided_by = NULL, decision = NULL, decision_reason = NULL \
         WHERE payment_id = $1 AND decided_at IS NULL AND decision = 'reject'",
    )
    .bind(payment_id)
    .execute(c)
    .await?;
    Ok(())
}

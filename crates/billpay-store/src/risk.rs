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

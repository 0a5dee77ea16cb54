//! Queries of the operator dashboard. Same conventions as [`crate::queries`]: one SQL text on
//! both engines, instants in microseconds, days passed in.
//!
//! A dashboard groups by the biller's local day. Local midnights are not a fixed number of
//! microseconds apart (DST), so the caller passes each day's `[from, to)` and the query joins
//! them as a `VALUES` list: the grouping happens in the database on both engines, and a day
//! means the same instants here as in the posting file.

use sqlx::AnyConnection;

use crate::StoreError;

type R<T> = Result<T, StoreError>;

/// Most days one dashboard query groups by (three `$N` parameters each).
pub const DAYS_MAX: usize = 93;

/// One local day: its name (`YYYY-MM-DD`) and its instants `[from, to)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DayRange {
    pub day: String,
    pub from: i64,
    pub to: i64,
}

/// `WITH days(day, day_from, day_to) AS (VALUES ($1, $2, $3), ...)`, numbered from `$first`.
fn days_cte(days: &[DayRange], first: usize) -> String {
    let tuples: Vec<String> = (0..days.len())
        .map(|i| {
            let n = first + i * 3;
            format!("(${}, ${}, ${})", n, n + 1, n + 2)
        })
        .collect();
    format!(
        "WITH days(day, day_from, day_to) AS (VALUES {}) ",
        tuples.join(", ")
    )
}

fn checked(days: &[DayRange]) -> R<()> {
    if days.is_empty() || days.len() > DAYS_MAX {
        return Err(StoreError::Internal(format!(
            "a dashboard query takes 1 to {DAYS_MAX} days, not {}",
            days.len()
        )));
    }
    Ok(())
}

/// Runs `select` over the `days` list (named `days d` in it) and returns its rows. Where the
/// text says `:channel`, it becomes the parameter holding `channel` ('' for every channel).
async fn by_days<O>(
    c: &mut AnyConnection,
    days: &[DayRange],
    channel: Option<&str>,
    select: &str,
) -> R<Vec<O>>
where
    O: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
{
    checked(days)?;
    let sql = format!(
        "{}{}",
        days_cte(days, 1),
        select.replace(":channel", &format!("${}", days.len() * 3 + 1))
    );
    let mut q = sqlx::query_as::<_, O>(sqlx::AssertSqlSafe(sql));
    for d in days {
        q = q.bind(d.day.as_str()).bind(d.from).bind(d.to);
    }
    if select.contains(":channel") {
        q = q.bind(channel.unwrap_or_default());
    }
    Ok(q.fetch_all(c).await?)
}

/// Payments the ledger posted on a day, by channel and method type: how many and the amount
/// applied to customers' receivables (minor units; a payment entry has one receivable posting). Read from the journal, as the posting file
/// is, so a day's total here is the posting file's payment total.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct PostedByDayRow {
    pub day: String,
    pub channel: String,
    pub method_type: String,
    pub currency: String,
    pub count: i64,
    pub amount: i64,
}

/// `channel`: only that channel's payments (None: every channel).
pub async fn posted_by_day(
    c: &mut AnyConnection,
    days: &[DayRange],
    channel: Option<&str>,
) -> R<Vec<PostedByDayRow>> {
    by_days(
        c,
        days,
        channel,
        "SELECT d.day, p.channel, p.method_type, j.currency, \
           CAST(COUNT(*) AS BIGINT) AS count, \
           CAST(-COALESCE(SUM(po.amount), 0) AS BIGINT) AS amount \
         FROM days d \
         JOIN journal_entries j ON j.created_at >= d.day_from AND j.created_at < d.day_to \
         JOIN accounts a ON a.id = j.account_id \
         JOIN payments p ON p.id = j.source_id \
         JOIN postings po ON po.journal_id = j.id AND po.ledger_account = 'ar:' || a.account_number \
         WHERE j.source_type = 'payment' AND j.kind = 'payment' \
           AND (:channel = '' OR p.channel = :channel) \
         GROUP BY d.day, p.channel, p.method_type, j.currency \
         ORDER BY d.day, p.channel, p.method_type, j.currency",
    )
    .await
}

/// How often something happened on a day, by a reason or kind.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct CountByDayRow {
    pub day: String,
    pub reason: String,
    pub count: i64,
}

/// Payments refused on a day (by the processor, the bank, or the rules before either), by
/// decline code; by when they were made.
pub async fn declines_by_day(
    c: &mut AnyConnection,
    days: &[DayRange],
    channel: Option<&str>,
) -> R<Vec<CountByDayRow>> {
    by_days(
        c,
        days,
        channel,
        &reasons_by_day(
            "JOIN payments p ON p.created_at >= d.day_from AND p.created_at < d.day_to \
             WHERE p.status = 'failed'",
        ),
    )
    .await
}

/// Counts by day and decline code of the payments `source` joins to `days d` as `p`.
fn reasons_by_day(source: &str) -> String {
    format!(
        "SELECT d.day, COALESCE(p.decline_code, 'unknown') AS reason, \
           CAST(COUNT(*) AS BIGINT) AS count \
         FROM days d {source} AND (:channel = '' OR p.channel = :channel) \
         GROUP BY d.day, COALESCE(p.decline_code, 'unknown') ORDER BY d.day, reason"
    )
}

/// The fraud rules' decisions made on a day, by action (`allow`, `review`, `block`; not a
/// reviewer's `approve` or `reject`).
pub async fn risk_by_day(
    c: &mut AnyConnection,
    days: &[DayRange],
    channel: Option<&str>,
) -> R<Vec<CountByDayRow>> {
    by_days(
        c,
        days,
        channel,
        "SELECT d.day, r.action AS reason, CAST(COUNT(*) AS BIGINT) AS count \
         FROM days d JOIN risk_decisions r ON r.at >= d.day_from AND r.at < d.day_to \
         WHERE r.action IN ('allow', 'review', 'block') AND (:channel = '' OR r.channel = :channel) \
         GROUP BY d.day, r.action ORDER BY d.day, reason",
    )
    .await
}

/// Refusals by the fraud rules in `[from, to)`, by their list of reasons (codes,
/// comma-separated), with how many had that list.
pub async fn refusal_reasons(
    c: &mut AnyConnection,
    from: i64,
    to: i64,
    channel: Option<&str>,
) -> R<Vec<(String, i64)>> {
    Ok(sqlx::query_as::<_, (String, i64)>(
        "SELECT reasons, CAST(COUNT(*) AS BIGINT) FROM risk_decisions \
         WHERE action = 'block' AND at >= $1 AND at < $2 AND ($3 = '' OR channel = $3) \
         GROUP BY reasons",
    )
    .bind(from)
    .bind(to)
    .bind(channel.unwrap_or(""))
    .fetch_all(c)
    .await?)
}

/// Bank debits the ledger reversed on a day (returns), by return code.
pub async fn returns_by_day(
    c: &mut AnyConnection,
    days: &[DayRange],
    channel: Option<&str>,
) -> R<Vec<CountByDayRow>> {
    by_days(
        c,
        days,
        channel,
        &reasons_by_day(
            "JOIN journal_entries j ON j.created_at >= d.day_from AND j.created_at < d.day_to \
             JOIN payments p ON p.id = j.source_id \
             WHERE j.source_type = 'payment' AND j.kind = 'return'",
        ),
    )
    .await
}

/// Live chat on a day: conversations started, those handed to a person, those a person
/// answered, and the total wait of the answered ones (from the hand-over to the first message
/// of an agent, microseconds).
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct ChatByDayRow {
    pub day: String,
    pub conversations: i64,
    pub handed_over: i64,
    pub answered: i64,
    pub wait_micros_total: i64,
}

pub async fn chat_by_day(c: &mut AnyConnection, days: &[DayRange]) -> R<Vec<ChatByDayRow>> {
    by_days(
        c,
        days,
        None,
        "SELECT d.day, CAST(COUNT(*) AS BIGINT) AS conversations, \
           CAST(SUM(CASE WHEN x.handed_over_at IS NULL THEN 0 ELSE 1 END) AS BIGINT) AS handed_over, \
           CAST(SUM(CASE WHEN x.answered_at IS NULL THEN 0 ELSE 1 END) AS BIGINT) AS answered, \
           CAST(COALESCE(SUM(x.answered_at - x.handed_over_at), 0) AS BIGINT) AS wait_micros_total \
         FROM days d \
         JOIN (SELECT cc.created_at, cc.handed_over_at, \
                 (SELECT MIN(m.created_at) FROM chat_messages m \
                  WHERE m.conversation_id = cc.id AND m.sender = 'agent' \
                    AND m.created_at >= cc.handed_over_at) AS answered_at \
               FROM chat_conversations cc) x \
           ON x.created_at >= d.day_from AND x.created_at < d.day_to \
         GROUP BY d.day ORDER BY d.day",
    )
    .await
}

/// A phone call for the dashboard: its state (JSON, no secrets) and when it began and last
/// moved. Read from the relaxed store ([`crate::Store::relaxed_conn`]).
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct CallStatRow {
    pub status: String,
    pub state: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The calls that began in `[from, to)`, oldest first, at most `limit`.
pub async fn calls_between(
    c: &mut AnyConnection,
    from: i64,
    to: i64,
    limit: i64,
) -> R<Vec<CallStatRow>> {
    Ok(sqlx::query_as::<_, CallStatRow>(
        "SELECT status, state, created_at, updated_at FROM ivr_calls \
         WHERE created_at >= $1 AND created_at < $2 ORDER BY created_at, call_sid LIMIT $3",
    )
    .bind(from)
    .bind(to)
    .bind(limit)
    .fetch_all(c)
    .await?)
}

/// Accounts by status, as the dashboard counts them: each account once, in the first of
/// suspended, in an active arrangement, past due, current.
#[derive(Clone, Debug, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct AccountStatusRow {
    pub total: i64,
    pub suspended: i64,
    pub in_arrangement: i64,
    pub past_due: i64,
    pub autopay: i64,
}

/// [`AccountStatusRow`] in one pass over the accounts, in the database. Past due is the aging
/// report's rule: payments pay the oldest charges first, so an account is past due when its
/// receivable balance is more than its charges not yet due (a statement due on or after
/// `today`, `YYYY-MM-DD`; any other charge posted since `today_start`, the biller's local
/// midnight, in microseconds).
pub async fn account_status_counts(
    c: &mut AnyConnection,
    today: &str,
    today_start: i64,
) -> R<AccountStatusRow> {
    let row = sqlx::query_as::<_, AccountStatusRow>(
        "WITH per AS (            SELECT a.service_status AS service_status,              CASE WHEN EXISTS (SELECT 1 FROM arrangements r WHERE r.account_id = a.id                AND r.status = 'active') THEN 1 ELSE 0 END AS arr,              CASE WHEN EXISTS (SELECT 1 FROM autopay_enrollments e WHERE e.account_id = a.id                AND e.status = 'active') THEN 1 ELSE 0 END AS ap,              (SELECT COALESCE(SUM(po.amount), 0) FROM journal_entries j                JOIN postings po ON po.journal_id = j.id                WHERE j.account_id = a.id AND po.ledger_account = 'ar:' || a.account_number) AS balance,              (SELECT COALESCE(SUM(po.amount), 0) FROM journal_entries j                JOIN postings po ON po.journal_id = j.id                LEFT JOIN statements s ON j.source_type = 'statement' AND s.id = j.source_id                WHERE j.account_id = a.id AND po.ledger_account = 'ar:' || a.account_number                  AND po.amount > 0                  AND ((s.due_date IS NOT NULL AND s.due_date >= $1)                    OR (s.due_date IS NULL AND j.created_at >= $2))) AS not_due            FROM accounts a)          SELECT CAST(COUNT(*) AS BIGINT) AS total,            CAST(COALESCE(SUM(CASE WHEN service_status = 'suspended' THEN 1 ELSE 0 END), 0) AS BIGINT) AS suspended,            CAST(COALESCE(SUM(CASE WHEN service_status <> 'suspended' AND arr = 1 THEN 1 ELSE 0 END), 0) AS BIGINT) AS in_arrangement,            CAST(COALESCE(SUM(CASE WHEN service_status <> 'suspended' AND arr = 0 AND balance > not_due              THEN 1 ELSE 0 END), 0) AS BIGINT) AS past_due,            CAST(COALESCE(SUM(ap), 0) AS BIGINT) AS autopay          FROM per",
    )
    .bind(today)
    .bind(today_start)
    .fetch_one(c)
    .await?;
    Ok(row)
}

/// The queue now, for the metrics gauges: jobs due (queued, `run_at <= now`) and when the
/// oldest of them was due (None: nothing due).
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct QueueRow {
    pub due: i64,
    pub oldest_run_at: Option<i64>,
}

pub async fn jobs_due(c: &mut AnyConnection, now: i64) -> R<QueueRow> {
    Ok(sqlx::query_as::<_, QueueRow>(
        "SELECT CAST(COUNT(*) AS BIGINT) AS due, MIN(run_at) AS oldest_run_at FROM jobs \
         WHERE status = 'queued' AND run_at <= $1",
    )
    .bind(now)
    .fetch_one(c)
    .await?)
}

/// Open chat conversations by state (bot, queued, assigned).
pub async fn open_chats(c: &mut AnyConnection) -> R<Vec<(String, i64)>> {
    Ok(sqlx::query_as::<_, (String, i64)>(
        "SELECT state, CAST(COUNT(*) AS BIGINT) FROM chat_conversations \
         WHERE state IN ('bot', 'queued', 'assigned') GROUP BY state ORDER BY state",
    )
    .fetch_all(c)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_days_are_numbered_from_the_first_parameter() {
        let d = |day: &str| DayRange {
            day: day.into(),
            from: 0,
            to: 1,
        };
        assert_eq!(
            days_cte(&[d("2026-12-01"), d("2026-12-02")], 1),
            "WITH days(day, day_from, day_to) AS (VALUES ($1, $2, $3), ($4, $5, $6)) "
        );
        assert!(checked(&[]).is_err());
        assert!(checked(&vec![d("x"); DAYS_MAX + 1]).is_err());
        assert!(checked(&vec![d("x"); DAYS_MAX]).is_ok());
    }
}

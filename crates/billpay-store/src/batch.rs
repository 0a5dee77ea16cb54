//! Multi-row statements for work done in batches (the AutoPay run): one round trip to the
//! database for many rows, instead of one per row.
//!
//! On SQLite every statement is a round trip to the connection's own thread, and the single
//! writer spends most of a small write's time on those hand-offs rather than in SQLite. The
//! functions here run the same SQL shapes as their one-row counterparts in [`crate::queries`],
//! over many rows at once, and are tested against them on both engines.

use std::collections::{HashMap, HashSet};

use sqlx::AnyConnection;
use sqlx::any::AnyArguments;
use sqlx::query::Query;

use crate::jobs::AutopayRow;
use crate::rows::{
    AccountRow, AuditRow, IdempotencyRow, JournalRow, OutboxRow, PaymentMethodRow, PaymentRow,
    SandboxTxRow, StatementRow,
};
use crate::{Engine, StoreError};

type R<T> = Result<T, StoreError>;

/// SQLite allows 32,766 parameters per statement, PostgreSQL 65,535; stay under both.
const PARAMS_MAX: usize = 30_000;

/// One bound value.
#[derive(Clone, Debug)]
pub enum Val {
    Text(Option<String>),
    Int(Option<i64>),
}

impl From<&str> for Val {
    fn from(v: &str) -> Self {
        Val::Text(Some(v.to_string()))
    }
}
impl From<String> for Val {
    fn from(v: String) -> Self {
        Val::Text(Some(v))
    }
}
impl From<&String> for Val {
    fn from(v: &String) -> Self {
        Val::Text(Some(v.clone()))
    }
}
impl From<Option<String>> for Val {
    fn from(v: Option<String>) -> Self {
        Val::Text(v)
    }
}
impl From<&Option<String>> for Val {
    fn from(v: &Option<String>) -> Self {
        Val::Text(v.clone())
    }
}
impl From<i64> for Val {
    fn from(v: i64) -> Self {
        Val::Int(Some(v))
    }
}
impl From<Option<i64>> for Val {
    fn from(v: Option<i64>) -> Self {
        Val::Int(v)
    }
}

fn bind_all<'q>(
    mut q: Query<'q, sqlx::Any, AnyArguments>,
    vals: Vec<Val>,
) -> Query<'q, sqlx::Any, AnyArguments> {
    for v in vals {
        q = match v {
            Val::Text(t) => q.bind(t),
            Val::Int(i) => q.bind(i),
        };
    }
    q
}

/// `($s, $s+1, ..), (..)`: placeholders for `rows` tuples of `width` values, numbered from `start`.
fn tuples(rows: usize, width: usize, start: usize) -> String {
    let mut s = String::with_capacity(rows * width * 6);
    for r in 0..rows {
        if r > 0 {
            s.push_str(", ");
        }
        s.push('(');
        for k in 0..width {
            if k > 0 {
                s.push_str(", ");
            }
            s.push('$');
            s.push_str(&(start + r * width + k).to_string());
        }
        s.push(')');
    }
    s
}

/// `$s, $s+1, ..` for an IN list of `n` values.
fn list(n: usize, start: usize) -> String {
    tuples(n, 1, start).replace(['(', ')'], "")
}

/// The statement `sql` (written with `$1, $2, ..` in the order they are bound, each once) as
/// `c`'s engine should get it. SQLite gets anonymous `?`: sqlx looks up every parameter's name
/// on binding, and SQLite finds a name by walking the statement's list of names, so `$N`
/// costs time quadratic in the number of parameters — most of a 10,000-parameter statement's
/// time. Anonymous parameters have no names to walk.
fn for_engine(c: &AnyConnection, sql: String) -> sqlx::AssertSqlSafe<String> {
    if !c.backend_name().eq_ignore_ascii_case("sqlite") {
        return sqlx::AssertSqlSafe(sql);
    }
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    let mut expected = 1usize;
    while let Some(ch) = chars.next() {
        if ch == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            let mut n = 0usize;
            while let Some(d) = chars.peek().and_then(|d| d.to_digit(10)) {
                n = n * 10 + d as usize;
                chars.next();
            }
            debug_assert_eq!(n, expected, "parameters must be bound in the order written");
            expected += 1;
            out.push('?');
        } else {
            out.push(ch);
        }
    }
    sqlx::AssertSqlSafe(out)
}

/// The rows in chunks small enough for one statement's parameters.
fn chunks(width: usize) -> usize {
    (PARAMS_MAX / width.max(1)).max(1)
}

/// Runs `INSERT INTO table (columns) VALUES (..), (..) suffix` over `rows`, in as few
/// statements as the parameter limit allows. Returns the ids the statement's `RETURNING`
/// names when `returning` is set, else nothing.
async fn insert_rows(
    c: &mut AnyConnection,
    table: &str,
    columns: &[&str],
    rows: Vec<Vec<Val>>,
    suffix: &str,
) -> R<Vec<String>> {
    let width = columns.len();
    let mut returned = Vec::new();
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<Vec<Val>> = rows.by_ref().take(chunks(width)).collect();
        debug_assert!(chunk.iter().all(|r| r.len() == width));
        let sql = format!(
            "INSERT INTO {table} ({}) VALUES {} {suffix}",
            columns.join(", "),
            tuples(chunk.len(), width, 1)
        );
        let q = bind_all(
            sqlx::query(for_engine(c, sql)),
            chunk.into_iter().flatten().collect(),
        );
        if suffix.contains("RETURNING") {
            use sqlx::Row;
            for row in q.fetch_all(&mut *c).await? {
                returned.push(row.try_get::<String, _>(0)?);
            }
        } else {
            q.execute(&mut *c).await?;
        }
    }
    Ok(returned)
}

/// Runs `sql` (which holds `{in}` where an IN list goes, after `fixed` leading parameters)
/// over `ids` in chunks, and collects its rows.
async fn select_in<T>(
    c: &mut AnyConnection,
    sql: &str,
    fixed: Vec<Val>,
    ids: &[String],
) -> R<Vec<T>>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
{
    let mut out = Vec::new();
    for chunk in ids.chunks(chunks(1) - fixed.len()) {
        let text = sql.replace("{in}", &list(chunk.len(), fixed.len() + 1));
        let mut vals = fixed.clone();
        vals.extend(chunk.iter().map(Val::from));
        let q = bind_all(sqlx::query(for_engine(c, text)), vals);
        for row in q.fetch_all(&mut *c).await? {
            out.push(T::from_row(&row)?);
        }
    }
    Ok(out)
}

// ------------------------------------------------------------------------------- reads

pub async fn accounts_by_ids(c: &mut AnyConnection, ids: &[String]) -> R<Vec<AccountRow>> {
    select_in(c, "SELECT * FROM accounts WHERE id IN ({in})", vec![], ids).await
}

pub async fn statements_by_ids(c: &mut AnyConnection, ids: &[String]) -> R<Vec<StatementRow>> {
    select_in(
        c,
        "SELECT * FROM statements WHERE id IN ({in})",
        vec![],
        ids,
    )
    .await
}

/// The AutoPay enrollments of these accounts, in any status.
pub async fn autopay_of_accounts(c: &mut AnyConnection, ids: &[String]) -> R<Vec<AutopayRow>> {
    select_in(
        c,
        "SELECT * FROM autopay_enrollments WHERE account_id IN ({in})",
        vec![],
        ids,
    )
    .await
}

pub async fn payment_methods_by_ids(
    c: &mut AnyConnection,
    ids: &[String],
) -> R<Vec<PaymentMethodRow>> {
    select_in(
        c,
        "SELECT * FROM payment_methods WHERE id IN ({in})",
        vec![],
        ids,
    )
    .await
}

/// The keys of `scope` among `keys` that have been claimed before.
pub async fn idempotency_keys_taken(
    c: &mut AnyConnection,
    scope: &str,
    keys: &[String],
) -> R<HashSet<String>> {
    let rows: Vec<(String,)> = select_in(
        c,
        "SELECT idem_key FROM idempotency_keys WHERE scope = $1 AND idem_key IN ({in})",
        vec![scope.into()],
        keys,
    )
    .await?;
    Ok(rows.into_iter().map(|(k,)| k).collect())
}

/// What each account can still be charged, as [`crate::jobs::payable_balance`] computes it for
/// one: its receivable's postings less payments in flight. One statement, so on PostgreSQL one
/// snapshot: a payment that posts meanwhile is counted exactly once.
pub async fn payable_balances(
    c: &mut AnyConnection,
    account_ids: &[String],
) -> R<HashMap<String, i64>> {
    let rows: Vec<(String, i64)> = select_in(
        c,
        "SELECT a.id, CAST(COALESCE((SELECT SUM(p.amount) FROM postings p \
         WHERE p.ledger_account = 'ar:' || a.account_number), 0) \
         - COALESCE((SELECT SUM(y.amount) FROM payments y WHERE y.account_id = a.id \
         AND y.status IN ('pending', 'processing') AND y.journal_id IS NULL), 0) AS BIGINT) \
         FROM accounts a WHERE a.id IN ({in})",
        vec![],
        account_ids,
    )
    .await?;
    Ok(rows.into_iter().collect())
}

/// For each (account id, instant): what [`crate::jobs::paid_since`] returns for it.
pub async fn paid_since_many(
    c: &mut AnyConnection,
    since: &[(String, i64)],
) -> R<HashMap<String, i64>> {
    use sqlx::Row;
    let mut out = HashMap::new();
    for chunk in since.chunks(chunks(2)) {
        let sql = format!(
            "SELECT v.column1, CAST(COALESCE((SELECT SUM(p.amount - p.refunded_amount) \
             FROM payments p WHERE p.account_id = v.column1 AND p.created_at >= v.column2 \
             AND p.status IN ('pending', 'processing', 'succeeded', 'partially_refunded')), 0) \
             AS BIGINT) FROM (VALUES {}) AS v",
            tuples(chunk.len(), 2, 1)
        );
        let vals = chunk
            .iter()
            .flat_map(|(a, t)| [Val::from(a), Val::from(*t)])
            .collect();
        for row in bind_all(sqlx::query(for_engine(c, sql)), vals)
            .fetch_all(&mut *c)
            .await?
        {
            out.insert(row.try_get::<String, _>(0)?, row.try_get::<i64, _>(1)?);
        }
    }
    Ok(out)
}

/// Which of these confirmation numbers are already used.
pub async fn confirmations_taken(c: &mut AnyConnection, numbers: &[String]) -> R<HashSet<String>> {
    let rows: Vec<(String,)> = select_in(
        c,
        "SELECT confirmation_number FROM payments WHERE confirmation_number IN ({in})",
        vec![],
        numbers,
    )
    .await?;
    Ok(rows.into_iter().map(|(k,)| k).collect())
}

// ------------------------------------------------------------------------------ writes

/// Locks the accounts for payment, as [`crate::queries::lock_account`] does one. On PostgreSQL
/// the rows are locked in id order, so two batches never wait on each other in a circle. On
/// SQLite the write transaction already excludes every other writer; touching each account's
/// row as well would only dirty one scattered page per account for the WAL to carry.
pub async fn lock_accounts(c: &mut AnyConnection, engine: Engine, ids: &[String]) -> R<()> {
    if engine != Engine::Postgres {
        return Ok(());
    }
    let mut ids = ids.to_vec();
    ids.sort();
    ids.dedup();
    let _: Vec<(String,)> = select_in(
        c,
        "SELECT id FROM accounts WHERE id IN ({in}) ORDER BY id FOR UPDATE",
        vec![],
        &ids,
    )
    .await?;
    Ok(())
}

/// Claims the keys; returns the `idem_key`s this call claimed (a key claimed before is not).
pub async fn idempotency_claim_many(
    c: &mut AnyConnection,
    rows: &[IdempotencyRow],
) -> R<HashSet<String>> {
    let vals = rows
        .iter()
        .map(|r| {
            vec![
                Val::from(&r.scope),
                Val::from(&r.idem_key),
                Val::from(&r.endpoint),
                Val::from(&r.request_hash),
                Val::from(&r.state),
                Val::from(&r.resource_id),
                Val::from(r.response_status),
                Val::from(&r.response_body),
                Val::from(r.created_at),
                Val::from(r.completed_at),
            ]
        })
        .collect();
    Ok(insert_rows(
        c,
        "idempotency_keys",
        &[
            "scope",
            "idem_key",
            "endpoint",
            "request_hash",
            "state",
            "resource_id",
            "response_status",
            "response_body",
            "created_at",
            "completed_at",
        ],
        vals,
        "ON CONFLICT (scope, idem_key) DO NOTHING RETURNING idem_key",
    )
    .await?
    .into_iter()
    .collect())
}

pub async fn insert_payments(c: &mut AnyConnection, rows: &[PaymentRow]) -> R<()> {
    let vals = rows
        .iter()
        .map(|p| {
            vec![
                Val::from(&p.id),
                Val::from(&p.account_id),
                Val::from(&p.confirmation_number),
                Val::from(p.amount),
                Val::from(&p.currency),
                Val::from(p.fee_amount),
                Val::from(p.refunded_amount),
                Val::from(&p.status),
                Val::from(&p.channel),
                Val::from(&p.method_type),
                Val::from(&p.brand),
                Val::from(&p.last4),
                Val::from(p.exp_month),
                Val::from(p.exp_year),
                Val::from(&p.bank_account_type),
                Val::from(&p.routing_number),
                Val::from(&p.holder_name),
                Val::from(&p.processor),
                Val::from(&p.processor_key),
                Val::from(&p.processor_ref),
                Val::from(&p.decline_code),
                Val::from(&p.journal_id),
                Val::from(p.created_at),
                Val::from(p.updated_at),
                Val::from(&p.payment_method_id),
            ]
        })
        .collect();
    insert_rows(
        c,
        "payments",
        &[
            "id",
            "account_id",
            "confirmation_number",
            "amount",
            "currency",
            "fee_amount",
            "refunded_amount",
            "status",
            "channel",
            "method_type",
            "brand",
            "last4",
            "exp_month",
            "exp_year",
            "bank_account_type",
            "routing_number",
            "holder_name",
            "processor",
            "processor_key",
            "processor_ref",
            "decline_code",
            "journal_id",
            "created_at",
            "updated_at",
            "payment_method_id",
        ],
        vals,
        "",
    )
    .await?;
    Ok(())
}

pub async fn insert_audits(c: &mut AnyConnection, rows: &[AuditRow]) -> R<()> {
    let vals = rows
        .iter()
        .map(|a| {
            vec![
                Val::from(&a.id),
                Val::from(a.at),
                Val::from(&a.actor),
                Val::from(&a.action),
                Val::from(&a.subject_type),
                Val::from(&a.subject_id),
                Val::from(&a.account_id),
                Val::from(&a.channel),
                Val::from(&a.detail),
            ]
        })
        .collect();
    insert_rows(
        c,
        "audit_log",
        &[
            "id",
            "at",
            "actor",
            "action",
            "subject_type",
            "subject_id",
            "account_id",
            "channel",
            "detail",
        ],
        vals,
        "",
    )
    .await?;
    Ok(())
}

/// Journal entries with their postings. Every entry must balance, as
/// [`crate::queries::insert_journal`] requires; nothing is written otherwise.
pub async fn insert_journals(
    c: &mut AnyConnection,
    entries: &[(JournalRow, Vec<(String, i64)>)],
) -> R<()> {
    for (j, postings) in entries {
        let sum = postings
            .iter()
            .try_fold(0i64, |s, (_, a)| s.checked_add(*a))
            .ok_or_else(|| StoreError::Internal("posting sum overflows".into()))?;
        if postings.len() < 2 || sum != 0 {
            return Err(StoreError::Internal(format!(
                "journal entry {} is unbalanced or has fewer than two postings",
                j.id
            )));
        }
    }
    let heads = entries
        .iter()
        .map(|(j, _)| {
            vec![
                Val::from(&j.id),
                Val::from(&j.kind),
                Val::from(&j.source_type),
                Val::from(&j.source_id),
                Val::from(&j.account_id),
                Val::from(&j.currency),
                Val::from(j.created_at),
            ]
        })
        .collect();
    insert_rows(
        c,
        "journal_entries",
        &[
            "id",
            "kind",
            "source_type",
            "source_id",
            "account_id",
            "currency",
            "created_at",
        ],
        heads,
        "",
    )
    .await?;
    let lines = entries
        .iter()
        .flat_map(|(j, postings)| {
            postings.iter().enumerate().map(|(seq, (ledger, amount))| {
                vec![
                    Val::from(&j.id),
                    Val::from(seq as i64),
                    Val::from(ledger),
                    Val::from(*amount),
                    Val::from(&j.currency),
                ]
            })
        })
        .collect();
    insert_rows(
        c,
        "postings",
        &["journal_id", "seq", "ledger_account", "amount", "currency"],
        lines,
        "",
    )
    .await?;
    Ok(())
}

/// Outbox messages; one whose dedupe key was used before is skipped, as in
/// [`crate::queries::insert_outbox`].
pub async fn insert_outbox_many(c: &mut AnyConnection, rows: &[OutboxRow]) -> R<()> {
    let vals = rows
        .iter()
        .map(|o| {
            vec![
                Val::from(&o.id),
                Val::from(&o.kind),
                Val::from(&o.dedupe_key),
                Val::from(&o.recipient),
                Val::from(&o.payload_json),
                Val::from(o.created_at),
                Val::from(o.sent_at),
                Val::from(o.attempts),
            ]
        })
        .collect();
    insert_rows(
        c,
        "outbox",
        &[
            "id",
            "kind",
            "dedupe_key",
            "recipient",
            "payload_json",
            "created_at",
            "sent_at",
            "attempts",
        ],
        vals,
        "ON CONFLICT (dedupe_key) DO NOTHING",
    )
    .await?;
    Ok(())
}

/// Sandbox transactions; returns the processor keys this call recorded (a key recorded before
/// keeps its first transaction).
pub async fn sandbox_insert_many(
    c: &mut AnyConnection,
    rows: &[SandboxTxRow],
) -> R<HashSet<String>> {
    let vals = rows
        .iter()
        .map(|t| {
            vec![
                Val::from(&t.processor_key),
                Val::from(&t.kind),
                Val::from(&t.reference),
                Val::from(&t.parent_reference),
                Val::from(t.amount),
                Val::from(&t.currency),
                Val::from(&t.outcome),
                Val::from(&t.decline_code),
                Val::from(t.settle_at),
                Val::from(&t.return_code),
                Val::from(t.created_at),
            ]
        })
        .collect();
    Ok(insert_rows(
        c,
        "sandbox_transactions",
        &[
            "processor_key",
            "kind",
            "reference",
            "parent_reference",
            "amount",
            "currency",
            "outcome",
            "decline_code",
            "settle_at",
            "return_code",
            "created_at",
        ],
        vals,
        "ON CONFLICT (processor_key) DO NOTHING RETURNING processor_key",
    )
    .await?
    .into_iter()
    .collect())
}

pub async fn sandbox_by_keys(c: &mut AnyConnection, keys: &[String]) -> R<Vec<SandboxTxRow>> {
    select_in(
        c,
        "SELECT * FROM sandbox_transactions WHERE processor_key IN ({in})",
        vec![],
        keys,
    )
    .await
}

/// A payment's move to the processor's outcome, as [`crate::queries::update_payment_state`]
/// makes one.
#[derive(Clone, Debug)]
pub struct PaymentMove {
    pub id: String,
    pub from: String,
    pub to: String,
    pub processor_ref: Option<String>,
    pub decline_code: Option<String>,
    pub journal_id: Option<String>,
}

/// Applies the moves whose payment is still in its `from` state; returns the ids moved.
pub async fn move_payments(
    c: &mut AnyConnection,
    moves: &[PaymentMove],
    now: i64,
) -> R<HashSet<String>> {
    use sqlx::Row;
    let mut moved = HashSet::new();
    for chunk in moves.chunks(chunks(6)) {
        let sql = format!(
            "UPDATE payments SET status = v.column3, processor_ref = v.column4, \
             decline_code = v.column5, journal_id = v.column6, updated_at = $1 \
             FROM (VALUES {}) AS v \
             WHERE payments.id = v.column1 AND payments.status = v.column2 RETURNING payments.id",
            tuples(chunk.len(), 6, 2)
        );
        let mut vals = vec![Val::from(now)];
        for m in chunk {
            vals.extend([
                Val::from(&m.id),
                Val::from(&m.from),
                Val::from(&m.to),
                Val::from(&m.processor_ref),
                Val::from(&m.decline_code),
                Val::from(&m.journal_id),
            ]);
        }
        for row in bind_all(sqlx::query(for_engine(c, sql)), vals)
            .fetch_all(&mut *c)
            .await?
        {
            moved.insert(row.try_get::<String, _>(0)?);
        }
    }
    Ok(moved)
}

/// Stores the response on each still-open key `(scope, idem_key)`: (key, status, body).
pub async fn idempotency_complete_many(
    c: &mut AnyConnection,
    scope: &str,
    done: &[(String, i64, String)],
    now: i64,
) -> R<()> {
    for chunk in done.chunks(chunks(3)) {
        let sql = format!(
            "UPDATE idempotency_keys SET state = 'completed', response_status = v.column2, \
             response_body = v.column3, completed_at = $1 FROM (VALUES {}) AS v \
             WHERE idempotency_keys.scope = ${} AND idempotency_keys.idem_key = v.column1 \
             AND idempotency_keys.state = 'started'",
            tuples(chunk.len(), 3, 2),
            2 + 3 * chunk.len()
        );
        let mut vals = vec![Val::from(now)];
        for (key, status, body) in chunk {
            vals.extend([Val::from(key), Val::from(*status), Val::from(body)]);
        }
        vals.push(Val::from(scope));
        bind_all(sqlx::query(for_engine(c, sql)), vals)
            .execute(&mut *c)
            .await?;
    }
    Ok(())
}

/// Marks leased jobs done, as [`crate::jobs::finish`] does one; returns how many were.
pub async fn finish_jobs(c: &mut AnyConnection, ids: &[String], owner: &str, now: i64) -> R<u64> {
    let mut n = 0;
    for chunk in ids.chunks(chunks(1) - 3) {
        let sql = format!(
            "UPDATE jobs SET status = 'done', finished_at = $1, updated_at = $2, \
             lease_until = NULL WHERE lease_owner = $3 AND status = 'running' AND id IN ({})",
            list(chunk.len(), 4)
        );
        let mut vals = vec![Val::from(now), Val::from(now), Val::from(owner)];
        vals.extend(chunk.iter().map(Val::from));
        n += bind_all(sqlx::query(for_engine(c, sql)), vals)
            .execute(&mut *c)
            .await?
            .rows_affected();
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_across_tuples() {
        assert_eq!(tuples(2, 3, 1), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(tuples(1, 2, 4), "($4, $5)");
        assert_eq!(list(3, 2), "$2, $3, $4");
    }

    #[tokio::test]
    async fn sqlite_gets_anonymous_parameters_in_order() {
        sqlx::any::install_default_drivers();
        use sqlx::Connection;
        let c = AnyConnection::connect("sqlite::memory:").await.unwrap();
        let sql = format!("UPDATE t SET a = $1 WHERE b IN ({})", list(2, 2));
        assert_eq!(
            for_engine(&c, sql).0,
            "UPDATE t SET a = ? WHERE b IN (?, ?)"
        );
    }

    #[test]
    fn chunks_keep_under_the_parameter_limit() {
        assert_eq!(chunks(25), 1200);
        assert!(chunks(25) * 25 <= PARAMS_MAX);
        assert_eq!(chunks(0), PARAMS_MAX);
    }
}

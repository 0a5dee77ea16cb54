//! Queries for bank debits billpay originates in NACHA files, and for lockbox (mailed check)
//! items. Same conventions as [`crate::queries`]: one function per query, one SQL text for both
//! engines, instants in microseconds.

use sqlx::AnyConnection;

use crate::StoreError;

type R<T> = Result<T, StoreError>;

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct AchEntryRow {
    pub id: String,
    pub processor_key: String,
    pub payment_id: Option<String>,
    pub refund_id: Option<String>,
    pub account_id: String,
    pub purpose: String,
    pub sec_code: String,
    pub transaction_code: i64,
    pub routing_number: String,
    pub account_type: String,
    pub account_last4: String,
    pub account_fingerprint: String,
    pub kek_version: Option<i64>,
    pub wrapped_key: Option<String>,
    pub ciphertext: Option<String>,
    pub individual_name: String,
    pub individual_id: String,
    pub amount: i64,
    pub currency: String,
    pub channel: String,
    pub authorization_text: String,
    pub authorized_at: i64,
    pub payment_method_id: Option<String>,
    pub status: String,
    pub hold_until: Option<i64>,
    pub prenote_id: Option<String>,
    pub file_id: Option<String>,
    pub trace_number: Option<String>,
    pub effective_date: Option<String>,
    pub return_code: Option<String>,
    pub returned_at: Option<i64>,
    pub settled_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct AchFileRow {
    pub id: String,
    pub file_name: String,
    pub file_id_modifier: String,
    pub created_at: i64,
    pub creation_local: String,
    pub status: String,
    pub entry_count: i64,
    pub debit_total: i64,
    pub credit_total: i64,
    pub sha256: Option<String>,
    pub written_at: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct AchValidationRow {
    pub account_fingerprint: String,
    pub status: String,
    pub prenote_id: Option<String>,
    pub return_code: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct AchReturnItemRow {
    pub item_key: String,
    pub kind: String,
    pub code: String,
    pub original_trace: String,
    pub entry_id: Option<String>,
    pub file_sha256: String,
    pub outcome: String,
    pub applied_at: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct LockboxItemRow {
    pub id: String,
    pub item_key: String,
    pub file_sha256: String,
    pub line_number: i64,
    pub deposit_date: String,
    pub lockbox: String,
    pub batch: String,
    pub sequence: String,
    pub check_number: String,
    pub amount: i64,
    pub currency: String,
    pub account_reference: String,
    pub remitter: String,
    pub status: String,
    pub reason: Option<String>,
    pub payment_id: Option<String>,
    pub resolved_by: Option<String>,
    pub resolution_note: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

// ---------------------------------------------------------------- entries

/// Inserts an entry unless one with its processor key exists; true when inserted.
pub async fn insert_entry(c: &mut AnyConnection, e: &AchEntryRow) -> R<bool> {
    let done = sqlx::query(
        "INSERT INTO ach_entries (id, processor_key, payment_id, refund_id, account_id, purpose, \
         sec_code, transaction_code, routing_number, account_type, account_last4, \
         account_fingerprint, kek_version, wrapped_key, ciphertext, individual_name, \
         individual_id, amount, currency, channel, authorization_text, authorized_at, \
         payment_method_id, status, hold_until, prenote_id, file_id, trace_number, \
         effective_date, return_code, returned_at, settled_at, created_at, updated_at) VALUES \
         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, \
         $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33, $34) \
         ON CONFLICT (processor_key) DO NOTHING",
    )
    .bind(&e.id)
    .bind(&e.processor_key)
    .bind(&e.payment_id)
    .bind(&e.refund_id)
    .bind(&e.account_id)
    .bind(&e.purpose)
    .bind(&e.sec_code)
    .bind(e.transaction_code)
    .bind(&e.routing_number)
    .bind(&e.account_type)
    .bind(&e.account_last4)
    .bind(&e.account_fingerprint)
    .bind(e.kek_version)
    .bind(&e.wrapped_key)
    .bind(&e.ciphertext)
    .bind(&e.individual_name)
    .bind(&e.individual_id)
    .bind(e.amount)
    .bind(&e.currency)
    .bind(&e.channel)
    .bind(&e.authorization_text)
    .bind(e.authorized_at)
    .bind(&e.payment_method_id)
    .bind(&e.status)
    .bind(e.hold_until)
    .bind(&e.prenote_id)
    .bind(&e.file_id)
    .bind(&e.trace_number)
    .bind(&e.effective_date)
    .bind(&e.return_code)
    .bind(e.returned_at)
    .bind(e.settled_at)
    .bind(e.created_at)
    .bind(e.updated_at)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn entry_by_key(c: &mut AnyConnection, key: &str) -> R<Option<AchEntryRow>> {
    Ok(
        sqlx::query_as::<_, AchEntryRow>("SELECT * FROM ach_entries WHERE processor_key = $1")
            .bind(key)
            .fetch_optional(c)
            .await?,
    )
}

pub async fn entry_by_id(c: &mut AnyConnection, id: &str) -> R<Option<AchEntryRow>> {
    Ok(
        sqlx::query_as::<_, AchEntryRow>("SELECT * FROM ach_entries WHERE id = $1")
            .bind(id)
            .fetch_optional(c)
            .await?,
    )
}

pub async fn entry_by_trace(c: &mut AnyConnection, trace: &str) -> R<Option<AchEntryRow>> {
    Ok(
        sqlx::query_as::<_, AchEntryRow>("SELECT * FROM ach_entries WHERE trace_number = $1")
            .bind(trace)
            .fetch_optional(c)
            .await?,
    )
}

pub async fn entries_of_payment(c: &mut AnyConnection, payment_id: &str) -> R<Vec<AchEntryRow>> {
    Ok(sqlx::query_as::<_, AchEntryRow>(
        "SELECT * FROM ach_entries WHERE payment_id = $1 ORDER BY created_at, id",
    )
    .bind(payment_id)
    .fetch_all(c)
    .await?)
}

/// Entries ready for a file: pending, or held with a hold that has ended and an account
/// validation that did not fail.
pub async fn entries_ready(c: &mut AnyConnection, now: i64, limit: i64) -> R<Vec<AchEntryRow>> {
    Ok(sqlx::query_as::<_, AchEntryRow>(
        "SELECT * FROM ach_entries WHERE file_id IS NULL AND \
         (status = 'pending' OR (status = 'held' AND hold_until <= $1)) \
         ORDER BY created_at, id LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(c)
    .await?)
}

pub async fn entries_in_file(c: &mut AnyConnection, file_id: &str) -> R<Vec<AchEntryRow>> {
    Ok(sqlx::query_as::<_, AchEntryRow>(
        "SELECT * FROM ach_entries WHERE file_id = $1 ORDER BY trace_number",
    )
    .bind(file_id)
    .fetch_all(c)
    .await?)
}

/// Binds a ready entry to a file; false when another export took it first.
pub async fn assign_entry(
    c: &mut AnyConnection,
    id: &str,
    file_id: &str,
    trace: &str,
    effective_date: &str,
    now: i64,
) -> R<bool> {
    let done = sqlx::query(
        "UPDATE ach_entries SET status = 'exported', file_id = $2, trace_number = $3, \
         effective_date = $4, updated_at = $5 \
         WHERE id = $1 AND file_id IS NULL AND status IN ('pending', 'held')",
    )
    .bind(id)
    .bind(file_id)
    .bind(trace)
    .bind(effective_date)
    .bind(now)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Moves an entry from one status to another; false when it was not in `from`.
pub async fn set_entry_status(
    c: &mut AnyConnection,
    id: &str,
    from: &str,
    to: &str,
    now: i64,
) -> R<bool> {
    let done = sqlx::query(
        "UPDATE ach_entries SET status = $3, updated_at = $4, \
         settled_at = CASE WHEN $3 = 'settled' THEN $4 ELSE settled_at END \
         WHERE id = $1 AND status = $2",
    )
    .bind(id)
    .bind(from)
    .bind(to)
    .bind(now)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records a return on an entry that has not been returned yet.
pub async fn mark_entry_returned(c: &mut AnyConnection, id: &str, code: &str, now: i64) -> R<bool> {
    let done = sqlx::query(
        "UPDATE ach_entries SET status = 'returned', return_code = $2, returned_at = $3, \
         updated_at = $3 WHERE id = $1 AND status <> 'returned' AND status <> 'canceled'",
    )
    .bind(id)
    .bind(code)
    .bind(now)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Debits held for a prenote.
pub async fn entries_waiting_for(c: &mut AnyConnection, prenote_id: &str) -> R<Vec<AchEntryRow>> {
    Ok(sqlx::query_as::<_, AchEntryRow>(
        "SELECT * FROM ach_entries WHERE prenote_id = $1 AND status = 'held' ORDER BY created_at",
    )
    .bind(prenote_id)
    .fetch_all(c)
    .await?)
}

/// Exported entries whose settlement date has come: `effective_date` on or before `date`.
pub async fn exported_due(c: &mut AnyConnection, date: &str, limit: i64) -> R<Vec<AchEntryRow>> {
    Ok(sqlx::query_as::<_, AchEntryRow>(
        "SELECT * FROM ach_entries WHERE status = 'exported' AND effective_date <= $1 \
         ORDER BY effective_date, id LIMIT $2",
    )
    .bind(date)
    .bind(limit)
    .fetch_all(c)
    .await?)
}

/// Destroys the sealed account number of entries that can no longer be returned.
pub async fn forget_account_numbers(c: &mut AnyConnection, before: i64) -> R<u64> {
    let done = sqlx::query(
        "UPDATE ach_entries SET kek_version = NULL, wrapped_key = NULL, ciphertext = NULL \
         WHERE ciphertext IS NOT NULL AND status IN ('settled', 'returned', 'canceled') \
         AND updated_at < $1",
    )
    .bind(before)
    .execute(c)
    .await?;
    Ok(done.rows_affected())
}

/// Sealed entries under an old key version, for re-wrapping after a key rotation.
pub async fn entries_under_old_key(
    c: &mut AnyConnection,
    current: i64,
    limit: i64,
) -> R<Vec<AchEntryRow>> {
    Ok(sqlx::query_as::<_, AchEntryRow>(
        "SELECT * FROM ach_entries WHERE ciphertext IS NOT NULL AND kek_version <> $1 \
         ORDER BY id LIMIT $2",
    )
    .bind(current)
    .bind(limit)
    .fetch_all(c)
    .await?)
}

pub async fn rewrap_entry(
    c: &mut AnyConnection,
    id: &str,
    old_version: i64,
    kek_version: i64,
    wrapped_key: &str,
) -> R<bool> {
    let done = sqlx::query(
        "UPDATE ach_entries SET kek_version = $3, wrapped_key = $4 \
         WHERE id = $1 AND kek_version = $2",
    )
    .bind(id)
    .bind(old_version)
    .bind(kek_version)
    .bind(wrapped_key)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// (key version, sealed entries) pairs.
pub async fn entries_per_key_version(c: &mut AnyConnection) -> R<Vec<(i64, i64)>> {
    Ok(sqlx::query_as::<_, (i64, i64)>(
        "SELECT kek_version, CAST(COUNT(*) AS BIGINT) FROM ach_entries \
         WHERE ciphertext IS NOT NULL GROUP BY kek_version ORDER BY kek_version",
    )
    .fetch_all(c)
    .await?)
}

// ---------------------------------------------------------------- files and sequences

/// The next value of a named sequence, in the caller's write transaction.
pub async fn next_sequence(c: &mut AnyConnection, name: &str, count: i64) -> R<i64> {
    sqlx::query(
        "INSERT INTO ach_sequences (name, value) VALUES ($1, 0) ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .execute(&mut *c)
    .await?;
    sqlx::query("UPDATE ach_sequences SET value = value + $2 WHERE name = $1")
        .bind(name)
        .bind(count)
        .execute(&mut *c)
        .await?;
    let (v,): (i64,) = sqlx::query_as("SELECT value FROM ach_sequences WHERE name = $1")
        .bind(name)
        .fetch_one(c)
        .await?;
    Ok(v - count + 1)
}

pub async fn insert_file(c: &mut AnyConnection, f: &AchFileRow) -> R<()> {
    sqlx::query(
        "INSERT INTO ach_files (id, file_name, file_id_modifier, created_at, creation_local, \
         status, entry_count, debit_total, credit_total, sha256, written_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&f.id)
    .bind(&f.file_name)
    .bind(&f.file_id_modifier)
    .bind(f.created_at)
    .bind(&f.creation_local)
    .bind(&f.status)
    .bind(f.entry_count)
    .bind(f.debit_total)
    .bind(f.credit_total)
    .bind(&f.sha256)
    .bind(f.written_at)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn update_file_totals(
    c: &mut AnyConnection,
    id: &str,
    entry_count: i64,
    debit_total: i64,
    credit_total: i64,
) -> R<()> {
    sqlx::query(
        "UPDATE ach_files SET entry_count = $2, debit_total = $3, credit_total = $4 WHERE id = $1",
    )
    .bind(id)
    .bind(entry_count)
    .bind(debit_total)
    .bind(credit_total)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn mark_file_written(c: &mut AnyConnection, id: &str, sha256: &str, now: i64) -> R<bool> {
    let done = sqlx::query(
        "UPDATE ach_files SET status = 'written', sha256 = $2, written_at = $3 \
         WHERE id = $1 AND status = 'building'",
    )
    .bind(id)
    .bind(sha256)
    .bind(now)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn files_building(c: &mut AnyConnection) -> R<Vec<AchFileRow>> {
    Ok(sqlx::query_as::<_, AchFileRow>(
        "SELECT * FROM ach_files WHERE status = 'building' ORDER BY created_at, id",
    )
    .fetch_all(c)
    .await?)
}

pub async fn files(c: &mut AnyConnection, limit: i64) -> R<Vec<AchFileRow>> {
    Ok(sqlx::query_as::<_, AchFileRow>(
        "SELECT * FROM ach_files ORDER BY created_at DESC, id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(c)
    .await?)
}

/// Files created on a local date (for the next file id modifier).
pub async fn files_on(c: &mut AnyConnection, local_date_prefix: &str) -> R<i64> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM ach_files WHERE creation_local LIKE $1",
    )
    .bind(format!("{local_date_prefix}%"))
    .fetch_one(c)
    .await?;
    Ok(n)
}

// ---------------------------------------------------------------- validations

pub async fn validation(c: &mut AnyConnection, fingerprint: &str) -> R<Option<AchValidationRow>> {
    Ok(sqlx::query_as::<_, AchValidationRow>(
        "SELECT * FROM ach_validations WHERE account_fingerprint = $1",
    )
    .bind(fingerprint)
    .fetch_optional(c)
    .await?)
}

pub async fn upsert_validation(c: &mut AnyConnection, v: &AchValidationRow) -> R<()> {
    sqlx::query(
        "INSERT INTO ach_validations (account_fingerprint, status, prenote_id, return_code, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (account_fingerprint) DO UPDATE SET status = $2, prenote_id = $3, \
         return_code = $4, updated_at = $6",
    )
    .bind(&v.account_fingerprint)
    .bind(&v.status)
    .bind(&v.prenote_id)
    .bind(&v.return_code)
    .bind(v.created_at)
    .bind(v.updated_at)
    .execute(c)
    .await?;
    Ok(())
}

// ---------------------------------------------------------------- returns

/// Records a return or NOC as applied; false when it was applied before.
pub async fn claim_return_item(c: &mut AnyConnection, r: &AchReturnItemRow) -> R<bool> {
    let done = sqlx::query(
        "INSERT INTO ach_return_items (item_key, kind, code, original_trace, entry_id, \
         file_sha256, outcome, applied_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (item_key) DO NOTHING",
    )
    .bind(&r.item_key)
    .bind(&r.kind)
    .bind(&r.code)
    .bind(&r.original_trace)
    .bind(&r.entry_id)
    .bind(&r.file_sha256)
    .bind(&r.outcome)
    .bind(r.applied_at)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

// ---------------------------------------------------------------- lockbox

/// Inserts a lockbox item unless its key was seen before; true when inserted.
pub async fn insert_lockbox_item(c: &mut AnyConnection, i: &LockboxItemRow) -> R<bool> {
    let done = sqlx::query(
        "INSERT INTO lockbox_items (id, item_key, file_sha256, line_number, deposit_date, \
         lockbox, batch, sequence, check_number, amount, currency, account_reference, remitter, \
         status, reason, payment_id, resolved_by, resolution_note, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
         $18, $19, $20) ON CONFLICT (item_key) DO NOTHING",
    )
    .bind(&i.id)
    .bind(&i.item_key)
    .bind(&i.file_sha256)
    .bind(i.line_number)
    .bind(&i.deposit_date)
    .bind(&i.lockbox)
    .bind(&i.batch)
    .bind(&i.sequence)
    .bind(&i.check_number)
    .bind(i.amount)
    .bind(&i.currency)
    .bind(&i.account_reference)
    .bind(&i.remitter)
    .bind(&i.status)
    .bind(&i.reason)
    .bind(&i.payment_id)
    .bind(&i.resolved_by)
    .bind(&i.resolution_note)
    .bind(i.created_at)
    .bind(i.updated_at)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn lockbox_item(c: &mut AnyConnection, id: &str) -> R<Option<LockboxItemRow>> {
    Ok(
        sqlx::query_as::<_, LockboxItemRow>("SELECT * FROM lockbox_items WHERE id = $1")
            .bind(id)
            .fetch_optional(c)
            .await?,
    )
}

pub async fn lockbox_items_with_status(
    c: &mut AnyConnection,
    status: &str,
    limit: i64,
) -> R<Vec<LockboxItemRow>> {
    Ok(sqlx::query_as::<_, LockboxItemRow>(
        "SELECT * FROM lockbox_items WHERE status = $1 ORDER BY created_at, id LIMIT $2",
    )
    .bind(status)
    .bind(limit)
    .fetch_all(c)
    .await?)
}

/// Settles an exception: posted to a payment, or rejected (returned to the sender).
pub async fn resolve_lockbox_item(
    c: &mut AnyConnection,
    id: &str,
    status: &str,
    payment_id: Option<&str>,
    resolved_by: &str,
    note: &str,
    now: i64,
) -> R<bool> {
    let done = sqlx::query(
        "UPDATE lockbox_items SET status = $2, payment_id = $3, resolved_by = $4, \
         resolution_note = $5, updated_at = $6 WHERE id = $1 AND status = 'exception'",
    )
    .bind(id)
    .bind(status)
    .bind(payment_id)
    .bind(resolved_by)
    .bind(note)
    .bind(now)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

// ---------------------------------------------------------------- charges and saved accounts

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct ChargeRow {
    pub id: String,
    pub account_id: String,
    pub kind: String,
    pub source_id: String,
    pub amount: i64,
    pub currency: String,
    pub description: String,
    pub journal_id: String,
    pub created_at: i64,
}

/// Inserts a charge unless one of its kind exists for its source; true when inserted.
pub async fn insert_charge(c: &mut AnyConnection, g: &ChargeRow) -> R<bool> {
    let done = sqlx::query(
        "INSERT INTO charges (id, account_id, kind, source_id, amount, currency, description, \
         journal_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (kind, source_id) DO NOTHING",
    )
    .bind(&g.id)
    .bind(&g.account_id)
    .bind(&g.kind)
    .bind(&g.source_id)
    .bind(g.amount)
    .bind(&g.currency)
    .bind(&g.description)
    .bind(&g.journal_id)
    .bind(g.created_at)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn charges_of_account(c: &mut AnyConnection, account_id: &str) -> R<Vec<ChargeRow>> {
    Ok(sqlx::query_as::<_, ChargeRow>(
        "SELECT * FROM charges WHERE account_id = $1 ORDER BY created_at, id",
    )
    .bind(account_id)
    .fetch_all(c)
    .await?)
}

/// Stops a saved method from being used (its bank says the account cannot be debited).
pub async fn disable_method(c: &mut AnyConnection, id: &str, now: i64) -> R<bool> {
    let done = sqlx::query(
        "UPDATE payment_methods SET status = 'disabled', is_default = 0, updated_at = $2 \
         WHERE id = $1 AND status = 'active'",
    )
    .bind(id)
    .bind(now)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Applies a bank's notice of change to a saved bank account.
#[allow(clippy::too_many_arguments)]
pub async fn correct_bank_method(
    c: &mut AnyConnection,
    id: &str,
    routing_number: &str,
    account_type: &str,
    last4: &str,
    fingerprint: &str,
    sealed: Option<(i64, &str, &str)>,
    now: i64,
) -> R<bool> {
    let (kek, wrapped, cipher) = match sealed {
        Some((k, w, ct)) => (Some(k), Some(w), Some(ct)),
        None => (None, None, None),
    };
    let done = sqlx::query(
        "UPDATE payment_methods SET routing_number = $2, bank_account_type = $3, last4 = $4, \
         fingerprint = $5, kek_version = COALESCE($6, kek_version), \
         wrapped_key = COALESCE($7, wrapped_key), ciphertext = COALESCE($8, ciphertext), \
         updated_at = $9 WHERE id = $1 AND status = 'active' AND kind = 'ach'",
    )
    .bind(id)
    .bind(routing_number)
    .bind(account_type)
    .bind(last4)
    .bind(fingerprint)
    .bind(kek)
    .bind(wrapped)
    .bind(cipher)
    .bind(now)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

//! Queries of live chat: conversations and their numbered messages. Same conventions as
//! [`crate::queries`]: one function per query, `$N` placeholders, the same SQL on both engines.

use sqlx::AnyConnection;

use crate::StoreError;

type R<T> = Result<T, StoreError>;

/// The notification channel live chat uses between instances on PostgreSQL.
pub const NOTIFY_CHANNEL: &str = "billpay_chat";

/// Announces `payload` to every instance listening on `channel`. PostgreSQL only (a dialect
/// fork: SQLite has no notifications; one process owns a SQLite database and broadcasts in
/// memory). Delivered when the surrounding transaction commits, at once outside one.
pub async fn notify(c: &mut AnyConnection, channel: &str, payload: &str) -> R<()> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(channel)
        .bind(payload)
        .execute(c)
        .await?;
    Ok(())
}

/// A PostgreSQL connection listening for notifications ([`crate::Store::listen`]). On a lost
/// connection sqlx reconnects and listens again; notifications sent meanwhile are lost, which
/// is why readers catch up by message number.
pub struct Listener(pub(crate) sqlx::postgres::PgListener);

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Listener")
    }
}

impl Listener {
    /// The next notification's payload.
    pub async fn recv(&mut self) -> R<String> {
        let n = self.0.recv().await.map_err(StoreError::from)?;
        Ok(n.payload().to_string())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct ConversationRow {
    pub id: String,
    pub account_id: Option<String>,
    pub account_number: Option<String>,
    pub customer_name: String,
    /// bot, queued, assigned or closed.
    pub state: String,
    pub agent_id: Option<String>,
    pub queued_at: Option<i64>,
    pub last_seq: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// The last message number the customer has read (a read receipt).
    #[sqlx(default)]
    pub customer_read_seq: i64,
    /// The last message number the assigned representative has read.
    #[sqlx(default)]
    pub agent_read_seq: i64,
}

/// One message; its body has had card numbers masked before it was written.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct MessageRow {
    pub conversation_id: String,
    pub seq: i64,
    /// customer, bot, agent, system or note.
    pub sender: String,
    pub author: Option<String>,
    pub body: String,
    /// A path on this site offered as a button.
    pub link: Option<String>,
    pub created_at: i64,
}

pub async fn insert_conversation(c: &mut AnyConnection, r: &ConversationRow) -> R<()> {
    sqlx::query(
        "INSERT INTO chat_conversations (id, account_id, account_number, customer_name, state, \
         agent_id, queued_at, last_seq, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&r.id)
    .bind(&r.account_id)
    .bind(&r.account_number)
    .bind(&r.customer_name)
    .bind(&r.state)
    .bind(&r.agent_id)
    .bind(r.queued_at)
    .bind(r.last_seq)
    .bind(r.created_at)
    .bind(r.updated_at)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn conversation(c: &mut AnyConnection, id: &str) -> R<Option<ConversationRow>> {
    Ok(
        sqlx::query_as::<_, ConversationRow>("SELECT * FROM chat_conversations WHERE id = $1")
            .bind(id)
            .fetch_optional(c)
            .await?,
    )
}

/// Takes the next message number of a conversation (and locks its row on PostgreSQL, so two
/// writers number one after the other). None if there is no such conversation.
pub async fn next_seq(c: &mut AnyConnection, id: &str, now: i64) -> R<Option<i64>> {
    Ok(sqlx::query_scalar::<_, i64>(
        "UPDATE chat_conversations SET last_seq = last_seq + 1, updated_at = $2 WHERE id = $1 \
         RETURNING last_seq",
    )
    .bind(id)
    .bind(now)
    .fetch_optional(c)
    .await?)
}

pub async fn insert_message(c: &mut AnyConnection, m: &MessageRow) -> R<()> {
    sqlx::query(
        "INSERT INTO chat_messages (conversation_id, seq, sender, author, body, link, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&m.conversation_id)
    .bind(m.seq)
    .bind(&m.sender)
    .bind(&m.author)
    .bind(&m.body)
    .bind(&m.link)
    .bind(m.created_at)
    .execute(c)
    .await?;
    Ok(())
}

/// Messages numbered after `after`, oldest first, at most `limit`; internal notes only when
/// `with_notes`.
pub async fn messages_after(
    c: &mut AnyConnection,
    id: &str,
    after: i64,
    with_notes: bool,
    limit: i64,
) -> R<Vec<MessageRow>> {
    Ok(sqlx::query_as::<_, MessageRow>(
        "SELECT * FROM chat_messages WHERE conversation_id = $1 AND seq > $2 \
         AND (sender <> 'note' OR $3 = 1) ORDER BY seq LIMIT $4",
    )
    .bind(id)
    .bind(after)
    .bind(i64::from(with_notes))
    .bind(limit)
    .fetch_all(c)
    .await?)
}

/// Moves one side's read receipt forward to `seq` (never back, never past the last message).
/// `side` is `customer` or `agent`. False if nothing changed.
pub async fn set_read(c: &mut AnyConnection, id: &str, side: &str, seq: i64) -> R<bool> {
    // Two statements rather than a column name built from input.
    let sql = match side {
        "customer" => {
            "UPDATE chat_conversations SET customer_read_seq = $2 \
             WHERE id = $1 AND customer_read_seq < $2 AND $2 <= last_seq"
        }
        _ => {
            "UPDATE chat_conversations SET agent_read_seq = $2 \
             WHERE id = $1 AND agent_read_seq < $2 AND $2 <= last_seq"
        }
    };
    let done = sqlx::query(sql).bind(id).bind(seq).execute(c).await?;
    Ok(done.rows_affected() == 1)
}

/// Moves a conversation from state `from` to `to` (with its agent and queue time). False if
/// it was not in `from` (someone else moved it first).
#[allow(clippy::too_many_arguments)]
pub async fn set_state(
    c: &mut AnyConnection,
    id: &str,
    from: &str,
    to: &str,
    agent_id: Option<&str>,
    queued_at: Option<i64>,
    now: i64,
) -> R<bool> {
    let done = sqlx::query(
        "UPDATE chat_conversations SET state = $3, agent_id = $4, queued_at = $5, updated_at = $6 \
         WHERE id = $1 AND state = $2",
    )
    .bind(id)
    .bind(from)
    .bind(to)
    .bind(agent_id)
    .bind(queued_at)
    .bind(now)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records the first hand-over of a conversation to a person (later ones keep the first).
pub async fn mark_handed_over(c: &mut AnyConnection, id: &str, now: i64) -> R<()> {
    sqlx::query(
        "UPDATE chat_conversations SET handed_over_at = $2 WHERE id = $1 AND handed_over_at IS NULL",
    )
    .bind(id)
    .bind(now)
    .execute(c)
    .await?;
    Ok(())
}

/// Conversations in one state, oldest queued (then oldest started) first.
pub async fn conversations_in_state(
    c: &mut AnyConnection,
    state: &str,
    limit: i64,
) -> R<Vec<ConversationRow>> {
    Ok(sqlx::query_as::<_, ConversationRow>(
        "SELECT * FROM chat_conversations WHERE state = $1 \
         ORDER BY queued_at, created_at, id LIMIT $2",
    )
    .bind(state)
    .bind(limit)
    .fetch_all(c)
    .await?)
}

/// The open conversations a representative has, newest activity first.
pub async fn agent_conversations(
    c: &mut AnyConnection,
    agent_id: &str,
    limit: i64,
) -> R<Vec<ConversationRow>> {
    Ok(sqlx::query_as::<_, ConversationRow>(
        "SELECT * FROM chat_conversations WHERE agent_id = $1 AND state = 'assigned' \
         ORDER BY updated_at DESC, id LIMIT $2",
    )
    .bind(agent_id)
    .bind(limit)
    .fetch_all(c)
    .await?)
}

/// How many queued conversations were queued before this instant (the place in line is one
/// more).
pub async fn queued_before(c: &mut AnyConnection, queued_at: i64, id: &str) -> R<i64> {
    Ok(sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM chat_conversations WHERE state = 'queued' \
         AND (queued_at < $1 OR (queued_at = $1 AND id < $2))",
    )
    .bind(queued_at)
    .bind(id)
    .fetch_one(c)
    .await?)
}

// ---------------------------------------------------------------- staff

#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StaffRow {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: String,
    pub password_hash: String,
    pub failed_signins: i64,
    pub locked_until: Option<i64>,
    pub availability: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// active or disabled.
    pub status: String,
    /// 1: the password is a temporary one, to be changed at the next sign-in.
    pub password_change_required: i64,
}

impl std::fmt::Debug for StaffRow {
    // The password hash is left out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaffRow")
            .field("id", &self.id)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// Inserts a staff member; false if the email is taken.
pub async fn insert_staff(c: &mut AnyConnection, r: &StaffRow) -> R<bool> {
    let done = sqlx::query(
        "INSERT INTO staff_users (id, email, name, role, password_hash, failed_signins, \
         locked_until, availability, created_at, updated_at, status, password_change_required) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT DO NOTHING",
    )
    .bind(&r.id)
    .bind(&r.email)
    .bind(&r.name)
    .bind(&r.role)
    .bind(&r.password_hash)
    .bind(r.failed_signins)
    .bind(r.locked_until)
    .bind(&r.availability)
    .bind(r.created_at)
    .bind(r.updated_at)
    .bind(&r.status)
    .bind(r.password_change_required)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Every staff member, by email (at most `limit`).
pub async fn staff_list(c: &mut AnyConnection, limit: i64) -> R<Vec<StaffRow>> {
    Ok(
        sqlx::query_as::<_, StaffRow>("SELECT * FROM staff_users ORDER BY email LIMIT $1")
            .bind(limit)
            .fetch_all(c)
            .await?,
    )
}

/// Sets a staff member active or disabled; a disabled member is also made away. False if
/// there is no such member or the status was already that.
pub async fn set_staff_status(c: &mut AnyConnection, id: &str, status: &str, now: i64) -> R<bool> {
    let done = sqlx::query(
        "UPDATE staff_users SET status = $2, \
         availability = CASE WHEN $2 = 'disabled' THEN 'away' ELSE availability END, \
         updated_at = $3 WHERE id = $1 AND status <> $2",
    )
    .bind(id)
    .bind(status)
    .bind(now)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Ends every desk session of a staff member (signed in or half-way).
pub async fn delete_staff_sessions_of(c: &mut AnyConnection, staff_id: &str) -> R<()> {
    sqlx::query("DELETE FROM staff_sessions WHERE staff_id = $1 OR pending_staff_id = $1")
        .bind(staff_id)
        .execute(c)
        .await?;
    Ok(())
}

/// A new password hash, and whether it must be changed at the next sign-in.
pub async fn set_staff_password(
    c: &mut AnyConnection,
    id: &str,
    password_hash: &str,
    change_required: bool,
    now: i64,
) -> R<()> {
    sqlx::query(
        "UPDATE staff_users SET password_hash = $2, password_change_required = $3, \
         updated_at = $4 WHERE id = $1",
    )
    .bind(id)
    .bind(password_hash)
    .bind(i64::from(change_required))
    .bind(now)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn staff(c: &mut AnyConnection, id: &str) -> R<Option<StaffRow>> {
    Ok(
        sqlx::query_as::<_, StaffRow>("SELECT * FROM staff_users WHERE id = $1")
            .bind(id)
            .fetch_optional(c)
            .await?,
    )
}

pub async fn staff_by_email(c: &mut AnyConnection, email: &str) -> R<Option<StaffRow>> {
    Ok(
        sqlx::query_as::<_, StaffRow>("SELECT * FROM staff_users WHERE email = $1")
            .bind(email)
            .fetch_optional(c)
            .await?,
    )
}

/// Counts a failed sign-in; at `max` failures the sign-in is locked until `lock_until` and the
/// count starts again.
pub async fn staff_failed_signin(
    c: &mut AnyConnection,
    id: &str,
    max: i64,
    lock_until: i64,
    now: i64,
) -> R<()> {
    sqlx::query(
        "UPDATE staff_users SET \
         locked_until = CASE WHEN failed_signins + 1 >= $2 THEN $3 ELSE locked_until END, \
         failed_signins = CASE WHEN failed_signins + 1 >= $2 THEN 0 ELSE failed_signins + 1 END, \
         updated_at = $4 WHERE id = $1",
    )
    .bind(id)
    .bind(max)
    .bind(lock_until)
    .bind(now)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn staff_signed_in(c: &mut AnyConnection, id: &str, now: i64) -> R<()> {
    sqlx::query(
        "UPDATE staff_users SET failed_signins = 0, locked_until = NULL, updated_at = $2 \
         WHERE id = $1",
    )
    .bind(id)
    .bind(now)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn set_availability(c: &mut AnyConnection, id: &str, to: &str, now: i64) -> R<()> {
    sqlx::query("UPDATE staff_users SET availability = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(to)
        .bind(now)
        .execute(c)
        .await?;
    Ok(())
}

/// The available representative with the fewest open conversations (ties: longest idle),
/// if any.
pub async fn least_busy_available(c: &mut AnyConnection) -> R<Option<String>> {
    Ok(sqlx::query_scalar::<_, String>(
        "SELECT s.id FROM staff_users s WHERE s.availability = 'available' \
         ORDER BY (SELECT COUNT(*) FROM chat_conversations v \
                   WHERE v.agent_id = s.id AND v.state = 'assigned'), s.updated_at, s.id LIMIT 1",
    )
    .fetch_optional(c)
    .await?)
}

/// How many representatives are available (for the estimated wait).
pub async fn available_count(c: &mut AnyConnection) -> R<i64> {
    Ok(sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM staff_users WHERE availability = 'available'",
    )
    .fetch_one(c)
    .await?)
}

#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StaffSessionRow {
    pub id: String,
    pub csrf_token: String,
    pub staff_id: Option<String>,
    pub pending_staff_id: Option<String>,
    pub created_at: i64,
    pub last_seen_at: i64,
}

impl std::fmt::Debug for StaffSessionRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaffSessionRow")
            .field("staff_id", &self.staff_id)
            .finish_non_exhaustive()
    }
}

pub async fn insert_staff_session(c: &mut AnyConnection, s: &StaffSessionRow) -> R<()> {
    sqlx::query(
        "INSERT INTO staff_sessions (id, csrf_token, staff_id, pending_staff_id, created_at, \
         last_seen_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&s.id)
    .bind(&s.csrf_token)
    .bind(&s.staff_id)
    .bind(&s.pending_staff_id)
    .bind(s.created_at)
    .bind(s.last_seen_at)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn staff_session(c: &mut AnyConnection, id: &str) -> R<Option<StaffSessionRow>> {
    Ok(
        sqlx::query_as::<_, StaffSessionRow>("SELECT * FROM staff_sessions WHERE id = $1")
            .bind(id)
            .fetch_optional(c)
            .await?,
    )
}

pub async fn update_staff_session(c: &mut AnyConnection, s: &StaffSessionRow) -> R<()> {
    sqlx::query(
        "UPDATE staff_sessions SET staff_id = $2, pending_staff_id = $3, last_seen_at = $4 \
         WHERE id = $1",
    )
    .bind(&s.id)
    .bind(&s.staff_id)
    .bind(&s.pending_staff_id)
    .bind(s.last_seen_at)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn delete_staff_session(c: &mut AnyConnection, id: &str) -> R<()> {
    sqlx::query("DELETE FROM staff_sessions WHERE id = $1")
        .bind(id)
        .execute(c)
        .await?;
    Ok(())
}

// ---------------------------------------------------------------- pay requests

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct PayRequestRow {
    pub id: String,
    pub conversation_id: String,
    pub staff_id: String,
    pub amount: i64,
    pub currency: String,
    /// open, paid, declined or pending.
    pub status: String,
    pub payment_id: Option<String>,
    pub result: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

pub async fn insert_pay_request(c: &mut AnyConnection, r: &PayRequestRow) -> R<()> {
    sqlx::query(
        "INSERT INTO chat_pay_requests (id, conversation_id, staff_id, amount, currency, status, \
         payment_id, result, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&r.id)
    .bind(&r.conversation_id)
    .bind(&r.staff_id)
    .bind(r.amount)
    .bind(&r.currency)
    .bind(&r.status)
    .bind(&r.payment_id)
    .bind(&r.result)
    .bind(r.created_at)
    .bind(r.updated_at)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn pay_request(c: &mut AnyConnection, id: &str) -> R<Option<PayRequestRow>> {
    Ok(
        sqlx::query_as::<_, PayRequestRow>("SELECT * FROM chat_pay_requests WHERE id = $1")
            .bind(id)
            .fetch_optional(c)
            .await?,
    )
}

/// Records a pay request's outcome, unless it was already paid.
pub async fn set_pay_request_result(
    c: &mut AnyConnection,
    id: &str,
    status: &str,
    payment_id: &str,
    result: &str,
    now: i64,
) -> R<bool> {
    let done = sqlx::query(
        "UPDATE chat_pay_requests SET status = $2, payment_id = $3, result = $4, updated_at = $5 \
         WHERE id = $1 AND status <> 'paid'",
    )
    .bind(id)
    .bind(status)
    .bind(payment_id)
    .bind(result)
    .bind(now)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

//! Live chat: a customer's conversation with the bot, then with a representative.
//!
//! A conversation belongs to the portal session that started it (its id is in the session's
//! state) and to the account the customer verified, by account number and service ZIP or by
//! signing in. Messages are numbered per conversation (`seq`), so any reader — a page reload,
//! a reconnecting live connection, the agent desk — asks for the messages after the last one it
//! has and misses nothing.
//!
//! Every message body has its card numbers masked (Luhn-valid runs of 13–19 digits, however
//! grouped, to asterisks and the last four) *before* it is stored, shown or sent anywhere
//! (PCI DSS 3.3.1/3.4.1): the full number exists only in the request that carried it.
//!
//! The bot answers from the customer's own account: balance and due date, the last payment and
//! its confirmation number, why a payment failed (the stored decline or ACH return code, in
//! plain words, with the next step), accepted methods, fees, AutoPay, arrangements, and a pay
//! link. Anything else, or asking for an agent at any time, puts the conversation in the queue
//! for a representative, who sees the whole conversation so far.
//!
//! Live delivery: every stored message is announced on [`ChatHub`] (an in-process broadcast of
//! "conversation c has message n"); listeners read the message itself from the database.

use billpay_domain::redact::mask_card_numbers;
use billpay_domain::{AccountNumber, Language, PaymentStatus, PostalCode};
use billpay_store::chat::{self as q, ConversationRow, MessageRow};
use std::collections::HashMap;

use tokio::sync::broadcast;

use crate::Random as _;
use crate::portal::{FieldError, PortalSession, SessionToken};
use crate::{Billpay, ServiceError};

/// Longest message a customer or representative may send, in characters.
pub const MESSAGE_CHARS_MAX: usize = 2_000;
/// Longest name a customer may give.
pub const NAME_CHARS_MAX: usize = 80;
/// Messages read at once.
pub const MESSAGES_PAGE_MAX: i64 = 500;
/// Conversations listed at once on the desk.
pub const CONVERSATIONS_LIST_MAX: i64 = 100;
/// Announcements a slow listener may fall behind by before it must re-read from storage. One
/// conversation's channel carries only its own events, and a listener that falls behind reads
/// what it missed from storage, so a short buffer loses nothing; every open conversation has one.
const HUB_CAPACITY: usize = 16;
/// Longest wait between attempts to listen again.
const RELAY_BACKOFF_SECS_MAX: u64 = 30;
/// Average time a representative takes per conversation, for the estimated wait.
pub const HANDLE_SECS_AVERAGE: i64 = 240;
/// A typing indicator is shown this long after the last keystroke event.
pub const TYPING_SECS: u64 = 5;
/// One side of a conversation sends at most one typing event per this many seconds.
pub const TYPING_INTERVAL_SECS: u64 = 2;
/// Typing marks remembered at once (oldest forgotten first): a bound on the hub's memory.
const TYPING_MARKS_MAX: usize = 20_000;

/// One side of a conversation, for typing indicators and read receipts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    Customer,
    /// The representative (any staff member on the desk).
    Agent,
}

impl Side {
    pub fn as_str(&self) -> &'static str {
        match self {
            Side::Customer => "customer",
            Side::Agent => "agent",
        }
    }

    pub fn other(&self) -> Side {
        match self {
            Side::Customer => Side::Agent,
            Side::Agent => Side::Customer,
        }
    }
}

/// What happened in a conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChatEventKind {
    /// A new message numbered `seq` (or, with 0, a change of state).
    Message,
    /// This side is typing. Not stored: relayed, then forgotten after [`TYPING_SECS`].
    Typing(Side),
    /// A read receipt moved: listeners read the marks from storage.
    Read,
}

/// "Conversation `conversation_id` has a new message numbered `seq`" (or changed state), or
/// someone is typing, or a read receipt moved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatEvent {
    pub conversation_id: String,
    pub seq: i64,
    pub kind: ChatEventKind,
}

impl ChatEvent {
    pub fn message(conversation_id: impl Into<String>, seq: i64) -> ChatEvent {
        ChatEvent {
            conversation_id: conversation_id.into(),
            seq,
            kind: ChatEventKind::Message,
        }
    }

    /// The event in a notification to other instances: `m`, `tc`/`ta` or `r`.
    fn kind_code(&self) -> &'static str {
        match self.kind {
            ChatEventKind::Message => "m",
            ChatEventKind::Typing(Side::Customer) => "tc",
            ChatEventKind::Typing(Side::Agent) => "ta",
            ChatEventKind::Read => "r",
        }
    }

    fn kind_of(code: &str) -> ChatEventKind {
        match code {
            "tc" => ChatEventKind::Typing(Side::Customer),
            "ta" => ChatEventKind::Typing(Side::Agent),
            "r" => ChatEventKind::Read,
            _ => ChatEventKind::Message,
        }
    }
}

/// The in-process fan-out of chat events: one broadcast channel per conversation that has a
/// listener, created by the first [`ChatHub::subscribe`] and dropped with its last
/// [`Subscription`], so an event wakes only the listeners of its own conversation (the cost
/// of a message is O(its conversation's listeners), not O(open streams)). Listeners that fall
/// behind get `Lagged` and read what they missed from storage by sequence number.
pub struct ChatHub {
    channels: std::sync::Mutex<HashMap<String, broadcast::Sender<ChatEvent>>>,
    /// When each side of a conversation last typed (monotonic time; not stored, not replayed).
    typing: std::sync::Mutex<HashMap<(String, Side), tokio::time::Instant>>,
    /// This process's id in notifications to other instances, so it skips its own.
    instance: String,
}

/// A listener of one conversation; leaving (drop) removes the conversation's channel when it
/// was the last.
pub struct Subscription {
    hub: std::sync::Arc<ChatHub>,
    conversation_id: String,
    rx: Option<broadcast::Receiver<ChatEvent>>,
}

impl Subscription {
    pub async fn recv(&mut self) -> Result<ChatEvent, broadcast::error::RecvError> {
        match &mut self.rx {
            Some(rx) => rx.recv().await,
            None => Err(broadcast::error::RecvError::Closed),
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let rx = self.rx.take();
        if let Ok(mut channels) = self.hub.channels.lock() {
            drop(rx);
            // Under the lock, so a subscriber arriving now either sees the channel (and keeps
            // it) or makes a new one.
            if channels
                .get(&self.conversation_id)
                .is_some_and(|tx| tx.receiver_count() == 0)
            {
                channels.remove(&self.conversation_id);
            }
        }
    }
}

impl Default for ChatHub {
    fn default() -> Self {
        let mut raw = [0u8; 8];
        // The OS source: an instance id is not a secret and needs no replay.
        crate::clock::OsRandom.fill(&mut raw);
        ChatHub {
            channels: std::sync::Mutex::new(HashMap::new()),
            typing: std::sync::Mutex::new(HashMap::new()),
            instance: hex::encode(raw),
        }
    }
}

impl std::fmt::Debug for ChatHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatHub")
            .field("conversations", &self.conversations_listened())
            .finish()
    }
}

impl ChatHub {
    /// Listens to one conversation's events.
    pub fn subscribe(self: &std::sync::Arc<Self>, conversation_id: &str) -> Subscription {
        let rx = match self.channels.lock() {
            Ok(mut channels) => Some(
                channels
                    .entry(conversation_id.to_string())
                    .or_insert_with(|| broadcast::channel(HUB_CAPACITY).0)
                    .subscribe(),
            ),
            Err(_) => None,
        };
        Subscription {
            hub: self.clone(),
            conversation_id: conversation_id.to_string(),
            rx,
        }
    }

    /// Conversations with at least one listener in this process.
    pub fn conversations_listened(&self) -> usize {
        self.channels.lock().map(|c| c.len()).unwrap_or(0)
    }

    /// Announces an event to this process's listeners of its conversation (none is fine).
    pub fn publish(&self, event: ChatEvent) {
        if let ChatEventKind::Typing(side) = event.kind {
            self.mark_typing(&event.conversation_id, side);
        }
        let tx = match self.channels.lock() {
            Ok(channels) => channels.get(&event.conversation_id).cloned(),
            Err(_) => None,
        };
        if let Some(tx) = tx {
            let _ = tx.send(event);
        }
    }

    fn mark_typing(&self, conversation_id: &str, side: Side) {
        if let Ok(mut typing) = self.typing.lock() {
            let now = tokio::time::Instant::now();
            if typing.len() >= TYPING_MARKS_MAX {
                let fresh = std::time::Duration::from_secs(TYPING_SECS);
                typing.retain(|_, at| now.duration_since(*at) < fresh);
                if typing.len() >= TYPING_MARKS_MAX {
                    typing.clear();
                }
            }
            typing.insert((conversation_id.to_string(), side), now);
        }
    }

    /// Whether this side may send a typing event now (at most one per
    /// [`TYPING_INTERVAL_SECS`]): the rate limit.
    fn typing_allowed(&self, conversation_id: &str, side: Side) -> bool {
        let Ok(typing) = self.typing.lock() else {
            return false;
        };
        typing
            .get(&(conversation_id.to_string(), side))
            .is_none_or(|at| at.elapsed() >= std::time::Duration::from_secs(TYPING_INTERVAL_SECS))
    }

    /// Whether this side typed within the last [`TYPING_SECS`] (for a page drawn without
    /// the script).
    pub fn is_typing(&self, conversation_id: &str, side: Side) -> bool {
        let Ok(typing) = self.typing.lock() else {
            return false;
        };
        typing
            .get(&(conversation_id.to_string(), side))
            .is_some_and(|at| at.elapsed() < std::time::Duration::from_secs(TYPING_SECS))
    }
}

/// Where a conversation is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConversationState {
    /// The bot answers.
    Bot,
    /// Waiting for a representative.
    Queued,
    /// A message left outside business hours, for a reply by email.
    Offline,
    /// A representative has it.
    Assigned,
    Closed,
}

impl ConversationState {
    pub fn as_str(&self) -> &'static str {
        match self {
            ConversationState::Bot => "bot",
            ConversationState::Queued => "queued",
            ConversationState::Offline => "offline",
            ConversationState::Assigned => "assigned",
            ConversationState::Closed => "closed",
        }
    }

    fn parse(s: &str) -> ConversationState {
        match s {
            "queued" => ConversationState::Queued,
            "offline" => ConversationState::Offline,
            "assigned" => ConversationState::Assigned,
            "closed" => ConversationState::Closed,
            _ => ConversationState::Bot,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Conversation {
    pub id: String,
    pub account_id: Option<String>,
    pub account_number: Option<AccountNumber>,
    pub customer_name: String,
    pub state: ConversationState,
    pub agent_id: Option<String>,
    pub queued_at: Option<jiff::Timestamp>,
    pub last_seq: i64,
    pub created_at: jiff::Timestamp,
    /// The last message number the customer has read.
    pub customer_read_seq: i64,
    /// The last message number the representative has read.
    pub agent_read_seq: i64,
}

/// A stored conversation as the services see it.
pub fn conversation_of_row(r: ConversationRow) -> Conversation {
    Conversation::from_row(r)
}

impl Conversation {
    fn from_row(r: ConversationRow) -> Conversation {
        Conversation {
            state: ConversationState::parse(&r.state),
            account_number: r
                .account_number
                .as_deref()
                .and_then(|n| AccountNumber::parse(n).ok()),
            id: r.id,
            account_id: r.account_id,
            customer_name: r.customer_name,
            agent_id: r.agent_id,
            queued_at: r.queued_at.map(crate::clock::from_micros),
            last_seq: r.last_seq,
            created_at: crate::clock::from_micros(r.created_at),
            customer_read_seq: r.customer_read_seq,
            agent_read_seq: r.agent_read_seq,
        }
    }
}

/// Who wrote a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sender {
    Customer,
    Bot,
    Agent,
    /// The system: handed over, joined, left.
    System,
    /// An internal note: staff only.
    Note,
}

impl Sender {
    pub fn as_str(&self) -> &'static str {
        match self {
            Sender::Customer => "customer",
            Sender::Bot => "bot",
            Sender::Agent => "agent",
            Sender::System => "system",
            Sender::Note => "note",
        }
    }

    fn parse(s: &str) -> Sender {
        match s {
            "customer" => Sender::Customer,
            "bot" => Sender::Bot,
            "agent" => Sender::Agent,
            "note" => Sender::Note,
            _ => Sender::System,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatMessage {
    pub seq: i64,
    pub sender: Sender,
    /// The representative's display name, for agent messages and notes.
    pub author: Option<String>,
    /// Card numbers already masked.
    pub body: String,
    /// A path on this site offered as a button (a pay form).
    pub link: Option<String>,
    pub at: jiff::Timestamp,
}

impl ChatMessage {
    fn from_row(r: MessageRow) -> ChatMessage {
        ChatMessage {
            seq: r.seq,
            sender: Sender::parse(&r.sender),
            author: r.author,
            body: r.body,
            link: r.link,
            at: crate::clock::from_micros(r.created_at),
        }
    }
}

/// A message about to be stored. Building one masks its card numbers: there is no other way
/// to make one.
pub struct NewMessage {
    sender: Sender,
    author: Option<String>,
    body: String,
    link: Option<String>,
}

impl NewMessage {
    pub fn new(sender: Sender, author: Option<String>, body: &str) -> NewMessage {
        NewMessage {
            sender,
            author,
            body: mask_message(body),
            link: None,
        }
    }

    pub fn with_link(mut self, link: impl Into<String>) -> NewMessage {
        self.link = Some(link.into());
        self
    }
}

/// Masks card numbers (to their last four) and, in a message that had one, every other run
/// of 3 or 4 digits too: the security code people type beside the number (PCI DSS 3.3.1
/// forbids keeping it at all).
pub fn mask_message(text: &str) -> String {
    let masked = mask_card_numbers(text);
    if matches!(masked, std::borrow::Cow::Borrowed(_)) {
        return text.to_string();
    }
    let chars: Vec<char> = masked.chars().collect();
    let mut out = String::with_capacity(masked.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_digit() {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            let run = &chars[start..i];
            let after_mask = start > 0 && chars[start - 1] == '*';
            if (3..=4).contains(&run.len()) && !after_mask {
                out.push_str("***");
            } else {
                out.extend(run);
            }
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

/// The text a person typed, trimmed, or what is wrong with it.
pub fn parse_message(text: &str) -> Result<String, ServiceError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(ServiceError::invalid("message", "Type a message first."));
    }
    if text.chars().count() > MESSAGE_CHARS_MAX {
        return Err(ServiceError::invalid(
            "message",
            format!("A message can be at most {MESSAGE_CHARS_MAX} characters."),
        ));
    }
    Ok(text.to_string())
}

/// What the bot understood a message to ask.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Intent {
    Agent,
    FailedPayment,
    LastPayment,
    Balance,
    Autopay,
    Arrangement,
    Fees,
    Methods,
    Pay,
    Greeting,
    Unknown,
}

/// Reads a customer's question. Keyword rules, checked in order: asking for a person wins over
/// everything, a failed payment over "payment".
pub fn intent(text: &str) -> Intent {
    let t = text.to_lowercase();
    let words: Vec<&str> = t
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let has = |w: &str| words.contains(&w);
    let any = |keys: &[&str]| keys.iter().any(|k| t.contains(k));
    if any(&[
        "agent",
        "representative",
        "human",
        "real person",
        "someone",
        "operator",
    ]) {
        Intent::Agent
    } else if any(&[
        "fail",
        "declin",
        "return",
        "bounc",
        "reject",
        "didn't go",
        "did not go",
        "not go through",
        "error",
    ]) {
        Intent::FailedPayment
    } else if any(&["autopay", "auto pay", "automatic"]) {
        Intent::Autopay
    } else if any(&[
        "arrangement",
        "extension",
        "more time",
        "payment plan",
        "installment",
        "can't pay",
        "cannot pay",
    ]) {
        Intent::Arrangement
    } else if any(&[
        "last payment",
        "confirmation",
        "did my payment",
        "my payment",
        "paid",
    ]) {
        Intent::LastPayment
    } else if any(&["fee", "charge for", "cost to pay", "surcharge"]) {
        Intent::Fees
    } else if any(&["balance", "owe", "due", "how much", "amount", "bill"]) {
        Intent::Balance
    } else if any(&[
        "method",
        "accept",
        "credit card",
        "debit card",
        "bank account",
        "checking",
        "amex",
        "visa",
        "mastercard",
        "discover",
    ]) {
        Intent::Methods
    } else if has("pay") || any(&["make a payment", "pay now", "pay my"]) {
        Intent::Pay
    } else if has("hi") || has("hello") || has("hey") || has("thanks") || has("thank") {
        Intent::Greeting
    } else {
        Intent::Unknown
    }
}

/// The bot's answer: its text, a link it offers, and whether it hands over to a person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BotReply {
    pub text: String,
    pub link: Option<String>,
    pub handover: bool,
}

impl BotReply {
    fn say(text: impl Into<String>) -> BotReply {
        BotReply {
            text: text.into(),
            link: None,
            handover: false,
        }
    }

    fn with_link(mut self, link: &str) -> BotReply {
        self.link = Some(link.into());
        self
    }
}

/// What the chat page shows about a conversation waiting for a representative.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueStatus {
    /// 1 is next.
    pub position: i64,
    pub wait_minutes: i64,
}

const MENU: &str = "I can tell you your balance and due date, your last payment, why a payment failed, the payment methods we accept, our fees, your AutoPay, or how to get more time to pay. Type \"agent\" at any time to talk to a person.";

impl Billpay {
    /// Announces a chat event to this process's listeners and, on PostgreSQL, to every other
    /// instance (NOTIFY; their relays publish it locally). A lost notification delays a
    /// listener only until the next one: readers always read from storage by number.
    pub async fn chat_publish(&self, event: ChatEvent) {
        if self.store.engine() == billpay_store::Engine::Postgres {
            let payload = format!(
                "{}|{}|{}|{}",
                self.chat.instance,
                event.conversation_id,
                event.seq,
                event.kind_code()
            );
            let sent = match self.store.read_conn().await {
                Ok(mut c) => q::notify(&mut c, q::NOTIFY_CHANNEL, &payload).await,
                Err(e) => Err(e),
            };
            if let Err(e) = sent {
                tracing::warn!(error = %e, "chat notification not sent to other instances");
            }
        }
        self.chat.publish(event);
    }

    /// Relays other instances' chat events into this process (PostgreSQL LISTEN), until the
    /// process ends; reconnects after a failure. Returns at once on SQLite.
    pub async fn chat_relay(self) {
        let mut backoff_secs = 1;
        loop {
            let mut listener = match self.store.listen(q::NOTIFY_CHANNEL).await {
                Ok(Some(l)) => l,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "chat relay cannot listen; retrying");
                    tokio::time::sleep(std::time::Duration::from_secs(backoff_secs)).await;
                    backoff_secs = (backoff_secs * 2).min(RELAY_BACKOFF_SECS_MAX);
                    continue;
                }
            };
            backoff_secs = 1;
            loop {
                match listener.recv().await {
                    Ok(payload) => {
                        let mut parts = payload.splitn(4, '|');
                        let (Some(instance), Some(id), Some(seq)) =
                            (parts.next(), parts.next(), parts.next())
                        else {
                            continue;
                        };
                        if instance == self.chat.instance {
                            continue;
                        }
                        if let Ok(seq) = seq.parse::<i64>() {
                            self.chat.publish(ChatEvent {
                                conversation_id: id.to_string(),
                                seq,
                                kind: ChatEvent::kind_of(parts.next().unwrap_or("m")),
                            });
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "chat relay lost its connection; reconnecting");
                        break;
                    }
                }
            }
        }
    }

    /// One side is typing in a conversation: relayed to the other side's pages (and other
    /// instances), never stored; at most one event per [`TYPING_INTERVAL_SECS`] per side,
    /// the rest dropped. Returns whether it was sent.
    pub async fn chat_typing(&self, conversation_id: &str, side: Side) -> bool {
        if !self.chat.typing_allowed(conversation_id, side) {
            return false;
        }
        self.chat_publish(ChatEvent {
            conversation_id: conversation_id.to_string(),
            seq: 0,
            kind: ChatEventKind::Typing(side),
        })
        .await;
        true
    }

    /// One side has read the conversation up to message `seq`: stored (never moved back, never
    /// past the last message) and announced. Returns whether the mark moved.
    pub async fn chat_mark_read(
        &self,
        conversation_id: &str,
        side: Side,
        seq: i64,
    ) -> Result<bool, ServiceError> {
        if seq <= 0 {
            return Ok(false);
        }
        let id = conversation_id.to_string();
        let moved = self
            .store
            .write(move |c| Box::pin(async move { q::set_read(c, &id, side.as_str(), seq).await }))
            .await?;
        if moved {
            self.chat_publish(ChatEvent {
                conversation_id: conversation_id.to_string(),
                seq,
                kind: ChatEventKind::Read,
            })
            .await;
        }
        Ok(moved)
    }

    /// The customer's side: typing, from their portal session's conversation.
    pub async fn chat_customer_typing(&self, session: &PortalSession) -> Result<(), ServiceError> {
        if let Some(c) = self.chat_of_session(session).await?
            && matches!(c.state, ConversationState::Assigned)
        {
            self.chat_typing(&c.id, Side::Customer).await;
        }
        Ok(())
    }

    /// The customer has read their conversation up to `seq`.
    pub async fn chat_customer_read(
        &self,
        session: &PortalSession,
        seq: i64,
    ) -> Result<(), ServiceError> {
        if let Some(c) = self.chat_of_session(session).await? {
            self.chat_mark_read(&c.id, Side::Customer, seq.min(c.last_seq))
                .await?;
        }
        Ok(())
    }

    /// The conversation of a portal session, if it has one.
    /// The session's conversation; NotFound when it has none.
    async fn session_conversation(
        &self,
        session: &PortalSession,
    ) -> Result<Conversation, ServiceError> {
        self.chat_of_session(session)
            .await?
            .ok_or(ServiceError::NotFound {
                what: "conversation",
            })
    }

    pub async fn chat_of_session(
        &self,
        session: &PortalSession,
    ) -> Result<Option<Conversation>, ServiceError> {
        let Some(id) = &session.data.chat else {
            return Ok(None);
        };
        self.chat_conversation(id)
            .await
            .map(Some)
            .or_else(|e| match e {
                ServiceError::NotFound { .. } => Ok(None),
                e => Err(e),
            })
    }

    pub async fn chat_conversation(&self, id: &str) -> Result<Conversation, ServiceError> {
        let mut c = self.store.read_conn().await?;
        q::conversation(&mut c, id)
            .await?
            .map(Conversation::from_row)
            .ok_or(ServiceError::NotFound {
                what: "conversation",
            })
    }

    /// Starts a conversation for a portal session. A session that has not verified an account
    /// gives the account number and service ZIP (checked like the quick-pay lookup, and the
    /// session then becomes a guest session of that account under a new id, returned with its
    /// token). Field errors are returned for the form.
    pub async fn chat_start(
        &self,
        session: &PortalSession,
        name: &str,
        account_number: &str,
        postal_code: &str,
    ) -> Result<Result<(Option<SessionToken>, Conversation), Vec<FieldError>>, ServiceError> {
        let mut errors = Vec::new();
        let name = name.trim();
        if name.is_empty() || name.chars().count() > NAME_CHARS_MAX {
            errors.push(FieldError {
                field: "name",
                message: "Enter your name (up to 80 characters).".into(),
            });
        }
        let (session, token, number) = match session.verified_account() {
            Some(number) => (session.clone(), None, number),
            None => {
                let digits: String = account_number
                    .chars()
                    .filter(|c| !c.is_whitespace() && *c != '-')
                    .collect();
                let number = AccountNumber::parse(&digits).map_err(|_| FieldError {
                    field: "account_number",
                    message: "Enter the 12-digit account number from your bill.".into(),
                });
                let zip = PostalCode::parse(postal_code).map_err(|_| FieldError {
                    field: "postal_code",
                    message: "Enter the 5-digit ZIP code of your service address.".into(),
                });
                let (number, zip) = match (number, zip) {
                    (Ok(n), Ok(z)) if errors.is_empty() => (n, z),
                    (n, z) => {
                        errors.extend(n.err());
                        errors.extend(z.err());
                        return Ok(Err(errors));
                    }
                };
                let Some(summary) = self.portal_find_account(&number, &zip).await? else {
                    return Ok(Err(vec![FieldError {
                        field: "account_number",
                        message: "We could not find an account with this account number and service ZIP code. Check both against your bill and try again.".into(),
                    }]));
                };
                let (token, session) = self.portal_verify_guest(session, &summary).await?;
                (session, Some(token), number)
            }
        };
        if !errors.is_empty() {
            return Ok(Err(errors));
        }
        let now = self.clock.now_micros();
        let row = ConversationRow {
            id: self.new_id("chat"),
            account_id: session.account_id.clone(),
            account_number: Some(number.as_str().to_string()),
            customer_name: name.to_string(),
            state: ConversationState::Bot.as_str().into(),
            agent_id: None,
            queued_at: None,
            last_seq: 0,
            created_at: now,
            updated_at: now,
            customer_read_seq: 0,
            agent_read_seq: 0,
        };
        let first_name = name.split_whitespace().next().unwrap_or(name).to_string();
        let greeting = NewMessage::new(
            Sender::Bot,
            None,
            &format!(
                "Hello {first_name}, I am {}'s virtual assistant. {MENU}",
                self.config().biller.name
            ),
        );
        let id = row.id.clone();
        let stored = row.clone();
        self.store
            .write(move |c| {
                Box::pin(async move {
                    q::insert_conversation(c, &stored).await?;
                    append(c, &stored.id, &greeting, now).await?;
                    Ok::<_, billpay_store::StoreError>(())
                })
            })
            .await?;
        self.chat_publish(ChatEvent::message(id.clone(), 1)).await;
        let mut session = session;
        session.data.chat = Some(id.clone());
        self.portal_save(&session).await?;
        metrics::counter!("billpay_chat_conversations_total").increment(1);
        Ok(Ok((token, self.chat_conversation(&id).await?)))
    }

    /// Messages of a conversation after number `after`, oldest first; internal notes only for
    /// staff (`with_notes`).
    pub async fn chat_messages(
        &self,
        conversation_id: &str,
        after: i64,
        with_notes: bool,
    ) -> Result<Vec<ChatMessage>, ServiceError> {
        let mut c = self.store.read_conn().await?;
        Ok(q::messages_after(
            &mut c,
            conversation_id,
            after,
            with_notes,
            MESSAGES_PAGE_MAX,
        )
        .await?
        .into_iter()
        .map(ChatMessage::from_row)
        .collect())
    }

    /// Stores one message and announces it. Returns its number.
    pub async fn chat_append(
        &self,
        conversation_id: &str,
        message: NewMessage,
    ) -> Result<i64, ServiceError> {
        let now = self.clock.now_micros();
        let id = conversation_id.to_string();
        let seq = self
            .store
            .write(move |c| Box::pin(async move { append(c, &id, &message, now).await }))
            .await?;
        self.chat_publish(ChatEvent::message(conversation_id, seq))
            .await;
        Ok(seq)
    }

    /// A customer's message: stored (masked), then answered by the bot while the bot has the
    /// conversation, or left for the representative.
    pub async fn chat_customer_says(
        &self,
        session: &PortalSession,
        text: &str,
    ) -> Result<Conversation, ServiceError> {
        let conversation = self.session_conversation(session).await?;
        if conversation.state == ConversationState::Closed {
            return Err(ServiceError::invalid(
                "message",
                "This conversation has ended. Start a new one to keep chatting.",
            ));
        }
        let text = parse_message(text)?;
        self.chat_append(
            &conversation.id,
            NewMessage::new(Sender::Customer, None, &text),
        )
        .await?;
        if conversation.state == ConversationState::Bot {
            // The bot reads the masked text, like everyone else.
            let masked = mask_message(&text);
            let reply = self.bot_reply(&conversation, &masked).await?;
            let mut message = NewMessage::new(Sender::Bot, None, &reply.text);
            if let Some(link) = &reply.link {
                message = message.with_link(link.clone());
            }
            self.chat_append(&conversation.id, message).await?;
            if reply.handover {
                if self.chat_staffed_now() {
                    self.chat_hand_over(&conversation.id).await?;
                } else {
                    let (start, end) = self.config().portal.chat_hours.unwrap_or((0, 24));
                    self.chat_append(
                        &conversation.id,
                        NewMessage::new(
                            Sender::System,
                            None,
                            &format!(
                                "Our representatives answer chat from {} to {}. Leave a message and one will reply by email.",
                                hour_words(start),
                                hour_words(end)
                            ),
                        )
                        .with_link("/chat/offline"),
                    )
                    .await?;
                }
            }
        }
        self.chat_conversation(&conversation.id).await
    }

    /// Puts a conversation in the queue for a representative (from the bot). Idempotent: a
    /// conversation already queued or assigned stays where it is.
    pub async fn chat_hand_over(&self, conversation_id: &str) -> Result<(), ServiceError> {
        let now = self.clock.now_micros();
        let id = conversation_id.to_string();
        let moved = self
            .store
            .write(move |c| {
                Box::pin(async move {
                    let moved = q::set_state(c, &id, "bot", "queued", None, Some(now), now).await?;
                    if moved {
                        q::mark_handed_over(c, &id, now).await?;
                    }
                    Ok::<_, billpay_store::StoreError>(moved)
                })
            })
            .await?;
        if moved {
            metrics::counter!("billpay_chat_handovers_total").increment(1);
            self.chat_publish(ChatEvent::message(conversation_id, 0))
                .await;
            let status = self.chat_queue_status(conversation_id).await?;
            let wait = status
                .map(|s| wait_words(s.wait_minutes))
                .unwrap_or_else(|| "a few minutes".into());
            self.chat_append(
                conversation_id,
                NewMessage::new(
                    Sender::System,
                    None,
                    &format!(
                        "You are in line for a representative, who will see this conversation so far. Estimated wait: {wait}."
                    ),
                ),
            )
            .await?;
            // The least busy available representative takes it at once, if there is one.
            self.chat_assign_waiting().await?;
        }
        Ok(())
    }

    /// The place in line and estimated wait of a queued conversation (None if not queued).
    pub async fn chat_queue_status(
        &self,
        conversation_id: &str,
    ) -> Result<Option<QueueStatus>, ServiceError> {
        let mut c = self.store.read_conn().await?;
        let Some(row) = q::conversation(&mut c, conversation_id).await? else {
            return Ok(None);
        };
        let (Some(queued_at), "queued") = (row.queued_at, row.state.as_str()) else {
            return Ok(None);
        };
        let ahead = q::queued_before(&mut c, queued_at, &row.id).await?;
        let agents = q::available_count(&mut c).await?.max(1);
        let position = ahead + 1;
        let wait_minutes = (position * HANDLE_SECS_AVERAGE / agents + 59) / 60;
        Ok(Some(QueueStatus {
            position,
            wait_minutes,
        }))
    }

    /// The bot's answer to one message, from the conversation's account.
    pub async fn bot_reply(
        &self,
        conversation: &Conversation,
        text: &str,
    ) -> Result<BotReply, ServiceError> {
        let Some(number) = &conversation.account_number else {
            return Ok(BotReply {
                text: "Let me connect you with a representative.".into(),
                link: None,
                handover: true,
            });
        };
        let lang = Language::En;
        Ok(match intent(text) {
            Intent::Agent => BotReply {
                text: "Of course. I am connecting you with a representative.".into(),
                link: None,
                handover: true,
            },
            Intent::Greeting => BotReply::say(MENU),
            Intent::Balance => {
                let s = self.account_summary(number).await?;
                let due = match &s.current_statement {
                    Some(st) if s.balance.is_positive() => format!(
                        " Your current bill of {} is due {}.",
                        st.amount_due,
                        st.due_date.strftime("%B %-d, %Y")
                    ),
                    _ => String::new(),
                };
                let past_due = if s.status == crate::AccountStatus::PastDue {
                    " The account is past due."
                } else {
                    ""
                };
                BotReply::say(format!(
                    "Your balance is {}.{due}{past_due} You can pay it now with the secure pay form.",
                    s.balance
                ))
                .with_link("/pay/amount")
            }
            Intent::LastPayment => {
                let payments = self.account_payments(number, None, 25).await?;
                match payments.first() {
                    None => BotReply::say("I do not see any payments on this account yet."),
                    Some(p) => {
                        let when = p.local_time().strftime("%B %-d, %Y");
                        let state = match p.status {
                            PaymentStatus::Succeeded => "went through".to_string(),
                            PaymentStatus::Processing | PaymentStatus::Pending => {
                                "is being processed".to_string()
                            }
                            PaymentStatus::Failed => "did not go through".to_string(),
                            PaymentStatus::Returned => "was returned by the bank".to_string(),
                            PaymentStatus::Refunded | PaymentStatus::PartiallyRefunded => {
                                "was refunded".to_string()
                            }
                            PaymentStatus::Canceled => "was canceled".to_string(),
                        };
                        let why = match (p.status, p.decline) {
                            (PaymentStatus::Failed | PaymentStatus::Returned, Some(code)) => {
                                format!(" {} {}", code.message(lang), code.next_step(lang))
                            }
                            _ => String::new(),
                        };
                        BotReply::say(format!(
                            "Your last payment was {} on {when} with your {}. It {state}. Confirmation number: {}.{why}",
                            p.amount,
                            p.method.describe(),
                            p.confirmation_number
                        ))
                    }
                }
            }
            Intent::FailedPayment => {
                let payments = self.account_payments(number, None, 25).await?;
                let failed = payments.iter().find(|p| {
                    matches!(p.status, PaymentStatus::Failed | PaymentStatus::Returned)
                });
                match failed {
                    None => BotReply::say(
                        "I do not see a failed or returned payment on this account. If a payment just failed on the screen, nothing was charged; you can try again with the secure pay form.",
                    )
                    .with_link("/pay/amount"),
                    Some(p) => {
                        let when = p.local_time().strftime("%B %-d, %Y");
                        let what = if p.status == PaymentStatus::Returned {
                            "was returned by the bank"
                        } else {
                            "was declined"
                        };
                        let (cause, next) = match p.decline {
                            Some(code) => (
                                format!("{} (code {})", code.message(lang), code.as_str()),
                                code.next_step(lang).to_string(),
                            ),
                            None => (
                                "We did not receive a reason.".into(),
                                "Please try again or use another method.".into(),
                            ),
                        };
                        BotReply::say(format!(
                            "Your payment of {} on {when} with your {} {what}. {cause} {next} You can pay again with the secure pay form.",
                            p.amount,
                            p.method.describe()
                        ))
                        .with_link("/pay/amount")
                    }
                }
            }
            Intent::Autopay => match self.autopay(number).await? {
                Some(a) if a.status == "active" => {
                    let method = self
                        .payment_methods(number)
                        .await?
                        .into_iter()
                        .find(|m| m.id == a.payment_method_id)
                        .map(|m| m.summary.describe())
                        .unwrap_or_else(|| "your saved method".into());
                    let when = match a.timing {
                        billpay_domain::Timing::OnDueDate => "on each due date".to_string(),
                        billpay_domain::Timing::DaysBefore(d) => {
                            format!("{d} days before each due date")
                        }
                    };
                    let cap = a
                        .maximum
                        .map(|m| format!(", up to {m} a bill"))
                        .unwrap_or_default();
                    BotReply::say(format!(
                        "AutoPay is on: your {method} is charged {when}{cap}. You can change or turn it off under My account, AutoPay."
                    ))
                }
                _ => BotReply::say(
                    "AutoPay is off for this account. Sign in and choose My account, AutoPay to pay each bill automatically from a saved card or bank account.",
                ),
            },
            Intent::Arrangement => {
                let s = self.account_summary(number).await?;
                let state = if s.status == crate::AccountStatus::PastDue {
                    format!("Your account is past due with a balance of {}.", s.balance)
                } else {
                    "Your account is not past due today.".to_string()
                };
                BotReply::say(format!(
                    "{state} If you need more time on a past-due balance, sign in and choose My account, Payment arrangement: you can ask to pay it later or in monthly parts, and you see at once whether it is accepted. A representative can help too."
                ))
                .with_link("/account/arrangement")
            }
            Intent::Fees => {
                let fee = self.config().convenience_fee_minor;
                if fee == 0 {
                    BotReply::say(
                        "There is no fee to pay online, in chat, by phone or with AutoPay.",
                    )
                } else {
                    let currency = self.account(number).await?.currency;
                    BotReply::say(format!(
                        "A convenience fee of {} is added to one-time card and bank payments. AutoPay has no fee.",
                        billpay_domain::Money::new(fee, currency)
                    ))
                }
            }
            Intent::Methods => BotReply::say(
                "We accept Visa, Mastercard, American Express and Discover cards (credit or debit), and payments from a US checking or savings account. Never type a card number in this chat: use the secure pay form.",
            )
            .with_link("/pay/amount"),
            Intent::Pay => BotReply::say(
                "You can pay securely with this form. Card and bank details go only into the form, never into the chat.",
            )
            .with_link("/pay/amount"),
            Intent::Unknown => BotReply {
                text: "I am not sure I can answer that, so I am connecting you with a representative.".into(),
                link: None,
                handover: true,
            },
        })
    }
}

impl Billpay {
    /// The customer opens a pay request of their conversation: the quick-pay checkout starts
    /// with its amount (the pay form then takes the card or bank details). Returns false when
    /// the request is not this session's or is already paid.
    pub async fn chat_open_pay_request(
        &self,
        session: &mut PortalSession,
        request_id: &str,
    ) -> Result<bool, ServiceError> {
        let Some(conversation) = session.data.chat.clone() else {
            return Ok(false);
        };
        let row = {
            let mut c = self.store.read_conn().await?;
            q::pay_request(&mut c, request_id).await?
        };
        let Some(row) = row.filter(|r| r.conversation_id == conversation && r.status != "paid")
        else {
            return Ok(false);
        };
        let currency = billpay_domain::Currency::parse(&row.currency)
            .map_err(|e| ServiceError::invalid("currency", e.to_string()))?;
        session.data.checkout = None;
        session.data.pay_request = Some(row.id.clone());
        self.portal_set_amount(session, billpay_domain::Money::new(row.amount, currency))
            .await?;
        Ok(true)
    }

    /// Records what became of a pay request's payment, and says it in the conversation: the
    /// amount, the method as brand and last four, approved or why not, the confirmation.
    pub async fn chat_pay_result(
        &self,
        request_id: &str,
        outcome: &crate::portal::PayOutcome,
    ) -> Result<(), ServiceError> {
        use crate::portal::PayOutcome;
        let (status, payment, text) = match outcome {
            PayOutcome::Paid(p) => (
                "paid",
                p,
                format!(
                    "Secure payment of {} with {} was approved. Confirmation number {}.",
                    p.amount,
                    p.method.describe(),
                    p.confirmation_number
                ),
            ),
            PayOutcome::Declined(p, code) => (
                "declined",
                p,
                format!(
                    "Secure payment of {} with {} was declined: {} {}",
                    p.amount,
                    p.method.describe(),
                    code.message(Language::En),
                    code.next_step(Language::En)
                ),
            ),
            PayOutcome::InDoubt(p) => (
                "pending",
                p,
                format!(
                    "Secure payment of {} with {} is being processed. Confirmation number {}.",
                    p.amount,
                    p.method.describe(),
                    p.confirmation_number
                ),
            ),
            PayOutcome::Duplicate { .. } => return Ok(()),
        };
        let row = {
            let mut c = self.store.read_conn().await?;
            q::pay_request(&mut c, request_id).await?
        }
        .ok_or(ServiceError::NotFound {
            what: "pay request",
        })?;
        let now = self.clock.now_micros();
        let (id, pid, t) = (request_id.to_string(), payment.id.clone(), text.clone());
        let changed = self
            .store
            .write(move |c| {
                Box::pin(
                    async move { q::set_pay_request_result(c, &id, status, &pid, &t, now).await },
                )
            })
            .await?;
        if changed {
            self.chat_append(
                &row.conversation_id,
                NewMessage::new(Sender::System, None, &text),
            )
            .await?;
        }
        Ok(())
    }
}

impl Billpay {
    /// Whether representatives answer chat now (the configured hours, in the biller's zone).
    pub fn chat_staffed_now(&self) -> bool {
        let Some((start, end)) = self.config().portal.chat_hours else {
            return true;
        };
        let tz =
            jiff::tz::TimeZone::get(&self.config().ivr.timezone).unwrap_or(jiff::tz::TimeZone::UTC);
        let hour = self.clock.now().to_zoned(tz).hour();
        (i8::try_from(start).unwrap_or(0)..i8::try_from(end).unwrap_or(24)).contains(&hour)
    }

    /// Outside the hours: the customer leaves a message and an email address for a reply. The
    /// conversation waits in the desk's offline list.
    pub async fn chat_leave_message(
        &self,
        session: &PortalSession,
        email: &str,
        text: &str,
    ) -> Result<(), ServiceError> {
        let conversation = self.session_conversation(session).await?;
        let email = crate::portal_auth::normalize_email(email).ok_or_else(|| {
            ServiceError::invalid("email", "Enter the email address for our reply.")
        })?;
        let text = parse_message(text)?;
        let now = self.clock.now_micros();
        let id = conversation.id.clone();
        let from = conversation.state.as_str().to_string();
        let moved = self
            .store
            .write(move |c| {
                Box::pin(async move {
                    q::set_state(c, &id, &from, "offline", None, Some(now), now).await
                })
            })
            .await?;
        if !moved {
            return Err(ServiceError::invalid(
                "message",
                "This conversation has changed; open the chat again.",
            ));
        }
        self.chat_append(
            &conversation.id,
            NewMessage::new(
                Sender::Customer,
                None,
                &format!("Message for a representative (reply to {email}): {text}"),
            ),
        )
        .await?;
        self.chat_append(
            &conversation.id,
            NewMessage::new(
                Sender::System,
                None,
                "Thank you. A representative will reply by email during business hours.",
            ),
        )
        .await?;
        Ok(())
    }
}

/// Transcripts one conversation may send by email (a bound on what a guest can mail out).
pub const TRANSCRIPTS_PER_CONVERSATION_MAX: i64 = 3;
/// Messages in one emailed transcript (the latest are kept).
pub const TRANSCRIPT_MESSAGES_MAX: usize = 1_000;

impl Billpay {
    /// Queues the conversation's transcript for the customer by email (the outbox, kind
    /// `email.chat_transcript`): what the customer saw — card numbers already masked, and never
    /// a representative's internal note. The same transcript to the same address is queued
    /// once; at most [`TRANSCRIPTS_PER_CONVERSATION_MAX`] per conversation.
    pub async fn chat_email_transcript(
        &self,
        session: &PortalSession,
        email: &str,
    ) -> Result<(), ServiceError> {
        let conversation = self.session_conversation(session).await?;
        let email = crate::portal_auth::normalize_email(email).ok_or_else(|| {
            ServiceError::invalid("email", "Enter the email address for the transcript.")
        })?;
        let mut messages = Vec::new();
        let mut after = 0;
        loop {
            let page = self.chat_messages(&conversation.id, after, false).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            messages.extend(page);
            if messages.len() > TRANSCRIPT_MESSAGES_MAX * 2 {
                break;
            }
        }
        let skip = messages.len().saturating_sub(TRANSCRIPT_MESSAGES_MAX);
        let tz = crate::accounts::tz_named(&self.config().ivr.timezone);
        let lines: Vec<serde_json::Value> = messages
            .iter()
            .skip(skip)
            // Staff notes are never read with `with_notes = false`; checked again here.
            .filter(|m| m.sender != Sender::Note)
            .map(|m| {
                let who = match m.sender {
                    Sender::Customer => "You".to_string(),
                    Sender::Bot => "Assistant".to_string(),
                    Sender::Agent => m.author.clone().unwrap_or_else(|| "Representative".into()),
                    Sender::System | Sender::Note => "Notice".to_string(),
                };
                serde_json::json!({
                    "at": m.at.to_zoned(tz.clone()).strftime("%-I:%M %p").to_string(),
                    "who": who,
                    // Masked when stored; masked again, as everything that leaves does.
                    "text": mask_message(&m.body),
                })
            })
            .collect();
        let started = conversation
            .created_at
            .to_zoned(tz)
            .strftime("%B %-d, %Y")
            .to_string();
        let payload = serde_json::json!({
            "name": conversation.customer_name,
            "started": started,
            "lines": lines,
        })
        .to_string();
        let now = self.clock.now_micros();
        use sha2::Digest as _;
        let to = hex::encode(&sha2::Sha256::digest(email.as_bytes())[..8]);
        let row = billpay_store::rows::OutboxRow {
            id: self.new_id("msg"),
            kind: "email.chat_transcript".into(),
            dedupe_key: format!(
                "chat_transcript:{}:{}:{to}",
                conversation.id, conversation.last_seq
            ),
            recipient: email,
            payload_json: payload,
            created_at: now,
            sent_at: None,
            attempts: 0,
        };
        let conv = conversation.id.clone();
        let queued = self
            .store
            .write(move |c| {
                Box::pin(async move {
                    let sent = billpay_store::desk::transcripts_queued(c, &conv).await?;
                    if sent >= TRANSCRIPTS_PER_CONVERSATION_MAX {
                        return Ok::<_, billpay_store::StoreError>(None);
                    }
                    billpay_store::queries::insert_outbox(c, &row)
                        .await
                        .map(Some)
                })
            })
            .await?;
        if queued.is_none() {
            return Err(ServiceError::invalid(
                "email",
                format!(
                    "This conversation's transcript was already sent {TRANSCRIPTS_PER_CONVERSATION_MAX} times."
                ),
            ));
        }
        Ok(())
    }
}

/// "8 am", "12 pm", "8 pm", "midnight".
fn hour_words(h: u8) -> String {
    match h {
        0 | 24 => "midnight".into(),
        12 => "noon".into(),
        1..=11 => format!("{h} am"),
        _ => format!("{} pm", h - 12),
    }
}

fn wait_words(minutes: i64) -> String {
    match minutes {
        ..=1 => "about 1 minute".into(),
        n => format!("about {n} minutes"),
    }
}

/// Stores a message under the conversation's next number, in the caller's transaction.
async fn append(
    c: &mut billpay_store::AnyConnection,
    conversation_id: &str,
    m: &NewMessage,
    now: i64,
) -> Result<i64, billpay_store::StoreError> {
    let seq = q::next_seq(c, conversation_id, now)
        .await?
        .ok_or(billpay_store::StoreError::NotFound)?;
    q::insert_message(
        c,
        &MessageRow {
            conversation_id: conversation_id.to_string(),
            seq,
            sender: m.sender.as_str().into(),
            author: m.author.clone(),
            body: m.body.clone(),
            link: m.link.clone(),
            created_at: now,
        },
    )
    .await?;
    Ok(seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intents() {
        for (text, want) in [
            ("I want to talk to an agent", Intent::Agent),
            ("REPRESENTATIVE please", Intent::Agent),
            ("why did my payment fail?", Intent::FailedPayment),
            ("my payment was declined", Intent::FailedPayment),
            ("the bank returned it", Intent::FailedPayment),
            ("what is my balance", Intent::Balance),
            ("when is my bill due", Intent::Balance),
            ("is autopay on?", Intent::Autopay),
            ("can I get more time", Intent::Arrangement),
            ("what was my last payment", Intent::LastPayment),
            ("are there any fees", Intent::Fees),
            ("do you accept amex", Intent::Methods),
            ("I want to pay", Intent::Pay),
            ("hello", Intent::Greeting),
            ("my dog ate the meter", Intent::Unknown),
        ] {
            assert_eq!(intent(text), want, "{text}");
        }
    }

    #[test]
    fn a_new_message_is_masked_before_anything_else_sees_it() {
        let m = NewMessage::new(Sender::Customer, None, "my card is 4242 4242 4242 4242 ok");
        assert_eq!(m.body, "my card is ************4242 ok");
        assert!(!m.body.contains("4242 4242"));
        let m = NewMessage::new(
            Sender::Customer,
            None,
            "4242424242424242 exp 12/30 cvc 739, amex 378282246310005 code 8142",
        );
        assert_eq!(
            m.body,
            "************4242 exp 12/30 cvc ***, amex ***********0005 code ***"
        );
        // Without a card number, numbers are left alone (an amount, a meter reading).
        let m = NewMessage::new(Sender::Customer, None, "I paid 120 dollars, meter 4711");
        assert_eq!(m.body, "I paid 120 dollars, meter 4711");
    }

    #[tokio::test]
    async fn the_hub_wakes_only_a_conversations_own_listeners() {
        let hub = std::sync::Arc::new(ChatHub::default());
        let mut a1 = hub.subscribe("chat_a");
        let mut a2 = hub.subscribe("chat_a");
        let mut b = hub.subscribe("chat_b");
        assert_eq!(hub.conversations_listened(), 2);
        hub.publish(ChatEvent::message("chat_a", 7));
        hub.publish(ChatEvent::message("chat_c", 1)); // nobody listens: dropped
        assert_eq!(a1.recv().await.unwrap().seq, 7);
        assert_eq!(a2.recv().await.unwrap().seq, 7);
        let nothing = tokio::time::timeout(std::time::Duration::from_millis(20), b.recv()).await;
        assert!(nothing.is_err(), "conversation B hears nothing of A");
        // The channel goes with its last listener, and comes back with the next.
        drop(a1);
        assert_eq!(hub.conversations_listened(), 2);
        drop(a2);
        assert_eq!(hub.conversations_listened(), 1);
        drop(b);
        assert_eq!(hub.conversations_listened(), 0);
        let mut again = hub.subscribe("chat_a");
        hub.publish(ChatEvent::message("chat_a", 8));
        assert_eq!(again.recv().await.unwrap().seq, 8);
    }

    #[tokio::test]
    async fn typing_is_rate_limited_and_expires() {
        let hub = ChatHub::default();
        assert!(hub.typing_allowed("c", Side::Customer));
        assert!(!hub.is_typing("c", Side::Customer));
        hub.publish(ChatEvent {
            conversation_id: "c".into(),
            seq: 0,
            kind: ChatEventKind::Typing(Side::Customer),
        });
        assert!(hub.is_typing("c", Side::Customer));
        assert!(!hub.is_typing("c", Side::Agent));
        assert!(!hub.typing_allowed("c", Side::Customer), "one per interval");
        assert!(hub.typing_allowed("c", Side::Agent), "per side");
    }

    #[test]
    fn notifications_carry_the_event_kind() {
        for kind in [
            ChatEventKind::Message,
            ChatEventKind::Typing(Side::Customer),
            ChatEventKind::Typing(Side::Agent),
            ChatEventKind::Read,
        ] {
            let e = ChatEvent {
                conversation_id: "c".into(),
                seq: 3,
                kind,
            };
            assert_eq!(ChatEvent::kind_of(e.kind_code()), kind);
        }
        // A notification from an instance that predates kinds is a message.
        assert_eq!(ChatEvent::kind_of(""), ChatEventKind::Message);
    }

    #[test]
    fn messages_are_checked() {
        assert!(parse_message("   ").is_err());
        assert!(parse_message(&"a".repeat(MESSAGE_CHARS_MAX + 1)).is_err());
        assert_eq!(parse_message("  hi ").unwrap(), "hi");
    }
}

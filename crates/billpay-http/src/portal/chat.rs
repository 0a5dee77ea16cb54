//! The customer's side of live chat: a page that works as plain forms (send, then the page
//! shows the conversation again; a link checks for new messages), and a small script
//! (`/assets/chat.js`, same origin, no inline script) that sends without reloading and shows
//! new messages as they arrive over server-sent events. A reconnecting event stream sends
//! `Last-Event-ID` (the last message number it has) and gets everything after it.

use std::convert::Infallible;
use std::time::Duration;

use askama::Template;
use axum::Extension;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use billpay_services::chat::{
    ChatEventKind, ChatMessage, Conversation, ConversationState, QueueStatus, Sender, Side,
};
use billpay_services::portal::{FieldError, PortalSession};
use billpay_services::{Billpay, ServiceError};
use serde::Deserialize;

use super::{
    Field, Page, SecureCookie, error_for, html, see_other, service_error, with_session_cookie,
};

/// Marks the viewer's own last message the other side has read (`read_seq`): the one "Read".
pub fn mark_read(views: &mut [MessageView], own_sender: &str, read_seq: i64) {
    if let Some(v) = views
        .iter_mut()
        .filter(|v| v.sender == own_sender && v.seq <= read_seq)
        .last()
    {
        v.read = true;
    }
}

/// One message as the page shows it.
pub struct MessageView {
    pub seq: i64,
    pub sender: &'static str,
    pub who: String,
    pub body: String,
    pub link: Option<String>,
    pub link_text: &'static str,
    /// The other side has read up to here: "Read" is shown under it.
    pub read: bool,
}

impl MessageView {
    pub fn of(m: &ChatMessage) -> MessageView {
        MessageView {
            seq: m.seq,
            sender: m.sender.as_str(),
            who: match m.sender {
                Sender::Customer => "You".into(),
                Sender::Bot => "Assistant".into(),
                Sender::Agent => m.author.clone().unwrap_or_else(|| "Representative".into()),
                Sender::System | Sender::Note => "Notice".into(),
            },
            body: m.body.clone(),
            link: m.link.clone(),
            link_text: link_text(m.link.as_deref()),
            read: false,
        }
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "seq": self.seq,
            "sender": self.sender,
            "who": self.who,
            "body": self.body,
            "link": self.link,
            "link_text": self.link_text,
        })
    }
}

fn link_text(link: Option<&str>) -> &'static str {
    match link {
        Some(l) if l.starts_with("/chat/pay/") => "Open the secure pay form",
        Some("/account/arrangement") => "Ask for more time",
        Some("/chat/offline") => "Leave a message",
        Some(_) => "Pay securely",
        None => "",
    }
}

#[derive(Template)]
#[template(path = "portal/chat.html")]
struct ChatPage {
    page: Page,
    conversation: Option<Conversation>,
    messages: Vec<MessageView>,
    queue: Option<QueueStatus>,
    closed: bool,
    errors: Vec<FieldError>,
    fields: Vec<Field>,
    /// The representative typed in the last few seconds.
    typing: bool,
    transcript_sent: bool,
    transcript_email: String,
}

impl ChatPage {
    fn error_for(&self, name: &str) -> Option<&str> {
        error_for(&self.errors, name)
    }
}

fn start_fields(session: &PortalSession, form: &StartForm, errors: &[FieldError]) -> Vec<Field> {
    let mut fields = vec![Field {
        name: "name",
        label: "Your name",
        hint: "",
        kind: "text",
        autocomplete: "name",
        inputmode: "",
        class: "",
        value: form.name.chars().take(80).collect(),
        error: error_for(errors, "name").map(str::to_string),
    }];
    if session.verified_account().is_none() {
        fields.push(Field {
            name: "account_number",
            label: "Account number",
            hint: "The 12-digit number at the top of your bill.",
            kind: "text",
            autocomplete: "off",
            inputmode: "numeric",
            class: "",
            value: form.account_number.chars().take(20).collect(),
            error: error_for(errors, "account_number").map(str::to_string),
        });
        fields.push(Field {
            name: "postal_code",
            label: "Service ZIP code",
            hint: "The ZIP code of the address where you receive service.",
            kind: "text",
            autocomplete: "postal-code",
            inputmode: "numeric",
            class: "short",
            value: form.postal_code.chars().take(10).collect(),
            error: error_for(errors, "postal_code").map(str::to_string),
        });
    }
    fields
}

async fn chat_page(
    app: &Billpay,
    session: &PortalSession,
    status: StatusCode,
    errors: Vec<FieldError>,
    form: &StartForm,
) -> Response {
    chat_page_with(app, session, status, errors, form, false, String::new()).await
}

async fn chat_page_with(
    app: &Billpay,
    session: &PortalSession,
    status: StatusCode,
    errors: Vec<FieldError>,
    form: &StartForm,
    transcript_sent: bool,
    transcript_email: String,
) -> Response {
    let conversation = match app.chat_of_session(session).await {
        Ok(c) => c,
        Err(e) => return service_error(app, session, e),
    };
    let (messages, queue) = match &conversation {
        Some(c) => {
            let messages = match app.chat_messages(&c.id, 0, false).await {
                Ok(m) => m,
                Err(e) => return service_error(app, session, e),
            };
            let queue = match app.chat_queue_status(&c.id).await {
                Ok(q) => q,
                Err(e) => return service_error(app, session, e),
            };
            // Showing the page is reading it (the plain-HTTP read receipt).
            if let Some(last) = messages.last()
                && let Err(e) = app.chat_customer_read(session, last.seq).await
            {
                return service_error(app, session, e);
            }
            let mut views: Vec<MessageView> = messages.iter().map(MessageView::of).collect();
            mark_read(&mut views, "customer", c.agent_read_seq);
            (views, queue)
        }
        None => (Vec::new(), None),
    };
    let typing = conversation
        .as_ref()
        .is_some_and(|c| app.chat.is_typing(&c.id, Side::Agent));
    html(
        status,
        &ChatPage {
            page: Page::new(app, session),
            closed: conversation
                .as_ref()
                .is_some_and(|c| c.state == ConversationState::Closed),
            fields: start_fields(session, form, &errors),
            conversation,
            messages,
            queue,
            errors,
            typing,
            transcript_sent,
            transcript_email,
        },
    )
}

#[derive(Deserialize)]
pub struct PageQuery {
    #[serde(default)]
    sent: Option<String>,
}

pub async fn page(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
    Query(q): Query<PageQuery>,
) -> Response {
    chat_page_with(
        &app,
        &session,
        StatusCode::OK,
        Vec::new(),
        &StartForm::default(),
        q.sent.is_some(),
        String::new(),
    )
    .await
}

#[derive(Deserialize)]
pub struct SeqForm {
    #[serde(default)]
    seq: i64,
}

/// The script: the customer is typing (relayed to the representative, not stored).
pub async fn typing(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
) -> Response {
    match app.chat_customer_typing(&session).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => service_error(&app, &session, e),
    }
}

/// The script: the customer has seen the messages up to `seq`.
pub async fn read(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
    Form(f): Form<SeqForm>,
) -> Response {
    match app.chat_customer_read(&session, f.seq).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => service_error(&app, &session, e),
    }
}

#[derive(Deserialize)]
pub struct TranscriptForm {
    #[serde(default)]
    email: String,
}

/// The customer asks for the transcript by email (during the chat or once it ended).
pub async fn transcript(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
    Form(f): Form<TranscriptForm>,
) -> Response {
    match app.chat_email_transcript(&session, &f.email).await {
        Ok(()) => see_other("/chat?sent=1#transcript"),
        Err(ServiceError::Invalid { message, .. }) => {
            chat_page_with(
                &app,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                vec![FieldError {
                    field: "transcript_email",
                    message,
                }],
                &StartForm::default(),
                false,
                f.email.chars().take(200).collect(),
            )
            .await
        }
        Err(ServiceError::NotFound { .. }) => see_other("/chat"),
        Err(e) => service_error(&app, &session, e),
    }
}

#[derive(Default, Deserialize)]
pub struct StartForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    account_number: String,
    #[serde(default)]
    postal_code: String,
}

pub async fn start(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
    Extension(SecureCookie(secure)): Extension<SecureCookie>,
    Form(form): Form<StartForm>,
) -> Response {
    match app
        .chat_start(
            &session,
            &form.name,
            &form.account_number,
            &form.postal_code,
        )
        .await
    {
        Ok(Ok((Some(token), _))) => {
            with_session_cookie(see_other("/chat#chat-form"), &token, secure)
        }
        Ok(Ok((None, _))) => see_other("/chat#chat-form"),
        Ok(Err(errors)) => {
            chat_page(
                &app,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                errors,
                &form,
            )
            .await
        }
        Err(e) => service_error(&app, &session, e),
    }
}

#[derive(Deserialize)]
pub struct SayForm {
    #[serde(default)]
    message: String,
}

pub async fn say(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
    Form(form): Form<SayForm>,
) -> Response {
    match app.chat_customer_says(&session, &form.message).await {
        Ok(_) => see_other("/chat#chat-form"),
        Err(ServiceError::Invalid { message, .. }) => {
            let errors = vec![FieldError {
                field: "message",
                message,
            }];
            chat_page(
                &app,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                errors,
                &StartForm::default(),
            )
            .await
        }
        Err(ServiceError::NotFound { .. }) => see_other("/chat"),
        Err(e) => service_error(&app, &session, e),
    }
}

/// A pay request the representative sent: the pay form opens with its amount.
pub async fn pay_request(
    State(app): State<Billpay>,
    Extension(mut session): Extension<PortalSession>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    match app.chat_open_pay_request(&mut session, &id).await {
        Ok(true) => see_other("/pay/method"),
        Ok(false) => service_error(
            &app,
            &session,
            ServiceError::NotFound {
                what: "pay request",
            },
        ),
        Err(e) => service_error(&app, &session, e),
    }
}

#[derive(Deserialize)]
pub struct EventsQuery {
    #[serde(default)]
    after: Option<i64>,
}

/// Longest one event stream stays open; the browser reconnects with `Last-Event-ID`.
const STREAM_SECS_MAX: u64 = 300;

/// The conversation's messages after `after` (or `Last-Event-ID`), then each new one as it is
/// stored, as server-sent events. Queue changes are sent as `queue` events.
pub async fn events(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
    headers: HeaderMap,
    Query(query): Query<EventsQuery>,
) -> Response {
    let conversation = match app.chat_of_session(&session).await {
        Ok(Some(c)) => c,
        Ok(None) => return StatusCode::NOT_FOUND.into_response(),
        Err(e) => return service_error(&app, &session, e),
    };
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok())
        .or(query.after)
        .unwrap_or(0);
    let stream = message_stream(app, conversation.id, after, Side::Customer, |m| {
        let v = MessageView::of(m);
        Event::default()
            .id(v.seq.to_string())
            .event("message")
            .data(v.json().to_string())
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// `billpay_chat_streams_open`: live chat pages (customers' and the desk's) connected to this
/// instance, one up while a stream's task runs and down when it ends, however it ends.
struct StreamGauge;

impl StreamGauge {
    fn open() -> StreamGauge {
        metrics::gauge!("billpay_chat_streams_open").increment(1.0);
        StreamGauge
    }
}

impl Drop for StreamGauge {
    fn drop(&mut self) {
        metrics::gauge!("billpay_chat_streams_open").decrement(1.0);
    }
}

/// A stream of a conversation's messages after `after`: first what is stored, then each new
/// one announced on the hub (read back from storage, so nothing is missed or repeated). Also
/// `typing` events of the other side (not stored; shown for a few seconds) and `read` events
/// with both sides' read receipts (sent at the start too, so a reconnecting page has them).
/// `viewer` is whose page it is: the desk's (`Agent`, with internal notes) or the customer's.
pub fn message_stream(
    app: Billpay,
    conversation_id: String,
    mut after: i64,
    viewer: Side,
    to_event: impl Fn(&ChatMessage) -> Event + Send + 'static,
) -> impl futures::Stream<Item = Result<Event, Infallible>> {
    let mut rx = app.chat.subscribe(&conversation_id);
    let with_notes = viewer == Side::Agent;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(STREAM_SECS_MAX);
    let (tx, events) = tokio::sync::mpsc::channel::<Result<Event, Infallible>>(16);
    tokio::spawn(async move {
        let _open = StreamGauge::open();
        let mut receipts = (-1, -1);
        let mut read_again = true;
        loop {
            match app.chat_messages(&conversation_id, after, with_notes).await {
                Ok(ms) => {
                    for m in &ms {
                        after = m.seq;
                        if tx.send(Ok(to_event(m))).await.is_err() {
                            return;
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "chat stream could not read messages");
                    return;
                }
            }
            if read_again {
                read_again = false;
                if let Ok(c) = app.chat_conversation(&conversation_id).await
                    && (c.customer_read_seq, c.agent_read_seq) != receipts
                {
                    receipts = (c.customer_read_seq, c.agent_read_seq);
                    let data = serde_json::json!({"customer": receipts.0, "agent": receipts.1});
                    let ev = Event::default().event("read").data(data.to_string());
                    if tx.send(Ok(ev)).await.is_err() {
                        return;
                    }
                }
            }
            // Wait for an announcement of this conversation (or fall behind: read again).
            loop {
                let next = tokio::select! {
                    // The page went away: stop listening (and let the hub drop the channel).
                    _ = tx.closed() => return,
                    next = tokio::time::timeout_at(deadline, rx.recv()) => next,
                };
                match next {
                    Err(_) => return,
                    Ok(Ok(ev)) => match ev.kind {
                        ChatEventKind::Message if ev.seq > after => break,
                        ChatEventKind::Message => continue,
                        ChatEventKind::Read => {
                            read_again = true;
                            break;
                        }
                        ChatEventKind::Typing(side) if side != viewer => {
                            let data = serde_json::json!({"side": side.as_str()});
                            let ev = Event::default().event("typing").data(data.to_string());
                            if tx.send(Ok(ev)).await.is_err() {
                                return;
                            }
                        }
                        ChatEventKind::Typing(_) => continue,
                    },
                    Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {
                        read_again = true;
                        break;
                    }
                    Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => return,
                }
            }
        }
    });
    futures::stream::unfold(events, |mut events| async move {
        events.recv().await.map(|e| (e, events))
    })
}

#[derive(Template)]
#[template(path = "portal/chat_offline.html")]
struct OfflinePage {
    page: Page,
    errors: Vec<FieldError>,
    fields: Vec<Field>,
    message: String,
}

impl OfflinePage {
    fn error_for(&self, name: &str) -> Option<&str> {
        error_for(&self.errors, name)
    }
}

#[derive(Default, Deserialize)]
pub struct OfflineForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    message: String,
}

fn offline_page(
    app: &Billpay,
    session: &PortalSession,
    status: StatusCode,
    errors: Vec<FieldError>,
    form: &OfflineForm,
) -> Response {
    let fields = vec![Field {
        name: "email",
        label: "Email address for our reply",
        hint: "",
        kind: "email",
        autocomplete: "email",
        inputmode: "",
        class: "",
        value: form.email.chars().take(200).collect(),
        error: error_for(&errors, "email").map(str::to_string),
    }];
    html(
        status,
        &OfflinePage {
            page: Page::new(app, session),
            message: form.message.chars().take(2_000).collect(),
            errors,
            fields,
        },
    )
}

pub async fn offline(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
) -> Response {
    offline_page(
        &app,
        &session,
        StatusCode::OK,
        Vec::new(),
        &OfflineForm::default(),
    )
}

pub async fn leave_message(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
    Form(form): Form<OfflineForm>,
) -> Response {
    match app
        .chat_leave_message(&session, &form.email, &form.message)
        .await
    {
        Ok(()) => see_other("/chat#chat-log"),
        Err(ServiceError::Invalid { param, message }) => {
            let field = if param == "email" { "email" } else { "message" };
            offline_page(
                &app,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                vec![FieldError { field, message }],
                &form,
            )
        }
        Err(ServiceError::NotFound { .. }) => see_other("/chat"),
        Err(e) => service_error(&app, &session, e),
    }
}

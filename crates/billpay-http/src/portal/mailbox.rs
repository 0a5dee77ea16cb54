//! The demo mailbox (`serve --demo` only): every email the outbox holds, rendered, so a
//! newcomer can read receipts and codes without a mail server.

use askama::Template;
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use billpay_services::Billpay;
use billpay_services::portal::PortalSession;

use super::{Page, html, service_error};

pub struct Row {
    id: String,
    to: String,
    subject: String,
    created_at: String,
    status: String,
    text: String,
}

impl From<billpay_services::portal::MailboxMessage> for Row {
    fn from(m: billpay_services::portal::MailboxMessage) -> Row {
        Row {
            id: m.id,
            to: m.to,
            subject: m.subject,
            created_at: m.created_at.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
            status: m.status,
            text: m.text,
        }
    }
}

#[derive(Template)]
#[template(path = "portal/mailbox.html")]
struct ListPage {
    page: Page,
    messages: Vec<Row>,
}

#[derive(Template)]
#[template(path = "portal/mailbox_message.html")]
struct MessagePage {
    page: Page,
    m: Row,
}

pub async fn list(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
) -> Response {
    match app.demo_mailbox().await {
        Ok(messages) => html(
            StatusCode::OK,
            &ListPage {
                page: Page::new(&app, &session),
                messages: messages.into_iter().map(Row::from).collect(),
            },
        ),
        Err(e) => service_error(&app, &session, e),
    }
}

pub async fn message(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
    Path(id): Path<String>,
) -> Response {
    match app.demo_mailbox_message(&id).await {
        Ok(m) => html(
            StatusCode::OK,
            &MessagePage {
                page: Page::new(&app, &session),
                m: m.into(),
            },
        ),
        Err(e) => service_error(&app, &session, e),
    }
}

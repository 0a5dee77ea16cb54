//! The desk's review queue (`/desk/reviews`): payments the fraud rules held for review, oldest
//! first, each with its account, amount, method (brand and last four at most), channel and
//! reasons in plain words, and the forms to approve it or reject it with a reason (a rejection
//! refunds it). For supervisors and administrators; the services refuse anyone else (and audit
//! a refused decision). The forms carry the session's CSRF token like every desk form, checked
//! by the desk's session layer. Handlers parse, call one service function, render.

use askama::Template;
use axum::Router;
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use billpay_domain::risk::ReviewDecision;
use billpay_services::Billpay;
use billpay_services::reviews::PaymentReview;
use serde::Deserialize;

use crate::desk::{Desk, S, html, see_other, service_error, signed_in};

pub fn routes() -> Router<Billpay> {
    Router::new()
        .route("/desk/reviews", get(queue))
        .route("/desk/reviews/{payment}/approve", post(approve))
        .route("/desk/reviews/{payment}/reject", post(reject))
}

/// One open review as the queue shows it.
pub struct ReviewRow {
    pub payment_id: String,
    pub opened: String,
    pub account: String,
    pub amount: String,
    pub method: String,
    pub channel: String,
    pub confirmation: String,
    pub reasons: Vec<&'static str>,
    /// What happened to the payment since, if anything (a refund, a bank debit not settled).
    pub note: String,
}

fn when(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M UTC").to_string()
}

fn row(r: &PaymentReview) -> ReviewRow {
    let mut note = match r.status {
        billpay_domain::PaymentStatus::Processing => {
            "Bank payment not settled yet: it can be rejected once it settles.".to_string()
        }
        billpay_domain::PaymentStatus::PartiallyRefunded => {
            format!("{} already refunded.", r.refunded)
        }
        billpay_domain::PaymentStatus::Succeeded => String::new(),
        other => format!("The payment is now {}.", other.as_str().replace('_', " ")),
    };
    if r.decision == Some(ReviewDecision::Reject) {
        note.push_str(&format!(
            " Rejection started by {}: its refund is waiting for the processor.",
            r.decided_by_name.as_deref().unwrap_or("a supervisor")
        ));
    }
    ReviewRow {
        payment_id: r.payment_id.clone(),
        opened: when(r.opened_at),
        account: r.account_number.as_str().to_string(),
        amount: r.amount.to_string(),
        method: r.method.clone(),
        channel: r.channel.as_str().to_string(),
        confirmation: r.confirmation_number.clone(),
        reasons: r.reasons.iter().map(|x| x.describe()).collect(),
        note: note.trim().to_string(),
    }
}

/// One review as a line of the account panel: held, approved, or rejected (refunded).
pub fn review_line(r: &PaymentReview) -> String {
    let reasons: Vec<&str> = r.reasons.iter().map(|x| x.describe()).collect();
    let what = format!(
        "{} {} payment {} with {}",
        r.amount,
        r.channel.as_str(),
        r.confirmation_number,
        r.method
    );
    let by = r.decided_by_name.as_deref().unwrap_or("a supervisor");
    let why = r
        .decision_reason
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| format!(": \u{201c}{s}\u{201d}"))
        .unwrap_or_default();
    let state = match (r.decision, r.decided_at) {
        (Some(ReviewDecision::Approve), Some(at)) => {
            format!("approved by {by} on {}{why}", when(at))
        }
        // What the payment has had refunded in all: a rejection refunds what is left, which
        // is nothing once the payment was refunded already or returned by the bank.
        (Some(ReviewDecision::Reject), Some(at)) if r.refunded.minor_units() == 0 => format!(
            "rejected by {by} on {}{why}; nothing was left to refund",
            when(at)
        ),
        (Some(ReviewDecision::Reject), Some(at)) => format!(
            "rejected by {by} on {}{why}; {} refunded in all",
            when(at),
            r.refunded
        ),
        (Some(ReviewDecision::Reject), None) => {
            format!("rejection started by {by}, refund pending{why}")
        }
        _ => "held for review".to_string(),
    };
    format!(
        "{}: {what}: {state}. Reasons: {}.",
        when(r.opened_at),
        reasons.join("; ")
    )
}

#[derive(Template)]
#[template(path = "desk/reviews.html")]
struct QueuePage {
    desk: Desk,
    reviews: Vec<ReviewRow>,
    open: i64,
    /// More are open than shown.
    more: bool,
}

async fn queue(State(app): State<Billpay>, axum::Extension(s): S) -> Response {
    let Some(staff) = signed_in(&s) else {
        return see_other("/desk/signin");
    };
    match app.desk_review_queue(&staff).await {
        Ok(q) => html(
            StatusCode::OK,
            &QueuePage {
                desk: Desk::of(&s),
                more: q.open > i64::try_from(q.reviews.len()).unwrap_or(i64::MAX),
                reviews: q.reviews.iter().map(row).collect(),
                open: q.open,
            },
        ),
        Err(e) => service_error(&s, e),
    }
}

#[derive(Deserialize)]
struct DecideForm {
    #[serde(default)]
    reason: String,
}

async fn decide(
    app: Billpay,
    s: billpay_services::staff::StaffSession,
    payment: String,
    decision: ReviewDecision,
    form: DecideForm,
) -> Response {
    let Some(staff) = signed_in(&s) else {
        return see_other("/desk/signin");
    };
    match app
        .desk_decide_review(&staff, &payment, decision, &form.reason)
        .await
    {
        Ok(_) => see_other("/desk/reviews"),
        Err(e) => service_error(&s, e),
    }
}

async fn approve(
    State(app): State<Billpay>,
    axum::Extension(s): S,
    Path(payment): Path<String>,
    Form(f): Form<DecideForm>,
) -> Response {
    decide(app, s, payment, ReviewDecision::Approve, f).await
}

async fn reject(
    State(app): State<Billpay>,
    axum::Extension(s): S,
    Path(payment): Path<String>,
    Form(f): Form<DecideForm>,
) -> Response {
    decide(app, s, payment, ReviewDecision::Reject, f).await
}

//! Turns an outbox row (kind + JSON payload) into the email a customer reads: a subject, a
//! plain-text body and an HTML alternative with the same words.
//!
//! Templates are plain Rust, compiled into the binary: each kind builds a [`Notice`] (heading,
//! paragraphs, a few labelled facts, an optional link), and one layout writes it as text and
//! as HTML, so the two bodies cannot drift and every value is HTML-escaped in one place.
//! Payloads carry only what is safe to show (amounts already formatted from integer minor
//! units by `Money`, confirmation numbers, a card or bank account as brand and last four); as
//! a second line of defence every rendered body passes through the card-number mask.

use serde::Deserialize;

use crate::BillerProfile;

/// One email, ready to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderedEmail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Why a row cannot be turned into an email. Retrying cannot help: the row is failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("no email template for outbox kind \"{0}\"")]
    UnknownKind(String),
    #[error("the {kind} payload is not what its template needs: {reason}")]
    Payload { kind: String, reason: String },
}

/// Every kind this renderer knows, for tests and the operator's documentation.
pub const KINDS: &[&str] = &[
    "email.receipt",
    "email.autopay_upcoming",
    "email.autopay_over_maximum",
    "email.autopay_paid",
    "email.autopay_failed",
    "email.scheduled_paid",
    "email.scheduled_failed",
    "email.past_due",
    "email.disconnect_notice",
    "email.service_suspended",
    "email.service_restored",
    "email.arrangement_broken",
    "email.payment_returned",
    "email.reminder",
    "email.refund",
    "email.signin_code",
    "email.portal_enrolled",
    "email.signin_method_changed",
    "email.autopay_enrolled",
    "email.password_reset",
    "email.chat_transcript",
];

/// What the renderer needs besides the row: who the biller is, and the public address that
/// relative links (`/pay`) are made absolute against.
#[derive(Clone, Debug)]
pub struct RenderContext<'a> {
    pub biller: &'a BillerProfile,
    pub public_url: Option<&'a str>,
}

/// A message in a channel-free shape: the one layout below writes it as text and HTML.
#[derive(Debug, Default)]
struct Notice {
    subject: String,
    heading: String,
    paragraphs: Vec<String>,
    facts: Vec<(&'static str, String)>,
    link: Option<(String, String)>,
}

fn parse<T: for<'de> Deserialize<'de>>(kind: &str, payload: &str) -> Result<T, RenderError> {
    serde_json::from_str(payload).map_err(|e| RenderError::Payload {
        kind: kind.to_string(),
        // serde names the field and position; it never quotes the payload.
        reason: billpay_domain::mask_card_numbers(&e.to_string()).into_owned(),
    })
}

/// A `YYYY-MM-DD` date in words ("December 15, 2026"); anything else is shown as given.
fn long_date(d: &str) -> String {
    d.parse::<jiff::civil::Date>()
        .map(|d| d.strftime("%B %-d, %Y").to_string())
        .unwrap_or_else(|_| d.to_string())
}

#[derive(Deserialize)]
struct ReceiptPayload {
    confirmation_number: String,
    account: String,
    amount_minor: i64,
    currency: String,
    fee: Option<String>,
    method: String,
    channel: String,
    status: String,
    paid_at: String,
    note: Option<String>,
}

#[derive(Deserialize)]
struct Upcoming {
    amount: String,
    date: String,
}

#[derive(Deserialize)]
struct OverMaximum {
    due: String,
    maximum: String,
}

#[derive(Deserialize)]
struct Paid {
    amount: String,
    confirmation_number: String,
}

#[derive(Deserialize)]
struct Failed {
    amount: Option<String>,
    reason: String,
    next_step: String,
    fix_url: Option<String>,
    next_attempt: Option<String>,
}

#[derive(Deserialize)]
struct PastDue {
    unpaid: String,
    late_fee: String,
    due_date: String,
}

#[derive(Deserialize)]
struct Disconnect {
    unpaid: String,
    suspension_date: String,
}

#[derive(Deserialize)]
struct Suspended {
    unpaid: String,
}

#[derive(Deserialize)]
struct Message {
    message: String,
}

#[derive(Deserialize)]
struct Returned {
    confirmation_number: String,
    amount: String,
    return_code: String,
    message: String,
    next_step: String,
    returned_payment_fee: Option<String>,
    #[serde(default)]
    saved_method_disabled: bool,
    #[serde(default)]
    autopay_stopped_if_enrolled: bool,
}

#[derive(Deserialize)]
struct RefundPayload {
    confirmation_number: String,
    amount_minor: i64,
    currency: String,
    payment_amount_minor: i64,
    refunded_minor: i64,
    method: String,
}

#[derive(Deserialize)]
struct SigninCode {
    code: String,
    minutes: i64,
}

#[derive(Deserialize)]
struct AutopayEnrolled {
    method: String,
    terms: String,
}

#[derive(Deserialize)]
struct ResetLink {
    url: String,
    minutes: i64,
}

#[derive(Deserialize)]
struct Enrolled {
    email: String,
}

#[derive(Deserialize)]
struct SigninMethod {
    /// "an authenticator app", "a text message to your phone ending in 34", "an email".
    method: String,
}

#[derive(Deserialize)]
struct Reminder {
    what: String,
    message: String,
}

#[derive(Deserialize)]
struct Transcript {
    name: String,
    started: String,
    lines: Vec<TranscriptLine>,
}

#[derive(Deserialize)]
struct TranscriptLine {
    at: String,
    who: String,
    text: String,
}

/// Renders one outbox row.
pub fn render(
    kind: &str,
    payload_json: &str,
    ctx: &RenderContext<'_>,
) -> Result<RenderedEmail, RenderError> {
    let biller = &ctx.biller.name;
    let phone = &ctx.biller.support_phone;
    let link = |url: Option<String>, label: &str| -> Option<(String, String)> {
        absolute(url.as_deref()?, ctx.public_url).map(|u| (label.to_string(), u))
    };
    let n = match kind {
        "email.receipt" => {
            let p: ReceiptPayload = parse(kind, payload_json)?;
            let currency =
                billpay_domain::Currency::parse(&p.currency).map_err(|e| RenderError::Payload {
                    kind: kind.into(),
                    reason: e.to_string(),
                })?;
            let amount = billpay_domain::Money::new(p.amount_minor, currency).format();
            let pending = p.status == "processing";
            let mut facts = vec![
                ("Confirmation number", p.confirmation_number.clone()),
                ("Amount", amount.clone()),
                ("Account", p.account),
                ("Paid with", p.method),
                ("Paid", format!("{}, {}", p.channel, p.paid_at)),
            ];
            if let Some(fee) = p.fee {
                facts.push(("Convenience fee", fee));
            }
            let mut paragraphs = vec![if pending {
                format!(
                    "We received your bank payment of {amount}. Keep this email as your receipt."
                )
            } else {
                format!(
                    "Thank you. We received your payment of {amount}. Keep this email as your receipt."
                )
            }];
            paragraphs.extend(p.note);
            Notice {
                subject: format!(
                    "{biller}: payment received, confirmation {}",
                    p.confirmation_number
                ),
                heading: "Payment receipt".into(),
                paragraphs,
                facts,
                link: None,
            }
        }
        "email.autopay_upcoming" => {
            let p: Upcoming = parse(kind, payload_json)?;
            let date = long_date(&p.date);
            Notice {
                subject: format!("{biller}: AutoPay will pay {} on {date}", p.amount),
                heading: "Your AutoPay payment is coming up".into(),
                paragraphs: vec![
                    format!(
                        "AutoPay will pay {} from your saved payment method on {date}. You do not need to do anything.",
                        p.amount
                    ),
                    format!("To change or stop this payment, call {phone} before then."),
                ],
                facts: vec![("Amount", p.amount), ("Date", date)],
                link: None,
            }
        }
        "email.autopay_over_maximum" => {
            let p: OverMaximum = parse(kind, payload_json)?;
            Notice {
                subject: format!("{biller}: AutoPay did not pay your bill"),
                heading: "Your bill is more than your AutoPay maximum".into(),
                paragraphs: vec![format!(
                    "Your bill of {} is more than your AutoPay maximum of {}, so AutoPay did not pay it. Please pay it another way before the due date.",
                    p.due, p.maximum
                )],
                facts: vec![("Amount due", p.due), ("AutoPay maximum", p.maximum)],
                link: None,
            }
        }
        "email.autopay_paid" | "email.scheduled_paid" => {
            let p: Paid = parse(kind, payload_json)?;
            let what = if kind == "email.autopay_paid" {
                "AutoPay"
            } else {
                "Your scheduled payment"
            };
            Notice {
                subject: format!(
                    "{biller}: {what} paid {}, confirmation {}",
                    p.amount, p.confirmation_number
                ),
                heading: format!("{what} made a payment"),
                paragraphs: vec![format!(
                    "{what} paid {} on your account. Keep this email as your receipt.",
                    p.amount
                )],
                facts: vec![
                    ("Confirmation number", p.confirmation_number),
                    ("Amount", p.amount),
                ],
                link: None,
            }
        }
        "email.autopay_failed" | "email.scheduled_failed" => {
            let p: Failed = parse(kind, payload_json)?;
            let what = if kind == "email.autopay_failed" {
                "AutoPay payment"
            } else {
                "scheduled payment"
            };
            let mut paragraphs = vec![match &p.amount {
                Some(a) => format!("Your {what} of {a} did not go through. {}", p.reason),
                None => format!("Your {what} did not go through. {}", p.reason),
            }];
            paragraphs.push(p.next_step);
            if let Some(d) = &p.next_attempt {
                paragraphs.push(format!("We will try again on {}.", long_date(d)));
            }
            let mut facts = Vec::new();
            if let Some(a) = p.amount {
                facts.push(("Amount", a));
            }
            Notice {
                subject: format!("{biller}: your {what} did not go through"),
                heading: format!("Your {what} did not go through"),
                paragraphs,
                facts,
                link: link(p.fix_url, "Update your payment method"),
            }
        }
        "email.past_due" => {
            let p: PastDue = parse(kind, payload_json)?;
            let due = long_date(&p.due_date);
            Notice {
                subject: format!("{biller}: your bill is past due"),
                heading: "Your bill is past due".into(),
                paragraphs: vec![
                    format!(
                        "Your bill due {due} is not paid yet: {} is past due, and a late fee of {} was added.",
                        p.unpaid, p.late_fee
                    ),
                    format!("Pay now, or call {phone} to ask about a payment arrangement."),
                ],
                facts: vec![
                    ("Past due", p.unpaid),
                    ("Late fee", p.late_fee),
                    ("Was due", due),
                ],
                link: None,
            }
        }
        "email.disconnect_notice" => {
            let p: Disconnect = parse(kind, payload_json)?;
            let date = long_date(&p.suspension_date);
            Notice {
                subject: format!("{biller}: service will be suspended on {date} unless paid"),
                heading: "Notice of service suspension".into(),
                paragraphs: vec![
                    format!(
                        "Your service will be suspended on {date} unless {} is paid before then.",
                        p.unpaid
                    ),
                    format!(
                        "If you cannot pay in full, call {phone}: we can set up a payment arrangement or tell you about assistance programs."
                    ),
                ],
                facts: vec![("Amount to pay", p.unpaid), ("Suspension date", date)],
                link: None,
            }
        }
        "email.service_suspended" => {
            let p: Suspended = parse(kind, payload_json)?;
            Notice {
                subject: format!("{biller}: your service is suspended"),
                heading: "Your service is suspended".into(),
                paragraphs: vec![
                    format!(
                        "Your service is suspended because {} is past due.",
                        p.unpaid
                    ),
                    format!(
                        "It is restored as soon as the past-due amount is paid. Call {phone} to pay or for help."
                    ),
                ],
                facts: vec![("Past due", p.unpaid)],
                link: None,
            }
        }
        "email.signin_code" => {
            let p: SigninCode = parse(kind, payload_json)?;
            Notice {
                subject: format!("{biller}: your sign-in code is {}", p.code),
                heading: "Your sign-in code".into(),
                paragraphs: vec![
                    format!(
                        "Enter this code to finish signing in. It works once, for {} minutes.",
                        p.minutes
                    ),
                    "If you did not try to sign in, someone may know your password: change it, and call us."
                        .into(),
                ],
                facts: vec![("Code", p.code)],
                link: None,
            }
        }
        "email.autopay_enrolled" => {
            let p: AutopayEnrolled = parse(kind, payload_json)?;
            Notice {
                subject: format!("{biller}: AutoPay is on"),
                heading: "AutoPay is on".into(),
                paragraphs: vec![
                    "You turned on AutoPay online. These are the terms you accepted:".into(),
                    p.terms,
                ],
                facts: vec![("Pays from", p.method)],
                link: None,
            }
        }
        "email.chat_transcript" => {
            let p: Transcript = parse(kind, payload_json)?;
            let first = p.name.split_whitespace().next().unwrap_or("").to_string();
            let mut paragraphs = vec![format!(
                "Hello {first}, here is your chat with {biller} from {}, as you asked.",
                p.started
            )];
            paragraphs.extend(
                p.lines
                    .into_iter()
                    .map(|l| format!("{} {}: {}", l.at, l.who, l.text)),
            );
            paragraphs
                .push("Card numbers typed in the chat were hidden before anyone saw them.".into());
            Notice {
                subject: format!("{biller}: your chat transcript"),
                heading: "Your chat transcript".into(),
                paragraphs,
                facts: Vec::new(),
                link: None,
            }
        }
        "email.password_reset" => {
            let p: ResetLink = parse(kind, payload_json)?;
            Notice {
                subject: format!("{biller}: reset your password"),
                heading: "Reset your password".into(),
                paragraphs: vec![
                    format!(
                        "Someone asked to reset the password of your online account. The link works once, for {} minutes.",
                        p.minutes
                    ),
                    "If it was not you, ignore this email: your password stays as it is.".into(),
                ],
                facts: Vec::new(),
                link: link(Some(p.url), "Choose a new password"),
            }
        }
        "email.portal_enrolled" => {
            let p: Enrolled = parse(kind, payload_json)?;
            Notice {
                subject: format!("{biller}: your account now has an online sign-in"),
                heading: "Your online sign-in is ready".into(),
                paragraphs: vec![
                    format!(
                        "An online sign-in was created for your account with the email address {}.",
                        p.email
                    ),
                    "If you did not do this, call us right away.".into(),
                ],
                facts: Vec::new(),
                link: None,
            }
        }
        "email.signin_method_changed" => {
            let p: SigninMethod = parse(kind, payload_json)?;
            Notice {
                subject: format!("{biller}: your sign-in was changed"),
                heading: "How you sign in has changed".into(),
                paragraphs: vec![
                    format!(
                        "From now on, after your password you confirm each sign-in with a code from {}.",
                        p.method
                    ),
                    "If you did not make this change, call us right away: someone may know your password."
                        .into(),
                ],
                facts: Vec::new(),
                link: None,
            }
        }
        "email.service_restored" => {
            let p: Message = parse(kind, payload_json)?;
            Notice {
                subject: format!("{biller}: your service is being restored"),
                heading: "Your service is being restored".into(),
                paragraphs: vec![p.message],
                facts: Vec::new(),
                link: None,
            }
        }
        "email.arrangement_broken" => {
            let p: Message = parse(kind, payload_json)?;
            Notice {
                subject: format!("{biller}: your payment arrangement has ended"),
                heading: "Your payment arrangement has ended".into(),
                paragraphs: vec![
                    p.message,
                    format!("Call {phone} to talk about what you can pay."),
                ],
                facts: Vec::new(),
                link: None,
            }
        }
        "email.payment_returned" => {
            let p: Returned = parse(kind, payload_json)?;
            let mut paragraphs = vec![
                format!(
                    "Your bank returned your payment of {} (confirmation {}), so it has been taken off your account. {}",
                    p.amount, p.confirmation_number, p.message
                ),
                p.next_step,
            ];
            if p.saved_method_disabled {
                paragraphs.push(
                    "We stopped using this bank account for future payments. If you use AutoPay with it, AutoPay is stopped too: enroll again with another payment method.".into(),
                );
            } else if p.autopay_stopped_if_enrolled {
                paragraphs
                    .push("If you use AutoPay with this bank account, AutoPay is stopped.".into());
            }
            let mut facts = vec![
                ("Confirmation number", p.confirmation_number),
                ("Amount", p.amount),
                ("Bank return code", p.return_code),
            ];
            if let Some(fee) = p.returned_payment_fee {
                paragraphs.push(format!(
                    "A returned-payment fee of {fee} was added to your account."
                ));
                facts.push(("Returned-payment fee", fee));
            }
            Notice {
                subject: format!("{biller}: your bank returned your payment"),
                heading: "Your payment was returned".into(),
                paragraphs,
                facts,
                link: None,
            }
        }
        "email.refund" => {
            let p: RefundPayload = parse(kind, payload_json)?;
            let currency =
                billpay_domain::Currency::parse(&p.currency).map_err(|e| RenderError::Payload {
                    kind: kind.into(),
                    reason: e.to_string(),
                })?;
            let money = |minor| billpay_domain::Money::new(minor, currency).format();
            let amount = money(p.amount_minor);
            let mut facts = vec![
                ("Refund", amount.clone()),
                ("Refunded to", p.method.clone()),
                ("Payment confirmation number", p.confirmation_number.clone()),
                ("Payment amount", money(p.payment_amount_minor)),
            ];
            if p.refunded_minor != p.amount_minor {
                facts.push(("Refunded so far", money(p.refunded_minor)));
            }
            Notice {
                subject: format!("{biller}: we refunded {amount}"),
                heading: "Your refund".into(),
                paragraphs: vec![
                    format!(
                        "We refunded {amount} of your payment {} to your {}.",
                        p.confirmation_number, p.method
                    ),
                    "Depending on your bank, it can take 5 to 10 business days to show on your statement.".into(),
                ],
                facts,
                link: None,
            }
        }
        "email.reminder" => {
            let p: Reminder = parse(kind, payload_json)?;
            let (subject, heading) = match p.what.as_str() {
                "ready" => ("your bill is ready", "Your bill is ready"),
                "due_soon" => ("your bill is due soon", "Your bill is due soon"),
                "past_due" => ("your payment is past due", "Your payment is past due"),
                _ => ("a reminder about your bill", "A reminder about your bill"),
            };
            Notice {
                subject: format!("{biller}: {subject}"),
                heading: heading.into(),
                paragraphs: vec![p.message],
                facts: Vec::new(),
                link: None,
            }
        }
        other => return Err(RenderError::UnknownKind(other.to_string())),
    };
    Ok(layout(n, ctx.biller))
}

/// An absolute link: as given when it is http(s), else joined to the public URL; None when
/// there is no public URL to join a relative one to (a relative link in an email goes nowhere).
fn absolute(url: &str, public: Option<&str>) -> Option<String> {
    if url.starts_with("https://") || url.starts_with("http://") {
        return Some(url.to_string());
    }
    let base = public?.trim_end_matches('/');
    Some(format!("{base}/{}", url.trim_start_matches('/')))
}

/// Escapes `&`, `<`, `>`, `"` and `'` for HTML and XML text and attribute values (also used
/// by the desk's SVG charts).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The one layout: the same words as text and as HTML, with the biller's name and phone.
fn layout(n: Notice, biller: &BillerProfile) -> RenderedEmail {
    let footer = format!(
        "Questions? Call {} at {}.",
        biller.name, biller.support_phone
    );
    let auto = "This is an automated message about your account. We will never ask for your full card or bank account number by email.";

    let mut text = format!("{}\n{}\n\n", biller.name, n.heading);
    for p in &n.paragraphs {
        text.push_str(p);
        text.push_str("\n\n");
    }
    if !n.facts.is_empty() {
        for (label, value) in &n.facts {
            text.push_str(&format!("  {label}: {value}\n"));
        }
        text.push('\n');
    }
    if let Some((label, url)) = &n.link {
        text.push_str(&format!("{label}: {url}\n\n"));
    }
    text.push_str(&format!("{footer}\n\n-- \n{auto}\n"));

    let mut html = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">",
    );
    html.push_str(&format!("<title>{}</title></head>\n", escape(&n.subject)));
    html.push_str("<body style=\"font-family:Arial,Helvetica,sans-serif;color:#1a1a1a;line-height:1.5;max-width:600px;margin:0 auto;padding:16px\">\n");
    html.push_str(&format!(
        "<p style=\"font-size:14px;color:#555\">{}</p>\n<h1 style=\"font-size:22px\">{}</h1>\n",
        escape(&biller.name),
        escape(&n.heading)
    ));
    for p in &n.paragraphs {
        html.push_str(&format!("<p>{}</p>\n", escape(p)));
    }
    if !n.facts.is_empty() {
        html.push_str(
            "<table role=\"presentation\" style=\"border-collapse:collapse;margin:8px 0 16px\">\n",
        );
        for (label, value) in &n.facts {
            html.push_str(&format!(
                "<tr><th scope=\"row\" style=\"text-align:left;padding:4px 16px 4px 0;font-weight:normal;color:#555\">{}</th><td style=\"padding:4px 0;font-weight:bold\">{}</td></tr>\n",
                escape(label),
                escape(value)
            ));
        }
        html.push_str("</table>\n");
    }
    if let Some((label, url)) = &n.link {
        html.push_str(&format!(
            "<p><a href=\"{}\" style=\"color:#0b57d0\">{}</a></p>\n",
            escape(url),
            escape(label)
        ));
    }
    html.push_str(&format!(
        "<p>{}</p>\n<hr style=\"border:none;border-top:1px solid #ddd\">\n<p style=\"font-size:12px;color:#555\">{}</p>\n</body>\n</html>\n",
        escape(&footer),
        escape(auto)
    ));
    let mask = |s: String| billpay_domain::mask_card_numbers(&s).into_owned();
    RenderedEmail {
        subject: mask(n.subject),
        text: mask(text),
        html: mask(html),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn biller() -> BillerProfile {
        BillerProfile {
            name: "Riverbend Utilities".into(),
            support_phone: "1-800-555-0199".into(),
        }
    }

    /// One realistic payload per kind, as the services write them.
    fn samples() -> Vec<(&'static str, &'static str, serde_json::Value)> {
        use serde_json::json;
        vec![
            (
                "receipt_card",
                "email.receipt",
                json!({"biller": "Riverbend Utilities", "support_phone": "1-800-555-0199", "payment_id": "pay_01", "confirmation_number": "4821-7730-5", "account": "****6789", "amount": "$125.40", "amount_minor": 12540, "fee": null, "currency": "USD", "method": "Visa ending in 4242", "channel": "online", "status": "succeeded", "paid_at": "December 1, 2026 at 9:15 AM EST", "timezone": "America/New_York", "note": null}),
            ),
            (
                "receipt_bank_with_fee",
                "email.receipt",
                json!({"biller": "Riverbend Utilities", "support_phone": "1-800-555-0199", "payment_id": "pay_02", "confirmation_number": "4821-7731-3", "account": "****6789", "amount": "$80.00", "amount_minor": 8000, "fee": "$1.50", "currency": "USD", "method": "checking account ending in 6789", "channel": "by phone", "status": "processing", "paid_at": "December 1, 2026 at 9:15 AM EST", "timezone": "America/New_York", "note": "Bank payments are pending until your bank settles them, usually 1 to 3 business days."}),
            ),
            (
                "autopay_upcoming",
                "email.autopay_upcoming",
                json!({"amount": "$125.40", "date": "2026-12-15"}),
            ),
            (
                "autopay_over_maximum",
                "email.autopay_over_maximum",
                json!({"due": "$412.00", "maximum": "$300.00", "message": "..."}),
            ),
            (
                "autopay_paid",
                "email.autopay_paid",
                json!({"payment_id": "pay_03", "amount": "$125.40", "confirmation_number": "4821-7732-1"}),
            ),
            (
                "autopay_failed_retry",
                "email.autopay_failed",
                json!({"payment_id": "pay_04", "amount": "$125.40", "reason": "Your card was declined.", "next_step": "Use another card or call your bank.", "fix_url": "/pay", "next_attempt": "2026-12-18"}),
            ),
            (
                "autopay_failed_method_gone",
                "email.autopay_failed",
                json!({"statement_id": "st_1", "reason": "the saved payment method was deleted", "next_step": "Update your AutoPay payment method, or pay this bill another way.", "fix_url": "https://pay.example.com/autopay"}),
            ),
            (
                "scheduled_paid",
                "email.scheduled_paid",
                json!({"payment_id": "pay_05", "amount": "$50.00", "confirmation_number": "4821-7733-9"}),
            ),
            (
                "scheduled_failed",
                "email.scheduled_failed",
                json!({"payment_id": "pay_06", "amount": "$50.00", "reason": "Your card has expired.", "next_step": "Update the card on your scheduled payment.", "fix_url": "/pay"}),
            ),
            (
                "past_due",
                "email.past_due",
                json!({"unpaid": "$125.40", "late_fee": "$5.00", "due_date": "2026-11-20", "message": "..."}),
            ),
            (
                "disconnect_notice",
                "email.disconnect_notice",
                json!({"unpaid": "$130.40", "suspension_date": "2026-12-22", "message": "..."}),
            ),
            (
                "service_suspended",
                "email.service_suspended",
                json!({"unpaid": "$130.40", "message": "..."}),
            ),
            (
                "service_restored",
                "email.service_restored",
                json!({"message": "Thank you for your payment. Service is being restored."}),
            ),
            (
                "arrangement_broken",
                "email.arrangement_broken",
                json!({"message": "The installment due 2026-12-01 was not paid, so your payment arrangement has ended and collections resume."}),
            ),
            (
                "payment_returned",
                "email.payment_returned",
                json!({"payment_id": "pay_07", "confirmation_number": "4821-7734-7", "amount": "$80.00", "return_code": "R01", "message": "There was not enough money in the account.", "next_step": "Make sure the money is there, then pay again.", "returned_payment_fee": "$25.00"}),
            ),
            (
                "payment_returned_account_closed",
                "email.payment_returned",
                json!({"payment_id": "pay_08", "confirmation_number": "4821-7735-4", "amount": "$80.00", "return_code": "R02", "message": "The bank account is closed.", "next_step": "Pay with another account.", "saved_method_disabled": true, "autopay_stopped_if_enrolled": true}),
            ),
            (
                "refund_partial",
                "email.refund",
                json!({"refund_id": "re_1", "payment_id": "pay_01", "confirmation_number": "4821-7730-5", "amount_minor": 2540, "currency": "USD", "payment_amount_minor": 12540, "refunded_minor": 2540, "method": "Visa ending in 4242"}),
            ),
            (
                "refund_second_part",
                "email.refund",
                json!({"refund_id": "re_2", "payment_id": "pay_01", "confirmation_number": "4821-7730-5", "amount_minor": 10000, "currency": "USD", "payment_amount_minor": 12540, "refunded_minor": 12540, "method": "Visa ending in 4242"}),
            ),
            (
                "signin_code",
                "email.signin_code",
                json!({"code": "493027", "minutes": 10}),
            ),
            (
                "autopay_enrolled",
                "email.autopay_enrolled",
                json!({"method": "Visa ending in 4242", "terms": "You authorize Riverbend Utilities to make a recurring charge to the card ending in 4242 for the amount of each bill, on each due date, until you cancel AutoPay."}),
            ),
            (
                "chat_transcript",
                "email.chat_transcript",
                json!({"name": "Pat Payer", "started": "December 4, 2026", "lines": [
                    {"at": "9:02 AM", "who": "Assistant", "text": "Hello Pat, I am Riverbend Utilities's virtual assistant."},
                    {"at": "9:03 AM", "who": "You", "text": "my card ************4242 was declined"},
                    {"at": "9:05 AM", "who": "Ann", "text": "Your bank declined the card, so nothing was charged."}
                ]}),
            ),
            (
                "password_reset",
                "email.password_reset",
                json!({"url": "https://pay.riverbend.example/reset/rst_01.3f9a0c", "minutes": 30}),
            ),
            (
                "portal_enrolled",
                "email.portal_enrolled",
                json!({"email": "grace@example.com"}),
            ),
            (
                "signin_method_changed",
                "email.signin_method_changed",
                json!({"method": "an authenticator app"}),
            ),
            (
                "reminder_due_soon",
                "email.reminder",
                json!({"what": "due_soon", "message": "Reminder: $125.40 is due 2026-12-15. Pay by phone at 1-800-555-0199.", "date": "2026-12-12"}),
            ),
        ]
    }

    #[test]
    fn every_kind_renders_and_matches_its_snapshot() {
        let b = biller();
        let ctx = RenderContext {
            biller: &b,
            public_url: Some("https://pay.riverbend.example"),
        };
        let mut seen = std::collections::BTreeSet::new();
        for (name, kind, payload) in samples() {
            let e = render(kind, &payload.to_string(), &ctx)
                .unwrap_or_else(|err| panic!("{name}: {err}"));
            assert!(e.text.contains("1-800-555-0199"), "{name}: support phone");
            assert!(e.subject.contains("Riverbend Utilities"), "{name}: biller");
            assert!(!e.subject.contains('\n'), "{name}: one-line subject");
            seen.insert(kind);
            insta::assert_snapshot!(
                name,
                format!(
                    "Subject: {}\n\n{}\n=== html ===\n{}",
                    e.subject, e.text, e.html
                )
            );
        }
        let all: std::collections::BTreeSet<_> = KINDS.iter().copied().collect();
        assert_eq!(seen, all, "a sample for every kind");
    }

    #[test]
    fn receipt_amount_comes_from_minor_units() {
        let b = biller();
        let ctx = RenderContext {
            biller: &b,
            public_url: None,
        };
        let p = serde_json::json!({"confirmation_number": "1", "account": "****1", "amount": "ignored", "amount_minor": 123_456_789, "currency": "USD", "method": "Visa ending in 4242", "channel": "online", "status": "succeeded", "paid_at": "now"});
        let e = render("email.receipt", &p.to_string(), &ctx).expect("renders");
        assert!(e.text.contains("$1,234,567.89"), "{}", e.text);
        assert!(!e.text.contains("ignored"));
    }

    #[test]
    fn unknown_kinds_and_bad_payloads_are_errors_not_panics() {
        let b = biller();
        let ctx = RenderContext {
            biller: &b,
            public_url: None,
        };
        assert_eq!(
            render("email.birthday", "{}", &ctx),
            Err(RenderError::UnknownKind("email.birthday".into()))
        );
        assert!(matches!(
            render("email.autopay_paid", "{\"amount\": 5}", &ctx),
            Err(RenderError::Payload { .. })
        ));
        assert!(matches!(
            render("email.receipt", "not json", &ctx),
            Err(RenderError::Payload { .. })
        ));
    }

    #[test]
    fn values_are_escaped_in_html_and_card_numbers_masked() {
        let b = BillerProfile {
            name: "A & B <Power>".into(),
            support_phone: "555".into(),
        };
        let ctx = RenderContext {
            biller: &b,
            public_url: None,
        };
        let p = serde_json::json!({"message": "<script>x</script> card 4242 4242 4242 4242"});
        let e = render("email.service_restored", &p.to_string(), &ctx).expect("renders");
        assert!(e.html.contains("A &amp; B &lt;Power&gt;"));
        assert!(!e.html.contains("<script>"));
        for body in [&e.text, &e.html] {
            assert!(!body.contains("4242 4242 4242 4242"), "{body}");
        }
    }

    #[test]
    fn relative_links_need_a_public_url() {
        assert_eq!(absolute("/pay", None), None);
        assert_eq!(
            absolute("/pay", Some("https://x.example/")),
            Some("https://x.example/pay".into())
        );
        assert_eq!(
            absolute("https://y.example/a", None),
            Some("https://y.example/a".into())
        );
    }
}

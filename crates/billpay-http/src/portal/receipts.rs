//! Receipts: a printable page and a PDF, for payments this session may see. Both show the
//! method as brand and last four, never more.

use askama::Template;
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use billpay_services::Billpay;
use billpay_services::portal::PortalSession;
use billpay_services::receipts::Receipt;
use pdf_writer::{Content, Name, Pdf, Rect, Ref, Str};

use super::{Page, html, service_error};

#[derive(Template)]
#[template(path = "portal/receipt.html")]
struct ReceiptPage {
    page: Page,
    r: Receipt,
    status: String,
}

/// How a payment's status reads on a receipt.
fn status_text(status: billpay_domain::PaymentStatus) -> &'static str {
    use billpay_domain::PaymentStatus as S;
    match status {
        S::Succeeded => "Paid",
        S::Processing | S::Pending => "Pending",
        S::Failed => "Not completed",
        S::Canceled => "Canceled",
        S::Returned => "Returned by the bank",
        S::PartiallyRefunded => "Partly refunded",
        S::Refunded => "Refunded",
    }
}

pub async fn receipt_page(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
    Path(payment_id): Path<String>,
) -> Response {
    match app.portal_payment(&session, &payment_id).await {
        Ok(p) => html(
            StatusCode::OK,
            &ReceiptPage {
                page: Page::new(&app, &session),
                status: status_text(p.status).into(),
                r: Receipt::for_payment(&p, &app.config().biller),
            },
        ),
        Err(e) => service_error(&app, &session, e),
    }
}

pub async fn receipt_pdf(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
    Path(payment_id): Path<String>,
) -> Response {
    match app.portal_payment(&session, &payment_id).await {
        Ok(p) => {
            let r = Receipt::for_payment(&p, &app.config().biller);
            let body = receipt_pdf_bytes(
                &r,
                status_text(p.status),
                &app.config().portal.support_hours,
            );
            let disposition = format!(
                "attachment; filename=\"receipt-{}.pdf\"",
                r.confirmation_number
            );
            (
                [
                    (header::CONTENT_TYPE, "application/pdf".to_string()),
                    (header::CONTENT_DISPOSITION, disposition),
                ],
                body,
            )
                .into_response()
        }
        Err(e) => service_error(&app, &session, e),
    }
}

/// Text for a base-14 PDF font (standard encoding): printable ASCII only, the rest as '?'.
fn pdf_text(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| match c {
            ' '..='~' => c as u8,
            '\u{2013}' | '\u{2014}' => b'-',
            _ => b'?',
        })
        .collect()
}

/// One A4 page in Helvetica: the receipt's lines. No fonts embedded, no images.
pub fn receipt_pdf_bytes(r: &Receipt, status: &str, hours: &str) -> Vec<u8> {
    let catalog_id = Ref::new(1);
    let page_tree_id = Ref::new(2);
    let page_id = Ref::new(3);
    let font_id = Ref::new(4);
    let bold_id = Ref::new(5);
    let content_id = Ref::new(6);
    let font = Name(b"F1");
    let bold = Name(b"F2");
    let mut pdf = Pdf::new();
    pdf.catalog(catalog_id).pages(page_tree_id);
    pdf.pages(page_tree_id).kids([page_id]).count(1);
    let mut page = pdf.page(page_id);
    page.media_box(Rect::new(0.0, 0.0, 595.0, 842.0));
    page.parent(page_tree_id);
    page.contents(content_id);
    {
        let mut resources = page.resources();
        let mut fonts = resources.fonts();
        fonts.pair(font, font_id);
        fonts.pair(bold, bold_id);
    }
    drop(page);
    pdf.type1_font(font_id).base_font(Name(b"Helvetica"));
    pdf.type1_font(bold_id).base_font(Name(b"Helvetica-Bold"));

    let mut lines: Vec<(String, String)> = vec![
        ("Confirmation number".into(), r.confirmation_number.clone()),
        ("Amount".into(), r.amount.clone()),
    ];
    if let Some(fee) = &r.fee {
        lines.push(("Convenience fee".into(), fee.clone()));
    }
    lines.extend([
        ("Paid with".into(), r.method.clone()),
        ("Account".into(), r.account.clone()),
        ("Date".into(), r.paid_at.clone()),
        ("Paid".into(), r.channel.clone()),
        ("Status".into(), status.to_string()),
    ]);
    let mut content = Content::new();
    content.begin_text();
    content.set_font(bold, 18.0);
    content.next_line(56.0, 770.0);
    content.show(Str(&pdf_text(&format!("{}: payment receipt", r.biller))));
    content.end_text();
    let mut y = 720.0;
    for (label, value) in &lines {
        content.begin_text();
        content.set_font(bold, 11.0);
        content.next_line(56.0, y);
        content.show(Str(&pdf_text(label)));
        content.end_text();
        content.begin_text();
        content.set_font(font, 11.0);
        content.next_line(220.0, y);
        content.show(Str(&pdf_text(value)));
        content.end_text();
        y -= 22.0;
    }
    let mut footer = Vec::new();
    if let Some(note) = &r.note {
        footer.push(note.clone());
    }
    footer.push(format!("Questions? Call {}, {}.", r.support_phone, hours));
    y -= 12.0;
    for line in footer {
        content.begin_text();
        content.set_font(font, 10.0);
        content.next_line(56.0, y);
        content.show(Str(&pdf_text(&line)));
        content.end_text();
        y -= 16.0;
    }
    pdf.stream(content_id, &content.finish());
    pdf.finish()
}

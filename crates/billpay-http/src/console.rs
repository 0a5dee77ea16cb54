//! The operator console on the desk, for supervisors and administrators: the dashboard
//! (`/desk/dashboard`, charts drawn server-side by [`crate::charts`]) and the reports page
//! (`/desk/reports`: the daily posting file, the aging report and the daily reconciliation,
//! each downloadable as the same bytes `billpay report ...` writes). These routes sit behind
//! the desk's session layer; the services refuse agents. Handlers parse, call one service
//! function, render.

use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use billpay_domain::{Channel, Currency, Money};
use billpay_services::dashboard::{self as dash, Dashboard, DashboardFilter, Series};
use billpay_services::settlement::SettlementReport;
use billpay_services::{Billpay, ServiceError};
use serde::Deserialize;

use crate::charts::{Chart, Kind, Line};
use crate::desk::{Desk, S, html, message, see_other, service_error, signed_in};

/// Minor units as the reconciliation report writes them.
pub fn decimal(minor: i64) -> String {
    billpay_services::settlement::decimal(minor)
}

pub fn routes() -> Router<Billpay> {
    Router::new()
        .route("/desk/dashboard", get(dashboard))
        .route("/desk/reports", get(reports))
        .route("/desk/reports/posting", get(posting_download))
        .route("/desk/reports/aging", get(aging_download))
        .route("/desk/reports/reconciliation", get(reconciliation))
        .merge(crate::settings::routes())
}

/// One chart and its numbers as a table (for screen readers and for copying).
pub struct ChartView {
    pub svg: String,
    pub title: String,
    pub head: Vec<String>,
    pub rows: Vec<(String, Vec<String>)>,
}

fn chart(
    id: &str,
    title: &str,
    desc: &str,
    days: &[String],
    series: &[Series],
    kind: Kind,
    format: &dyn Fn(i64) -> String,
) -> ChartView {
    let lines: Vec<Line<'_>> = series
        .iter()
        .map(|s| Line {
            name: &s.name,
            values: &s.values,
        })
        .collect();
    let svg = Chart {
        id,
        title,
        desc,
        x_labels: days,
        series: &lines,
        kind,
        format,
    }
    .render();
    ChartView {
        svg,
        title: title.into(),
        head: series.iter().map(|s| s.name.clone()).collect(),
        rows: days
            .iter()
            .enumerate()
            .map(|(i, d)| {
                (
                    d.clone(),
                    series
                        .iter()
                        .map(|s| format(s.values.get(i).copied().unwrap_or(0)))
                        .collect(),
                )
            })
            .collect(),
    }
}

/// Key figures shown above the charts: (label, value).
type Figures = Vec<(String, String)>;

#[derive(Template)]
#[template(path = "desk/dashboard.html")]
struct DashboardPage {
    desk: Desk,
    from: String,
    to: String,
    channel: String,
    channels: Vec<String>,
    error: Option<(String, String)>,
    timezone: String,
    payments: Figures,
    charts: Vec<ChartView>,
    declines: Vec<dash::ReasonTotal>,
    returns: Vec<dash::ReasonTotal>,
    /// Refusals by the fraud rules, by rule.
    refusals: Vec<dash::ReasonTotal>,
    phone: Figures,
    chat: Figures,
    accounts: Figures,
    other_currency: i64,
}

#[derive(Deserialize)]
struct DashboardQuery {
    from: Option<String>,
    to: Option<String>,
    channel: Option<String>,
}

fn secs(s: Option<i64>) -> String {
    match s {
        None => "–".into(),
        Some(s) if s < 60 => format!("{s} s"),
        Some(s) => format!("{} min {} s", s / 60, s % 60),
    }
}

fn view(desk: Desk, d: Dashboard) -> DashboardPage {
    let days: Vec<String> = d
        .days
        .iter()
        .map(|d| d.strftime("%m-%d").to_string())
        .collect();
    let currency = d.currency;
    let money = move |v: i64| Money::new(v, currency).format();
    let count = |v: i64| v.to_string();
    let range = format!("{} to {}", d.filter.from, d.filter.to);
    let mut charts = vec![
        chart(
            "payments-by-channel",
            "Payments per day by channel",
            &format!("Payments posted each day, {range}, stacked by channel"),
            &days,
            &d.count_by_channel,
            Kind::StackedBars,
            &count,
        ),
        chart(
            "amounts-by-channel",
            "Amount paid per day by channel",
            &format!(
                "Amount posted each day in {}, {range}, stacked by channel",
                currency.code()
            ),
            &days,
            &d.amount_by_channel,
            Kind::StackedBars,
            &money,
        ),
        chart(
            "payments-by-method",
            "Payments per day by method",
            &format!(
                "Payments posted each day, {range}, stacked by card, bank debit (ach) and check"
            ),
            &days,
            &d.count_by_method,
            Kind::StackedBars,
            &count,
        ),
        chart(
            "amounts-by-method",
            "Amount paid per day by method",
            &format!(
                "Amount posted each day in {}, {range}, stacked by method",
                currency.code()
            ),
            &days,
            &d.amount_by_method,
            Kind::StackedBars,
            &money,
        ),
        chart(
            "declines",
            "Declines per day by reason",
            &format!("Refused payments each day, {range}, one line per decline code"),
            &days,
            &d.declines,
            Kind::Lines,
            &count,
        ),
        chart(
            "returns",
            "Bank-debit returns per day by reason",
            &format!("Returned bank debits each day, {range}, one line per return code"),
            &days,
            &d.returns,
            Kind::Lines,
            &count,
        ),
        chart(
            "fraud",
            "Fraud checks per day",
            &format!(
                "Payment attempts the fraud rules allowed and refused each day, {range}, stacked"
            ),
            &days,
            &d.risk,
            Kind::StackedBars,
            &count,
        ),
    ];
    charts.push(chart(
        "calls",
        "Phone calls per day",
        &format!("Calls to the phone line each day, {range}"),
        &days,
        &[Series {
            name: "calls".into(),
            values: d.ivr.per_day.clone(),
        }],
        Kind::StackedBars,
        &count,
    ));
    charts.push(chart(
        "chats",
        "Chats per day",
        &format!("Chat conversations each day and those handed to a person, {range}"),
        &days,
        &[
            Series {
                name: "conversations".into(),
                values: d.chat.per_day.clone(),
            },
            Series {
                name: "handed to a person".into(),
                values: d.chat.handed_over_per_day.clone(),
            },
        ],
        Kind::Lines,
        &count,
    ));
    let i = &d.ivr;
    let c = &d.chat;
    let a = &d.accounts;
    let of = |n: i64, w: i64| format!("{n} ({})", dash::percent(n, w));
    DashboardPage {
        desk,
        from: d.filter.from.to_string(),
        to: d.filter.to.to_string(),
        channel: d
            .filter
            .channel
            .map(|c| c.as_str())
            .unwrap_or_default()
            .into(),
        channels: Channel::ALL
            .iter()
            .map(|c| c.as_str().to_string())
            .collect(),
        error: None,
        timezone: d.timezone.clone(),
        payments: vec![
            ("Payments posted".into(), d.payments.to_string()),
            ("Amount posted".into(), d.amount.format()),
            (
                "Declined".into(),
                d.decline_totals
                    .iter()
                    .map(|r| r.count)
                    .sum::<i64>()
                    .to_string(),
            ),
            (
                "Returned".into(),
                d.return_totals
                    .iter()
                    .map(|r| r.count)
                    .sum::<i64>()
                    .to_string(),
            ),
        ],
        phone: vec![
            (
                "Calls".into(),
                format!(
                    "{}{}",
                    i.calls,
                    if i.truncated {
                        " (first ones only)"
                    } else {
                        ""
                    }
                ),
            ),
            (
                "Paid without an agent (containment)".into(),
                of(i.contained, i.calls),
            ),
            (
                "Transferred to a representative".into(),
                of(i.transferred, i.calls),
            ),
            ("Abandoned".into(), of(i.abandoned, i.calls)),
            ("Average time to pay".into(), secs(i.average_secs_to_pay)),
        ],
        chat: vec![
            ("Conversations".into(), c.conversations.to_string()),
            (
                "Handed to a person (hand-off rate)".into(),
                of(c.handed_over, c.conversations),
            ),
            ("Answered by a person".into(), c.answered.to_string()),
            (
                "Average wait for a person".into(),
                secs(c.average_wait_secs),
            ),
        ],
        accounts: vec![
            ("Current".into(), of(a.current, a.total)),
            ("Past due".into(), of(a.past_due, a.total)),
            ("Suspended".into(), of(a.suspended, a.total)),
            (
                "In a payment arrangement".into(),
                of(a.in_arrangement, a.total),
            ),
            ("AutoPay enrolled".into(), of(a.autopay, a.total)),
            ("All accounts".into(), a.total.to_string()),
        ],
        charts,
        declines: d.decline_totals,
        returns: d.return_totals,
        refusals: d.refusal_totals,
        other_currency: d.other_currency_payments,
    }
}

async fn dashboard(
    State(app): State<Billpay>,
    axum::Extension(s): S,
    Query(q): Query<DashboardQuery>,
) -> Response {
    let Some(staff) = signed_in(&s) else {
        return see_other("/desk/signin");
    };
    let filter = DashboardFilter::parse(
        q.from.as_deref(),
        q.to.as_deref(),
        q.channel.as_deref(),
        app.today_for_biller(),
    );
    let filter = match filter {
        Ok(f) => f,
        Err(ServiceError::Invalid { param, message }) => {
            // The form again, as sent, with what is wrong; nothing is read for it.
            let page = DashboardPage {
                desk: Desk::of(&s),
                from: q.from.unwrap_or_default(),
                to: q.to.unwrap_or_default(),
                channel: q.channel.unwrap_or_default(),
                channels: Channel::ALL
                    .iter()
                    .map(|c| c.as_str().to_string())
                    .collect(),
                error: Some((param, message)),
                timezone: app.config().ivr.timezone.clone(),
                payments: vec![],
                charts: vec![],
                declines: vec![],
                returns: vec![],
                refusals: vec![],
                phone: vec![],
                chat: vec![],
                accounts: vec![],
                other_currency: 0,
            };
            return html(StatusCode::BAD_REQUEST, &page);
        }
        Err(e) => return service_error(&s, e),
    };
    match app.dashboard(&staff, filter).await {
        Ok(d) => html(StatusCode::OK, &view(Desk::of(&s), d)),
        Err(e) => service_error(&s, e),
    }
}

// ---------------------------------------------------------------- reports

#[derive(Template)]
#[template(path = "desk/reports.html")]
struct ReportsPage {
    desk: Desk,
    date: String,
    posting_count: usize,
    posting_totals: Vec<String>,
    aging_accounts: usize,
    aging_totals: Vec<String>,
}

#[derive(Deserialize)]
struct DayQuery {
    date: Option<String>,
    format: Option<String>,
}

fn day_of(app: &Billpay, param: &str, v: Option<&str>) -> Result<jiff::civil::Date, ServiceError> {
    match v.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(app.today_for_biller()),
        Some(v) => v.parse().map_err(|_| {
            ServiceError::invalid(
                param,
                format!("{param} must be a day as YYYY-MM-DD, like 2026-12-04"),
            )
        }),
    }
}

fn money_text(currency: &str, minor: i64) -> String {
    Currency::parse(currency)
        .map(|c| Money::new(minor, c).format())
        .unwrap_or_else(|_| format!("{minor} {currency}"))
}

/// A report's bytes as a download, named as the API names it.
fn download(name: &str, format: Format, body: String) -> Response {
    let (ext, kind) = match format {
        Format::Csv => ("csv", "text/csv; charset=utf-8"),
        Format::Json => ("json", "application/json"),
        Format::Page => ("txt", "text/plain; charset=utf-8"),
    };
    (
        [
            (header::CONTENT_TYPE, kind.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}.{ext}\""),
            ),
        ],
        body,
    )
        .into_response()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Page,
    Csv,
    Json,
}

fn format_of(v: Option<&str>, json: bool) -> Result<Format, ServiceError> {
    match v {
        None | Some("") => Ok(Format::Page),
        Some("csv") => Ok(Format::Csv),
        Some("json") if json => Ok(Format::Json),
        Some(_) if json => Err(ServiceError::invalid(
            "format",
            "format must be csv or json",
        )),
        Some(_) => Err(ServiceError::invalid("format", "format must be csv")),
    }
}

/// A refusal of the query as a page that says what to change.
fn bad_request(s: &billpay_services::staff::StaffSession, e: ServiceError, back: &str) -> Response {
    match e {
        ServiceError::Invalid { message: m, .. } => {
            message(s, StatusCode::BAD_REQUEST, "Check the request", &m, back)
        }
        other => service_error(s, other),
    }
}

async fn reports(
    State(app): State<Billpay>,
    axum::Extension(s): S,
    Query(q): Query<DayQuery>,
) -> Response {
    let Some(staff) = signed_in(&s) else {
        return see_other("/desk/signin");
    };
    let day = match day_of(&app, "date", q.date.as_deref()) {
        Ok(d) => d,
        Err(e) => return bad_request(&s, e, "/desk/reports"),
    };
    let (posting, aging) = match app.desk_reports(&staff, day).await {
        Ok(r) => r,
        Err(e) => return service_error(&s, e),
    };
    html(
        StatusCode::OK,
        &ReportsPage {
            desk: Desk::of(&s),
            date: day.to_string(),
            posting_count: posting.count,
            posting_totals: posting
                .totals
                .iter()
                .map(|(c, t)| money_text(c, *t))
                .collect(),
            aging_accounts: aging.accounts.len(),
            aging_totals: aging
                .totals
                .iter()
                .map(|l| money_text(&l.currency, l.total))
                .collect(),
        },
    )
}

/// Which of a day's files a download is.
#[derive(Clone, Copy)]
enum DayFile {
    Posting,
    Aging,
}

async fn posting_download(
    State(app): State<Billpay>,
    axum::Extension(s): S,
    Query(q): Query<DayQuery>,
) -> Response {
    day_file(&app, &s, &q, DayFile::Posting).await
}

async fn aging_download(
    State(app): State<Billpay>,
    axum::Extension(s): S,
    Query(q): Query<DayQuery>,
) -> Response {
    day_file(&app, &s, &q, DayFile::Aging).await
}

/// A day's posting file or aging report as CSV (the default) or JSON: the bytes `billpay
/// report posting|aging` writes, named as the API names them.
async fn day_file(
    app: &Billpay,
    s: &billpay_services::staff::StaffSession,
    q: &DayQuery,
    which: DayFile,
) -> Response {
    let Some(staff) = signed_in(s) else {
        return see_other("/desk/signin");
    };
    let parsed = day_of(app, "date", q.date.as_deref())
        .and_then(|d| Ok((d, format_of(q.format.as_deref(), true)?)));
    let (day, format) = match parsed {
        Ok((d, Format::Page)) => (d, Format::Csv),
        Ok(v) => v,
        Err(e) => return bad_request(s, e, "/desk/reports"),
    };
    let json = format == Format::Json;
    let made = match which {
        DayFile::Posting => app.desk_posting_file(&staff, day).await.map(|f| {
            let body = if json { f.to_json() } else { f.to_csv() };
            (format!("payments-{}", f.date), body)
        }),
        DayFile::Aging => app.desk_aging_report(&staff, day).await.map(|r| {
            let body = if json { r.to_json() } else { r.to_csv() };
            (format!("aging-{}", r.as_of), body)
        }),
    };
    match made {
        Ok((name, body)) => download(&name, format, body),
        Err(e) => service_error(s, e),
    }
}

#[derive(Template)]
#[template(path = "desk/reconciliation.html")]
struct ReconciliationPage {
    desk: Desk,
    r: SettlementReport,
}

async fn reconciliation(
    State(app): State<Billpay>,
    axum::Extension(s): S,
    Query(q): Query<DayQuery>,
) -> Response {
    let Some(staff) = signed_in(&s) else {
        return see_other("/desk/signin");
    };
    let parsed = day_of(&app, "date", q.date.as_deref())
        .and_then(|d| Ok((d, format_of(q.format.as_deref(), false)?)));
    let (day, format) = match parsed {
        Ok(v) => v,
        Err(e) => return bad_request(&s, e, "/desk/reports"),
    };
    match app.desk_settlement_report(&staff, day).await {
        Ok(r) if format == Format::Csv => download(
            &format!("reconciliation-{}", r.day),
            Format::Csv,
            r.to_csv(),
        ),
        Ok(r) => html(
            StatusCode::OK,
            &ReconciliationPage {
                desk: Desk::of(&s),
                r,
            },
        ),
        Err(e) => service_error(&s, e),
    }
}

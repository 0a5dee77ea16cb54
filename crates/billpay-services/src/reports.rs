//! Operator reports. The daily payment posting file: every payment, refund and return the
//! ledger posted on one day of the biller's time zone, for the biller's billing system, as CSV
//! or JSON. It is read from the ledger alone, in posting order, so running it twice for a day
//! gives the same bytes, and its total is the day's movement of customer receivables.

use billpay_domain::{Currency, Money};
use billpay_store::reports as q;
use serde::Serialize;

use crate::{Billpay, ServiceError};

/// One line of the posting file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PostingLine {
    /// When the ledger posted it (UTC, RFC 3339).
    pub posted_at: String,
    /// payment, refund or return.
    pub kind: String,
    pub account_number: String,
    /// Minor units; a payment is positive, a refund or return negative.
    pub amount: i64,
    pub currency: String,
    pub confirmation_number: String,
    pub channel: String,
    /// card, ach or check.
    pub method_type: String,
    pub payment_id: String,
    /// The ledger entry: unique per line, a key for de-duplication.
    pub entry_id: String,
}

/// A day's posting file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PostingFile {
    /// The day, in `timezone`.
    pub date: String,
    pub timezone: String,
    pub count: usize,
    /// Totals per currency, minor units.
    pub totals: Vec<(String, i64)>,
    pub lines: Vec<PostingLine>,
}

/// The CSV header of the posting file.
pub const POSTING_CSV_HEADER: &str = "posted_at,kind,account_number,amount,currency,confirmation_number,channel,method_type,payment_id,entry_id";

impl PostingFile {
    /// As CSV: a header, one line per movement, amounts in decimal ("84.10", "-20.00").
    pub fn to_csv(&self) -> String {
        let mut out = String::with_capacity(64 + self.lines.len() * 128);
        out.push_str(POSTING_CSV_HEADER);
        out.push('\n');
        for l in &self.lines {
            let amount = Currency::parse(&l.currency)
                .map(|c| Money::new(l.amount, c).format_plain())
                .unwrap_or_else(|_| l.amount.to_string());
            // Every field is billpay's own (ids, digits, fixed words): no commas or quotes.
            let fields = [
                l.posted_at.as_str(),
                &l.kind,
                &l.account_number,
                &amount,
                &l.currency,
                &l.confirmation_number,
                &l.channel,
                &l.method_type,
                &l.payment_id,
                &l.entry_id,
            ];
            out.push_str(&fields.join(","));
            out.push('\n');
        }
        out
    }

    /// As JSON (amounts in minor units, as the REST API gives them).
    pub fn to_json(&self) -> String {
        let totals: serde_json::Map<String, serde_json::Value> = self
            .totals
            .iter()
            .map(|(c, t)| (c.clone(), serde_json::Value::from(*t)))
            .collect();
        let mut text = serde_json::to_string_pretty(&serde_json::json!({
            "date": self.date,
            "timezone": self.timezone,
            "count": self.count,
            "totals": totals,
            "lines": self.lines,
        }))
        .unwrap_or_default();
        text.push('\n');
        text
    }
}

impl Billpay {
    /// The payments, refunds and returns the ledger posted on `date` in the biller's time zone.
    pub async fn posting_file(&self, date: jiff::civil::Date) -> Result<PostingFile, ServiceError> {
        self.posting_file_with_progress(date, &|_, _| {}).await
    }

    /// [`Billpay::posting_file`], telling `progress` (lines read, lines in all) after
    /// each page of [`POSTING_PAGE`] lines: `billpay report posting` draws a progress bar.
    pub async fn posting_file_with_progress(
        &self,
        date: jiff::civil::Date,
        progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> Result<PostingFile, ServiceError> {
        let tz_name = self.config().ivr.timezone.clone();
        let tz = crate::accounts::tz_named(&tz_name);
        let start =
            billpay_domain::calendar::local_instant(date, jiff::civil::Time::midnight(), &tz);
        let next = date
            .tomorrow()
            .map_err(|_| ServiceError::invalid("date", "the date is out of range"))?;
        let end = billpay_domain::calendar::local_instant(next, jiff::civil::Time::midnight(), &tz);
        let (from, to) = (start.as_microsecond(), end.as_microsecond());
        let mut rows = Vec::new();
        let mut c = self.store.read_conn().await?;
        let all = u64::try_from(q::movements_between(&mut c, from, to).await?).unwrap_or(0);
        progress(0, all);
        let mut after = (from - 1, String::new());
        loop {
            let page =
                q::posting_lines(&mut c, from, to, (after.0, &after.1), POSTING_PAGE).await?;
            let Some(last) = page.last() else { break };
            after = (last.posted_at, last.entry_id.clone());
            let full = page.len() as i64 == POSTING_PAGE;
            rows.extend(page);
            progress((rows.len() as u64).min(all), all);
            if !full {
                break;
            }
        }
        drop(c);
        progress(all, all);
        let mut totals: std::collections::BTreeMap<String, i64> = Default::default();
        let lines: Vec<PostingLine> = rows
            .into_iter()
            .map(|r| {
                *totals.entry(r.currency.clone()).or_default() += r.amount;
                PostingLine {
                    posted_at: crate::clock::from_micros(r.posted_at)
                        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
                        .to_string(),
                    kind: r.kind,
                    account_number: r.account_number,
                    amount: r.amount,
                    currency: r.currency,
                    // As on the receipt: 794-860-4036.
                    confirmation_number: billpay_domain::ConfirmationNumber::parse(
                        &r.confirmation_number,
                    )
                    .map(|c| c.to_string())
                    .unwrap_or(r.confirmation_number),
                    channel: r.channel,
                    method_type: r.method_type,
                    payment_id: r.payment_id,
                    entry_id: r.entry_id,
                }
            })
            .collect();
        Ok(PostingFile {
            date: date.to_string(),
            timezone: tz_name,
            count: lines.len(),
            totals: totals.into_iter().collect(),
            lines,
        })
    }
}

/// One account's line of the aging report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AgingLine {
    pub account_number: String,
    pub name: String,
    pub currency: String,
    pub current: i64,
    pub days_1_30: i64,
    pub days_31_60: i64,
    pub days_61_90: i64,
    pub days_over_90: i64,
    /// Owed in all.
    pub total: i64,
    /// Paid ahead (a credit balance).
    pub credit: i64,
}

impl AgingLine {
    fn new(
        account_number: String,
        name: String,
        currency: String,
        b: &billpay_domain::AgingBuckets,
    ) -> AgingLine {
        AgingLine {
            account_number,
            name,
            currency,
            current: b.current,
            days_1_30: b.days_1_30,
            days_31_60: b.days_31_60,
            days_61_90: b.days_61_90,
            days_over_90: b.days_over_90,
            total: b.total(),
            credit: b.credit,
        }
    }
}

/// What customers owe as of a day, by how long past due: one line per account with a
/// balance, and totals.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AgingReport {
    /// The end of this day (biller's time zone) is the cut-off.
    pub as_of: String,
    pub timezone: String,
    pub accounts: Vec<AgingLine>,
    /// Totals per currency.
    pub totals: Vec<AgingLine>,
}

/// The CSV header of the aging report.
pub const AGING_CSV_HEADER: &str = "account_number,name,currency,current,days_1_30,days_31_60,days_61_90,days_over_90,total,credit";

impl AgingReport {
    /// As CSV, amounts in decimal; the totals close it as lines with account number `TOTAL`.
    pub fn to_csv(&self) -> String {
        let mut out = String::from(AGING_CSV_HEADER);
        out.push('\n');
        for l in self.accounts.iter().chain(&self.totals) {
            let money = |v: i64| {
                Currency::parse(&l.currency)
                    .map(|c| Money::new(v, c).format_plain())
                    .unwrap_or_else(|_| v.to_string())
            };
            // A name is the customer's text: quoted, with quotes doubled (RFC 4180).
            let name = format!("\"{}\"", l.name.replace('"', "\"\""));
            let fields = [
                l.account_number.clone(),
                name,
                l.currency.clone(),
                money(l.current),
                money(l.days_1_30),
                money(l.days_31_60),
                money(l.days_61_90),
                money(l.days_over_90),
                money(l.total),
                money(l.credit),
            ];
            out.push_str(&fields.join(","));
            out.push('\n');
        }
        out
    }

    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }
}

/// Lines one page of the posting file reads at a time.
pub const POSTING_PAGE: i64 = 5_000;

/// Accounts one page of the aging report reads at a time.
pub const AGING_PAGE: i64 = 2_000;

impl Billpay {
    /// Today in the biller's time zone.
    pub fn today_for_biller(&self) -> jiff::civil::Date {
        self.clock
            .now()
            .to_zoned(crate::accounts::tz_named(&self.config().ivr.timezone))
            .date()
    }

    /// Receivables as of the end of `as_of` (biller's time zone), aged by due date: payments
    /// pay the oldest charges first; a statement ages from its due date, any other charge (a
    /// fee) from the day it was posted.
    pub async fn aging_report(
        &self,
        as_of: jiff::civil::Date,
    ) -> Result<AgingReport, ServiceError> {
        self.aging_report_with_progress(as_of, &|_, _| {}).await
    }

    /// [`Billpay::aging_report`], telling `progress` (accounts done, accounts in all) after
    /// each page of [`AGING_PAGE`] accounts: `billpay report aging` draws a progress bar.
    pub async fn aging_report_with_progress(
        &self,
        as_of: jiff::civil::Date,
        progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> Result<AgingReport, ServiceError> {
        let tz_name = self.config().ivr.timezone.clone();
        let tz = crate::accounts::tz_named(&tz_name);
        let next = as_of
            .tomorrow()
            .map_err(|_| ServiceError::invalid("as_of", "the date is out of range"))?;
        let end = billpay_domain::calendar::local_instant(next, jiff::civil::Time::midnight(), &tz);
        let mut accounts = Vec::new();
        let mut totals: std::collections::BTreeMap<String, billpay_domain::AgingBuckets> =
            Default::default();
        let mut c = self.store.read_conn().await?;
        let all = u64::try_from(q::account_count(&mut c).await?).unwrap_or(0);
        let mut done = 0u64;
        let mut after = String::new();
        progress(0, all);
        while let Some(last) = q::account_page_end(&mut c, &after, AGING_PAGE).await? {
            let rows = q::receivable_postings(&mut c, end.as_microsecond(), &after, &last).await?;
            for group in rows.chunk_by(|a, b| a.account_number == b.account_number) {
                let first = &group[0];
                let balance: i64 = group.iter().map(|r| r.amount).sum();
                let charges: Vec<(jiff::civil::Date, i64)> = group
                    .iter()
                    .filter(|r| r.amount > 0)
                    .map(|r| {
                        let due = r
                            .due_date
                            .as_deref()
                            .and_then(|d| d.parse::<jiff::civil::Date>().ok())
                            .unwrap_or_else(|| {
                                crate::clock::from_micros(r.posted_at)
                                    .to_zoned(tz.clone())
                                    .date()
                            });
                        (due, r.amount)
                    })
                    .collect();
                let buckets = billpay_domain::age_balance(balance, &charges, as_of);
                if balance != 0 {
                    totals
                        .entry(first.currency.clone())
                        .or_default()
                        .add(&buckets);
                    accounts.push(AgingLine::new(
                        first.account_number.clone(),
                        first.account_name.clone(),
                        first.currency.clone(),
                        &buckets,
                    ));
                }
            }
            done = (done + AGING_PAGE as u64).min(all);
            progress(done, all);
            after = last;
        }
        drop(c);
        progress(all, all);
        Ok(AgingReport {
            as_of: as_of.to_string(),
            timezone: tz_name,
            accounts,
            totals: totals
                .into_iter()
                .map(|(c, b)| AgingLine::new("TOTAL".into(), String::new(), c, &b))
                .collect(),
        })
    }
}

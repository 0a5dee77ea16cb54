//! Where bills come from: a bulk import of the billing system's statements (CSV or JSON), and,
//! for billers without a billing system, a built-in monthly cycle per account (a plan amount
//! billed on a cycle day, due a number of days later).
//!
//! An import is read and checked whole before anything is written: a bad line refuses the file
//! with its line number. Each statement is keyed by account and statement date, so importing a
//! file again creates nothing new. The monthly cycle is a job per account and month, keyed by
//! both, that queues the next month's when it runs.

use billpay_domain::{AccountNumber, Currency, Money, add_months_anchored, local_instant};
use billpay_store::jobs::{self as jq, JobRow};
use billpay_store::{StoreError, queries};
use jiff::civil::Date;
use serde::Deserialize;

use crate::accounts::NewStatement;
use crate::jobs::{JobError, job};
use crate::{Billpay, ServiceError};

pub const JOB_CYCLE: &str = "billing.cycle";

/// One statement of an import file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatementLine {
    pub line: usize,
    pub account: AccountNumber,
    pub statement_date: Date,
    pub due_date: Date,
    pub amount: Money,
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub created: u64,
    pub already_imported: u64,
    /// (line, reason) of statements refused by the ledger's rules (unknown account, ...).
    pub refused: Vec<(usize, String)>,
}

/// Longest import accepted, in statements.
pub const IMPORT_LINES_MAX: usize = 2_000_000;

fn line_err(line: usize, msg: impl std::fmt::Display) -> ServiceError {
    ServiceError::invalid("file", format!("line {line}: {msg}; nothing was imported"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonStatement {
    account_number: String,
    statement_date: String,
    due_date: String,
    /// Minor units.
    amount_due: i64,
}

fn checked(
    line: usize,
    account: &str,
    statement_date: &str,
    due_date: &str,
    amount: Money,
) -> Result<StatementLine, ServiceError> {
    let account = AccountNumber::parse(account)
        .map_err(|e| line_err(line, format!("account number \"{account}\": {e}")))?;
    let statement_date: Date = statement_date.parse().map_err(|_| {
        line_err(
            line,
            format!("statement_date \"{statement_date}\" is not a date like 2027-01-31"),
        )
    })?;
    let due_date: Date = due_date.parse().map_err(|_| {
        line_err(
            line,
            format!("due_date \"{due_date}\" is not a date like 2027-01-31"),
        )
    })?;
    if due_date < statement_date {
        return Err(line_err(line, "the due date is before the statement date"));
    }
    if !amount.is_positive() {
        return Err(line_err(line, "the amount due must be greater than zero"));
    }
    Ok(StatementLine {
        line,
        account,
        statement_date,
        due_date,
        amount,
    })
}

/// Reads a statements file: CSV with the header
/// `account_number,statement_date,due_date,amount_due` (amount in dollars, "84.10"), or JSON
/// (an array of objects, or one object per line) with `amount_due` in cents.
pub fn parse_statements(text: &str) -> Result<Vec<StatementLine>, ServiceError> {
    let trimmed = text.trim_start();
    let mut out = Vec::new();
    if trimmed.starts_with('[') {
        let rows: Vec<JsonStatement> = serde_json::from_str(text)
            .map_err(|e| line_err(e.line(), format!("not valid JSON: {e}")))?;
        for (i, r) in rows.into_iter().enumerate() {
            out.push(checked(
                i + 1,
                &r.account_number,
                &r.statement_date,
                &r.due_date,
                Money::new(r.amount_due, Currency::USD),
            )?);
        }
    } else if trimmed.starts_with('{') {
        for (i, l) in text.lines().enumerate() {
            if l.trim().is_empty() {
                continue;
            }
            let r: JsonStatement = serde_json::from_str(l)
                .map_err(|e| line_err(i + 1, format!("not a valid statement object: {e}")))?;
            out.push(checked(
                i + 1,
                &r.account_number,
                &r.statement_date,
                &r.due_date,
                Money::new(r.amount_due, Currency::USD),
            )?);
        }
    } else {
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        let header = lines
            .next()
            .map(|(_, h)| h.trim().trim_start_matches('\u{feff}'));
        if header != Some("account_number,statement_date,due_date,amount_due") {
            return Err(line_err(
                1,
                "the header must be account_number,statement_date,due_date,amount_due",
            ));
        }
        for (i, l) in lines {
            let fields: Vec<&str> = l.split(',').map(str::trim).collect();
            let [account, statement_date, due_date, amount] = fields[..] else {
                return Err(line_err(
                    i + 1,
                    format!("expected 4 fields, found {}", fields.len()),
                ));
            };
            let amount = Money::parse(amount, Currency::USD)
                .map_err(|e| line_err(i + 1, format!("amount_due \"{amount}\": {e}")))?;
            out.push(checked(i + 1, account, statement_date, due_date, amount)?);
        }
    }
    if out.len() > IMPORT_LINES_MAX {
        return Err(ServiceError::invalid(
            "file",
            format!("at most {IMPORT_LINES_MAX} statements per file"),
        ));
    }
    Ok(out)
}

impl Billpay {
    /// Creates the statements of a parsed import, `concurrency` at a time, calling `progress`
    /// after each. A statement already there (same account and date) is counted, not doubled.
    pub async fn import_statements(
        &self,
        lines: Vec<StatementLine>,
        concurrency: usize,
        progress: impl Fn() + Send + Sync,
    ) -> Result<ImportReport, ServiceError> {
        use futures::StreamExt;
        let progress = &progress;
        let results: Vec<(usize, Result<(), ServiceError>)> = futures::stream::iter(lines)
            .map(|l| async move {
                let r = self
                    .create_statement(
                        &l.account,
                        NewStatement {
                            statement_date: l.statement_date,
                            due_date: l.due_date,
                            amount_due: l.amount,
                            lines: Vec::new(),
                        },
                    )
                    .await
                    .map(|_| ());
                progress();
                (l.line, r)
            })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        let mut report = ImportReport::default();
        for (line, r) in results {
            match r {
                Ok(()) => report.created += 1,
                Err(ServiceError::Conflict {
                    code: "statement_exists",
                    ..
                }) => report.already_imported += 1,
                Err(e @ (ServiceError::Invalid { .. } | ServiceError::NotFound { .. })) => {
                    report.refused.push((line, e.to_string()))
                }
                Err(e) => return Err(e),
            }
        }
        report.refused.sort();
        Ok(report)
    }

    /// Sets an account's built-in monthly bill: `amount` on `cycle_day` (1–31, the month's last
    /// day when shorter), due `due_days` later. The first bill is on the next cycle day.
    pub async fn set_billing_plan(
        &self,
        number: &AccountNumber,
        amount: Money,
        cycle_day: i8,
        due_days: i64,
    ) -> Result<Date, ServiceError> {
        if !(1..=31).contains(&cycle_day) {
            return Err(ServiceError::invalid(
                "cycle_day",
                "cycle_day must be 1 to 31",
            ));
        }
        if !(1..=60).contains(&due_days) {
            return Err(ServiceError::invalid(
                "due_days",
                "due_days must be 1 to 60",
            ));
        }
        if !amount.is_positive() {
            return Err(ServiceError::invalid(
                "amount",
                "the plan amount must be greater than zero",
            ));
        }
        let account = self.account_row(number).await?;
        let tz = jiff::tz::TimeZone::get(&account.timezone).unwrap_or(jiff::tz::TimeZone::UTC);
        let today = billpay_domain::local_date(self.clock.now(), &tz);
        let this_month = billpay_domain::day_in_month(today.year(), today.month(), cycle_day);
        let first = if this_month >= today {
            this_month
        } else {
            add_months_anchored(this_month, 1, cycle_day)
        };
        let j = cycle_job(
            self,
            &account.id,
            &account.timezone,
            first,
            amount,
            cycle_day,
            due_days,
        );
        self.store
            .write(move |c| Box::pin(async move { jq::schedule(c, &j).await }))
            .await?;
        Ok(first)
    }

    pub(crate) async fn run_billing_cycle(
        &self,
        payload: &serde_json::Value,
    ) -> Result<(), JobError> {
        let account_id = payload["account_id"].as_str().unwrap_or_default();
        let date: Date = payload["date"]
            .as_str()
            .and_then(|d| d.parse().ok())
            .ok_or_else(|| JobError::Fatal("no cycle date".into()))?;
        let amount = payload["amount"].as_i64().unwrap_or(0);
        let cycle_day = payload["cycle_day"]
            .as_i64()
            .and_then(|d| i8::try_from(d).ok())
            .unwrap_or(1);
        let due_days = payload["due_days"].as_i64().unwrap_or(21);
        let account = {
            let mut c = self
                .store
                .read_conn()
                .await
                .map_err(|e| JobError::Retry(e.to_string()))?;
            queries::account_by_id(&mut c, account_id)
                .await
                .map_err(|e| JobError::Retry(e.to_string()))?
                .ok_or_else(|| JobError::Fatal(format!("no account {account_id}")))?
        };
        let number = AccountNumber::parse(&account.account_number)
            .map_err(|e| JobError::Fatal(e.to_string()))?;
        let currency =
            Currency::parse(&account.currency).map_err(|e| JobError::Fatal(e.to_string()))?;
        let due = date
            .checked_add(jiff::Span::new().days(due_days))
            .map_err(|e| JobError::Fatal(e.to_string()))?;
        match self
            .create_statement(
                &number,
                NewStatement {
                    statement_date: date,
                    due_date: due,
                    amount_due: Money::new(amount, currency),
                    lines: Vec::new(),
                },
            )
            .await
        {
            Ok(_)
            | Err(ServiceError::Conflict {
                code: "statement_exists",
                ..
            }) => {}
            Err(e) => return Err(e.into()),
        }
        let next = add_months_anchored(date, 1, cycle_day);
        let j = cycle_job(
            self,
            &account.id,
            &account.timezone,
            next,
            Money::new(amount, currency),
            cycle_day,
            due_days,
        );
        self.store
            .write(move |c| Box::pin(async move { jq::enqueue(c, &j).await }))
            .await
            .map_err(|e: StoreError| JobError::Retry(e.to_string()))?;
        Ok(())
    }
}

fn cycle_job(
    b: &Billpay,
    account_id: &str,
    timezone: &str,
    date: Date,
    amount: Money,
    cycle_day: i8,
    due_days: i64,
) -> JobRow {
    let tz = jiff::tz::TimeZone::get(timezone).unwrap_or(jiff::tz::TimeZone::UTC);
    job(
        b,
        JOB_CYCLE,
        format!("cycle:{account_id}:{date}"),
        serde_json::json!({"account_id": account_id, "date": date.to_string(), "amount": amount.minor_units(), "cycle_day": cycle_day, "due_days": due_days}),
        local_instant(date, jiff::civil::Time::constant(0, 30, 0, 0), &tz).as_microsecond(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_and_json_statements_are_read_and_bad_lines_named() {
        let a = AccountNumber::from_body("12345678").unwrap();
        let csv = format!(
            "account_number,statement_date,due_date,amount_due\n{},2027-01-01,2027-01-21,84.10\n",
            a.as_str()
        );
        let lines = parse_statements(&csv).unwrap();
        assert_eq!(lines[0].amount.minor_units(), 8410);
        let json = format!(
            "[{{\"account_number\":\"{}\",\"statement_date\":\"2027-01-01\",\"due_date\":\"2027-01-21\",\"amount_due\":8410}}]",
            a.as_str()
        );
        let from_json = parse_statements(&json).unwrap();
        assert_eq!(
            (
                from_json[0].line,
                from_json[0].amount,
                from_json[0].due_date
            ),
            (1, lines[0].amount, lines[0].due_date)
        );
        let bad = format!(
            "account_number,statement_date,due_date,amount_due\n{},2027-01-01,2027-01-21,84.10\n{},2027-02-30,2027-03-01,1.00\n",
            a.as_str(),
            a.as_str()
        );
        let e = parse_statements(&bad).unwrap_err().to_string();
        assert!(e.contains("line 3") && e.contains("statement_date"), "{e}");
        let e = parse_statements("account_number,statement_date,due_date,amount_due\n12345670,2027-01-01,2026-12-01,5.00\n").unwrap_err().to_string();
        assert!(e.contains("line 2"), "{e}");
    }
}

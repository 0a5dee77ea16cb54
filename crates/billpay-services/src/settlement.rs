//! The daily settlement report (`billpay reconcile --report DAY`, `billpay report
//! reconciliation`): for one UTC day, the payments billpay took, by processor, state and
//! channel (count and total), compared with the ledger and with what the processor lists for
//! the same day; the NACHA files written that day, each file's control totals against its
//! entries and each entry against the payment or refund that made it, and the bank returns
//! applied; and the lockbox items imported or resolved that day against the payments they were
//! posted as. Every difference is listed for an operator; none is corrected here (the
//! reconciler and webhooks do that, by key).

use std::collections::{HashMap, HashSet};

use billpay_store::queries;

use crate::{Billpay, ServiceError};

/// Most differences listed in one report; the count is always complete.
const DIFFERENCES_SHOWN_MAX: usize = 200;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SummaryLine {
    pub processor: String,
    pub status: String,
    pub channel: String,
    pub count: i64,
    /// Minor units.
    pub total: i64,
}

/// A NACHA file written that day, as its control records say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AchFileLine {
    pub file_name: String,
    pub status: String,
    pub entries: i64,
    /// Minor units.
    pub debit_total: i64,
    pub credit_total: i64,
}

/// The lockbox items of the day in one state (posted, exception, rejected).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockboxLine {
    pub status: String,
    pub count: i64,
    /// Minor units.
    pub total: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SettlementReport {
    pub day: String,
    pub lines: Vec<SummaryLine>,
    /// NACHA files written that day.
    pub ach_files: Vec<AchFileLine>,
    /// Bank returns applied that day.
    pub ach_returns: i64,
    /// Lockbox items imported that day, by state.
    pub lockbox: Vec<LockboxLine>,
    /// Payments still waiting for the processor's word (in doubt, or bank debits unsettled).
    pub in_doubt: i64,
    /// Whether the processor could list its side (the sandbox and Stripe can).
    pub processor_listed: bool,
    pub processor_transactions: usize,
    pub differences: Vec<String>,
    pub difference_count: usize,
}

impl SummaryLine {
    /// The total in decimal, as the report writes it ("150.00").
    pub fn total_text(&self) -> String {
        decimal(self.total)
    }
}

/// Minor units as the report writes them ("150.00", "-3.05").
pub fn decimal(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// The CSV header of the settlement (reconciliation) report.
pub const SETTLEMENT_CSV_HEADER: &str = "line,processor,status,channel,count,total,detail";

impl SettlementReport {
    pub fn ok(&self) -> bool {
        self.difference_count == 0
    }

    fn differ(&mut self, what: String) {
        self.difference_count += 1;
        if self.differences.len() < DIFFERENCES_SHOWN_MAX {
            self.differences.push(what);
        }
    }

    pub fn to_text(&self) -> String {
        let mut s = format!("settlement report for {} (UTC)\n", self.day);
        s.push_str("processor  status              channel  count        total\n");
        for l in &self.lines {
            s.push_str(&format!(
                "{:<10} {:<19} {:<8} {:>5} {:>12}\n",
                l.processor,
                l.status,
                l.channel,
                l.count,
                l.total_text()
            ));
        }
        s.push_str(&format!("awaiting the processor: {}\n", self.in_doubt));
        if self.ach_files.is_empty() {
            s.push_str("NACHA files written: none\n");
        }
        for f in &self.ach_files {
            s.push_str(&format!(
                "NACHA file {} ({}): {} entries, debits {}, credits {}\n",
                f.file_name,
                f.status,
                f.entries,
                decimal(f.debit_total),
                decimal(f.credit_total)
            ));
        }
        s.push_str(&format!("bank returns applied: {}\n", self.ach_returns));
        if self.lockbox.is_empty() {
            s.push_str("lockbox items: none\n");
        }
        for l in &self.lockbox {
            s.push_str(&format!(
                "lockbox items {}: {}, total {}\n",
                l.status,
                l.count,
                decimal(l.total)
            ));
        }
        if self.processor_listed {
            s.push_str(&format!(
                "processor transactions compared: {}\n",
                self.processor_transactions
            ));
        } else {
            s.push_str(
                "the processor cannot list its transactions; compared with the ledger only\n",
            );
        }
        if self.ok() {
            s.push_str("no differences\n");
        } else {
            s.push_str(&format!("DIFFERENCES: {}\n", self.difference_count));
            for d in &self.differences {
                s.push_str(&format!("  {d}\n"));
            }
            if self.difference_count > self.differences.len() {
                s.push_str(&format!(
                    "  ... and {} more\n",
                    self.difference_count - self.differences.len()
                ));
            }
        }
        s
    }

    /// As CSV (`billpay report reconciliation --format csv` and the desk's download give
    /// these bytes): a `summary` line per processor, status and channel; then `in_doubt` and
    /// `processor_transactions` counts (empty when the processor cannot list); then one
    /// `difference` line each, the text quoted; `differences_not_listed` if there were more.
    pub fn to_csv(&self) -> String {
        let mut s = String::from(SETTLEMENT_CSV_HEADER);
        s.push('\n');
        for l in &self.lines {
            s.push_str(&format!(
                "summary,{},{},{},{},{},\n",
                l.processor,
                l.status,
                l.channel,
                l.count,
                l.total_text()
            ));
        }
        s.push_str(&format!("in_doubt,,,,{},,\n", self.in_doubt));
        for f in &self.ach_files {
            s.push_str(&format!(
                "ach_file,nacha,{},,{},{},\"{}; credits {}\"\n",
                f.status,
                f.entries,
                decimal(f.debit_total),
                f.file_name,
                decimal(f.credit_total)
            ));
        }
        s.push_str(&format!("ach_returns,nacha,,,{},,\n", self.ach_returns));
        for l in &self.lockbox {
            s.push_str(&format!(
                "lockbox,lockbox,{},mail,{},{},\n",
                l.status,
                l.count,
                decimal(l.total)
            ));
        }
        let listed = if self.processor_listed {
            self.processor_transactions.to_string()
        } else {
            String::new()
        };
        s.push_str(&format!("processor_transactions,,,,{listed},,\n"));
        for d in &self.differences {
            s.push_str(&format!("difference,,,,,,\"{}\"\n", d.replace('"', "\"\"")));
        }
        if self.difference_count > self.differences.len() {
            s.push_str(&format!(
                "differences_not_listed,,,,{},,\n",
                self.difference_count - self.differences.len()
            ));
        }
        s
    }
}

/// Statuses whose payment moved money (and so must be in the ledger and at the processor).
fn posted(status: &str, method: &str, has_ref: bool) -> bool {
    matches!(status, "succeeded" | "partially_refunded" | "refunded")
        || (status == "processing" && method == "ach" && has_ref)
}

impl Billpay {
    /// The settlement report of one UTC day.
    pub async fn settlement_report(
        &self,
        day: jiff::civil::Date,
    ) -> Result<SettlementReport, ServiceError> {
        let start = day
            .to_zoned(jiff::tz::TimeZone::UTC)
            .map_err(|_| ServiceError::invalid("day", "the day is out of range"))?;
        let end = start
            .tomorrow()
            .map_err(|_| ServiceError::invalid("day", "the day is out of range"))?;
        let (from, to) = (
            start.timestamp().as_microsecond(),
            end.timestamp().as_microsecond(),
        );
        let (summary, payments) = {
            let mut c = self.store.read_conn().await?;
            (
                queries::payments_summary(&mut c, from, to).await?,
                queries::payments_with_ledger(&mut c, from, to).await?,
            )
        };
        let mut r = SettlementReport {
            day: day.to_string(),
            lines: summary
                .into_iter()
                .map(|(processor, status, channel, count, total)| SummaryLine {
                    processor,
                    status,
                    channel,
                    count,
                    total,
                })
                .collect(),
            ..Default::default()
        };
        // The ledger: what each payment's state says it posted is what it posted.
        for p in &payments {
            let has_ref = p.processor_ref.is_some();
            if p.status == "processing" && (!has_ref || p.method_type == "ach") {
                r.in_doubt += 1;
            }
            let expected = if posted(&p.status, &p.method_type, has_ref) {
                -p.amount
            } else {
                0
            };
            if p.ar != expected {
                r.differ(format!(
                    "payment {} is {} for {} but the ledger posts {} to the receivable",
                    p.id, p.status, p.amount, p.ar
                ));
            }
        }
        // The processor: every charge billpay counts is there, for the same amount, and the
        // processor has nothing billpay does not know. Bank debits billpay originates in its own
        // NACHA files are not the processor's: the files are checked below.
        let nacha: HashSet<String> = {
            let mut c = self.store.read_conn().await?;
            billpay_store::reports::nacha_debited_payments(&mut c, from, to)
                .await?
                .into_iter()
                .collect()
        };
        let name = self.processor.name();
        let listed = match self.processor.transactions(from, to).await {
            Ok(l) => l,
            Err(e) => {
                r.differ(format!(
                    "the processor could not list its transactions: {e}"
                ));
                None
            }
        };
        if let Some(txs) = listed {
            r.processor_listed = true;
            r.processor_transactions = txs.len();
            let by_key: HashMap<&str, &crate::processor::ProcessorTx> = txs
                .iter()
                .filter_map(|t| t.key.as_deref().map(|k| (k, t)))
                .collect();
            let ours: HashSet<&str> = payments
                .iter()
                .filter(|p| p.processor == name)
                .map(|p| p.processor_key.as_str())
                .collect();
            for p in payments
                .iter()
                .filter(|p| p.processor == name && !nacha.contains(&p.id))
            {
                let tx = by_key.get(p.processor_key.as_str());
                let charged = p.amount.saturating_add(p.fee_amount);
                let has_ref = p.processor_ref.is_some();
                match (posted(&p.status, &p.method_type, has_ref), tx) {
                    (true, None) => r.differ(format!(
                        "payment {} is {} in billpay but the processor has no charge for it",
                        p.id, p.status
                    )),
                    (true, Some(t)) if t.status == "failed" => r.differ(format!(
                        "payment {} is {} in billpay but {} at the processor",
                        p.id, p.status, t.reference
                    )),
                    (true, Some(t)) if t.amount != charged => r.differ(format!(
                        "payment {} charged {} but the processor's {} is for {}",
                        p.id, charged, t.reference, t.amount
                    )),
                    (false, Some(t)) if t.status == "succeeded" && p.status != "returned" => r
                        .differ(format!(
                            "payment {} is {} in billpay but {} succeeded at the processor",
                            p.id, p.status, t.reference
                        )),
                    _ => {}
                }
            }
            for t in &txs {
                let known = t.key.as_deref().is_some_and(|k| ours.contains(k));
                if !known && t.status != "failed" {
                    r.differ(format!(
                        "the processor's {} ({} {}, {}) is not a billpay payment of this day",
                        t.reference, t.amount, t.currency, t.status
                    ));
                }
            }
        }
        self.settle_ach_and_lockbox(&mut r, from, to).await?;
        Ok(r)
    }
}

impl Billpay {
    /// The NACHA files and lockbox items of `[from, to)`, compared with the payments.
    async fn settle_ach_and_lockbox(
        &self,
        r: &mut SettlementReport,
        from: i64,
        to: i64,
    ) -> Result<(), ServiceError> {
        use billpay_store::reports as rq;
        let (files, entries, returns, items) = {
            let mut c = self.store.read_conn().await?;
            (
                rq::ach_files_between(&mut c, from, to).await?,
                rq::ach_entries_between(&mut c, from, to).await?,
                rq::ach_returns_between(&mut c, from, to).await?,
                rq::lockbox_items_between(&mut c, from, to).await?,
            )
        };
        for f in &files {
            if f.status != "written" {
                r.differ(format!(
                    "NACHA file {} is still {}: it was never finished",
                    f.file_name, f.status
                ));
            }
            if (f.entry_count, f.debit_total, f.credit_total)
                != (f.entries, f.entry_debits, f.entry_credits)
            {
                r.differ(format!(
                    "NACHA file {} says {} entries, debits {}, credits {}; its entries are {}, debits {}, credits {}",
                    f.file_name,
                    f.entry_count,
                    decimal(f.debit_total),
                    decimal(f.credit_total),
                    f.entries,
                    decimal(f.entry_debits),
                    decimal(f.entry_credits)
                ));
            }
            r.ach_files.push(AchFileLine {
                file_name: f.file_name.clone(),
                status: f.status.clone(),
                entries: f.entry_count,
                debit_total: f.debit_total,
                credit_total: f.credit_total,
            });
        }
        for e in &entries {
            let problem = match (e.purpose.as_str(), e.payment_charged, e.refund_amount) {
                ("debit", None, _) => Some("debits no payment billpay has".to_string()),
                ("debit", Some(charged), _) if charged != e.amount => Some(format!(
                    "debits {} but its payment {} charged {}",
                    decimal(e.amount),
                    e.payment_id.as_deref().unwrap_or(""),
                    decimal(charged)
                )),
                ("debit", Some(_), _)
                    if matches!(
                        e.payment_status.as_deref(),
                        Some("failed" | "canceled" | "pending")
                    ) =>
                {
                    Some(format!(
                        "debits payment {}, which is {}",
                        e.payment_id.as_deref().unwrap_or(""),
                        e.payment_status.as_deref().unwrap_or("")
                    ))
                }
                ("credit", _, None) => Some("credits no refund billpay has".to_string()),
                ("credit", _, Some(refund)) if refund != e.amount => Some(format!(
                    "credits {} but its refund {} is for {}",
                    decimal(e.amount),
                    e.refund_id.as_deref().unwrap_or(""),
                    decimal(refund)
                )),
                _ => None,
            };
            if let Some(p) = problem {
                r.differ(format!(
                    "NACHA file {} entry {} {p}",
                    e.file_name, e.entry_id
                ));
            }
        }
        for ret in &returns {
            r.ach_returns += 1;
            if ret.outcome == "unmatched" {
                r.differ(format!(
                    "a bank return ({}) for trace {} matches no entry billpay sent",
                    ret.code, ret.original_trace
                ));
            } else if ret.entry_status.as_deref() != Some("returned")
                || ret.payment_id.is_some() && ret.payment_status.as_deref() != Some("returned")
            {
                r.differ(format!(
                    "the bank returned trace {} ({}) but its entry is {} and its payment {}",
                    ret.original_trace,
                    ret.code,
                    ret.entry_status.as_deref().unwrap_or("missing"),
                    ret.payment_status.as_deref().unwrap_or("none")
                ));
            }
        }
        let mut by_status: std::collections::BTreeMap<&str, (i64, i64)> = Default::default();
        for l in &items {
            if l.created_at >= from && l.created_at < to {
                let e = by_status.entry(l.status.as_str()).or_default();
                e.0 += 1;
                e.1 += l.amount;
            }
            if l.status != "posted" {
                continue;
            }
            let problem = match (l.payment_amount, l.payment_status.as_deref()) {
                (None, _) => Some("was posted but billpay has no payment for it".to_string()),
                (Some(a), _) if a != l.amount => Some(format!(
                    "is for {} but its payment {} is for {}",
                    decimal(l.amount),
                    l.payment_id.as_deref().unwrap_or(""),
                    decimal(a)
                )),
                (Some(_), Some(s)) if !posted(s, "check", true) && s != "returned" => {
                    Some(format!(
                        "was posted as payment {}, which is {s}",
                        l.payment_id.as_deref().unwrap_or("")
                    ))
                }
                _ => None,
            };
            if let Some(p) = problem {
                r.differ(format!(
                    "lockbox check {} deposited {} {p}",
                    l.check_number, l.deposit_date
                ));
            }
        }
        r.lockbox = by_status
            .into_iter()
            .map(|(status, (count, total))| LockboxLine {
                status: status.to_string(),
                count,
                total,
            })
            .collect();
        Ok(())
    }
}

//! `billpay verify`: proves the ledger from storage. Read-only; every invariant is checked
//! independently of the code that wrote the data.

use billpay_domain::ConfirmationNumber;
use billpay_store::queries;

use crate::{Billpay, ServiceError};

/// Most problems listed per check.
const PROBLEMS_SHOWN_MAX: usize = 50;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub problems: Vec<String>,
    pub problem_count: usize,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    pub checks: Vec<Check>,
    pub accounts: i64,
    pub payments: i64,
    pub payments_by_status: Vec<(String, i64)>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.problem_count == 0)
    }

    fn check(&mut self, name: &'static str, problems: Vec<String>) {
        let problem_count = problems.len();
        let problems = problems.into_iter().take(PROBLEMS_SHOWN_MAX).collect();
        self.checks.push(Check {
            name,
            problems,
            problem_count,
        });
    }

    pub fn to_text(&self) -> String {
        let mut s = format!("accounts: {}\npayments: {}", self.accounts, self.payments);
        for (status, n) in &self.payments_by_status {
            s.push_str(&format!("\n  {status}: {n}"));
        }
        for c in &self.checks {
            let mark = if c.problem_count == 0 { "ok  " } else { "FAIL" };
            s.push_str(&format!("\n{mark} {}", c.name));
            for p in &c.problems {
                s.push_str(&format!("\n       {p}"));
            }
            if c.problem_count > c.problems.len() {
                s.push_str(&format!(
                    "\n       ... and {} more",
                    c.problem_count - c.problems.len()
                ));
            }
        }
        s.push_str(if self.ok() {
            "\nledger verified\n"
        } else {
            "\nLEDGER VERIFICATION FAILED\n"
        });
        s
    }
}

impl Billpay {
    pub async fn verify(&self) -> Result<VerifyReport, ServiceError> {
        let mut c = self.store.read_conn().await?;
        let mut r = VerifyReport {
            accounts: queries::count_accounts(&mut c).await?,
            payments: queries::count_payments(&mut c).await?,
            payments_by_status: queries::payments_by_status(&mut c).await?,
            ..Default::default()
        };
        r.check(
            "every journal entry has two or more postings that sum to zero",
            queries::unbalanced_journals(&mut c)
                .await?
                .into_iter()
                .map(|(id, sum, n)| format!("journal {id}: {n} postings summing to {sum}"))
                .collect(),
        );
        r.check(
            "the whole ledger sums to zero in each currency",
            queries::ledger_totals(&mut c)
                .await?
                .into_iter()
                .filter(|(_, sum)| *sum != 0)
                .map(|(cur, sum)| format!("{cur} postings sum to {sum}"))
                .collect(),
        );
        let mixed = queries::mixed_currency_postings(&mut c).await?;
        r.check(
            "postings are in their journal entry's currency",
            if mixed > 0 {
                vec![format!("{mixed} postings in another currency")]
            } else {
                vec![]
            },
        );
        r.check(
            "no journal entry without its source document",
            queries::orphan_journals(&mut c)
                .await?
                .into_iter()
                .map(|(id, t, s)| format!("journal {id} names {t} {s}, which does not exist"))
                .collect(),
        );
        r.check(
            "every posted payment has its ledger entry",
            queries::posted_payments_without_journal(&mut c)
                .await?
                .into_iter()
                .map(|(id, st)| format!("payment {id} is {st} but has no ledger entry"))
                .collect(),
        );
        r.check(
            "no unposted payment has a ledger entry",
            queries::unposted_payments_with_journal(&mut c)
                .await?
                .into_iter()
                .map(|(id, st)| format!("payment {id} is {st} but has a ledger entry"))
                .collect(),
        );
        r.check(
            "each payment's ledger entries match its amount and state",
            queries::payment_postings(&mut c)
                .await?
                .into_iter()
                .filter_map(|(id, status, amount, _refunded, ar)| {
                    let expected = match status.as_str() {
                        "succeeded" | "partially_refunded" | "refunded" | "processing" => -amount,
                        _ => 0,
                    };
                    // A processing card payment in doubt has not posted yet.
                    let ok = ar == expected || (status == "processing" && ar == 0);
                    (!ok).then(|| {
                        format!("payment {id} ({status}, {amount}) posted {ar} to the receivable")
                    })
                })
                .collect(),
        );
        r.check(
            "each dispute's ledger entries match its state",
            billpay_store::disputes::dispute_postings(&mut c)
                .await?
                .into_iter()
                .filter_map(|(id, status, amount, ar)| {
                    // Open or lost: the payment is reversed (+amount on the receivable); won:
                    // reversed and posted again, or never reversed; an inquiry: untouched (0).
                    let expected = if crate::stripe_events::funds_withdrawn(&status) {
                        amount
                    } else {
                        0
                    };
                    (ar != expected).then(|| {
                        format!("dispute {id} ({status}, {amount}) posted {ar} to the receivable")
                    })
                })
                .collect(),
        );
        r.check(
            "every succeeded refund has its ledger entry",
            queries::succeeded_refunds_without_journal(&mut c)
                .await?
                .into_iter()
                .map(|id| format!("refund {id} succeeded but has no ledger entry"))
                .collect(),
        );
        r.check(
            "refunded amounts match succeeded refunds and never exceed the payment",
            queries::refund_total_mismatches(&mut c)
                .await?
                .into_iter()
                .map(|(id, recorded, total)| {
                    format!("payment {id} records {recorded} refunded, refunds total {total}")
                })
                .collect(),
        );
        r.check(
            "each account's balance equals its statements less its payments plus its refunds and standing disputes",
            queries::account_balance_check(&mut c)
                .await?
                .into_iter()
                .filter(|(_, ledger, docs)| ledger != docs)
                .map(|(n, ledger, docs)| {
                    format!("account {n}: ledger says {ledger}, documents say {docs}")
                })
                .collect(),
        );
        let dupes = queries::duplicate_confirmations(&mut c).await?;
        let mut conf_problems: Vec<String> = queries::all_confirmations(&mut c)
            .await?
            .into_iter()
            .filter(|(_, n)| ConfirmationNumber::parse(n).is_err())
            .map(|(id, n)| format!("payment {id} has malformed confirmation number {n}"))
            .collect();
        if dupes > 0 {
            conf_problems.push(format!(
                "{dupes} confirmation numbers are used more than once"
            ));
        }
        r.check(
            "confirmation numbers are unique and carry a valid check digit",
            conf_problems,
        );
        Ok(r)
    }
}

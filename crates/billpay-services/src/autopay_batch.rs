//! The AutoPay run, in batches.
//!
//! `run_due_jobs` leases AutoPay charge jobs up to `[autopay] charge_batch` (1000) at a time and hands them
//! here. The batch does for each job what [`Billpay::run_autopay_charge`] does for one, with
//! the same guarantees, in a fixed number of statements per batch instead of about thirty per
//! charge (on SQLite each statement is a round trip to the single writer's thread):
//!
//! 1. reads, on one connection, with `IN (..)` lists: keys already used, accounts, statements,
//!    enrollments, what is owed and what was paid since each statement, saved methods;
//! 2. one write transaction claims every payment: the accounts locked, what is owed checked
//!    again, the idempotency keys claimed, the payments inserted `processing`, the vault's use
//!    audited;
//! 3. the processor is asked for all of them at once ([`crate::processor::Processor::charge_many`]);
//! 4. one write transaction records every outcome: the payment's state, journal entry, receipt,
//!    AutoPay notice, next attempt, completed key and the job finished.
//!
//! A job the batch cannot take to its end the ordinary way (an earlier run's payment under its
//! key, a bill over the AutoPay maximum, a saved method that can no longer pay, a balance that
//! changed meanwhile, two jobs of one account) runs alone through `run_autopay_charge` after
//! the batch, which handles each such case. A crash between 2 and 4 leaves `processing`
//! payments under their keys; the job's re-run finds them and resolves them by key, as it does
//! for a single charge.

use std::collections::{HashMap, HashSet};

use billpay_domain::{AccountNumber, AutopayAmount, Channel, Currency, Money};
use billpay_store::StoreError;
use billpay_store::batch::{self, PaymentMove};
use billpay_store::jobs::{AutopayRow, JobRow};
use billpay_store::rows::{
    AccountRow, IdempotencyRow, OutboxRow, PaymentRow, PaymentView, StatementRow,
};

use crate::autopay::{first_attempt, paid_notice};
use crate::jobs::{JobError, Outcome};
use crate::payments::{
    NewMethod, OutcomePlan, PAYMENT_AMOUNT_MAX_MINOR, PaymentRequest, payment_fingerprint,
};
use crate::processor::{ChargeMethod, ProcessorError};
use crate::{Billpay, MethodSummary, Payment, PaymentResult, ServiceError};

/// The idempotency scope of AutoPay's payments (the job's business key is the key).
const SCOPE: &str = "autopay";
/// Confirmation numbers tried per payment, as the one-payment path tries.
const CANDIDATES: usize = 8;

/// A job with something to charge, and the saved method opened to charge it.
struct Ready {
    job: JobRow,
    payload: serde_json::Value,
    account: AccountRow,
    statement: StatementRow,
    amount: Money,
    method_id: String,
    /// Taken out for the processor's request, and dropped with it.
    method: Option<ChargeMethod>,
    summary: MethodSummary,
    hash: String,
}

/// What the reads decided for the leased jobs.
#[derive(Default)]
struct Sorted {
    ready: Vec<Ready>,
    /// Nothing to charge (AutoPay is off, or the bill is paid): done.
    nothing: Vec<JobRow>,
    /// For `run_autopay_charge`, one at a time.
    alone: Vec<JobRow>,
}

fn index_by<T>(rows: Vec<T>, key: impl Fn(&T) -> String) -> HashMap<String, T> {
    rows.into_iter().map(|r| (key(&r), r)).collect()
}

fn ids_of<'a>(it: impl Iterator<Item = &'a str>) -> Vec<String> {
    let set: HashSet<&str> = it.collect();
    let mut v: Vec<String> = set.into_iter().map(str::to_string).collect();
    v.sort();
    v
}

impl Billpay {
    /// Runs leased AutoPay charge jobs as one batch; returns how each went.
    pub(crate) async fn run_autopay_batch(
        &self,
        jobs: Vec<JobRow>,
        owner: &str,
    ) -> Result<Vec<Outcome>, ServiceError> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let mut outcomes = Vec::with_capacity(jobs.len());
        let started = std::time::Instant::now();
        let sorted = match self.sort_charges(&jobs).await {
            Ok(s) => s,
            Err(e) => {
                for j in jobs {
                    outcomes.push(self.retry_job(j, e.to_string(), owner).await?);
                }
                return Ok(outcomes);
            }
        };
        drop(jobs);
        if !sorted.nothing.is_empty() {
            let ids: Vec<String> = sorted.nothing.iter().map(|j| j.id.clone()).collect();
            let now = self.clock.now_micros();
            let owner_w = owner.to_string();
            self.store
                .write(move |c| {
                    Box::pin(async move { batch::finish_jobs(c, &ids, &owner_w, now).await })
                })
                .await?;
            for j in &sorted.nothing {
                metrics::counter!("billpay_jobs_total", "kind" => j.kind.clone(), "outcome" => "done").increment(1);
                outcomes.push(Outcome::Done);
            }
        }
        let mut alone = sorted.alone;
        let read = started.elapsed();
        outcomes.extend(self.charge_ready(sorted.ready, &mut alone, owner).await?);
        tracing::debug!(
            jobs = outcomes.len() + alone.len(),
            alone = alone.len(),
            read_ms = read.as_millis() as u64,
            total_ms = started.elapsed().as_millis() as u64,
            "AutoPay batch"
        );
        for j in alone {
            outcomes.push(self.run_and_record(j, owner).await?);
        }
        Ok(outcomes)
    }

    async fn retry_job(
        &self,
        j: JobRow,
        why: String,
        owner: &str,
    ) -> Result<Outcome, ServiceError> {
        self.record_job(j, Err(JobError::Retry(why)), owner).await
    }

    /// Step 1: what each job would charge, from a handful of reads.
    async fn sort_charges(&self, jobs: &[JobRow]) -> Result<Sorted, ServiceError> {
        let mut out = Sorted::default();
        let mut c = self.store.read_conn().await?;
        let keys: Vec<String> = jobs.iter().map(|j| j.business_key.clone()).collect();
        let taken = batch::idempotency_keys_taken(&mut c, SCOPE, &keys).await?;
        let mut parsed: Vec<(JobRow, serde_json::Value)> = Vec::new();
        let mut accounts_seen = HashSet::new();
        for j in jobs {
            let payload: Option<serde_json::Value> = serde_json::from_str(&j.payload).ok();
            match payload {
                Some(p)
                    if !taken.contains(&j.business_key)
                        && first_attempt(&p).is_ok()
                        && p["statement_id"].is_string()
                        && p["account_id"]
                            .as_str()
                            .is_some_and(|a| accounts_seen.insert(a.to_string())) =>
                {
                    parsed.push((j.clone(), p))
                }
                _ => out.alone.push(j.clone()),
            }
        }
        let account_ids = ids_of(parsed.iter().filter_map(|(_, p)| p["account_id"].as_str()));
        let statement_ids = ids_of(
            parsed
                .iter()
                .filter_map(|(_, p)| p["statement_id"].as_str()),
        );
        let mut accounts = index_by(batch::accounts_by_ids(&mut c, &account_ids).await?, |a| {
            a.id.clone()
        });
        let mut statements = index_by(
            batch::statements_by_ids(&mut c, &statement_ids).await?,
            |s| s.id.clone(),
        );
        let enrollments: HashMap<String, AutopayRow> = index_by(
            batch::autopay_of_accounts(&mut c, &account_ids).await?,
            |e| e.account_id.clone(),
        )
        .into_iter()
        .filter(|(_, e)| e.status == "active")
        .collect();
        let owed = batch::payable_balances(&mut c, &account_ids).await?;
        let since: Vec<(String, i64)> = parsed
            .iter()
            .filter_map(|(_, p)| {
                let s = statements.get(p["statement_id"].as_str()?)?;
                Some((p["account_id"].as_str()?.to_string(), s.created_at))
            })
            .collect();
        let paid = batch::paid_since_many(&mut c, &since).await?;

        let mut due = Vec::new();
        for (j, p) in parsed {
            let aid = p["account_id"].as_str().unwrap_or_default();
            let sid = p["statement_id"].as_str().unwrap_or_default();
            let (Some(account), Some(statement)) = (accounts.remove(aid), statements.remove(sid))
            else {
                out.alone.push(j);
                continue;
            };
            let Some(enrollment) = enrollments.get(aid) else {
                out.nothing.push(j);
                continue;
            };
            let Ok(currency) = Currency::parse(&account.currency) else {
                out.alone.push(j);
                continue;
            };
            let amount = billpay_domain::autopay_amount(
                Money::new(statement.amount_due, currency),
                Money::new(paid.get(aid).copied().unwrap_or(0), currency),
                Money::new(owed.get(aid).copied().unwrap_or(0), currency),
                enrollment.maximum.map(|m| Money::new(m, currency)),
            );
            match amount {
                Ok(AutopayAmount::NothingDue) => out.nothing.push(j),
                Ok(AutopayAmount::Charge(m)) if m.minor_units() <= PAYMENT_AMOUNT_MAX_MINOR => due
                    .push((
                        j,
                        p,
                        account,
                        statement,
                        m,
                        enrollment.payment_method_id.clone(),
                    )),
                // Over the maximum (a notice), too large, or not computable: alone.
                _ => out.alone.push(j),
            }
        }

        let method_ids = ids_of(due.iter().map(|d| d.5.as_str()));
        let methods = index_by(
            batch::payment_methods_by_ids(&mut c, &method_ids).await?,
            |m| m.id.clone(),
        );
        drop(c);
        for (job, payload, account, statement, amount, method_id) in due {
            let opened = methods
                .get(&method_id)
                .filter(|m| m.account_id == account.id && m.status == "active")
                .map(|row| self.open_method_row(row));
            let (Some(Ok((saved, method))), Ok(number)) =
                (opened, AccountNumber::parse(&account.account_number))
            else {
                out.alone.push(job);
                continue;
            };
            if matches!(method, ChargeMethod::Bank { .. }) && !self.processor.accepts_bank_debits()
            {
                out.alone.push(job);
                continue;
            }
            let hash = payment_fingerprint(&PaymentRequest {
                account_number: number,
                amount,
                channel: Channel::Autopay,
                method: NewMethod::Saved {
                    token: method_id.clone(),
                },
                confirm_duplicate: true,
                tel_authorization: None,
                limit_to_balance: true,
                risk: None,
            });
            out.ready.push(Ready {
                job,
                payload,
                account,
                statement,
                amount,
                method_id,
                method: Some(method),
                summary: saved.summary,
                hash,
            });
        }
        Ok(out)
    }

    /// Steps 2 to 4 for the jobs with something to charge. Jobs that turn out not to fit the
    /// batch (a balance or key that changed since the reads) are added to `alone`.
    async fn charge_ready(
        &self,
        ready: Vec<Ready>,
        alone: &mut Vec<JobRow>,
        owner: &str,
    ) -> Result<Vec<Outcome>, ServiceError> {
        if ready.is_empty() {
            return Ok(Vec::new());
        }
        // Every job here has its method; one without would only lose its place in the batch.
        let (ready, broken): (Vec<Ready>, Vec<Ready>) =
            ready.into_iter().partition(|r| r.method.is_some());
        alone.extend(broken.into_iter().map(|r| r.job));
        let now_us = self.clock.now_micros();
        let actor = crate::vault::Actor {
            id: SCOPE.into(),
            channel: Channel::Autopay,
        };
        let mut rows = Vec::with_capacity(ready.len());
        let mut keys = Vec::with_capacity(ready.len());
        let mut audits = Vec::with_capacity(ready.len());
        let mut candidates = Vec::with_capacity(ready.len());
        // Every payment's candidate confirmation numbers from one read of the random source
        // (one system call per batch instead of one per candidate).
        let mut entropy = vec![0u8; ready.len() * CANDIDATES * 8];
        self.random.fill(&mut entropy);
        let mut entropy = entropy.chunks_exact(8).map(|b| {
            let mut word = [0u8; 8];
            word.copy_from_slice(b);
            u64::from_le_bytes(word)
        });
        for r in &ready {
            let payment_id = self.new_id("pay");
            let fee = self.convenience_fee(r.amount, Channel::Autopay);
            let Some(method) = &r.method else {
                continue;
            };
            let mut row = self.new_payment_row(
                payment_id.clone(),
                r.amount,
                fee,
                Channel::Autopay,
                method,
                &r.summary,
                Some(r.method_id.clone()),
                now_us,
            );
            row.account_id = r.account.id.clone();
            keys.push(IdempotencyRow {
                scope: SCOPE.into(),
                idem_key: r.job.business_key.clone(),
                endpoint: "payments.create".into(),
                request_hash: r.hash.clone(),
                state: "started".into(),
                resource_id: Some(payment_id.clone()),
                response_status: None,
                response_body: None,
                created_at: now_us,
                completed_at: None,
            });
            audits.push(crate::vault::audit_row(
                self.new_id("aud"),
                now_us,
                &actor,
                "vault.use",
                &r.method_id,
                &r.account.id,
                serde_json::json!({"payment_id": payment_id}),
            ));
            candidates.push(
                entropy
                    .by_ref()
                    .take(CANDIDATES)
                    .map(|word| {
                        billpay_domain::ConfirmationNumber::from_random(word)
                            .as_str()
                            .to_string()
                    })
                    .collect::<Vec<String>>(),
            );
            rows.push(row);
        }

        // Step 2: claim.
        let t_claim = std::time::Instant::now();
        let engine = self.store.engine();
        let claimed = self
            .store
            .write(move |c| {
                Box::pin(async move {
                    let account_ids: Vec<String> =
                        rows.iter().map(|r| r.account_id.clone()).collect();
                    batch::lock_accounts(c, engine, &account_ids).await?;
                    let owed = batch::payable_balances(c, &account_ids).await?;
                    // As `limit_to_balance` checks one payment: its amount (a fee is on top).
                    let fits: Vec<usize> = (0..rows.len())
                        .filter(|&i| {
                            rows[i].amount <= owed.get(&rows[i].account_id).copied().unwrap_or(0)
                        })
                        .collect();
                    let fit_keys: Vec<IdempotencyRow> =
                        fits.iter().map(|&i| keys[i].clone()).collect();
                    let won_keys = batch::idempotency_claim_many(c, &fit_keys).await?;
                    let won: Vec<usize> = fits
                        .into_iter()
                        .filter(|&i| won_keys.contains(&keys[i].idem_key))
                        .collect();
                    let numbers = pick_confirmations(c, &won, &candidates).await?;
                    let mut claimed: Vec<(usize, PaymentRow)> = Vec::with_capacity(won.len());
                    let mut claimed_audits = Vec::with_capacity(won.len());
                    for (i, number) in won.into_iter().zip(numbers) {
                        let mut row = rows[i].clone();
                        row.confirmation_number = number;
                        claimed.push((i, row));
                        claimed_audits.push(audits[i].clone());
                    }
                    let payments: Vec<PaymentRow> =
                        claimed.iter().map(|(_, r)| r.clone()).collect();
                    batch::insert_payments(c, &payments).await?;
                    batch::insert_audits(c, &claimed_audits).await?;
                    Ok::<_, StoreError>(claimed)
                })
            })
            .await;
        let claimed = match claimed {
            Ok(c) => c,
            Err(e) => {
                let mut outcomes = Vec::new();
                for r in ready {
                    outcomes.push(self.retry_job(r.job, e.to_string(), owner).await?);
                }
                return Ok(outcomes);
            }
        };
        let mut slots: Vec<Option<Ready>> = ready.into_iter().map(Some).collect();
        let mut charging = Vec::with_capacity(claimed.len());
        for (i, row) in claimed {
            if let Some(r) = slots[i].take() {
                let view = PaymentView {
                    payment: row,
                    account_number: r.account.account_number.clone(),
                    account_timezone: r.account.timezone.clone(),
                };
                charging.push((r, Payment::from_view(&view)?));
            }
        }
        // The rest lost their key or their balance since the reads: alone, they find out why.
        alone.extend(slots.into_iter().flatten().map(|r| r.job));

        let claim_ms = t_claim.elapsed().as_millis() as u64;
        // Step 3: the processor.
        let t_charge = std::time::Instant::now();
        let mut requests = Vec::with_capacity(charging.len());
        let mut sent = Vec::with_capacity(charging.len());
        for (mut r, p) in charging {
            match r.method.take() {
                Some(method) => {
                    let amount = p.amount.checked_add(p.fee).unwrap_or(p.amount);
                    requests.push(self.charge_request(
                        &p,
                        amount,
                        method,
                        Some(r.method_id.clone()),
                        None,
                    ));
                    sent.push((r, p));
                }
                None => alone.push(r.job),
            }
        }
        let answers = self
            .processor
            .charge_many(&requests, self.config().processor_timeout)
            .await;
        drop(requests);

        let charge_ms = t_charge.elapsed().as_millis() as u64;
        // Step 4: record.
        let t_record = std::time::Instant::now();
        let now = self.clock.now_micros();
        let mut outcomes = Vec::with_capacity(answers.len());
        let mut plans: Vec<(Ready, OutcomePlan)> = Vec::with_capacity(answers.len());
        for ((r, payment), answer) in sent.into_iter().zip(answers) {
            match answer.map(|o| self.plan_outcome(&payment, o, now)) {
                Ok(Ok(plan)) => plans.push((r, plan)),
                Ok(Err(e)) => outcomes.push(self.retry_job(r.job, e.to_string(), owner).await?),
                Err(ProcessorError::Timeout) => {
                    tracing::warn!(payment_id = %payment.id, "processor timed out; payment is in doubt");
                    metrics::counter!("billpay_payments_in_doubt_total").increment(1);
                    let why = "the processor did not answer; the payment is resolved by its key";
                    outcomes.push(self.retry_job(r.job, why.into(), owner).await?);
                }
                Err(e @ (ProcessorError::Unavailable(_) | ProcessorError::Rejected(_))) => {
                    tracing::error!(payment_id = %payment.id, error = %e, "processor refused the call");
                    self.cancel_unsent(payment).await?;
                    let why = ServiceError::ProcessorUnavailable.to_string();
                    outcomes.push(self.retry_job(r.job, why, owner).await?);
                }
            }
        }
        outcomes.extend(self.record_charges(plans, owner, now).await?);
        tracing::debug!(
            claim_ms,
            charge_ms,
            record_ms = t_record.elapsed().as_millis() as u64,
            "AutoPay batch steps"
        );
        Ok(outcomes)
    }

    /// Step 4's one transaction for every answered charge.
    async fn record_charges(
        &self,
        plans: Vec<(Ready, OutcomePlan)>,
        owner: &str,
        now: i64,
    ) -> Result<Vec<Outcome>, ServiceError> {
        if plans.is_empty() {
            return Ok(Vec::new());
        }
        struct Follow {
            job_id: String,
            payment_id: String,
            account_id: String,
            journal: Option<(billpay_store::rows::JournalRow, Vec<(String, i64)>)>,
            messages: Vec<(String, &'static str, String, String)>,
            jobs: Vec<(JobRow, bool)>,
            key: (String, i64, String),
        }
        let mut moves = Vec::with_capacity(plans.len());
        let mut follows = Vec::with_capacity(plans.len());
        for (r, plan) in &plans {
            moves.push(PaymentMove {
                id: plan.payment_id.clone(),
                from: plan.from.as_str().into(),
                to: plan.status.as_str().into(),
                processor_ref: plan.reference.clone(),
                decline_code: plan.decline.map(|d| d.as_str().to_string()),
                journal_id: plan.journal.as_ref().map(|(j, _)| j.id.clone()),
            });
            let mut messages = Vec::new();
            let mut jobs = Vec::new();
            if let Some(receipt) = &plan.receipt {
                messages.push((
                    self.new_id("msg"),
                    "email.receipt",
                    format!("receipt:{}", plan.payment_id),
                    receipt.to_json(),
                ));
            }
            if let Some(restore) = &plan.restore {
                jobs.push((restore.clone(), true));
            }
            let (kind, key, notice) = match &plan.result {
                PaymentResult::Declined(p, code) => {
                    let (retry, kind, key, notice) =
                        self.declined_followup(&r.payload, &r.account, &r.statement, p, *code);
                    jobs.extend(retry.map(|j| (j, false)));
                    (kind, key, notice)
                }
                other => paid_notice(other.payment()),
            };
            messages.push((self.new_id("msg"), kind, key, notice.to_string()));
            follows.push(Follow {
                job_id: r.job.id.clone(),
                payment_id: plan.payment_id.clone(),
                account_id: plan.account_id.clone(),
                journal: plan.journal.clone(),
                messages,
                jobs,
                key: (
                    r.job.business_key.clone(),
                    i64::from(plan.response.status),
                    plan.response.body.clone(),
                ),
            });
        }
        let owner_w = owner.to_string();
        let moved = self
            .store
            .write(move |c| {
                Box::pin(async move {
                    let moved = batch::move_payments(c, &moves, now).await?;
                    let follows: Vec<Follow> = follows
                        .into_iter()
                        .filter(|f| moved.contains(&f.payment_id))
                        .collect();
                    let journals: Vec<_> =
                        follows.iter().filter_map(|f| f.journal.clone()).collect();
                    batch::insert_journals(c, &journals).await?;
                    let account_ids = ids_of(follows.iter().map(|f| f.account_id.as_str()));
                    let accounts = index_by(batch::accounts_by_ids(c, &account_ids).await?, |a| {
                        a.id.clone()
                    });
                    let mut outbox = Vec::new();
                    for f in &follows {
                        let Some(account) = accounts.get(&f.account_id) else {
                            continue;
                        };
                        if let Some(email) = &account.email {
                            for (id, kind, dedupe_key, payload) in &f.messages {
                                outbox.push(OutboxRow {
                                    id: id.clone(),
                                    kind: (*kind).into(),
                                    dedupe_key: dedupe_key.clone(),
                                    recipient: email.clone(),
                                    payload_json: payload.clone(),
                                    created_at: now,
                                    sent_at: None,
                                    attempts: 0,
                                });
                            }
                        }
                        for (job, only_if_suspended) in &f.jobs {
                            if !only_if_suspended || account.service_status == "suspended" {
                                billpay_store::jobs::enqueue(c, job).await?;
                            }
                        }
                    }
                    batch::insert_outbox_many(c, &outbox).await?;
                    let keys: Vec<_> = follows.iter().map(|f| f.key.clone()).collect();
                    batch::idempotency_complete_many(c, SCOPE, &keys, now).await?;
                    let job_ids: Vec<String> = follows.iter().map(|f| f.job_id.clone()).collect();
                    batch::finish_jobs(c, &job_ids, &owner_w, now).await?;
                    Ok::<_, StoreError>(moved)
                })
            })
            .await;
        let mut outcomes = Vec::with_capacity(plans.len());
        let moved = match moved {
            Ok(m) => m,
            Err(e) => {
                // Nothing recorded: the payments wait under their keys for the jobs' re-runs.
                for (r, _) in plans {
                    outcomes.push(self.retry_job(r.job, e.to_string(), owner).await?);
                }
                return Ok(outcomes);
            }
        };
        for (r, plan) in plans {
            if moved.contains(&plan.payment_id) {
                crate::payments::count_payment(&plan.result);
                metrics::counter!("billpay_jobs_total", "kind" => r.job.kind.clone(), "outcome" => "done").increment(1);
                outcomes.push(Outcome::Done);
            } else {
                // Another process recorded this outcome first; the re-run replays it.
                let why = "the payment's outcome was recorded elsewhere first".to_string();
                outcomes.push(self.retry_job(r.job, why, owner).await?);
            }
        }
        Ok(outcomes)
    }
}

/// A free confirmation number for each claimed payment, from its candidates: none used before,
/// none twice in the batch.
async fn pick_confirmations(
    c: &mut billpay_store::AnyConnection,
    won: &[usize],
    candidates: &[Vec<String>],
) -> Result<Vec<String>, StoreError> {
    let mut picked: Vec<Option<String>> = vec![None; won.len()];
    let mut used = HashSet::new();
    // `round` picks the same candidate of every payment, not an element of `candidates`.
    #[allow(clippy::needless_range_loop)]
    for round in 0..candidates.first().map_or(0, Vec::len) {
        let open: Vec<usize> = (0..won.len()).filter(|&k| picked[k].is_none()).collect();
        if open.is_empty() {
            break;
        }
        let asked: Vec<String> = open
            .iter()
            .map(|&k| candidates[won[k]][round].clone())
            .collect();
        let taken = batch::confirmations_taken(c, &asked).await?;
        for (k, number) in open.into_iter().zip(asked) {
            if !taken.contains(&number) && used.insert(number.clone()) {
                picked[k] = Some(number);
            }
        }
    }
    picked
        .into_iter()
        .map(|p| p.ok_or_else(|| StoreError::Internal("no free confirmation number".into())))
        .collect()
}

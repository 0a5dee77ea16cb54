//! The job runner: scheduled work as rows in the database.
//!
//! A job is enqueued in the same transaction as the change that causes it, under a business key
//! that is unique (`autopay:<account>:<statement>:<attempt>`), so each business event is
//! scheduled at most once however often the cause is replayed. Workers (inside every
//! `billpay serve`, or `billpay worker` for scale-out) lease due jobs for a few minutes, run
//! them, and mark them done or queue a retry with exponential backoff. A worker that dies
//! leaves its lease to run out; the job is leased again. Running a job twice must therefore be
//! harmless, and is: every money-moving job pays under an idempotency key derived from its
//! business key, so a second run replays the first run's payment instead of charging again.

use std::time::Duration;

use billpay_store::AnyConnection;
use billpay_store::jobs::{self as q, JobRow};

use crate::{Billpay, ServiceError};

/// How long a worker holds a job before another may take it (the default of
/// `ServiceConfig::job_lease`).
pub const LEASE: jiff::SignedDuration = jiff::SignedDuration::from_mins(5);
/// Jobs leased per batch.
pub const BATCH: i64 = 50;
/// First retry delay; doubles each attempt, capped at [`BACKOFF_MAX`].
pub const BACKOFF_BASE: jiff::SignedDuration = jiff::SignedDuration::from_secs(30);
pub const BACKOFF_MAX: jiff::SignedDuration = jiff::SignedDuration::from_hours(1);
/// Jobs of one batch run at once.
pub const CONCURRENCY: usize = 32;

pub(crate) enum Outcome {
    Done,
    Retried,
    Failed,
}

/// Default attempts before a job fails for good.
pub const MAX_ATTEMPTS: i64 = 6;

/// Why a run did not complete.
#[derive(Debug)]
pub enum JobError {
    /// Try again later (the processor was down, the database was busy).
    Retry(String),
    /// Retrying cannot help (the job's payload is invalid).
    Fatal(String),
}

impl From<ServiceError> for JobError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Invalid { .. } | ServiceError::NotFound { .. } => {
                JobError::Fatal(e.to_string())
            }
            other => JobError::Retry(other.to_string()),
        }
    }
}

/// A storage error inside a job: try again later.
pub(crate) fn store_err(e: billpay_store::StoreError) -> JobError {
    JobError::Retry(e.to_string())
}

/// What one pass of the runner did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunReport {
    pub leased: u64,
    pub done: u64,
    pub retried: u64,
    pub failed: u64,
}

/// The retry delay after `attempts` runs.
pub fn backoff(attempts: i64) -> jiff::SignedDuration {
    let exp = u32::try_from(attempts.clamp(1, 20) - 1).unwrap_or(0);
    let secs = BACKOFF_BASE
        .as_secs()
        .saturating_mul(2_i64.saturating_pow(exp));
    jiff::SignedDuration::from_secs(secs.min(BACKOFF_MAX.as_secs()))
}

/// A new job row, queued.
pub fn job(
    b: &Billpay,
    kind: &str,
    business_key: String,
    payload: serde_json::Value,
    run_at: i64,
) -> JobRow {
    let now = b.clock.now_micros();
    JobRow {
        id: b.new_id("job"),
        kind: kind.into(),
        business_key,
        payload: payload.to_string(),
        run_at,
        status: "queued".into(),
        attempts: 0,
        max_attempts: MAX_ATTEMPTS,
        lease_owner: None,
        lease_until: None,
        last_error: None,
        created_at: now,
        updated_at: now,
        finished_at: None,
    }
}

/// Enqueues `j` in the caller's transaction; false when its business key was seen before.
pub async fn enqueue_in(c: &mut AnyConnection, j: &JobRow) -> Result<bool, ServiceError> {
    Ok(q::enqueue(c, j).await?)
}

impl Billpay {
    /// Leases due jobs and runs them once. Returns what happened.
    pub async fn run_due_jobs(&self, owner: &str) -> Result<RunReport, ServiceError> {
        let now = self.clock.now_micros();
        let until = now + self.config().job_lease.as_micros() as i64;
        let engine = self.store.engine();
        let owner_w = owner.to_string();
        let charge_batch = i64::from(self.config().autopay.charge_batch.max(1));
        // AutoPay charges are leased apart, many at a time: they are charged as a batch. The
        // second lease takes any kind, oldest first, so nothing waits behind a long AutoPay run.
        let (mut charges, leased) = self
            .store
            .write(move |c| {
                Box::pin(async move {
                    let charges = q::lease_kind(
                        c,
                        engine,
                        &owner_w,
                        now,
                        until,
                        charge_batch,
                        q::KindFilter::Only(crate::autopay::JOB_CHARGE),
                    )
                    .await?;
                    let others =
                        q::lease_kind(c, engine, &owner_w, now, until, BATCH, q::KindFilter::Any)
                            .await?;
                    Ok::<_, billpay_store::StoreError>((charges, others))
                })
            })
            .await?;
        let (more, batch): (Vec<JobRow>, Vec<JobRow>) = leased
            .into_iter()
            .partition(|j| j.kind == crate::autopay::JOB_CHARGE);
        charges.extend(more);
        let mut report = RunReport {
            leased: (charges.len() + batch.len()) as u64,
            ..Default::default()
        };
        // The batch runs concurrently: each job's writes wait for a durable commit, and the
        // store's group commit makes one fsync serve many of them.
        use futures::StreamExt;
        let others = futures::stream::iter(batch)
            .map(|j| async move { self.run_and_record(j, owner).await })
            .buffer_unordered(CONCURRENCY)
            .collect::<Vec<Result<Outcome, ServiceError>>>();
        let (charged, outcomes) = futures::join!(self.run_autopay_batch(charges, owner), others);
        for o in charged?
            .into_iter()
            .chain(outcomes.into_iter().collect::<Result<Vec<_>, _>>()?)
        {
            match o {
                Outcome::Done => report.done += 1,
                Outcome::Retried => report.retried += 1,
                Outcome::Failed => report.failed += 1,
            }
        }
        Ok(report)
    }

    /// Runs one leased job and records how it went.
    pub(crate) async fn run_and_record(
        &self,
        j: JobRow,
        owner: &str,
    ) -> Result<Outcome, ServiceError> {
        let outcome = self.run_job(&j).await;
        self.record_job(j, outcome, owner).await
    }

    /// Records how a leased job's run went: done, queued again with backoff, or failed.
    pub(crate) async fn record_job(
        &self,
        j: JobRow,
        outcome: Result<(), JobError>,
        owner: &str,
    ) -> Result<Outcome, ServiceError> {
        let now = self.clock.now_micros();
        let id = j.id.clone();
        let owner_w = owner.to_string();
        match outcome {
            Ok(()) => {
                self.store
                    .write(move |c| Box::pin(async move { q::finish(c, &id, &owner_w, now).await }))
                    .await?;
                metrics::counter!("billpay_jobs_total", "kind" => j.kind.clone(), "outcome" => "done").increment(1);
                Ok(Outcome::Done)
            }
            Err(e) => {
                let (message, retry_at) = match e {
                    JobError::Retry(m) if j.attempts < j.max_attempts => {
                        (m, Some(now + backoff(j.attempts).as_micros() as i64))
                    }
                    JobError::Retry(m) | JobError::Fatal(m) => (m, None),
                };
                tracing::warn!(job = %j.id, kind = %j.kind, attempts = j.attempts, error = %message, "job failed");
                let retried = retry_at.is_some();
                self.store
                    .write(move |c| {
                        Box::pin(
                            async move { q::fail(c, &id, &owner_w, &message, retry_at, now).await },
                        )
                    })
                    .await?;
                let (outcome, label) = if retried {
                    (Outcome::Retried, "retry")
                } else {
                    (Outcome::Failed, "failed")
                };
                metrics::counter!("billpay_jobs_total", "kind" => j.kind.clone(), "outcome" => label).increment(1);
                Ok(outcome)
            }
        }
    }

    /// Runs jobs until none is due. For tests and `billpay jobs run`.
    pub async fn drain_jobs(&self, owner: &str) -> Result<RunReport, ServiceError> {
        let mut total = RunReport::default();
        for _ in 0..10_000 {
            let r = self.run_due_jobs(owner).await?;
            total.leased += r.leased;
            total.done += r.done;
            total.retried += r.retried;
            total.failed += r.failed;
            if r.leased == 0 {
                break;
            }
        }
        Ok(total)
    }

    async fn run_job(&self, j: &JobRow) -> Result<(), JobError> {
        let payload: serde_json::Value = serde_json::from_str(&j.payload)
            .map_err(|e| JobError::Fatal(format!("the job's payload is not JSON: {e}")))?;
        match j.kind.as_str() {
            crate::autopay::JOB_CHARGE => self.run_autopay_charge(j, &payload).await,
            crate::autopay::JOB_NOTICE => self.run_autopay_notice(j, &payload).await,
            crate::autopay::JOB_SCHEDULED => self.run_scheduled_payment(j, &payload).await,
            crate::collections::JOB_LATE_FEE => self.run_late_fee(&payload).await,
            crate::collections::JOB_DISCONNECT_NOTICE => self.run_disconnect_notice(&payload).await,
            crate::collections::JOB_SUSPEND => self.run_suspend(j, &payload).await,
            crate::collections::JOB_RESTORE => self.run_restore(&payload).await,
            crate::collections::JOB_INSTALLMENT => self.run_installment_check(&payload).await,
            crate::collections::JOB_WEBHOOK => self.deliver_webhook(&payload).await,
            crate::reminders::JOB_REMINDER => self.run_reminder(j, &payload).await,
            crate::billing::JOB_CYCLE => self.run_billing_cycle(&payload).await,
            other => Err(JobError::Fatal(format!("no job kind \"{other}\""))),
        }
    }

    /// The operator's view: counts per kind and status, and the jobs in a window.
    pub async fn job_counts(&self) -> Result<Vec<(String, String, i64)>, ServiceError> {
        let mut c = self.store.read_conn().await?;
        Ok(q::job_counts(&mut c).await?)
    }

    pub async fn jobs_in(
        &self,
        status: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<JobRow>, ServiceError> {
        let mut c = self.store.read_conn().await?;
        Ok(q::jobs_with_status(&mut c, status, from, to, 500).await?)
    }
}

/// A worker's name in leases: host, process and a random suffix.
pub fn worker_name(b: &Billpay) -> String {
    format!(
        "worker-{}-{:08x}",
        std::process::id(),
        b.random.next_u64() as u32
    )
}

/// How long an idle worker waits before looking again.
pub const IDLE_WAIT: Duration = Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(1).as_secs(), 30);
        assert_eq!(backoff(2).as_secs(), 60);
        assert_eq!(backoff(3).as_secs(), 120);
        assert_eq!(backoff(30).as_secs(), 3600);
    }
}

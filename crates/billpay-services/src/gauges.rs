//! Gauges read from the database when Prometheus scrapes `/metrics`: how many jobs are due and
//! how late the oldest is (job lag), customer messages waiting in the outbox, and open chat
//! conversations by state. Counters and histograms are recorded where things happen; these are
//! states, so they are read fresh at each scrape (a few indexed counts) rather than kept in
//! memory that another instance's work would make wrong.

use billpay_store::dashboard as q;

use crate::{Billpay, ServiceError};

/// The chat states a gauge is kept for (always written, zero included, so a dashboard's
/// queries find them before the first chat).
const OPEN_CHAT_STATES: [&str; 3] = ["bot", "queued", "assigned"];

impl Billpay {
    /// Sets `billpay_jobs_due`, `billpay_jobs_lag_seconds`, `billpay_outbox_queued{channel}`
    /// and `billpay_chat_conversations_open{state}` from the database, and
    /// `billpay_settings_version`, the console's settings version this instance has in force
    /// (instances that disagree for more than a few seconds cannot read the database).
    pub async fn refresh_gauges(&self) -> Result<(), ServiceError> {
        let now = self.clock.now_micros();
        let mut c = self.store.read_conn().await?;
        let jobs = q::jobs_due(&mut c, now).await?;
        let email = billpay_store::outbox::queued_count(&mut c, "email.").await?;
        let sms = billpay_store::outbox::queued_count(&mut c, "sms.").await?;
        let chats = q::open_chats(&mut c).await?;
        drop(c);
        // Gauges are f64 by the exporter's API; these are counts and seconds, not money.
        metrics::gauge!("billpay_jobs_due").set(jobs.due as f64);
        let lag_secs = jobs
            .oldest_run_at
            .map(|t| (now - t).max(0) / 1_000_000)
            .unwrap_or(0);
        metrics::gauge!("billpay_jobs_lag_seconds").set(lag_secs as f64);
        metrics::gauge!("billpay_settings_version").set(self.settings.version() as f64);
        metrics::gauge!("billpay_outbox_queued", "channel" => "email").set(email as f64);
        metrics::gauge!("billpay_outbox_queued", "channel" => "sms").set(sms as f64);
        for state in OPEN_CHAT_STATES {
            let n = chats
                .iter()
                .find(|(s, _)| s == state)
                .map(|(_, n)| *n)
                .unwrap_or(0);
            metrics::gauge!("billpay_chat_conversations_open", "state" => state).set(n as f64);
        }
        Ok(())
    }
}

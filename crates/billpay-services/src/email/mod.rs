//! Email delivery of the outbox through an SMTP relay.
//!
//! Every notice is written to the `outbox` table in the transaction of the event that causes
//! it. Senders (inside every `billpay serve` and `billpay worker`, in the job runner's loop)
//! lease due `email.*` rows — the lease is committed before the SMTP conversation starts, with
//! `FOR UPDATE SKIP LOCKED` on PostgreSQL so two instances never hold one row — render them
//! ([`render`]), hand them to the relay over lettre's async SMTP connection (tokio + rustls), and
//! mark them `sent`. A 4xx reply, or a failure before the message went out, queues the row again
//! with backoff, up to `max_attempts`; a 5xx reply fails it at once (retrying a permanent
//! reject cannot help); a row that cannot be rendered fails at once. The reason is kept in
//! `last_error` for `billpay outbox`.
//!
//! We drive lettre's `AsyncSmtpConnection` (the building block of its `AsyncSmtpTransport`)
//! step by step rather than calling `AsyncTransport::send`, because only then do we know
//! whether the message and its final `.` had gone out when a conversation broke: before, the
//! relay cannot have it and a retry is safe; after, without a reply, it may have been accepted.
//!
//! **At most once.** A row is handed to the relay only while leased in `sending`. Two cases
//! are unknowable, and both end as *failed*, never re-sent automatically, so billpay never mails
//! a customer twice: the connection broke (or timed out) after the final `.` with no reply
//! (RFC 1047), recorded at once as "interrupted"; and a sender that stopped (crash, kill) after
//! the relay accepted the message but before `sent` was committed: the row stays `sending`, and
//! when its lease runs out the next sender fails it as "interrupted". An operator checks the
//! relay's log for its Message-ID (`<outbox id@from domain>`) and requeues it with `billpay
//! outbox retry` if it never left. A requeued message keeps its Message-ID, so a duplicate is
//! recognisable to mail clients.

pub mod render;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use billpay_domain::SecretString;
use billpay_store::outbox::{self as q, DeliveryRow};

use lettre::Message;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, Tls, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};

use crate::{Billpay, ServiceError};

pub use render::{RenderContext, RenderError, RenderedEmail};

/// Rows leased per pass; they are sent [`CONCURRENCY`] at a time.
pub const BATCH: i64 = 8;
/// Messages in flight to the relay at once.
pub const CONCURRENCY: usize = 4;
/// The longest one message may take, from connecting to the relay's final reply. The lease is
/// far longer ([`LEASE`]), so a live sender never loses a row mid-conversation.
pub const SEND_DEADLINE: Duration = Duration::from_secs(120);
/// How long a sender holds a row: a whole batch at [`SEND_DEADLINE`] each, with room to spare.
pub const LEASE: jiff::SignedDuration = jiff::SignedDuration::from_mins(15);
/// First retry delay; doubles each attempt, capped at [`BACKOFF_MAX`].
pub const BACKOFF_BASE: jiff::SignedDuration = jiff::SignedDuration::from_secs(60);
pub const BACKOFF_MAX: jiff::SignedDuration = jiff::SignedDuration::from_hours(2);
/// Longest error text kept on a row.
const ERROR_LEN_MAX: usize = 500;
/// The kinds this sender delivers; `sms.` rows are [`crate::sms`]'s.
pub const KIND_PREFIX: &str = "email.";

const INTERRUPTED: &str = "interrupted: the sender stopped during the SMTP conversation, so the \
    relay may or may not have accepted it; check the relay's log for its Message-ID, then \
    `billpay outbox retry` it if it never left";

/// How the connection to the relay is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain text: only for a relay on loopback or a trusted local network.
    None,
    /// STARTTLS, required (usually port 587).
    StartTls,
    /// TLS from the first byte (usually port 465).
    Tls,
}

impl SmtpTls {
    pub fn parse(s: &str) -> Option<SmtpTls> {
        match s {
            "none" => Some(SmtpTls::None),
            "starttls" => Some(SmtpTls::StartTls),
            "tls" => Some(SmtpTls::Tls),
            _ => None,
        }
    }
}

/// The relay and the sender's identity. Its `Debug` never shows the password.
#[derive(Clone, Debug)]
pub struct EmailConfig {
    pub smtp_host: String,
    pub smtp_port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    /// PEM root certificates trusted besides the built-in Mozilla roots (a private relay's CA).
    pub extra_root_pem: Option<Vec<u8>>,
    pub from_address: String,
    pub from_name: String,
    pub reply_to: Option<String>,
    /// Attempts before a message fails for good.
    pub max_attempts: i64,
    /// Timeout of connecting to the relay (lettre applies it to the connection only); a whole
    /// message is bounded by [`SEND_DEADLINE`].
    pub timeout: Duration,
}

/// What one delivery pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    pub leased: u64,
    pub sent: u64,
    pub retrying: u64,
    pub failed: u64,
    /// Rows found `sending` with an expired lease and failed as interrupted.
    pub interrupted: u64,
}

impl DeliveryReport {
    pub(crate) fn tally(&mut self, attempt: &Attempt) {
        match attempt {
            Attempt::Sent => self.sent += 1,
            Attempt::Transient(_) => self.retrying += 1,
            Attempt::Permanent(_) => self.failed += 1,
            Attempt::Interrupted(_) => {
                self.failed += 1;
                self.interrupted += 1;
            }
        }
    }

    pub fn add(&mut self, r: &DeliveryReport) {
        self.leased += r.leased;
        self.sent += r.sent;
        self.retrying += r.retrying;
        self.failed += r.failed;
        self.interrupted += r.interrupted;
    }
}

/// How an attempt ended.
pub(crate) enum Attempt {
    Sent,
    /// Try again later.
    Transient(String),
    /// Retrying cannot help.
    Permanent(String),
    /// The whole message went to the relay but no answer came back (the connection broke or
    /// timed out after the final `.`): it may have been accepted. Failed, never retried.
    Interrupted(String),
}

/// The outbox's delivery channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Channel {
    Email,
    Sms,
}

impl Channel {
    pub(crate) fn kind_prefix(self) -> &'static str {
        match self {
            Channel::Email => KIND_PREFIX,
            Channel::Sms => crate::sms::KIND_PREFIX,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "text message",
        }
    }

    fn count(self, outcome: &'static str) {
        match self {
            Channel::Email => {
                metrics::counter!("billpay_email_messages_total", "outcome" => outcome).increment(1)
            }
            Channel::Sms => {
                metrics::counter!("billpay_sms_messages_total", "outcome" => outcome).increment(1)
            }
        }
    }
}

/// The retry delay after `attempts` tries.
pub fn backoff(attempts: i64) -> jiff::SignedDuration {
    let exp = u32::try_from(attempts.clamp(1, 20) - 1).unwrap_or(0);
    let secs = BACKOFF_BASE
        .as_secs()
        .saturating_mul(2_i64.saturating_pow(exp));
    jiff::SignedDuration::from_secs(secs.min(BACKOFF_MAX.as_secs()))
}

pub(crate) fn clip(s: &str) -> String {
    let s = billpay_domain::mask_card_numbers(s);
    match s.char_indices().nth(ERROR_LEN_MAX) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.into_owned(),
    }
}

/// A Message-ID derived from the outbox row: the same row always has the same one.
pub fn message_id(row_id: &str, from_address: &str) -> String {
    let domain = from_address
        .rsplit_once('@')
        .map(|(_, d)| d)
        .unwrap_or("billpay.invalid");
    format!("<{row_id}@{domain}>")
}

/// SMTP reply codes that are about the relay's configuration (authentication), not the
/// message: retried, so a wrong password does not fail every queued message at once.
fn is_config_reply(code: u16) -> bool {
    matches!(code, 530 | 534 | 535 | 538)
}

/// Classifies a transport error.
fn classify(e: &lettre::transport::smtp::Error) -> Attempt {
    let text = clip(&e.to_string());
    match e.status().map(u16::from) {
        Some(code) if e.is_permanent() && !is_config_reply(code) => {
            Attempt::Permanent(format!("rejected by the relay: {text}"))
        }
        Some(code) if e.is_permanent() => Attempt::Transient(format!(
            "the relay refused our login ({code}): check [email] username and password; {text}"
        )),
        _ => Attempt::Transient(text),
    }
}

impl EmailConfig {
    /// How the connection is secured, with the roots the relay's certificate must chain to.
    fn tls_mode(&self) -> Result<Tls, String> {
        if self.tls == SmtpTls::None {
            return Ok(Tls::None);
        }
        let mut params = TlsParameters::builder(self.smtp_host.clone());
        if let Some(pem) = &self.extra_root_pem {
            let cert = Certificate::from_pem(pem)
                .map_err(|e| format!("[email] ca_file is not a PEM certificate: {e}"))?;
            params = params.add_root_certificate(cert);
        }
        let params = params
            .build_rustls()
            .map_err(|e| format!("TLS setup: {e}"))?;
        Ok(match self.tls {
            SmtpTls::Tls => Tls::Wrapper(params),
            _ => Tls::Required(params),
        })
    }

    fn credentials(&self) -> Option<Credentials> {
        match (&self.username, &self.password) {
            (Some(user), Some(pass)) => Some(Credentials::new(
                user.clone(),
                pass.expose_secret().to_string(),
            )),
            _ => None,
        }
    }
}

/// One SMTP conversation for one message, on lettre's async connection (the building block of
/// its `AsyncSmtpTransport`), so that we know how far it got: `dot_sent` is set just before the
/// message and its final `.` go out. An error before that point means the relay cannot have
/// the message; after it, without a reply, nobody knows.
async fn converse(
    cfg: &EmailConfig,
    tls: &Tls,
    message: &Message,
    dot_sent: &AtomicBool,
) -> Result<(), lettre::transport::smtp::Error> {
    let hello = ClientId::default();
    let wrapper = match tls {
        Tls::Wrapper(p) => Some(p.clone()),
        _ => None,
    };
    let mut conn = AsyncSmtpConnection::connect_tokio1(
        (cfg.smtp_host.as_str(), cfg.smtp_port),
        Some(cfg.timeout),
        &hello,
        wrapper,
        None,
    )
    .await?;
    let result = async {
        if let Tls::Required(p) = tls {
            // Refuses a relay that does not offer STARTTLS: never falls back to plain text.
            conn.starttls(p.clone(), &hello).await?;
        }
        if let Some(creds) = cfg.credentials() {
            conn.auth(DEFAULT_MECHANISMS, &creds).await?;
        }
        let envelope = message.envelope();
        let bytes = message.formatted();
        let mut params = Vec::new();
        let non_ascii = envelope
            .from()
            .is_some_and(|a| !AsRef::<str>::as_ref(a).is_ascii())
            || envelope
                .to()
                .iter()
                .any(|a| !AsRef::<str>::as_ref(a).is_ascii());
        if non_ascii && conn.server_info().supports_feature(Extension::SmtpUtfEight) {
            params.push(MailParameter::SmtpUtfEight);
        }
        if !bytes.is_ascii() && conn.server_info().supports_feature(Extension::EightBitMime) {
            params.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        conn.command(Mail::new(envelope.from().cloned(), params))
            .await?;
        for to in envelope.to() {
            conn.command(Rcpt::new(to.clone(), Vec::new())).await?;
        }
        conn.command(Data).await?;
        dot_sent.store(true, Ordering::SeqCst);
        conn.message(&bytes).await?;
        Ok(())
    }
    .await;
    // Accepted: say goodbye politely; a failure to do so changes nothing. After an error the
    // connection is only dropped: lettre 0.11's `abort` writes QUIT and panics on a stream a
    // failed STARTTLS handshake left empty (found by the untrusted-certificate test).
    if result.is_ok() {
        let _ = conn.quit().await;
    }
    result
}

impl Billpay {
    /// Renders an outbox row as it would be sent (for previews and tests).
    pub fn render_outbox_row(
        &self,
        kind: &str,
        payload: &str,
    ) -> Result<RenderedEmail, RenderError> {
        let config = self.config();
        let ctx = RenderContext {
            biller: &config.biller,
            public_url: config.ivr.public_url.as_deref(),
        };
        render::render(kind, payload, &ctx)
    }

    /// Leases due email rows and sends them once. Without an `[email]` configuration, does
    /// nothing (rows stay queued).
    pub async fn deliver_email(&self, owner: &str) -> Result<DeliveryReport, ServiceError> {
        let Some(cfg) = self.config().email.clone() else {
            return Ok(DeliveryReport::default());
        };
        let (interrupted, batch) = self
            .lease_outbox(Channel::Email, owner, INTERRUPTED)
            .await?;
        let mut report = DeliveryReport {
            leased: batch.len() as u64,
            interrupted: interrupted.len() as u64,
            ..Default::default()
        };
        if batch.is_empty() {
            return Ok(report);
        }
        let tls = match cfg.tls_mode() {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::error!(error = %e, "email TLS settings cannot be used");
                None
            }
        };
        use futures::StreamExt;
        let outcomes: Vec<Result<Attempt, ServiceError>> = futures::stream::iter(batch)
            .map(|row| {
                let cfg = &cfg;
                let tls = tls.as_ref();
                async move {
                    let attempt = match tls {
                        Some(t) => self.send_one(cfg, t, &row).await,
                        None => Attempt::Transient("the email TLS settings cannot be used".into()),
                    };
                    self.record_attempt(Channel::Email, cfg.max_attempts, row, owner, attempt)
                        .await
                }
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        for o in outcomes {
            report.tally(&o?);
        }
        Ok(report)
    }

    /// Runs delivery passes until nothing is due. For tests and `billpay outbox send`.
    pub async fn drain_email(&self, owner: &str) -> Result<DeliveryReport, ServiceError> {
        let mut total = DeliveryReport::default();
        for _ in 0..10_000 {
            let r = self.deliver_email(owner).await?;
            total.add(&r);
            if r.leased == 0 {
                break;
            }
        }
        Ok(total)
    }

    fn build_message(&self, cfg: &EmailConfig, row: &DeliveryRow) -> Result<Message, Attempt> {
        let email = self
            .render_outbox_row(&row.kind, &row.payload_json)
            .map_err(|e| Attempt::Permanent(e.to_string()))?;
        let to: Mailbox = row
            .recipient
            .parse()
            .map_err(|e| Attempt::Permanent(format!("the recipient address is invalid: {e}")))?;
        let from = Mailbox::new(
            Some(cfg.from_name.clone()).filter(|n| !n.is_empty()),
            cfg.from_address
                .parse()
                .map_err(|e| Attempt::Permanent(format!("[email] from_address: {e}")))?,
        );
        let micros = u64::try_from(self.clock.now_micros()).unwrap_or(0);
        let mut m = Message::builder()
            .from(from)
            .to(to)
            .subject(email.subject)
            .message_id(Some(message_id(&row.id, &cfg.from_address)))
            .date(std::time::UNIX_EPOCH + Duration::from_micros(micros));
        if let Some(r) = &cfg.reply_to {
            let r: Mailbox = r
                .parse()
                .map_err(|e| Attempt::Permanent(format!("[email] reply_to: {e}")))?;
            m = m.reply_to(r);
        }
        m.multipart(MultiPart::alternative_plain_html(email.text, email.html))
            .map_err(|e| Attempt::Permanent(format!("the message cannot be built: {e}")))
    }

    async fn send_one(&self, cfg: &EmailConfig, tls: &Tls, row: &DeliveryRow) -> Attempt {
        let message = match self.build_message(cfg, row) {
            Ok(m) => m,
            Err(a) => return a,
        };
        // Its own task: a panic inside the SMTP client becomes an attempt that failed, not a
        // dead sender loop.
        let dot_sent = std::sync::Arc::new(AtomicBool::new(false));
        let (cfg_t, tls_t, flag) = (cfg.clone(), tls.clone(), dot_sent.clone());
        let task = tokio::spawn(async move {
            tokio::time::timeout(SEND_DEADLINE, converse(&cfg_t, &tls_t, &message, &flag)).await
        });
        let outcome = match task.await {
            Ok(o) => o,
            Err(e) => {
                let why = format!("the SMTP client failed: {e}");
                return if dot_sent.load(Ordering::SeqCst) {
                    Attempt::Interrupted(format!(
                        "{why}, after the message was sent; it may have been delivered: check the relay's log for its Message-ID before `billpay outbox retry`"
                    ))
                } else {
                    Attempt::Transient(why)
                };
            }
        };
        let after_dot = dot_sent.load(Ordering::SeqCst);
        match outcome {
            Ok(Ok(())) => Attempt::Sent,
            // A reply to the final `.` is an answer either way: 4xx/5xx mean not accepted.
            Ok(Err(e)) if e.status().is_some() => classify(&e),
            Ok(Err(e)) if after_dot => Attempt::Interrupted(format!(
                "interrupted after the message was sent, before the relay answered ({}); it may have been delivered: check the relay's log for its Message-ID before `billpay outbox retry`",
                clip(&e.to_string())
            )),
            Ok(Err(e)) => classify(&e),
            Err(_) if after_dot => Attempt::Interrupted(format!(
                "no answer from the relay within {} s after the message was sent; it may have been delivered: check the relay's log for its Message-ID before `billpay outbox retry`",
                SEND_DEADLINE.as_secs()
            )),
            Err(_) => Attempt::Transient(format!(
                "the relay did not finish within {} s",
                SEND_DEADLINE.as_secs()
            )),
        }
    }

    /// Fails this channel's rows whose sender stopped mid-send (`interrupted` says what to do),
    /// then leases a batch of its due rows.
    pub(crate) async fn lease_outbox(
        &self,
        channel: Channel,
        owner: &str,
        interrupted: &'static str,
    ) -> Result<(Vec<String>, Vec<DeliveryRow>), ServiceError> {
        let now = self.clock.now_micros();
        let until = now + LEASE.as_micros() as i64;
        let engine = self.store.engine();
        let owner_w = owner.to_string();
        let prefix = channel.kind_prefix();
        let (failed, batch) = self
            .store
            .write(move |c| {
                Box::pin(async move {
                    let failed = q::fail_interrupted(c, prefix, interrupted, now).await?;
                    let batch = q::lease(c, engine, prefix, &owner_w, now, until, BATCH).await?;
                    Ok::<_, billpay_store::StoreError>((failed, batch))
                })
            })
            .await?;
        for id in &failed {
            tracing::error!(outbox = %id, channel = channel.name(), "delivery interrupted; failed for an operator to check (billpay outbox)");
            channel.count("interrupted");
        }
        Ok((failed, batch))
    }

    /// Records an attempt on the leased row, and returns it.
    pub(crate) async fn record_attempt(
        &self,
        channel: Channel,
        max_attempts: i64,
        row: DeliveryRow,
        owner: &str,
        attempt: Attempt,
    ) -> Result<Attempt, ServiceError> {
        let now = self.clock.now_micros();
        let id = row.id.clone();
        let owner_w = owner.to_string();
        let (label, kept) = match &attempt {
            Attempt::Sent => {
                let kept = self
                    .store
                    .write(move |c| {
                        Box::pin(async move { q::mark_sent(c, &id, &owner_w, now).await })
                    })
                    .await?;
                tracing::info!(outbox = %row.id, kind = %row.kind, attempts = row.attempts, "{} sent", channel.name());
                ("sent", kept)
            }
            Attempt::Transient(m) | Attempt::Permanent(m) | Attempt::Interrupted(m) => {
                let retry_at = match &attempt {
                    Attempt::Transient(_) if row.attempts < max_attempts => {
                        Some(now + backoff(row.attempts).as_micros() as i64)
                    }
                    _ => None,
                };
                let message = m.clone();
                let kept = self
                    .store
                    .write(move |c| {
                        Box::pin(async move {
                            q::mark_failed(c, &id, &owner_w, &message, retry_at, now).await
                        })
                    })
                    .await?;
                if matches!(attempt, Attempt::Interrupted(_)) {
                    tracing::error!(outbox = %row.id, kind = %row.kind, attempts = row.attempts, error = %m, "{} delivery interrupted; failed for an operator to check (billpay outbox)", channel.name());
                    ("interrupted", kept)
                } else if retry_at.is_some() {
                    tracing::warn!(outbox = %row.id, kind = %row.kind, attempts = row.attempts, error = %m, "{} not sent; will retry", channel.name());
                    ("retry", kept)
                } else {
                    tracing::error!(outbox = %row.id, kind = %row.kind, attempts = row.attempts, error = %m, "{} failed", channel.name());
                    ("failed", kept)
                }
            }
        };
        if !kept {
            // Only an operator's requeue or an expired lease can take a row from its sender;
            // the lease is far longer than a send, so this means the process was stalled.
            tracing::error!(outbox = %row.id, "{} row changed hands during its send", channel.name());
        }
        channel.count(label);
        Ok(match attempt {
            Attempt::Transient(m) if label == "failed" => Attempt::Permanent(m),
            a => a,
        })
    }

    /// The operator's view: counts per kind and status.
    pub async fn outbox_counts(&self) -> Result<Vec<(String, String, i64)>, ServiceError> {
        let mut c = self.store.read_conn().await?;
        Ok(q::counts(&mut c).await?)
    }

    /// Failed rows, and queued rows waiting to retry, newest first.
    pub async fn outbox_problems(
        &self,
        limit: i64,
    ) -> Result<(Vec<DeliveryRow>, Vec<DeliveryRow>), ServiceError> {
        let mut c = self.store.read_conn().await?;
        Ok((
            q::with_errors(&mut c, "failed", limit).await?,
            q::with_errors(&mut c, "queued", limit).await?,
        ))
    }

    /// Queues a failed row again (an operator checked it never left).
    pub async fn outbox_retry(&self, id: &str) -> Result<bool, ServiceError> {
        let now = self.clock.now_micros();
        let id = id.to_string();
        Ok(self
            .store
            .write(move |c| Box::pin(async move { q::requeue(c, &id, now).await }))
            .await?)
    }

    /// How many email rows are waiting.
    pub async fn email_queued(&self) -> Result<i64, ServiceError> {
        let mut c = self.store.read_conn().await?;
        Ok(q::queued_count(&mut c, KIND_PREFIX).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(1).as_secs(), 60);
        assert_eq!(backoff(2).as_secs(), 120);
        assert_eq!(backoff(30).as_secs(), 7200);
    }

    #[test]
    fn message_id_is_derived_from_the_row() {
        assert_eq!(
            message_id("msg_1", "billing@river.example"),
            "<msg_1@river.example>"
        );
    }

    #[test]
    fn debug_never_shows_the_password() {
        let cfg = EmailConfig {
            smtp_host: "smtp.example.com".into(),
            smtp_port: 587,
            tls: SmtpTls::StartTls,
            username: Some("billpay".into()),
            password: Some(SecretString::new("hunter2-smtp".into())),
            extra_root_pem: None,
            from_address: "billing@example.com".into(),
            from_name: "Riverbend".into(),
            reply_to: None,
            max_attempts: 5,
            timeout: Duration::from_secs(30),
        };
        assert!(!format!("{cfg:?}").contains("hunter2"));
    }
}

//! billpay-services: what billpay does, independent of how it is asked.
//!
//! Owns the payment flow (idempotency, duplicate guard, processor call, ledger posting,
//! receipts), refunds, reconciliation of in-doubt payments and settlement of bank debits,
//! accounts and statements, API keys, and the ledger verifier. Channels (HTTP, CLI, and later
//! IVR and chat) call these functions and render their results; they hold no business rules.
//!
//! Depends on the domain and the store. Must not depend on HTTP or any channel: the one place
//! a channel's format enters is the [`Render`] trait, which lets the HTTP layer decide what an
//! idempotent response looks like while this crate stores it in the same transaction as the
//! payment it describes.

pub mod accounts;
pub mod ach;
pub mod apikeys;
pub mod audit;
pub mod autopay;
mod autopay_batch;
pub mod billing;
pub mod chat;
pub mod clock;
pub mod collections;
pub mod dashboard;
pub mod email;
mod error;
pub mod gauges;
pub mod ivr;
pub mod jobs;
pub mod limits;
pub mod lockbox;
pub mod model;
pub mod payments;
pub mod portal;
pub mod portal_account;
pub mod portal_auth;
pub mod portal_factors;
pub mod processor;
pub mod receipts;
pub mod reconcile;
pub mod reminders;
pub mod reports;
pub mod reviews;
pub mod risk;
pub mod sandbox;
pub mod settings;
pub mod settlement;
pub mod sms;
pub mod staff;
pub mod stripe;
pub mod stripe_events;
pub mod totp;
pub mod vault;
pub mod verify;
pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use billpay_store::Store;

pub use clock::{Clock, ManualClock, OsRandom, Random, ShiftedClock, SystemClock};
pub use error::ServiceError;
pub use model::*;
pub use payments::{NewMethod, PaymentRequest, PaymentResult, RefundRequest, RefundResult};
pub use processor::Processor;

/// A response as the channel will send it: stored with an idempotency key and replayed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub body: String,
}

/// How the calling channel renders results that are stored for idempotent replay.
pub trait Render: Send + Sync + 'static {
    fn payment(&self, result: &PaymentResult) -> StoredResponse;
    fn refund(&self, result: &RefundResult) -> StoredResponse;
}

/// Who the biller is, for receipts and messages.
#[derive(Clone, Debug)]
pub struct BillerProfile {
    pub name: String,
    pub support_phone: String,
}

impl Default for BillerProfile {
    fn default() -> Self {
        BillerProfile {
            name: "Riverbend Utilities (demo)".into(),
            support_phone: "1-800-555-0199".into(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct ServiceConfig {
    /// A second payment of the same amount on the same account within this window is refused
    /// unless confirmed.
    pub duplicate_window: jiff::SignedDuration,
    /// Deadline for one processor call; past it the payment is in doubt.
    pub processor_timeout: Duration,
    /// A payment still in doubt this long after it started is resolved by asking the processor.
    pub in_doubt_after: jiff::SignedDuration,
    /// How long a request waits for another request with the same idempotency key to finish.
    pub idempotency_wait: Duration,
    /// Idempotency keys are kept at least this long.
    pub idempotency_retention: jiff::SignedDuration,
    /// Flat convenience fee in minor units added to card and bank payments; 0 means none.
    /// Never charged on AutoPay (card-network rules forbid it on recurring payments).
    pub convenience_fee_minor: i64,
    pub biller: BillerProfile,
    pub ivr: IvrConfig,
    /// Bank debits billpay originates itself in NACHA files.
    pub ach: ach::AchConfig,
    /// AutoPay and scheduled payments.
    pub autopay: autopay::AutopayConfig,
    /// How long a worker holds a job before another worker may take it over.
    pub job_lease: jiff::SignedDuration,
    /// Late fees, suspension and restoration, arrangements.
    pub collections: collections::CollectionsConfig,
    /// The SMTP relay the outbox is delivered through; None leaves messages queued.
    pub email: Option<email::EmailConfig>,
    /// The text-message provider (Twilio's Messages API shape); None leaves texts queued.
    pub sms: Option<sms::SmsConfig>,
    /// The customer portal: branding and sessions.
    pub portal: portal::PortalConfig,
    /// The Stripe connector when `processor = "stripe"`: its webhooks, dispute and payment
    /// lookups go through it (payments go through `Billpay::processor`, which is it or wraps it).
    pub stripe: Option<Arc<stripe::StripeProcessor>>,
    /// The agent desk: what each role may do.
    pub desk: staff::DeskConfig,
    /// The fraud rules every customer payment passes.
    /// Shared: every customer payment takes a handle into its claim transaction.
    pub risk: Arc<billpay_domain::risk::RiskRules>,
    /// When bill reminders go out, and the quiet hours they wait through.
    pub reminders: reminders::ReminderConfig,
}

/// The phone line's settings.
#[derive(Clone, Debug)]
pub struct IvrConfig {
    /// The provider queue representatives answer (TwiML `<Enqueue>`).
    pub agent_queue: String,
    /// Representatives answer from this hour (inclusive) to `agent_hours_end` (exclusive),
    /// every day, in `timezone`. The automated line itself answers around the clock.
    pub agent_hours_start: u8,
    pub agent_hours_end: u8,
    /// The biller's time zone: "today" for card expiry and TEL authorizations, agent hours.
    pub timezone: String,
    /// The telephony provider's auth token: every webhook's X-Twilio-Signature is an HMAC
    /// under it. Without one the phone line answers nothing (403).
    pub twilio_auth_token: Option<billpay_domain::SecretString>,
    /// The public base URL the provider calls (the one it signs), e.g. https://pay.example.com.
    pub public_url: Option<String>,
    /// Representatives' phone number (E.164). When set, a transfer dials it and the answering
    /// representative first hears who is calling about which verified account; otherwise the
    /// caller waits in `agent_queue`, hearing their place in line and the estimated wait.
    pub agent_number: Option<String>,
    /// Failed account verifications (account number or ZIP) one caller number may make in a
    /// window, over all its calls; past it, its callers go to a representative.
    pub verification_limit: crate::limits::Limit,
}

impl Default for IvrConfig {
    fn default() -> Self {
        IvrConfig {
            agent_queue: "billing".into(),
            agent_hours_start: 8,
            agent_hours_end: 20,
            timezone: "America/New_York".into(),
            twilio_auth_token: None,
            public_url: None,
            agent_number: None,
            verification_limit: crate::limits::Limit {
                max: 10,
                window: jiff::SignedDuration::from_hours(1),
            },
        }
    }
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            duplicate_window: jiff::SignedDuration::from_mins(10),
            processor_timeout: Duration::from_secs(20),
            in_doubt_after: jiff::SignedDuration::from_secs(60),
            idempotency_wait: Duration::from_secs(5),
            idempotency_retention: jiff::SignedDuration::from_hours(72),
            convenience_fee_minor: 0,
            biller: BillerProfile::default(),
            ivr: IvrConfig::default(),
            ach: ach::AchConfig::default(),
            autopay: autopay::AutopayConfig::default(),
            job_lease: jobs::LEASE,
            collections: collections::CollectionsConfig::default(),
            email: None,
            sms: None,
            portal: portal::PortalConfig::default(),
            stripe: None,
            desk: staff::DeskConfig::default(),
            risk: Arc::default(),
            reminders: reminders::ReminderConfig::default(),
        }
    }
}

/// Everything the services need, cheap to clone.
#[derive(Clone)]
pub struct Billpay {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn Random>,
    pub processor: Arc<dyn Processor>,
    pub render: Arc<dyn Render>,
    /// The configuration in force, changeable in the console: read it with
    /// [`Billpay::config`].
    pub settings: Arc<settings::Live>,
    /// The keyring for saved payment methods; without one, methods cannot be saved or used.
    pub vault: Option<Arc<vault::Vault>>,
    /// Live chat's announcements of new messages to this process's listeners.
    pub chat: Arc<chat::ChatHub>,
}

impl Billpay {
    pub fn new_id(&self, prefix: &str) -> String {
        clock::new_id(prefix, self.clock.as_ref(), self.random.as_ref())
    }
}

//! Settings: defaults, then an optional TOML file, then environment variables and flags.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::cli::GlobalArgs;

pub const DEFAULT_DATABASE_URL: &str = "sqlite://./billpay-data/billpay.db?mode=rwc";

/// A secret given in the configuration: its `Debug` shows nothing.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct SecretSetting(pub String);

impl std::fmt::Debug for SecretSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretSetting(***)")
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub database_url: String,
    pub listen: SocketAddr,
    pub max_connections: u32,
    pub sandbox_latency_ms: u64,
    pub biller_name: String,
    pub support_phone: String,
    /// Flat convenience fee in cents; 0 (the default) charges no fee.
    pub convenience_fee_cents: i64,
    /// Seconds a processor call may take before the payment is in doubt.
    pub processor_timeout_secs: u64,
    /// The vault keyring file (key-encryption keys for saved payment methods). Alternatively
    /// the keyring itself in the environment variable BILLPAY_VAULT_KEYRING.
    pub keyring_file: Option<std::path::PathBuf>,
    /// TLS certificate chain and private key (PEM) to serve HTTPS natively.
    pub tls_cert: Option<std::path::PathBuf>,
    pub tls_key: Option<std::path::PathBuf>,
    /// The telephony provider's auth token (also BILLPAY_TWILIO_AUTH_TOKEN): webhooks are
    /// verified with it. Without one the phone line refuses every webhook.
    #[serde(skip_serializing)]
    pub twilio_auth_token: Option<SecretSetting>,
    /// The public base URL the provider calls, as it signs it (also BILLPAY_PUBLIC_URL).
    pub public_url: Option<String>,
    /// The provider queue representatives answer.
    pub agent_queue: String,
    /// Representatives' phone number (E.164, e.g. "+18005550100"): when set, transfers dial
    /// it and the representative hears the verified account first, instead of `agent_queue`.
    pub agent_number: Option<String>,
    /// Representatives answer from this hour to `agent_hours_end`, in `ivr_timezone`.
    pub agent_hours_start: u8,
    pub agent_hours_end: u8,
    pub ivr_timezone: String,
    /// Failed account verifications (account number or ZIP) one caller number may make per
    /// hour, over all its calls; past it, its callers are handed to a representative.
    pub ivr_verify_failures_per_hour: u32,
    /// `[ach]`: bank debits billpay originates itself in NACHA files.
    pub ach: AchSettings,
    /// `[autopay]`: AutoPay and scheduled payments.
    pub autopay: AutopaySettings,
    /// Seconds a job worker holds a job before another worker may take it over.
    pub job_lease_secs: u64,
    /// `[collections]`: late fees, suspension and restoration, payment arrangements.
    pub collections: CollectionsSettings,
    /// `[email]`: the SMTP relay notices are delivered through. Absent: messages stay queued.
    pub email: Option<EmailSettings>,
    /// `[sms]`: the text-message provider (Twilio's Messages API shape). Absent: texts stay
    /// queued.
    pub sms: Option<SmsSettings>,
    /// `[portal]`: the customer portal's branding and sessions.
    pub portal: PortalSettings,
    /// `[desk]`: what a representative may do without a supervisor.
    pub desk: DeskSettings,
    /// `[risk]`: the fraud rules every customer payment passes (see README, "Fraud rules").
    pub risk: RiskSettings,
    /// `[reminders]`: when bill reminders go out.
    pub reminders: ReminderSettings,
    /// Which processor moves the money: "sandbox" (the default, for demos and tests) or
    /// "stripe" (with a `[stripe]` table).
    pub processor: String,
    /// `[stripe]`: the Stripe connector, used when `processor = "stripe"`.
    pub stripe: Option<StripeSettings>,
}

/// The `[stripe]` table of the configuration file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StripeSettings {
    /// Stripe's API root; a local server in tests (http:// only on loopback).
    #[serde(default = "default_stripe_api_base")]
    pub api_base: String,
    /// A file holding the secret key (`sk_test_…`/`sk_live_…`, its first line)...
    pub secret_key_file: Option<std::path::PathBuf>,
    /// ...or the name of an environment variable holding it (default BILLPAY_STRIPE_SECRET_KEY
    /// when neither is given).
    pub secret_key_env: Option<String>,
    /// The webhook endpoint's signing secret (`whsec_…`), from a file...
    pub webhook_secret_file: Option<std::path::PathBuf>,
    /// ...or an environment variable (default BILLPAY_STRIPE_WEBHOOK_SECRET when set).
    pub webhook_secret_env: Option<String>,
    /// Seconds a webhook's signed timestamp may differ from now (Stripe's default: 300).
    #[serde(default = "default_stripe_tolerance")]
    pub webhook_tolerance_secs: u64,
    /// Send bank debits to Stripe (`us_bank_account`); otherwise they are refused unless
    /// `[ach] originate` sends them in your own NACHA files.
    #[serde(default)]
    pub bank_debits: bool,
    /// Seconds one HTTP attempt may take (1 to 30).
    #[serde(default = "default_stripe_timeout")]
    pub request_timeout_secs: u64,
    /// Attempts of one call, 1 to 5 (retries only where Stripe's idempotency makes them safe).
    #[serde(default = "default_stripe_attempts")]
    pub max_attempts: u32,
    /// Calls in a row that found Stripe failing before the circuit opens (1 to 100).
    #[serde(default = "default_stripe_breaker_failures")]
    pub breaker_failures: u32,
    /// Seconds an open circuit refuses calls before one trial call (1 to 600).
    #[serde(default = "default_stripe_breaker_cooldown")]
    pub breaker_cooldown_secs: u64,
}

fn default_stripe_api_base() -> String {
    billpay_services::stripe::STRIPE_API_BASE.into()
}
fn default_stripe_tolerance() -> u64 {
    300
}
fn default_stripe_timeout() -> u64 {
    8
}
fn default_stripe_attempts() -> u32 {
    3
}
fn default_stripe_breaker_failures() -> u32 {
    5
}
fn default_stripe_breaker_cooldown() -> u64 {
    30
}

/// A secret from a file (its first line) or an environment variable; `None` when neither is
/// given and `default_env` is unset.
fn read_secret(
    table: &str,
    name: &str,
    file: Option<&std::path::Path>,
    env: Option<&str>,
    default_env: &str,
) -> Result<Option<String>> {
    let value = match (file, env) {
        (Some(_), Some(_)) => {
            anyhow::bail!("[{table}] give {name}_file or {name}_env, not both")
        }
        (Some(path), None) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("[{table}] reading {name}_file {}", path.display()))?;
            Some(text.lines().next().unwrap_or_default().trim().to_string())
        }
        (None, Some(var)) => Some(std::env::var(var).map_err(|_| {
            anyhow::anyhow!("[{table}] {name}_env: the environment variable {var} is not set")
        })?),
        (None, None) => std::env::var(default_env).ok(),
    };
    match value {
        Some(v) if v.is_empty() => anyhow::bail!("[{table}] the {name} is empty"),
        other => Ok(other),
    }
}

impl StripeSettings {
    /// Checks the table and reads the secrets; they are never logged or printed.
    pub fn config(&self) -> Result<billpay_services::stripe::StripeConfig> {
        let base = self.api_base.trim_end_matches('/');
        let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
            .iter()
            .any(|l| base.starts_with(l));
        if !base.starts_with("https://") && !loopback {
            anyhow::bail!("[stripe] api_base must start with https:// (http:// only on loopback)");
        }
        let key = read_secret(
            "stripe",
            "secret_key",
            self.secret_key_file.as_deref(),
            self.secret_key_env.as_deref(),
            "BILLPAY_STRIPE_SECRET_KEY",
        )?
        .ok_or_else(|| {
            anyhow::anyhow!(
                "[stripe] needs the secret key: give secret_key_file or secret_key_env, or set BILLPAY_STRIPE_SECRET_KEY"
            )
        })?;
        if !(key.starts_with("sk_") || key.starts_with("rk_")) {
            anyhow::bail!(
                "[stripe] the secret key must be a Stripe secret or restricted key (sk_test_…, sk_live_…, rk_…)"
            );
        }
        let webhook = read_secret(
            "stripe",
            "webhook_secret",
            self.webhook_secret_file.as_deref(),
            self.webhook_secret_env.as_deref(),
            "BILLPAY_STRIPE_WEBHOOK_SECRET",
        )?;
        if webhook.as_deref().is_some_and(|w| !w.starts_with("whsec_")) {
            anyhow::bail!(
                "[stripe] the webhook secret must be the endpoint's signing secret (whsec_…)"
            );
        }
        if !(1..=3600).contains(&self.webhook_tolerance_secs) {
            anyhow::bail!("[stripe] webhook_tolerance_secs must be 1 to 3600");
        }
        if !(1..=30).contains(&self.request_timeout_secs) {
            anyhow::bail!("[stripe] request_timeout_secs must be 1 to 30");
        }
        if !(1..=5).contains(&self.max_attempts) {
            anyhow::bail!("[stripe] max_attempts must be 1 to 5");
        }
        if !(1..=100).contains(&self.breaker_failures) {
            anyhow::bail!("[stripe] breaker_failures must be 1 to 100");
        }
        if !(1..=600).contains(&self.breaker_cooldown_secs) {
            anyhow::bail!("[stripe] breaker_cooldown_secs must be 1 to 600");
        }
        let mut c = billpay_services::stripe::StripeConfig::new(
            base,
            billpay_domain::SecretString::new(key),
        );
        c.webhook_secret = webhook.map(billpay_domain::SecretString::new);
        c.webhook_tolerance_secs = i64::try_from(self.webhook_tolerance_secs).unwrap_or(300);
        c.bank_debits = self.bank_debits;
        c.request_timeout = std::time::Duration::from_secs(self.request_timeout_secs);
        c.max_attempts = self.max_attempts;
        c.breaker_failures = self.breaker_failures;
        c.breaker_cooldown = std::time::Duration::from_secs(self.breaker_cooldown_secs);
        Ok(c)
    }
}

/// The `[sms]` table of the configuration file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SmsSettings {
    /// The provider's API root: Twilio's by default.
    #[serde(default = "default_sms_api_base")]
    pub api_base: String,
    /// The account SID (Twilio: `AC…`).
    pub account_sid: String,
    /// A file holding the auth token (its first line)...
    pub auth_token_file: Option<std::path::PathBuf>,
    /// ...or the name of an environment variable holding it.
    pub auth_token_env: Option<String>,
    /// The number texts come from (E.164, e.g. "+18005550199")...
    pub from: Option<String>,
    /// ...or a messaging service (Twilio: `MG…`) that picks the number.
    pub messaging_service_sid: Option<String>,
    /// Attempts before a text fails for good (1 to 50).
    #[serde(default = "default_email_attempts")]
    pub max_attempts: u32,
    /// Seconds one request to the provider may take (1 to 120).
    #[serde(default = "default_email_timeout")]
    pub timeout_secs: u64,
}

fn default_sms_api_base() -> String {
    "https://api.twilio.com".into()
}

impl SmsSettings {
    /// Checks the table and reads the token; the token is never logged or printed.
    pub fn config(&self) -> Result<billpay_services::sms::SmsConfig> {
        let base = self.api_base.trim_end_matches('/');
        let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
            .iter()
            .any(|l| base.starts_with(l));
        if !base.starts_with("https://") && !loopback {
            anyhow::bail!("[sms] api_base must start with https:// (http:// only on loopback)");
        }
        if self.account_sid.is_empty()
            || !self
                .account_sid
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            anyhow::bail!(
                "[sms] account_sid must be the provider's account id, letters and digits"
            );
        }
        let from = match (&self.from, &self.messaging_service_sid) {
            (Some(_), Some(_)) => {
                anyhow::bail!("[sms] give from or messaging_service_sid, not both")
            }
            (None, None) => anyhow::bail!(
                "[sms] needs from (the sending number, like \"+18005550199\") or messaging_service_sid"
            ),
            (Some(f), None) => Some(
                billpay_services::accounts::normalize_phone(f)
                    .ok()
                    .filter(|n| n == f)
                    .ok_or_else(|| {
                        anyhow::anyhow!("[sms] from must be a number like \"+18005550199\"")
                    })?,
            ),
            (None, Some(_)) => None,
        };
        if !(1..=50).contains(&self.max_attempts) {
            anyhow::bail!("[sms] max_attempts must be 1 to 50");
        }
        if !(1..=120).contains(&self.timeout_secs) {
            anyhow::bail!("[sms] timeout_secs must be 1 to 120");
        }
        let token = match (&self.auth_token_file, &self.auth_token_env) {
            (Some(_), Some(_)) => {
                anyhow::bail!("[sms] give auth_token_file or auth_token_env, not both")
            }
            (Some(path), None) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("[sms] reading auth_token_file {}", path.display()))?;
                text.lines().next().unwrap_or_default().trim().to_string()
            }
            (None, Some(var)) => std::env::var(var).map_err(|_| {
                anyhow::anyhow!("[sms] auth_token_env: the environment variable {var} is not set")
            })?,
            (None, None) => {
                anyhow::bail!("[sms] needs the auth token: give auth_token_file or auth_token_env")
            }
        };
        if token.is_empty() {
            anyhow::bail!("[sms] the auth token is empty");
        }
        Ok(billpay_services::sms::SmsConfig {
            api_base: base.to_string(),
            account_sid: self.account_sid.clone(),
            auth_token: billpay_domain::SecretString::new(token),
            from,
            messaging_service_sid: self.messaging_service_sid.clone(),
            max_attempts: i64::from(self.max_attempts),
            timeout: std::time::Duration::from_secs(self.timeout_secs),
        })
    }
}

/// The `[portal]` table: how the customer portal looks and how long its sessions last. The
/// biller's name and phone number are `biller_name` and `support_phone`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PortalSettings {
    /// The biller's colour, `#rrggbb` (header, buttons, links). White text is drawn on it:
    /// choose a dark enough colour (contrast 4.5:1 or more).
    pub brand_color: String,
    /// When representatives answer, as customers read it.
    pub support_hours: String,
    /// Minutes without a request after which a session ends (1 to 120).
    pub session_idle_mins: u32,
    /// Hours after which a session ends however busy (1 to 24).
    pub session_absolute_hours: u32,
    /// Serve `/demo/mailbox`, every email in the outbox. On in `serve --demo`; never turn it on
    /// for real customers.
    pub demo_mailbox: bool,
    /// Rate limits per client address: the window in minutes (1 to 1440), and how many quick-pay
    /// lookups, sign-ins, codes (and security answers), reset requests and enrolments one
    /// address may make in it. Over the limit the page says to wait, with `Retry-After`.
    pub rate_window_mins: u32,
    pub lookups_per_window: u32,
    pub signins_per_window: u32,
    pub codes_per_window: u32,
    pub resets_per_window: u32,
    pub enrolments_per_window: u32,
    /// Behind a reverse proxy or load balancer: the header it puts the client's address in
    /// (`x-forwarded-for`: the right-most entry, the one your proxy added, is used). Unset: the
    /// connection's own address. Set it only when every request comes through that proxy, or
    /// clients can choose their own address.
    pub client_ip_header: Option<String>,
    /// Hours (0 to 24, biller's time zone, `ivr_timezone`) representatives answer live chat,
    /// from `chat_hours_start` to `chat_hours_end`; outside them the chat offers a message
    /// form. Unset: representatives are reachable around the clock.
    pub chat_hours_start: Option<u8>,
    pub chat_hours_end: Option<u8>,
}

impl Default for PortalSettings {
    fn default() -> Self {
        let d = billpay_services::portal::PortalConfig::default();
        PortalSettings {
            brand_color: d.brand_color,
            support_hours: d.support_hours,
            session_idle_mins: (d.session_idle.as_secs() / 60) as u32,
            session_absolute_hours: (d.session_absolute.as_secs() / 3600) as u32,
            demo_mailbox: false,
            rate_window_mins: (d.limits.lookup.window.as_secs() / 60) as u32,
            lookups_per_window: d.limits.lookup.max as u32,
            signins_per_window: d.limits.signin.max as u32,
            codes_per_window: d.limits.code.max as u32,
            resets_per_window: d.limits.reset.max as u32,
            enrolments_per_window: d.limits.enrol.max as u32,
            client_ip_header: None,
            chat_hours_start: None,
            chat_hours_end: None,
        }
    }
}

impl PortalSettings {
    pub fn config(&self) -> Result<billpay_services::portal::PortalConfig> {
        if !billpay_services::portal::is_hex_color(&self.brand_color) {
            anyhow::bail!("[portal] brand_color must be a colour like \"#0b5394\"");
        }
        if !(1..=120).contains(&self.session_idle_mins) {
            anyhow::bail!("[portal] session_idle_mins must be 1 to 120");
        }
        if !(1..=24).contains(&self.session_absolute_hours) {
            anyhow::bail!("[portal] session_absolute_hours must be 1 to 24");
        }
        if self.support_hours.chars().count() > 200 {
            anyhow::bail!("[portal] support_hours must be at most 200 characters");
        }
        if !(1..=1440).contains(&self.rate_window_mins) {
            anyhow::bail!("[portal] rate_window_mins must be 1 to 1440");
        }
        for (name, n) in [
            ("lookups_per_window", self.lookups_per_window),
            ("signins_per_window", self.signins_per_window),
            ("codes_per_window", self.codes_per_window),
            ("resets_per_window", self.resets_per_window),
            ("enrolments_per_window", self.enrolments_per_window),
        ] {
            if !(1..=1_000_000).contains(&n) {
                anyhow::bail!("[portal] {name} must be 1 to 1000000");
            }
        }
        if let Some(h) = &self.client_ip_header
            && (h.is_empty()
                || !h.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                || axum::http::HeaderName::from_bytes(h.as_bytes()).is_err())
        {
            anyhow::bail!(
                "[portal] client_ip_header must be a header name like \"x-forwarded-for\""
            );
        }
        let window = jiff::SignedDuration::from_mins(i64::from(self.rate_window_mins));
        let limit = |max: u32| billpay_services::limits::Limit {
            max: i64::from(max),
            window,
        };
        let chat_hours = match (self.chat_hours_start, self.chat_hours_end) {
            (None, None) => None,
            (Some(a), Some(b)) if a < b && b <= 24 => Some((a, b)),
            _ => anyhow::bail!(
                "[portal] chat_hours_start and chat_hours_end go together, as hours 0 to 24 with the start before the end"
            ),
        };
        Ok(billpay_services::portal::PortalConfig {
            chat_hours,
            brand_color: self.brand_color.clone(),
            support_hours: self.support_hours.clone(),
            session_idle: jiff::SignedDuration::from_mins(i64::from(self.session_idle_mins)),
            session_absolute: jiff::SignedDuration::from_hours(i64::from(
                self.session_absolute_hours,
            )),
            demo_mailbox: self.demo_mailbox,
            limits: billpay_services::limits::PortalLimits {
                lookup: limit(self.lookups_per_window),
                signin: limit(self.signins_per_window),
                code: limit(self.codes_per_window),
                reset: limit(self.resets_per_window),
                enrol: limit(self.enrolments_per_window),
            },
            client_ip_header: self
                .client_ip_header
                .as_ref()
                .map(|h| h.to_ascii_lowercase()),
        })
    }
}

/// The `[email]` table of the configuration file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSettings {
    /// The SMTP relay (your provider's submission host, or a local MTA).
    pub smtp_host: String,
    /// Default: 587 for starttls, 465 for tls, 25 for none.
    pub smtp_port: Option<u16>,
    /// "starttls" (default), "tls" (TLS from the first byte) or "none" (loopback only when
    /// logging in).
    #[serde(default = "default_tls")]
    pub tls: String,
    pub username: Option<String>,
    /// A file holding the password (its first line), e.g. a mounted secret...
    pub password_file: Option<std::path::PathBuf>,
    /// ...or the name of an environment variable holding it.
    pub password_env: Option<String>,
    /// Extra PEM root certificate(s) to trust, for a relay with a private CA.
    pub ca_file: Option<std::path::PathBuf>,
    pub from_address: String,
    /// The sender's display name; default: `biller_name`.
    pub from_name: Option<String>,
    pub reply_to: Option<String>,
    /// Attempts before a message fails for good (1 to 50).
    #[serde(default = "default_email_attempts")]
    pub max_attempts: u32,
    /// Seconds connecting to the relay may take (1 to 120); a whole message is bounded at 120 s.
    #[serde(default = "default_email_timeout")]
    pub timeout_secs: u64,
}

fn default_tls() -> String {
    "starttls".into()
}
fn default_email_attempts() -> u32 {
    10
}
fn default_email_timeout() -> u64 {
    30
}

/// A plausible single address: one @, no spaces or angle brackets (lettre checks the rest).
fn plain_address(a: &str) -> bool {
    a.split_once('@')
        .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.contains('@'))
        && !a.chars().any(|c| c.is_whitespace() || c == '<' || c == '>')
}

impl EmailSettings {
    /// Checks the table and reads the password; the password is never logged or printed.
    pub fn config(&self, biller_name: &str) -> Result<billpay_services::email::EmailConfig> {
        use billpay_services::email::{EmailConfig, SmtpTls};
        let tls = SmtpTls::parse(&self.tls).ok_or_else(|| {
            anyhow::anyhow!("[email] tls must be \"starttls\", \"tls\" or \"none\"")
        })?;
        if self.smtp_host.trim().is_empty() {
            anyhow::bail!("[email] smtp_host is empty");
        }
        if !plain_address(&self.from_address) {
            anyhow::bail!("[email] from_address must be an address like billing@example.com");
        }
        if let Some(r) = &self.reply_to
            && !plain_address(r)
        {
            anyhow::bail!("[email] reply_to must be an address like support@example.com");
        }
        if !(1..=50).contains(&self.max_attempts) {
            anyhow::bail!("[email] max_attempts must be 1 to 50");
        }
        if !(1..=120).contains(&self.timeout_secs) {
            anyhow::bail!("[email] timeout_secs must be 1 to 120");
        }
        let password = match (&self.password_file, &self.password_env) {
            (Some(_), Some(_)) => {
                anyhow::bail!("[email] give password_file or password_env, not both")
            }
            (Some(path), None) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("[email] reading password_file {}", path.display()))?;
                Some(text.lines().next().unwrap_or_default().to_string())
            }
            (None, Some(var)) => Some(std::env::var(var).map_err(|_| {
                anyhow::anyhow!("[email] password_env: the environment variable {var} is not set")
            })?),
            (None, None) => None,
        }
        .map(billpay_domain::SecretString::new);
        match (&self.username, &password) {
            (Some(_), None) => anyhow::bail!(
                "[email] a username needs a password: give password_file or password_env"
            ),
            (None, Some(_)) => anyhow::bail!("[email] a password needs a username"),
            _ => {}
        }
        let loopback = matches!(self.smtp_host.as_str(), "localhost" | "127.0.0.1" | "::1");
        if tls == SmtpTls::None && self.username.is_some() && !loopback {
            anyhow::bail!(
                "[email] tls = \"none\" would send the SMTP password in clear text to {}: use starttls or tls",
                self.smtp_host
            );
        }
        let extra_root_pem = match &self.ca_file {
            Some(path) => Some(
                std::fs::read(path)
                    .with_context(|| format!("[email] reading ca_file {}", path.display()))?,
            ),
            None => None,
        };
        Ok(EmailConfig {
            smtp_host: self.smtp_host.clone(),
            smtp_port: self.smtp_port.unwrap_or(match tls {
                SmtpTls::StartTls => 587,
                SmtpTls::Tls => 465,
                SmtpTls::None => 25,
            }),
            tls,
            username: self.username.clone(),
            password,
            extra_root_pem,
            from_address: self.from_address.clone(),
            from_name: self
                .from_name
                .clone()
                .unwrap_or_else(|| biller_name.to_string()),
            reply_to: self.reply_to.clone(),
            max_attempts: i64::from(self.max_attempts),
            timeout: std::time::Duration::from_secs(self.timeout_secs),
        })
    }
}

/// The `[desk]` table: the agent desk's role limits. Above them a supervisor (or an
/// administrator) must act.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeskSettings {
    /// The largest fee a representative may waive.
    pub agent_waiver_max_cents: i64,
    /// The largest payment a representative may take or schedule with a saved card, or send
    /// to the phone line for card entry.
    pub agent_payment_max_cents: i64,
}

impl Default for DeskSettings {
    fn default() -> Self {
        let d = billpay_services::staff::DeskConfig::default();
        DeskSettings {
            agent_waiver_max_cents: d.agent_waiver_max_minor,
            agent_payment_max_cents: d.agent_payment_max_minor,
        }
    }
}

/// The `[risk]` table: thresholds of the payment fraud rules. A rule fires when its count, over
/// the window, reaches its threshold; 0 turns it off. See
/// [`billpay_domain::risk::RiskRules`].
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RiskSettings {
    pub window_minutes: i64,
    pub source_declines: i64,
    pub source_accounts: i64,
    pub card_declines: i64,
    pub card_accounts: i64,
    pub account_window_hours: i64,
    pub account_cards: i64,
    pub bin_declines: i64,
    pub blocked_callers: Vec<String>,
    /// Review a payment above this many times the larger of the account's bill and its
    /// largest payment in 12 months (0 = off)...
    pub review_amount_factor: i64,
    /// ...when it is also above this amount (0 = no floor).
    pub review_amount_floor_cents: i64,
    /// Review a first payment with a saved method, or an account's first bank debit, above
    /// this amount (0 = off).
    pub review_first_use_cents: i64,
}

impl Default for RiskSettings {
    fn default() -> Self {
        let d = billpay_domain::risk::RiskRules::default();
        RiskSettings {
            window_minutes: d.window_minutes,
            source_declines: d.source_declines,
            source_accounts: d.source_accounts,
            card_declines: d.card_declines,
            card_accounts: d.card_accounts,
            account_window_hours: d.account_window_hours,
            account_cards: d.account_cards,
            bin_declines: d.bin_declines,
            blocked_callers: d.blocked_callers,
            review_amount_factor: d.review_amount_factor,
            review_amount_floor_cents: d.review_amount_floor_minor,
            review_first_use_cents: d.review_first_use_minor,
        }
    }
}

impl RiskSettings {
    /// The rules, checked; the error names the setting.
    pub fn rules(&self) -> Result<billpay_domain::risk::RiskRules, String> {
        let rules = billpay_domain::risk::RiskRules {
            window_minutes: self.window_minutes,
            source_declines: self.source_declines,
            source_accounts: self.source_accounts,
            card_declines: self.card_declines,
            card_accounts: self.card_accounts,
            account_window_hours: self.account_window_hours,
            account_cards: self.account_cards,
            bin_declines: self.bin_declines,
            blocked_callers: self.blocked_callers.clone(),
            review_amount_factor: self.review_amount_factor,
            review_amount_floor_minor: self.review_amount_floor_cents,
            review_first_use_minor: self.review_first_use_cents,
        };
        rules.validate()?;
        Ok(rules)
    }
}

/// A setting that is a time of day, "HH:MM"; the error names it and shows `example`.
fn time_of_day(setting: &str, value: &str, example: &str) -> Result<jiff::civil::Time> {
    jiff::civil::Time::strptime("%H:%M", value)
        .map_err(|_| anyhow::anyhow!("{setting} must be a time like \"{example}\""))
}

/// The `[reminders]` table: when bill reminders (bill ready, due soon, past due) go out, in
/// the customer's time zone.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReminderSettings {
    /// "HH:MM" reminders are sent at.
    pub send_at: String,
    /// Days before the due date of the "due soon" reminder (1 to 14).
    pub due_soon_days: i64,
    /// Quiet hours, "HH:MM", over midnight: at least 21:00 to 08:00 (TCPA).
    pub quiet_start: String,
    pub quiet_end: String,
}

impl Default for ReminderSettings {
    fn default() -> Self {
        let d = billpay_services::reminders::ReminderConfig::default();
        let hm = |t: jiff::civil::Time| t.strftime("%H:%M").to_string();
        ReminderSettings {
            send_at: hm(d.send_at),
            due_soon_days: d.due_soon_days,
            quiet_start: hm(d.quiet_start),
            quiet_end: hm(d.quiet_end),
        }
    }
}

impl ReminderSettings {
    pub fn config(&self) -> Result<billpay_services::reminders::ReminderConfig> {
        let c = billpay_services::reminders::ReminderConfig {
            send_at: time_of_day("[reminders] send_at", &self.send_at, "08:00")?,
            due_soon_days: self.due_soon_days,
            quiet_start: time_of_day("[reminders] quiet_start", &self.quiet_start, "08:00")?,
            quiet_end: time_of_day("[reminders] quiet_end", &self.quiet_end, "08:00")?,
        };
        c.check().map_err(anyhow::Error::msg)?;
        Ok(c)
    }
}

/// The configuration file as the console's starting point: the console's versions are laid
/// over it and pass [`Settings::check`], exactly as the file did.
pub struct FileSource {
    table: toml::Table,
    /// Never serialised into `table`: kept aside and put back.
    twilio_auth_token: Option<SecretSetting>,
}

impl FileSource {
    pub fn new(settings: &Settings) -> Result<FileSource> {
        let table =
            toml::Table::try_from(settings).context("reading back the settings for the console")?;
        Ok(FileSource {
            table,
            twilio_auth_token: settings.twilio_auth_token.clone(),
        })
    }

    fn lookup(&self, key: &str) -> Option<&toml::Value> {
        let mut parts = key.split('.');
        let mut v = self.table.get(parts.next()?)?;
        for p in parts {
            v = v.as_table()?.get(p)?;
        }
        Some(v)
    }

    /// The file's settings with `overrides` laid over them.
    pub fn with(&self, overrides: &billpay_services::settings::Values) -> Result<Settings, String> {
        let mut table = self.table.clone();
        for (key, value) in overrides {
            if billpay_services::settings::field(key).is_none() {
                return Err(format!("{key} cannot be changed in the console"));
            }
            let (tables, name) = match key.rsplit_once('.') {
                Some((t, n)) => (Some(t), n),
                None => (None, key.as_str()),
            };
            let mut at = &mut table;
            if let Some(t) = tables {
                for part in t.split('.') {
                    at = at
                        .entry(part)
                        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                        .as_table_mut()
                        .ok_or_else(|| format!("{key}: {part} is not a table"))?;
                }
            }
            if value.is_null() {
                at.remove(name);
            } else {
                let v = toml::Value::try_from(value).map_err(|e| format!("{key}: {e}"))?;
                at.insert(name.to_string(), v);
            }
        }
        let mut s: Settings = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| e.message().to_string())?;
        s.twilio_auth_token = self.twilio_auth_token.clone();
        Ok(s)
    }
}

impl billpay_services::settings::SettingsSource for FileSource {
    fn file_values(&self) -> billpay_services::settings::Values {
        billpay_services::settings::FIELDS
            .iter()
            .map(|f| {
                let v = self
                    .lookup(f.key)
                    .and_then(|v| serde_json::to_value(v).ok())
                    .unwrap_or(serde_json::Value::Null);
                (f.key.to_string(), v)
            })
            .collect()
    }

    fn build(
        &self,
        current: &billpay_services::ServiceConfig,
        overrides: &billpay_services::settings::Values,
    ) -> Result<billpay_services::ServiceConfig, String> {
        let s = self.with(overrides)?;
        s.check().map_err(|e| format!("{e:#}"))?;
        let mut c = s.service_config();
        // What the file does not give: the processor in use and this process's own tuning.
        c.stripe = current.stripe.clone();
        c.in_doubt_after = current.in_doubt_after;
        c.duplicate_window = current.duplicate_window;
        c.idempotency_wait = current.idempotency_wait;
        c.idempotency_retention = current.idempotency_retention;
        c.ach.originate = current.ach.originate;
        c.portal.demo_mailbox = current.portal.demo_mailbox;
        Ok(c)
    }
}

/// The `[collections]` table of the configuration file. Every step is off until configured.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CollectionsSettings {
    /// Days after the due date before a late fee.
    pub grace_days: u32,
    /// A flat late fee (0 = none)...
    pub late_fee_cents: i64,
    /// ...or a percentage of the past-due amount, in basis points (150 = 1.5%), with a floor
    /// and a cap.
    pub late_fee_percent_bps: u32,
    pub late_fee_min_cents: i64,
    pub late_fee_max_cents: i64,
    /// No late fee or suspension for less than this past due.
    pub minimum_past_due_cents: i64,
    /// Days past due before service is suspended (0 = never suspend).
    pub suspend_after_days: u32,
    /// Days before the suspension the disconnection notice is sent.
    pub disconnect_notice_days: u32,
    /// Days with no suspension besides weekends and US federal holidays.
    pub no_suspension_dates: Vec<String>,
    pub arrangement_max_installments: u32,
    pub arrangement_max_extension_days: u32,
    pub arrangement_max_broken_per_year: u32,
    pub arrangement_grace_days: u32,
    pub arrangement_minimum_past_due_cents: i64,
    /// Hardship programs agents can enroll accounts in, e.g. ["LIHEAP", "Medical baseline"].
    pub hardship_programs: Vec<String>,
}

impl Default for CollectionsSettings {
    fn default() -> Self {
        CollectionsSettings {
            grace_days: 5,
            late_fee_cents: 0,
            late_fee_percent_bps: 0,
            late_fee_min_cents: 0,
            late_fee_max_cents: 0,
            minimum_past_due_cents: 1_000,
            suspend_after_days: 0,
            disconnect_notice_days: 10,
            no_suspension_dates: Vec::new(),
            arrangement_max_installments: 6,
            arrangement_max_extension_days: 30,
            arrangement_max_broken_per_year: 1,
            arrangement_grace_days: 3,
            arrangement_minimum_past_due_cents: 1_000,
            hardship_programs: Vec::new(),
        }
    }
}

impl CollectionsSettings {
    pub fn config(&self) -> Result<billpay_services::collections::CollectionsConfig> {
        use billpay_domain::{Currency, LateFee, LateFeePolicy, Money, SuspensionPolicy};
        let usd = |c: i64| Money::new(c, Currency::USD);
        if [
            self.late_fee_cents,
            self.late_fee_min_cents,
            self.late_fee_max_cents,
            self.minimum_past_due_cents,
        ]
        .iter()
        .any(|c| *c < 0)
        {
            anyhow::bail!("[collections] amounts must not be negative");
        }
        if self.late_fee_cents > 0 && self.late_fee_percent_bps > 0 {
            anyhow::bail!("[collections] give late_fee_cents or late_fee_percent_bps, not both");
        }
        let fee = if self.late_fee_cents > 0 {
            Some(LateFee::Flat(usd(self.late_fee_cents)))
        } else if self.late_fee_percent_bps > 0 {
            if self.late_fee_max_cents < self.late_fee_min_cents {
                anyhow::bail!("[collections] late_fee_max_cents is below late_fee_min_cents");
            }
            Some(LateFee::Percent {
                basis_points: self.late_fee_percent_bps,
                minimum: usd(self.late_fee_min_cents),
                maximum: usd(if self.late_fee_max_cents == 0 {
                    i64::MAX / 4
                } else {
                    self.late_fee_max_cents
                }),
            })
        } else {
            None
        };
        let mut extra = Vec::new();
        for d in &self.no_suspension_dates {
            extra.push(d.parse::<jiff::civil::Date>().map_err(|_| {
                anyhow::anyhow!(
                    "[collections] no_suspension_dates: \"{d}\" is not a date like 2027-12-26"
                )
            })?);
        }
        let federal = billpay_domain::BusinessCalendar::us_federal(2024..=2045);
        let calendar = billpay_domain::BusinessCalendar::new(federal.holidays().chain(extra));
        Ok(billpay_services::collections::CollectionsConfig {
            late_fee: fee.map(|fee| LateFeePolicy {
                grace_days: self.grace_days,
                fee,
                minimum_past_due: usd(self.minimum_past_due_cents),
            }),
            suspension: (self.suspend_after_days > 0).then(|| SuspensionPolicy {
                days_past_due: self.suspend_after_days,
                notice_lead_days: self.disconnect_notice_days,
                minimum_past_due: usd(self.minimum_past_due_cents),
            }),
            arrangements: billpay_domain::ArrangementRules {
                minimum_past_due: usd(self.arrangement_minimum_past_due_cents),
                max_installments: self.arrangement_max_installments,
                max_extension_days: self.arrangement_max_extension_days,
                max_broken_last_12_months: self.arrangement_max_broken_per_year,
                grace_days: self.arrangement_grace_days,
            },
            calendar,
            hardship_programs: self.hardship_programs.clone(),
        })
    }
}

/// The `[autopay]` table of the configuration file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AutopaySettings {
    /// Local time of day (the account's time zone) automatic payments run, "HH:MM".
    pub run_time: String,
    /// Days before an AutoPay charge the customer is told of it.
    pub notice_days: u8,
    /// The page customers are sent to when an automatic payment fails.
    pub fix_url: String,
    /// AutoPay charges a worker takes and charges together (1 to 2,000).
    pub charge_batch: u32,
}

impl Default for AutopaySettings {
    fn default() -> Self {
        AutopaySettings {
            run_time: "06:00".into(),
            notice_days: 3,
            fix_url: "/pay".into(),
            charge_batch: billpay_services::autopay::CHARGE_BATCH_DEFAULT,
        }
    }
}

impl AutopaySettings {
    fn config(&self) -> Result<billpay_services::autopay::AutopayConfig> {
        let run_time = time_of_day("[autopay] run_time", &self.run_time, "06:00")?;
        if self.notice_days > 30 {
            anyhow::bail!("[autopay] notice_days must be 0 to 30");
        }
        if !(1..=2000).contains(&self.charge_batch) {
            anyhow::bail!(
                "[autopay] charge_batch must be 1 to 2000, not {}",
                self.charge_batch
            );
        }
        Ok(billpay_services::autopay::AutopayConfig {
            run_time,
            notice_days: self.notice_days,
            fix_url: self.fix_url.clone(),
            charge_batch: self.charge_batch,
            ..Default::default()
        })
    }
}

/// The `[ach]` table of the configuration file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AchSettings {
    /// Originate bank debits in NACHA files sent to your bank (instead of the processor).
    pub originate: bool,
    pub odfi_routing: String,
    pub odfi_name: String,
    pub origin_id: String,
    pub origin_name: String,
    pub company_name: String,
    pub company_id: String,
    pub entry_description: String,
    /// "hold" (default), "send" or "off".
    pub prenote: String,
    pub prenote_hold_days: i64,
    pub settlement_days: i64,
    pub returned_payment_fee_cents: i64,
    /// Where `serve` writes the daily NACHA file (no daily file when unset).
    pub export_dir: Option<std::path::PathBuf>,
    /// Local time of the daily file, "HH:MM" in `ivr_timezone`.
    pub export_at: String,
}

impl Default for AchSettings {
    fn default() -> Self {
        let d = billpay_services::ach::AchConfig::default();
        AchSettings {
            originate: d.originate,
            odfi_routing: d.odfi_routing,
            odfi_name: d.odfi_name,
            origin_id: d.origin_id,
            origin_name: d.origin_name,
            company_name: d.company_name,
            company_id: d.company_id,
            entry_description: d.entry_description,
            prenote: "hold".into(),
            prenote_hold_days: d.prenote_hold_days,
            settlement_days: d.settlement_days,
            returned_payment_fee_cents: d.returned_payment_fee_minor,
            export_dir: None,
            export_at: "17:00".into(),
        }
    }
}

impl AchSettings {
    fn check(&self) -> Result<()> {
        billpay_domain::RoutingNumber::parse(&self.odfi_routing)
            .map_err(|e| anyhow::anyhow!("[ach] odfi_routing: {e}"))?;
        if self.origin_id.len() != 10 || !self.origin_id.is_ascii() {
            anyhow::bail!("[ach] origin_id must be 10 characters (\"1\" and your 9-digit tax id)");
        }
        if self.company_id.len() != 10 || !self.company_id.is_ascii() {
            anyhow::bail!("[ach] company_id must be 10 characters");
        }
        if billpay_services::ach::PrenotePolicy::parse(&self.prenote).is_none() {
            anyhow::bail!("[ach] prenote must be \"hold\", \"send\" or \"off\"");
        }
        if !(0..=30).contains(&self.prenote_hold_days) || !(0..=10).contains(&self.settlement_days)
        {
            anyhow::bail!("[ach] prenote_hold_days must be 0 to 30 and settlement_days 0 to 10");
        }
        if self.returned_payment_fee_cents < 0 {
            anyhow::bail!("[ach] returned_payment_fee_cents must not be negative");
        }
        self.export_time()?;
        Ok(())
    }

    /// `export_at` as a time of day.
    pub fn export_time(&self) -> Result<jiff::civil::Time> {
        time_of_day("[ach] export_at", &self.export_at, "17:00")
    }

    pub fn config(&self) -> billpay_services::ach::AchConfig {
        billpay_services::ach::AchConfig {
            originate: self.originate,
            odfi_routing: self.odfi_routing.clone(),
            odfi_name: self.odfi_name.clone(),
            origin_id: self.origin_id.clone(),
            origin_name: self.origin_name.clone(),
            company_name: self.company_name.clone(),
            company_id: self.company_id.clone(),
            entry_description: self.entry_description.clone(),
            prenote: billpay_services::ach::PrenotePolicy::parse(&self.prenote)
                .unwrap_or(billpay_services::ach::PrenotePolicy::Hold),
            prenote_hold_days: self.prenote_hold_days,
            settlement_days: self.settlement_days,
            returned_payment_fee_minor: self.returned_payment_fee_cents,
            ..Default::default()
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        let biller = billpay_services::BillerProfile::default();
        Settings {
            database_url: DEFAULT_DATABASE_URL.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_connections: 16,
            sandbox_latency_ms: 0,
            biller_name: biller.name,
            support_phone: biller.support_phone,
            convenience_fee_cents: 0,
            processor_timeout_secs: 20,
            keyring_file: None,
            tls_cert: None,
            tls_key: None,
            twilio_auth_token: None,
            public_url: None,
            agent_queue: "billing".into(),
            agent_number: None,
            agent_hours_start: 8,
            agent_hours_end: 20,
            ivr_timezone: "America/New_York".into(),
            ivr_verify_failures_per_hour: 10,
            ach: AchSettings::default(),
            autopay: AutopaySettings::default(),
            job_lease_secs: 300,
            collections: CollectionsSettings::default(),
            email: None,
            sms: None,
            portal: PortalSettings::default(),
            desk: DeskSettings::default(),
            risk: RiskSettings::default(),
            reminders: ReminderSettings::default(),
            processor: "sandbox".into(),
            stripe: None,
        }
    }
}

impl Settings {
    pub fn load(global: &GlobalArgs) -> Result<Settings> {
        let mut s = match &global.config {
            Some(path) => Self::from_file(path)?,
            None => Settings::default(),
        };
        if let Some(url) = &global.database {
            s.database_url = url.clone();
        }
        if let Some(path) = &global.keyring {
            s.keyring_file = Some(path.clone());
        }
        if s.database_url.starts_with("sqlite:") && !s.database_url.contains("mode=") {
            let sep = if s.database_url.contains('?') {
                '&'
            } else {
                '?'
            };
            s.database_url = format!("{}{sep}mode=rwc", s.database_url);
        }
        if let Ok(token) = std::env::var("BILLPAY_TWILIO_AUTH_TOKEN")
            && !token.is_empty()
        {
            s.twilio_auth_token = Some(SecretSetting(token));
        }
        if let Ok(url) = std::env::var("BILLPAY_PUBLIC_URL")
            && !url.is_empty()
        {
            s.public_url = Some(url);
        }
        s.check()?;
        Ok(s)
    }

    /// Checks every setting; the error names the one that is wrong. The file, the environment
    /// and the console's versions all pass here.
    pub fn check(&self) -> Result<()> {
        if self.biller_name.trim().is_empty() || self.biller_name.chars().count() > 80 {
            anyhow::bail!("biller_name must be 1 to 80 characters");
        }
        if self.support_phone.trim().is_empty() || self.support_phone.chars().count() > 32 {
            anyhow::bail!("support_phone must be 1 to 32 characters");
        }
        if !(1..=1000).contains(&self.ivr_verify_failures_per_hour) {
            anyhow::bail!("ivr_verify_failures_per_hour must be 1 to 1000");
        }
        if self.agent_hours_start >= self.agent_hours_end {
            anyhow::bail!("agent_hours_start must be before agent_hours_end");
        }
        if let Some(n) = &self.agent_number {
            let digits = n.strip_prefix('+').unwrap_or("");
            if !(8..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
                anyhow::bail!(
                    "agent_number must be a phone number in E.164 form, like \"+18005550100\""
                );
            }
        }
        if self.agent_queue.is_empty() || self.agent_queue.chars().count() > 64 {
            anyhow::bail!("agent_queue must be a queue name of 1 to 64 characters");
        }
        if self.agent_hours_start > 24 || self.agent_hours_end > 24 {
            anyhow::bail!("agent_hours_start and agent_hours_end are hours, 0 to 24");
        }
        self.ach.check()?;
        self.portal.config()?;
        self.autopay.config()?;
        self.collections.config()?;
        self.risk.rules().map_err(anyhow::Error::msg)?;
        if let Some(e) = &self.email {
            e.config(&self.biller_name)?;
        }
        if let Some(m) = &self.sms {
            m.config()?;
        }
        match (self.processor.as_str(), &self.stripe) {
            ("sandbox", _) => {}
            ("stripe", Some(t)) => {
                t.config()?;
            }
            ("stripe", None) => anyhow::bail!(
                "processor = \"stripe\" needs a [stripe] table (at least the secret key: secret_key_file, secret_key_env or BILLPAY_STRIPE_SECRET_KEY)"
            ),
            (other, _) => {
                anyhow::bail!("processor must be \"sandbox\" or \"stripe\", not {other:?}")
            }
        }
        if self.job_lease_secs < 1 || self.job_lease_secs > 3600 {
            anyhow::bail!("job_lease_secs must be 1 to 3600");
        }
        if self.convenience_fee_cents < 0 {
            anyhow::bail!("convenience_fee_cents must not be negative");
        }
        if self.processor_timeout_secs == 0 || self.processor_timeout_secs > 50 {
            anyhow::bail!(
                "processor_timeout_secs must be 1 to 50 (in-doubt payments are resolved after 60 s)"
            );
        }
        self.reminders.config()?;
        Ok(())
    }

    fn from_file(path: &Path) -> Result<Settings> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the configuration file {}", path.display()))?;
        toml::from_str(&text)
            .with_context(|| format!("in the configuration file {}", path.display()))
    }

    pub fn service_config(&self) -> billpay_services::ServiceConfig {
        billpay_services::ServiceConfig {
            convenience_fee_minor: self.convenience_fee_cents,
            processor_timeout: std::time::Duration::from_secs(self.processor_timeout_secs),
            biller: billpay_services::BillerProfile {
                name: self.biller_name.clone(),
                support_phone: self.support_phone.clone(),
            },
            ivr: billpay_services::IvrConfig {
                agent_queue: self.agent_queue.clone(),
                agent_hours_start: self.agent_hours_start,
                agent_hours_end: self.agent_hours_end,
                timezone: self.ivr_timezone.clone(),
                twilio_auth_token: self
                    .twilio_auth_token
                    .as_ref()
                    .map(|t| billpay_domain::SecretString::new(t.0.clone())),
                public_url: self.public_url.clone(),
                agent_number: self.agent_number.clone(),
                verification_limit: billpay_services::limits::Limit {
                    max: i64::from(self.ivr_verify_failures_per_hour.max(1)),
                    window: jiff::SignedDuration::from_hours(1),
                },
            },
            ach: self.ach.config(),
            autopay: self.autopay.config().unwrap_or_default(),
            job_lease: jiff::SignedDuration::from_secs(self.job_lease_secs as i64),
            collections: self.collections.config().unwrap_or_default(),
            // Checked by `load`; a table that no longer reads (a password file removed since)
            // is reported by `email_config` at start-up.
            email: self
                .email
                .as_ref()
                .and_then(|e| e.config(&self.biller_name).ok()),
            sms: self.sms.as_ref().and_then(|m| m.config().ok()),
            portal: self.portal.config().unwrap_or_default(),
            desk: billpay_services::staff::DeskConfig {
                agent_waiver_max_minor: self.desk.agent_waiver_max_cents,
                agent_payment_max_minor: self.desk.agent_payment_max_cents,
            },
            risk: std::sync::Arc::new(self.risk.rules().unwrap_or_default()),
            reminders: self.reminders.config().unwrap_or_default(),
            ..Default::default()
        }
    }
}

/// A database URL fit for messages: any password is hidden.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..scheme_end + 3], user, &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Where `serve --demo` keeps its keyring: beside the SQLite file, or in ./billpay-data.
pub fn demo_keyring_path(database_url: &str) -> std::path::PathBuf {
    let dir = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))
        .map(|rest| rest.split('?').next().unwrap_or_default())
        .and_then(|path| Path::new(path).parent().map(Path::to_path_buf))
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| std::path::PathBuf::from("./billpay-data"));
    dir.join("vault-keyring.toml")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stripe(extra: &str) -> Result<billpay_services::stripe::StripeConfig> {
        let t: StripeSettings = toml::from_str(extra).expect("parses");
        t.config()
    }

    #[test]
    fn stripe_secrets_come_from_files_and_are_checked() {
        let dir = tempfile::tempdir().expect("dir");
        let key = dir.path().join("key");
        std::fs::write(&key, "sk_test_abc123\nignored\n").expect("write");
        let whsec = dir.path().join("whsec");
        std::fs::write(&whsec, "whsec_xyz\n").expect("write");
        let c = stripe(&format!(
            "secret_key_file = \"{}\"\nwebhook_secret_file = \"{}\"",
            key.display(),
            whsec.display()
        ))
        .expect("valid");
        assert_eq!(c.secret_key.expose_secret(), "sk_test_abc123");
        assert_eq!(
            c.webhook_secret.as_ref().map(|w| w.expose_secret()),
            Some("whsec_xyz")
        );
        assert_eq!(c.api_base, "https://api.stripe.com");
        assert_eq!(c.webhook_tolerance_secs, 300);
        assert!(!c.bank_debits);
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("sk_test_abc123") && !shown.contains("whsec_xyz"),
            "{shown}"
        );

        let bad_key = dir.path().join("bad");
        std::fs::write(&bad_key, "pk_test_publishable\n").expect("write");
        let e = stripe(&format!("secret_key_file = \"{}\"", bad_key.display()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("secret key must be a Stripe secret"), "{e}");
        let e = stripe(&format!(
            "secret_key_file = \"{}\"\napi_base = \"http://stripe.example.com\"",
            key.display()
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("api_base must start with https://"), "{e}");
        let e = stripe(&format!(
            "secret_key_file = \"{}\"\nwebhook_secret_file = \"{}\"",
            key.display(),
            key.display()
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("whsec_"), "{e}");
        let e = stripe(&format!(
            "secret_key_file = \"{}\"\nmax_attempts = 9",
            key.display()
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("max_attempts must be 1 to 5"), "{e}");
        let e = stripe("secret_key_env = \"BILLPAY_TEST_SURELY_UNSET_VAR\"")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("BILLPAY_TEST_SURELY_UNSET_VAR is not set"),
            "{e}"
        );
        let e = stripe(&format!(
            "secret_key_file = \"{}\"\nsecret_key_env = \"X\"",
            key.display()
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("not both"), "{e}");
    }

    fn email(extra: &str) -> EmailSettings {
        let text = format!(
            "smtp_host = \"smtp.example.com\"\nfrom_address = \"billing@example.com\"\n{extra}"
        );
        toml::from_str(&text).expect("parses")
    }

    #[test]
    fn email_defaults_to_starttls_on_587() {
        let c = email("").config("Riverbend").expect("valid");
        assert_eq!(c.tls, billpay_services::email::SmtpTls::StartTls);
        assert_eq!(c.smtp_port, 587);
        assert_eq!(c.from_name, "Riverbend");
        assert_eq!(c.max_attempts, 10);
        assert!(c.password.is_none());
    }

    #[test]
    fn email_password_comes_from_a_file_and_never_shows() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("pw");
        std::fs::write(&path, "s3cret-relay-pw\nignored\n").expect("write");
        let c = email(&format!(
            "username = \"u\"\npassword_file = \"{}\"\ntls = \"tls\"",
            path.display()
        ))
        .config("x")
        .expect("valid");
        assert_eq!(
            c.password.as_ref().map(|p| p.expose_secret()),
            Some("s3cret-relay-pw")
        );
        assert_eq!(c.smtp_port, 465);
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn email_refuses_what_would_go_wrong() {
        let bad = [
            ("tls = \"ssl\"", "tls must be"),
            ("username = \"u\"", "needs a password"),
            (
                "password_env = \"BILLPAY_TEST_NO_SUCH_VAR_9\"",
                "is not set",
            ),
            ("max_attempts = 0", "max_attempts"),
            ("reply_to = \"not an address\"", "reply_to"),
        ];
        for (extra, why) in bad {
            let err = email(extra).config("x").expect_err(extra).to_string();
            assert!(err.contains(why), "{extra}: {err}");
        }
        // A password in clear text over the network is refused; on loopback it is allowed.
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("pw");
        std::fs::write(&path, "pw").expect("write");
        let plain = format!(
            "username = \"u\"\npassword_file = \"{}\"\ntls = \"none\"",
            path.display()
        );
        let err = email(&plain)
            .config("x")
            .expect_err("clear text")
            .to_string();
        assert!(err.contains("clear text"), "{err}");
        let mut local = email(&plain);
        local.smtp_host = "127.0.0.1".into();
        assert!(local.config("x").is_ok());
        let from: Result<EmailSettings, _> =
            toml::from_str("smtp_host = \"h\"\nfrom_address = \"a@b.c\"\nsmtp_password = \"x\"");
        assert!(
            from.is_err(),
            "a password inline in the file is not a field"
        );
    }
}

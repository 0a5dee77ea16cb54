//! Settings in the operator console: branding, fees, collections rules, business hours, the
//! phone line's options, reminder schedules and the fraud rules, changed by an administrator
//! in `/desk/settings` without a restart.
//!
//! The configuration file gives every setting its starting value. A save in the console is
//! checked by exactly the code that checks the file (the [`SettingsSource`] the binary
//! provides), then stored as a new numbered version (`settings_versions`: who, when, why,
//! what changed) with an audit record in the same transaction. A version holds the settings
//! that differ from the file; the newest version is in force. Every instance looks for a newer
//! version every [`POLL`] and swaps it in whole: a request reads one [`ServiceConfig`]
//! snapshot ([`Billpay::config`]) and never sees half of a change.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use billpay_domain::{Currency, Money};
use billpay_store::queries;
use billpay_store::rows::AuditRow;
use billpay_store::settings::{self as q, SettingsVersionRow};
use serde_json::Value;

use crate::staff::{Role, Staff};
use crate::{Billpay, ServiceConfig, ServiceError};

/// How often an instance looks for a version saved by another instance.
pub const POLL: Duration = Duration::from_secs(5);

/// Versions shown in the console's history.
pub const HISTORY_MAX: i64 = 50;

/// What kind of value a setting holds, and how the console reads it from a form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Text of 1 to `max` characters.
    Text { max: usize },
    /// Text of up to `max` characters, or empty for none.
    OptionalText { max: usize },
    /// A colour, `#rrggbb`.
    Color,
    /// An amount in dollars and cents, stored in cents; never negative.
    Money,
    /// A whole number from `min` to `max`.
    Int { min: i64, max: i64 },
    /// A whole number from `min` to `max`, or empty for none.
    OptionalInt { min: i64, max: i64 },
    /// A time of day, `HH:MM`.
    Time,
    /// A list, one item per line.
    List,
}

/// One setting the console can change.
#[derive(Clone, Copy, Debug)]
pub struct Field {
    /// Its name in the configuration file (`collections.grace_days` is `grace_days` in the
    /// `[collections]` table).
    pub key: &'static str,
    pub section: &'static str,
    pub label: &'static str,
    pub help: &'static str,
    pub kind: Kind,
}

const fn f(
    section: &'static str,
    key: &'static str,
    label: &'static str,
    kind: Kind,
    help: &'static str,
) -> Field {
    Field {
        key,
        section,
        label,
        help,
        kind,
    }
}

const BRANDING: &str = "Branding";
const FEES: &str = "Fees";
const COLLECTIONS: &str = "Collections";
const HOURS: &str = "Business hours";
const PHONE: &str = "Phone line";
const REMINDERS: &str = "Reminders";
const RISK: &str = "Fraud rules";

/// The sections, in the page's order.
pub const SECTIONS: [&str; 7] = [BRANDING, FEES, COLLECTIONS, HOURS, PHONE, REMINDERS, RISK];

const fn int(min: i64, max: i64) -> Kind {
    Kind::Int { min, max }
}

/// Every setting the console can change.
pub const FIELDS: &[Field] = &[
    f(
        BRANDING,
        "biller_name",
        "Biller name",
        Kind::Text { max: 80 },
        "On every page, receipt, message and call.",
    ),
    f(
        BRANDING,
        "support_phone",
        "Support phone number",
        Kind::Text { max: 32 },
        "The number customers are told to call.",
    ),
    f(
        BRANDING,
        "portal.brand_color",
        "Brand colour",
        Kind::Color,
        "Header, buttons and links, as #rrggbb. White text is drawn on it: it must be dark enough (contrast 4.5:1).",
    ),
    f(
        FEES,
        "convenience_fee_cents",
        "Convenience fee",
        Kind::Money,
        "Added to card and bank payments customers make; never to AutoPay. 0.00 charges no fee.",
    ),
    f(
        FEES,
        "collections.late_fee_cents",
        "Late fee, flat",
        Kind::Money,
        "Charged once per bill after the grace period. 0.00 for none, or use a percentage instead.",
    ),
    f(
        FEES,
        "collections.late_fee_percent_bps",
        "Late fee, percentage (basis points)",
        int(0, 10_000),
        "Of the past-due amount: 150 is 1.5%. 0 for none. Not together with a flat fee.",
    ),
    f(
        FEES,
        "collections.late_fee_min_cents",
        "Percentage late fee: at least",
        Kind::Money,
        "",
    ),
    f(
        FEES,
        "collections.late_fee_max_cents",
        "Percentage late fee: at most",
        Kind::Money,
        "0.00 for no cap.",
    ),
    f(
        FEES,
        "ach.returned_payment_fee_cents",
        "Returned bank payment fee",
        Kind::Money,
        "Charged when a bank debit comes back unpaid. 0.00 for none.",
    ),
    f(
        COLLECTIONS,
        "collections.grace_days",
        "Grace period (days after the due date)",
        int(0, 60),
        "No late fee before it ends.",
    ),
    f(
        COLLECTIONS,
        "collections.minimum_past_due_cents",
        "Smallest past-due amount acted on",
        Kind::Money,
        "Below it there is no late fee and no suspension.",
    ),
    f(
        COLLECTIONS,
        "collections.suspend_after_days",
        "Suspend service after (days past due)",
        int(0, 365),
        "0 never suspends.",
    ),
    f(
        COLLECTIONS,
        "collections.disconnect_notice_days",
        "Disconnection notice (days before)",
        int(0, 60),
        "The notice is sent this many days before a suspension.",
    ),
    f(
        COLLECTIONS,
        "collections.no_suspension_dates",
        "Other days without suspensions",
        Kind::List,
        "One date per line, like 2027-12-26. Weekends and US federal holidays are always free of suspensions.",
    ),
    f(
        COLLECTIONS,
        "collections.arrangement_max_installments",
        "Arrangements: most installments",
        int(1, 24),
        "",
    ),
    f(
        COLLECTIONS,
        "collections.arrangement_max_extension_days",
        "Arrangements: longest extension (days)",
        int(1, 90),
        "",
    ),
    f(
        COLLECTIONS,
        "collections.arrangement_max_broken_per_year",
        "Arrangements: broken ones allowed in 12 months",
        int(0, 12),
        "An account with more broken arrangements than this cannot make a new one.",
    ),
    f(
        COLLECTIONS,
        "collections.arrangement_grace_days",
        "Arrangements: days after a missed installment",
        int(0, 30),
        "Before the arrangement is broken.",
    ),
    f(
        COLLECTIONS,
        "collections.arrangement_minimum_past_due_cents",
        "Arrangements: smallest past-due amount",
        Kind::Money,
        "",
    ),
    f(
        COLLECTIONS,
        "collections.hardship_programs",
        "Hardship programs",
        Kind::List,
        "One per line, e.g. LIHEAP. Agents enrol accounts in them.",
    ),
    f(
        HOURS,
        "portal.support_hours",
        "Support hours, as customers read them",
        Kind::Text { max: 200 },
        "",
    ),
    f(
        HOURS,
        "agent_hours_start",
        "Phone representatives from (hour)",
        int(0, 24),
        "In the biller's time zone. The automated line answers around the clock.",
    ),
    f(
        HOURS,
        "agent_hours_end",
        "Phone representatives until (hour)",
        int(0, 24),
        "",
    ),
    f(
        HOURS,
        "portal.chat_hours_start",
        "Live chat from (hour)",
        Kind::OptionalInt { min: 0, max: 24 },
        "Empty, with the next one empty too: representatives answer chats around the clock.",
    ),
    f(
        HOURS,
        "portal.chat_hours_end",
        "Live chat until (hour)",
        Kind::OptionalInt { min: 0, max: 24 },
        "",
    ),
    f(
        PHONE,
        "agent_queue",
        "Representatives' queue",
        Kind::Text { max: 64 },
        "The provider queue transferred callers wait in.",
    ),
    f(
        PHONE,
        "agent_number",
        "Representatives' number",
        Kind::OptionalText { max: 16 },
        "E.164, like +18005550100: transfers dial it, and the representative hears the verified account first. Empty: the queue.",
    ),
    f(
        PHONE,
        "ivr_verify_failures_per_hour",
        "Failed verifications per caller per hour",
        int(1, 1_000),
        "Past it, the caller's number is handed to a representative.",
    ),
    f(
        REMINDERS,
        "reminders.send_at",
        "Reminders are sent at",
        Kind::Time,
        "Local time in the customer's time zone.",
    ),
    f(
        REMINDERS,
        "reminders.due_soon_days",
        "\"Due soon\" reminder (days before the due date)",
        int(1, 14),
        "",
    ),
    f(
        REMINDERS,
        "reminders.quiet_start",
        "Quiet hours from",
        Kind::Time,
        "No reminder from this time until the end of quiet hours; the law (TCPA) requires at least 21:00 to 08:00.",
    ),
    f(
        REMINDERS,
        "reminders.quiet_end",
        "Quiet hours until",
        Kind::Time,
        "",
    ),
    f(
        REMINDERS,
        "autopay.notice_days",
        "AutoPay notice (days before the charge)",
        int(0, 30),
        "",
    ),
    f(
        RISK,
        "risk.window_minutes",
        "Window (minutes)",
        int(1, 1_440),
        "The rules below count over this many minutes. 0 turns a rule off.",
    ),
    f(
        RISK,
        "risk.source_declines",
        "Declines from one address, session or caller",
        int(0, 1_000),
        "",
    ),
    f(
        RISK,
        "risk.source_accounts",
        "Accounts paid from one address, session or caller",
        int(0, 1_000),
        "",
    ),
    f(
        RISK,
        "risk.card_declines",
        "Declines of one card",
        int(0, 1_000),
        "",
    ),
    f(
        RISK,
        "risk.card_accounts",
        "Accounts one card pays",
        int(0, 1_000),
        "",
    ),
    f(
        RISK,
        "risk.account_window_hours",
        "Cards on one account: window (hours)",
        int(1, 720),
        "",
    ),
    f(
        RISK,
        "risk.account_cards",
        "Cards on one account",
        int(0, 1_000),
        "",
    ),
    f(
        RISK,
        "risk.bin_declines",
        "Declines of one card range (first six digits)",
        int(0, 100_000),
        "",
    ),
    f(
        RISK,
        "risk.blocked_callers",
        "Blocked caller numbers",
        Kind::List,
        "One E.164 number per line. Their payments by phone are refused.",
    ),
    f(
        RISK,
        "risk.review_amount_factor",
        "Review: times the bill or largest payment",
        int(0, 100),
        "A payment above this many times the larger of the account's bill and its largest payment in 12 months goes to the review queue. 0 turns it off.",
    ),
    f(
        RISK,
        "risk.review_amount_floor_cents",
        "Review: only above",
        Kind::Money,
        "Smaller payments are never reviewed for their amount.",
    ),
    f(
        RISK,
        "risk.review_first_use_cents",
        "Review: first use of a saved method or bank account above",
        Kind::Money,
        "0.00 turns it off.",
    ),
];

/// The field named `key`.
pub fn field(key: &str) -> Option<&'static Field> {
    FIELDS.iter().find(|f| f.key == key)
}

/// Setting name to value, JSON as stored: numbers (cents for money), strings, lists of
/// strings, `null` for an optional setting left empty.
pub type Values = BTreeMap<String, Value>;

/// Where the settings come from: the binary's configuration file and its checks.
pub trait SettingsSource: Send + Sync {
    /// The file's value of every [`FIELDS`] key.
    fn file_values(&self) -> Values;
    /// The configuration with `overrides` over the file, checked as the file is; `current`
    /// gives what the file does not (the payment processor, test tuning). The error names the
    /// setting.
    fn build(&self, current: &ServiceConfig, overrides: &Values) -> Result<ServiceConfig, String>;
}

/// The configuration in force and where it came from.
pub struct Live {
    current: RwLock<Snapshot>,
    source: Option<Arc<dyn SettingsSource>>,
}

#[derive(Clone)]
struct Snapshot {
    config: Arc<ServiceConfig>,
    version: i64,
    /// The newest version could not be applied: why (the file changed since, say).
    problem: Option<String>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field("config", &self.config())
            .finish_non_exhaustive()
    }
}

impl Live {
    /// A fixed configuration: the console can show but not change it.
    pub fn fixed(config: ServiceConfig) -> Live {
        Live {
            current: RwLock::new(Snapshot {
                config: Arc::new(config),
                version: 0,
                problem: None,
            }),
            source: None,
        }
    }

    /// The file's configuration, changeable in the console.
    pub fn from_source(config: ServiceConfig, source: Arc<dyn SettingsSource>) -> Live {
        Live {
            source: Some(source),
            ..Live::fixed(config)
        }
    }

    fn snapshot(&self) -> Snapshot {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn set(&self, s: Snapshot) {
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = s;
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<ServiceConfig> {
        self.snapshot().config
    }

    /// The version in force (0: the file's values).
    pub fn version(&self) -> i64 {
        self.snapshot().version
    }
}

/// The console page: every setting's value in force, the file's, and the history.
#[derive(Clone, Debug)]
pub struct SettingsView {
    pub version: i64,
    /// Whether this instance's settings can be changed here (a configuration file source).
    pub editable: bool,
    /// Why the newest saved version is not in force, when it is not.
    pub problem: Option<String>,
    /// In force: (field, value as the form shows it, the file's value as the form shows it).
    pub values: Vec<(&'static Field, String, String)>,
    pub history: Vec<SettingsVersion>,
}

/// One saved version, for the history.
#[derive(Clone, Debug)]
pub struct SettingsVersion {
    pub version: i64,
    pub at: i64,
    pub staff_name: String,
    pub reason: String,
    /// (label, before, after), as the form shows them.
    pub changes: Vec<(String, String, String)>,
}

/// A save the checks refused: the problems, by setting (`None`: the whole form).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettingsRejected {
    pub problems: Vec<(Option<&'static str>, String)>,
}

/// A value as the form shows it.
pub fn show(kind: Kind, v: &Value) -> String {
    match (kind, v) {
        (_, Value::Null) => String::new(),
        (Kind::Money, Value::Number(n)) => n
            .as_i64()
            .map(|c| Money::new(c, Currency::USD).to_string())
            .unwrap_or_default(),
        (_, Value::Number(n)) => n.to_string(),
        (_, Value::String(s)) => s.clone(),
        (_, Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join("\n"),
        (_, Value::Bool(b)) => b.to_string(),
        (_, Value::Object(_)) => String::new(),
    }
}

/// Reads one field from the form's text; the error is a sentence naming the setting.
pub fn parse(field: &Field, text: &str) -> Result<Value, String> {
    let t = text.trim();
    let name = field.label;
    match field.kind {
        Kind::OptionalText { .. } | Kind::OptionalInt { .. } if t.is_empty() => Ok(Value::Null),
        Kind::Text { max } | Kind::OptionalText { max } => {
            if t.is_empty() {
                return Err(format!("{name}: must not be empty."));
            }
            if t.chars().count() > max {
                return Err(format!("{name}: at most {max} characters."));
            }
            if t.chars().any(char::is_control) {
                return Err(format!(
                    "{name}: one line of text, without control characters."
                ));
            }
            Ok(Value::String(t.into()))
        }
        Kind::Color => {
            if crate::portal::is_hex_color(t) {
                Ok(Value::String(t.to_ascii_lowercase()))
            } else {
                Err(format!("{name}: a colour like #0b5394."))
            }
        }
        Kind::Money => match Money::parse(t, Currency::USD) {
            Ok(m) if m.minor_units() >= 0 => Ok(Value::from(m.minor_units())),
            Ok(_) => Err(format!("{name}: must not be negative.")),
            Err(_) => Err(format!("{name}: an amount like 5.00.")),
        },
        Kind::Int { min, max } | Kind::OptionalInt { min, max } => match t.parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(Value::from(n)),
            _ => Err(format!("{name}: a whole number from {min} to {max}.")),
        },
        Kind::Time => match jiff::civil::Time::strptime("%H:%M", t) {
            Ok(time) => Ok(Value::String(time.strftime("%H:%M").to_string())),
            Err(_) => Err(format!("{name}: a time like 08:00.")),
        },
        Kind::List => {
            let mut items = Vec::new();
            for line in t.lines().map(str::trim).filter(|l| !l.is_empty()) {
                if line.chars().count() > 100 || line.chars().any(char::is_control) {
                    return Err(format!("{name}: each line at most 100 characters."));
                }
                items.push(Value::String(line.into()));
            }
            if items.len() > 500 {
                return Err(format!("{name}: at most 500 lines."));
            }
            Ok(Value::Array(items))
        }
    }
}

fn forbidden(message: &str) -> ServiceError {
    ServiceError::Conflict {
        code: "forbidden",
        message: message.into(),
    }
}

/// A stored version or value that does not read: storage is damaged.
fn broken(message: String) -> ServiceError {
    ServiceError::Store(billpay_store::StoreError::Database(message))
}

fn overrides_of(row: &SettingsVersionRow) -> Result<Values, ServiceError> {
    serde_json::from_str(&row.overrides).map_err(|e| {
        broken(format!(
            "settings version {} does not read: {e}",
            row.version
        ))
    })
}

impl Billpay {
    /// The configuration in force: one snapshot, unchanged by a save during the request.
    pub fn config(&self) -> Arc<ServiceConfig> {
        self.settings.config()
    }

    /// This handle with a configuration of its own, apart from the console (tests, commands
    /// that tune one setting for one run).
    pub fn with_config(mut self, config: ServiceConfig) -> Billpay {
        self.settings = Arc::new(Live::fixed(config));
        self
    }

    /// Puts the newest saved version in force, if it is not already. Called at start-up and
    /// every [`POLL`]; a version that no longer passes the checks (the file changed since it
    /// was saved) is left out and reported on the settings page and in the log.
    pub async fn refresh_settings(&self) -> Result<bool, ServiceError> {
        let Some(source) = self.settings.source.clone() else {
            return Ok(false);
        };
        let newest_row = {
            let mut c = self.store.read_conn().await?;
            q::settings_history(&mut c, 1).await?.pop()
        };
        let snap = self.settings.snapshot();
        let Some(row) = newest_row else {
            return Ok(false);
        };
        let newest = row.version;
        if newest <= snap.version && snap.problem.is_none() {
            return Ok(false);
        }
        let overrides = overrides_of(&row)?;
        match source.build(&snap.config, &overrides) {
            Ok(config) => {
                self.settings.set(Snapshot {
                    config: Arc::new(config),
                    version: newest,
                    problem: None,
                });
                tracing::info!(version = newest, "settings version in force");
                Ok(true)
            }
            Err(why) => {
                if snap.problem.as_deref() != Some(why.as_str()) {
                    tracing::error!(version = newest, problem = %why, "settings version not applied; the previous settings stay in force");
                }
                self.settings.set(Snapshot {
                    problem: Some(format!("Version {newest} is not in force: {why}")),
                    ..snap
                });
                Ok(false)
            }
        }
    }

    /// Looks for new settings every [`POLL`], until the store is closed.
    pub async fn settings_watch(self) {
        while !self.store.is_closed() {
            if let Err(e) = self.refresh_settings().await {
                tracing::warn!(error = %e, "could not look for new settings");
            }
            tokio::time::sleep(POLL).await;
        }
    }

    fn settings_reader(staff: &Staff) -> Result<(), ServiceError> {
        if staff.role < Role::Supervisor {
            return Err(forbidden(
                "Settings are for supervisors and administrators.",
            ));
        }
        Ok(())
    }

    /// The settings page (supervisors read it; administrators change it).
    pub async fn settings_view(&self, staff: &Staff) -> Result<SettingsView, ServiceError> {
        Self::settings_reader(staff)?;
        let snap = self.settings.snapshot();
        let file = self
            .settings
            .source
            .as_ref()
            .map(|s| s.file_values())
            .unwrap_or_default();
        let mut c = self.store.read_conn().await?;
        let rows = q::settings_history(&mut c, HISTORY_MAX).await?;
        drop(c);
        let overrides = match rows.iter().find(|r| r.version == snap.version) {
            Some(r) => overrides_of(r)?,
            None => Values::new(),
        };
        let values = FIELDS
            .iter()
            .map(|fd| {
                let from_file = file.get(fd.key).cloned().unwrap_or(Value::Null);
                let now = overrides.get(fd.key).unwrap_or(&from_file);
                (fd, show(fd.kind, now), show(fd.kind, &from_file))
            })
            .collect();
        let history = rows
            .iter()
            .map(|r| SettingsVersion {
                version: r.version,
                at: r.at,
                staff_name: r.staff_name.clone(),
                reason: r.reason.clone(),
                changes: serde_json::from_str::<Vec<(String, Value, Value)>>(&r.changes)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(key, before, after)| match field(&key) {
                        Some(fd) => (
                            fd.label.to_string(),
                            show(fd.kind, &before),
                            show(fd.kind, &after),
                        ),
                        None => (key, before.to_string(), after.to_string()),
                    })
                    .collect(),
            })
            .collect();
        Ok(SettingsView {
            version: snap.version,
            editable: self.settings.source.is_some(),
            problem: snap.problem,
            values,
            history,
        })
    }

    /// Saves the console form (`key` → text as typed) as a new version and puts it in force.
    /// Every field of [`FIELDS`] must be present. Returns the new version's number, or the
    /// problems when the checks refuse it (nothing is saved then).
    pub async fn save_settings(
        &self,
        staff: &Staff,
        form: &BTreeMap<String, String>,
        reason: &str,
    ) -> Result<Result<i64, SettingsRejected>, ServiceError> {
        if staff.role < Role::Admin {
            return Err(forbidden("Only an administrator may change settings."));
        }
        let Some(source) = self.settings.source.clone() else {
            return Err(ServiceError::Conflict {
                code: "settings_fixed",
                message: "This instance's settings are fixed; change the configuration file."
                    .into(),
            });
        };
        let mut problems = Vec::new();
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > 500 {
            problems.push((
                Some("reason"),
                "Reason: say why, in at most 500 characters (it is kept with the change)."
                    .to_string(),
            ));
        }
        let file = source.file_values();
        let mut wanted = Values::new();
        for fd in FIELDS {
            match form.get(fd.key).map(|t| parse(fd, t)) {
                Some(Ok(v)) => {
                    wanted.insert(fd.key.into(), v);
                }
                Some(Err(p)) => problems.push((Some(fd.key), p)),
                None => problems.push((
                    Some(fd.key),
                    format!("{}: missing from the form.", fd.label),
                )),
            }
        }
        if !problems.is_empty() {
            return Ok(Err(SettingsRejected { problems }));
        }
        // Kept: what differs from the file.
        let overrides: Values = wanted
            .into_iter()
            .filter(|(k, v)| file.get(k) != Some(v))
            .collect();
        let snap = self.settings.snapshot();
        let config = match source.build(&snap.config, &overrides) {
            Ok(c) => c,
            Err(why) => {
                let key = FIELDS
                    .iter()
                    .filter(|fd| why.contains(fd.key.rsplit('.').next().unwrap_or(fd.key)))
                    .map(|fd| fd.key)
                    .max_by_key(|k| k.len());
                return Ok(Err(SettingsRejected {
                    problems: vec![(key, why)],
                }));
            }
        };
        let newest_row = {
            let mut c = self.store.read_conn().await?;
            q::settings_history(&mut c, 1).await?.pop()
        };
        let (newest, before) = match &newest_row {
            Some(r) => (r.version, overrides_of(r)?),
            None => (0, Values::new()),
        };
        let changes: Vec<(String, Value, Value)> = FIELDS
            .iter()
            .filter_map(|fd| {
                let file_v = file.get(fd.key).cloned().unwrap_or(Value::Null);
                let was = before
                    .get(fd.key)
                    .cloned()
                    .unwrap_or_else(|| file_v.clone());
                let now = overrides.get(fd.key).cloned().unwrap_or(file_v);
                (was != now).then(|| (fd.key.to_string(), was, now))
            })
            .collect();
        if changes.is_empty() {
            return Ok(Err(SettingsRejected {
                problems: vec![(None, "Nothing was changed.".into())],
            }));
        }
        let version = newest + 1;
        let now = self.clock.now_micros();
        let row = SettingsVersionRow {
            version,
            at: now,
            staff_id: staff.id.clone(),
            staff_name: staff.name.clone(),
            reason: reason.into(),
            overrides: serde_json::to_string(&overrides).map_err(|e| broken(e.to_string()))?,
            changes: serde_json::to_string(&changes).map_err(|e| broken(e.to_string()))?,
        };
        let audit = AuditRow {
            id: self.new_id("aud"),
            at: now,
            actor: format!("staff:{}", staff.id),
            action: "settings.changed".into(),
            subject_type: "settings".into(),
            subject_id: format!("v{version}"),
            account_id: None,
            channel: Some("desk".into()),
            detail: serde_json::json!({"version": version, "reason": reason, "changes": changes})
                .to_string(),
        };
        let saved = self
            .store
            .write(move |c| {
                Box::pin(async move {
                    q::insert_settings_version(c, &row).await?;
                    queries::insert_audit(c, &audit).await
                })
            })
            .await
            .map_err(|e: billpay_store::StoreError| e);
        match saved {
            Ok(()) => {}
            Err(e) if e.is_duplicate() => {
                return Ok(Err(SettingsRejected {
                    problems: vec![(
                        None,
                        "Someone else saved the settings at the same moment. Open the page again to see their change, then make yours."
                            .into(),
                    )],
                }));
            }
            Err(e) => return Err(e.into()),
        }
        self.settings.set(Snapshot {
            config: Arc::new(config),
            version,
            problem: None,
        });
        tracing::info!(version, staff = %staff.id, "settings changed");
        Ok(Ok(version))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_is_named_once_and_in_a_section() {
        let mut keys: Vec<_> = FIELDS.iter().map(|f| f.key).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), FIELDS.len());
        assert!(FIELDS.iter().all(|f| SECTIONS.contains(&f.section)));
    }

    #[test]
    fn form_text_reads_or_names_the_setting() {
        let fee = field("convenience_fee_cents").unwrap();
        assert_eq!(parse(fee, " $1.50 "), Ok(Value::from(150)));
        assert_eq!(show(fee.kind, &Value::from(150)), "$1.50");
        assert!(
            parse(fee, "-1")
                .unwrap_err()
                .starts_with("Convenience fee:")
        );
        assert!(parse(fee, "lots").unwrap_err().contains("like 5.00"));
        let hours = field("agent_hours_start").unwrap();
        assert_eq!(
            parse(hours, "25").unwrap_err(),
            "Phone representatives from (hour): a whole number from 0 to 24."
        );
        let chat = field("portal.chat_hours_start").unwrap();
        assert_eq!(parse(chat, ""), Ok(Value::Null));
        let color = field("portal.brand_color").unwrap();
        assert_eq!(parse(color, "#0B5394"), Ok(Value::from("#0b5394")));
        assert!(parse(color, "blue").is_err());
        let list = field("collections.hardship_programs").unwrap();
        assert_eq!(
            parse(list, "LIHEAP\n\n  Medical baseline \n"),
            Ok(serde_json::json!(["LIHEAP", "Medical baseline"]))
        );
        let time = field("reminders.send_at").unwrap();
        assert_eq!(parse(time, "9:05"), Ok(Value::from("09:05")));
        assert!(parse(time, "25:00").is_err());
        let name = field("biller_name").unwrap();
        assert!(parse(name, "  ").is_err());
        assert!(parse(name, "a\u{7}b").is_err());
    }
}

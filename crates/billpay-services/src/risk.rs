//! Fraud monitoring on customer payments: every payment a customer or an agent starts (web,
//! chat, phone, the agent desk, the API) passes the risk rules of
//! [`billpay_domain::risk`] before the processor is asked. AutoPay and scheduled payments,
//! which the customer set up earlier with a saved method, are not re-assessed.
//!
//! The counts come from `risk_events`, read and written inside the payment's claim
//! transaction: on SQLite the one writer, on PostgreSQL the account's row lock, put attempts
//! of one account in order, and every instance counts the same rows. Each attempt is a row
//! (its sources, the card's keyed fingerprint and first six digits, never the number); the
//! processor's answer sets its outcome, so declines count against the source, the card and
//! the card range. Every decision is recorded with its reasons for the biller's staff; a
//! blocked customer hears only [`REFUSED`].
//!
//! The review rules (an amount far above the account's bill and history, a large first use of
//! a saved method or of a bank account) read the account's history in the same transaction,
//! only for amounts above their thresholds. A payment they send to review goes to the
//! processor as usual; the transaction that records its approval opens its review
//! (`payment_reviews`), which a supervisor decides on the desk ([`crate::reviews`]).

use billpay_domain::risk::{self, RiskAction, RiskDecision, RiskFacts, RiskRules};
use billpay_domain::{Channel, Money};
use billpay_store::AnyConnection;
use billpay_store::StoreError;
use billpay_store::risk::{self as q, RiskDecisionRow, RiskEventRow, Source};

use crate::processor::ChargeMethod;
use crate::{Billpay, ServiceError};

/// What a blocked customer is told, whichever rule fired: nothing an attacker can tune by.
pub const REFUSED: &str = "We can't take this payment right now. Nothing was charged. \
     Please call us to pay, or try again later.";

/// Where a payment attempt came from, as far as the channel knows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RiskSource {
    /// The client address (IPv4, or an IPv6 /64), for web and chat.
    pub ip: Option<String>,
    /// The browser's portal session (a hash, never the cookie).
    pub device: Option<String>,
    /// The caller's number (E.164), on the phone.
    pub ani: Option<String>,
}

/// Placeholders carriers send for a withheld caller id ("ANONYMOUS", "RESTRICTED", "BLOCKED",
/// "UNKNOWN", "UNAVAILABLE" spelled on a keypad), which many callers share.
const WITHHELD_CALLER_IDS: [&str; 5] = [
    "+266696687",
    "+7378742833",
    "+2562533",
    "+8656696",
    "+86282452253",
];

/// The caller's number as the rules count it: an E.164 number (+ and 8 to 15 digits) that is
/// not a withheld caller id. Anything else counts nothing, so callers who hide their number
/// are not counted together as one source.
pub fn caller_source(from: &str) -> Option<String> {
    let digits = from.strip_prefix('+')?;
    let e164 = (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
    (e164 && !WITHHELD_CALLER_IDS.contains(&from)).then(|| from.to_string())
}

/// What the rules know of one attempt before they count.
#[derive(Clone, Debug)]
pub(crate) struct Probe {
    pub event_id: String,
    pub decision_id: String,
    pub channel: Channel,
    pub source: RiskSource,
    pub card_fp: Option<String>,
    pub bin: Option<String>,
    /// The saved method paying, if one is.
    pub saved_method: Option<String>,
    /// The payment is a bank debit.
    pub bank: bool,
    pub amount: Money,
    pub now_us: i64,
}

/// How far back the review rules look for the account's largest payment.
const HISTORY_WINDOW_US: i64 = 365 * 24 * 3600 * 1_000_000;

/// A decision of the rules on the desk's account panel. (A person's decision on a review is
/// recorded in `risk_decisions` too, and shown from its review: [`crate::reviews`].)
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RiskDecisionView {
    pub at: i64,
    pub channel: String,
    pub action: RiskAction,
    pub score: i64,
    pub reasons: Vec<risk::RiskReason>,
    pub amount: Money,
    pub payment_id: Option<String>,
}

impl Billpay {
    /// The risk probe of an attempt: None for payments the customer set up before (AutoPay,
    /// scheduled), which come without a source.
    pub(crate) fn risk_probe(
        &self,
        channel: Channel,
        source: Option<&RiskSource>,
        method: &ChargeMethod,
        saved_method: Option<&str>,
        amount: Money,
        now_us: i64,
    ) -> Option<Probe> {
        let source = source?;
        let bank = matches!(method, ChargeMethod::Bank { .. });
        let (card_fp, bin) = match method {
            ChargeMethod::Card { number, .. } => {
                let digits = number.expose_secret();
                (
                    self.vault
                        .as_ref()
                        .map(|v| v.keyring().fingerprint("risk-card", digits)),
                    risk::card_bin(digits),
                )
            }
            ChargeMethod::Bank { .. } => (None, None),
        };
        Some(Probe {
            event_id: self.new_id("rke"),
            decision_id: self.new_id("rkd"),
            channel,
            source: source.clone(),
            card_fp,
            bin,
            saved_method: saved_method.map(str::to_string),
            bank,
            amount,
            now_us,
        })
    }

    /// The customer's account's decisions, newest first (for staff).
    pub async fn risk_decisions_of(
        &self,
        account_id: &str,
        limit: i64,
    ) -> Result<Vec<RiskDecisionView>, ServiceError> {
        let mut c = self.store.read_conn().await?;
        let rows = q::decisions_of_account(&mut c, account_id, limit).await?;
        Ok(rows.into_iter().filter_map(decision_view).collect())
    }

    /// Forgets attempts older than every window (run by the daily housekeeping).
    pub async fn prune_risk_events(&self) -> Result<u64, ServiceError> {
        let rules = &self.config().risk;
        let longest = (rules.window_minutes * 60).max(rules.account_window_hours * 3600);
        let before = self.clock.now_micros() - (longest + 3600) * 1_000_000;
        Ok(self
            .store
            .write(move |c| Box::pin(async move { q::prune_events(c, before).await }))
            .await?)
    }
}

fn decision_view(r: RiskDecisionRow) -> Option<RiskDecisionView> {
    let currency = billpay_domain::Currency::parse(&r.currency).ok()?;
    Some(RiskDecisionView {
        at: r.at,
        channel: r.channel,
        // A reviewer's approve or reject is not a rule's action: it is shown with its review.
        action: RiskAction::parse(&r.action)?,
        score: r.score,
        reasons: r
            .reasons
            .split(',')
            .filter_map(risk::RiskReason::parse)
            .collect(),
        amount: Money::new(r.amount, currency),
        payment_id: r.payment_id,
    })
}

/// Counts, decides and records, inside the claim transaction of the attempt on
/// `account_id` (number `account_number`). On allow or review the attempt is recorded as
/// `pending` under `payment_id` (its outcome follows the processor's answer); on block as
/// `blocked`, with no payment.
pub(crate) async fn assess_in(
    c: &mut AnyConnection,
    rules: &RiskRules,
    probe: &Probe,
    account_id: &str,
    account_number: &str,
    payment_id: &str,
) -> Result<RiskDecision, StoreError> {
    let since = probe.now_us - rules.window_minutes * 60 * 1_000_000;
    let mut facts = RiskFacts {
        amount_minor: probe.amount.minor_units(),
        blocked_caller: probe
            .source
            .ani
            .as_ref()
            .is_some_and(|a| rules.blocked_callers.iter().any(|b| b == a)),
        ..RiskFacts::default()
    };
    for (source, value) in [
        (Source::Ip, &probe.source.ip),
        (Source::Device, &probe.source.device),
        (Source::Ani, &probe.source.ani),
    ] {
        if let Some(v) = value {
            let (bad, accounts) = q::source_counts(c, source, v, since, account_id).await?;
            facts.source_declines = facts.source_declines.max(bad);
            facts.source_accounts = facts.source_accounts.max(accounts);
        }
    }
    if let Some(fp) = &probe.card_fp {
        let (declines, accounts) = q::card_counts(c, fp, since, account_id).await?;
        facts.card_declines = declines;
        facts.card_accounts = accounts;
        let account_since = probe.now_us - rules.account_window_hours * 3600 * 1_000_000;
        facts.account_cards = q::account_cards(c, account_id, account_since, fp).await?;
    }
    if let Some(bin) = &probe.bin {
        facts.bin_declines = q::bin_declines(c, bin, since).await?;
    }
    // Most payments are below both review thresholds: their history is not read.
    if rules.may_review(facts.amount_minor) {
        let history = q::amount_history(
            c,
            account_id,
            &format!("ar:{account_number}"),
            probe.now_us - HISTORY_WINDOW_US,
            probe.saved_method.as_deref().unwrap_or(""),
        )
        .await?;
        facts.bill_minor = history.amount_due.max(history.balance);
        facts.largest_payment_minor = history.largest_payment;
        facts.new_saved_method = probe.saved_method.is_some() && history.method_uses == 0;
        facts.first_bank_debit = probe.bank && history.bank_uses == 0;
    }
    let decision = risk::assess(rules, &facts);
    let blocked = decision.action == RiskAction::Block;
    q::insert_event(
        c,
        &RiskEventRow {
            id: probe.event_id.clone(),
            at: probe.now_us,
            account_id: account_id.to_string(),
            channel: probe.channel.as_str().into(),
            payment_id: (!blocked).then(|| payment_id.to_string()),
            ip: probe.source.ip.clone(),
            device: probe.source.device.clone(),
            ani: probe.source.ani.clone(),
            card_fp: probe.card_fp.clone(),
            bin: probe.bin.clone(),
            outcome: if blocked { "blocked" } else { "pending" }.into(),
            amount: probe.amount.minor_units(),
        },
    )
    .await?;
    q::insert_decision(
        c,
        &RiskDecisionRow {
            id: probe.decision_id.clone(),
            at: probe.now_us,
            account_id: account_id.to_string(),
            channel: probe.channel.as_str().into(),
            payment_id: (!blocked).then(|| payment_id.to_string()),
            action: decision.action.as_str().into(),
            score: i64::from(decision.score),
            reasons: decision
                .reasons
                .iter()
                .map(|r| r.code())
                .collect::<Vec<_>>()
                .join(","),
            amount: probe.amount.minor_units(),
            currency: probe.amount.currency().code().into(),
        },
    )
    .await?;
    metrics::counter!(
        "billpay_risk_decisions_total",
        "channel" => probe.channel.as_str(),
        "action" => decision.action.as_str()
    )
    .increment(1);
    Ok(decision)
}

/// Records the processor's answer on the attempt (declines count against its sources).
pub(crate) async fn record_answer(
    c: &mut AnyConnection,
    payment_id: &str,
    declined: bool,
) -> Result<(), StoreError> {
    q::set_outcome(
        c,
        payment_id,
        if declined { "declined" } else { "succeeded" },
    )
    .await
}

/// The error a blocked attempt returns.
pub(crate) fn refused() -> ServiceError {
    ServiceError::Conflict {
        code: "payment_refused",
        message: REFUSED.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_real_caller_numbers_are_counted() {
        assert_eq!(
            caller_source("+15555550101").as_deref(),
            Some("+15555550101")
        );
        for not_counted in [
            "",
            "anonymous",
            "+266696687",
            "+7378742833",
            "5555550101",
            "+1555",
            "+1555abc0101",
        ] {
            assert_eq!(caller_source(not_counted), None, "{not_counted}");
        }
    }
}

//! Receipts: what a customer is given for every payment, on every channel.

use billpay_domain::Language;
use serde::Serialize;

use crate::{BillerProfile, Payment};

/// A payment receipt. It holds no secret: the method appears as brand and last four.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Receipt {
    pub biller: String,
    pub support_phone: String,
    pub payment_id: String,
    pub confirmation_number: String,
    pub account: String,
    pub amount: String,
    pub amount_minor: i64,
    /// The convenience fee, when one was charged.
    pub fee: Option<String>,
    pub currency: String,
    pub method: String,
    pub channel: String,
    pub status: String,
    /// When the payment was made, in the account's time zone.
    pub paid_at: String,
    pub timezone: String,
    pub note: Option<String>,
}

impl Receipt {
    pub fn for_payment(p: &Payment, biller: &BillerProfile) -> Receipt {
        let local = p.local_time();
        let note = match (p.method.kind, p.status) {
            (billpay_domain::MethodKind::Ach, billpay_domain::PaymentStatus::Processing) => Some(
                "Bank payments are pending until your bank settles them, usually 1 to 3 business days."
                    .to_string(),
            ),
            _ => None,
        };
        Receipt {
            biller: biller.name.clone(),
            support_phone: biller.support_phone.clone(),
            payment_id: p.id.clone(),
            confirmation_number: p.confirmation_number.grouped(),
            account: p.account_number.masked(),
            amount: p.amount.format(),
            amount_minor: p.amount.minor_units(),
            fee: p.fee.is_positive().then(|| p.fee.format()),
            currency: p.amount.currency().code().to_string(),
            method: p.method.describe(),
            channel: p.channel.describe(Language::En).to_string(),
            status: p.status.as_str().to_string(),
            paid_at: local.strftime("%B %-d, %Y at %-I:%M %p %Z").to_string(),
            timezone: p.timezone.clone(),
            note,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    /// The receipt as plain text, for email bodies and printing.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{biller}\nPayment receipt\n\nConfirmation number: {conf}\nAmount paid: {amount}\nAccount: {account}\nPaid with: {method}\nPaid: {channel}, {when}\nStatus: {status}\n",
            biller = self.biller,
            conf = self.confirmation_number,
            amount = self.amount,
            account = self.account,
            method = self.method,
            channel = self.channel,
            when = self.paid_at,
            status = self.status,
        );
        if let Some(fee) = &self.fee {
            s.push_str(&format!("Convenience fee: {fee}\n"));
        }
        if let Some(note) = &self.note {
            s.push_str(&format!("\n{note}\n"));
        }
        s.push_str(&format!(
            "\nQuestions? Call {} any time.\n",
            self.support_phone
        ));
        s
    }
}

//! The payment state machine, payment method kinds and payment channels.

use std::fmt;

use crate::decline::Language;

/// Where a payment is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PaymentStatus {
    /// Created, not yet sent to the processor.
    Pending,
    /// Accepted by the processor, outcome not yet final.
    Processing,
    /// The money was collected.
    Succeeded,
    /// Declined or errored; no money moved.
    Failed,
    /// Canceled before it completed.
    Canceled,
    /// Part of the payment was refunded.
    PartiallyRefunded,
    /// All of the payment was refunded.
    Refunded,
    /// The bank debit was returned (ACH only).
    Returned,
}

impl PaymentStatus {
    /// Every status.
    pub const ALL: [PaymentStatus; 8] = [
        PaymentStatus::Pending,
        PaymentStatus::Processing,
        PaymentStatus::Succeeded,
        PaymentStatus::Failed,
        PaymentStatus::Canceled,
        PaymentStatus::PartiallyRefunded,
        PaymentStatus::Refunded,
        PaymentStatus::Returned,
    ];

    /// snake_case: "pending", "processing", "succeeded", "failed", "canceled",
    /// "partially_refunded", "refunded", "returned".
    pub fn as_str(&self) -> &'static str {
        match self {
            PaymentStatus::Pending => "pending",
            PaymentStatus::Processing => "processing",
            PaymentStatus::Succeeded => "succeeded",
            PaymentStatus::Failed => "failed",
            PaymentStatus::Canceled => "canceled",
            PaymentStatus::PartiallyRefunded => "partially_refunded",
            PaymentStatus::Refunded => "refunded",
            PaymentStatus::Returned => "returned",
        }
    }

    /// Inverse of [`PaymentStatus::as_str`] (exact match).
    pub fn parse(s: &str) -> Option<PaymentStatus> {
        PaymentStatus::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// Whether no further transition is possible: failed, canceled, refunded,
    /// returned.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            PaymentStatus::Failed
                | PaymentStatus::Canceled
                | PaymentStatus::Refunded
                | PaymentStatus::Returned
        )
    }

    /// Whether the payment's money has been posted to the ledger in this state
    /// (succeeded, partially_refunded, refunded, returned; and Processing for
    /// bank debits: see [`MethodKind::posts_on_acceptance`]).
    ///
    /// Refunded and returned payments count as posted because their original
    /// payment entry stays in the ledger next to the reversing entry. Failed
    /// and canceled payments are not posted; if an ACH debit fails or is
    /// canceled after it was posted on acceptance, the caller must reverse that
    /// posting.
    pub fn is_posted(&self, kind: MethodKind) -> bool {
        match self {
            PaymentStatus::Succeeded
            | PaymentStatus::PartiallyRefunded
            | PaymentStatus::Refunded
            | PaymentStatus::Returned => true,
            PaymentStatus::Processing => kind.posts_on_acceptance(),
            PaymentStatus::Pending | PaymentStatus::Failed | PaymentStatus::Canceled => false,
        }
    }
}

impl fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kind of payment method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MethodKind {
    /// A payment card.
    Card,
    /// A bank debit over ACH.
    Ach,
    /// A paper check mailed to the biller's bank lockbox.
    Check,
    /// A pledge from an energy-assistance agency, posted by an agent for the agency to pay.
    Pledge,
}

impl MethodKind {
    /// "card", "ach" or "check".
    pub fn as_str(&self) -> &'static str {
        match self {
            MethodKind::Card => "card",
            MethodKind::Ach => "ach",
            MethodKind::Check => "check",
            MethodKind::Pledge => "pledge",
        }
    }

    /// Inverse of [`MethodKind::as_str`] (exact match).
    pub fn parse(s: &str) -> Option<Self> {
        [
            MethodKind::Card,
            MethodKind::Ach,
            MethodKind::Check,
            MethodKind::Pledge,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }

    /// Whether a payment of this kind is posted to the ledger as soon as the
    /// processor accepts it (enters Processing), rather than when it succeeds.
    ///
    /// Bank debits take days to settle, so the customer is credited on
    /// acceptance and the posting is reversed if the debit is later returned.
    /// Card payments are posted when they succeed.
    pub fn posts_on_acceptance(&self) -> bool {
        matches!(self, MethodKind::Ach)
    }
}

impl fmt::Display for MethodKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The only legal transitions: Pending→Processing|Failed|Canceled;
/// Processing→Succeeded|Failed|Canceled; Processing→Returned only for Ach;
/// Succeeded→PartiallyRefunded|Refunded|Returned(Ach only: a settled debit can
/// still be returned); PartiallyRefunded→PartiallyRefunded|Refunded. Also
/// Pending→Succeeded is NOT allowed (must pass Processing).
///
/// Returns `to` when the transition is legal.
pub fn transition(
    from: PaymentStatus,
    to: PaymentStatus,
    kind: MethodKind,
) -> Result<PaymentStatus, TransitionError> {
    use PaymentStatus::*;
    let ach = kind == MethodKind::Ach;
    let legal = match (from, to) {
        (Pending, Processing | Failed | Canceled) => true,
        (Processing, Succeeded | Failed | Canceled) => true,
        (Processing, Returned) => ach,
        (Succeeded, PartiallyRefunded | Refunded) => true,
        (Succeeded, Returned) => ach,
        (PartiallyRefunded, PartiallyRefunded | Refunded) => true,
        _ => false,
    };
    if legal {
        Ok(to)
    } else {
        Err(TransitionError {
            from: from.as_str(),
            to: to.as_str(),
        })
    }
}

/// An illegal payment status transition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a payment cannot go from {from} to {to}")]
pub struct TransitionError {
    /// The current status.
    pub from: &'static str,
    /// The requested status.
    pub to: &'static str,
}

/// How a payment was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Channel {
    /// The customer website.
    Web,
    /// The phone (IVR).
    Phone,
    /// The chat assistant.
    Chat,
    /// A customer service agent.
    Agent,
    /// A scheduled AutoPay payment.
    Autopay,
    /// A mailed payment.
    Mail,
    /// The public API.
    Api,
}

impl Channel {
    /// Every channel.
    pub const ALL: [Channel; 7] = [
        Channel::Web,
        Channel::Phone,
        Channel::Chat,
        Channel::Agent,
        Channel::Autopay,
        Channel::Mail,
        Channel::Api,
    ];

    /// "web", "phone", "chat", "agent", "autopay", "mail", "api".
    pub fn as_str(&self) -> &'static str {
        match self {
            Channel::Web => "web",
            Channel::Phone => "phone",
            Channel::Chat => "chat",
            Channel::Agent => "agent",
            Channel::Autopay => "autopay",
            Channel::Mail => "mail",
            Channel::Api => "api",
        }
    }

    /// Inverse of [`Channel::as_str`] (exact match).
    pub fn parse(s: &str) -> Option<Self> {
        Channel::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// How the payment was made, to complete "You paid ...": en "online", "by
    /// phone", "in chat", "with an agent", "by AutoPay", "by mail", "through the
    /// API"; es "en línea", "por teléfono", "por chat", "con un agente", "con
    /// pago automático", "por correo", "a través de la API".
    pub fn describe(&self, lang: Language) -> &'static str {
        match (lang, self) {
            (Language::En, Channel::Web) => "online",
            (Language::En, Channel::Phone) => "by phone",
            (Language::En, Channel::Chat) => "in chat",
            (Language::En, Channel::Agent) => "with an agent",
            (Language::En, Channel::Autopay) => "by AutoPay",
            (Language::En, Channel::Mail) => "by mail",
            (Language::En, Channel::Api) => "through the API",
            (Language::Es, Channel::Web) => "en línea",
            (Language::Es, Channel::Phone) => "por teléfono",
            (Language::Es, Channel::Chat) => "por chat",
            (Language::Es, Channel::Agent) => "con un agente",
            (Language::Es, Channel::Autopay) => "con pago automático",
            (Language::Es, Channel::Mail) => "por correo",
            (Language::Es, Channel::Api) => "a través de la API",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PaymentStatus::*;

    /// Every legal (from, to, kind) triple, written out by hand.
    const LEGAL: &[(PaymentStatus, PaymentStatus, MethodKind)] = &[
        (Pending, Processing, MethodKind::Card),
        (Pending, Processing, MethodKind::Ach),
        (Pending, Failed, MethodKind::Card),
        (Pending, Failed, MethodKind::Ach),
        (Pending, Canceled, MethodKind::Card),
        (Pending, Canceled, MethodKind::Ach),
        (Processing, Succeeded, MethodKind::Card),
        (Processing, Succeeded, MethodKind::Ach),
        (Processing, Failed, MethodKind::Card),
        (Processing, Failed, MethodKind::Ach),
        (Processing, Canceled, MethodKind::Card),
        (Processing, Canceled, MethodKind::Ach),
        (Processing, Returned, MethodKind::Ach),
        (Succeeded, PartiallyRefunded, MethodKind::Card),
        (Succeeded, PartiallyRefunded, MethodKind::Ach),
        (Succeeded, Refunded, MethodKind::Card),
        (Succeeded, Refunded, MethodKind::Ach),
        (Succeeded, Returned, MethodKind::Ach),
        (PartiallyRefunded, PartiallyRefunded, MethodKind::Card),
        (PartiallyRefunded, PartiallyRefunded, MethodKind::Ach),
        (PartiallyRefunded, Refunded, MethodKind::Card),
        (PartiallyRefunded, Refunded, MethodKind::Ach),
    ];

    #[test]
    fn exhaustive_transition_table() {
        let mut checked = 0;
        for from in PaymentStatus::ALL {
            for to in PaymentStatus::ALL {
                for kind in [MethodKind::Card, MethodKind::Ach] {
                    let expected_legal = LEGAL.contains(&(from, to, kind));
                    let got = transition(from, to, kind);
                    if expected_legal {
                        assert_eq!(got, Ok(to), "{from} -> {to} ({kind})");
                    } else {
                        let err = got.unwrap_err();
                        assert_eq!(
                            err,
                            TransitionError {
                                from: from.as_str(),
                                to: to.as_str()
                            }
                        );
                        assert_eq!(
                            err.to_string(),
                            format!("a payment cannot go from {from} to {to}")
                        );
                    }
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 8 * 8 * 2);
        assert_eq!(LEGAL.len(), 22);
    }

    #[test]
    fn terminal_states_have_no_exits() {
        for from in PaymentStatus::ALL {
            let has_exit = PaymentStatus::ALL.iter().any(|&to| {
                [MethodKind::Card, MethodKind::Ach]
                    .iter()
                    .any(|&k| transition(from, to, k).is_ok())
            });
            assert_eq!(from.is_terminal(), !has_exit, "{from}");
        }
        assert!(transition(Pending, Succeeded, MethodKind::Card).is_err());
        assert!(transition(Pending, Succeeded, MethodKind::Ach).is_err());
    }

    #[test]
    fn posting_states() {
        assert!(!Processing.is_posted(MethodKind::Card));
        assert!(Processing.is_posted(MethodKind::Ach));
        for kind in [MethodKind::Card, MethodKind::Ach] {
            for s in [Succeeded, PartiallyRefunded, Refunded, Returned] {
                assert!(s.is_posted(kind));
            }
            for s in [Pending, Failed, Canceled] {
                assert!(!s.is_posted(kind));
            }
        }
    }

    #[test]
    fn string_round_trips() {
        let statuses: Vec<&str> = PaymentStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            statuses,
            [
                "pending",
                "processing",
                "succeeded",
                "failed",
                "canceled",
                "partially_refunded",
                "refunded",
                "returned"
            ]
        );
        for s in PaymentStatus::ALL {
            assert_eq!(PaymentStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(PaymentStatus::parse("cancelled"), None);
        for k in [
            MethodKind::Card,
            MethodKind::Ach,
            MethodKind::Check,
            MethodKind::Pledge,
        ] {
            assert_eq!(MethodKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(MethodKind::parse("cheque"), None);
        for c in Channel::ALL {
            assert_eq!(Channel::parse(c.as_str()), Some(c));
            assert_ne!(c.describe(Language::En), c.describe(Language::Es));
        }
        assert_eq!(Channel::Autopay.describe(Language::En), "by AutoPay");
        assert_eq!(Channel::Web.describe(Language::En), "online");
        assert_eq!(Channel::Api.describe(Language::En), "through the API");
        assert_eq!(Channel::parse("fax"), None);
    }
}

//! Payment risk rules: what the counts of recent attempts say about one more payment.
//!
//! Before a payment reaches the processor, the payment service counts what happened recently
//! from the same source (client address, browser, caller's number), with the same card, on the
//! same account and with the same card range (BIN), and [`assess`] turns those counts into a
//! [`RiskDecision`]: allow or block, with a score and every reason that fired. The counts are
//! the caller's business (they live in the database, shared by every instance); these rules
//! are pure and are tested here on their own.
//!
//! The rules are aimed at card testing (OWASP OAT-001, "carding"): a criminal with a list of
//! stolen card numbers tries them one after another against an easy target (guest quick pay,
//! the automated phone line) to learn which still work. That shows up as many declines from
//! one source, one card tried on many accounts, many cards tried on one account, or many
//! declines of one card range from anywhere. A genuine customer who mistypes a card twice
//! stays well under every threshold.
//!
//! A block is answered with the same neutral words whichever rule fired, so an attacker does
//! not learn what to change; the reasons are recorded for the biller's staff.

/// What happens to the payment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RiskAction {
    /// Sent to the processor.
    Allow,
    /// Refused before the processor is asked; the customer hears the neutral refusal.
    Block,
}

impl RiskAction {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            RiskAction::Allow => "allow",
            RiskAction::Block => "block",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<RiskAction> {
        match s {
            "allow" => Some(RiskAction::Allow),
            "block" => Some(RiskAction::Block),
            _ => None,
        }
    }
}

/// One rule that fired.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RiskReason {
    /// Many declined or blocked attempts from one client address, browser or phone number.
    SourceDeclines,
    /// Payments to many different accounts from one source.
    SourceAccounts,
    /// One card declined again and again.
    CardDeclines,
    /// One card tried on many different accounts.
    CardAccounts,
    /// Many different cards tried on one account.
    AccountCards,
    /// Many declines of one card range (BIN), from any source.
    BinDeclines,
    /// The caller's number is on the biller's block list.
    BlockedCaller,
}

impl RiskReason {
    /// Every reason.
    pub const ALL: [RiskReason; 7] = [
        RiskReason::SourceDeclines,
        RiskReason::SourceAccounts,
        RiskReason::CardDeclines,
        RiskReason::CardAccounts,
        RiskReason::AccountCards,
        RiskReason::BinDeclines,
        RiskReason::BlockedCaller,
    ];

    /// The stable code, as stored and shown to staff.
    pub fn code(self) -> &'static str {
        match self {
            RiskReason::SourceDeclines => "source_declines",
            RiskReason::SourceAccounts => "source_accounts",
            RiskReason::CardDeclines => "card_declines",
            RiskReason::CardAccounts => "card_accounts",
            RiskReason::AccountCards => "account_cards",
            RiskReason::BinDeclines => "bin_declines",
            RiskReason::BlockedCaller => "blocked_caller",
        }
    }

    /// Parses a stored code.
    pub fn parse(code: &str) -> Option<RiskReason> {
        RiskReason::ALL.into_iter().find(|r| r.code() == code)
    }

    /// What staff read about it.
    pub fn describe(self) -> &'static str {
        match self {
            RiskReason::SourceDeclines => {
                "Many declined or refused payments from the same device, address or phone number"
            }
            RiskReason::SourceAccounts => {
                "Payments to many different accounts from the same device, address or phone number"
            }
            RiskReason::CardDeclines => "The same card was declined again and again",
            RiskReason::CardAccounts => "The same card was tried on several accounts",
            RiskReason::AccountCards => "Many different cards were tried on this account",
            RiskReason::BinDeclines => "Many declines of cards from the same card range (BIN)",
            RiskReason::BlockedCaller => "The caller's number is on the block list",
        }
    }

    /// How much it adds to the score (0–100 in all).
    fn weight(self) -> u32 {
        match self {
            RiskReason::BlockedCaller => 100,
            RiskReason::SourceDeclines | RiskReason::CardAccounts => 80,
            RiskReason::CardDeclines | RiskReason::AccountCards => 70,
            RiskReason::SourceAccounts => 60,
            RiskReason::BinDeclines => 50,
        }
    }
}

/// The biller's thresholds. A rule fires when a count reaches its threshold; 0 turns the rule
/// off. Counts cover the attempts before this one, within `window_minutes` (the account's
/// cards: within `account_window_hours`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RiskRules {
    /// The sliding window of the source, card and BIN counts.
    pub window_minutes: i64,
    /// Declined or blocked attempts from one source.
    pub source_declines: i64,
    /// Distinct accounts paid (or tried) from one source.
    pub source_accounts: i64,
    /// Declines of one card.
    pub card_declines: i64,
    /// Distinct accounts one card was tried on (this one included).
    pub card_accounts: i64,
    /// The window of the account's distinct cards.
    pub account_window_hours: i64,
    /// Distinct cards tried on one account (this one included).
    pub account_cards: i64,
    /// Declines of one card range from any source.
    pub bin_declines: i64,
    /// Callers' numbers (E.164) that are always refused.
    pub blocked_callers: Vec<String>,
}

impl Default for RiskRules {
    fn default() -> Self {
        RiskRules {
            window_minutes: 60,
            source_declines: 5,
            source_accounts: 6,
            card_declines: 4,
            card_accounts: 5,
            account_window_hours: 24,
            account_cards: 6,
            bin_declines: 50,
            blocked_callers: Vec::new(),
        }
    }
}

impl RiskRules {
    /// Checks the settings; the error names the setting.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=1440).contains(&self.window_minutes) {
            return Err("risk.window_minutes must be 1 to 1440".into());
        }
        if !(1..=720).contains(&self.account_window_hours) {
            return Err("risk.account_window_hours must be 1 to 720".into());
        }
        for (name, v) in [
            ("source_declines", self.source_declines),
            ("source_accounts", self.source_accounts),
            ("card_declines", self.card_declines),
            ("card_accounts", self.card_accounts),
            ("account_cards", self.account_cards),
            ("bin_declines", self.bin_declines),
        ] {
            if !(0..=100_000).contains(&v) {
                return Err(format!("risk.{name} must be 0 (off) to 100000, not {v}"));
            }
        }
        for n in &self.blocked_callers {
            let digits = n.strip_prefix('+').unwrap_or("");
            if digits.len() < 8 || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(format!(
                    "risk.blocked_callers: {n:?} is not a phone number in E.164 form (+ and 8 to 15 digits)"
                ));
            }
        }
        Ok(())
    }
}

/// What was counted before this attempt. Counts of a source or card the attempt does not have
/// (no client address on the phone, a bank account instead of a card) are zero.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RiskFacts {
    /// The most declined or blocked attempts of any one of the attempt's sources.
    pub source_declines: i64,
    /// The most distinct accounts of any one of its sources, this account included.
    pub source_accounts: i64,
    /// Declines of this card.
    pub card_declines: i64,
    /// Distinct accounts this card was tried on, this account included.
    pub card_accounts: i64,
    /// Distinct cards tried on this account, this card included.
    pub account_cards: i64,
    /// Declines of this card's range.
    pub bin_declines: i64,
    /// The caller's number is on the block list.
    pub blocked_caller: bool,
}

/// The decision on one attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RiskDecision {
    /// Allow or block.
    pub action: RiskAction,
    /// 0 (nothing fired) to 100.
    pub score: u32,
    /// Every rule that fired, strongest first.
    pub reasons: Vec<RiskReason>,
}

/// Applies the rules to the counts.
pub fn assess(rules: &RiskRules, facts: &RiskFacts) -> RiskDecision {
    let reached = |count: i64, threshold: i64| threshold > 0 && count >= threshold;
    let mut reasons: Vec<RiskReason> = [
        (facts.blocked_caller, RiskReason::BlockedCaller),
        (
            reached(facts.source_declines, rules.source_declines),
            RiskReason::SourceDeclines,
        ),
        (
            reached(facts.card_accounts, rules.card_accounts),
            RiskReason::CardAccounts,
        ),
        (
            reached(facts.card_declines, rules.card_declines),
            RiskReason::CardDeclines,
        ),
        (
            reached(facts.account_cards, rules.account_cards),
            RiskReason::AccountCards,
        ),
        (
            reached(facts.source_accounts, rules.source_accounts),
            RiskReason::SourceAccounts,
        ),
        (
            reached(facts.bin_declines, rules.bin_declines),
            RiskReason::BinDeclines,
        ),
    ]
    .into_iter()
    .filter_map(|(fired, r)| fired.then_some(r))
    .collect();
    reasons.sort_by_key(|r| std::cmp::Reverse(r.weight()));
    let score = reasons.iter().map(|r| r.weight()).sum::<u32>().min(100);
    RiskDecision {
        action: if reasons.is_empty() {
            RiskAction::Allow
        } else {
            RiskAction::Block
        },
        score,
        reasons,
    }
}

/// A card number's range as the rules count it: its first six digits (PCI DSS allows the
/// first six and last four digits to be kept and shown). None for anything shorter.
pub fn card_bin(number: &str) -> Option<String> {
    let digits: String = number
        .chars()
        .filter(char::is_ascii_digit)
        .take(6)
        .collect();
    (digits.len() == 6).then_some(digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_recent_is_allowed() {
        let d = assess(&RiskRules::default(), &RiskFacts::default());
        assert_eq!(d.action, RiskAction::Allow);
        assert_eq!(d.score, 0);
        assert!(d.reasons.is_empty());
    }

    #[test]
    fn a_customer_who_mistypes_twice_is_allowed() {
        let facts = RiskFacts {
            source_declines: 2,
            source_accounts: 1,
            card_declines: 2,
            card_accounts: 1,
            account_cards: 2,
            bin_declines: 2,
            blocked_caller: false,
        };
        assert_eq!(
            assess(&RiskRules::default(), &facts).action,
            RiskAction::Allow
        );
    }

    #[test]
    fn each_rule_blocks_at_its_threshold_and_not_before() {
        let rules = RiskRules::default();
        type Set = fn(&mut RiskFacts, i64);
        let cases: [(Set, i64, RiskReason); 6] = [
            (
                |f, n| f.source_declines = n,
                rules.source_declines,
                RiskReason::SourceDeclines,
            ),
            (
                |f, n| f.source_accounts = n,
                rules.source_accounts,
                RiskReason::SourceAccounts,
            ),
            (
                |f, n| f.card_declines = n,
                rules.card_declines,
                RiskReason::CardDeclines,
            ),
            (
                |f, n| f.card_accounts = n,
                rules.card_accounts,
                RiskReason::CardAccounts,
            ),
            (
                |f, n| f.account_cards = n,
                rules.account_cards,
                RiskReason::AccountCards,
            ),
            (
                |f, n| f.bin_declines = n,
                rules.bin_declines,
                RiskReason::BinDeclines,
            ),
        ];
        for (set, threshold, reason) in cases {
            let mut below = RiskFacts::default();
            set(&mut below, threshold - 1);
            assert_eq!(
                assess(&rules, &below).action,
                RiskAction::Allow,
                "{reason:?}"
            );
            let mut at = RiskFacts::default();
            set(&mut at, threshold);
            let d = assess(&rules, &at);
            assert_eq!(d.action, RiskAction::Block, "{reason:?}");
            assert_eq!(d.reasons, vec![reason]);
            assert!(d.score > 0);
        }
    }

    #[test]
    fn zero_turns_a_rule_off() {
        let rules = RiskRules {
            source_declines: 0,
            ..RiskRules::default()
        };
        let facts = RiskFacts {
            source_declines: 1_000,
            ..RiskFacts::default()
        };
        assert_eq!(assess(&rules, &facts).action, RiskAction::Allow);
    }

    #[test]
    fn reasons_come_strongest_first_and_the_score_is_capped() {
        let facts = RiskFacts {
            source_declines: 99,
            bin_declines: 999,
            blocked_caller: true,
            ..RiskFacts::default()
        };
        let d = assess(&RiskRules::default(), &facts);
        assert_eq!(
            d.reasons,
            vec![
                RiskReason::BlockedCaller,
                RiskReason::SourceDeclines,
                RiskReason::BinDeclines
            ]
        );
        assert_eq!(d.score, 100);
    }

    #[test]
    fn codes_round_trip() {
        for r in RiskReason::ALL {
            assert_eq!(RiskReason::parse(r.code()), Some(r));
            assert!(!r.describe().is_empty());
        }
        for a in [RiskAction::Allow, RiskAction::Block] {
            assert_eq!(RiskAction::parse(a.as_str()), Some(a));
        }
        assert_eq!(RiskReason::parse("nope"), None);
    }

    #[test]
    fn settings_are_checked_by_name() {
        assert!(RiskRules::default().validate().is_ok());
        let bad = RiskRules {
            card_declines: -1,
            ..RiskRules::default()
        };
        assert!(bad.validate().unwrap_err().contains("risk.card_declines"));
        let bad = RiskRules {
            window_minutes: 0,
            ..RiskRules::default()
        };
        assert!(bad.validate().unwrap_err().contains("risk.window_minutes"));
        let bad = RiskRules {
            blocked_callers: vec!["555-1234".into()],
            ..RiskRules::default()
        };
        assert!(bad.validate().unwrap_err().contains("E.164"));
        let good = RiskRules {
            blocked_callers: vec!["+15550100999".into()],
            ..RiskRules::default()
        };
        assert!(good.validate().is_ok());
    }

    #[test]
    fn bin_is_the_first_six_digits() {
        assert_eq!(card_bin("4242424242424242").as_deref(), Some("424242"));
        assert_eq!(card_bin("4242 4242 4242 4242").as_deref(), Some("424242"));
        assert_eq!(card_bin("42424"), None);
    }
}

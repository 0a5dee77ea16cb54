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
//!
//! Other rules look at the payment itself rather than at a run of attempts, and ask a person
//! instead of refusing: an amount far above the account's bill and its payment history, and a
//! large first payment with a saved method or from a bank account (ACH first use). They call
//! for [`RiskAction::Review`]: the payment goes to the processor as usual, and once approved it
//! is held in the agent desk's review queue, where a supervisor approves it or rejects it (a
//! rejection refunds it), as card processors' manual review does. A genuine large payment is
//! never turned away at the till; a stolen method's large payment is caught by a person.

/// What happens to the payment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RiskAction {
    /// Sent to the processor.
    Allow,
    /// Sent to the processor; once it goes through, held for a person to approve or reject.
    Review,
    /// Refused before the processor is asked; the customer hears the neutral refusal.
    Block,
}

impl RiskAction {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            RiskAction::Allow => "allow",
            RiskAction::Review => "review",
            RiskAction::Block => "block",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<RiskAction> {
        match s {
            "allow" => Some(RiskAction::Allow),
            "review" => Some(RiskAction::Review),
            "block" => Some(RiskAction::Block),
            _ => None,
        }
    }
}

/// A person's decision on a payment held for review.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReviewDecision {
    /// The payment stands.
    Approve,
    /// The payment is refunded in full.
    Reject,
}

impl ReviewDecision {
    /// The stored name (also its `risk_decisions` action).
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewDecision::Approve => "approve",
            ReviewDecision::Reject => "reject",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<ReviewDecision> {
        match s {
            "approve" => Some(ReviewDecision::Approve),
            "reject" => Some(ReviewDecision::Reject),
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
    /// The amount is far above the account's bill and its largest recent payment.
    AmountAboveHistory,
    /// A large first payment with this saved method.
    NewMethodAmount,
    /// A large first payment from a bank account on this account (ACH first use).
    AchFirstUse,
}

impl RiskReason {
    /// Every reason.
    pub const ALL: [RiskReason; 10] = [
        RiskReason::SourceDeclines,
        RiskReason::SourceAccounts,
        RiskReason::CardDeclines,
        RiskReason::CardAccounts,
        RiskReason::AccountCards,
        RiskReason::BinDeclines,
        RiskReason::BlockedCaller,
        RiskReason::AmountAboveHistory,
        RiskReason::NewMethodAmount,
        RiskReason::AchFirstUse,
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
            RiskReason::AmountAboveHistory => "amount_above_history",
            RiskReason::NewMethodAmount => "new_method_amount",
            RiskReason::AchFirstUse => "ach_first_use",
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
            RiskReason::AmountAboveHistory => {
                "The amount is far above the account's bill and its largest payment in the last 12 months"
            }
            RiskReason::NewMethodAmount => "A large first payment with this saved payment method",
            RiskReason::AchFirstUse => "A large first payment from a bank account on this account",
        }
    }

    /// What the rule calls for when it fires: a block, or a person's review.
    pub fn action(self) -> RiskAction {
        match self {
            RiskReason::AmountAboveHistory
            | RiskReason::NewMethodAmount
            | RiskReason::AchFirstUse => RiskAction::Review,
            RiskReason::SourceDeclines
            | RiskReason::SourceAccounts
            | RiskReason::CardDeclines
            | RiskReason::CardAccounts
            | RiskReason::AccountCards
            | RiskReason::BinDeclines
            | RiskReason::BlockedCaller => RiskAction::Block,
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
            RiskReason::AmountAboveHistory => 40,
            RiskReason::NewMethodAmount | RiskReason::AchFirstUse => 30,
        }
    }
}

/// The biller's thresholds. A rule fires when a count reaches its threshold; 0 turns the rule
/// off. Counts cover the attempts before this one, within `window_minutes` (the account's
/// cards: within `account_window_hours`). The review rules compare the amount (minor units)
/// with the account's bill and history.
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
    /// A payment more than this many times the larger of the account's bill (amount due or
    /// balance) and its largest payment in the last 12 months is reviewed. 0: off.
    pub review_amount_factor: i64,
    /// ...but only above this amount (minor units), so small payments are never reviewed.
    /// 0: no floor.
    pub review_amount_floor_minor: i64,
    /// A first payment with a saved method, or an account's first bank debit, above this
    /// amount (minor units) is reviewed. 0: off.
    pub review_first_use_minor: i64,
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
            review_amount_factor: 3,
            review_amount_floor_minor: 50_000,
            review_first_use_minor: 100_000,
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
        if !(0..=100).contains(&self.review_amount_factor) {
            return Err(format!(
                "risk.review_amount_factor must be 0 (off) to 100, not {}",
                self.review_amount_factor
            ));
        }
        for (name, v) in [
            ("review_amount_floor_cents", self.review_amount_floor_minor),
            ("review_first_use_cents", self.review_first_use_minor),
        ] {
            if !(0..=REVIEW_AMOUNT_MAX_MINOR).contains(&v) {
                return Err(format!(
                    "risk.{name} must be 0 to {REVIEW_AMOUNT_MAX_MINOR} (minor units), not {v}"
                ));
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

/// The largest amount setting of the review rules accepted (minor units): the largest single
/// payment billpay takes, $1,000,000.00.
pub const REVIEW_AMOUNT_MAX_MINOR: i64 = 100_000_000;

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
    /// This payment's amount (minor units).
    pub amount_minor: i64,
    /// The account's bill: the larger of its current statement's amount due and its balance.
    pub bill_minor: i64,
    /// The account's largest payment in the last 12 months that went through and is not held
    /// for review.
    pub largest_payment_minor: i64,
    /// The payment uses a saved method that has never paid before.
    pub new_saved_method: bool,
    /// The payment is a bank debit and the account has never paid from a bank account before.
    pub first_bank_debit: bool,
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
        (
            amount_above_history(rules, facts),
            RiskReason::AmountAboveHistory,
        ),
        (
            facts.new_saved_method && large_first_use(rules, facts),
            RiskReason::NewMethodAmount,
        ),
        (
            facts.first_bank_debit && large_first_use(rules, facts),
            RiskReason::AchFirstUse,
        ),
    ]
    .into_iter()
    .filter_map(|(fired, r)| fired.then_some(r))
    .collect();
    reasons.sort_by_key(|r| std::cmp::Reverse(r.weight()));
    let score = reasons.iter().map(|r| r.weight()).sum::<u32>().min(100);
    // The strongest action any reason calls for (Allow < Review < Block).
    let action = reasons
        .iter()
        .map(|r| r.action())
        .max()
        .unwrap_or(RiskAction::Allow);
    RiskDecision {
        action,
        score,
        reasons,
    }
}

/// The amount is above the floor and above `review_amount_factor` times the larger of the
/// account's bill and its largest recent payment. Integer arithmetic, saturating: a huge bill
/// times the factor only makes the rule fire less.
fn amount_above_history(rules: &RiskRules, facts: &RiskFacts) -> bool {
    if rules.review_amount_factor <= 0 || facts.amount_minor <= rules.review_amount_floor_minor {
        return false;
    }
    let usual = facts.bill_minor.max(facts.largest_payment_minor).max(0);
    facts.amount_minor > usual.saturating_mul(rules.review_amount_factor)
}

/// A first use is large enough to review.
fn large_first_use(rules: &RiskRules, facts: &RiskFacts) -> bool {
    rules.review_first_use_minor > 0 && facts.amount_minor > rules.review_first_use_minor
}

impl RiskRules {
    /// Whether an amount could make a review rule fire at all: below both thresholds the
    /// account's history need not be read.
    pub fn may_review(&self, amount_minor: i64) -> bool {
        (self.review_amount_factor > 0 && amount_minor > self.review_amount_floor_minor)
            || (self.review_first_use_minor > 0 && amount_minor > self.review_first_use_minor)
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
            ..RiskFacts::default()
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
        for a in [RiskAction::Allow, RiskAction::Review, RiskAction::Block] {
            assert_eq!(RiskAction::parse(a.as_str()), Some(a));
        }
        assert_eq!(RiskReason::parse("nope"), None);
        for d in [ReviewDecision::Approve, ReviewDecision::Reject] {
            assert_eq!(ReviewDecision::parse(d.as_str()), Some(d));
            assert_eq!(RiskAction::parse(d.as_str()), None, "not a rule's action");
        }
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

    /// A $900 payment on an account whose bill is $84.10 and which paid at most $200.
    fn large_payment() -> RiskFacts {
        RiskFacts {
            amount_minor: 90_000,
            bill_minor: 8_410,
            largest_payment_minor: 20_000,
            ..RiskFacts::default()
        }
    }

    #[test]
    fn an_amount_far_above_the_bill_and_history_is_reviewed_not_blocked() {
        let d = assess(&RiskRules::default(), &large_payment());
        assert_eq!(d.action, RiskAction::Review);
        assert_eq!(d.reasons, vec![RiskReason::AmountAboveHistory]);
        assert!(d.score > 0);
        // Three times the larger of the bill and the history is the line (strictly above).
        for (amount, action) in [(60_000, RiskAction::Allow), (60_001, RiskAction::Review)] {
            let facts = RiskFacts {
                amount_minor: amount,
                ..large_payment()
            };
            assert_eq!(
                assess(&RiskRules::default(), &facts).action,
                action,
                "{amount}"
            );
        }
        // A large bill (or balance) makes a large payment ordinary.
        let facts = RiskFacts {
            bill_minor: 40_000,
            ..large_payment()
        };
        assert_eq!(
            assess(&RiskRules::default(), &facts).action,
            RiskAction::Allow
        );
    }

    #[test]
    fn small_payments_are_never_reviewed() {
        // A new account with no bill and no history: anything up to the floor goes through.
        for amount in [1, 10_000, 50_000] {
            let facts = RiskFacts {
                amount_minor: amount,
                new_saved_method: true,
                first_bank_debit: true,
                ..RiskFacts::default()
            };
            assert_eq!(
                assess(&RiskRules::default(), &facts).action,
                RiskAction::Allow,
                "{amount}"
            );
            assert!(!RiskRules::default().may_review(amount));
        }
        let facts = RiskFacts {
            amount_minor: 50_001,
            ..RiskFacts::default()
        };
        assert_eq!(
            assess(&RiskRules::default(), &facts).action,
            RiskAction::Review
        );
    }

    #[test]
    fn a_large_first_use_is_reviewed() {
        let rules = RiskRules {
            review_amount_factor: 0,
            ..RiskRules::default()
        };
        for (facts, reason) in [
            (
                RiskFacts {
                    amount_minor: 100_001,
                    new_saved_method: true,
                    ..RiskFacts::default()
                },
                RiskReason::NewMethodAmount,
            ),
            (
                RiskFacts {
                    amount_minor: 100_001,
                    first_bank_debit: true,
                    ..RiskFacts::default()
                },
                RiskReason::AchFirstUse,
            ),
        ] {
            let d = assess(&rules, &facts);
            assert_eq!(d.action, RiskAction::Review);
            assert_eq!(d.reasons, vec![reason]);
            let at_threshold = RiskFacts {
                amount_minor: 100_000,
                ..facts.clone()
            };
            assert_eq!(assess(&rules, &at_threshold).action, RiskAction::Allow);
            let used_before = RiskFacts {
                new_saved_method: false,
                first_bank_debit: false,
                ..facts
            };
            assert_eq!(assess(&rules, &used_before).action, RiskAction::Allow);
        }
    }

    #[test]
    fn zero_turns_the_review_rules_off() {
        let rules = RiskRules {
            review_amount_factor: 0,
            review_first_use_minor: 0,
            ..RiskRules::default()
        };
        let facts = RiskFacts {
            amount_minor: 90_000_000,
            new_saved_method: true,
            first_bank_debit: true,
            ..RiskFacts::default()
        };
        assert_eq!(assess(&rules, &facts).action, RiskAction::Allow);
        assert!(!rules.may_review(90_000_000));
        // No floor: any amount above the factor's line is reviewed.
        let rules = RiskRules {
            review_amount_floor_minor: 0,
            ..RiskRules::default()
        };
        let facts = RiskFacts {
            amount_minor: 301,
            bill_minor: 100,
            ..RiskFacts::default()
        };
        assert_eq!(assess(&rules, &facts).action, RiskAction::Review);
    }

    #[test]
    fn a_block_outranks_a_review_and_both_reasons_are_kept() {
        let facts = RiskFacts {
            card_accounts: 99,
            ..large_payment()
        };
        let d = assess(&RiskRules::default(), &facts);
        assert_eq!(d.action, RiskAction::Block);
        assert_eq!(
            d.reasons,
            vec![RiskReason::CardAccounts, RiskReason::AmountAboveHistory]
        );
    }

    #[test]
    fn no_amount_overflows() {
        let facts = RiskFacts {
            amount_minor: i64::MAX,
            bill_minor: i64::MAX,
            largest_payment_minor: i64::MAX,
            ..RiskFacts::default()
        };
        assert_eq!(
            assess(&RiskRules::default(), &facts).action,
            RiskAction::Allow
        );
        let facts = RiskFacts {
            bill_minor: -5_000,
            ..large_payment()
        };
        assert_eq!(
            assess(&RiskRules::default(), &facts).action,
            RiskAction::Review
        );
    }

    #[test]
    fn review_settings_are_checked_by_name() {
        let bad = RiskRules {
            review_amount_factor: 101,
            ..RiskRules::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .contains("risk.review_amount_factor")
        );
        let bad = RiskRules {
            review_amount_floor_minor: -1,
            ..RiskRules::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .contains("risk.review_amount_floor_cents")
        );
        let bad = RiskRules {
            review_first_use_minor: REVIEW_AMOUNT_MAX_MINOR + 1,
            ..RiskRules::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .contains("risk.review_first_use_cents")
        );
    }

    #[test]
    fn every_reason_calls_for_an_action() {
        let reviews: Vec<RiskReason> = RiskReason::ALL
            .into_iter()
            .filter(|r| r.action() == RiskAction::Review)
            .collect();
        assert_eq!(
            reviews,
            vec![
                RiskReason::AmountAboveHistory,
                RiskReason::NewMethodAmount,
                RiskReason::AchFirstUse
            ]
        );
        assert!(
            RiskReason::ALL
                .iter()
                .all(|r| r.action() != RiskAction::Allow)
        );
    }

    #[test]
    fn bin_is_the_first_six_digits() {
        assert_eq!(card_bin("4242424242424242").as_deref(), Some("424242"));
        assert_eq!(card_bin("4242 4242 4242 4242").as_deref(), Some("424242"));
        assert_eq!(card_bin("42424"), None);
    }
}

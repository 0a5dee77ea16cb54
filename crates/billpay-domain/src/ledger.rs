//! Double-entry ledger posting rules.
//!
//! Ledger account names are strings: customer receivable "ar:{account_number}",
//! and system accounts. A posting's amount is positive for a debit and negative
//! for a credit, and every [`JournalEntry`] balances to exactly zero.

use crate::ids::AccountNumber;
use crate::money::{Currency, Money, MoneyError};
use crate::payment::MethodKind;

/// Revenue from billed statements.
pub const LEDGER_REVENUE: &str = "revenue:billing";
/// Card payments collected but not yet settled to us.
pub const LEDGER_CARD_CLEARING: &str = "clearing:card";
/// Bank debits collected but not yet settled to us.
pub const LEDGER_ACH_CLEARING: &str = "clearing:ach";
/// Revenue from fees charged to customers.
/// Checks deposited by the bank's lockbox, not yet reconciled with the bank statement.
pub const LEDGER_LOCKBOX_CLEARING: &str = "clearing:lockbox";
/// Assistance-agency pledges posted to customers' accounts, until the agency pays.
pub const LEDGER_PLEDGES: &str = "clearing:pledges";
/// Fees charged to customers (returned-payment fees and the like).
pub const LEDGER_FEES: &str = "revenue:fees";
/// Manual adjustments.
pub const LEDGER_ADJUSTMENTS: &str = "adjustments";

/// The receivable ledger account of a customer account: "ar:{account_number}".
pub fn receivable_account(account: &AccountNumber) -> String {
    format!("ar:{}", account.as_str())
}

/// The clearing ledger account for a payment method kind.
pub fn clearing_account(method: MethodKind) -> &'static str {
    match method {
        MethodKind::Card => LEDGER_CARD_CLEARING,
        MethodKind::Ach => LEDGER_ACH_CLEARING,
        MethodKind::Check => LEDGER_LOCKBOX_CLEARING,
        MethodKind::Pledge => LEDGER_PLEDGES,
    }
}

/// One line of a journal entry: positive = debit, negative = credit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Posting {
    /// The ledger account posted to.
    pub ledger_account: String,
    /// Positive for a debit, negative for a credit.
    pub amount: Money,
}

impl Posting {
    /// A posting of `amount` (positive = debit, negative = credit) to `ledger_account`.
    pub fn new(ledger_account: impl Into<String>, amount: Money) -> Posting {
        Posting {
            ledger_account: ledger_account.into(),
            amount,
        }
    }
}

/// What a journal entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// A statement billed to the customer.
    Statement,
    /// A payment received.
    Payment,
    /// A refund of a payment.
    Refund,
    /// A fee charged to the customer.
    Fee,
    /// A returned bank debit.
    Return,
    /// A manual adjustment.
    Adjustment,
}

impl EntryKind {
    /// Every kind.
    pub const ALL: [EntryKind; 6] = [
        EntryKind::Statement,
        EntryKind::Payment,
        EntryKind::Refund,
        EntryKind::Fee,
        EntryKind::Return,
        EntryKind::Adjustment,
    ];

    /// "statement", "payment", "refund", "fee", "return", "adjustment".
    pub fn as_str(&self) -> &'static str {
        match self {
            EntryKind::Statement => "statement",
            EntryKind::Payment => "payment",
            EntryKind::Refund => "refund",
            EntryKind::Fee => "fee",
            EntryKind::Return => "return",
            EntryKind::Adjustment => "adjustment",
        }
    }

    /// Inverse of [`EntryKind::as_str`] (exact match).
    pub fn parse(s: &str) -> Option<Self> {
        EntryKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for EntryKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A balanced journal transaction. Constructed only through `new`, which
/// asserts: at least 2 postings, one currency, no zero posting, sum == 0
/// (checked arithmetic).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalEntry {
    kind: EntryKind,
    postings: Vec<Posting>,
    currency: Currency,
}

impl JournalEntry {
    /// Validates and builds an entry. Errors, in the order checked:
    /// [`LedgerError::TooFewPostings`], [`LedgerError::MixedCurrency`],
    /// [`LedgerError::ZeroPosting`], [`LedgerError::Unbalanced`].
    ///
    /// The sum is accumulated in 128 bits, so it cannot overflow however large
    /// the individual postings are.
    pub fn new(kind: EntryKind, postings: Vec<Posting>) -> Result<JournalEntry, LedgerError> {
        let (Some(first), true) = (postings.first(), postings.len() >= 2) else {
            return Err(LedgerError::TooFewPostings);
        };
        let currency = first.amount.currency();
        if postings.iter().any(|p| p.amount.currency() != currency) {
            return Err(LedgerError::MixedCurrency);
        }
        if postings.iter().any(|p| p.amount.is_zero()) {
            return Err(LedgerError::ZeroPosting);
        }
        let mut sum: i128 = 0;
        for p in &postings {
            sum = sum
                .checked_add(i128::from(p.amount.minor_units()))
                .ok_or(MoneyError::Overflow)?;
        }
        if sum != 0 {
            let sum_minor = i64::try_from(sum).unwrap_or(if sum > 0 { i64::MAX } else { i64::MIN });
            return Err(LedgerError::Unbalanced { sum_minor });
        }
        Ok(JournalEntry {
            kind,
            postings,
            currency,
        })
    }

    /// What the entry records.
    pub fn kind(&self) -> EntryKind {
        self.kind
    }

    /// The postings, in the order given.
    pub fn postings(&self) -> &[Posting] {
        &self.postings
    }

    /// The single currency of every posting.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// A two-posting entry debiting `debit` and crediting `credit` with a
    /// strictly positive `amount`.
    fn pair(
        kind: EntryKind,
        debit: String,
        credit: String,
        amount: Money,
    ) -> Result<JournalEntry, LedgerError> {
        if !amount.is_positive() {
            return Err(LedgerError::NonPositiveAmount);
        }
        let credit_amount = amount.checked_neg()?;
        JournalEntry::new(
            kind,
            vec![
                Posting::new(debit, amount),
                Posting::new(credit, credit_amount),
            ],
        )
    }

    /// Customer charged: debit AR, credit revenue.
    pub fn statement(account: &AccountNumber, amount: Money) -> Result<Self, LedgerError> {
        Self::pair(
            EntryKind::Statement,
            receivable_account(account),
            LEDGER_REVENUE.to_owned(),
            amount,
        )
    }

    /// Customer paid: credit AR, debit the method's clearing account.
    pub fn payment(
        account: &AccountNumber,
        amount: Money,
        method: MethodKind,
    ) -> Result<Self, LedgerError> {
        Self::pair(
            EntryKind::Payment,
            clearing_account(method).to_owned(),
            receivable_account(account),
            amount,
        )
    }

    /// Refund: debit AR, credit clearing.
    pub fn refund(
        account: &AccountNumber,
        amount: Money,
        method: MethodKind,
    ) -> Result<Self, LedgerError> {
        Self::pair(
            EntryKind::Refund,
            receivable_account(account),
            clearing_account(method).to_owned(),
            amount,
        )
    }

    /// Returned bank debit: debit AR, credit ACH clearing.
    pub fn ach_return(account: &AccountNumber, amount: Money) -> Result<Self, LedgerError> {
        Self::pair(
            EntryKind::Return,
            receivable_account(account),
            LEDGER_ACH_CLEARING.to_owned(),
            amount,
        )
    }

    /// Fee charged to the customer: debit AR, credit fees.
    pub fn fee(account: &AccountNumber, amount: Money) -> Result<Self, LedgerError> {
        Self::pair(
            EntryKind::Fee,
            receivable_account(account),
            LEDGER_FEES.to_owned(),
            amount,
        )
    }
}

/// Why a journal entry was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// The postings do not sum to zero.
    #[error(
        "the journal entry does not balance: its postings sum to {sum_minor} minor units instead of 0"
    )]
    Unbalanced {
        /// The sum of the postings in minor units (saturated to the i64 range).
        sum_minor: i64,
    },
    /// Fewer than two postings.
    #[error("a journal entry needs at least two postings")]
    TooFewPostings,
    /// A posting of zero.
    #[error("a journal entry cannot contain a posting of zero")]
    ZeroPosting,
    /// Postings in more than one currency.
    #[error("all postings in a journal entry must be in the same currency")]
    MixedCurrency,
    /// A helper constructor was given zero or a negative amount.
    #[error("the amount must be greater than zero")]
    NonPositiveAmount,
    /// A money operation failed.
    #[error(transparent)]
    Money(#[from] MoneyError),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acct() -> AccountNumber {
        AccountNumber::from_body("1234567").unwrap()
    }

    #[test]
    fn new_validates() {
        let usd = Money::usd;
        assert_eq!(
            JournalEntry::new(EntryKind::Adjustment, vec![]),
            Err(LedgerError::TooFewPostings)
        );
        assert_eq!(
            JournalEntry::new(EntryKind::Adjustment, vec![Posting::new("a", usd(1))]),
            Err(LedgerError::TooFewPostings)
        );
        assert_eq!(
            JournalEntry::new(
                EntryKind::Adjustment,
                vec![
                    Posting::new("a", usd(1)),
                    Posting::new("b", Money::new(-1, Currency::CAD))
                ]
            ),
            Err(LedgerError::MixedCurrency)
        );
        assert_eq!(
            JournalEntry::new(
                EntryKind::Adjustment,
                vec![
                    Posting::new("a", usd(1)),
                    Posting::new("b", usd(-1)),
                    Posting::new("c", usd(0))
                ]
            ),
            Err(LedgerError::ZeroPosting)
        );
        assert_eq!(
            JournalEntry::new(
                EntryKind::Adjustment,
                vec![Posting::new("a", usd(5)), Posting::new("b", usd(-3))]
            ),
            Err(LedgerError::Unbalanced { sum_minor: 2 })
        );
        // Large postings that would overflow an i64 running sum still balance.
        let big = JournalEntry::new(
            EntryKind::Adjustment,
            vec![
                Posting::new("a", usd(i64::MAX)),
                Posting::new("b", usd(i64::MAX)),
                Posting::new("c", usd(-i64::MAX)),
                Posting::new("d", usd(-i64::MAX)),
            ],
        )
        .unwrap();
        assert_eq!(big.postings().len(), 4);
        assert_eq!(
            JournalEntry::new(
                EntryKind::Adjustment,
                vec![
                    Posting::new("a", usd(i64::MAX)),
                    Posting::new("b", usd(i64::MAX)),
                ]
            ),
            Err(LedgerError::Unbalanced {
                sum_minor: i64::MAX
            })
        );
        let ok = JournalEntry::new(
            EntryKind::Adjustment,
            vec![
                Posting::new(LEDGER_ADJUSTMENTS, usd(-300)),
                Posting::new("b", usd(100)),
                Posting::new("c", usd(200)),
            ],
        )
        .unwrap();
        assert_eq!(ok.kind(), EntryKind::Adjustment);
        assert_eq!(ok.currency(), Currency::USD);
    }

    fn sides(e: &JournalEntry) -> (String, String, i64) {
        let debit = e
            .postings()
            .iter()
            .find(|p| p.amount.is_positive())
            .unwrap();
        let credit = e
            .postings()
            .iter()
            .find(|p| p.amount.is_negative())
            .unwrap();
        assert_eq!(debit.amount.minor_units(), -credit.amount.minor_units());
        (
            debit.ledger_account.clone(),
            credit.ledger_account.clone(),
            debit.amount.minor_units(),
        )
    }

    #[test]
    fn helper_constructors() {
        let a = acct();
        let ar = receivable_account(&a);
        assert_eq!(ar, format!("ar:{}", a.as_str()));
        let amt = Money::usd(8410);

        let e = JournalEntry::statement(&a, amt).unwrap();
        assert_eq!(e.kind(), EntryKind::Statement);
        assert_eq!(sides(&e), (ar.clone(), LEDGER_REVENUE.into(), 8410));

        let e = JournalEntry::payment(&a, amt, MethodKind::Card).unwrap();
        assert_eq!(e.kind(), EntryKind::Payment);
        assert_eq!(sides(&e), (LEDGER_CARD_CLEARING.into(), ar.clone(), 8410));
        let e = JournalEntry::payment(&a, amt, MethodKind::Ach).unwrap();
        assert_eq!(sides(&e), (LEDGER_ACH_CLEARING.into(), ar.clone(), 8410));

        let e = JournalEntry::refund(&a, amt, MethodKind::Card).unwrap();
        assert_eq!(e.kind(), EntryKind::Refund);
        assert_eq!(sides(&e), (ar.clone(), LEDGER_CARD_CLEARING.into(), 8410));

        let e = JournalEntry::ach_return(&a, amt).unwrap();
        assert_eq!(e.kind(), EntryKind::Return);
        assert_eq!(sides(&e), (ar.clone(), LEDGER_ACH_CLEARING.into(), 8410));

        let e = JournalEntry::fee(&a, amt).unwrap();
        assert_eq!(e.kind(), EntryKind::Fee);
        assert_eq!(sides(&e), (ar.clone(), LEDGER_FEES.into(), 8410));

        for bad in [Money::usd(0), Money::usd(-1), Money::usd(i64::MIN)] {
            assert_eq!(
                JournalEntry::statement(&a, bad),
                Err(LedgerError::NonPositiveAmount)
            );
            assert_eq!(
                JournalEntry::payment(&a, bad, MethodKind::Ach),
                Err(LedgerError::NonPositiveAmount)
            );
        }
        assert!(JournalEntry::fee(&a, Money::usd(i64::MAX)).is_ok());
    }

    #[test]
    fn entry_kind_strings() {
        for k in EntryKind::ALL {
            assert_eq!(EntryKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(EntryKind::Return.as_str(), "return");
        assert_eq!(EntryKind::parse("bogus"), None);
    }
}

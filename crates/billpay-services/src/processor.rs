//! The payment processor interface. A connector (the built-in sandbox, Stripe in `stripe.rs`) moves the
//! money; billpay records what it did. Every call carries a processor-side idempotency key that
//! billpay derives from its own records, so a retried call can never charge twice, and every
//! outcome can be looked up by that key when a call's answer was lost.

use async_trait::async_trait;
use billpay_domain::{
    BankAccountNumber, BankAccountType, CardExpiry, CardNumber, Cvc, DeclineCode, Money,
    PostalCode, RoutingNumber,
};

/// How the customer pays, with the secrets needed for this one call.
#[derive(Clone, Debug)]
pub enum ChargeMethod {
    Card {
        number: CardNumber,
        expiry: CardExpiry,
        cvc: Option<Cvc>,
        postal_code: Option<PostalCode>,
    },
    Bank {
        routing: RoutingNumber,
        account: BankAccountNumber,
        account_type: BankAccountType,
        holder_name: String,
    },
}

/// Calls in flight at once when a batch is charged call by call.
pub const CHARGE_CONCURRENCY: usize = 32;

/// Charges each request with its own call, [`CHARGE_CONCURRENCY`] at a time; the answers are
/// in the requests' order.
pub async fn charge_each<P: Processor + ?Sized>(
    processor: &P,
    reqs: &[ChargeRequest],
    timeout: std::time::Duration,
) -> Vec<Result<ChargeOutcome, ProcessorError>> {
    use futures::StreamExt;
    futures::stream::iter(0..reqs.len())
        .map(|i| async move {
            tokio::time::timeout(timeout, processor.charge(&reqs[i]))
                .await
                .unwrap_or(Err(ProcessorError::Timeout))
        })
        .buffered(CHARGE_CONCURRENCY)
        .collect()
        .await
}

#[derive(Clone, Debug)]
pub struct ChargeRequest {
    /// Processor-side idempotency key.
    pub key: String,
    pub amount: Money,
    pub method: ChargeMethod,
    pub description: String,
    pub context: ChargeContext,
}

/// Who is paying and how they agreed to it: what an originator of bank debits must keep with
/// each entry (NACHA SEC code, authorization). Card processors ignore it.
#[derive(Clone, Debug, Default)]
pub struct ChargeContext {
    pub payment_id: String,
    pub account_id: String,
    pub account_number: String,
    pub channel: Option<billpay_domain::Channel>,
    pub payment_method_id: Option<String>,
    /// The authorization the customer heard and accepted (a TEL debit), when the channel
    /// recorded one; otherwise the originator writes the standard text for the channel.
    pub authorization: Option<String>,
}

/// What the processor did with a charge or bank debit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChargeOutcome {
    /// A card sale, captured.
    Approved { reference: String },
    /// A bank debit, accepted for settlement; it may still be returned.
    Accepted { reference: String },
    Declined {
        code: DeclineCode,
        reference: Option<String>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefundOutcome {
    Refunded { reference: String },
    Declined { code: DeclineCode },
}

/// What a looked-up processor transaction is now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The processor never received a call with this key.
    NotFound,
    Charge(ChargeOutcome),
    Refund(RefundOutcome),
}

/// Where an accepted bank debit stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settlement {
    Pending,
    Settled,
    Returned(DeclineCode),
}

/// One charge as the processor lists it, for the daily settlement report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessorTx {
    /// billpay's processor key, when the processor kept it.
    pub key: Option<String>,
    pub reference: String,
    /// Minor units.
    pub amount: i64,
    pub currency: String,
    /// `succeeded`, `processing`, `failed`, or the processor's own word.
    pub status: String,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProcessorError {
    /// No answer in time: the call may or may not have taken effect.
    #[error("the payment processor did not answer in time")]
    Timeout,
    /// The processor could not be reached or refused the call before doing anything.
    #[error("the payment processor is unavailable: {0}")]
    Unavailable(String),
    /// The request was malformed for this processor (a bug or an unsupported option).
    #[error("the payment processor rejected the request: {0}")]
    Rejected(String),
}

#[async_trait]
pub trait Processor: Send + Sync + 'static {
    /// A short name stored with each payment ("sandbox", "stripe").
    fn name(&self) -> &'static str;
    /// Whether bank debits can be taken at all; when not, they are refused before anything is
    /// recorded, with a plain reason.
    fn accepts_bank_debits(&self) -> bool {
        true
    }
    /// Card sale (authorize and capture) or bank debit.
    async fn charge(&self, req: &ChargeRequest) -> Result<ChargeOutcome, ProcessorError>;
    /// Many charges at once (an AutoPay run): each answer is what [`Processor::charge`] would
    /// have answered for its request, and `timeout` bounds each call. Connectors without a
    /// batch API keep the default, [`charge_each`].
    async fn charge_many(
        &self,
        reqs: &[ChargeRequest],
        timeout: std::time::Duration,
    ) -> Vec<Result<ChargeOutcome, ProcessorError>> {
        charge_each(self, reqs, timeout).await
    }
    /// Refund part or all of a captured charge.
    async fn refund(
        &self,
        key: &str,
        charge_reference: &str,
        amount: Money,
    ) -> Result<RefundOutcome, ProcessorError>;
    /// Cancel a charge that has not settled (a full refund on processors without voids).
    async fn void(
        &self,
        key: &str,
        charge_reference: &str,
    ) -> Result<RefundOutcome, ProcessorError>;
    /// Whatever the processor did with this key, if anything.
    async fn lookup(&self, key: &str) -> Result<Lookup, ProcessorError>;
    /// Where an accepted bank debit stands.
    async fn settlement(&self, reference: &str) -> Result<Settlement, ProcessorError>;
    /// Whatever the processor did with the refund under `key` of the charge
    /// `charge_reference`. Connectors that can find a refund by its key alone keep the default.
    async fn lookup_refund(
        &self,
        key: &str,
        charge_reference: &str,
    ) -> Result<Lookup, ProcessorError> {
        let _ = charge_reference;
        self.lookup(key).await
    }
    /// The charges and bank debits created between the two instants (microseconds, the end
    /// excluded), for the settlement report; `None` if this connector cannot list them.
    async fn transactions(
        &self,
        from_micros: i64,
        to_micros: i64,
    ) -> Result<Option<Vec<ProcessorTx>>, ProcessorError> {
        let _ = (from_micros, to_micros);
        Ok(None)
    }
}

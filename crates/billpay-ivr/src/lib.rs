//! billpay-ivr: the phone line's call flow, independent of any telephony provider.
//!
//! Owns the state machine of prompts and keypad (DTMF) input — language, identifying and
//! verifying the account, balance, amount, payment method, card and bank capture, NACHA TEL
//! authorization, confirmation, declines, transfer to a representative — its prompts in English
//! and Spanish, and the TwiML writer ([`twiml`]).
//!
//! Does no I/O. What the flow needs from the rest of billpay (accounts, saved methods, taking a
//! payment) comes through the [`Backend`] trait, which the services implement and tests fake.
//! The call's state ([`Call`]) is plain data for the caller to store between webhooks; digits
//! keyed for a card or bank account live apart in [`Secrets`], which must be sealed before they
//! are stored and is wiped once the payment is made or the call ends.

pub mod twiml;

use std::future::Future;

use billpay_domain::{
    AccountNumber, BankAccountNumber, BankAccountType, CardBrand, CardError, CardExpiry,
    CardNumber, ConfirmationNumber, Cvc, DeclineCode, IdError, Language, MethodKind, Money,
    PostalCode, RoutingNumber,
};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Attempts at one field before the caller is handed to a representative.
pub const FIELD_ATTEMPTS_MAX: u8 = 3;
/// Silent prompts in a row before the caller is offered a representative.
pub const NO_INPUT_MAX: u8 = 2;
/// Saved methods offered on the menu.
pub const SAVED_METHODS_OFFERED_MAX: usize = 3;
/// Seconds a Gather waits for the first key.
pub const GATHER_TIMEOUT_SECS: u8 = 6;
/// Seconds a transfer rings the representatives' number before the caller is told nobody
/// answered.
pub const DIAL_RING_SECS: u8 = 25;
/// Largest amount accepted by phone, in cents ($100,000.00).
pub const PHONE_AMOUNT_MAX_MINOR: i64 = 10_000_000;

/// The caller's language, as stored in the call state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Lang {
    #[default]
    En,
    Es,
}

impl Lang {
    pub fn domain(self) -> Language {
        match self {
            Lang::En => Language::En,
            Lang::Es => Language::Es,
        }
    }
}

/// Where the call is: what the next keypad entry answers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Step {
    #[default]
    Language,
    ConfirmPhoneAccount,
    AccountNumber,
    Zip,
    MainMenu,
    OtherAmount,
    ConfirmAmount,
    MethodMenu,
    CardNumber,
    CardExpiry,
    CardCvc,
    CardZip,
    BankType,
    RoutingNumber,
    BankAccountNumber,
    ConfirmPayment,
    TelAuthorization,
    AfterPayment,
    AfterDecline,
    /// The processor is not answering: schedule the payment for later instead, or a person.
    ProcessorDown,
    /// Month and day of a payment scheduled for later.
    ScheduleDate,
    /// The full balance or another amount, for a scheduled payment.
    ScheduleAmount,
    ConfirmSchedule,
    /// Already enrolled: turn AutoPay off, or back.
    AutopayMenu,
    /// The AutoPay terms, read for the caller's consent.
    ConfirmAutopay,
    Ended,
}

/// What the caller is doing with the method they choose.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// Paying now.
    #[default]
    Pay,
    /// Scheduling a payment for a later date.
    Schedule,
    /// Enrolling in AutoPay.
    Autopay,
}

/// The method chosen for this payment: never more than brand/type and last four.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Chosen {
    Saved {
        token: String,
        kind: String,
        brand: Option<String>,
        bank_type: Option<String>,
        last4: String,
    },
    Card {
        brand: String,
        last4: String,
    },
    Bank {
        bank_type: String,
        last4: String,
    },
}

/// The stored state of one call: no secret is ever in here.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Call {
    pub lang: Lang,
    pub step: Step,
    /// Wrong entries at the current step.
    pub attempts: u8,
    /// Silent prompts in a row at the current step.
    pub no_input: u8,
    /// The caller's number as the provider reported it.
    pub from: String,
    /// The account offered from caller id, not yet accepted.
    pub offered_account: Option<String>,
    /// The account number entered or offered, before the ZIP check.
    pub candidate_account: Option<String>,
    /// The account once its ZIP code was verified.
    pub verified_account: Option<String>,
    pub amount_minor: Option<i64>,
    pub chosen: Option<Chosen>,
    /// Payments attempted on this call; with the call id, the idempotency key of the next one.
    pub payment_seq: u32,
    pub last_confirmation: Option<String>,
    /// The TEL authorization read to the caller, kept until the debit is taken.
    pub tel_text: Option<String>,
    /// Why the call went to a representative (or asked for a callback).
    pub transfer_reason: Option<String>,
    pub callback_requested: bool,
    pub mode: Mode,
    /// The date of the payment being scheduled (ISO 8601).
    pub schedule_date: Option<String>,
    /// The AutoPay terms read to the caller, kept until they consent.
    pub autopay_terms: Option<String>,
    /// A representative's hand-off (its id): the caller keys a card for an amount the
    /// representative set, and whatever happens goes back to a representative.
    pub handoff: Option<String>,
    /// The decline code of the last payment declined on this call.
    pub last_decline: Option<String>,
}

/// Digits keyed during card or bank capture. Sealed by the caller before storing; zeroized on
/// drop; `Debug` shows which fields are present, never their digits.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct Secrets {
    pub card_number: Option<String>,
    pub expiry: Option<String>,
    pub cvc: Option<String>,
    pub zip: Option<String>,
    pub routing: Option<String>,
    pub bank_account: Option<String>,
    pub bank_type: Option<String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = |o: &Option<String>| if o.is_some() { "<set>" } else { "-" };
        f.debug_struct("Secrets")
            .field("card_number", &p(&self.card_number))
            .field("expiry", &p(&self.expiry))
            .field("cvc", &p(&self.cvc))
            .field("zip", &p(&self.zip))
            .field("routing", &p(&self.routing))
            .field("bank_account", &p(&self.bank_account))
            .finish()
    }
}

impl Secrets {
    pub fn is_empty(&self) -> bool {
        self == &Secrets::default()
    }

    pub fn wipe(&mut self) {
        self.zeroize();
        *self = Secrets::default();
    }
}

/// What the caller did since the last prompt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// A new call from this number.
    Start { from: String },
    /// Keys pressed (without the finishing #).
    Digits(String),
    /// The prompt timed out with nothing pressed.
    NoInput,
}

/// How the next entry is collected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GatherSpec {
    pub num_digits: Option<u8>,
    /// `#` ends the entry (for entries of varying length).
    pub finish_on_pound: bool,
    pub timeout_secs: u8,
}

impl GatherSpec {
    fn keys(n: u8) -> GatherSpec {
        GatherSpec {
            num_digits: Some(n),
            finish_on_pound: false,
            timeout_secs: GATHER_TIMEOUT_SECS,
        }
    }

    fn pound() -> GatherSpec {
        GatherSpec {
            num_digits: None,
            finish_on_pound: true,
            timeout_secs: GATHER_TIMEOUT_SECS,
        }
    }
}

/// What happens after the prompts are spoken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    Gather(GatherSpec),
    /// Hand the caller to a representative (the queue), with the verified account if any.
    Transfer {
        account: Option<String>,
    },
    Hangup,
}

/// The engine's answer to one input: what to say, then what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub lang: Language,
    pub says: Vec<String>,
    pub next: Next,
}

/// Where a transfer to a representative goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransferTo {
    /// The provider's queue (`<Enqueue>`), with the hold message at `wait_url` (position and
    /// estimated wait, in the caller's language).
    Queue { name: String, wait_url: String },
    /// A representatives' number (`<Dial>`): `whisper_url` tells the representative who is
    /// calling, and about which verified account, before the two are connected; the provider
    /// reports to `status_url` how the dial ended (nobody answering is not a silent hang-up).
    Dial {
        number: String,
        whisper_url: String,
        status_url: String,
    },
}

impl Reply {
    /// The reply as TwiML. `action` is where a Gather posts its digits (and where a silent
    /// Gather is redirected, as no input).
    pub fn to_twiml(&self, action: &str, transfer: &TransferTo) -> String {
        use twiml::{Response, Verb};
        let says: Vec<Verb> = self
            .says
            .iter()
            .map(|s| Verb::say(self.lang, s.clone()))
            .collect();
        let mut r = Response::new();
        match &self.next {
            Next::Gather(g) => {
                r = r
                    .push(Verb::Gather {
                        action: action.to_string(),
                        num_digits: g.num_digits,
                        finish_on_key: g.finish_on_pound.then_some('#'),
                        timeout_secs: g.timeout_secs,
                        says,
                    })
                    .push(Verb::Redirect {
                        url: action.to_string(),
                    });
            }
            Next::Transfer { .. } => {
                r.verbs.extend(says);
                r = r.push(match transfer {
                    TransferTo::Queue { name, wait_url } => Verb::Enqueue {
                        queue: name.clone(),
                        wait_url: Some(wait_url.clone()),
                    },
                    TransferTo::Dial {
                        number,
                        whisper_url,
                        status_url,
                    } => Verb::Dial {
                        number: number.clone(),
                        whisper_url: Some(whisper_url.clone()),
                        action: Some((status_url.clone(), DIAL_RING_SECS)),
                    },
                });
            }
            Next::Hangup => {
                r.verbs.extend(says);
                r = r.push(Verb::Hangup);
            }
        }
        r.to_xml()
    }
}

/// An account as the phone line sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountInfo {
    pub number: AccountNumber,
    /// First five digits of the service ZIP code.
    pub zip5: String,
    pub balance: Money,
    pub due_date: Option<jiff::civil::Date>,
    /// Today in the account's time zone (due dates and scheduled dates are its dates).
    pub today: jiff::civil::Date,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedMethodInfo {
    pub token: String,
    pub kind: MethodKind,
    pub brand: Option<CardBrand>,
    pub bank_type: Option<BankAccountType>,
    pub last4: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastPayment {
    pub amount: Money,
    pub date: jiff::civil::Date,
    pub confirmation: ConfirmationNumber,
    pub kind: MethodKind,
    pub brand: Option<CardBrand>,
    pub last4: String,
}

/// How a payment is made, with the secrets for this one charge.
#[derive(Clone, Debug)]
pub enum PayMethod {
    Saved {
        token: String,
    },
    Card {
        number: CardNumber,
        expiry: CardExpiry,
        cvc: Cvc,
        zip: PostalCode,
    },
    Bank {
        routing: RoutingNumber,
        account: BankAccountNumber,
        account_type: BankAccountType,
    },
}

#[derive(Clone, Debug)]
pub struct PayRequest {
    pub account: AccountNumber,
    pub amount: Money,
    pub method: PayMethod,
    /// With the call id, the idempotency key: the same step redelivered pays once.
    pub seq: u32,
    /// For bank debits, the NACHA TEL authorization the caller consented to (to be stored with
    /// the payment).
    pub tel_authorization: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PayOutcome {
    /// A card approved, or a bank debit accepted.
    Paid {
        confirmation: ConfirmationNumber,
    },
    Declined(DeclineCode),
    /// The processor's answer was lost; it will be resolved without charging again.
    InDoubt,
    /// Refused before reaching the processor (a duplicate, a bad request).
    Refused,
    /// Nothing was sent: the processor is not answering (its circuit breaker is open).
    Unavailable,
}

/// A payment to make on a later date with a saved method.
#[derive(Clone, Debug)]
pub struct ScheduleRequest {
    pub account: AccountNumber,
    pub amount: Money,
    pub token: String,
    pub date: jiff::civil::Date,
    /// With the call id, the key that makes a redelivered step schedule once.
    pub seq: u32,
    /// For a bank account, the NACHA TEL authorization the caller consented to.
    pub tel_authorization: Option<String>,
}

/// Anything the backend could not do; the caller hears a plain apology and is transferred.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendError(pub String);

/// What the call flow needs from billpay.
pub trait Backend {
    fn account(
        &self,
        number: &AccountNumber,
    ) -> impl Future<Output = Result<Option<AccountInfo>, BackendError>> + Send;
    fn account_by_phone(
        &self,
        phone: &str,
    ) -> impl Future<Output = Result<Option<AccountInfo>, BackendError>> + Send;
    fn saved_methods(
        &self,
        account: &AccountNumber,
    ) -> impl Future<Output = Result<Vec<SavedMethodInfo>, BackendError>> + Send;
    fn last_payment(
        &self,
        account: &AccountNumber,
    ) -> impl Future<Output = Result<Option<LastPayment>, BackendError>> + Send;
    fn pay(&self, req: PayRequest)
    -> impl Future<Output = Result<PayOutcome, BackendError>> + Send;
    fn schedule(
        &self,
        req: ScheduleRequest,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;
    /// The saved method paying the account's AutoPay, when it is enrolled.
    fn autopay(
        &self,
        account: &AccountNumber,
    ) -> impl Future<Output = Result<Option<SavedMethodInfo>, BackendError>> + Send;
    /// Enrolls the account in AutoPay (on each due date) with a saved method; `terms` is what
    /// the caller heard and agreed to, stored with the enrollment.
    fn enroll_autopay(
        &self,
        account: &AccountNumber,
        token: &str,
        terms: String,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;
    fn cancel_autopay(
        &self,
        account: &AccountNumber,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;
    /// Days before each AutoPay charge the customer is notified.
    fn autopay_notice_days(&self) -> u8;
    /// Today in the biller's time zone.
    fn today(&self) -> jiff::civil::Date;
    fn biller_name(&self) -> String;
    fn support_phone(&self) -> String;
    /// Counts a failed account verification (an account number not found or a ZIP that does
    /// not match) from the caller's number; true when that number is over its limit, and no
    /// more entries are taken from it for a while.
    fn verification_failed(
        &self,
        from: &str,
    ) -> impl Future<Output = Result<bool, BackendError>> + Send;
    /// Whether representatives are answering now.
    fn agents_open(&self) -> bool;
    /// When representatives answer, as spoken ("8 AM to 8 PM Eastern time").
    fn agent_hours(&self, lang: Language) -> String;
}

fn t(lang: Lang, en: &str, es: &str) -> String {
    match lang {
        Lang::En => en.to_string(),
        Lang::Es => es.to_string(),
    }
}

/// "December 5, 2026" / "5 de diciembre de 2026".
pub fn spoken_date(date: jiff::civil::Date, lang: Language) -> String {
    const EN: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    const ES: [&str; 12] = [
        "enero",
        "febrero",
        "marzo",
        "abril",
        "mayo",
        "junio",
        "julio",
        "agosto",
        "septiembre",
        "octubre",
        "noviembre",
        "diciembre",
    ];
    let i = usize::try_from(date.month() - 1).unwrap_or(0).min(11);
    match lang {
        Language::En => format!("{} {}, {}", EN[i], date.day(), date.year()),
        Language::Es => format!("{} de {} de {}", date.day(), ES[i], date.year()),
    }
}

/// Digits one at a time: "5, 7, 1".
pub fn spoken_digits(digits: &str) -> String {
    digits
        .chars()
        .filter(char::is_ascii_digit)
        .map(String::from)
        .collect::<Vec<_>>()
        .join(", ")
}

fn bank_type_word(bank_type: &str, lang: Lang) -> String {
    match (bank_type, lang) {
        ("savings", Lang::En) => "savings account".into(),
        ("savings", Lang::Es) => "cuenta de ahorros".into(),
        (_, Lang::En) => "checking account".into(),
        (_, Lang::Es) => "cuenta de cheques".into(),
    }
}

fn describe_method(
    kind: &str,
    brand: Option<&str>,
    bank_type: Option<&str>,
    last4: &str,
    lang: Lang,
) -> String {
    if last4.is_empty() {
        return t(lang, "saved payment method", "método de pago guardado");
    }
    if kind == "ach" {
        let word = bank_type_word(bank_type.unwrap_or("checking"), lang);
        return match lang {
            Lang::En => format!("{word} ending in {}", spoken_digits(last4)),
            Lang::Es => format!("{word} que termina en {}", spoken_digits(last4)),
        };
    }
    let brand = brand
        .and_then(CardBrand::parse)
        .map(|b| b.display_name())
        .unwrap_or(match lang {
            Lang::En => "card",
            Lang::Es => "tarjeta",
        });
    match lang {
        Lang::En => format!("{brand} ending in {}", spoken_digits(last4)),
        Lang::Es => format!("{brand} que termina en {}", spoken_digits(last4)),
    }
}

impl Chosen {
    pub fn describe(&self, lang: Lang) -> String {
        match self {
            Chosen::Saved {
                kind,
                brand,
                bank_type,
                last4,
                ..
            } => describe_method(kind, brand.as_deref(), bank_type.as_deref(), last4, lang),
            Chosen::Card { brand, last4 } => {
                describe_method("card", Some(brand), None, last4, lang)
            }
            Chosen::Bank { bank_type, last4 } => {
                describe_method("ach", None, Some(bank_type), last4, lang)
            }
        }
    }

    fn is_bank(&self) -> bool {
        match self {
            Chosen::Saved { kind, .. } => kind == "ach",
            Chosen::Card { .. } => false,
            Chosen::Bank { .. } => true,
        }
    }
}

/// Advances the call by one input and says what to do next.
pub async fn step<B: Backend + Sync>(
    b: &B,
    call: &mut Call,
    secrets: &mut Secrets,
    input: Input,
) -> Reply {
    let reply = match advance(b, call, secrets, input).await {
        Ok(r) => r,
        Err(BackendError(_)) => {
            secrets.wipe();
            transfer(
                call,
                vec![t(
                    call.lang,
                    "I'm sorry, something went wrong on our side.",
                    "Lo siento, tuvimos un problema de nuestro lado.",
                )],
                "system_error",
                b,
            )
        }
    };
    if matches!(reply.next, Next::Transfer { .. } | Next::Hangup) {
        call.step = Step::Ended;
        secrets.wipe();
    }
    reply
}

/// A representative sent the caller here to key a card for `amount_minor` on `account` (both
/// checked by the representative's desk): the flow starts at the card number, in the caller's
/// language, and every way out of it goes back to a representative.
pub async fn begin_handoff<B: Backend + Sync>(
    b: &B,
    call: &mut Call,
    secrets: &mut Secrets,
    handoff: String,
    account: &AccountNumber,
    amount_minor: i64,
) -> Reply {
    secrets.wipe();
    call.handoff = Some(handoff);
    call.verified_account = Some(account.as_str().to_string());
    call.amount_minor = Some(amount_minor);
    call.mode = Mode::Pay;
    call.chosen = None;
    call.tel_text = None;
    call.transfer_reason = None;
    call.last_decline = None;
    goto(call, Step::CardNumber);
    let l = call.lang;
    let amount = Money::usd(amount_minor).spoken(l.domain());
    let intro = match l {
        Lang::En => format!(
            "Your representative has set up a card payment of {amount}. Your card number is keyed on your phone, and the representative will not hear it."
        ),
        Lang::Es => format!(
            "Su representante preparó un pago con tarjeta de {amount}. Marque el número de su tarjeta en el teclado; el representante no lo escuchará."
        ),
    };
    match prompt(b, call, secrets).await {
        Ok(mut r) => {
            r.says.insert(0, intro);
            r
        }
        Err(_) => {
            let r = transfer(call, Vec::new(), "system_error", b);
            call.step = Step::Ended;
            r
        }
    }
}

/// A hand-off code that is unknown, expired or already used: the caller goes back to a
/// representative, who can make another.
pub fn handoff_refused<B: Backend>(b: &B, call: &mut Call, secrets: &mut Secrets) -> Reply {
    secrets.wipe();
    call.handoff = None;
    let said = t(
        call.lang,
        "This transfer code is not valid or has expired.",
        "Este código de transferencia no es válido o ha vencido.",
    );
    let r = handoff_back(call, vec![said], "handoff_invalid", b);
    call.step = Step::Ended;
    r
}

/// The end of a hand-off: what happened is said, and the caller goes back to a representative.
fn handoff_back<B: Backend>(call: &mut Call, mut says: Vec<String>, reason: &str, b: &B) -> Reply {
    says.push(t(
        call.lang,
        "I am returning you to your representative.",
        "Le regreso con su representante.",
    ));
    transfer(call, says, reason, b)
}

type Res = Result<Reply, BackendError>;

fn gather(call: &Call, says: Vec<String>, spec: GatherSpec) -> Reply {
    Reply {
        lang: call.lang.domain(),
        says,
        next: Next::Gather(spec),
    }
}

fn transfer<B: Backend>(call: &mut Call, mut says: Vec<String>, reason: &str, b: &B) -> Reply {
    call.transfer_reason = Some(reason.to_string());
    let lang = call.lang;
    if b.agents_open() {
        says.push(t(
            lang,
            "Please hold while I transfer you to a representative.",
            "Por favor espere mientras le transfiero con un representante.",
        ));
        Reply {
            lang: lang.domain(),
            says,
            next: Next::Transfer {
                account: call.verified_account.clone(),
            },
        }
    } else {
        call.callback_requested = true;
        let hours = b.agent_hours(lang.domain());
        says.push(match lang {
            Lang::En => format!(
                "Our representatives are available {hours}. We have noted that you would like a call back at the number you are calling from. Thank you for calling. Goodbye."
            ),
            Lang::Es => format!(
                "Nuestros representantes están disponibles {hours}. Hemos anotado que desea que le llamemos al número desde el que llama. Gracias por llamar. Adiós."
            ),
        });
        Reply {
            lang: lang.domain(),
            says,
            next: Next::Hangup,
        }
    }
}

fn goto(call: &mut Call, step: Step) {
    call.step = step;
    call.attempts = 0;
    call.no_input = 0;
}

/// A failed account verification: counted against the caller's number; over the limit the
/// caller is handed to a representative, whatever try of this call it was.
async fn verification_failed<B: Backend + Sync>(
    b: &B,
    call: &mut Call,
    secrets: &mut Secrets,
    why: String,
) -> Res {
    if b.verification_failed(&call.from).await? {
        secrets.wipe();
        let l = call.lang;
        let says = vec![
            why,
            t(
                l,
                "For your security, we cannot take more account entries from this phone number right now.",
                "Por su seguridad, no podemos aceptar más intentos desde este número de teléfono por ahora.",
            ),
        ];
        return Ok(transfer(call, says, "verification_limit", b));
    }
    invalid(b, call, secrets, why).await
}

/// A wrong entry: say what was wrong and ask again, or transfer after the last attempt.
async fn invalid<B: Backend + Sync>(
    b: &B,
    call: &mut Call,
    secrets: &mut Secrets,
    why: String,
) -> Res {
    call.attempts = call.attempts.saturating_add(1);
    if call.attempts >= FIELD_ATTEMPTS_MAX {
        secrets.wipe();
        return Ok(transfer(call, vec![why], "too_many_attempts", b));
    }
    let mut r = prompt(b, call, secrets).await?;
    r.says.insert(0, why);
    Ok(r)
}

/// The prompt of the current step.
async fn prompt<B: Backend + Sync>(b: &B, call: &mut Call, _secrets: &mut Secrets) -> Res {
    let l = call.lang;
    let pound = GatherSpec::pound();
    Ok(match call.step {
        Step::Language => {
            let name = b.biller_name();
            gather(
                call,
                vec![format!(
                    "Thank you for calling {name}. For English, press 1. Para español, oprima 2."
                )],
                GatherSpec::keys(1),
            )
        }
        Step::ConfirmPhoneAccount => {
            let last4 = call
                .offered_account
                .as_deref()
                .map(|n| n.get(n.len().saturating_sub(4)..).unwrap_or(n).to_string())
                .unwrap_or_default();
            let d = spoken_digits(&last4);
            gather(
                call,
                vec![match l {
                    Lang::En => format!(
                        "Are you calling about the account ending in {d}? Press 1 for yes, 2 for no."
                    ),
                    Lang::Es => format!(
                        "¿Llama por la cuenta que termina en {d}? Oprima 1 para sí, 2 para no."
                    ),
                }],
                GatherSpec::keys(1),
            )
        }
        Step::AccountNumber => gather(
            call,
            vec![t(
                l,
                "Please enter your account number, followed by the pound key.",
                "Por favor marque su número de cuenta, seguido de la tecla de número.",
            )],
            pound,
        ),
        Step::Zip => gather(
            call,
            vec![t(
                l,
                "To verify the account, enter the 5-digit ZIP code of the service address.",
                "Para verificar la cuenta, marque el código postal de 5 dígitos de la dirección de servicio.",
            )],
            GatherSpec::keys(5),
        ),
        Step::MainMenu => {
            let number = verified(call)?;
            let acct = b
                .account(&number)
                .await?
                .ok_or_else(|| BackendError("verified account vanished".into()))?;
            let lang = l.domain();
            let mut says = Vec::new();
            if acct.balance.is_positive() {
                let due = acct
                    .due_date
                    .map(|d| spoken_date(d, lang))
                    .unwrap_or_default();
                says.push(match (l, acct.due_date.is_some()) {
                    (Lang::En, true) => format!(
                        "Your balance is {}, due on {due}.",
                        acct.balance.spoken(lang)
                    ),
                    (Lang::Es, true) => format!(
                        "Su saldo es de {}, con vencimiento el {due}.",
                        acct.balance.spoken(lang)
                    ),
                    (Lang::En, false) => format!("Your balance is {}.", acct.balance.spoken(lang)),
                    (Lang::Es, false) => format!("Su saldo es de {}.", acct.balance.spoken(lang)),
                });
                says.push(t(
                    l,
                    "To pay the full balance, press 1. To pay another amount, press 2. To hear your last payment, press 3.",
                    "Para pagar el saldo total, oprima 1. Para pagar otra cantidad, oprima 2. Para escuchar su último pago, oprima 3.",
                ));
                if can_schedule(&acct) {
                    says.push(t(
                        l,
                        "To schedule a payment for a later date, press 4.",
                        "Para programar un pago para una fecha posterior, oprima 4.",
                    ));
                }
                says.push(t(
                    l,
                    "For AutoPay, press 5. To hear this again, press 9. For a representative, press 0.",
                    "Para el pago automático, oprima 5. Para repetir, oprima 9. Para hablar con un representante, oprima 0.",
                ));
            } else {
                says.push(t(
                    l,
                    "You have no balance due.",
                    "No tiene saldo pendiente.",
                ));
                says.push(t(
                    l,
                    "To make a payment, press 2. To hear your last payment, press 3. For AutoPay, press 5. To hear this again, press 9. For a representative, press 0.",
                    "Para hacer un pago, oprima 2. Para escuchar su último pago, oprima 3. Para el pago automático, oprima 5. Para repetir, oprima 9. Para hablar con un representante, oprima 0.",
                ));
            }
            gather(call, says, GatherSpec::keys(1))
        }
        Step::OtherAmount => gather(
            call,
            vec![t(
                l,
                "Enter the amount in dollars and cents, without a decimal point, followed by the pound key. For example, for 25 dollars, enter 2, 5, 0, 0, pound.",
                "Marque la cantidad en dólares y centavos, sin punto decimal, seguida de la tecla de número. Por ejemplo, para 25 dólares, marque 2, 5, 0, 0, número.",
            )],
            pound,
        ),
        Step::ConfirmAmount => {
            let amount = Money::usd(call.amount_minor.unwrap_or(0)).spoken(l.domain());
            gather(
                call,
                vec![match l {
                    Lang::En => format!(
                        "You entered {amount}. If that is correct, press 1. To enter it again, press 2."
                    ),
                    Lang::Es => format!(
                        "Usted marcó {amount}. Si es correcto, oprima 1. Para marcarla de nuevo, oprima 2."
                    ),
                }],
                GatherSpec::keys(1),
            )
        }
        Step::MethodMenu => {
            let number = verified(call)?;
            let saved = offerable(call.mode, b.saved_methods(&number).await?);
            let mut says = Vec::new();
            let mut key = 1;
            for m in saved.iter().take(SAVED_METHODS_OFFERED_MAX) {
                let d = describe_saved(m, l);
                says.push(match (l, call.mode) {
                    (Lang::En, Mode::Autopay) => {
                        format!("To use your {d} for AutoPay, press {key}.")
                    }
                    (Lang::Es, Mode::Autopay) => {
                        format!("Para usar su {d} para el pago automático, oprima {key}.")
                    }
                    (Lang::En, _) => format!("To pay with your {d}, press {key}."),
                    (Lang::Es, _) => format!("Para pagar con su {d}, oprima {key}."),
                });
                key += 1;
            }
            if call.mode != Mode::Pay {
                says.push(t(
                    l,
                    "For a representative, press 0.",
                    "Para hablar con un representante, oprima 0.",
                ));
                return Ok(gather(call, says, GatherSpec::keys(1)));
            }
            says.push(match l {
                Lang::En => format!(
                    "To pay with a new card, press {key}. To pay from a checking or savings account, press {}. For a representative, press 0.",
                    key + 1
                ),
                Lang::Es => format!(
                    "Para pagar con una tarjeta nueva, oprima {key}. Para pagar desde una cuenta de cheques o de ahorros, oprima {}. Para hablar con un representante, oprima 0.",
                    key + 1
                ),
            });
            gather(call, says, GatherSpec::keys(1))
        }
        Step::CardNumber => gather(
            call,
            vec![t(
                l,
                "Enter the card number, followed by the pound key.",
                "Marque el número de la tarjeta, seguido de la tecla de número.",
            )],
            pound,
        ),
        Step::CardExpiry => gather(
            call,
            vec![t(
                l,
                "Enter the expiration date as four digits: two for the month and two for the year.",
                "Marque la fecha de vencimiento con cuatro dígitos: dos para el mes y dos para el año.",
            )],
            GatherSpec::keys(4),
        ),
        Step::CardCvc => {
            let n = match &call.chosen {
                Some(Chosen::Card { brand, .. }) => {
                    CardBrand::parse(brand).map(|b| b.cvc_len()).unwrap_or(3)
                }
                _ => 3,
            };
            gather(
                call,
                vec![match l {
                    Lang::En => format!("Enter the {n}-digit security code."),
                    Lang::Es => format!("Marque el código de seguridad de {n} dígitos."),
                }],
                GatherSpec::keys(u8::try_from(n).unwrap_or(3)),
            )
        }
        Step::CardZip => gather(
            call,
            vec![t(
                l,
                "Enter the 5-digit ZIP code of the card's billing address.",
                "Marque el código postal de 5 dígitos de la dirección de facturación de la tarjeta.",
            )],
            GatherSpec::keys(5),
        ),
        Step::BankType => gather(
            call,
            vec![t(
                l,
                "For a checking account, press 1. For a savings account, press 2.",
                "Para una cuenta de cheques, oprima 1. Para una cuenta de ahorros, oprima 2.",
            )],
            GatherSpec::keys(1),
        ),
        Step::RoutingNumber => gather(
            call,
            vec![t(
                l,
                "Enter the 9-digit routing number, found at the bottom left of a check.",
                "Marque el número de ruta de 9 dígitos, que aparece abajo a la izquierda de un cheque.",
            )],
            GatherSpec::keys(9),
        ),
        Step::BankAccountNumber => gather(
            call,
            vec![t(
                l,
                "Enter the bank account number, followed by the pound key.",
                "Marque el número de la cuenta bancaria, seguido de la tecla de número.",
            )],
            pound,
        ),
        Step::ConfirmPayment => {
            let amount = Money::usd(call.amount_minor.unwrap_or(0)).spoken(l.domain());
            let method = call
                .chosen
                .as_ref()
                .map(|c| c.describe(l))
                .unwrap_or_default();
            gather(
                call,
                vec![match l {
                    Lang::En => format!(
                        "You are paying {amount} with your {method}. To make this payment, press 1. To cancel, press 2."
                    ),
                    Lang::Es => format!(
                        "Va a pagar {amount} con su {method}. Para hacer este pago, oprima 1. Para cancelar, oprima 2."
                    ),
                }],
                GatherSpec::keys(1),
            )
        }
        Step::TelAuthorization => {
            let text = tel_text(b, call);
            call.tel_text = Some(text.clone());
            gather(
                call,
                vec![
                    text,
                    t(
                        l,
                        "To authorize this debit, press 1. To cancel, press 2.",
                        "Para autorizar este débito, oprima 1. Para cancelar, oprima 2.",
                    ),
                ],
                GatherSpec::keys(1),
            )
        }
        Step::AfterPayment => {
            let conf = spoken_digits(call.last_confirmation.as_deref().unwrap_or(""));
            gather(
                call,
                vec![match l {
                    Lang::En => format!(
                        "Your confirmation number is {conf}. To hear it again, press 1. To return to the main menu, press 2. Or simply hang up."
                    ),
                    Lang::Es => format!(
                        "Su número de confirmación es {conf}. Para escucharlo de nuevo, oprima 1. Para volver al menú principal, oprima 2. O simplemente cuelgue."
                    ),
                }],
                GatherSpec::keys(1),
            )
        }
        Step::AfterDecline => gather(
            call,
            vec![t(
                l,
                "To pay with another method, press 1. For a representative, press 0.",
                "Para pagar con otro método, oprima 1. Para hablar con un representante, oprima 0.",
            )],
            GatherSpec::keys(1),
        ),
        Step::ProcessorDown => gather(
            call,
            vec![t(
                l,
                "To schedule this payment for a later date with a saved payment method, press 1. For a representative, press 0.",
                "Para programar este pago para una fecha posterior con un método de pago guardado, oprima 1. Para hablar con un representante, oprima 0.",
            )],
            GatherSpec::keys(1),
        ),
        Step::ScheduleDate => {
            let (due, _) = scheduling_window(b, call).await?;
            let due = spoken_date(due, l.domain());
            gather(
                call,
                vec![match l {
                    Lang::En => format!(
                        "Enter the date of the payment as four digits: two for the month and two for the day. For example, for March 5, enter 0, 3, 0, 5. The latest date is your due date, {due}."
                    ),
                    Lang::Es => format!(
                        "Marque la fecha del pago con cuatro dígitos: dos para el mes y dos para el día. Por ejemplo, para el 5 de marzo, marque 0, 3, 0, 5. La fecha más tardía es su fecha de vencimiento, el {due}."
                    ),
                }],
                GatherSpec::keys(4),
            )
        }
        Step::ScheduleAmount => {
            let number = verified(call)?;
            let acct = b
                .account(&number)
                .await?
                .ok_or_else(|| BackendError("verified account vanished".into()))?;
            let balance = acct.balance.spoken(l.domain());
            gather(
                call,
                vec![match l {
                    Lang::En => format!(
                        "To schedule the full balance of {balance}, press 1. To schedule another amount, press 2."
                    ),
                    Lang::Es => format!(
                        "Para programar el saldo total de {balance}, oprima 1. Para programar otra cantidad, oprima 2."
                    ),
                }],
                GatherSpec::keys(1),
            )
        }
        Step::ConfirmSchedule => {
            let lang = l.domain();
            let amount = Money::usd(call.amount_minor.unwrap_or(0)).spoken(lang);
            let date = schedule_date(call)
                .map(|d| spoken_date(d, lang))
                .unwrap_or_default();
            let chosen = call.chosen.clone();
            let says = match &chosen {
                Some(c) if c.is_bank() => {
                    let text = tel_text(b, call);
                    call.tel_text = Some(text.clone());
                    vec![
                        text,
                        t(
                            l,
                            "To authorize this debit, press 1. To cancel, press 2.",
                            "Para autorizar este débito, oprima 1. Para cancelar, oprima 2.",
                        ),
                    ]
                }
                _ => {
                    let method = chosen.map(|c| c.describe(l)).unwrap_or_default();
                    vec![match l {
                        Lang::En => format!(
                            "You are scheduling a payment of {amount} with your {method}, to be made on {date}. To schedule it, press 1. To cancel, press 2."
                        ),
                        Lang::Es => format!(
                            "Va a programar un pago de {amount} con su {method}, que se hará el {date}. Para programarlo, oprima 1. Para cancelar, oprima 2."
                        ),
                    }]
                }
            };
            gather(call, says, GatherSpec::keys(1))
        }
        Step::AutopayMenu => {
            let number = verified(call)?;
            let method = b
                .autopay(&number)
                .await?
                .map(|m| describe_saved(&m, l))
                .unwrap_or_default();
            gather(
                call,
                vec![match l {
                    Lang::En => format!(
                        "You are enrolled in AutoPay with your {method}: each bill is paid on its due date. To turn AutoPay off, press 1. To return to the main menu, press 2."
                    ),
                    Lang::Es => format!(
                        "Está inscrito en el pago automático con su {method}: cada factura se paga en su fecha de vencimiento. Para desactivar el pago automático, oprima 1. Para volver al menú principal, oprima 2."
                    ),
                }],
                GatherSpec::keys(1),
            )
        }
        Step::ConfirmAutopay => {
            let text = autopay_text(b, call);
            call.autopay_terms = Some(text.clone());
            gather(
                call,
                vec![
                    text,
                    t(
                        l,
                        "To enroll in AutoPay, press 1. To cancel, press 2.",
                        "Para inscribirse en el pago automático, oprima 1. Para cancelar, oprima 2.",
                    ),
                ],
                GatherSpec::keys(1),
            )
        }
        Step::Ended => Reply {
            lang: l.domain(),
            says: vec![t(l, "Goodbye.", "Adiós.")],
            next: Next::Hangup,
        },
    })
}

fn describe_saved(m: &SavedMethodInfo, l: Lang) -> String {
    describe_method(
        m.kind.as_str(),
        m.brand.map(|b| b.as_str()),
        m.bank_type.map(|b| b.as_str()),
        &m.last4,
        l,
    )
}

/// A payment can be scheduled for a later date when a balance is due after today.
fn can_schedule(acct: &AccountInfo) -> bool {
    acct.balance.is_positive() && acct.due_date.is_some_and(|d| d > acct.today)
}

/// The latest date a payment can be scheduled for (the due date), and the account's today.
async fn scheduling_window<B: Backend + Sync>(
    b: &B,
    call: &Call,
) -> Result<(jiff::civil::Date, jiff::civil::Date), BackendError> {
    let number = verified(call)?;
    b.account(&number)
        .await?
        .and_then(|a| a.due_date.map(|due| (due, a.today)))
        .ok_or_else(|| BackendError("no due date to schedule before".into()))
}

fn schedule_date(call: &Call) -> Option<jiff::civil::Date> {
    call.schedule_date.as_deref().and_then(|d| d.parse().ok())
}

/// Month and day keyed as MMDD: the next such date after today.
fn keyed_date(d: &str, today: jiff::civil::Date) -> Option<jiff::civil::Date> {
    if d.len() != 4 || !only_digits(d) {
        return None;
    }
    let month: i8 = d.get(..2)?.parse().ok()?;
    let day: i8 = d.get(2..)?.parse().ok()?;
    let this_year = jiff::civil::Date::new(today.year(), month, day);
    match this_year {
        Ok(date) if date > today => Some(date),
        _ => jiff::civil::Date::new(today.year().checked_add(1)?, month, day).ok(),
    }
}

/// The AutoPay terms as read to the caller (and stored with the enrollment). By phone AutoPay
/// takes a card (see [`offerable`]).
fn autopay_text<B: Backend>(b: &B, call: &Call) -> String {
    let l = call.lang;
    let date = spoken_date(b.today(), l.domain());
    let biller = b.biller_name();
    let phone = b.support_phone();
    let days = b.autopay_notice_days();
    let method = call
        .chosen
        .as_ref()
        .map(|c| c.describe(l))
        .unwrap_or_default();
    match l {
        Lang::En => format!(
            "Today, {date}, you authorize {biller} to charge your {method} for the amount of each bill, on each due date, until you cancel AutoPay. We will notify you {days} days before each payment. To cancel, call {phone} at least 3 days before a payment."
        ),
        Lang::Es => format!(
            "Hoy, {date}, usted autoriza a {biller} a cargar a su {method} el monto de cada factura, en cada fecha de vencimiento, hasta que cancele el pago automático. Le avisaremos {days} días antes de cada pago. Para cancelar, llame al {phone} al menos 3 días antes de un pago."
        ),
    }
}

/// The NACHA TEL authorization as read to the caller: date, amount, account, single debit,
/// how to revoke.
fn tel_text<B: Backend>(b: &B, call: &Call) -> String {
    let l = call.lang;
    let lang = l.domain();
    let amount = Money::usd(call.amount_minor.unwrap_or(0)).spoken(lang);
    let date = spoken_date(b.today(), lang);
    let (bank_type, last4) = match &call.chosen {
        Some(Chosen::Bank { bank_type, last4 }) => (bank_type.clone(), last4.clone()),
        Some(Chosen::Saved {
            bank_type, last4, ..
        }) => (
            bank_type.clone().unwrap_or_else(|| "checking".into()),
            last4.clone(),
        ),
        _ => ("checking".into(), String::new()),
    };
    let word = bank_type_word(&bank_type, l);
    let digits = spoken_digits(&last4);
    let biller = b.biller_name();
    let phone = b.support_phone();
    if call.mode == Mode::Schedule
        && let Some(on) = schedule_date(call)
    {
        let on = spoken_date(on, lang);
        return match l {
            Lang::En => format!(
                "Today, {date}, you authorize {biller} to make a single ACH debit of {amount} from your {word} ending in {digits}, on {on}. This is a one-time debit, not a recurring one. To revoke this authorization, call {phone} before {on}."
            ),
            Lang::Es => format!(
                "Hoy, {date}, usted autoriza a {biller} a realizar un único débito ACH de {amount} de su {word} que termina en {digits}, el {on}. Es un débito único, no recurrente. Para revocar esta autorización, llame al {phone} antes del {on}."
            ),
        };
    }
    match l {
        Lang::En => format!(
            "Today, {date}, you authorize {biller} to make a single ACH debit of {amount} from your {word} ending in {digits}. This is a one-time debit, not a recurring one. To revoke this authorization, call {phone} before the debit is processed."
        ),
        Lang::Es => format!(
            "Hoy, {date}, usted autoriza a {biller} a realizar un único débito ACH de {amount} de su {word} que termina en {digits}. Es un débito único, no recurrente. Para revocar esta autorización, llame al {phone} antes de que se procese el débito."
        ),
    }
}

fn verified(call: &Call) -> Result<AccountNumber, BackendError> {
    call.verified_account
        .as_deref()
        .and_then(|n| AccountNumber::parse(n).ok())
        .ok_or_else(|| BackendError("no verified account".into()))
}

fn only_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

async fn advance<B: Backend + Sync>(
    b: &B,
    call: &mut Call,
    secrets: &mut Secrets,
    input: Input,
) -> Res {
    let l = call.lang;
    let digits = match input {
        Input::Start { from } => {
            *call = Call {
                from,
                ..Call::default()
            };
            return prompt(b, call, secrets).await;
        }
        Input::NoInput => {
            call.no_input = call.no_input.saturating_add(1);
            if call.no_input >= NO_INPUT_MAX {
                return Ok(transfer(
                    call,
                    vec![t(
                        l,
                        "We did not receive your entry.",
                        "No recibimos su respuesta.",
                    )],
                    "no_input",
                    b,
                ));
            }
            let mut r = prompt(b, call, secrets).await?;
            r.says.insert(
                0,
                t(
                    l,
                    "Sorry, I didn't get that.",
                    "Disculpe, no recibí su respuesta.",
                ),
            );
            return Ok(r);
        }
        Input::Digits(d) => d,
    };
    call.no_input = 0;
    let d = digits.trim_end_matches('#').to_string();
    // 0 reaches a representative from any prompt: a lone 0 is never a valid entry.
    if d == "0" {
        secrets.wipe();
        return Ok(transfer(call, Vec::new(), "caller_asked", b));
    }
    let wrong_choice = || {
        t(
            l,
            "That is not one of the choices.",
            "Esa no es una de las opciones.",
        )
    };
    match call.step {
        Step::Language => {
            call.lang = match d.as_str() {
                "1" => Lang::En,
                "2" => Lang::Es,
                _ => return invalid(b, call, secrets, wrong_choice()).await,
            };
            let found = if call.from.is_empty() {
                None
            } else {
                b.account_by_phone(&call.from).await?
            };
            match found {
                Some(a) => {
                    call.offered_account = Some(a.number.as_str().to_string());
                    goto(call, Step::ConfirmPhoneAccount);
                }
                None => goto(call, Step::AccountNumber),
            }
            prompt(b, call, secrets).await
        }
        Step::ConfirmPhoneAccount => match d.as_str() {
            "1" => {
                call.candidate_account = call.offered_account.clone();
                goto(call, Step::Zip);
                prompt(b, call, secrets).await
            }
            "2" => {
                goto(call, Step::AccountNumber);
                prompt(b, call, secrets).await
            }
            _ => invalid(b, call, secrets, wrong_choice()).await,
        },
        Step::AccountNumber => match AccountNumber::parse(&d) {
            Err(IdError::CheckDigit) => {
                let why = t(
                    l,
                    "That account number does not look right; a digit may have been mistyped.",
                    "Ese número de cuenta no parece correcto; es posible que un dígito esté equivocado.",
                );
                invalid(b, call, secrets, why).await
            }
            Err(_) => {
                let why = t(
                    l,
                    "That is not a valid account number.",
                    "Ese no es un número de cuenta válido.",
                );
                invalid(b, call, secrets, why).await
            }
            Ok(number) => {
                // Whether the account exists is told only with its ZIP code, in the same words
                // either way: the line cannot be used to find out which numbers are accounts.
                call.candidate_account = Some(number.as_str().to_string());
                let attempts = call.attempts;
                goto(call, Step::Zip);
                call.attempts = attempts;
                prompt(b, call, secrets).await
            }
        },
        Step::Zip => {
            let account = call
                .candidate_account
                .as_deref()
                .and_then(|n| AccountNumber::parse(n).ok());
            let info = match account {
                Some(n) => b.account(&n).await?,
                None => None,
            };
            match info {
                Some(a) if only_digits(&d) && a.zip5 == d => {
                    call.verified_account = Some(a.number.as_str().to_string());
                    goto(call, Step::MainMenu);
                    let mut r = prompt(b, call, secrets).await?;
                    r.says.insert(0, t(l, "Thank you.", "Gracias."));
                    Ok(r)
                }
                _ => {
                    // A number offered from caller ID is known to be the caller's account: only
                    // the ZIP is asked again. A typed number and its ZIP are asked again
                    // together, with the same words whether or not the account exists.
                    let typed = call.offered_account.is_none()
                        || call.offered_account != call.candidate_account;
                    let why = if typed {
                        call.candidate_account = None;
                        call.step = Step::AccountNumber;
                        t(
                            l,
                            "That account number and ZIP code do not match our records.",
                            "Ese número de cuenta y código postal no coinciden con nuestros registros.",
                        )
                    } else {
                        t(
                            l,
                            "That ZIP code does not match our records.",
                            "Ese código postal no coincide con nuestros registros.",
                        )
                    };
                    verification_failed(b, call, secrets, why).await
                }
            }
        }
        Step::MainMenu => {
            let number = verified(call)?;
            match d.as_str() {
                "1" => {
                    let acct = b
                        .account(&number)
                        .await?
                        .ok_or_else(|| BackendError("account vanished".into()))?;
                    if !acct.balance.is_positive() {
                        return invalid(b, call, secrets, wrong_choice()).await;
                    }
                    call.amount_minor = Some(acct.balance.minor_units());
                    start(call, Mode::Pay);
                    goto(call, Step::MethodMenu);
                    prompt(b, call, secrets).await
                }
                "2" => {
                    start(call, Mode::Pay);
                    goto(call, Step::OtherAmount);
                    prompt(b, call, secrets).await
                }
                "4" => {
                    let acct = b
                        .account(&number)
                        .await?
                        .ok_or_else(|| BackendError("account vanished".into()))?;
                    if !can_schedule(&acct) {
                        return invalid(b, call, secrets, wrong_choice()).await;
                    }
                    if b.saved_methods(&number).await?.is_empty() {
                        return back_to_menu(b, call, secrets, needs_saved_method(l)).await;
                    }
                    start(call, Mode::Schedule);
                    goto(call, Step::ScheduleDate);
                    prompt(b, call, secrets).await
                }
                "5" => {
                    start(call, Mode::Autopay);
                    if b.autopay(&number).await?.is_some() {
                        goto(call, Step::AutopayMenu);
                    } else if offerable(Mode::Autopay, b.saved_methods(&number).await?).is_empty() {
                        return back_to_menu(b, call, secrets, needs_saved_card(l)).await;
                    } else {
                        goto(call, Step::MethodMenu);
                    }
                    prompt(b, call, secrets).await
                }
                "3" => {
                    let says = match b.last_payment(&number).await? {
                        Some(p) => {
                            let lang = l.domain();
                            let method = describe_method(
                                p.kind.as_str(),
                                p.brand.map(|b| b.as_str()),
                                None,
                                &p.last4,
                                l,
                            );
                            let conf = spoken_digits(p.confirmation.as_str());
                            match l {
                                Lang::En => format!(
                                    "Your last payment was {} on {}, with your {method}. Its confirmation number is {conf}.",
                                    p.amount.spoken(lang),
                                    spoken_date(p.date, lang)
                                ),
                                Lang::Es => format!(
                                    "Su último pago fue de {} el {}, con su {method}. Su número de confirmación es {conf}.",
                                    p.amount.spoken(lang),
                                    spoken_date(p.date, lang)
                                ),
                            }
                        }
                        None => t(
                            l,
                            "We have no payments on this account yet.",
                            "Todavía no hay pagos en esta cuenta.",
                        ),
                    };
                    goto(call, Step::MainMenu);
                    let mut r = prompt(b, call, secrets).await?;
                    r.says.insert(0, says);
                    Ok(r)
                }
                "9" => prompt(b, call, secrets).await,
                _ => invalid(b, call, secrets, wrong_choice()).await,
            }
        }
        Step::OtherAmount => match Money::from_keyed_digits(&d, billpay_domain::Currency::USD) {
            Ok(m) if m.is_positive() && m.minor_units() <= PHONE_AMOUNT_MAX_MINOR => {
                call.amount_minor = Some(m.minor_units());
                goto(call, Step::ConfirmAmount);
                prompt(b, call, secrets).await
            }
            _ => {
                let why = t(l, "That amount is not valid.", "Esa cantidad no es válida.");
                invalid(b, call, secrets, why).await
            }
        },
        Step::ConfirmAmount => match d.as_str() {
            "1" => {
                goto(call, Step::MethodMenu);
                prompt(b, call, secrets).await
            }
            "2" => {
                call.amount_minor = None;
                goto(call, Step::OtherAmount);
                prompt(b, call, secrets).await
            }
            _ => invalid(b, call, secrets, wrong_choice()).await,
        },
        Step::MethodMenu => {
            let number = verified(call)?;
            let saved = offerable(call.mode, b.saved_methods(&number).await?);
            let offered: Vec<&SavedMethodInfo> =
                saved.iter().take(SAVED_METHODS_OFFERED_MAX).collect();
            let choice: usize = d.parse().unwrap_or(usize::MAX);
            secrets.wipe();
            if (1..=offered.len()).contains(&choice) {
                let m = offered[choice - 1];
                call.chosen = Some(Chosen::Saved {
                    token: m.token.clone(),
                    kind: m.kind.as_str().to_string(),
                    brand: m.brand.map(|b| b.as_str().to_string()),
                    bank_type: m.bank_type.map(|b| b.as_str().to_string()),
                    last4: m.last4.clone(),
                });
                let next = match call.mode {
                    Mode::Schedule => Step::ConfirmSchedule,
                    Mode::Autopay => Step::ConfirmAutopay,
                    Mode::Pay if m.kind == MethodKind::Ach => Step::TelAuthorization,
                    Mode::Pay => Step::ConfirmPayment,
                };
                goto(call, next);
                prompt(b, call, secrets).await
            } else if call.mode != Mode::Pay {
                invalid(b, call, secrets, wrong_choice()).await
            } else if choice == offered.len() + 1 {
                call.chosen = None;
                goto(call, Step::CardNumber);
                prompt(b, call, secrets).await
            } else if choice == offered.len() + 2 {
                call.chosen = None;
                goto(call, Step::BankType);
                prompt(b, call, secrets).await
            } else {
                invalid(b, call, secrets, wrong_choice()).await
            }
        }
        Step::CardNumber => match CardNumber::parse(&d) {
            Ok(n) => {
                call.chosen = Some(Chosen::Card {
                    brand: n.brand().as_str().to_string(),
                    last4: n.last4(),
                });
                secrets.card_number = Some(n.expose_secret().to_string());
                goto(call, Step::CardExpiry);
                prompt(b, call, secrets).await
            }
            Err(CardError::UnsupportedBrand) => {
                let why = t(
                    l,
                    "We do not accept that type of card. We accept Visa, Mastercard, American Express and Discover.",
                    "No aceptamos ese tipo de tarjeta. Aceptamos Visa, Mastercard, American Express y Discover.",
                );
                invalid(b, call, secrets, why).await
            }
            Err(_) => {
                let why = t(
                    l,
                    "That card number is not valid.",
                    "Ese número de tarjeta no es válido.",
                );
                invalid(b, call, secrets, why).await
            }
        },
        Step::CardExpiry => match CardExpiry::parse_mmyy(&d) {
            Ok(e) if e.is_expired(b.today()) => {
                let why = t(l, "That card has expired.", "Esa tarjeta está vencida.");
                invalid(b, call, secrets, why).await
            }
            Ok(_) => {
                secrets.expiry = Some(d.clone());
                goto(call, Step::CardCvc);
                prompt(b, call, secrets).await
            }
            Err(_) => {
                let why = t(
                    l,
                    "That expiration date is not valid.",
                    "Esa fecha de vencimiento no es válida.",
                );
                invalid(b, call, secrets, why).await
            }
        },
        Step::CardCvc => {
            let brand = match &call.chosen {
                Some(Chosen::Card { brand, .. }) => CardBrand::parse(brand),
                _ => None,
            };
            match brand.map(|br| Cvc::parse(&d, br)) {
                Some(Ok(_)) => {
                    secrets.cvc = Some(d.clone());
                    goto(call, Step::CardZip);
                    prompt(b, call, secrets).await
                }
                _ => {
                    let why = t(
                        l,
                        "That security code is not valid.",
                        "Ese código de seguridad no es válido.",
                    );
                    invalid(b, call, secrets, why).await
                }
            }
        }
        Step::CardZip => match PostalCode::parse(&d) {
            Ok(z) if z.is_us() => {
                secrets.zip = Some(z.as_str().to_string());
                goto(call, Step::ConfirmPayment);
                prompt(b, call, secrets).await
            }
            _ => {
                let why = t(
                    l,
                    "That ZIP code is not valid.",
                    "Ese código postal no es válido.",
                );
                invalid(b, call, secrets, why).await
            }
        },
        Step::BankType => {
            let kind = match d.as_str() {
                "1" => BankAccountType::Checking,
                "2" => BankAccountType::Savings,
                _ => return invalid(b, call, secrets, wrong_choice()).await,
            };
            secrets.bank_type = Some(kind.as_str().to_string());
            goto(call, Step::RoutingNumber);
            prompt(b, call, secrets).await
        }
        Step::RoutingNumber => match RoutingNumber::parse(&d) {
            Ok(r) => {
                secrets.routing = Some(r.as_str().to_string());
                goto(call, Step::BankAccountNumber);
                prompt(b, call, secrets).await
            }
            Err(_) => {
                let why = t(
                    l,
                    "That routing number is not valid.",
                    "Ese número de ruta no es válido.",
                );
                invalid(b, call, secrets, why).await
            }
        },
        Step::BankAccountNumber => match BankAccountNumber::parse(&d) {
            Ok(a) => {
                call.chosen = Some(Chosen::Bank {
                    bank_type: secrets
                        .bank_type
                        .clone()
                        .unwrap_or_else(|| "checking".into()),
                    last4: a.last4(),
                });
                secrets.bank_account = Some(a.expose_secret().to_string());
                goto(call, Step::TelAuthorization);
                prompt(b, call, secrets).await
            }
            Err(_) => {
                let why = t(
                    l,
                    "That bank account number is not valid.",
                    "Ese número de cuenta bancaria no es válido.",
                );
                invalid(b, call, secrets, why).await
            }
        },
        Step::ConfirmPayment | Step::TelAuthorization => match d.as_str() {
            "1" => pay(b, call, secrets).await,
            "2" if call.handoff.is_some() => {
                secrets.wipe();
                call.chosen = None;
                let said = t(
                    l,
                    "The payment was canceled. Nothing was charged.",
                    "El pago fue cancelado. No se hizo ningún cargo.",
                );
                Ok(handoff_back(call, vec![said], "handoff_canceled", b))
            }
            "2" => {
                secrets.wipe();
                call.chosen = None;
                call.tel_text = None;
                goto(call, Step::MainMenu);
                let mut r = prompt(b, call, secrets).await?;
                r.says.insert(
                    0,
                    t(
                        l,
                        "The payment was canceled. Nothing was charged.",
                        "El pago fue cancelado. No se hizo ningún cargo.",
                    ),
                );
                Ok(r)
            }
            _ => invalid(b, call, secrets, wrong_choice()).await,
        },
        Step::AfterPayment => match d.as_str() {
            "1" => prompt(b, call, secrets).await,
            "2" => {
                goto(call, Step::MainMenu);
                prompt(b, call, secrets).await
            }
            _ => invalid(b, call, secrets, wrong_choice()).await,
        },
        Step::AfterDecline => match d.as_str() {
            "1" => {
                goto(call, Step::MethodMenu);
                prompt(b, call, secrets).await
            }
            _ => invalid(b, call, secrets, wrong_choice()).await,
        },
        Step::ProcessorDown => match d.as_str() {
            "1" => {
                start(call, Mode::Schedule);
                goto(call, Step::ScheduleDate);
                prompt(b, call, secrets).await
            }
            _ => invalid(b, call, secrets, wrong_choice()).await,
        },
        Step::ScheduleDate => {
            let (due, today) = scheduling_window(b, call).await?;
            match keyed_date(&d, today) {
                Some(date) if date <= due => {
                    call.schedule_date = Some(date.to_string());
                    goto(call, Step::ScheduleAmount);
                    prompt(b, call, secrets).await
                }
                Some(_) => {
                    let due = spoken_date(due, l.domain());
                    let why = match l {
                        Lang::En => format!(
                            "The date must be after today and no later than your due date, {due}."
                        ),
                        Lang::Es => format!(
                            "La fecha debe ser posterior a hoy y no más tarde que su fecha de vencimiento, el {due}."
                        ),
                    };
                    invalid(b, call, secrets, why).await
                }
                None => {
                    let why = t(
                        l,
                        "That is not a valid date.",
                        "Esa no es una fecha válida.",
                    );
                    invalid(b, call, secrets, why).await
                }
            }
        }
        Step::ScheduleAmount => match d.as_str() {
            "1" => {
                let number = verified(call)?;
                let acct = b
                    .account(&number)
                    .await?
                    .ok_or_else(|| BackendError("account vanished".into()))?;
                call.amount_minor = Some(acct.balance.minor_units());
                goto(call, Step::MethodMenu);
                prompt(b, call, secrets).await
            }
            "2" => {
                goto(call, Step::OtherAmount);
                prompt(b, call, secrets).await
            }
            _ => invalid(b, call, secrets, wrong_choice()).await,
        },
        Step::ConfirmSchedule => match d.as_str() {
            "1" => schedule(b, call, secrets).await,
            "2" => {
                let said = t(l, "Nothing was scheduled.", "No se programó ningún pago.");
                back_to_menu(b, call, secrets, said).await
            }
            _ => invalid(b, call, secrets, wrong_choice()).await,
        },
        Step::AutopayMenu => match d.as_str() {
            "1" => {
                let number = verified(call)?;
                b.cancel_autopay(&number).await?;
                let said = t(
                    l,
                    "AutoPay is now off. Your bills will not be paid automatically.",
                    "El pago automático está desactivado. Sus facturas no se pagarán automáticamente.",
                );
                back_to_menu(b, call, secrets, said).await
            }
            "2" => {
                start(call, Mode::Pay);
                goto(call, Step::MainMenu);
                prompt(b, call, secrets).await
            }
            _ => invalid(b, call, secrets, wrong_choice()).await,
        },
        Step::ConfirmAutopay => match d.as_str() {
            "1" => {
                let number = verified(call)?;
                let (Some(Chosen::Saved { token, .. }), Some(terms)) =
                    (call.chosen.clone(), call.autopay_terms.clone())
                else {
                    return Err(BackendError("no AutoPay method chosen".into()));
                };
                b.enroll_autopay(&number, &token, terms).await?;
                let days = b.autopay_notice_days();
                let said = match l {
                    Lang::En => format!(
                        "You are now enrolled in AutoPay. We will notify you {days} days before each payment."
                    ),
                    Lang::Es => format!(
                        "Ya está inscrito en el pago automático. Le avisaremos {days} días antes de cada pago."
                    ),
                };
                back_to_menu(b, call, secrets, said).await
            }
            "2" => {
                let said = t(
                    l,
                    "You were not enrolled in AutoPay.",
                    "No se le inscribió en el pago automático.",
                );
                back_to_menu(b, call, secrets, said).await
            }
            _ => invalid(b, call, secrets, wrong_choice()).await,
        },
        Step::Ended => prompt(b, call, secrets).await,
    }
}

/// Starts what the caller chose on the main menu, forgetting anything half-done.
fn start(call: &mut Call, mode: Mode) {
    call.mode = mode;
    call.schedule_date = None;
    call.autopay_terms = None;
    call.chosen = None;
    call.tel_text = None;
}

/// Says something, then the main menu again.
async fn back_to_menu<B: Backend + Sync>(
    b: &B,
    call: &mut Call,
    secrets: &mut Secrets,
    said: String,
) -> Res {
    start(call, Mode::Pay);
    secrets.wipe();
    goto(call, Step::MainMenu);
    let mut r = prompt(b, call, secrets).await?;
    r.says.insert(0, said);
    Ok(r)
}

/// The saved methods a mode can use. AutoPay by phone takes cards only: recurring bank debits
/// need an authorization the customer receives in writing (NACHA PPD, or TEL with a written
/// copy before the first debit), which the website gives and a phone call cannot.
fn offerable(mode: Mode, saved: Vec<SavedMethodInfo>) -> Vec<SavedMethodInfo> {
    match mode {
        Mode::Autopay => saved
            .into_iter()
            .filter(|m| m.kind == MethodKind::Card)
            .collect(),
        Mode::Pay | Mode::Schedule => saved,
    }
}

fn needs_saved_card(l: Lang) -> String {
    t(
        l,
        "AutoPay by phone uses a saved card. To pay AutoPay from a bank account, sign up on our website, where you receive the authorization in writing; or ask a representative.",
        "El pago automático por teléfono usa una tarjeta guardada. Para pagar automáticamente desde una cuenta bancaria, inscríbase en nuestro sitio web, donde recibe la autorización por escrito; o pregunte a un representante.",
    )
}

fn needs_saved_method(l: Lang) -> String {
    t(
        l,
        "For that you need a saved payment method. You can save one on our website, or with a representative.",
        "Para eso necesita un método de pago guardado. Puede guardarlo en nuestro sitio web, o con un representante.",
    )
}

async fn schedule<B: Backend + Sync>(b: &B, call: &mut Call, secrets: &mut Secrets) -> Res {
    let l = call.lang;
    let lang = l.domain();
    let account = verified(call)?;
    let amount = Money::usd(call.amount_minor.unwrap_or(0));
    let date = schedule_date(call).ok_or_else(|| BackendError("no date to schedule".into()))?;
    let Some(Chosen::Saved { token, .. }) = call.chosen.clone() else {
        return Err(BackendError("no saved method chosen".into()));
    };
    let is_bank = call.chosen.as_ref().is_some_and(Chosen::is_bank);
    b.schedule(ScheduleRequest {
        account,
        amount,
        token,
        date,
        seq: call.payment_seq,
        tel_authorization: if is_bank { call.tel_text.clone() } else { None },
    })
    .await?;
    call.payment_seq = call.payment_seq.saturating_add(1);
    let on = spoken_date(date, lang);
    let said = match l {
        Lang::En => format!(
            "Your payment of {} is scheduled for {on}. To cancel it, call us before then.",
            amount.spoken(lang)
        ),
        Lang::Es => format!(
            "Su pago de {} está programado para el {on}. Para cancelarlo, llámenos antes de esa fecha.",
            amount.spoken(lang)
        ),
    };
    back_to_menu(b, call, secrets, said).await
}

/// The method for the charge, rebuilt from the sealed digits (parsed again: they were
/// validated when keyed, so a failure here means the state was tampered with).
fn pay_method(call: &Call, secrets: &Secrets) -> Option<PayMethod> {
    match call.chosen.as_ref()? {
        Chosen::Saved { token, .. } => Some(PayMethod::Saved {
            token: token.clone(),
        }),
        Chosen::Card { .. } => {
            let number = CardNumber::parse(secrets.card_number.as_deref()?).ok()?;
            let expiry = CardExpiry::parse_mmyy(secrets.expiry.as_deref()?).ok()?;
            let cvc = Cvc::parse(secrets.cvc.as_deref()?, number.brand()).ok()?;
            let zip = PostalCode::parse(secrets.zip.as_deref()?).ok()?;
            Some(PayMethod::Card {
                number,
                expiry,
                cvc,
                zip,
            })
        }
        Chosen::Bank { .. } => Some(PayMethod::Bank {
            routing: RoutingNumber::parse(secrets.routing.as_deref()?).ok()?,
            account: BankAccountNumber::parse(secrets.bank_account.as_deref()?).ok()?,
            account_type: BankAccountType::parse(secrets.bank_type.as_deref()?)?,
        }),
    }
}

async fn pay<B: Backend + Sync>(b: &B, call: &mut Call, secrets: &mut Secrets) -> Res {
    let l = call.lang;
    let lang = l.domain();
    let account = verified(call)?;
    let amount = Money::usd(call.amount_minor.unwrap_or(0));
    let is_bank = call.chosen.as_ref().is_some_and(Chosen::is_bank);
    let method =
        pay_method(call, secrets).ok_or_else(|| BackendError("payment details missing".into()))?;
    let seq = call.payment_seq;
    let outcome = b
        .pay(PayRequest {
            account,
            amount,
            method,
            seq,
            tel_authorization: if is_bank { call.tel_text.clone() } else { None },
        })
        .await?;
    // Whatever happened, the digits have done their job.
    secrets.wipe();
    call.payment_seq = call.payment_seq.saturating_add(1);
    match outcome {
        PayOutcome::Paid { confirmation } if call.handoff.is_some() => {
            call.last_confirmation = Some(confirmation.as_str().to_string());
            call.tel_text = None;
            let said = match l {
                Lang::En => format!(
                    "Thank you. Your payment of {} was approved. Your confirmation number is {}.",
                    amount.spoken(lang),
                    spoken_digits(confirmation.as_str())
                ),
                Lang::Es => format!(
                    "Gracias. Su pago de {} fue aprobado. Su número de confirmación es {}.",
                    amount.spoken(lang),
                    spoken_digits(confirmation.as_str())
                ),
            };
            Ok(handoff_back(call, vec![said], "handoff_paid", b))
        }
        PayOutcome::Declined(code) if call.handoff.is_some() => {
            call.tel_text = None;
            call.last_decline = Some(code.as_str().to_string());
            let says = vec![
                code.message(lang).to_string(),
                t(l, "Nothing was charged.", "No se hizo ningún cargo."),
            ];
            Ok(handoff_back(call, says, "handoff_declined", b))
        }
        PayOutcome::Unavailable if call.handoff.is_some() => {
            let down = t(
                l,
                "Our payment system is not answering right now. Nothing was charged.",
                "Nuestro sistema de pagos no responde en este momento. No se hizo ningún cargo.",
            );
            Ok(handoff_back(call, vec![down], "processor_unavailable", b))
        }
        PayOutcome::Paid { confirmation } => {
            call.last_confirmation = Some(confirmation.as_str().to_string());
            call.tel_text = None;
            goto(call, Step::AfterPayment);
            let mut r = prompt(b, call, secrets).await?;
            let said = match (l, is_bank) {
                (Lang::En, false) => format!(
                    "Thank you. Your payment of {} was approved.",
                    amount.spoken(lang)
                ),
                (Lang::Es, false) => {
                    format!("Gracias. Su pago de {} fue aprobado.", amount.spoken(lang))
                }
                (Lang::En, true) => format!(
                    "Thank you. Your payment of {} was accepted and will be debited from your bank account.",
                    amount.spoken(lang)
                ),
                (Lang::Es, true) => format!(
                    "Gracias. Su pago de {} fue aceptado y se debitará de su cuenta bancaria.",
                    amount.spoken(lang)
                ),
            };
            r.says.insert(0, said);
            Ok(r)
        }
        PayOutcome::Declined(code) => {
            call.chosen = None;
            call.tel_text = None;
            goto(call, Step::AfterDecline);
            let mut r = prompt(b, call, secrets).await?;
            r.says.insert(0, code.next_step(lang).to_string());
            r.says.insert(0, code.message(lang).to_string());
            Ok(r)
        }
        PayOutcome::InDoubt => Ok(transfer(
            call,
            vec![t(
                l,
                "We could not get an answer from the bank yet. Please do not pay again: the payment will be confirmed shortly.",
                "Todavía no recibimos respuesta del banco. Por favor no vuelva a pagar: el pago se confirmará en breve.",
            )],
            "in_doubt",
            b,
        )),
        PayOutcome::Refused => Ok(transfer(
            call,
            vec![t(
                l,
                "We could not take this payment by phone right now. Nothing was charged.",
                "No pudimos tomar este pago por teléfono en este momento. No se hizo ningún cargo.",
            )],
            "payment_refused",
            b,
        )),
        PayOutcome::Unavailable => {
            let down = t(
                l,
                "Our payment system is not answering right now. Nothing was charged.",
                "Nuestro sistema de pagos no responde en este momento. No se hizo ningún cargo.",
            );
            // A payment can be scheduled for a later date with a saved method, up to the due
            // date; otherwise a representative takes it.
            let number = verified(call)?;
            let acct = b.account(&number).await?;
            let schedulable = acct.as_ref().is_some_and(can_schedule)
                && !b.saved_methods(&number).await?.is_empty();
            if !schedulable {
                return Ok(transfer(call, vec![down], "processor_unavailable", b));
            }
            call.chosen = None;
            call.tel_text = None;
            goto(call, Step::ProcessorDown);
            let mut r = prompt(b, call, secrets).await?;
            r.says.insert(0, down);
            Ok(r)
        }
    }
}

//! The decline taxonomy: card decline codes and ACH return codes, with retry
//! policy and plain-language English and Spanish texts for customers.
//!
//! The texts never blame the customer and never reveal risk or fraud-rule
//! internals: a payment blocked as fraudulent reads the same as any payment
//! that "could not be processed", and lost or stolen cards are described only
//! as cards that can no longer be used.

use std::fmt;

/// A customer-facing language.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Language {
    /// English.
    En,
    /// Spanish.
    Es,
}

impl Language {
    /// Parses a language tag, case-insensitively: "en", "es", "en-US", "es-MX",
    /// "es_419", ... (only the primary subtag matters). Also accepts "english",
    /// "spanish" and "español".
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let primary = s.split(['-', '_']).next().unwrap_or("");
        if primary.eq_ignore_ascii_case("en") || s.eq_ignore_ascii_case("english") {
            Some(Language::En)
        } else if primary.eq_ignore_ascii_case("es")
            || s.eq_ignore_ascii_case("spanish")
            || s.to_lowercase() == "español"
        {
            Some(Language::Es)
        } else {
            None
        }
    }

    /// The two-letter code: "en" or "es".
    pub fn as_str(&self) -> &'static str {
        match self {
            Language::En => "en",
            Language::Es => "es",
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a decline means for trying again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RetryPolicy {
    /// A later attempt with the same method may succeed (soft decline).
    Retryable,
    /// The issuer/bank will never approve this method; do not retry it.
    NeverRetry,
    /// Fix the input (number, CVC, ZIP, expiry) and try again; retrying the same
    /// data is pointless.
    FixAndRetry,
}

/// Why a payment was declined (cards) or returned (ACH).
///
/// Card codes follow the Stripe decline-code vocabulary; ACH codes are the
/// NACHA return reason codes R01 to R29.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeclineCode {
    /// The issuer requires customer authentication (e.g. 3-D Secure).
    AuthenticationRequired,
    /// The issuer can't authorize without further identification.
    ApproveWithId,
    /// The issuer asks the cardholder to call them.
    CallIssuer,
    /// The card does not support this kind of purchase.
    CardNotSupported,
    /// The card's balance, credit limit or transaction-count limit is exceeded.
    CardVelocityExceeded,
    /// The card does not support the currency.
    CurrencyNotSupported,
    /// The issuer declined without a reason.
    DoNotHonor,
    /// The issuer asks not to retry.
    DoNotTryAgain,
    /// The card has expired.
    ExpiredCard,
    /// The payment was blocked as suspected fraud.
    Fraudulent,
    /// Declined for an unspecified reason.
    GenericDecline,
    /// The security code is wrong.
    IncorrectCvc,
    /// The card number is wrong.
    IncorrectNumber,
    /// The billing postal code is wrong.
    IncorrectZip,
    /// Not enough funds or credit.
    InsufficientFunds,
    /// The card or its account is invalid.
    InvalidAccount,
    /// The card was reported lost.
    LostCard,
    /// The issuer asks that the card be retained (may be lost or stolen).
    PickupCard,
    /// An error occurred while processing.
    ProcessingError,
    /// The card was reported stolen.
    StolenCard,
    /// The issuer does not allow this transaction on the card.
    TransactionNotAllowed,
    /// Temporary issuer problem; try again later.
    TryAgainLater,
    /// ACH returns: R01 Insufficient funds.
    AchR01,
    /// R02 Account closed.
    AchR02,
    /// R03 No account / unable to locate account.
    AchR03,
    /// R04 Invalid account number structure.
    AchR04,
    /// R05 Unauthorized debit to consumer account using corporate SEC code.
    AchR05,
    /// R06 Returned per ODFI's request.
    AchR06,
    /// R07 Authorization revoked by customer.
    AchR07,
    /// R08 Payment stopped.
    AchR08,
    /// R09 Uncollected funds.
    AchR09,
    /// R10 Customer advises not authorized, improper, ineligible or incomplete.
    AchR10,
    /// R11 Customer advises entry not in accordance with the terms of the authorization.
    AchR11,
    /// R12 Account sold to another DFI.
    AchR12,
    /// R13 Invalid ACH routing number.
    AchR13,
    /// R14 Representative payee deceased or unable to continue in that capacity.
    AchR14,
    /// R15 Beneficiary or account holder deceased.
    AchR15,
    /// R16 Account frozen / entry returned per OFAC instruction.
    AchR16,
    /// R17 File record edit criteria / entry with invalid account number
    /// initiated under questionable circumstances.
    AchR17,
    /// R18 Improper effective entry date.
    AchR18,
    /// R19 Amount field error.
    AchR19,
    /// R20 Non-transaction account.
    AchR20,
    /// R21 Invalid company identification.
    AchR21,
    /// R22 Invalid individual ID number.
    AchR22,
    /// R23 Credit entry refused by receiver.
    AchR23,
    /// R24 Duplicate entry.
    AchR24,
    /// R25 Addenda error.
    AchR25,
    /// R26 Mandatory field error.
    AchR26,
    /// R27 Trace number error.
    AchR27,
    /// R28 Routing number check digit error.
    AchR28,
    /// R29 Corporate customer advises not authorized.
    AchR29,
}

use DeclineCode::*;

const ALL_CODES: [DeclineCode; 51] = [
    AuthenticationRequired,
    ApproveWithId,
    CallIssuer,
    CardNotSupported,
    CardVelocityExceeded,
    CurrencyNotSupported,
    DoNotHonor,
    DoNotTryAgain,
    ExpiredCard,
    Fraudulent,
    GenericDecline,
    IncorrectCvc,
    IncorrectNumber,
    IncorrectZip,
    InsufficientFunds,
    InvalidAccount,
    LostCard,
    PickupCard,
    ProcessingError,
    StolenCard,
    TransactionNotAllowed,
    TryAgainLater,
    AchR01,
    AchR02,
    AchR03,
    AchR04,
    AchR05,
    AchR06,
    AchR07,
    AchR08,
    AchR09,
    AchR10,
    AchR11,
    AchR12,
    AchR13,
    AchR14,
    AchR15,
    AchR16,
    AchR17,
    AchR18,
    AchR19,
    AchR20,
    AchR21,
    AchR22,
    AchR23,
    AchR24,
    AchR25,
    AchR26,
    AchR27,
    AchR28,
    AchR29,
];

/// Customer texts: (message, next step) per language.
struct Texts {
    en: (&'static str, &'static str),
    es: (&'static str, &'static str),
}

const EN_OTHER_METHOD: &str = "Please use a different card or pay from a bank account.";
const ES_OTHER_METHOD: &str = "Use otra tarjeta o pague desde una cuenta bancaria.";
const EN_CARD_UNUSABLE: (&str, &str) = (
    "This card can no longer be used for payments.",
    "Please use a different card; this card can't be used.",
);
const ES_CARD_UNUSABLE: (&str, &str) = (
    "Esta tarjeta ya no se puede usar para pagos.",
    "Use otra tarjeta; esta tarjeta no se puede usar.",
);
const EN_INSUFFICIENT_NEXT: &str =
    "You can pay with another card or bank account, or set up a payment arrangement.";
const ES_INSUFFICIENT_NEXT: &str =
    "Puede pagar con otra tarjeta o cuenta bancaria, o establecer un acuerdo de pago.";
const EN_CHECK_BANK_DETAILS: &str =
    "Please check the routing and account numbers, or add a different bank account or card.";
const ES_CHECK_BANK_DETAILS: &str =
    "Revise los números de ruta y de cuenta, o agregue otra cuenta bancaria o tarjeta.";
const EN_CHECK_ROUTING: &str =
    "Please check the routing number, or add a different bank account or card.";
const ES_CHECK_ROUTING: &str =
    "Revise el número de ruta, o agregue otra cuenta bancaria o tarjeta.";
const EN_ACCOUNT_UNUSABLE_NEXT: &str =
    "Please add a different bank account or card; this account can't be used.";
const ES_ACCOUNT_UNUSABLE_NEXT: &str =
    "Agregue otra cuenta bancaria o tarjeta; esta cuenta no se puede usar.";
const EN_OTHER_OR_CALL: &str = "Please use a different payment method or call us.";
const ES_OTHER_OR_CALL: &str = "Use otro método de pago o llámenos.";
const EN_STOPPED_NEXT: &str = "Payments from this account have been stopped. Please call us if you have questions, or use a different payment method.";
const ES_STOPPED_NEXT: &str = "Se suspendieron los pagos desde esta cuenta. Llámenos si tiene preguntas o use otro método de pago.";
const EN_BANK_TECHNICAL: (&str, &str) = (
    "Your bank returned this payment because of a processing problem.",
    "This was not caused by you. Please try again later or use a different payment method.",
);
const ES_BANK_TECHNICAL: (&str, &str) = (
    "Su banco devolvió este pago por un problema de procesamiento.",
    "Esto no fue causado por usted. Intente de nuevo más tarde o use otro método de pago.",
);
const EN_DECEASED_NEXT: &str = "Please call us so we can help update the account.";
const ES_DECEASED_NEXT: &str = "Llámenos para ayudarle a actualizar la cuenta.";

impl DeclineCode {
    /// Stripe-style snake_case for cards ("insufficient_funds"), "R01".."R29"
    /// for ACH returns.
    pub fn as_str(&self) -> &'static str {
        match self {
            AuthenticationRequired => "authentication_required",
            ApproveWithId => "approve_with_id",
            CallIssuer => "call_issuer",
            CardNotSupported => "card_not_supported",
            CardVelocityExceeded => "card_velocity_exceeded",
            CurrencyNotSupported => "currency_not_supported",
            DoNotHonor => "do_not_honor",
            DoNotTryAgain => "do_not_try_again",
            ExpiredCard => "expired_card",
            Fraudulent => "fraudulent",
            GenericDecline => "generic_decline",
            IncorrectCvc => "incorrect_cvc",
            IncorrectNumber => "incorrect_number",
            IncorrectZip => "incorrect_zip",
            InsufficientFunds => "insufficient_funds",
            InvalidAccount => "invalid_account",
            LostCard => "lost_card",
            PickupCard => "pickup_card",
            ProcessingError => "processing_error",
            StolenCard => "stolen_card",
            TransactionNotAllowed => "transaction_not_allowed",
            TryAgainLater => "try_again_later",
            AchR01 => "R01",
            AchR02 => "R02",
            AchR03 => "R03",
            AchR04 => "R04",
            AchR05 => "R05",
            AchR06 => "R06",
            AchR07 => "R07",
            AchR08 => "R08",
            AchR09 => "R09",
            AchR10 => "R10",
            AchR11 => "R11",
            AchR12 => "R12",
            AchR13 => "R13",
            AchR14 => "R14",
            AchR15 => "R15",
            AchR16 => "R16",
            AchR17 => "R17",
            AchR18 => "R18",
            AchR19 => "R19",
            AchR20 => "R20",
            AchR21 => "R21",
            AchR22 => "R22",
            AchR23 => "R23",
            AchR24 => "R24",
            AchR25 => "R25",
            AchR26 => "R26",
            AchR27 => "R27",
            AchR28 => "R28",
            AchR29 => "R29",
        }
    }

    /// Inverse of [`DeclineCode::as_str`], ASCII case-insensitive ("r01" and
    /// "R01" both work; surrounding whitespace is ignored).
    pub fn parse(s: &str) -> Option<DeclineCode> {
        let s = s.trim();
        ALL_CODES
            .iter()
            .copied()
            .find(|c| c.as_str().eq_ignore_ascii_case(s))
    }

    /// Every code: the card codes, then R01 to R29.
    pub fn all() -> &'static [DeclineCode] {
        &ALL_CODES
    }

    /// Whether this is an ACH return code (R01 to R29) rather than a card decline.
    pub fn is_ach(&self) -> bool {
        self.as_str().starts_with('R')
    }

    /// The processor-level `code` a Stripe-style error carries: "card_declined"
    /// for most, "expired_card", "incorrect_cvc", "incorrect_number",
    /// "incorrect_zip", "processing_error" for those; "bank_account_declined" for
    /// ACH.
    pub fn error_code(&self) -> &'static str {
        match self {
            ExpiredCard | IncorrectCvc | IncorrectNumber | IncorrectZip | ProcessingError => {
                self.as_str()
            }
            _ if self.is_ach() => "bank_account_declined",
            _ => "card_declined",
        }
    }

    /// Whether and how to try again after this code.
    ///
    /// * Retryable: insufficient_funds, try_again_later, processing_error,
    ///   card_velocity_exceeded, generic_decline, approve_with_id, R01, R09, and
    ///   the ACH returns caused by a formatting problem on the originator's side
    ///   (R18, R19, R21, R25, R26, R27).
    /// * FixAndRetry: expired_card, incorrect_cvc, incorrect_number,
    ///   incorrect_zip, authentication_required.
    /// * NeverRetry: everything else (lost, stolen, pickup, fraudulent,
    ///   do_not_try_again, do_not_honor, call_issuer, invalid_account, the
    ///   not-supported/not-allowed codes, and the remaining ACH returns).
    pub fn retry_policy(&self) -> RetryPolicy {
        match self {
            InsufficientFunds | TryAgainLater | ProcessingError | CardVelocityExceeded
            | GenericDecline | ApproveWithId | AchR01 | AchR09 | AchR18 | AchR19 | AchR21
            | AchR25 | AchR26 | AchR27 => RetryPolicy::Retryable,
            ExpiredCard
            | IncorrectCvc
            | IncorrectNumber
            | IncorrectZip
            | AuthenticationRequired => RetryPolicy::FixAndRetry,
            CallIssuer
            | CardNotSupported
            | CurrencyNotSupported
            | DoNotHonor
            | DoNotTryAgain
            | Fraudulent
            | InvalidAccount
            | LostCard
            | PickupCard
            | StolenCard
            | TransactionNotAllowed
            | AchR02
            | AchR03
            | AchR04
            | AchR05
            | AchR06
            | AchR07
            | AchR08
            | AchR10
            | AchR11
            | AchR12
            | AchR13
            | AchR14
            | AchR15
            | AchR16
            | AchR17
            | AchR20
            | AchR22
            | AchR23
            | AchR24
            | AchR28
            | AchR29 => RetryPolicy::NeverRetry,
        }
    }

    /// Whether the saved method should be disabled (AutoPay stopped) after this
    /// code: lost/stolen/pickup, R02,R03,R04,R07,R10,R16,R20.
    pub fn disables_method(&self) -> bool {
        matches!(
            self,
            LostCard
                | StolenCard
                | PickupCard
                | AchR02
                | AchR03
                | AchR04
                | AchR07
                | AchR10
                | AchR16
                | AchR20
        )
    }

    /// Plain-language cause, one sentence, in the language. E.g. En
    /// InsufficientFunds: "Your bank declined this payment for insufficient
    /// funds." Es: "Su banco rechazó este pago por fondos insuficientes."
    pub fn message(&self, lang: Language) -> &'static str {
        let t = self.texts();
        match lang {
            Language::En => t.en.0,
            Language::Es => t.es.0,
        }
    }

    /// What to do next, one or two sentences.
    pub fn next_step(&self, lang: Language) -> &'static str {
        let t = self.texts();
        match lang {
            Language::En => t.en.1,
            Language::Es => t.es.1,
        }
    }

    fn texts(&self) -> Texts {
        match self {
            AuthenticationRequired => Texts {
                en: (
                    "Your bank requires extra verification for this payment.",
                    "Please try again and complete your bank's verification step, or use a different payment method.",
                ),
                es: (
                    "Su banco requiere una verificación adicional para este pago.",
                    "Intente de nuevo y complete el paso de verificación de su banco, o use otro método de pago.",
                ),
            },
            ApproveWithId => Texts {
                en: (
                    "Your card issuer could not authorize this payment.",
                    "Please try again. If it still doesn't go through, call the number on the back of your card.",
                ),
                es: (
                    "El emisor de su tarjeta no pudo autorizar este pago.",
                    "Intente de nuevo. Si el pago sigue sin procesarse, llame al número que aparece al reverso de su tarjeta.",
                ),
            },
            CallIssuer => Texts {
                en: (
                    "Your card issuer declined this payment and asks you to contact them.",
                    "Please call the number on the back of your card, or use a different payment method.",
                ),
                es: (
                    "El emisor de su tarjeta rechazó este pago y le pide que se comunique con ellos.",
                    "Llame al número que aparece al reverso de su tarjeta o use otro método de pago.",
                ),
            },
            CardNotSupported => Texts {
                en: (
                    "This card does not support this type of payment.",
                    EN_OTHER_METHOD,
                ),
                es: ("Esta tarjeta no admite este tipo de pago.", ES_OTHER_METHOD),
            },
            CardVelocityExceeded => Texts {
                en: (
                    "This payment is over a limit set on your card.",
                    "You can try again later, use a different card, or call your card issuer.",
                ),
                es: (
                    "Este pago supera un límite establecido en su tarjeta.",
                    "Puede intentarlo más tarde, usar otra tarjeta o llamar al emisor de su tarjeta.",
                ),
            },
            CurrencyNotSupported => Texts {
                en: (
                    "This card can't be used to pay in this currency.",
                    EN_OTHER_METHOD,
                ),
                es: (
                    "Esta tarjeta no se puede usar para pagar en esta moneda.",
                    ES_OTHER_METHOD,
                ),
            },
            DoNotHonor => Texts {
                en: (
                    "Your card issuer declined this payment without giving a reason.",
                    "Please use a different payment method, or call the number on the back of your card to find out more.",
                ),
                es: (
                    "El emisor de su tarjeta rechazó este pago sin indicar el motivo.",
                    "Use otro método de pago o llame al número que aparece al reverso de su tarjeta para obtener más información.",
                ),
            },
            DoNotTryAgain => Texts {
                en: (
                    "Your card issuer declined this payment and asked that it not be tried again.",
                    EN_OTHER_METHOD,
                ),
                es: (
                    "El emisor de su tarjeta rechazó este pago y pidió que no se vuelva a intentar.",
                    ES_OTHER_METHOD,
                ),
            },
            ExpiredCard => Texts {
                en: (
                    "This card has expired.",
                    "Please check the expiration date, or use a card that has not expired.",
                ),
                es: (
                    "Esta tarjeta está vencida.",
                    "Revise la fecha de vencimiento o use una tarjeta vigente.",
                ),
            },
            Fraudulent => Texts {
                en: (
                    "This payment could not be processed.",
                    "Please use a different payment method or call us.",
                ),
                es: (
                    "No se pudo procesar este pago.",
                    "Use otro método de pago o llámenos.",
                ),
            },
            GenericDecline => Texts {
                en: (
                    "Your card issuer declined this payment.",
                    "You can try again, use a different payment method, or call the number on the back of your card.",
                ),
                es: (
                    "El emisor de su tarjeta rechazó este pago.",
                    "Puede intentarlo de nuevo, usar otro método de pago o llamar al número que aparece al reverso de su tarjeta.",
                ),
            },
            IncorrectCvc => Texts {
                en: (
                    "The security code doesn't match the card.",
                    "Please check the 3- or 4-digit security code on your card and try again.",
                ),
                es: (
                    "El código de seguridad no coincide con el de la tarjeta.",
                    "Revise el código de seguridad de 3 o 4 dígitos de su tarjeta e intente de nuevo.",
                ),
            },
            IncorrectNumber => Texts {
                en: (
                    "The card number is not correct.",
                    "Please check the card number and try again.",
                ),
                es: (
                    "El número de tarjeta no es correcto.",
                    "Revise el número de tarjeta e intente de nuevo.",
                ),
            },
            IncorrectZip => Texts {
                en: (
                    "The ZIP or postal code doesn't match the billing address for this card.",
                    "Please enter the ZIP or postal code of the address where you receive your card statement, and try again.",
                ),
                es: (
                    "El código postal no coincide con la dirección de facturación de esta tarjeta.",
                    "Ingrese el código postal de la dirección donde recibe el estado de cuenta de su tarjeta e intente de nuevo.",
                ),
            },
            InsufficientFunds => Texts {
                en: (
                    "Your bank declined this payment for insufficient funds.",
                    EN_INSUFFICIENT_NEXT,
                ),
                es: (
                    "Su banco rechazó este pago por fondos insuficientes.",
                    ES_INSUFFICIENT_NEXT,
                ),
            },
            InvalidAccount => Texts {
                en: (
                    "The card, or the account it is connected to, is not valid.",
                    EN_OTHER_METHOD,
                ),
                es: (
                    "La tarjeta, o la cuenta asociada a ella, no es válida.",
                    ES_OTHER_METHOD,
                ),
            },
            LostCard | PickupCard | StolenCard => Texts {
                en: EN_CARD_UNUSABLE,
                es: ES_CARD_UNUSABLE,
            },
            ProcessingError => Texts {
                en: (
                    "An error occurred while processing this payment.",
                    "This was a problem on our side or the card network's. Please try again in a few minutes.",
                ),
                es: (
                    "Ocurrió un error al procesar este pago.",
                    "Fue un problema de nuestra parte o de la red de tarjetas. Intente de nuevo en unos minutos.",
                ),
            },
            TransactionNotAllowed => Texts {
                en: (
                    "Your card issuer doesn't allow this type of payment on this card.",
                    EN_OTHER_METHOD,
                ),
                es: (
                    "El emisor de su tarjeta no permite este tipo de pago con esta tarjeta.",
                    ES_OTHER_METHOD,
                ),
            },
            TryAgainLater => Texts {
                en: (
                    "Your card issuer could not process this payment right now.",
                    "Please try again in a little while, or use a different payment method.",
                ),
                es: (
                    "El emisor de su tarjeta no pudo procesar este pago en este momento.",
                    "Intente de nuevo en un rato o use otro método de pago.",
                ),
            },
            AchR01 => Texts {
                en: (
                    "Your bank returned this payment for insufficient funds.",
                    EN_INSUFFICIENT_NEXT,
                ),
                es: (
                    "Su banco devolvió este pago por fondos insuficientes.",
                    ES_INSUFFICIENT_NEXT,
                ),
            },
            AchR02 => Texts {
                en: (
                    "Your bank returned this payment because the account is closed.",
                    EN_ACCOUNT_UNUSABLE_NEXT,
                ),
                es: (
                    "Su banco devolvió este pago porque la cuenta está cerrada.",
                    ES_ACCOUNT_UNUSABLE_NEXT,
                ),
            },
            AchR03 => Texts {
                en: (
                    "Your bank could not find an account with the number provided.",
                    EN_CHECK_BANK_DETAILS,
                ),
                es: (
                    "Su banco no encontró una cuenta con el número proporcionado.",
                    ES_CHECK_BANK_DETAILS,
                ),
            },
            AchR04 => Texts {
                en: (
                    "Your bank returned this payment because the account number is not valid.",
                    EN_CHECK_BANK_DETAILS,
                ),
                es: (
                    "Su banco devolvió este pago porque el número de cuenta no es válido.",
                    ES_CHECK_BANK_DETAILS,
                ),
            },
            AchR05 => Texts {
                en: (
                    "Your bank returned this payment because this type of debit is not allowed on the account.",
                    EN_OTHER_OR_CALL,
                ),
                es: (
                    "Su banco devolvió este pago porque este tipo de débito no está permitido en la cuenta.",
                    ES_OTHER_OR_CALL,
                ),
            },
            AchR06 => Texts {
                en: (
                    "This payment was returned at our bank's request.",
                    EN_OTHER_OR_CALL,
                ),
                es: (
                    "Este pago fue devuelto a solicitud de nuestro banco.",
                    ES_OTHER_OR_CALL,
                ),
            },
            AchR07 => Texts {
                en: (
                    "Your bank returned this payment because the authorization for payments from this account was revoked.",
                    EN_STOPPED_NEXT,
                ),
                es: (
                    "Su banco devolvió este pago porque se revocó la autorización de pagos desde esta cuenta.",
                    ES_STOPPED_NEXT,
                ),
            },
            AchR08 => Texts {
                en: (
                    "Your bank returned this payment because a stop payment was placed on it.",
                    "If you still want to make this payment, please use a different payment method or call us.",
                ),
                es: (
                    "Su banco devolvió este pago porque se emitió una orden de suspensión de pago.",
                    "Si aún desea hacer este pago, use otro método de pago o llámenos.",
                ),
            },
            AchR09 => Texts {
                en: (
                    "Your bank returned this payment because the funds in the account were not yet available.",
                    "You can try again once the funds are available, or use a different payment method.",
                ),
                es: (
                    "Su banco devolvió este pago porque los fondos de la cuenta aún no estaban disponibles.",
                    "Puede intentarlo de nuevo cuando los fondos estén disponibles o usar otro método de pago.",
                ),
            },
            AchR10 => Texts {
                en: (
                    "Your bank returned this payment because it was reported as not authorized.",
                    EN_STOPPED_NEXT,
                ),
                es: (
                    "Su banco devolvió este pago porque se reportó como no autorizado.",
                    ES_STOPPED_NEXT,
                ),
            },
            AchR11 => Texts {
                en: (
                    "Your bank returned this payment because it did not match what was authorized.",
                    "Please call us so we can correct it, or use a different payment method.",
                ),
                es: (
                    "Su banco devolvió este pago porque no coincidía con lo autorizado.",
                    "Llámenos para corregirlo o use otro método de pago.",
                ),
            },
            AchR12 => Texts {
                en: (
                    "Your bank returned this payment because the account has moved to a different bank.",
                    "Please add the account's new routing and account numbers, or use a different payment method.",
                ),
                es: (
                    "Su banco devolvió este pago porque la cuenta se transfirió a otro banco.",
                    "Agregue los nuevos números de ruta y de cuenta, o use otro método de pago.",
                ),
            },
            AchR13 => Texts {
                en: (
                    "The bank routing number for this payment is not valid.",
                    EN_CHECK_ROUTING,
                ),
                es: (
                    "El número de ruta bancaria de este pago no es válido.",
                    ES_CHECK_ROUTING,
                ),
            },
            AchR14 => Texts {
                en: (
                    "Your bank returned this payment because the account holder's representative is reported as deceased.",
                    EN_DECEASED_NEXT,
                ),
                es: (
                    "Su banco devolvió este pago porque se informó el fallecimiento del representante del titular de la cuenta.",
                    ES_DECEASED_NEXT,
                ),
            },
            AchR15 => Texts {
                en: (
                    "Your bank returned this payment because the account holder is reported as deceased.",
                    EN_DECEASED_NEXT,
                ),
                es: (
                    "Su banco devolvió este pago porque se informó el fallecimiento del titular de la cuenta.",
                    ES_DECEASED_NEXT,
                ),
            },
            AchR16 => Texts {
                en: (
                    "Your bank returned this payment because the account is frozen.",
                    "Please use a different payment method, or contact your bank.",
                ),
                es: (
                    "Su banco devolvió este pago porque la cuenta está congelada.",
                    "Use otro método de pago o comuníquese con su banco.",
                ),
            },
            AchR17 => Texts {
                en: (
                    "Your bank returned this payment because of a problem with the account details.",
                    EN_OTHER_OR_CALL,
                ),
                es: (
                    "Su banco devolvió este pago por un problema con los datos de la cuenta.",
                    ES_OTHER_OR_CALL,
                ),
            },
            AchR18 | AchR19 | AchR21 | AchR25 | AchR26 | AchR27 => Texts {
                en: EN_BANK_TECHNICAL,
                es: ES_BANK_TECHNICAL,
            },
            AchR20 => Texts {
                en: (
                    "Your bank returned this payment because payments can't be made from this type of account.",
                    "Please use a checking account or a card.",
                ),
                es: (
                    "Su banco devolvió este pago porque no se pueden hacer pagos desde este tipo de cuenta.",
                    "Use una cuenta de cheques o una tarjeta.",
                ),
            },
            AchR22 => Texts {
                en: (
                    "Your bank returned this payment because the account holder's identification did not match.",
                    EN_OTHER_OR_CALL,
                ),
                es: (
                    "Su banco devolvió este pago porque la identificación del titular de la cuenta no coincidía.",
                    ES_OTHER_OR_CALL,
                ),
            },
            AchR23 => Texts {
                en: (
                    "Your bank refused this credit to the account.",
                    "Please call us so we can send it another way.",
                ),
                es: (
                    "Su banco rechazó este abono a la cuenta.",
                    "Llámenos para enviarlo de otra forma.",
                ),
            },
            AchR24 => Texts {
                en: (
                    "Your bank returned this payment because it appeared to be a duplicate.",
                    "Please check your account activity before paying again, or call us.",
                ),
                es: (
                    "Su banco devolvió este pago porque parecía estar duplicado.",
                    "Revise los movimientos de su cuenta antes de volver a pagar, o llámenos.",
                ),
            },
            AchR28 => Texts {
                en: (
                    "The bank routing number for this payment has a typo.",
                    EN_CHECK_ROUTING,
                ),
                es: (
                    "El número de ruta bancaria de este pago tiene un error.",
                    ES_CHECK_ROUTING,
                ),
            },
            AchR29 => Texts {
                en: (
                    "Your bank returned this payment because the business account holder reported it as not authorized.",
                    "Please call us if you have questions, or use a different payment method.",
                ),
                es: (
                    "Su banco devolvió este pago porque el titular de la cuenta empresarial lo reportó como no autorizado.",
                    "Llámenos si tiene preguntas o use otro método de pago.",
                ),
            },
        }
    }
}

impl fmt::Display for DeclineCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn language_parse() {
        for (s, l) in [
            ("en", Language::En),
            ("EN", Language::En),
            ("en-US", Language::En),
            ("en_GB", Language::En),
            ("english", Language::En),
            ("es", Language::Es),
            ("es-MX", Language::Es),
            ("es-419", Language::Es),
            ("Español", Language::Es),
        ] {
            assert_eq!(Language::parse(s), Some(l), "{s}");
        }
        assert_eq!(Language::parse("fr"), None);
        assert_eq!(Language::parse(""), None);
        assert_eq!(Language::parse("eng"), None);
        assert_eq!(Language::En.as_str(), "en");
        assert_eq!(Language::parse(Language::Es.as_str()), Some(Language::Es));
    }

    #[test]
    fn all_codes_are_distinct_and_round_trip() {
        let all = DeclineCode::all();
        assert_eq!(all.len(), 22 + 29);
        let strings: HashSet<&str> = all.iter().map(|c| c.as_str()).collect();
        assert_eq!(strings.len(), all.len());
        for &c in all {
            assert_eq!(DeclineCode::parse(c.as_str()), Some(c));
            assert_eq!(DeclineCode::parse(&c.as_str().to_lowercase()), Some(c));
            assert_eq!(c.to_string(), c.as_str());
        }
        for n in 1..=29 {
            let code = format!("R{n:02}");
            let parsed = DeclineCode::parse(&code).unwrap();
            assert!(parsed.is_ach());
            assert_eq!(parsed.error_code(), "bank_account_declined");
            assert_eq!(DeclineCode::parse(&code.to_lowercase()), Some(parsed));
        }
        assert_eq!(DeclineCode::parse("R30"), None);
        assert_eq!(DeclineCode::parse("R00"), None);
        assert_eq!(DeclineCode::parse("nope"), None);
        assert_eq!(
            DeclineCode::parse("Insufficient_Funds"),
            Some(InsufficientFunds)
        );
    }

    #[test]
    fn every_code_has_distinct_nonempty_texts() {
        for &c in DeclineCode::all() {
            for lang in [Language::En, Language::Es] {
                let m = c.message(lang);
                let n = c.next_step(lang);
                assert!(!m.trim().is_empty() && !n.trim().is_empty(), "{c}");
                assert!(m.ends_with('.') && n.ends_with('.'), "{c} {lang}");
                assert!(m.starts_with(char::is_uppercase), "{c} {lang}");
            }
            assert_ne!(c.message(Language::En), c.message(Language::Es), "{c}");
            assert_ne!(c.next_step(Language::En), c.next_step(Language::Es), "{c}");
        }
    }

    #[test]
    fn texts_do_not_reveal_fraud_or_loss() {
        for &c in DeclineCode::all() {
            for lang in [Language::En, Language::Es] {
                let text = format!("{} {}", c.message(lang), c.next_step(lang)).to_lowercase();
                for word in [
                    "fraud", "stolen", "lost", "robad", "perdid", "risk", "riesgo",
                ] {
                    assert!(!text.contains(word), "{c} {lang}: {text}");
                }
            }
        }
        assert_eq!(
            Fraudulent.message(Language::En),
            "This payment could not be processed."
        );
        assert_eq!(
            Fraudulent.next_step(Language::En),
            "Please use a different payment method or call us."
        );
    }

    #[test]
    fn specified_texts() {
        assert_eq!(
            InsufficientFunds.message(Language::En),
            "Your bank declined this payment for insufficient funds."
        );
        assert_eq!(
            InsufficientFunds.message(Language::Es),
            "Su banco rechazó este pago por fondos insuficientes."
        );
        assert_eq!(
            InsufficientFunds.next_step(Language::En),
            "You can pay with another card or bank account, or set up a payment arrangement."
        );
        assert_eq!(
            LostCard.next_step(Language::En),
            "Please use a different card; this card can't be used."
        );
        assert_eq!(
            StolenCard.next_step(Language::En),
            "Please use a different card; this card can't be used."
        );
        assert_eq!(
            ProcessingError.next_step(Language::En),
            "This was a problem on our side or the card network's. Please try again in a few minutes."
        );
    }

    #[test]
    fn error_codes() {
        assert_eq!(InsufficientFunds.error_code(), "card_declined");
        assert_eq!(Fraudulent.error_code(), "card_declined");
        assert_eq!(ExpiredCard.error_code(), "expired_card");
        assert_eq!(IncorrectCvc.error_code(), "incorrect_cvc");
        assert_eq!(IncorrectNumber.error_code(), "incorrect_number");
        assert_eq!(IncorrectZip.error_code(), "incorrect_zip");
        assert_eq!(ProcessingError.error_code(), "processing_error");
        assert_eq!(AchR01.error_code(), "bank_account_declined");
    }

    #[test]
    fn retry_policies_and_disabling() {
        for c in [
            LostCard,
            StolenCard,
            PickupCard,
            Fraudulent,
            DoNotTryAgain,
            DoNotHonor,
            AchR02,
            AchR03,
            AchR04,
            AchR05,
            AchR07,
            AchR08,
            AchR10,
            AchR16,
            AchR20,
            AchR29,
        ] {
            assert_eq!(c.retry_policy(), RetryPolicy::NeverRetry, "{c}");
        }
        for c in [
            InsufficientFunds,
            TryAgainLater,
            ProcessingError,
            CardVelocityExceeded,
            GenericDecline,
            AchR01,
            AchR09,
        ] {
            assert_eq!(c.retry_policy(), RetryPolicy::Retryable, "{c}");
        }
        for c in [
            ExpiredCard,
            IncorrectCvc,
            IncorrectNumber,
            IncorrectZip,
            AuthenticationRequired,
        ] {
            assert_eq!(c.retry_policy(), RetryPolicy::FixAndRetry, "{c}");
        }
        let disabling: HashSet<DeclineCode> = DeclineCode::all()
            .iter()
            .copied()
            .filter(DeclineCode::disables_method)
            .collect();
        let expected: HashSet<DeclineCode> = [
            LostCard, StolenCard, PickupCard, AchR02, AchR03, AchR04, AchR07, AchR10, AchR16,
            AchR20,
        ]
        .into_iter()
        .collect();
        assert_eq!(disabling, expected);
        // A code that disables the method must never be retried on it.
        for c in disabling {
            assert_eq!(c.retry_policy(), RetryPolicy::NeverRetry, "{c}");
        }
    }
}

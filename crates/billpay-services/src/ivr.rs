//! The phone line's glue: loads a call's state, runs one step of the call flow
//! (`billpay_ivr`), takes the payment through the one payment service, and stores the state
//! again. Digits keyed for a card or bank account are sealed with the vault (the call id is the
//! associated data) while they wait between webhooks, and destroyed once the payment is made
//! or the call ends.

use billpay_domain::{AccountNumber, Channel, Language};
use billpay_ivr::{
    AccountInfo, Backend, BackendError, Call, Input, LastPayment, PayMethod, PayOutcome,
    PayRequest, Reply, SavedMethodInfo, ScheduleRequest, Secrets, Step,
};
use billpay_store::queries;
use billpay_store::rows::{IvrCallRow, TelAuthorizationRow};
use billpay_vault::Sealed;

use crate::autopay::NewScheduledPayment;
use crate::payments::{Idempotency, NewMethod, PaymentRequest, PaymentResult, TelAuthorization};
use crate::{Billpay, Payment, ServiceError};

/// Longest CallSid accepted (Twilio's are 34 characters).
pub const CALL_SID_LEN_MAX: usize = 64;
/// Longest keypad entry accepted in one webhook.
pub const DIGITS_LEN_MAX: usize = 32;
/// Where a caller waiting in the queue hears their place in line (`<Enqueue waitUrl>`).
pub const WAIT_PATH: &str = "/ivr/twilio/wait";
/// What an answering representative hears before the caller is connected (`<Number url>`).
pub const WHISPER_PATH: &str = "/ivr/twilio/whisper";
/// Where the provider reports how a transfer's dial ended (`<Dial action>`).
pub const DIAL_STATUS_PATH: &str = "/ivr/twilio/dial-status";

/// Where a representative's phone system redirects a caller for keypad card entry, with the
/// desk's code: `/ivr/twilio/handoff?code=12345678`.
pub const HANDOFF_PATH: &str = "/ivr/twilio/handoff";
/// Longest hand-off code accepted.
const HANDOFF_CODE_LEN_MAX: usize = 12;

/// A query-string value, percent-encoded.
fn query_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Why a caller was transferred, as a representative hears it.
fn transfer_reason_words(reason: &str) -> &'static str {
    match reason {
        "caller_asked" => "The caller asked for a representative.",
        "too_many_attempts" => "The caller could not complete an entry in three tries.",
        "no_input" => "The caller did not answer the prompts.",
        "in_doubt" => {
            "A payment on this call is awaiting the bank's answer: do not take another payment; it resolves by itself."
        }
        "payment_refused" => "A payment could not be taken on this call.",
        "system_error" => "The phone line had a system error.",
        "handoff_paid" => "The caller keyed a card for your payment and it was approved.",
        "handoff_declined" => "The caller keyed a card for your payment and it was declined.",
        "handoff_canceled" => "The caller canceled the card payment you set up.",
        "handoff_invalid" => "The transfer code for card entry was not valid or had expired.",
        _ => "The caller was transferred.",
    }
}

/// A call as the agent desk sees it: never a keyed digit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallInfo {
    pub call_sid: String,
    pub from: String,
    /// active, ended or completed
    pub status: String,
    pub language: Language,
    pub verified_account: Option<String>,
    pub transfer_reason: Option<String>,
    pub callback_requested: bool,
    pub last_confirmation: Option<String>,
    pub started_at: jiff::Timestamp,
    pub updated_at: jiff::Timestamp,
}

/// One webhook, parsed.
#[derive(Clone, Debug)]
pub struct CallEvent {
    pub call_sid: String,
    pub from: String,
    /// The turn the provider is answering (from the action URL); None for a new call.
    pub turn: Option<i64>,
    pub input: Input,
}

/// The TwiML to answer with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallAnswer {
    pub twiml: String,
    /// True when this was a redelivery answered from storage.
    pub replayed: bool,
}

fn backend_err(e: impl std::fmt::Display) -> BackendError {
    BackendError(e.to_string())
}

struct Line<'a> {
    app: &'a Billpay,
    call_sid: &'a str,
    /// The caller's number, as the provider gives it.
    from: &'a str,
    /// The account as last read during this webhook: one keypress may need it several times.
    /// Forgotten by anything that changes money or schedules.
    seen: std::sync::Mutex<Option<AccountInfo>>,
}

impl Line<'_> {
    fn tz(&self) -> jiff::tz::TimeZone {
        crate::accounts::tz_named(&self.app.config().ivr.timezone)
    }

    fn forget(&self) {
        if let Ok(mut seen) = self.seen.lock() {
            *seen = None;
        }
    }

    async fn info(&self, number: &AccountNumber) -> Result<Option<AccountInfo>, BackendError> {
        if let Ok(seen) = self.seen.lock()
            && let Some(info) = seen
                .as_ref()
                .filter(|i| i.number.as_str() == number.as_str())
        {
            return Ok(Some(info.clone()));
        }
        let info = self.read_info(number).await?;
        if let (Ok(mut seen), Some(i)) = (self.seen.lock(), info.as_ref()) {
            *seen = Some(i.clone());
        }
        Ok(info)
    }

    async fn read_info(&self, number: &AccountNumber) -> Result<Option<AccountInfo>, BackendError> {
        match self.app.account_summary(number).await {
            Ok(s) => Ok(Some(AccountInfo {
                number: s.account.account_number.clone(),
                zip5: s.account.postal_code.chars().take(5).collect(),
                balance: s.balance,
                due_date: s.current_statement.as_ref().map(|st| st.due_date),
                today: self
                    .app
                    .clock
                    .now()
                    .to_zoned(crate::accounts::tz_named(&s.account.timezone))
                    .date(),
            })),
            Err(ServiceError::NotFound { .. }) => Ok(None),
            Err(e) => Err(backend_err(e)),
        }
    }
}

impl Backend for Line<'_> {
    async fn account(&self, number: &AccountNumber) -> Result<Option<AccountInfo>, BackendError> {
        self.info(number).await
    }

    async fn verification_failed(&self, from: &str) -> Result<bool, BackendError> {
        let limit = self.app.config().ivr.verification_limit;
        Ok(self
            .app
            .rate_limit("ivr.verify", from, limit)
            .await
            .map_err(backend_err)?
            .is_some())
    }

    async fn account_by_phone(&self, phone: &str) -> Result<Option<AccountInfo>, BackendError> {
        let Ok(phone) = crate::accounts::normalize_phone(phone) else {
            return Ok(None);
        };
        let rows = {
            let mut c = self.app.store.read_conn().await.map_err(backend_err)?;
            queries::accounts_by_phone(&mut c, &phone)
                .await
                .map_err(backend_err)?
        };
        // Offered only when the number names exactly one account.
        match rows.as_slice() {
            [one] => match AccountNumber::parse(&one.account_number) {
                Ok(n) => self.info(&n).await,
                Err(_) => Ok(None),
            },
            _ => Ok(None),
        }
    }

    async fn saved_methods(
        &self,
        account: &AccountNumber,
    ) -> Result<Vec<SavedMethodInfo>, BackendError> {
        let list = self
            .app
            .payment_methods(account)
            .await
            .map_err(backend_err)?;
        Ok(list
            .into_iter()
            .map(|m| SavedMethodInfo {
                token: m.id,
                kind: m.summary.kind,
                brand: m.summary.brand,
                bank_type: m.summary.bank_account_type,
                last4: m.summary.last4,
            })
            .collect())
    }

    async fn last_payment(
        &self,
        account: &AccountNumber,
    ) -> Result<Option<LastPayment>, BackendError> {
        let acct = self.app.account(account).await.map_err(backend_err)?;
        let rows = {
            let mut c = self.app.store.read_conn().await.map_err(backend_err)?;
            queries::payments_for_account(&mut c, &acct.id, None, 10)
                .await
                .map_err(backend_err)?
        };
        for v in rows {
            let p = Payment::from_view(&v).map_err(backend_err)?;
            if p.status.is_posted(p.method.kind) {
                return Ok(Some(LastPayment {
                    amount: p.amount,
                    date: p.local_time().date(),
                    confirmation: p.confirmation_number.clone(),
                    kind: p.method.kind,
                    brand: p.method.brand,
                    last4: p.method.last4.clone(),
                }));
            }
        }
        Ok(None)
    }

    async fn pay(&self, req: PayRequest) -> Result<PayOutcome, BackendError> {
        self.forget();
        let idem = Idempotency::new(
            format!("call:{}", self.call_sid),
            format!("payment-{}", req.seq),
        )
        .map_err(backend_err)?;
        let method = match req.method {
            PayMethod::Saved { token } => NewMethod::Saved { token },
            PayMethod::Card {
                number,
                expiry,
                cvc,
                zip,
            } => NewMethod::Card {
                number,
                expiry,
                cvc,
                postal_code: Some(zip),
            },
            PayMethod::Bank {
                routing,
                account,
                account_type,
            } => {
                // The caller verified this account; its name is the one on the debit.
                let mut c = self.app.store.read_conn().await.map_err(backend_err)?;
                let holder_name =
                    billpay_store::queries::account_by_number(&mut c, req.account.as_str())
                        .await
                        .map_err(backend_err)?
                        .map(|a| a.name)
                        .unwrap_or_default();
                NewMethod::Ach {
                    routing,
                    account,
                    account_type,
                    holder_name,
                }
            }
        };
        let request = PaymentRequest {
            account_number: req.account,
            amount: req.amount,
            channel: Channel::Phone,
            method,
            confirm_duplicate: false,
            limit_to_balance: false,
            risk: Some(crate::risk::RiskSource {
                ani: crate::risk::caller_source(self.from),
                ..Default::default()
            }),
            tel_authorization: req.tel_authorization.map(|text| TelAuthorization {
                call_sid: self.call_sid.to_string(),
                text,
                authorized_at: None,
            }),
        };
        let result = match self.app.create_payment_result(idem, request).await {
            Ok(r) => r,
            Err(ServiceError::ProcessorUnavailable) => {
                tracing::info!("phone payment not sent: the processor is unavailable");
                return Ok(PayOutcome::Unavailable);
            }
            Err(
                e @ (ServiceError::Duplicate { .. }
                | ServiceError::Invalid { .. }
                | ServiceError::NotFound { .. }
                | ServiceError::Conflict {
                    code: "payment_refused",
                    ..
                }),
            ) => {
                tracing::info!(error = %e, "phone payment refused");
                return Ok(PayOutcome::Refused);
            }
            Err(e) => return Err(backend_err(e)),
        };
        Ok(match result {
            PaymentResult::Completed(p) => PayOutcome::Paid {
                confirmation: p.confirmation_number,
            },
            PaymentResult::Declined(_, code) => PayOutcome::Declined(code),
            PaymentResult::InDoubt(_) => PayOutcome::InDoubt,
        })
    }

    async fn schedule(&self, req: ScheduleRequest) -> Result<(), BackendError> {
        self.forget();
        let key = format!("call:{}:schedule-{}", self.call_sid, req.seq);
        let new = NewScheduledPayment {
            payment_method: req.token,
            amount: req.amount,
            start: req.date,
            frequency: None,
            end: billpay_domain::recurrence::End::Count(1),
        };
        self.app
            .schedule_payment_by_phone(
                &req.account,
                new,
                &key,
                self.call_sid,
                req.tel_authorization,
            )
            .await
            .map(|_| ())
            .map_err(backend_err)
    }

    async fn autopay(
        &self,
        account: &AccountNumber,
    ) -> Result<Option<SavedMethodInfo>, BackendError> {
        let Some(enrolled) = self.app.autopay(account).await.map_err(backend_err)? else {
            return Ok(None);
        };
        if enrolled.status != "active" {
            return Ok(None);
        }
        let methods = self.saved_methods(account).await?;
        Ok(Some(
            methods
                .into_iter()
                .find(|m| m.token == enrolled.payment_method_id)
                .unwrap_or(SavedMethodInfo {
                    token: enrolled.payment_method_id,
                    kind: billpay_domain::MethodKind::Card,
                    brand: None,
                    bank_type: None,
                    last4: String::new(),
                }),
        ))
    }

    async fn enroll_autopay(
        &self,
        account: &AccountNumber,
        token: &str,
        terms: String,
    ) -> Result<(), BackendError> {
        tracing::info!("caller enrolled in AutoPay by phone");
        self.forget();
        self.app
            .enroll_autopay_by_phone(account, token, terms)
            .await
            .map(|_| ())
            .map_err(backend_err)
    }

    async fn cancel_autopay(&self, account: &AccountNumber) -> Result<(), BackendError> {
        tracing::info!("caller turned AutoPay off by phone");
        self.forget();
        self.app
            .cancel_autopay(account)
            .await
            .map(|_| ())
            .map_err(backend_err)
    }

    fn autopay_notice_days(&self) -> u8 {
        self.app.config().autopay.notice_days
    }

    fn today(&self) -> jiff::civil::Date {
        self.app.clock.now().to_zoned(self.tz()).date()
    }

    fn biller_name(&self) -> String {
        self.app.config().biller.name.clone()
    }

    fn support_phone(&self) -> String {
        self.app.config().biller.support_phone.clone()
    }

    fn agents_open(&self) -> bool {
        let hour = self.app.clock.now().to_zoned(self.tz()).hour();
        let (start, end) = (
            i8::try_from(self.app.config().ivr.agent_hours_start).unwrap_or(0),
            i8::try_from(self.app.config().ivr.agent_hours_end).unwrap_or(24),
        );
        (start..end).contains(&hour)
    }

    fn agent_hours(&self, lang: Language) -> String {
        let c = &self.app.config().ivr;
        let h = |x: u8| match lang {
            Language::En => match x {
                0 | 24 => "midnight".to_string(),
                12 => "noon".to_string(),
                1..=11 => format!("{x} AM"),
                _ => format!("{} PM", x - 12),
            },
            Language::Es => format!("las {x}:00"),
        };
        match lang {
            Language::En => format!(
                "every day from {} to {}, {} time",
                h(c.agent_hours_start),
                h(c.agent_hours_end),
                c.timezone
            ),
            Language::Es => format!(
                "todos los días de {} a {}, hora de {}",
                h(c.agent_hours_start),
                h(c.agent_hours_end),
                c.timezone
            ),
        }
    }
}

fn corrupt(what: &str) -> ServiceError {
    ServiceError::Store(billpay_store::StoreError::Corrupt(format!(
        "ivr call {what}"
    )))
}

impl Billpay {
    /// Answers one webhook of a call: `action` is the path the next keypad entry is posted to
    /// (the turn is appended as `?turn=N`).
    #[tracing::instrument(skip_all, fields(call_sid = %event.call_sid))]
    pub async fn ivr_event(
        &self,
        event: CallEvent,
        action: &str,
    ) -> Result<CallAnswer, ServiceError> {
        if event.call_sid.is_empty() || event.call_sid.len() > CALL_SID_LEN_MAX {
            return Err(ServiceError::invalid("CallSid", "missing or too long"));
        }
        let sid = event.call_sid.clone();
        let existing = {
            let mut c = self.store.relaxed_conn().await?;
            queries::ivr_call(&mut c, &sid).await?
        };
        let now = self.clock.now().as_microsecond();
        let (mut call, mut secrets, turn, created_at) = match &existing {
            None => (Call::default(), Secrets::default(), 0, now),
            Some(row) => {
                if row.status != "active" {
                    let twiml = row.last_twiml.clone().unwrap_or_else(|| {
                        billpay_ivr::twiml::Response::new()
                            .push(billpay_ivr::twiml::Verb::Hangup)
                            .to_xml()
                    });
                    return Ok(CallAnswer {
                        twiml,
                        replayed: true,
                    });
                }
                // A redelivered webhook (the voice URL again, or an action of an earlier
                // turn): answer what was answered, do nothing twice.
                let stale = match event.turn {
                    None => true,
                    Some(t) => t != row.turn,
                };
                if stale && let Some(twiml) = row.last_twiml.clone() {
                    return Ok(CallAnswer {
                        twiml,
                        replayed: true,
                    });
                }
                let call: Call = serde_json::from_str(&row.state).map_err(|_| corrupt("state"))?;
                let secrets = self.open_secrets(&sid, row)?;
                (call, secrets, row.turn, row.created_at)
            }
        };
        let input = match (&existing, event.input) {
            (None, _) => Input::Start {
                from: event.from.clone(),
            },
            (Some(_), Input::Start { .. }) => Input::NoInput,
            (Some(_), i) => i,
        };
        let line = Line {
            app: self,
            call_sid: &sid,
            from: &event.from,
            seen: std::sync::Mutex::new(None),
        };
        let reply: Reply = billpay_ivr::step(&line, &mut call, &mut secrets, input).await;
        let next_turn = turn + 1;
        let transfer = self.ivr_transfer_to(&sid);
        if let (Some(handoff), Step::Ended) = (call.handoff.clone(), call.step) {
            self.handoff_finished(&handoff, &call).await;
        }
        let twiml = reply.to_twiml(&format!("{action}?turn={next_turn}"), &transfer);
        if let billpay_ivr::Next::Transfer { account } = &reply.next {
            tracing::info!(
                verified = account.is_some(),
                reason = call.transfer_reason.as_deref().unwrap_or(""),
                "caller transferred to a representative"
            );
        }
        let row = self.call_row(&sid, &call, next_turn, &twiml, &secrets, created_at, now)?;
        drop(secrets);
        // The call's place in the flow is not money: it never waits for the disk (the SQLite
        // session database, or no WAL-flush wait on PostgreSQL). A payment made on this turn
        // was committed durably on its own before this.
        let expected = existing.as_ref().map(|_| turn);
        let saved = self
            .store
            .write_relaxed(move |c| {
                Box::pin(async move { queries::ivr_call_save(c, &row, expected).await })
            })
            .await?;
        if !saved {
            // Another instance answered this turn first: answer as it did.
            let mut c = self.store.relaxed_conn().await?;
            if let Some(row) = queries::ivr_call(&mut c, &sid).await?
                && let Some(twiml) = row.last_twiml
            {
                return Ok(CallAnswer {
                    twiml,
                    replayed: true,
                });
            }
        }
        Ok(CallAnswer {
            twiml,
            replayed: false,
        })
    }

    /// Where a transfer to a representative goes: the representatives' number, or the queue.
    fn ivr_transfer_to(&self, sid: &str) -> billpay_ivr::TransferTo {
        match &self.config().ivr.agent_number {
            Some(number) => billpay_ivr::TransferTo::Dial {
                number: number.clone(),
                whisper_url: format!("{WHISPER_PATH}?call={}", query_value(sid)),
                status_url: format!("{DIAL_STATUS_PATH}?call={}", query_value(sid)),
            },
            None => billpay_ivr::TransferTo::Queue {
                name: self.config().ivr.agent_queue.clone(),
                wait_url: WAIT_PATH.to_string(),
            },
        }
    }

    /// A caller a representative sent here with a desk code (`HANDOFF_PATH?code=…`): the
    /// call's flow starts again at the card number, for the account and amount the desk set;
    /// unknown, expired or used codes go back to a representative. The code works once.
    #[tracing::instrument(skip_all, fields(call_sid = %call_sid))]
    pub async fn ivr_handoff(
        &self,
        call_sid: &str,
        from: &str,
        code: &str,
        action: &str,
    ) -> Result<CallAnswer, ServiceError> {
        if call_sid.is_empty() || call_sid.len() > CALL_SID_LEN_MAX {
            return Err(ServiceError::invalid("CallSid", "missing or too long"));
        }
        let sid = call_sid.to_string();
        let code: String = code.trim().chars().take(HANDOFF_CODE_LEN_MAX + 1).collect();
        let code_ok = !code.is_empty()
            && code.len() <= HANDOFF_CODE_LEN_MAX
            && code.chars().all(|c| c.is_ascii_digit());
        let existing = {
            let mut c = self.store.relaxed_conn().await?;
            queries::ivr_call(&mut c, &sid).await?
        };
        let now = self.clock.now_micros();
        let mut call = match &existing {
            Some(row) => serde_json::from_str::<Call>(&row.state).map_err(|_| corrupt("state"))?,
            None => Call::default(),
        };
        if call.from.is_empty() {
            call.from = from.to_string();
        }
        // A redelivered hand-off webhook of a call already keying: answer as before.
        if let (Some(row), Some(current)) = (&existing, &call.handoff)
            && row.status == "active"
            && call.step != Step::Ended
        {
            let mut c = self.store.read_conn().await?;
            let same = billpay_store::desk::handoff(&mut c, current)
                .await?
                .is_some_and(|h| h.code == code && h.call_sid.as_deref() == Some(sid.as_str()));
            if same && let Some(twiml) = row.last_twiml.clone() {
                return Ok(CallAnswer {
                    twiml,
                    replayed: true,
                });
            }
        }
        let handoff = if code_ok {
            let mut c = self.store.read_conn().await?;
            billpay_store::desk::open_handoff_by_code(&mut c, &code, now).await?
        } else {
            None
        };
        let claimed = match &handoff {
            Some(h) => {
                let (id, s) = (h.id.clone(), sid.clone());
                self.store
                    .write(move |c| {
                        Box::pin(async move {
                            billpay_store::desk::claim_handoff(c, &id, &s, now).await
                        })
                    })
                    .await?
            }
            None => false,
        };
        let line = Line {
            app: self,
            call_sid: &sid,
            from,
            seen: std::sync::Mutex::new(None),
        };
        let mut secrets = Secrets::default();
        let reply = match (handoff, claimed) {
            (Some(h), true) => match AccountNumber::parse(&h.account_number) {
                Ok(number) => {
                    tracing::info!("caller handed to keypad card entry by a representative");
                    billpay_ivr::begin_handoff(
                        &line,
                        &mut call,
                        &mut secrets,
                        h.id.clone(),
                        &number,
                        h.amount,
                    )
                    .await
                }
                Err(_) => billpay_ivr::handoff_refused(&line, &mut call, &mut secrets),
            },
            _ => {
                tracing::info!("phone hand-off code refused");
                billpay_ivr::handoff_refused(&line, &mut call, &mut secrets)
            }
        };
        if let (Some(handoff), Step::Ended) = (call.handoff.clone(), call.step) {
            self.handoff_finished(&handoff, &call).await;
        }
        let next_turn = existing.as_ref().map(|r| r.turn).unwrap_or(0) + 1;
        let twiml = reply.to_twiml(
            &format!("{action}?turn={next_turn}"),
            &self.ivr_transfer_to(&sid),
        );
        let created_at = existing.as_ref().map(|r| r.created_at).unwrap_or(now);
        let row = self.call_row(&sid, &call, next_turn, &twiml, &secrets, created_at, now)?;
        drop(secrets);
        let known = existing.is_some();
        self.store
            .write_relaxed(move |c| {
                Box::pin(async move {
                    if known {
                        billpay_store::desk::ivr_call_restart(c, &row).await
                    } else {
                        queries::ivr_call_insert(c, &row).await
                    }
                })
            })
            .await?;
        Ok(CallAnswer {
            twiml,
            replayed: false,
        })
    }

    /// Records on the desk how a hand-off's card entry ended (once). A failure here is logged,
    /// never the caller's problem: the call goes on to the representative either way.
    async fn handoff_finished(&self, handoff_id: &str, call: &Call) {
        let reason = call.transfer_reason.as_deref().unwrap_or("");
        let (status, result) = match reason {
            "handoff_paid" => {
                let confirmation = call.last_confirmation.clone().unwrap_or_default();
                let described = match billpay_domain::ConfirmationNumber::parse(&confirmation) {
                    Ok(n) => self.payment_by_confirmation(&n).await.ok(),
                    Err(_) => None,
                };
                let text = match described {
                    Some(p) => format!(
                        "Paid {} with {}. Confirmation number {}.",
                        p.amount,
                        p.method.describe(),
                        p.confirmation_number
                    ),
                    None => format!("Paid. Confirmation number {confirmation}."),
                };
                ("paid", text)
            }
            "handoff_declined" => {
                let why = call
                    .last_decline
                    .as_deref()
                    .and_then(billpay_domain::DeclineCode::parse)
                    .map(|d| format!("{} ({})", d.message(Language::En), d.as_str()))
                    .unwrap_or_else(|| "no reason given".into());
                ("declined", format!("Declined: {why} Nothing was charged."))
            }
            "in_doubt" => (
                "pending",
                "The processor's answer is pending; it resolves by itself. Do not take the payment again.".into(),
            ),
            "handoff_invalid" => return,
            other => (
                "not_completed",
                format!(
                    "Card entry was not completed. {} Nothing was charged.",
                    match other {
                        "handoff_canceled" => "The caller canceled.",
                        "" => "The caller hung up.",
                        o => transfer_reason_words(o),
                    }
                ),
            ),
        };
        let (id, now) = (handoff_id.to_string(), self.clock.now_micros());
        let written = self
            .store
            .write(move |c| {
                Box::pin(async move {
                    billpay_store::desk::finish_handoff(c, &id, status, &result, now).await
                })
            })
            .await;
        if let Err(e) = written {
            tracing::warn!(error = %e, "phone hand-off outcome not recorded");
        }
    }

    /// The provider's call-status callback: a finished call is marked and any sealed digits
    /// are destroyed.
    pub async fn ivr_status(&self, call_sid: &str, status: &str) -> Result<(), ServiceError> {
        let finished = matches!(
            status,
            "completed" | "busy" | "failed" | "no-answer" | "canceled"
        );
        if !finished || call_sid.is_empty() || call_sid.len() > CALL_SID_LEN_MAX {
            return Ok(());
        }
        if let Some((_, call)) = self.call_state(call_sid).await?
            && let Some(handoff) = &call.handoff
            && call.step != Step::Ended
        {
            // The caller hung up while keying: the desk hears so.
            self.handoff_finished(handoff, &call).await;
        }
        let sid = call_sid.to_string();
        let now = self.clock.now().as_microsecond();
        self.store
            .write_relaxed(move |c| {
                Box::pin(async move { queries::ivr_call_end(c, &sid, "completed", now).await })
            })
            .await?;
        Ok(())
    }

    async fn call_state(&self, call_sid: &str) -> Result<Option<(IvrCallRow, Call)>, ServiceError> {
        let Some(row) = self.ivr_call(call_sid).await? else {
            return Ok(None);
        };
        let call: Call = serde_json::from_str(&row.state).map_err(|_| corrupt("state"))?;
        Ok(Some((row, call)))
    }

    /// A call for the agent desk: who called, in which language, the account they verified
    /// (so the representative does not ask again) and why they were transferred.
    pub async fn ivr_call_info(&self, call_sid: &str) -> Result<CallInfo, ServiceError> {
        let (row, call) = self
            .call_state(call_sid)
            .await?
            .ok_or(ServiceError::NotFound { what: "call" })?;
        let ts = |us: i64| jiff::Timestamp::from_microsecond(us).unwrap_or_default();
        Ok(CallInfo {
            call_sid: row.call_sid,
            from: row.from_number,
            status: row.status,
            language: call.lang.domain(),
            verified_account: call.verified_account,
            transfer_reason: call.transfer_reason,
            callback_requested: call.callback_requested,
            last_confirmation: call.last_confirmation,
            started_at: ts(row.created_at),
            updated_at: ts(row.updated_at),
        })
    }

    /// The hold message of a caller waiting in the queue, in their language: place in line
    /// and estimated wait (from the provider's `QueuePosition` and `AvgQueueTime`), then a
    /// pause; the provider asks again when it ends.
    pub async fn ivr_hold(
        &self,
        call_sid: &str,
        position: Option<u32>,
        average_wait_secs: Option<u32>,
    ) -> Result<String, ServiceError> {
        use billpay_ivr::twiml::{Response, Verb};
        let lang = match self.call_state(call_sid).await? {
            Some((_, call)) => call.lang.domain(),
            None => Language::En,
        };
        let mut says = Vec::new();
        if let Some(p) = position.filter(|p| *p > 0) {
            says.push(match lang {
                Language::En => format!("You are number {p} in line."),
                Language::Es => format!("Usted es el número {p} en la fila."),
            });
        }
        says.push(match average_wait_secs.filter(|s| *s > 0) {
            Some(secs) => {
                let minutes = secs.div_ceil(60).max(1);
                match (lang, minutes) {
                    (Language::En, 1) => "The estimated wait is about 1 minute.".to_string(),
                    (Language::En, m) => format!("The estimated wait is about {m} minutes."),
                    (Language::Es, 1) => "El tiempo de espera estimado es de 1 minuto.".to_string(),
                    (Language::Es, m) => format!("El tiempo de espera estimado es de {m} minutos."),
                }
            }
            None => match lang {
                Language::En => "A representative will be with you shortly.".to_string(),
                Language::Es => "Un representante le atenderá en breve.".to_string(),
            },
        });
        says.push(match lang {
            Language::En => "Thank you for waiting.".to_string(),
            Language::Es => "Gracias por esperar.".to_string(),
        });
        let mut r = Response::new();
        for s in says {
            r = r.push(Verb::say(lang, s));
        }
        Ok(r.push(Verb::Pause { secs: 20 }).to_xml())
    }

    /// What the answering representative hears before the caller is connected: the verified
    /// account (name, balance, due date), the caller's language and why they were
    /// transferred, so nobody asks the caller again.
    pub async fn ivr_whisper(&self, call_sid: &str) -> Result<String, ServiceError> {
        use billpay_ivr::twiml::{Response, Verb};
        let lang = Language::En;
        let Some((_, call)) = self.call_state(call_sid).await? else {
            return Ok(Response::new()
                .push(Verb::say(
                    lang,
                    "Incoming billing call. No account details are available.",
                ))
                .to_xml());
        };
        let mut says = vec!["Incoming billing call.".to_string()];
        let verified = call
            .verified_account
            .as_deref()
            .and_then(|n| AccountNumber::parse(n).ok());
        match verified {
            Some(number) => {
                let summary = self.account_summary(&number).await?;
                let last4: String = number
                    .as_str()
                    .chars()
                    .rev()
                    .take(4)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                says.push(format!(
                    "The caller verified the account ending in {}, {}, with its service ZIP code.",
                    billpay_ivr::spoken_digits(&last4),
                    summary.account.name
                ));
                let balance = summary.balance.spoken(lang);
                says.push(
                    match summary.current_statement.as_ref().map(|s| s.due_date) {
                        Some(due) => format!(
                            "Balance {balance}, due {}.",
                            billpay_ivr::spoken_date(due, lang)
                        ),
                        None => format!("Balance {balance}."),
                    },
                );
            }
            None => says.push("The caller has not verified an account.".to_string()),
        }
        if call.lang == billpay_ivr::Lang::Es {
            says.push("The caller chose Spanish.".to_string());
        }
        if let Some(reason) = &call.transfer_reason {
            says.push(transfer_reason_words(reason).to_string());
        }
        let mut r = Response::new();
        for s in says {
            r = r.push(Verb::say(lang, s));
        }
        Ok(r.to_xml())
    }

    /// How a transfer's dial ended (`DialCallStatus`). After a conversation the call is over;
    /// when nobody answered (busy, no answer, failed) the caller hears so in their language and
    /// that a call back is noted, and the call is marked for one.
    pub async fn ivr_dial_result(
        &self,
        call_sid: &str,
        dial_status: &str,
    ) -> Result<String, ServiceError> {
        use billpay_ivr::twiml::{Response, Verb};
        if dial_status == "completed" || dial_status == "answered" {
            return Ok(Response::new().push(Verb::Hangup).to_xml());
        }
        let mut lang = Language::En;
        if let Some((_, mut call)) = self.call_state(call_sid).await? {
            lang = call.lang.domain();
            call.callback_requested = true;
            let state = serde_json::to_string(&call).map_err(|_| corrupt("state"))?;
            let (sid, now) = (call_sid.to_string(), self.clock.now_micros());
            self.store
                .write_relaxed(move |c| {
                    Box::pin(async move { queries::ivr_call_set_state(c, &sid, &state, now).await })
                })
                .await?;
            tracing::info!(dial_status, "transfer not answered: call back requested");
        }
        let said = match lang {
            Language::En => {
                "All our representatives are busy right now. We have noted that you would like a call back at the number you are calling from. Thank you for calling. Goodbye."
            }
            Language::Es => {
                "Todos nuestros representantes están ocupados en este momento. Hemos anotado que desea que le llamemos al número desde el que llama. Gracias por llamar. Adiós."
            }
        };
        Ok(Response::new()
            .push(Verb::say(lang, said))
            .push(Verb::Hangup)
            .to_xml())
    }

    /// The stored state of a call (for tests and the agent desk).
    pub async fn ivr_call(&self, call_sid: &str) -> Result<Option<IvrCallRow>, ServiceError> {
        let mut c = self.store.relaxed_conn().await?;
        Ok(queries::ivr_call(&mut c, call_sid).await?)
    }

    /// The TEL authorization stored with a bank payment taken by phone.
    pub async fn tel_authorization(
        &self,
        payment_id: &str,
    ) -> Result<Option<TelAuthorizationRow>, ServiceError> {
        let mut c = self.store.read_conn().await?;
        Ok(queries::tel_authorization(&mut c, payment_id).await?)
    }

    /// A call's stored state after a turn: where it is in the flow, the TwiML it was answered
    /// with, and the digits keyed so far, sealed by the vault (none when nothing was keyed).
    #[allow(clippy::too_many_arguments)]
    fn call_row(
        &self,
        sid: &str,
        call: &Call,
        turn: i64,
        twiml: &str,
        secrets: &Secrets,
        created_at: i64,
        now: i64,
    ) -> Result<IvrCallRow, ServiceError> {
        let sealed = if secrets.is_empty() {
            None
        } else {
            Some(self.seal_secrets(sid, secrets)?)
        };
        Ok(IvrCallRow {
            call_sid: sid.to_string(),
            from_number: call.from.clone(),
            status: if call.step == Step::Ended {
                "ended".into()
            } else {
                "active".into()
            },
            turn,
            state: serde_json::to_string(call).map_err(|_| corrupt("state"))?,
            last_twiml: Some(twiml.to_string()),
            sealed_kek_version: sealed.as_ref().map(|s| i64::from(s.kek_version)),
            sealed_wrapped_key: sealed.as_ref().map(|s| s.wrapped_key.clone()),
            sealed_ciphertext: sealed.map(|s| s.ciphertext),
            created_at,
            updated_at: now,
        })
    }

    fn seal_secrets(&self, sid: &str, secrets: &Secrets) -> Result<Sealed, ServiceError> {
        let vault = self.vault.as_ref().ok_or_else(|| ServiceError::Conflict {
            code: "vault_unavailable",
            message: "no vault keyring: card and bank details cannot be taken by phone".into(),
        })?;
        let plain =
            zeroize::Zeroizing::new(serde_json::to_vec(secrets).map_err(|_| corrupt("secrets"))?);
        let random = self.random.clone();
        let rng = move |b: &mut [u8]| random.fill(b);
        vault
            .keyring()
            .seal(sid, &plain, &rng)
            .map_err(|e| corrupt(&format!("sealing failed: {e}")))
    }

    fn open_secrets(&self, sid: &str, row: &IvrCallRow) -> Result<Secrets, ServiceError> {
        let (Some(v), Some(wk), Some(ct)) = (
            row.sealed_kek_version,
            row.sealed_wrapped_key.clone(),
            row.sealed_ciphertext.clone(),
        ) else {
            return Ok(Secrets::default());
        };
        let vault = self
            .vault
            .as_ref()
            .ok_or_else(|| corrupt("sealed without a vault"))?;
        let sealed = Sealed {
            kek_version: u32::try_from(v).map_err(|_| corrupt("key version"))?,
            wrapped_key: wk,
            ciphertext: ct,
        };
        let plain = vault
            .open(sid, &sealed)
            .map_err(|_| corrupt("sealed digits do not open"))?;
        serde_json::from_slice(&plain).map_err(|_| corrupt("secrets"))
    }
}

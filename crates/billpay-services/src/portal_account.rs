//! What a signed-in customer manages in the portal: saved payment methods and AutoPay. Each
//! function takes the session and acts only on its signed-in customer's account; the vault and
//! AutoPay services do the work.

use billpay_domain::{AccountNumber, CardExpiry, CardNumber, Channel, Money, PostalCode, Timing};
use billpay_store::queries;
use billpay_store::rows::OutboxRow;

use crate::NewMethod;
use crate::autopay::Autopay;
use crate::portal::{EnteredMethod, FieldError, PortalSession};
use crate::vault::{Actor, MethodToSave, MethodUpdate, SavedMethod};
use crate::{Billpay, ServiceError};

/// The signed-in customer's account and who is acting, or NotFound.
fn signed_in(session: &PortalSession) -> Result<(AccountNumber, Actor), ServiceError> {
    match (&session.customer_id, session.verified_account()) {
        (Some(customer), Some(number)) => Ok((
            number,
            Actor {
                id: customer.clone(),
                channel: Channel::Web,
            },
        )),
        _ => Err(ServiceError::NotFound { what: "customer" }),
    }
}

impl Billpay {
    pub async fn portal_methods(
        &self,
        session: &PortalSession,
    ) -> Result<Vec<SavedMethod>, ServiceError> {
        let (number, _) = signed_in(session)?;
        self.payment_methods(&number).await
    }

    /// Saves a card typed by the customer (no security code: it is never kept).
    pub async fn portal_save_card(
        &self,
        session: &PortalSession,
        card_number: &str,
        exp_month: &str,
        exp_year: &str,
        postal_code: &str,
        make_default: bool,
    ) -> Result<Result<SavedMethod, Vec<FieldError>>, ServiceError> {
        let (number, actor) = signed_in(session)?;
        let mut errors = Vec::new();
        let card = CardNumber::parse(card_number)
            .map_err(|_| {
                errors.push(FieldError {
                    field: "card_number",
                    message: "Enter the card number as it appears on the card (13 to 19 digits); this one is not a valid card number.".into(),
                })
            })
            .ok();
        let month = exp_month.trim().parse::<u8>().ok();
        let year = exp_year
            .trim()
            .parse::<u16>()
            .ok()
            .map(|y| if y < 100 { 2000 + y } else { y });
        let today = self.clock.now().to_zoned(jiff::tz::TimeZone::UTC).date();
        let expiry = match (month, year) {
            (Some(m), Some(y)) => match CardExpiry::new(m, y) {
                Ok(e) if !e.is_expired(today) => Some(e),
                Ok(_) => {
                    errors.push(FieldError {
                        field: "exp_year",
                        message: "This card has expired.".into(),
                    });
                    None
                }
                Err(_) => None,
            },
            _ => None,
        };
        if expiry.is_none() && !errors.iter().any(|e| e.field == "exp_year") {
            errors.push(FieldError {
                field: "exp_month",
                message: "Enter the expiration month (1 to 12) and year as on the card.".into(),
            });
        }
        let zip = PostalCode::parse(postal_code)
            .map_err(|_| {
                errors.push(FieldError {
                    field: "postal_code",
                    message: "Enter the billing ZIP code of the card (5 digits).".into(),
                })
            })
            .ok();
        let (Some(card), Some(expiry), Some(zip)) = (card, expiry, zip) else {
            return Ok(Err(errors));
        };
        let saved = self
            .save_payment_method(
                &number,
                MethodToSave::Card {
                    number: card,
                    expiry,
                    postal_code: Some(zip),
                },
                MethodUpdate {
                    make_default,
                    ..MethodUpdate::default()
                },
                actor,
            )
            .await?;
        Ok(Ok(saved.0))
    }

    /// Saves a bank account typed by the customer (checked like a quick-pay bank account; the
    /// first debit from it is validated as every new bank account is).
    pub async fn portal_save_bank(
        &self,
        session: &PortalSession,
        entered: &EnteredMethod,
        make_default: bool,
    ) -> Result<Result<SavedMethod, Vec<FieldError>>, ServiceError> {
        let (number, actor) = signed_in(session)?;
        if entered.kind != "ach" {
            return Ok(Err(vec![FieldError {
                field: "routing_number",
                message: "Enter a bank account.".into(),
            }]));
        }
        let today = self.clock.now().to_zoned(jiff::tz::TimeZone::UTC).date();
        let (routing, account, account_type, holder_name) = match entered.parse(today) {
            Ok(NewMethod::Ach {
                routing,
                account,
                account_type,
                holder_name,
            }) => (routing, account, account_type, holder_name),
            Ok(_) => return Ok(Err(Vec::new())),
            Err(errors) => return Ok(Err(errors)),
        };
        let saved = self
            .save_payment_method(
                &number,
                MethodToSave::Ach {
                    routing,
                    account,
                    account_type,
                    holder_name,
                },
                MethodUpdate {
                    make_default,
                    ..MethodUpdate::default()
                },
                actor,
            )
            .await?;
        Ok(Ok(saved.0))
    }

    pub async fn portal_remove_method(
        &self,
        session: &PortalSession,
        id: &str,
    ) -> Result<(), ServiceError> {
        let (number, actor) = signed_in(session)?;
        self.delete_payment_method(&number, id, actor).await
    }

    pub async fn portal_make_default(
        &self,
        session: &PortalSession,
        id: &str,
    ) -> Result<SavedMethod, ServiceError> {
        let (number, actor) = signed_in(session)?;
        self.update_payment_method(
            &number,
            id,
            MethodUpdate {
                make_default: true,
                ..MethodUpdate::default()
            },
            actor,
        )
        .await
    }

    pub async fn portal_autopay(
        &self,
        session: &PortalSession,
    ) -> Result<Option<Autopay>, ServiceError> {
        let (number, _) = signed_in(session)?;
        self.autopay(&number).await
    }

    /// The terms the customer is about to accept.
    pub async fn portal_autopay_terms(
        &self,
        session: &PortalSession,
        token: &str,
        timing: Timing,
        maximum: Option<Money>,
    ) -> Result<String, ServiceError> {
        let (number, _) = signed_in(session)?;
        self.autopay_terms(&number, token, timing, maximum).await
    }

    /// Turns AutoPay on with the terms the customer accepted, and emails them the terms.
    pub async fn portal_enroll_autopay(
        &self,
        session: &PortalSession,
        token: &str,
        timing: Timing,
        maximum: Option<Money>,
    ) -> Result<Autopay, ServiceError> {
        let (number, _) = signed_in(session)?;
        let enrolled = self
            .enroll_autopay(&number, token, timing, maximum, Channel::Web)
            .await?;
        let account = self.account(&number).await?;
        if let Some(email) = account.email {
            let method = self
                .payment_methods(&number)
                .await?
                .into_iter()
                .find(|m| m.id == enrolled.payment_method_id)
                .map(|m| m.summary.describe())
                .unwrap_or_else(|| "your saved payment method".into());
            let row = OutboxRow {
                id: self.new_id("msg"),
                kind: "email.autopay_enrolled".into(),
                dedupe_key: format!(
                    "autopay_enrolled:{}:{}",
                    account.id,
                    enrolled.enrolled_at.as_microsecond()
                ),
                recipient: email,
                payload_json: serde_json::json!({
                    "method": method,
                    "terms": enrolled.authorization_text,
                })
                .to_string(),
                created_at: self.clock.now_micros(),
                sent_at: None,
                attempts: 0,
            };
            self.store
                .write(move |c| Box::pin(async move { queries::insert_outbox(c, &row).await }))
                .await?;
        }
        Ok(enrolled)
    }

    pub async fn portal_cancel_autopay(&self, session: &PortalSession) -> Result<(), ServiceError> {
        let (number, _) = signed_in(session)?;
        self.cancel_autopay(&number).await.map(|_| ())
    }
}

/// How often a payment scheduled in the portal repeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Repeat {
    Once,
    Weekly,
    Biweekly,
    Monthly,
}

impl Billpay {
    pub async fn portal_scheduled(
        &self,
        session: &PortalSession,
    ) -> Result<Vec<crate::autopay::ScheduledPayment>, ServiceError> {
        let (number, _) = signed_in(session)?;
        self.scheduled_payments(&number).await
    }

    /// Schedules a payment from a saved method: once, on a date from tomorrow up to the
    /// current bill's due date, or monthly from a date until canceled.
    pub async fn portal_schedule(
        &self,
        session: &PortalSession,
        token: &str,
        amount: Money,
        date: jiff::civil::Date,
        repeat: Repeat,
    ) -> Result<Result<crate::autopay::ScheduledPayment, Vec<FieldError>>, ServiceError> {
        let (number, _) = signed_in(session)?;
        let summary = self.account_summary(&number).await?;
        let tz =
            jiff::tz::TimeZone::get(&summary.account.timezone).unwrap_or(jiff::tz::TimeZone::UTC);
        let today = self.clock.now().to_zoned(tz).date();
        let mut errors = Vec::new();
        if date <= today {
            errors.push(FieldError {
                field: "date",
                message: "Choose a date after today. To pay today, use Pay now.".into(),
            });
        }
        if repeat == Repeat::Once
            && let Some(due) = summary.current_statement.as_ref().map(|s| s.due_date)
            && date > due
        {
            errors.push(FieldError {
                field: "date",
                message: format!(
                    "Choose a date on or before the due date, {}.",
                    due.strftime("%B %-d, %Y")
                ),
            });
        }
        if !amount.is_positive() {
            errors.push(FieldError {
                field: "amount",
                message: "Enter an amount more than $0.00.".into(),
            });
        }
        if !errors.is_empty() {
            return Ok(Err(errors));
        }
        let (frequency, end) = match repeat {
            Repeat::Once => (None, billpay_domain::End::Count(1)),
            Repeat::Weekly => (
                Some(billpay_domain::Frequency::Weekly),
                billpay_domain::End::Never,
            ),
            Repeat::Biweekly => (
                Some(billpay_domain::Frequency::Biweekly),
                billpay_domain::End::Never,
            ),
            Repeat::Monthly => (
                Some(billpay_domain::Frequency::Monthly),
                billpay_domain::End::Never,
            ),
        };
        let made = self
            .schedule_payment(
                &number,
                crate::autopay::NewScheduledPayment {
                    payment_method: token.to_string(),
                    amount,
                    start: date,
                    frequency,
                    end,
                },
                Channel::Web,
            )
            .await;
        match made {
            Ok(s) => Ok(Ok(s)),
            Err(ServiceError::Invalid { message, param }) => Ok(Err(vec![FieldError {
                field: if param.contains("method") {
                    "method"
                } else {
                    "amount"
                },
                message,
            }])),
            Err(e) => Err(e),
        }
    }

    /// One of the signed-in account's scheduled payments; NotFound for anyone else's.
    pub async fn portal_my_scheduled(
        &self,
        session: &PortalSession,
        id: &str,
    ) -> Result<crate::autopay::ScheduledPayment, ServiceError> {
        let (number, _) = signed_in(session)?;
        self.scheduled_payments(&number)
            .await?
            .into_iter()
            .find(|s| s.id == id)
            .ok_or(ServiceError::NotFound {
                what: "scheduled payment",
            })
    }

    /// Changes the amount and method of one of the signed-in account's scheduled payments
    /// (its next occurrences; one already started is not changed).
    pub async fn portal_change_scheduled(
        &self,
        session: &PortalSession,
        id: &str,
        token: &str,
        amount: Money,
    ) -> Result<Result<crate::autopay::ScheduledPayment, Vec<FieldError>>, ServiceError> {
        self.portal_my_scheduled(session, id).await?;
        if !amount.is_positive() {
            return Ok(Err(vec![FieldError {
                field: "amount",
                message: "Enter an amount more than $0.00.".into(),
            }]));
        }
        match self
            .update_scheduled_payment(id, Some(amount), Some(token.to_string()))
            .await
        {
            Ok(s) => Ok(Ok(s)),
            Err(ServiceError::Invalid { message, param }) => Ok(Err(vec![FieldError {
                field: if param.contains("method") {
                    "method"
                } else {
                    "amount"
                },
                message,
            }])),
            Err(ServiceError::Conflict { message, .. }) => Ok(Err(vec![FieldError {
                field: "amount",
                message: format!("This payment cannot be changed: {message}."),
            }])),
            Err(e) => Err(e),
        }
    }

    /// Cancels one of the signed-in account's scheduled payments.
    pub async fn portal_cancel_scheduled(
        &self,
        session: &PortalSession,
        id: &str,
    ) -> Result<(), ServiceError> {
        self.portal_my_scheduled(session, id).await?;
        self.cancel_scheduled_payment(id).await.map(|_| ())
    }
}

/// One reminder channel as the notifications page shows it.
#[derive(Clone, Debug)]
pub struct NotificationChoice {
    /// email or sms
    pub channel: &'static str,
    pub granted: bool,
    /// What the customer agrees to by ticking it.
    pub text: String,
    /// Whether the account can use it (text messages need a phone number on file).
    pub available: bool,
}

impl Billpay {
    pub async fn portal_statements(
        &self,
        session: &PortalSession,
    ) -> Result<Vec<crate::Statement>, ServiceError> {
        let (number, _) = signed_in(session)?;
        let mut list = self.statements(&number).await?;
        list.sort_by_key(|s| std::cmp::Reverse(s.statement_date));
        Ok(list)
    }

    pub async fn portal_notifications(
        &self,
        session: &PortalSession,
    ) -> Result<Vec<NotificationChoice>, ServiceError> {
        let (number, _) = signed_in(session)?;
        let account = self.account(&number).await?;
        let rows = {
            let mut c = self.store.read_conn().await?;
            billpay_store::collections::consents_of(&mut c, &account.id).await?
        };
        let granted = |ch: &str| {
            rows.iter()
                .any(|r| r.channel == ch && r.status == "granted")
        };
        Ok(vec![
            NotificationChoice {
                channel: "email",
                granted: granted("email"),
                text: self.consent_text("email", true),
                available: account.email.is_some(),
            },
            NotificationChoice {
                channel: "sms",
                granted: granted("sms"),
                text: self.consent_text("sms", true),
                available: account.phone.is_some(),
            },
        ])
    }

    /// Records the customer's reminder choices as consents given or withdrawn on the web
    /// (only the channels that changed).
    pub async fn portal_set_notifications(
        &self,
        session: &PortalSession,
        email: bool,
        sms: bool,
    ) -> Result<(), ServiceError> {
        let (number, _) = signed_in(session)?;
        let now = self.portal_notifications(session).await?;
        for choice in now {
            let want = if choice.channel == "email" {
                email
            } else {
                sms
            };
            if want != choice.granted && (choice.available || !want) {
                self.set_consent(&number, choice.channel, want, "web")
                    .await?;
            }
        }
        Ok(())
    }
}

/// A payment arrangement as the customer sees it.
#[derive(Clone, Debug)]
pub struct ArrangementView {
    /// "extension" or "installments"
    pub kind: String,
    pub past_due: Money,
    /// (due date, amount) of each payment.
    pub installments: Vec<(jiff::civil::Date, Money)>,
}

impl Billpay {
    /// The signed-in account's active payment arrangement, if any.
    pub async fn portal_arrangement(
        &self,
        session: &PortalSession,
    ) -> Result<Option<ArrangementView>, ServiceError> {
        let (number, _) = signed_in(session)?;
        let account = self.account(&number).await?;
        let mut c = self.store.read_conn().await?;
        let Some(row) = billpay_store::collections::active_arrangement(&mut c, &account.id).await?
        else {
            return Ok(None);
        };
        let installments = billpay_store::collections::installments_of(&mut c, &row.id)
            .await?
            .into_iter()
            .filter_map(|i| {
                i.due_date
                    .parse::<jiff::civil::Date>()
                    .ok()
                    .map(|d| (d, Money::new(i.amount, account.currency)))
            })
            .collect();
        Ok(Some(ArrangementView {
            kind: row.kind,
            past_due: Money::new(row.past_due, account.currency),
            installments,
        }))
    }

    /// Asks for a payment arrangement within the biller's rules. A refusal comes back in the
    /// customer's words (nothing past due, too small, too many broken before, dates out of
    /// range, one already in place).
    pub async fn portal_request_arrangement(
        &self,
        session: &PortalSession,
        kind: billpay_domain::ArrangementKind,
    ) -> Result<Result<(), String>, ServiceError> {
        let (number, actor) = signed_in(session)?;
        match self
            .create_arrangement(&number, kind, &format!("web:{}", actor.id))
            .await
        {
            Ok(_) => Ok(Ok(())),
            Err(ServiceError::Invalid { message, .. })
            | Err(ServiceError::Conflict { message, .. }) => {
                let mut m = message;
                if let Some(first) = m.get(..1) {
                    let upper = first.to_uppercase();
                    m.replace_range(..1, &upper);
                }
                if !m.ends_with('.') {
                    m.push('.');
                }
                Ok(Err(m))
            }
            Err(e) => Err(e),
        }
    }
}

//! What a signed-in customer manages in the portal: saved payment methods and AutoPay. Each
//! function takes the session and acts only on its signed-in customer's account; the vault and
//! AutoPay services do the work.

use billpay_domain::{AccountNumber, CardExpiry, CardNumber, Channel, Money, PostalCode, Timing};
use billpay_store::queries;
use billpay_store::rows::OutboxRow;

use crate::autopay::Autopay;
use crate::portal::{FieldError, PortalSession};
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

//! How a signed-in customer confirms sign-ins: a code by email (the default), by text message
//! to a number proven with a texted code, or from an authenticator app (TOTP, added by scanning
//! a QR code and entering its first code). Every change is confirmed by email to the address on
//! file and audited.

use billpay_domain::{Channel, SecretString};
use billpay_store::portal as q;
use billpay_store::rows::OutboxRow;

use crate::portal::{FieldError, PortalSession, SecondFactor};
use crate::portal_auth::{CodeTo, customer_owner, phone_hint};
use crate::totp::Enrolment;
use crate::vault::{Actor, audit};
use crate::{Billpay, ServiceError};

/// What the security page shows about sign-in codes.
#[derive(Clone, Debug)]
pub struct SigninMethod {
    pub factor: SecondFactor,
    /// "your phone ending in 34" when codes are texted.
    pub phone_hint: Option<String>,
    /// Whether texts can be sent at all (a provider is configured, or the demo mailbox shows
    /// them).
    pub texts_available: bool,
}

/// A phone number as typed, as E.164: a 10-digit North American number (with or without a
/// leading 1) gets +1; anything else must be typed with + and its country code.
pub fn normalize_phone(input: &str) -> Option<String> {
    let t = input.trim();
    let digits: String = t.chars().filter(char::is_ascii_digit).collect();
    let allowed = t
        .chars()
        .all(|c| c.is_ascii_digit() || " +-().".contains(c));
    if !allowed || t.chars().filter(|c| *c == '+').count() > 1 {
        return None;
    }
    let e164 = if t.starts_with('+') {
        format!("+{digits}")
    } else if digits.len() == 10 {
        format!("+1{digits}")
    } else if digits.len() == 11 && digits.starts_with('1') {
        format!("+{digits}")
    } else {
        return None;
    };
    let national = &e164[1..];
    ((8..=15).contains(&national.len()) && !national.starts_with('0')).then_some(e164)
}

fn signed_in_customer(session: &PortalSession) -> Result<String, ServiceError> {
    session
        .customer_id
        .clone()
        .filter(|_| session.account_id.is_some())
        .ok_or(ServiceError::NotFound { what: "customer" })
}

impl Billpay {
    /// How the signed-in customer confirms sign-ins now.
    pub async fn portal_signin_method(
        &self,
        session: &PortalSession,
    ) -> Result<SigninMethod, ServiceError> {
        let id = signed_in_customer(session)?;
        let row = {
            let mut c = self.store.read_conn().await?;
            q::customer(&mut c, &id).await?
        }
        .ok_or(ServiceError::NotFound { what: "customer" })?;
        let factor = SecondFactor::from_column(&row.second_factor);
        Ok(SigninMethod {
            factor,
            phone_hint: row
                .sms_phone
                .as_deref()
                .filter(|_| factor == SecondFactor::Sms)
                .map(phone_hint),
            texts_available: self.texts_available(),
        })
    }

    fn texts_available(&self) -> bool {
        self.config().sms.is_some() || self.config().portal.demo_mailbox
    }

    /// Starts adding an authenticator app: a new secret to scan (the one pending before, if
    /// any, stops working).
    pub async fn portal_totp_begin(
        &self,
        session: &PortalSession,
    ) -> Result<Enrolment, ServiceError> {
        let id = signed_in_customer(session)?;
        let label = self.customer_email(&id).await?;
        self.totp_begin(&customer_owner(&id), &label).await
    }

    /// The authenticator being added, again (after a wrong code), if it is still good.
    pub async fn portal_totp_pending(
        &self,
        session: &PortalSession,
    ) -> Result<Option<Enrolment>, ServiceError> {
        let id = signed_in_customer(session)?;
        let label = self.customer_email(&id).await?;
        self.totp_pending(&customer_owner(&id), &label).await
    }

    /// Finishes adding the authenticator app with its first code; from then on sign-ins ask
    /// for its codes.
    pub async fn portal_totp_confirm(
        &self,
        session: &PortalSession,
        code: &str,
    ) -> Result<Result<(), String>, ServiceError> {
        let id = signed_in_customer(session)?;
        if !self.totp_confirm(&customer_owner(&id), code).await? {
            return Ok(Err(
                "That code is not right. Enter the 6-digit code the app shows for this account now."
                    .into(),
            ));
        }
        self.portal_set_factor(session, &id, SecondFactor::Totp, None)
            .await?;
        Ok(Ok(()))
    }

    /// Texts a code to a number the customer wants sign-in codes sent to; the number is used
    /// once that code comes back.
    pub async fn portal_text_codes_begin(
        &self,
        session: &mut PortalSession,
        phone: &str,
    ) -> Result<Result<(), FieldError>, ServiceError> {
        let id = signed_in_customer(session)?;
        if !self.texts_available() {
            return Ok(Err(FieldError {
                field: "phone",
                message:
                    "Text messages are not available here; use email codes or an authenticator app."
                        .into(),
            }));
        }
        let Some(e164) = normalize_phone(phone) else {
            return Ok(Err(FieldError {
                field: "phone",
                message: "Enter a mobile number that can receive texts: 10 digits, like 555 201 0134, or + and the country code.".into(),
            }));
        };
        self.portal_send_code_to(&id, "phone", CodeTo::Text(e164.clone()))
            .await?;
        session.data.pending_phone = Some(e164);
        self.portal_save(session).await?;
        Ok(Ok(()))
    }

    /// The hint of the number a code was just texted to, if one is being proven.
    pub fn portal_text_codes_pending(&self, session: &PortalSession) -> Option<String> {
        session.data.pending_phone.as_deref().map(phone_hint)
    }

    /// The texted code came back: sign-in codes go to that number from now on.
    pub async fn portal_text_codes_confirm(
        &self,
        session: &mut PortalSession,
        code: &str,
    ) -> Result<Result<(), String>, ServiceError> {
        let id = signed_in_customer(session)?;
        let Some(phone) = session.data.pending_phone.clone() else {
            return Ok(Err("Enter the number to text codes to first.".into()));
        };
        if let Err(why) = self.portal_check_sent_code(&id, "phone", code).await? {
            return Ok(Err(why));
        }
        self.portal_redact_codes().await?;
        session.data.pending_phone = None;
        self.portal_save(session).await?;
        self.portal_set_factor(session, &id, SecondFactor::Sms, Some(phone))
            .await?;
        Ok(Ok(()))
    }

    /// Back to codes by email; the password confirms it is the customer. Any authenticator
    /// secret is deleted.
    pub async fn portal_email_codes(
        &self,
        session: &PortalSession,
        password: &SecretString,
    ) -> Result<Result<(), FieldError>, ServiceError> {
        let id = signed_in_customer(session)?;
        if !self.portal_password_is(&id, password).await? {
            return Ok(Err(FieldError {
                field: "password",
                message: "That is not your current password.".into(),
            }));
        }
        self.portal_set_factor(session, &id, SecondFactor::Email, None)
            .await?;
        Ok(Ok(()))
    }

    async fn customer_email(&self, id: &str) -> Result<String, ServiceError> {
        let mut c = self.store.read_conn().await?;
        Ok(q::customer(&mut c, id)
            .await?
            .ok_or(ServiceError::NotFound { what: "customer" })?
            .email)
    }

    /// Records the new method, tells the customer by email, audits it, and drops the
    /// authenticator secret when the app is no longer the method.
    async fn portal_set_factor(
        &self,
        session: &PortalSession,
        id: &str,
        factor: SecondFactor,
        phone: Option<String>,
    ) -> Result<(), ServiceError> {
        let email = self.customer_email(id).await?;
        let account_id = session.account_id.clone().unwrap_or_default();
        let method = match (factor, &phone) {
            (SecondFactor::Totp, _) => "an authenticator app".to_string(),
            (SecondFactor::Sms, Some(p)) => format!("a text message to {}", phone_hint(p)),
            _ => "an email to this address".to_string(),
        };
        let now = self.clock.now_micros();
        let notice = OutboxRow {
            id: self.new_id("msg"),
            kind: "email.signin_method_changed".into(),
            dedupe_key: format!("signin_method:{id}:{now}"),
            recipient: email,
            payload_json: serde_json::json!({ "method": method }).to_string(),
            created_at: now,
            sent_at: None,
            attempts: 0,
        };
        let audit_id = self.new_id("aud");
        let customer = id.to_string();
        self.store
            .write(move |c| {
                Box::pin(async move {
                    q::set_second_factor(c, &customer, factor.as_str(), phone.as_deref(), now)
                        .await?;
                    billpay_store::queries::insert_outbox(c, &notice).await?;
                    let actor = Actor {
                        id: customer.clone(),
                        channel: Channel::Web,
                    };
                    audit(
                        c,
                        audit_id,
                        now,
                        &actor,
                        "portal.signin_method",
                        &customer,
                        &account_id,
                        serde_json::json!({ "method": factor.as_str() }),
                    )
                    .await
                })
            })
            .await?;
        if factor != SecondFactor::Totp {
            self.totp_remove(&customer_owner(id)).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::normalize_phone;

    #[test]
    fn phone_numbers_become_e164() {
        assert_eq!(
            normalize_phone("(555) 201-0134").as_deref(),
            Some("+15552010134")
        );
        assert_eq!(
            normalize_phone("1 555 201 0134").as_deref(),
            Some("+15552010134")
        );
        assert_eq!(
            normalize_phone("+44 20 7946 0958").as_deref(),
            Some("+442079460958")
        );
        assert_eq!(normalize_phone("555-0134"), None);
        assert_eq!(normalize_phone("call me"), None);
        assert_eq!(normalize_phone("+0 123 456 789"), None);
        assert_eq!(normalize_phone("++15552010134"), None);
        assert_eq!(normalize_phone(""), None);
    }
}

//! Staff of the agent desk and what they may do.
//!
//! Representatives (agent), supervisors and administrators sign in with a password (argon2id,
//! locked for 30 minutes after 10 failures, PCI DSS 8.3.4) and then, always, an authenticator-app code (PCI
//! DSS 8.4.2): there is no desk session without both. Someone without an authenticator yet
//! enrols one (QR code) as the second step of the first sign-in. Desk sessions are their own
//! table and cookie, apart from customers'; the session id changes when the sign-in completes.
//!
//! Roles limit actions: only a supervisor (or administrator) waives a fee above
//! [`DeskConfig::agent_waiver_max_minor`]. Every desk action on an account or a conversation
//! writes an audit record in the same transaction or right after it, naming the staff member.

use billpay_domain::{AccountNumber, Money};
use billpay_store::chat::{self as q, StaffRow, StaffSessionRow};
use billpay_store::queries;
use billpay_store::rows::AuditRow;
use jiff::SignedDuration;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::chat::{
    CONVERSATIONS_LIST_MAX, ChatEvent, Conversation, ConversationState, NewMessage, Sender,
    parse_message,
};
use crate::portal::SessionToken;
use crate::portal_auth::{
    SIGNIN_FAILURES_MAX, decoy_hash, hash_password, verify_password_off_thread,
};

use crate::{AccountSummary, Billpay, Payment, ServiceError, Statement};

/// How long a staff member's password is refused after [`SIGNIN_FAILURES_MAX`] wrong ones:
/// PCI DSS 8.3.4 asks for at least 30 minutes (customers' lock is shorter).
pub const STAFF_SIGNIN_LOCK: jiff::SignedDuration = jiff::SignedDuration::from_mins(30);

/// A desk session ends after this long without a request.
pub const STAFF_SESSION_IDLE: SignedDuration = SignedDuration::from_mins(15);
/// And this long after it started, however busy.
pub const STAFF_SESSION_ABSOLUTE: SignedDuration = SignedDuration::from_hours(10);
/// Payments shown on the account panel.
pub const PANEL_PAYMENTS_MAX: i64 = 25;

/// The desk's settings.
#[derive(Clone, Debug)]
pub struct DeskConfig {
    /// The largest fee a representative may waive; above it, a supervisor must.
    pub agent_waiver_max_minor: i64,
    /// The largest payment a representative may take or schedule with a saved card, or send
    /// to the phone line for card entry; above it, a supervisor must.
    pub agent_payment_max_minor: i64,
}

impl Default for DeskConfig {
    fn default() -> Self {
        DeskConfig {
            agent_waiver_max_minor: 1_000,
            agent_payment_max_minor: 50_000,
        }
    }
}

/// A phone hand-off code lasts this long before the caller must be given a new one.
pub const HANDOFF_TTL: SignedDuration = SignedDuration::from_mins(15);
/// Digits of a phone hand-off code.
pub const HANDOFF_CODE_DIGITS: usize = 8;
/// Hand-offs shown on the account panel.
pub const PANEL_HANDOFFS_MAX: i64 = 5;
/// Fraud-rule decisions shown on the account panel.
const PANEL_RISK_MAX: i64 = 20;
/// Staff listed by `billpay staff list`.
pub const STAFF_LIST_MAX: i64 = 1_000;
/// Characters of a temporary password made by `billpay staff add`.
const TEMPORARY_PASSWORD_CHARS: usize = 20;

/// What a staff member may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Agent,
    Supervisor,
    Admin,
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "agent" => Some(Role::Agent),
            "supervisor" => Some(Role::Supervisor),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Staff {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: Role,
    /// available or away.
    pub available: bool,
    /// False once disabled: no sign-in, no session.
    pub active: bool,
    /// The password is a temporary one: the desk asks for a new one before anything else.
    pub password_change_required: bool,
}

impl Staff {
    fn from_row(r: &StaffRow) -> Staff {
        Staff {
            id: r.id.clone(),
            email: r.email.clone(),
            name: r.name.clone(),
            role: Role::parse(&r.role).unwrap_or(Role::Agent),
            available: r.availability == "available",
            active: r.status != "disabled",
            password_change_required: r.password_change_required != 0,
        }
    }

    /// The TOTP owner name of this staff member.
    pub fn totp_owner(id: &str) -> String {
        format!("staff:{id}")
    }
}

/// A desk session.
#[derive(Clone)]
pub struct StaffSession {
    pub id: String,
    pub csrf_token: String,
    pub staff: Option<Staff>,
    pub pending_staff_id: Option<String>,
    created_at: i64,
}

impl std::fmt::Debug for StaffSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaffSession")
            .field("staff", &self.staff.as_ref().map(|s| &s.id))
            .finish_non_exhaustive()
    }
}

impl StaffSession {
    pub fn csrf_matches(&self, token: &str) -> bool {
        !token.is_empty() && bool::from(self.csrf_token.as_bytes().ct_eq(token.as_bytes()))
    }
}

/// What the password step led to.
#[derive(Debug, PartialEq, Eq)]
pub enum PasswordOutcome {
    /// Ask for the authenticator code.
    Code,
    /// No authenticator yet: enrol one now.
    Enrol,
    Wrong,
    /// Locked for this many minutes.
    Locked(i64),
}

/// The account as the desk shows it: never more of a method than brand and last four.
#[derive(Clone, Debug)]
pub struct AccountPanel {
    pub summary: AccountSummary,
    pub statements: Vec<Statement>,
    pub payments: Vec<Payment>,
    pub methods: Vec<crate::vault::SavedMethod>,
    pub autopay: Option<crate::autopay::Autopay>,
    pub charges: Vec<billpay_store::ach::ChargeRow>,
    pub arrangements: Vec<String>,
    /// Card disputes (chargebacks) of the account's payments, newest first.
    pub disputes: Vec<crate::stripe_events::Dispute>,
    /// Callers sent to the phone line for card entry, newest first, with their outcome.
    pub handoffs: Vec<PhoneHandoff>,
    /// The fraud rules' decisions on the account's payment attempts, newest first.
    pub risk: Vec<crate::risk::RiskDecisionView>,
    /// Payments held for review, and how each was decided, newest first.
    pub reviews: Vec<crate::reviews::PaymentReview>,
}

/// A phone caller sent to the keypad card entry, as the desk shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhoneHandoff {
    pub code: String,
    pub amount: Money,
    /// open, in_call, paid, declined, pending, not_completed or expired.
    pub status: String,
    pub result: Option<String>,
    pub expires_at: jiff::Timestamp,
}

/// What `billpay staff add` prints once: the temporary password and the authenticator link.
pub struct StaffEnrolment {
    pub staff: Staff,
    pub temporary_password: billpay_domain::SecretString,
    /// The `otpauth://` link (secret inside) for the authenticator app.
    pub otpauth_uri: billpay_domain::SecretString,
}

impl std::fmt::Debug for StaffEnrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaffEnrolment")
            .field("staff", &self.staff.id)
            .finish_non_exhaustive()
    }
}

/// The conversations the desk lists.
#[derive(Clone, Debug)]
pub struct Inbox {
    pub queued: Vec<Conversation>,
    /// Messages left outside business hours.
    pub offline: Vec<Conversation>,
    pub mine: Vec<Conversation>,
    pub others: Vec<Conversation>,
}

/// Whole minutes until `until` (microseconds), rounded up, as a locked sign-in says them.
fn minutes_left(until: i64, now: i64) -> i64 {
    (until - now) / 60_000_000 + 1
}

fn forbidden(message: &str) -> ServiceError {
    ServiceError::Conflict {
        code: "forbidden",
        message: message.into(),
    }
}

fn session_id_of(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Billpay {
    /// Adds a staff member with a password (checked like customers' passwords).
    pub async fn staff_create(
        &self,
        email: &str,
        name: &str,
        role: Role,
        password: &str,
    ) -> Result<Staff, ServiceError> {
        self.staff_insert(email, name, role, password, false).await
    }

    /// Adds a staff member from the command line: a random temporary password, to be changed
    /// at the first sign-in, and an authenticator enrolment (pending until its first code is
    /// entered at that sign-in). Audited with the operator as actor.
    pub async fn staff_add(
        &self,
        email: &str,
        name: &str,
        role: Role,
        operator: &str,
    ) -> Result<StaffEnrolment, ServiceError> {
        // 20 characters of a 56-letter alphabet without look-alikes: about 116 bits.
        const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
        let mut raw = Zeroizing::new([0u8; TEMPORARY_PASSWORD_CHARS]);
        self.random.fill(raw.as_mut());
        let mut password = Zeroizing::new(String::with_capacity(TEMPORARY_PASSWORD_CHARS + 4));
        for (i, b) in raw.iter().enumerate() {
            if i > 0 && i % 5 == 0 {
                password.push('-');
            }
            password.push(char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]));
        }
        let staff = self
            .staff_insert(email, name, role, &password, true)
            .await?;
        let owner = Staff::totp_owner(&staff.id);
        let enrolment = self
            .totp_begin(&owner, &format!("{} desk", staff.email))
            .await?;
        self.audit_operator(
            operator,
            "staff.created",
            &staff.id,
            &serde_json::json!({"role": role.as_str()}).to_string(),
        )
        .await?;
        Ok(StaffEnrolment {
            staff,
            temporary_password: billpay_domain::SecretString::new(password.to_string()),
            otpauth_uri: enrolment.uri,
        })
    }

    /// Every staff member, by email.
    pub async fn staff_list(&self) -> Result<Vec<Staff>, ServiceError> {
        let mut c = self.store.read_conn().await?;
        Ok(q::staff_list(&mut c, STAFF_LIST_MAX)
            .await?
            .iter()
            .map(Staff::from_row)
            .collect())
    }

    /// Disables a staff member: their desk sessions end, they cannot sign in, and they are
    /// taken off the queue. Their conversations stay assigned for a supervisor to transfer.
    pub async fn staff_disable(&self, email: &str, operator: &str) -> Result<Staff, ServiceError> {
        let staff = self
            .staff_by_email(email)
            .await?
            .ok_or(ServiceError::NotFound { what: "staff" })?;
        let (id, now) = (staff.id.clone(), self.clock.now_micros());
        let changed = self
            .store
            .write(move |c| {
                Box::pin(async move {
                    let changed = q::set_staff_status(c, &id, "disabled", now).await?;
                    q::delete_staff_sessions_of(c, &id).await?;
                    Ok::<_, billpay_store::StoreError>(changed)
                })
            })
            .await?;
        if changed {
            self.audit_operator(operator, "staff.disabled", &staff.id, "{}")
                .await?;
        }
        self.staff_member(&staff.id).await
    }

    /// An audit record of an operator's command-line action on a staff member.
    async fn audit_operator(
        &self,
        operator: &str,
        action: &str,
        staff_id: &str,
        detail: &str,
    ) -> Result<(), ServiceError> {
        self.audit_command(operator, action, "staff", staff_id, detail)
            .await
    }

    /// A new password in place of a temporary one (or any time): checked like customers'.
    pub async fn staff_change_password(
        &self,
        staff: &Staff,
        password: &str,
        again: &str,
    ) -> Result<(), ServiceError> {
        if password != again {
            return Err(ServiceError::invalid(
                "password",
                "The two passwords are not the same.",
            ));
        }
        if let Some(problem) = crate::portal_auth::password_problem(password, &staff.email, "") {
            return Err(ServiceError::invalid("password", problem));
        }
        let row = {
            let mut c = self.store.read_conn().await?;
            q::staff(&mut c, &staff.id)
                .await?
                .ok_or(ServiceError::NotFound { what: "staff" })?
        };
        if verify_password_off_thread(password, row.password_hash.clone()).await {
            return Err(ServiceError::invalid(
                "password",
                "Choose a password different from the temporary one.",
            ));
        }
        let mut salt = [0u8; 16];
        self.random.fill(&mut salt);
        let hash = hash_password(password, salt)?;
        let (id, now) = (staff.id.clone(), self.clock.now_micros());
        self.store
            .write(move |c| {
                Box::pin(async move { q::set_staff_password(c, &id, &hash, false, now).await })
            })
            .await?;
        self.staff_audit(
            &staff.id,
            "staff.password_changed",
            "staff",
            &staff.id,
            None,
            "{}",
        )
        .await
    }

    async fn staff_insert(
        &self,
        email: &str,
        name: &str,
        role: Role,
        password: &str,
        change_required: bool,
    ) -> Result<Staff, ServiceError> {
        let email = crate::portal_auth::normalize_email(email)
            .ok_or_else(|| ServiceError::invalid("email", "Enter an email address."))?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 80 {
            return Err(ServiceError::invalid(
                "name",
                "Enter a name (up to 80 characters).",
            ));
        }
        if let Some(problem) = crate::portal_auth::password_problem(password, &email, "") {
            return Err(ServiceError::invalid("password", problem));
        }
        let mut salt = [0u8; 16];
        self.random.fill(&mut salt);
        let now = self.clock.now_micros();
        let row = StaffRow {
            id: self.new_id("stf"),
            email,
            name: name.to_string(),
            role: role.as_str().into(),
            password_hash: hash_password(password, salt)?,
            failed_signins: 0,
            locked_until: None,
            availability: "away".into(),
            created_at: now,
            updated_at: now,
            status: "active".into(),
            password_change_required: i64::from(change_required),
        };
        let r = row.clone();
        let inserted = self
            .store
            .write(move |c| Box::pin(async move { q::insert_staff(c, &r).await }))
            .await?;
        if !inserted {
            return Err(ServiceError::Conflict {
                code: "staff_exists",
                message: "a staff member with this email already exists".into(),
            });
        }
        Ok(Staff::from_row(&row))
    }

    pub async fn staff_member(&self, id: &str) -> Result<Staff, ServiceError> {
        let mut c = self.store.read_conn().await?;
        q::staff(&mut c, id)
            .await?
            .map(|r| Staff::from_row(&r))
            .ok_or(ServiceError::NotFound { what: "staff" })
    }

    pub async fn staff_by_email(&self, email: &str) -> Result<Option<Staff>, ServiceError> {
        let Some(email) = crate::portal_auth::normalize_email(email) else {
            return Ok(None);
        };
        let mut c = self.store.read_conn().await?;
        Ok(q::staff_by_email(&mut c, &email)
            .await?
            .map(|r| Staff::from_row(&r)))
    }

    fn staff_new_session(&self, staff_id: Option<String>) -> (SessionToken, StaffSessionRow) {
        let mut raw = Zeroizing::new([0u8; 32]);
        self.random.fill(raw.as_mut());
        let token = SessionToken::from_hex(hex::encode(raw.as_ref()));
        let mut csrf = [0u8; 32];
        self.random.fill(&mut csrf);
        let now = self.clock.now_micros();
        let row = StaffSessionRow {
            id: session_id_of(token.expose()),
            csrf_token: hex::encode(csrf),
            staff_id,
            pending_staff_id: None,
            created_at: now,
            last_seen_at: now,
        };
        (token, row)
    }

    /// Starts an anonymous desk session (the sign-in form's).
    pub async fn staff_start_session(&self) -> Result<(SessionToken, StaffSession), ServiceError> {
        let (token, row) = self.staff_new_session(None);
        let r = row.clone();
        self.store
            .write(move |c| Box::pin(async move { q::insert_staff_session(c, &r).await }))
            .await?;
        Ok((
            token,
            StaffSession {
                id: row.id,
                csrf_token: row.csrf_token,
                staff: None,
                pending_staff_id: None,
                created_at: row.created_at,
            },
        ))
    }

    /// The desk session of a token, if it exists and has not timed out (then it is deleted).
    pub async fn staff_session(&self, token: &str) -> Result<Option<StaffSession>, ServiceError> {
        if token.len() != 64 || !token.chars().all(|c| c.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let id = session_id_of(token);
        let (row, staff) = {
            let mut c = self.store.read_conn().await?;
            let Some(row) = q::staff_session(&mut c, &id).await? else {
                return Ok(None);
            };
            let staff = match &row.staff_id {
                Some(s) => q::staff(&mut c, s).await?,
                None => None,
            };
            (row, staff)
        };
        let now = self.clock.now_micros();
        let disabled = staff.as_ref().is_some_and(|s| s.status == "disabled");
        if disabled
            || now - row.last_seen_at > STAFF_SESSION_IDLE.as_micros() as i64
            || now - row.created_at > STAFF_SESSION_ABSOLUTE.as_micros() as i64
        {
            self.store
                .write(move |c| Box::pin(async move { q::delete_staff_session(c, &id).await }))
                .await?;
            return Ok(None);
        }
        let mut touched = row.clone();
        touched.last_seen_at = now;
        self.store
            .write(move |c| Box::pin(async move { q::update_staff_session(c, &touched).await }))
            .await?;
        Ok(Some(StaffSession {
            id: row.id,
            csrf_token: row.csrf_token,
            staff: staff.as_ref().map(Staff::from_row),
            pending_staff_id: row.pending_staff_id,
            created_at: row.created_at,
        }))
    }

    /// The password step. The same work (an argon2 verification) whether or not the email is
    /// known.
    pub async fn staff_check_password(
        &self,
        session: &StaffSession,
        email: &str,
        password: &str,
    ) -> Result<PasswordOutcome, ServiceError> {
        let row = match crate::portal_auth::normalize_email(email) {
            Some(e) => {
                let mut c = self.store.read_conn().await?;
                q::staff_by_email(&mut c, &e).await?
            }
            None => None,
        };
        let now = self.clock.now_micros();
        let Some(row) = row else {
            let _ = verify_password_off_thread(password, decoy_hash().to_string()).await;
            let email = crate::portal_auth::normalize_email(email).unwrap_or_default();
            let locked = self
                .unknown_signin_failed("staff", &email, SIGNIN_FAILURES_MAX, STAFF_SIGNIN_LOCK)
                .await?;
            // Recorded like a member's failed sign-in (PCI DSS 10.2.1.4), without the address.
            self.desk_audit(
                "anonymous".into(),
                "staff.signin_failed_unknown_email",
                "staff",
                "",
                None,
                "{}",
            )
            .await?;
            return Ok(match locked {
                Some(until) => PasswordOutcome::Locked(minutes_left(until, now)),
                None => PasswordOutcome::Wrong,
            });
        };
        if row.status == "disabled" {
            let _ = verify_password_off_thread(password, decoy_hash().to_string()).await;
            self.staff_audit(
                &row.id,
                "staff.signin_disabled",
                "staff",
                &row.id,
                None,
                "{}",
            )
            .await?;
            return Ok(PasswordOutcome::Wrong);
        }
        if let Some(until) = row.locked_until.filter(|u| *u > now) {
            let _ = verify_password_off_thread(password, decoy_hash().to_string()).await;
            return Ok(PasswordOutcome::Locked(minutes_left(until, now)));
        }
        if !verify_password_off_thread(password, row.password_hash.clone()).await {
            let id = row.id.clone();
            let lock_until = now + STAFF_SIGNIN_LOCK.as_micros() as i64;
            self.store
                .write(move |c| {
                    Box::pin(async move {
                        q::staff_failed_signin(c, &id, SIGNIN_FAILURES_MAX, lock_until, now).await
                    })
                })
                .await?;
            self.staff_audit(&row.id, "staff.signin_failed", "staff", &row.id, None, "{}")
                .await?;
            return Ok(PasswordOutcome::Wrong);
        }
        let s = StaffSessionRow {
            id: session.id.clone(),
            csrf_token: session.csrf_token.clone(),
            staff_id: None,
            pending_staff_id: Some(row.id.clone()),
            created_at: session.created_at,
            last_seen_at: now,
        };
        self.store
            .write(move |c| Box::pin(async move { q::update_staff_session(c, &s).await }))
            .await?;
        if self.totp_enrolled(&Staff::totp_owner(&row.id)).await? {
            Ok(PasswordOutcome::Code)
        } else {
            Ok(PasswordOutcome::Enrol)
        }
    }

    /// The authenticator step: a right code (or, when enrolling, the first code of the new
    /// authenticator) completes the sign-in under a new session id.
    pub async fn staff_check_code(
        &self,
        session: &StaffSession,
        code: &str,
    ) -> Result<Option<(SessionToken, StaffSession)>, ServiceError> {
        let Some(staff_id) = session.pending_staff_id.clone() else {
            return Ok(None);
        };
        let owner = Staff::totp_owner(&staff_id);
        let ok = if self.totp_enrolled(&owner).await? {
            self.totp_verify(&owner, code).await? == crate::totp::TotpCheck::Accepted
        } else {
            self.totp_confirm(&owner, code).await?
        };
        let now = self.clock.now_micros();
        if !ok {
            let id = staff_id.clone();
            let lock_until = now + STAFF_SIGNIN_LOCK.as_micros() as i64;
            self.store
                .write(move |c| {
                    Box::pin(async move {
                        q::staff_failed_signin(c, &id, SIGNIN_FAILURES_MAX, lock_until, now).await
                    })
                })
                .await?;
            self.staff_audit(
                &staff_id,
                "staff.code_failed",
                "staff",
                &staff_id,
                None,
                "{}",
            )
            .await?;
            return Ok(None);
        }
        let (token, row) = self.staff_new_session(Some(staff_id.clone()));
        let old = session.id.clone();
        let r = row.clone();
        let sid = staff_id.clone();
        self.store
            .write(move |c| {
                Box::pin(async move {
                    q::delete_staff_session(c, &old).await?;
                    q::insert_staff_session(c, &r).await?;
                    q::staff_signed_in(c, &sid, now).await
                })
            })
            .await?;
        self.staff_audit(&staff_id, "staff.signin", "staff", &staff_id, None, "{}")
            .await?;
        let staff = self.staff_member(&staff_id).await?;
        Ok(Some((
            token,
            StaffSession {
                id: row.id,
                csrf_token: row.csrf_token,
                staff: Some(staff),
                pending_staff_id: None,
                created_at: row.created_at,
            },
        )))
    }

    /// The enrolment a staff member past the password step sees (a new one, or the one shown
    /// before if still pending).
    pub async fn staff_enrolment(
        &self,
        session: &StaffSession,
    ) -> Result<Option<crate::totp::Enrolment>, ServiceError> {
        let Some(staff_id) = &session.pending_staff_id else {
            return Ok(None);
        };
        let owner = Staff::totp_owner(staff_id);
        if self.totp_enrolled(&owner).await? {
            return Ok(None);
        }
        let staff = self.staff_member(staff_id).await?;
        let label = format!("{} desk", staff.email);
        match self.totp_pending(&owner, &label).await? {
            Some(e) => Ok(Some(e)),
            None => Ok(Some(self.totp_begin(&owner, &label).await?)),
        }
    }

    pub async fn staff_sign_out(&self, session: &StaffSession) -> Result<(), ServiceError> {
        let id = session.id.clone();
        self.store
            .write(move |c| Box::pin(async move { q::delete_staff_session(c, &id).await }))
            .await?;
        Ok(())
    }

    /// Writes one audit record of a staff action.
    async fn staff_audit(
        &self,
        staff_id: &str,
        action: &str,
        subject_type: &str,
        subject_id: &str,
        account_id: Option<String>,
        detail: &str,
    ) -> Result<(), ServiceError> {
        self.desk_audit(
            format!("staff:{staff_id}"),
            action,
            subject_type,
            subject_id,
            account_id,
            detail,
        )
        .await
    }

    /// Writes one audit record of a desk action by `actor`: a staff member, or "anonymous"
    /// (a sign-in with an address that is no member's).
    pub(crate) async fn desk_audit(
        &self,
        actor: String,
        action: &str,
        subject_type: &str,
        subject_id: &str,
        account_id: Option<String>,
        detail: &str,
    ) -> Result<(), ServiceError> {
        let row = AuditRow {
            id: self.new_id("aud"),
            at: self.clock.now_micros(),
            actor,
            action: action.into(),
            subject_type: subject_type.into(),
            subject_id: subject_id.into(),
            account_id,
            channel: Some("desk".into()),
            detail: detail.into(),
        };
        self.store
            .write(move |c| Box::pin(async move { queries::insert_audit(c, &row).await }))
            .await?;
        Ok(())
    }

    /// Sets a representative available (new conversations may be assigned) or away. Becoming
    /// available takes the oldest waiting conversations, up to an even share.
    pub async fn desk_set_available(
        &self,
        staff: &Staff,
        available: bool,
    ) -> Result<(), ServiceError> {
        let now = self.clock.now_micros();
        let id = staff.id.clone();
        let to = if available { "available" } else { "away" };
        self.store
            .write(move |c| Box::pin(async move { q::set_availability(c, &id, to, now).await }))
            .await?;
        self.staff_audit(
            &staff.id,
            &format!("desk.{to}"),
            "staff",
            &staff.id,
            None,
            "{}",
        )
        .await?;
        if available {
            self.chat_assign_waiting().await?;
        }
        Ok(())
    }

    /// Assigns waiting conversations, oldest first, each to the least busy available
    /// representative, while there are both.
    pub async fn chat_assign_waiting(&self) -> Result<u32, ServiceError> {
        let mut assigned = 0;
        for _ in 0..CONVERSATIONS_LIST_MAX {
            let (next, agent) = {
                let mut c = self.store.read_conn().await?;
                let next = q::conversations_in_state(&mut c, "queued", 1).await?;
                let agent = q::least_busy_available(&mut c).await?;
                (next.into_iter().next(), agent)
            };
            let (Some(conv), Some(agent)) = (next, agent) else {
                break;
            };
            let staff = self.staff_member(&agent).await?;
            if !self.desk_assign(&staff, &conv.id, "queued").await? {
                continue;
            }
            assigned += 1;
        }
        Ok(assigned)
    }

    /// Moves a conversation from `from` to this representative; false if it was not in `from`.
    async fn desk_assign(
        &self,
        staff: &Staff,
        conversation_id: &str,
        from: &str,
    ) -> Result<bool, ServiceError> {
        let now = self.clock.now_micros();
        let (id, sid, from_state) = (
            conversation_id.to_string(),
            staff.id.clone(),
            from.to_string(),
        );
        let moved = self
            .store
            .write(move |c| {
                Box::pin(async move {
                    q::set_state(c, &id, &from_state, "assigned", Some(&sid), None, now).await
                })
            })
            .await?;
        if moved {
            let first = staff.name.split_whitespace().next().unwrap_or(&staff.name);
            self.chat_append(
                conversation_id,
                NewMessage::new(
                    Sender::System,
                    None,
                    &format!("{first}, a representative, has joined the conversation."),
                ),
            )
            .await?;
            let conv = self.chat_conversation(conversation_id).await?;
            self.staff_audit(
                &staff.id,
                "chat.assigned",
                "conversation",
                conversation_id,
                conv.account_id,
                "{}",
            )
            .await?;
        }
        Ok(moved)
    }

    /// The desk's inbox: waiting conversations (oldest first), this representative's, and (for
    /// supervisors) everyone else's.
    pub async fn desk_inbox(&self, staff: &Staff) -> Result<Inbox, ServiceError> {
        let mut c = self.store.read_conn().await?;
        let conv = |rows: Vec<billpay_store::chat::ConversationRow>| {
            rows.into_iter()
                .map(crate::chat::conversation_of_row)
                .collect::<Vec<_>>()
        };
        let queued =
            conv(q::conversations_in_state(&mut c, "queued", CONVERSATIONS_LIST_MAX).await?);
        let mine = conv(q::agent_conversations(&mut c, &staff.id, CONVERSATIONS_LIST_MAX).await?);
        let offline =
            conv(q::conversations_in_state(&mut c, "offline", CONVERSATIONS_LIST_MAX).await?);
        let others = if staff.role >= Role::Supervisor {
            conv(q::conversations_in_state(&mut c, "assigned", CONVERSATIONS_LIST_MAX).await?)
                .into_iter()
                .filter(|v| v.agent_id.as_deref() != Some(staff.id.as_str()))
                .collect()
        } else {
            Vec::new()
        };
        Ok(Inbox {
            queued,
            offline,
            mine,
            others,
        })
    }

    /// A conversation as the desk may see it: waiting, this representative's, or any for a
    /// supervisor. Viewing it is audited.
    pub async fn desk_conversation(
        &self,
        staff: &Staff,
        conversation_id: &str,
    ) -> Result<Conversation, ServiceError> {
        let conv = self.chat_conversation(conversation_id).await?;
        let allowed = staff.role >= Role::Supervisor
            || conv.agent_id.as_deref() == Some(staff.id.as_str())
            || conv.state == ConversationState::Queued
            || conv.state == ConversationState::Offline;
        if !allowed {
            return Err(forbidden(
                "This conversation is another representative's. A supervisor can transfer it.",
            ));
        }
        Ok(conv)
    }

    /// Takes a waiting conversation.
    pub async fn desk_take(
        &self,
        staff: &Staff,
        conversation_id: &str,
    ) -> Result<(), ServiceError> {
        if !self.desk_assign(staff, conversation_id, "queued").await? {
            return Err(ServiceError::Conflict {
                code: "taken",
                message: "Another representative took this conversation first.".into(),
            });
        }
        Ok(())
    }

    /// Moves an open conversation to another representative (its own or, for a supervisor,
    /// anyone's).
    pub async fn desk_transfer(
        &self,
        staff: &Staff,
        conversation_id: &str,
        to_staff_id: &str,
    ) -> Result<(), ServiceError> {
        let conv = self.desk_conversation(staff, conversation_id).await?;
        if conv.state != ConversationState::Assigned {
            return Err(ServiceError::invalid("to", "Take the conversation first."));
        }
        let to = self.staff_member(to_staff_id).await?;
        let now = self.clock.now_micros();
        let (id, tid) = (conv.id.clone(), to.id.clone());
        self.store
            .write(move |c| {
                Box::pin(async move {
                    q::set_state(c, &id, "assigned", "assigned", Some(&tid), None, now).await
                })
            })
            .await?;
        let first = to.name.split_whitespace().next().unwrap_or(&to.name);
        self.chat_append(
            &conv.id,
            NewMessage::new(
                Sender::System,
                None,
                &format!("You are now talking with {first}, who can see this conversation so far."),
            ),
        )
        .await?;
        self.staff_audit(
            &staff.id,
            "chat.transferred",
            "conversation",
            &conv.id,
            conv.account_id,
            &serde_json::json!({"to": to.id}).to_string(),
        )
        .await
    }

    /// A representative's reply (or internal note) in a conversation they have.
    pub async fn desk_say(
        &self,
        staff: &Staff,
        conversation_id: &str,
        text: &str,
        note: bool,
    ) -> Result<(), ServiceError> {
        let conv = self.desk_conversation(staff, conversation_id).await?;
        if !note
            && (conv.state != ConversationState::Assigned
                || (conv.agent_id.as_deref() != Some(staff.id.as_str())
                    && staff.role < Role::Supervisor))
        {
            return Err(ServiceError::invalid(
                "message",
                "Take the conversation before replying.",
            ));
        }
        let text = parse_message(text)?;
        let sender = if note { Sender::Note } else { Sender::Agent };
        let first = staff
            .name
            .split_whitespace()
            .next()
            .unwrap_or(&staff.name)
            .to_string();
        self.chat_append(&conv.id, NewMessage::new(sender, Some(first), &text))
            .await?;
        let action = if note { "chat.note" } else { "chat.reply" };
        self.staff_audit(
            &staff.id,
            action,
            "conversation",
            &conv.id,
            conv.account_id,
            "{}",
        )
        .await
    }

    /// The representative who has a conversation is typing in it (relayed, not stored).
    pub async fn desk_typing(
        &self,
        staff: &Staff,
        conversation_id: &str,
    ) -> Result<(), ServiceError> {
        let conv = self.desk_conversation(staff, conversation_id).await?;
        if conv.state == ConversationState::Assigned
            && conv.agent_id.as_deref() == Some(staff.id.as_str())
        {
            self.chat_typing(&conv.id, crate::chat::Side::Agent).await;
        }
        Ok(())
    }

    /// The representative who has a conversation has read it up to `seq` (a supervisor
    /// looking in does not move the customer-visible receipt).
    pub async fn desk_read(
        &self,
        staff: &Staff,
        conversation_id: &str,
        seq: i64,
    ) -> Result<(), ServiceError> {
        let conv = self.desk_conversation(staff, conversation_id).await?;
        if conv.agent_id.as_deref() == Some(staff.id.as_str()) {
            self.chat_mark_read(&conv.id, crate::chat::Side::Agent, seq.min(conv.last_seq))
                .await?;
        }
        Ok(())
    }

    /// Sends a secure pay request into a conversation this representative has: the customer
    /// gets a button to billpay's pay form for `amount`; the desk later sees only the outcome
    /// and the method's brand and last four.
    pub async fn desk_pay_request(
        &self,
        staff: &Staff,
        conversation_id: &str,
        amount: Money,
    ) -> Result<String, ServiceError> {
        let conv = self.desk_conversation(staff, conversation_id).await?;
        if conv.state != ConversationState::Assigned {
            return Err(ServiceError::invalid(
                "amount",
                "Take the conversation first.",
            ));
        }
        if !amount.is_positive() || amount.minor_units() > crate::payments::PAYMENT_AMOUNT_MAX_MINOR
        {
            return Err(ServiceError::invalid(
                "amount",
                "Enter an amount more than $0.00 and at most $1,000,000.00.",
            ));
        }
        let now = self.clock.now_micros();
        let row = billpay_store::chat::PayRequestRow {
            id: self.new_id("payreq"),
            conversation_id: conv.id.clone(),
            staff_id: staff.id.clone(),
            amount: amount.minor_units(),
            currency: amount.currency().code().to_string(),
            status: "open".into(),
            payment_id: None,
            result: None,
            created_at: now,
            updated_at: now,
        };
        let r = row.clone();
        self.store
            .write(move |c| Box::pin(async move { q::insert_pay_request(c, &r).await }))
            .await?;
        let first = staff
            .name
            .split_whitespace()
            .next()
            .unwrap_or(&staff.name)
            .to_string();
        self.chat_append(
            &conv.id,
            NewMessage::new(
                Sender::Agent,
                Some(first),
                &format!(
                    "Here is a secure payment form for {amount}. Enter your card or bank details there, never in the chat."
                ),
            )
            .with_link(format!("/chat/pay/{}", row.id)),
        )
        .await?;
        self.staff_audit(
            &staff.id,
            "chat.pay_requested",
            "conversation",
            &conv.id,
            conv.account_id,
            &serde_json::json!({"amount": amount.minor_units(), "request": row.id}).to_string(),
        )
        .await?;
        Ok(row.id)
    }

    /// Ends a conversation.
    pub async fn desk_close(
        &self,
        staff: &Staff,
        conversation_id: &str,
    ) -> Result<(), ServiceError> {
        let conv = self.desk_conversation(staff, conversation_id).await?;
        let now = self.clock.now_micros();
        let (id, from) = (conv.id.clone(), conv.state.as_str().to_string());
        let agent = conv.agent_id.clone();
        self.store
            .write(move |c| {
                Box::pin(async move {
                    q::set_state(c, &id, &from, "closed", agent.as_deref(), None, now).await
                })
            })
            .await?;
        self.chat_append(
            &conv.id,
            NewMessage::new(
                Sender::System,
                None,
                "The representative has ended the conversation.",
            ),
        )
        .await?;
        self.staff_audit(
            &staff.id,
            "chat.closed",
            "conversation",
            &conv.id,
            conv.account_id,
            "{}",
        )
        .await?;
        self.chat_publish(ChatEvent::message(conv.id, 0)).await;
        Ok(())
    }

    /// The account panel: balance, statements, payments with statuses and reasons, saved
    /// methods (brand and last four), AutoPay, fees, arrangements. Every view is audited.
    pub async fn desk_account_panel(
        &self,
        staff: &Staff,
        number: &AccountNumber,
    ) -> Result<AccountPanel, ServiceError> {
        let summary = self.account_summary(number).await?;
        let mut statements = self.statements(number).await?;
        statements.sort_by_key(|s| std::cmp::Reverse(s.statement_date));
        let payments = self
            .account_payments(number, None, PANEL_PAYMENTS_MAX)
            .await?;
        let methods = self.payment_methods(number).await?;
        let autopay = self.autopay(number).await?;
        let charges = {
            let mut c = self.store.read_conn().await?;
            billpay_store::ach::charges_of_account(&mut c, &summary.account.id).await?
        };
        let arrangements = {
            let mut c = self.store.read_conn().await?;
            match billpay_store::collections::active_arrangement(&mut c, &summary.account.id)
                .await?
            {
                Some(a) => {
                    let parts = billpay_store::collections::installments_of(&mut c, &a.id)
                        .await?
                        .into_iter()
                        .map(|i| {
                            format!(
                                "{} due {}",
                                Money::new(i.amount, summary.account.currency),
                                i.due_date
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(", ");
                    vec![format!(
                        "{} arrangement ({}) for {} past due: {parts}",
                        a.kind,
                        a.status,
                        Money::new(a.past_due, summary.account.currency)
                    )]
                }
                None => Vec::new(),
            }
        };
        let disputes = self.disputes_of_account(&summary.account.id).await?;
        let handoffs = {
            let now = self.clock.now_micros();
            let mut c = self.store.read_conn().await?;
            billpay_store::desk::handoffs_of_account(
                &mut c,
                &summary.account.id,
                PANEL_HANDOFFS_MAX,
            )
            .await?
            .into_iter()
            .map(|h| PhoneHandoff {
                status: if h.status == "open" && h.expires_at <= now {
                    "expired".into()
                } else {
                    h.status
                },
                code: h.code,
                amount: Money::new(h.amount, summary.account.currency),
                result: h.result,
                expires_at: crate::clock::from_micros(h.expires_at),
            })
            .collect()
        };
        let risk = self
            .risk_decisions_of(&summary.account.id, PANEL_RISK_MAX)
            .await?;
        let reviews = self
            .reviews_of_account(&summary.account.id, crate::reviews::PANEL_REVIEWS_MAX)
            .await?;
        self.staff_audit(
            &staff.id,
            "desk.account_viewed",
            "account",
            &summary.account.id,
            Some(summary.account.id.clone()),
            "{}",
        )
        .await?;
        Ok(AccountPanel {
            summary,
            statements,
            payments,
            methods,
            autopay,
            charges,
            arrangements,
            disputes,
            handoffs,
            risk,
            reviews,
        })
    }

    /// Waives a fee on the account. A representative may waive up to
    /// [`DeskConfig::agent_waiver_max_minor`]; above it only a supervisor or administrator.
    pub async fn desk_waive_fee(
        &self,
        staff: &Staff,
        number: &AccountNumber,
        charge_id: &str,
        reason: &str,
    ) -> Result<Money, ServiceError> {
        let account = self.account(number).await?;
        let fee = {
            let mut c = self.store.read_conn().await?;
            billpay_store::ach::charges_of_account(&mut c, &account.id)
                .await?
                .into_iter()
                .find(|g| g.id == charge_id)
        }
        .ok_or(ServiceError::NotFound { what: "fee" })?;
        let amount = Money::new(fee.amount, account.currency);
        if staff.role < Role::Supervisor && fee.amount > self.config().desk.agent_waiver_max_minor {
            self.staff_audit(
                &staff.id,
                "desk.waiver_refused",
                "charge",
                charge_id,
                Some(account.id.clone()),
                &serde_json::json!({"amount": fee.amount, "role": staff.role.as_str()}).to_string(),
            )
            .await?;
            return Err(forbidden(&format!(
                "Only a supervisor can waive a fee above {}.",
                Money::new(self.config().desk.agent_waiver_max_minor, account.currency)
            )));
        }
        self.waive_charge(charge_id, &staff.name, reason).await?;
        self.staff_audit(
            &staff.id,
            "desk.fee_waived",
            "charge",
            charge_id,
            Some(account.id.clone()),
            &serde_json::json!({"amount": fee.amount}).to_string(),
        )
        .await?;
        Ok(amount)
    }
}

/// What a desk payment with a saved card came to.
pub use crate::payments::PaymentResult as DeskPaymentResult;

impl Billpay {
    /// The saved card of an account a desk action uses. Saved bank accounts are refused: a
    /// bank debit needs the customer's own authorization (NACHA), which the desk cannot take
    /// for them; the secure pay request or the phone line takes it.
    async fn desk_saved_card(
        &self,
        number: &AccountNumber,
        method_id: &str,
    ) -> Result<crate::vault::SavedMethod, ServiceError> {
        let method = self
            .payment_methods(number)
            .await?
            .into_iter()
            .find(|m| m.id == method_id)
            .ok_or(ServiceError::NotFound {
                what: "saved payment method",
            })?;
        if method.summary.kind != billpay_domain::MethodKind::Card {
            return Err(ServiceError::invalid(
                "method",
                "A bank debit needs the customer's own authorization: send a secure pay request, or the phone line takes it.",
            ));
        }
        Ok(method)
    }

    /// A payment amount the desk may use: more than zero, within the payment limit, and for
    /// a representative within [`DeskConfig::agent_payment_max_minor`] (above it only a
    /// supervisor or administrator; a refusal is audited as `refused_action`).
    async fn desk_amount_allowed(
        &self,
        staff: &Staff,
        account_id: &str,
        amount: Money,
        refused_action: &str,
    ) -> Result<(), ServiceError> {
        if !amount.is_positive() || amount.minor_units() > crate::payments::PAYMENT_AMOUNT_MAX_MINOR
        {
            return Err(ServiceError::invalid(
                "amount",
                "Enter an amount more than $0.00 and at most $1,000,000.00.",
            ));
        }
        let max = self.config().desk.agent_payment_max_minor;
        if staff.role < Role::Supervisor && amount.minor_units() > max {
            self.staff_audit(
                &staff.id,
                refused_action,
                "account",
                account_id,
                Some(account_id.to_string()),
                &serde_json::json!({"amount": amount.minor_units(), "role": staff.role.as_str()})
                    .to_string(),
            )
            .await?;
            return Err(forbidden(&format!(
                "Only a supervisor can take or schedule a payment above {}.",
                Money::new(max, amount.currency())
            )));
        }
        Ok(())
    }

    /// Takes a payment now with one of the account's saved cards, after the representative
    /// confirmed the amount and the masked card. `form_key` (from the confirmation page) makes
    /// a resent form pay once. Audited with the payment and its outcome.
    pub async fn desk_take_payment(
        &self,
        staff: &Staff,
        number: &AccountNumber,
        method_id: &str,
        amount: Money,
        form_key: &str,
    ) -> Result<DeskPaymentResult, ServiceError> {
        let account = self.account(number).await?;
        self.desk_amount_allowed(staff, &account.id, amount, "desk.payment_refused")
            .await?;
        let method = self.desk_saved_card(number, method_id).await?;
        let idem = crate::payments::Idempotency::new(
            format!("staff:{}", staff.id),
            format!("desk-pay:{form_key}"),
        )?;
        let result = self
            .create_payment_result(
                idem,
                crate::payments::PaymentRequest {
                    account_number: number.clone(),
                    amount,
                    channel: billpay_domain::Channel::Agent,
                    method: crate::payments::NewMethod::Saved { token: method.id },
                    confirm_duplicate: false,
                    tel_authorization: None,
                    limit_to_balance: false,
                    risk: Some(crate::risk::RiskSource::default()),
                },
            )
            .await?;
        let p = result.payment();
        self.staff_audit(
            &staff.id,
            "desk.payment_taken",
            "payment",
            &p.id,
            Some(account.id.clone()),
            &serde_json::json!({"amount": amount.minor_units(), "status": p.status.as_str(),
                "method": method_id})
            .to_string(),
        )
        .await?;
        Ok(result)
    }

    /// Schedules a one-time payment with a saved card on a later date.
    pub async fn desk_schedule_payment(
        &self,
        staff: &Staff,
        number: &AccountNumber,
        method_id: &str,
        amount: Money,
        date: jiff::civil::Date,
    ) -> Result<crate::autopay::ScheduledPayment, ServiceError> {
        let account = self.account(number).await?;
        self.desk_amount_allowed(staff, &account.id, amount, "desk.schedule_refused")
            .await?;
        let method = self.desk_saved_card(number, method_id).await?;
        let scheduled = self
            .schedule_payment(
                number,
                crate::autopay::NewScheduledPayment {
                    payment_method: method.id,
                    amount,
                    start: date,
                    frequency: None,
                    end: billpay_domain::End::Count(1),
                },
                billpay_domain::Channel::Agent,
            )
            .await?;
        self.staff_audit(
            &staff.id,
            "desk.payment_scheduled",
            "scheduled_payment",
            &scheduled.id,
            Some(account.id.clone()),
            &serde_json::json!({"amount": amount.minor_units(), "date": date.to_string(),
                "method": method_id})
            .to_string(),
        )
        .await?;
        Ok(scheduled)
    }

    /// Turns AutoPay on with a saved card (charged on each due date).
    pub async fn desk_enroll_autopay(
        &self,
        staff: &Staff,
        number: &AccountNumber,
        method_id: &str,
    ) -> Result<crate::autopay::Autopay, ServiceError> {
        let account = self.account(number).await?;
        let method = self.desk_saved_card(number, method_id).await?;
        let enrolled = self
            .enroll_autopay(
                number,
                &method.id,
                billpay_domain::Timing::OnDueDate,
                None,
                billpay_domain::Channel::Agent,
            )
            .await?;
        self.staff_audit(
            &staff.id,
            "desk.autopay_enrolled",
            "account",
            &account.id,
            Some(account.id.clone()),
            &serde_json::json!({"method": method_id}).to_string(),
        )
        .await?;
        Ok(enrolled)
    }

    /// Turns AutoPay off.
    pub async fn desk_cancel_autopay(
        &self,
        staff: &Staff,
        number: &AccountNumber,
    ) -> Result<(), ServiceError> {
        let account = self.account(number).await?;
        self.cancel_autopay(number).await?;
        self.staff_audit(
            &staff.id,
            "desk.autopay_canceled",
            "account",
            &account.id,
            Some(account.id.clone()),
            "{}",
        )
        .await
    }

    /// Sends a phone caller to the keypad card entry: a short code, valid for
    /// [`HANDOFF_TTL`] and once, that the phone line takes at
    /// `/ivr/twilio/handoff?code=…`. The card is keyed by the caller and never heard by the
    /// representative; the outcome comes back onto the account panel.
    pub async fn desk_phone_handoff(
        &self,
        staff: &Staff,
        number: &AccountNumber,
        amount: Money,
    ) -> Result<PhoneHandoff, ServiceError> {
        let account = self.account(number).await?;
        self.desk_amount_allowed(staff, &account.id, amount, "desk.handoff_refused")
            .await?;
        if amount.minor_units() > billpay_ivr::PHONE_AMOUNT_MAX_MINOR {
            return Err(ServiceError::invalid(
                "amount",
                "The phone line takes payments up to $100,000.00.",
            ));
        }
        let now = self.clock.now_micros();
        let expires_at = now + HANDOFF_TTL.as_micros() as i64;
        for _ in 0..5 {
            let mut raw = [0u8; HANDOFF_CODE_DIGITS];
            self.random.fill(&mut raw);
            let code: String = raw.iter().map(|b| char::from(b'0' + b % 10)).collect();
            let row = billpay_store::desk::PhoneHandoffRow {
                id: self.new_id("hof"),
                code: code.clone(),
                account_id: account.id.clone(),
                account_number: number.as_str().to_string(),
                staff_id: staff.id.clone(),
                amount: amount.minor_units(),
                currency: amount.currency().code().to_string(),
                status: "open".into(),
                call_sid: None,
                result: None,
                expires_at,
                created_at: now,
                updated_at: now,
            };
            let r = row.clone();
            let stored = self
                .store
                .write(move |c| {
                    Box::pin(async move { billpay_store::desk::insert_handoff(c, &r, now).await })
                })
                .await?;
            if !stored {
                continue;
            }
            self.staff_audit(
                &staff.id,
                "desk.phone_handoff_created",
                "phone_handoff",
                &row.id,
                Some(account.id.clone()),
                &serde_json::json!({"amount": amount.minor_units()}).to_string(),
            )
            .await?;
            return Ok(PhoneHandoff {
                code,
                amount,
                status: "open".into(),
                result: None,
                expires_at: crate::clock::from_micros(expires_at),
            });
        }
        Err(ServiceError::Conflict {
            code: "busy",
            message: "No transfer code is free right now; try again.".into(),
        })
    }
}

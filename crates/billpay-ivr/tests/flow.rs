//! The call flow on simulated calls, against an in-memory backend.

use std::sync::Mutex;

use billpay_domain::{
    AccountNumber, CardBrand, ConfirmationNumber, DeclineCode, Language, MethodKind, Money,
};
use billpay_ivr::*;

struct Fake {
    account: AccountInfo,
    phone: String,
    saved: Vec<SavedMethodInfo>,
    paid: Mutex<Vec<(u32, i64, String)>>,
    scheduled: Mutex<Vec<ScheduleRequest>>,
    autopay: Mutex<Option<(String, String)>>,
    open: bool,
    verification_failures: Mutex<i64>,
    verification_limit: i64,
    /// The processor is not answering.
    down: bool,
}

impl Fake {
    fn new() -> Fake {
        Fake {
            account: AccountInfo {
                number: AccountNumber::parse("100000000017").expect("valid"),
                zip5: "10001".into(),
                balance: Money::usd(8410),
                due_date: Some(jiff::civil::date(2026, 12, 5)),
                today: jiff::civil::date(2026, 11, 22),
            },
            phone: "+15555550101".into(),
            saved: vec![SavedMethodInfo {
                token: "pm_1".into(),
                kind: MethodKind::Card,
                brand: Some(CardBrand::Visa),
                bank_type: None,
                last4: "4242".into(),
            }],
            paid: Mutex::new(Vec::new()),
            scheduled: Mutex::new(Vec::new()),
            autopay: Mutex::new(None),
            open: true,
            verification_failures: Mutex::new(0),
            verification_limit: 100,
            down: false,
        }
    }
}

impl Backend for Fake {
    async fn account(&self, n: &AccountNumber) -> Result<Option<AccountInfo>, BackendError> {
        Ok((n == &self.account.number).then(|| self.account.clone()))
    }
    async fn verification_failed(&self, _from: &str) -> Result<bool, BackendError> {
        let mut n = self.verification_failures.lock().unwrap();
        *n += 1;
        Ok(*n > self.verification_limit)
    }
    async fn account_by_phone(&self, p: &str) -> Result<Option<AccountInfo>, BackendError> {
        Ok((p == self.phone).then(|| self.account.clone()))
    }
    async fn saved_methods(&self, _: &AccountNumber) -> Result<Vec<SavedMethodInfo>, BackendError> {
        Ok(self.saved.clone())
    }
    async fn last_payment(&self, _: &AccountNumber) -> Result<Option<LastPayment>, BackendError> {
        Ok(None)
    }
    async fn pay(&self, req: PayRequest) -> Result<PayOutcome, BackendError> {
        if self.down {
            return Ok(PayOutcome::Unavailable);
        }
        let what = match &req.method {
            PayMethod::Saved { token } => token.clone(),
            PayMethod::Card { number, .. } => {
                if number.last4() == "0002" {
                    return Ok(PayOutcome::Declined(
                        DeclineCode::parse("generic_decline")
                            .unwrap_or(DeclineCode::ProcessingError),
                    ));
                }
                format!("card {}", number.last4())
            }
            PayMethod::Bank { account, .. } => format!("bank {}", account.last4()),
        };
        if let Ok(mut p) = self.paid.lock() {
            p.push((req.seq, req.amount.minor_units(), what));
        }
        Ok(PayOutcome::Paid {
            confirmation: ConfirmationNumber::from_random(42),
        })
    }
    async fn schedule(&self, req: ScheduleRequest) -> Result<(), BackendError> {
        if let Ok(mut s) = self.scheduled.lock() {
            s.push(req);
        }
        Ok(())
    }
    async fn autopay(&self, _: &AccountNumber) -> Result<Option<SavedMethodInfo>, BackendError> {
        let token = self
            .autopay
            .lock()
            .ok()
            .and_then(|a| a.clone())
            .map(|(t, _)| t);
        Ok(token.and_then(|t| self.saved.iter().find(|m| m.token == t).cloned()))
    }
    async fn enroll_autopay(
        &self,
        _: &AccountNumber,
        token: &str,
        terms: String,
    ) -> Result<(), BackendError> {
        if let Ok(mut a) = self.autopay.lock() {
            *a = Some((token.to_string(), terms));
        }
        Ok(())
    }
    async fn cancel_autopay(&self, _: &AccountNumber) -> Result<(), BackendError> {
        if let Ok(mut a) = self.autopay.lock() {
            *a = None;
        }
        Ok(())
    }
    fn autopay_notice_days(&self) -> u8 {
        3
    }
    fn today(&self) -> jiff::civil::Date {
        jiff::civil::date(2026, 11, 22)
    }
    fn biller_name(&self) -> String {
        "Riverbend Utilities".into()
    }
    fn support_phone(&self) -> String {
        "1-800-555-0199".into()
    }
    fn agents_open(&self) -> bool {
        self.open
    }
    fn agent_hours(&self, _: Language) -> String {
        "from 8 AM to 8 PM".into()
    }
}

/// Runs a call; returns everything said and the last reply.
fn call(b: &Fake, from: &str, keys: &[&str]) -> (String, Reply, Call, Secrets) {
    futures::executor::block_on(async {
        let mut c = Call::default();
        let mut s = Secrets::default();
        let mut said = String::new();
        let mut r = step(b, &mut c, &mut s, Input::Start { from: from.into() }).await;
        said.push_str(&r.says.join("\n"));
        for k in keys {
            let input = if k.is_empty() {
                Input::NoInput
            } else {
                Input::Digits(k.to_string())
            };
            r = step(b, &mut c, &mut s, input).await;
            said.push('\n');
            said.push_str(&r.says.join("\n"));
        }
        (said, r, c, s)
    })
}

#[test]
fn saved_card_in_english() {
    let b = Fake::new();
    let (said, r, c, s) = call(&b, "+15555550101", &["1", "1", "10001", "1", "1", "1"]);
    assert!(said.contains("account ending in 0, 0, 1, 7"), "{said}");
    assert!(said.contains("Your balance is 84 dollars and 10 cents, due on December 5, 2026."));
    assert!(said.contains("To pay with your Visa ending in 4, 2, 4, 2, press 1."));
    assert!(said.contains("was approved"));
    assert!(matches!(r.next, Next::Gather(_)));
    assert_eq!(c.step, Step::AfterPayment);
    assert!(s.is_empty());
    assert_eq!(
        b.paid.lock().map(|p| p.clone()).unwrap_or_default(),
        vec![(0, 8410, "pm_1".to_string())]
    );
}

#[test]
fn new_card_in_spanish_with_other_amount() {
    let b = Fake::new();
    let (said, _, c, s) = call(
        &b,
        "+15550000000",
        &[
            "2",
            "100000000017",
            "10001",
            "2",
            "2500",
            "1",
            "2",
            "4242424242424242",
            "1234",
            "123",
            "10001",
            "1",
        ],
    );
    assert!(said.contains("Usted marcó 25 dólares."), "{said}");
    assert!(
        said.contains("Va a pagar 25 dólares con su Visa que termina en 4, 2, 4, 2."),
        "{said}"
    );
    assert!(said.contains("fue aprobado"), "{said}");
    assert!(!said.contains("4242424242424242"));
    assert_eq!(c.step, Step::AfterPayment);
    assert!(s.is_empty());
}

#[test]
fn an_unknown_account_and_a_wrong_zip_sound_the_same() {
    let b = Fake::new();
    let unknown = AccountNumber::from_body("99999999991").unwrap().to_string();
    let (missing, _, c1, _) = call(&b, "", &["1", &unknown, "10001"]);
    let (wrong_zip, _, c2, _) = call(&b, "", &["1", "100000000017", "11111"]);
    let missing = missing.replace(&unknown, "N");
    let wrong_zip = wrong_zip.replace("100000000017", "N");
    assert_eq!(missing, wrong_zip);
    assert!(missing.contains("That account number and ZIP code do not match our records."));
    assert_eq!(
        (c1.step, c2.step),
        (Step::AccountNumber, Step::AccountNumber)
    );
}

#[test]
fn mistyped_account_number_is_caught_by_the_check_digit() {
    let b = Fake::new();
    let (said, _, c, _) = call(&b, "", &["1", "100000000018", "100000000017"]);
    assert!(said.contains("a digit may have been mistyped"), "{said}");
    assert_eq!(c.step, Step::Zip);
}

#[test]
fn wrong_zip_three_times_transfers() {
    let b = Fake::new();
    // A typed account number is asked again with its ZIP.
    let a = "100000000017";
    let (said, r, c, _) = call(&b, "", &["1", a, "11111", a, "22222", a, "33333"]);
    assert_eq!(
        said.matches("That account number and ZIP code do not match our records.")
            .count(),
        3,
        "{said}"
    );
    assert_eq!(r.next, Next::Transfer { account: None });
    assert_eq!(c.step, Step::Ended);
}

#[test]
fn silence_reprompts_then_transfers() {
    let b = Fake::new();
    let (said, r, _, _) = call(&b, "", &["", ""]);
    assert!(said.contains("Sorry, I didn't get that."));
    assert!(matches!(r.next, Next::Transfer { .. }));
}

#[test]
fn expired_card_and_bad_number_are_named() {
    let b = Fake::new();
    let (said, _, c, s) = call(
        &b,
        "+15555550101",
        &[
            "1",
            "1",
            "10001",
            "1",
            "2",
            "4242424242424241",
            "4242424242424242",
            "0120",
        ],
    );
    assert!(said.contains("That card number is not valid."), "{said}");
    assert!(said.contains("That card has expired."), "{said}");
    assert_eq!(c.step, Step::CardExpiry);
    assert!(s.card_number.is_some());
    assert!(!format!("{s:?}").contains("4242"));
    assert!(!format!("{c:?}").contains("424242"));
}

#[test]
fn decline_then_another_card() {
    let b = Fake::new();
    let (said, _, c, _) = call(
        &b,
        "+15555550101",
        &[
            "1",
            "1",
            "10001",
            "1",
            "2",
            "4000000000000002",
            "1234",
            "123",
            "10001",
            "1",
            "1",
            "1",
            "1",
        ],
    );
    assert!(
        said.contains("To pay with another method, press 1."),
        "{said}"
    );
    assert_eq!(c.step, Step::AfterPayment);
    assert_eq!(c.payment_seq, 2);
}

#[test]
fn bank_debit_reads_the_tel_authorization() {
    let b = Fake::new();
    let (said, _, c, s) = call(
        &b,
        "+15555550101",
        &[
            "1",
            "1",
            "10001",
            "1",
            "3",
            "1",
            "110000000",
            "000123456789",
            "1",
        ],
    );
    assert!(said.contains("you authorize Riverbend Utilities to make a single ACH debit of 84 dollars and 10 cents from your checking account ending in 6, 7, 8, 9"), "{said}");
    assert!(said.contains("To revoke this authorization, call 1-800-555-0199"));
    assert_eq!(c.step, Step::AfterPayment);
    assert!(s.is_empty());
}

#[test]
fn zero_transfers_with_the_verified_account_and_after_hours_asks_for_a_callback() {
    let b = Fake::new();
    let (_, r, _, _) = call(&b, "+15555550101", &["1", "1", "10001", "0"]);
    assert_eq!(
        r.next,
        Next::Transfer {
            account: Some("100000000017".into())
        }
    );
    let mut closed = Fake::new();
    closed.open = false;
    let (said, r, c, _) = call(&closed, "", &["1", "0"]);
    assert_eq!(r.next, Next::Hangup);
    assert!(said.contains("call back"));
    assert!(c.callback_requested);
}

#[test]
fn twiml_of_a_gather_redirects_on_silence() {
    let b = Fake::new();
    let (_, r, _, _) = call(&b, "", &[]);
    let to = TransferTo::Queue {
        name: "billing".into(),
        wait_url: "/ivr/twilio/wait".into(),
    };
    let xml = r.to_twiml("/ivr/twilio/gather?turn=1", &to);
    assert!(xml.contains("<Gather input=\"dtmf\" numDigits=\"1\""));
    assert!(
        xml.ends_with("<Redirect method=\"POST\">/ivr/twilio/gather?turn=1</Redirect></Response>")
    );
}

#[test]
fn schedules_a_payment_up_to_the_due_date() {
    let b = Fake::new();
    // Due 2026-12-05: 12/06 is refused, 13/01 is no date, 12/04 is taken.
    let (said, _, c, _) = call(
        &b,
        "+15555550101",
        &[
            "1", "1", "10001", "4", "1206", "1301", "1204", "1", "1", "1",
        ],
    );
    assert!(
        said.contains("To schedule a payment for a later date, press 4."),
        "{said}"
    );
    assert!(
        said.contains("no later than your due date, December 5, 2026."),
        "{said}"
    );
    assert!(said.contains("That is not a valid date."), "{said}");
    assert!(said.contains("You are scheduling a payment of 84 dollars and 10 cents with your Visa ending in 4, 2, 4, 2, to be made on December 4, 2026."), "{said}");
    assert!(
        said.contains("Your payment of 84 dollars and 10 cents is scheduled for December 4, 2026."),
        "{said}"
    );
    assert_eq!(c.step, Step::MainMenu);
    let s = b.scheduled.lock().expect("lock");
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].date, jiff::civil::date(2026, 12, 4));
    assert_eq!(s[0].token, "pm_1");
    assert!(s[0].tel_authorization.is_none());
    assert!(
        b.paid.lock().expect("lock").is_empty(),
        "nothing is charged today"
    );
}

#[test]
fn a_scheduled_bank_debit_reads_a_dated_tel_authorization() {
    let mut b = Fake::new();
    b.saved = vec![SavedMethodInfo {
        token: "pm_bank".into(),
        kind: MethodKind::Ach,
        brand: None,
        bank_type: Some(billpay_domain::BankAccountType::Savings),
        last4: "6789".into(),
    }];
    let (said, _, _, _) = call(
        &b,
        "+15555550101",
        &["2", "1", "10001", "4", "1203", "2", "5000", "1", "1", "1"],
    );
    assert!(said.contains("usted autoriza a Riverbend Utilities a realizar un único débito ACH de 50 dólares de su cuenta de ahorros que termina en 6, 7, 8, 9, el 3 de diciembre de 2026"), "{said}");
    let s = b.scheduled.lock().expect("lock");
    assert_eq!(s[0].amount.minor_units(), 5000);
    let auth = s[0].tel_authorization.clone().expect("TEL text stored");
    assert!(auth.contains("3 de diciembre de 2026"));
}

#[test]
fn enrolls_in_autopay_then_turns_it_off() {
    let b = Fake::new();
    let (said, _, _, _) = call(&b, "+15555550101", &["1", "1", "10001", "5", "1", "1"]);
    assert!(
        said.contains("To use your Visa ending in 4, 2, 4, 2 for AutoPay, press 1."),
        "{said}"
    );
    assert!(said.contains("you authorize Riverbend Utilities to charge your Visa ending in 4, 2, 4, 2 for the amount of each bill, on each due date"), "{said}");
    assert!(
        said.contains(
            "You are now enrolled in AutoPay. We will notify you 3 days before each payment."
        ),
        "{said}"
    );
    let (token, terms) = b.autopay.lock().expect("lock").clone().expect("enrolled");
    assert_eq!(token, "pm_1");
    assert!(terms.starts_with("Today, November 22, 2026, you authorize"));
    let (said, _, _, _) = call(&b, "+15555550101", &["1", "1", "10001", "5", "1"]);
    assert!(
        said.contains("You are enrolled in AutoPay with your Visa ending in 4, 2, 4, 2"),
        "{said}"
    );
    assert!(said.contains("AutoPay is now off."), "{said}");
    assert!(b.autopay.lock().expect("lock").is_none());
}

#[test]
fn scheduling_and_autopay_need_a_saved_method() {
    let mut b = Fake::new();
    b.saved.clear();
    let (said, _, c, _) = call(&b, "+15555550101", &["1", "1", "10001", "4", "5"]);
    assert_eq!(
        said.matches("For that you need a saved payment method.")
            .count(),
        1,
        "{said}"
    );
    assert!(
        said.contains("AutoPay by phone uses a saved card."),
        "{said}"
    );
    assert_eq!(c.step, Step::MainMenu);
}

#[test]
fn autopay_by_phone_never_offers_a_bank_account() {
    let mut b = Fake::new();
    b.saved.insert(
        0,
        SavedMethodInfo {
            token: "pm_bank".into(),
            kind: MethodKind::Ach,
            brand: None,
            bank_type: Some(billpay_domain::BankAccountType::Checking),
            last4: "6789".into(),
        },
    );
    let (said, _, _, _) = call(&b, "+15555550101", &["1", "1", "10001", "5", "1", "1"]);
    assert!(!said.contains("6, 7, 8, 9 for AutoPay"), "{said}");
    assert!(
        said.contains("To use your Visa ending in 4, 2, 4, 2 for AutoPay, press 1."),
        "{said}"
    );
    let (token, _) = b.autopay.lock().expect("lock").clone().expect("enrolled");
    assert_eq!(token, "pm_1");
    // With only a bank account saved, the caller is told where to enroll it.
    b.saved.truncate(1);
    *b.autopay.lock().expect("lock") = None;
    let (said, _, _, _) = call(&b, "+15555550101", &["1", "1", "10001", "5"]);
    assert!(said.contains("sign up on our website"), "{said}");
}

#[test]
fn a_number_past_its_verification_limit_goes_to_a_representative() {
    let mut b = Fake::new();
    b.verification_limit = 1;
    // The first wrong ZIP is one more try; the second is past the number's limit.
    let a = "100000000017";
    let (said, r, c, _) = call(&b, "+15550009999", &["1", a, "11111", a, "22222"]);
    assert_eq!(
        said.matches("do not match our records").count(),
        2,
        "{said}"
    );
    assert!(
        said.contains("we cannot take more account entries from this phone number"),
        "{said}"
    );
    assert_eq!(r.next, Next::Transfer { account: None });
    assert_eq!(c.step, Step::Ended);
    assert_eq!(c.transfer_reason.as_deref(), Some("verification_limit"));
    // A new call from the number: the first miss transfers at once.
    let unknown = AccountNumber::from_body("99999999991").unwrap().to_string();
    let (said, r, _, _) = call(&b, "+15550009999", &["1", &unknown, "10001"]);
    assert!(said.contains("cannot take more account entries"), "{said}");
    assert_eq!(r.next, Next::Transfer { account: None });
}

#[test]
fn with_the_processor_down_a_card_entry_goes_to_a_representative() {
    // Only a saved method can be scheduled; with none, a person takes the payment.
    let mut b = Fake::new();
    b.saved.clear();
    b.down = true;
    let (said, r, c, s) = call(
        &b,
        "+15550000000",
        &[
            "1",
            "100000000017",
            "10001",
            "1",
            "1",
            "4242424242424242",
            "1234",
            "123",
            "10001",
            "1",
        ],
    );
    assert!(
        said.contains("Our payment system is not answering right now. Nothing was charged."),
        "{said}"
    );
    assert_eq!(
        r.next,
        Next::Transfer {
            account: Some("100000000017".into())
        }
    );
    assert_eq!(c.transfer_reason.as_deref(), Some("processor_unavailable"));
    assert!(s.is_empty(), "the card digits are wiped");
}

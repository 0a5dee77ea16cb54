//! The agent desk's account panel acts, over HTTP as a signed-in representative's browser:
//! take a payment with a saved card (after a confirmation page, once per confirmation),
//! schedule one, turn AutoPay on and off, and send a phone caller to the phone line to key a
//! card (a transfer code the phone line takes, the outcome back on the panel). Every action is
//! CSRF-checked, role-limited by `[desk] agent_payment_max_cents` and audited with the staff
//! member as actor. On SQLite and PostgreSQL.

mod common;

use billpay::phone::Phone;
use billpay_services::staff::Role;
use common::desk::*;
use common::*;
use serde_json::json;

const TOKEN: &str = TWILIO_TOKEN;
const CALLER: &str = "+15555550101";

/// An account owing $84.10 with a saved Visa ending in 4242; returns (number, method id).
async fn account_with_card(app: &TestApp) -> (String, String) {
    let acct = app.account_with_bill(8410).await;
    let (s, m) = app
        .post(
            &format!("/api/v1/accounts/{acct}/payment_methods"),
            json!({"type": "card", "number": "4242424242424242", "exp_month": 12, "exp_year": 2034}),
        )
        .await;
    assert!(s == 201 || s == 200, "{m}");
    (acct, m["id"].as_str().unwrap().to_string())
}

async fn staff_id(app: &TestApp, email: &str) -> String {
    app.app.staff_by_email(email).await.unwrap().unwrap().id
}

fn audited(actions: &[(String, String)], actor: &str, action: &str) -> bool {
    actions
        .iter()
        .any(|(who, what)| who == &format!("staff:{actor}") && what == action)
}

/// The days from today in UTC, as YYYY-MM-DD.
fn in_days(app: &TestApp, days: i64) -> String {
    billpay_services::Clock::now(app.clock.as_ref())
        .to_zoned(jiff::tz::TimeZone::get("America/New_York").unwrap())
        .date()
        .checked_add(jiff::Span::new().days(days))
        .unwrap()
        .to_string()
}

both_engines! {
    async fn the_desk_takes_and_schedules_payments_with_a_saved_card(app) {
        staff(&app, "ann@example.com", "Ann Agent", Role::Agent).await;
        staff(&app, "sue@example.com", "Sue Supervisor", Role::Supervisor).await;
        let (acct, card) = account_with_card(&app).await;
        let panel = format!("/desk/accounts/{acct}");
        let (mut ann, _) = sign_in(&app, "ann@example.com", None).await;
        let page = ann.get(&panel).await.body;
        assert!(page.contains("Review the payment") && page.contains("Visa ending in 4242"), "{page}");
        // Without the session's token nothing happens.
        let p = ann.post(&format!("{panel}/pay/review"), &[("method", &card), ("amount", "84.10")]).await;
        assert_eq!(p.status, 403);
        let p = ann.post(&format!("{panel}/pay"), &[("method", &card), ("amount", "84.10"), ("form_key", "k")]).await;
        assert_eq!(p.status, 403);
        assert_eq!(app.processor_charges().await, 0);
        // Review: the amount and the masked card are read back before anything is charged.
        let review = ann
            .submit(&panel, &format!("{panel}/pay/review"), &[("method", &card), ("amount", "84.10"), ("back", &panel)])
            .await;
        assert_eq!(review.status, 200, "{}", review.body);
        assert!(review.body.contains("Charge $84.10 to Visa ending in 4242"), "{}", review.body);
        assert_eq!(app.processor_charges().await, 0, "reviewing charges nothing");
        let (csrf, key) = (hidden(&review.body, "csrf"), hidden(&review.body, "form_key"));
        let form = [("csrf", csrf.as_str()), ("method", card.as_str()), ("amount", "84.10"), ("form_key", key.as_str()), ("back", panel.as_str())];
        let paid = ann.post(&format!("{panel}/pay"), &form).await;
        assert_eq!(paid.status, 200, "{}", paid.body);
        assert!(paid.body.contains("$84.10 with Visa ending in 4242 was approved. Confirmation number"), "{}", paid.body);
        // The same confirmation sent again pays once.
        let again = ann.post(&format!("{panel}/pay"), &form).await;
        assert_eq!(again.status, 200, "{}", again.body);
        assert_eq!(app.processor_charges().await, 1);
        assert_eq!(app.balance(&acct).await, 0);
        let (_, payments) = app.get(&format!("/api/v1/accounts/{acct}/payments")).await;
        assert_eq!(payments["data"][0]["channel"], "agent", "{payments}");
        // Above the representative's limit ($500.00): refused, audited; a supervisor may.
        let review = ann
            .submit(&panel, &format!("{panel}/pay/review"), &[("method", &card), ("amount", "600.00"), ("back", &panel)])
            .await;
        let key = hidden(&review.body, "form_key");
        let p = ann
            .post(&format!("{panel}/pay"), &[("csrf", &csrf), ("method", &card), ("amount", "600.00"), ("form_key", &key)])
            .await;
        assert_eq!(p.status, 403, "{}", p.body);
        assert!(p.body.contains("Only a supervisor can take or schedule a payment above $500.00."), "{}", p.body);
        assert_eq!(app.processor_charges().await, 1);
        // Schedule with the saved card for a later date.
        let date = in_days(&app, 10);
        let p = ann
            .submit(&panel, &format!("{panel}/schedule"), &[("method", &card), ("amount", "20.00"), ("date", &date), ("back", &panel)])
            .await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert!(p.body.contains(&format!("$20.00 is scheduled for {date}")), "{}", p.body);
        let p = ann
            .submit(&panel, &format!("{panel}/schedule"), &[("method", &card), ("amount", "700.00"), ("date", &date)])
            .await;
        assert_eq!(p.status, 403, "an agent cannot schedule above the limit: {}", p.body);
        let (mut sue, _) = sign_in(&app, "sue@example.com", None).await;
        let p = sue
            .submit(&panel, &format!("{panel}/schedule"), &[("method", &card), ("amount", "700.00"), ("date", &date)])
            .await;
        assert_eq!(p.status, 200, "a supervisor can: {}", p.body);
        let number = billpay_domain::AccountNumber::parse(&acct).unwrap();
        let scheduled = app.app.scheduled_payments(&number).await.unwrap();
        let mut amounts: Vec<i64> = scheduled.iter().map(|s| s.amount.minor_units()).collect();
        amounts.sort();
        assert_eq!(amounts, vec![2000, 70000]);
        assert!(scheduled.iter().all(|s| s.start_date == date && s.payment_method_id == card));
        // AutoPay on, then off.
        let p = ann.submit(&panel, &format!("{panel}/autopay"), &[("method", &card), ("back", &panel)]).await;
        assert_eq!(p.location.as_deref(), Some(panel.as_str()), "{}", p.body);
        let page = ann.get(&panel).await.body;
        assert!(page.contains("On, with Visa ending in 4242"), "{page}");
        let p = ann.submit(&panel, &format!("{panel}/autopay/cancel"), &[("back", &panel)]).await;
        assert_eq!(p.status, 303, "{}", p.body);
        let page = ann.get(&panel).await.body;
        assert!(page.contains("<dt>AutoPay</dt><dd>Off</dd>"), "{page}");
        assert!(!page.contains("4242424242424242"), "{page}");
        let ann_id = staff_id(&app, "ann@example.com").await;
        let sue_id = staff_id(&app, "sue@example.com").await;
        let actions = audit_actions(&app).await;
        for a in ["desk.payment_taken", "desk.payment_refused", "desk.payment_scheduled", "desk.schedule_refused", "desk.autopay_enrolled", "desk.autopay_canceled"] {
            assert!(audited(&actions, &ann_id, a), "{a} by Ann: {actions:?}");
        }
        assert!(audited(&actions, &sue_id, "desk.payment_scheduled"), "{actions:?}");
        app.assert_verified().await;
    }
}

/// The transfer code in the desk's message page.
fn transfer_code(html: &str) -> String {
    let i = html.find("Transfer code ").expect("a transfer code") + "Transfer code ".len();
    html[i..i + 8].to_string()
}

/// A call the representative's phone system redirected to the hand-off URL; returns the
/// transcript.
async fn handed_off_call(app: &TestApp, sid: &str, code: &str, keys: &[&str]) -> String {
    let phone = Phone::new(&app.base, TOKEN, CALLER, sid);
    let mut script: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    script.reverse();
    let mut lines = Vec::new();
    phone
        .call_at(
            &format!("/ivr/twilio/handoff?code={code}"),
            || script.pop(),
            |l| lines.push(l.to_string()),
        )
        .await
        .expect("call");
    lines.join("\n")
}

both_engines! {
    with line;

    async fn a_phone_agent_sends_the_caller_to_key_a_card_and_gets_the_outcome(app) {
        staff(&app, "ann@example.com", "Ann Agent", Role::Agent).await;
        let acct = app.account_with_bill(8410).await;
        let panel = format!("/desk/accounts/{acct}");
        let (mut ann, _) = sign_in(&app, "ann@example.com", None).await;
        let p = ann.post(&format!("{panel}/phone-handoff"), &[("amount", "84.10")]).await;
        assert_eq!(p.status, 403, "CSRF-checked");
        let p = ann.submit(&panel, &format!("{panel}/phone-handoff"), &[("amount", "600.00")]).await;
        assert_eq!(p.status, 403, "role-limited: {}", p.body);
        let p = ann.submit(&panel, &format!("{panel}/phone-handoff"), &[("amount", "84.10"), ("back", &panel)]).await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert!(p.body.contains("/ivr/twilio/handoff?code="), "{}", p.body);
        let code = transfer_code(&p.body);
        assert!(code.chars().all(|c| c.is_ascii_digit()), "{code}");
        assert!(ann.get(&panel).await.body.contains("waiting for the call"));
        // The caller (already on a call with the representative) is redirected to the line,
        // keys a card that is declined, and goes back to a representative.
        let heard = handed_off_call(&app, "CAhandoff1", &code, &["4000000000009995", "1234", "123", "10001", "1"]).await;
        assert!(heard.contains("Your representative has set up a card payment of"), "{heard}");
        assert!(heard.contains("I am returning you to your representative."), "{heard}");
        assert!(heard.contains("[transferred to the billing queue]"), "{heard}");
        assert!(!heard.contains("4000000000009995"), "{heard}");
        let page = ann.get(&panel).await.body;
        assert!(page.to_lowercase().contains("declined: insufficient funds") || page.contains("Declined: "), "{page}");
        // A used code is refused, and the caller goes back to a representative.
        let heard = handed_off_call(&app, "CAhandoff2", &code, &[]).await;
        assert!(heard.contains("This transfer code is not valid or has expired."), "{heard}");
        assert!(heard.contains("[transferred to the billing queue]"), "{heard}");
        // A new code; this time the card is approved.
        let p = ann.submit(&panel, &format!("{panel}/phone-handoff"), &[("amount", "84.10")]).await;
        let code = transfer_code(&p.body);
        let heard = handed_off_call(&app, "CAhandoff3", &code, &["4242424242424242", "1234", "123", "10001", "1"]).await;
        assert!(heard.contains("was approved"), "{heard}");
        assert_eq!(app.balance(&acct).await, 0);
        let page = ann.get(&panel).await.body;
        assert!(page.contains("Paid $84.10 with Visa ending in 4242. Confirmation number"), "{page}");
        assert!(!page.contains("4242424242424242"), "{page}");
        // The representative answering hears why the caller is back.
        let info = app.app.ivr_call_info("CAhandoff3").await.unwrap();
        assert_eq!(info.transfer_reason.as_deref(), Some("handoff_paid"));
        // A card number never reaches the call's stored state or the desk's table.
        let row = app.app.ivr_call("CAhandoff3").await.unwrap().unwrap();
        assert!(!row.state.contains("4242424242424242") && row.sealed_ciphertext.is_none());
        let mut c = app.app.store.read_conn().await.unwrap();
        let results: Vec<Option<String>> = sqlx::query_scalar("SELECT result FROM desk_phone_handoffs")
            .fetch_all(&mut *c)
            .await
            .unwrap();
        assert!(results.iter().flatten().all(|r| !r.contains("4242424242424242") && !r.contains("4000000000009995")));
        let ann_id = staff_id(&app, "ann@example.com").await;
        let actions = audit_actions(&app).await;
        assert!(audited(&actions, &ann_id, "desk.phone_handoff_created"), "{actions:?}");
        assert!(audited(&actions, &ann_id, "desk.handoff_refused"), "{actions:?}");
        app.assert_verified().await;
    }
}

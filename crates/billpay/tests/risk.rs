//! Fraud rules on customer payments, through the real entry points on SQLite and PostgreSQL:
//! a card-testing run against guest quick pay (one client address, hundreds of stolen cards)
//! and against the phone line (one caller's number), one card tried on many accounts through
//! the API, and a blocked caller. Each attack is stopped within a bounded number of attempts,
//! the refusal never names the rule, every decision is recorded with its reasons, and genuine
//! customers elsewhere pay as usual. And the review rules: a payment far above the account's
//! bill, or a large first use of a saved card or a bank account, goes through and is held in
//! the desk's review queue, where a supervisor approves it or rejects it (refunded).

mod common;

use billpay::phone::Phone;
use common::visitor::{Visitor, card_form, hidden};
use common::*;

/// The neutral refusal every blocked customer gets.
const REFUSED: &str = billpay_services::risk::REFUSED;

/// Decline cards from the reference list, and Luhn-valid numbers the sandbox approves.
const DECLINED: [&str; 5] = [
    "4000000000000002",
    "4000000000009995",
    "4000000000009987",
    "4000000000009979",
    "4000000000006975",
];

/// A Luhn-valid Visa number built from `n` (the sandbox approves numbers it has no script for).
fn live_card(n: u32) -> String {
    let body = format!("4111{n:011}");
    format!("{body}{}", billpay_domain::luhn_digit(&body).unwrap())
}

/// Sends a portal form from client address `ip` (through the trusted proxy's header).
async fn post_from(
    v: &mut Visitor,
    ip: &str,
    path: &str,
    form: &[(&str, &str)],
) -> common::visitor::Page {
    let req = v
        .client
        .post(format!("{}{path}", v.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-forwarded-for", ip)
        .body(serde_urlencoded::to_string(form).unwrap());
    v.send(req).await
}

/// Loads `page` and sends its form from `ip`, with the session's CSRF token.
async fn submit_from(
    v: &mut Visitor,
    ip: &str,
    page: &str,
    action: &str,
    form: &[(&str, &str)],
) -> common::visitor::Page {
    let p = v.get(page).await;
    assert_eq!(p.status, 200, "{page}: {}", p.body);
    let csrf = hidden(&p.body, "csrf");
    let mut fields = vec![("csrf", csrf.as_str())];
    fields.extend_from_slice(form);
    post_from(v, ip, action, &fields).await
}

/// One guest quick-pay attempt of `amount` with `card` in a session that found its account.
async fn attempt(v: &mut Visitor, ip: &str, amount: &str, card: &str) -> common::visitor::Page {
    let p = submit_from(
        v,
        ip,
        "/pay/amount",
        "/pay/amount",
        &[("choice", "other"), ("amount", amount)],
    )
    .await;
    assert_eq!(p.location.as_deref(), Some("/pay/method"), "{}", p.body);
    let p = submit_from(v, ip, "/pay/method", "/pay/method", &card_form(card)).await;
    assert_eq!(p.location.as_deref(), Some("/pay/review"), "{}", p.body);
    let review = v.get("/pay/review").await;
    let csrf = hidden(&review.body, "csrf");
    let key = hidden(&review.body, "form_key");
    post_from(
        v,
        ip,
        "/pay/confirm",
        &[("csrf", &csrf), ("form_key", &key)],
    )
    .await
}

async fn find_account(v: &mut Visitor, ip: &str, account: &str) {
    let p = submit_from(
        v,
        ip,
        "/pay",
        "/pay",
        &[("account_number", account), ("postal_code", "10001")],
    )
    .await;
    assert_eq!(p.location.as_deref(), Some("/pay/amount"), "{}", p.body);
}

/// Payments that reached the processor on an account (declined ones included).
async fn payments_of(app: &TestApp, account: &str) -> Vec<serde_json::Value> {
    let (s, list) = app
        .get(&format!("/api/v1/accounts/{account}/payments?limit=100"))
        .await;
    assert_eq!(s, 200, "{list}");
    list["data"].as_array().unwrap().clone()
}

async fn decisions(app: &TestApp, account: &str) -> Vec<billpay_services::risk::RiskDecisionView> {
    let id = app
        .app
        .account(&billpay_domain::AccountNumber::parse(account).unwrap())
        .await
        .unwrap()
        .id;
    app.app.risk_decisions_of(&id, 1000).await.unwrap()
}

async fn app_behind_a_proxy(engine: Engine) -> TestApp {
    spawn_app_with(engine, |s| {
        s.portal.client_ip_header = Some("X-Forwarded-For".into());
        // Enough lookups for the genuine customers below; the attacker needs only one.
        s.portal.lookups_per_window = 100;
    })
    .await
}

async fn line_with_a_block_list(engine: Engine) -> TestApp {
    spawn_app_with(engine, |s| {
        s.twilio_auth_token = Some(billpay::config::SecretSetting(TWILIO_TOKEN.into()));
        s.agent_hours_start = 0;
        s.agent_hours_end = 24;
        s.risk.blocked_callers = vec!["+15550006666".into()];
    })
    .await
}

/// Places a call from `from` with these keys; returns everything the caller heard.
async fn call(app: &TestApp, sid: &str, from: &str, keys: &[&str]) -> String {
    let phone = Phone::new(&app.base, TWILIO_TOKEN, from, sid);
    let mut script: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    script.reverse();
    let mut heard = Vec::new();
    phone
        .call(|| script.pop(), |l| heard.push(l.to_string()))
        .await
        .expect("call");
    heard.join("\n")
}

/// English, the account number, its ZIP, pay the balance with a new card, confirm.
fn pay_by_phone<'a>(account: &'a str, card: &'a str) -> Vec<&'a str> {
    vec![
        "1", account, "10001", "1", "1", card, "1234", "123", "10001", "1",
    ]
}

both_engines! {
    with app_behind_a_proxy;

    async fn card_testing_against_quick_pay_is_stopped_and_other_customers_pay(app) {
        let victim = app.account_with_bill(50_000).await;
        let attacker_ip = "203.0.113.66";
        let mut attacker = Visitor::new(&app);
        find_account(&mut attacker, attacker_ip, &victim).await;
        // 200 stolen cards, mostly dead, some live, small and changing amounts.
        let mut refused = 0;
        let mut first_refusal = None;
        for i in 0..200u32 {
            let card = if i % 4 == 3 { live_card(i) } else { DECLINED[(i as usize) % DECLINED.len()].to_string() };
            let amount = format!("1.{:02}", i % 100);
            let p = attempt(&mut attacker, attacker_ip, &amount, &card).await;
            if p.status == 403 {
                assert!(p.body.contains(&REFUSED.replace('\'', "&#39;")), "{}", p.body);
                refused += 1;
                first_refusal.get_or_insert(i);
            } else {
                assert!(first_refusal.is_none(), "attempt {i} got through after a refusal: {} {}", p.status, p.body);
            }
        }
        let first = first_refusal.expect("the attack was never stopped");
        assert!(first <= 8, "stopped only at attempt {first}");
        assert_eq!(refused, 200 - first);
        // What reached the processor is bounded; the refusal names no rule.
        let reached = payments_of(&app, &victim).await;
        assert!(reached.len() <= 8, "{} attempts reached the processor", reached.len());
        let page = attempt(&mut attacker, attacker_ip, "2.00", &live_card(9999)).await;
        for word in ["decline", "card_", "source", "velocity", "BIN", "rule"] {
            assert!(!page.body.contains(word), "the refusal says {word}: {}", page.body);
        }
        // A fresh session from the same address is still refused.
        let mut again = Visitor::new(&app);
        find_account(&mut again, attacker_ip, &victim).await;
        assert_eq!(attempt(&mut again, attacker_ip, "3.00", &live_card(7)).await.status, 403);

        // Every decision is recorded with its reasons.
        let ds = decisions(&app, &victim).await;
        assert_eq!(ds.len(), 202);
        let blocks: Vec<_> = ds.iter().filter(|d| d.action == billpay_domain::risk::RiskAction::Block).collect();
        assert_eq!(blocks.len(), 202 - first as usize);
        assert!(blocks.iter().all(|d| !d.reasons.is_empty() && d.score > 0 && d.payment_id.is_none()));
        let by_source = blocks
            .iter()
            .filter(|d| d.reasons.contains(&billpay_domain::risk::RiskReason::SourceDeclines))
            .count();
        assert!(by_source + 1 >= blocks.len(), "after the first refusal the address itself is refused");

        // A representative sees the refusals and why on the account panel.
        common::desk::staff(&app, "ann@example.com", "Ann Agent", billpay_services::staff::Role::Agent).await;
        let (mut ann, _) = common::desk::sign_in(&app, "ann@example.com", None).await;
        let panel = ann.get(&format!("/desk/accounts/{victim}")).await;
        assert_eq!(panel.status, 200, "{}", panel.body);
        assert!(panel.body.contains("web payment refused (score"), "{}", panel.body);
        assert!(panel.body.contains("Many declined or refused payments from the same device, address or phone number"), "{}", panel.body);
        assert!(!panel.body.contains("4000000000000002"));
        // A supervisor's dashboard counts the checks per day and the refusals by rule.
        common::desk::staff(&app, "sue@example.com", "Sue Supervisor", billpay_services::staff::Role::Supervisor).await;
        let (mut sue, _) = common::desk::sign_in(&app, "sue@example.com", None).await;
        let dash = sue.get("/desk/dashboard?channel=web").await;
        assert_eq!(dash.status, 200, "{}", dash.body);
        assert!(dash.body.contains("Fraud checks per day"), "{}", dash.body);
        let refusals = dash.body.split("id=\"refusals\"").nth(1).expect("the refusals table");
        let refusals = refusals.split("</table>").next().unwrap();
        assert!(refusals.contains("<td>source_declines</td>"), "{refusals}");
        let total: i64 = refusals
            .split("</tr>")
            .filter_map(|row| row.rsplit("<td>").next()?.split("</td>").next()?.parse::<i64>().ok())
            .sum();
        assert!(total >= i64::from(refused), "every refusal counted at least once: {refusals}");

        // Genuine customers at other addresses, with the same card range, pay as usual.
        for (k, ip) in ["198.51.100.7", "198.51.100.8", "192.0.2.10"].into_iter().enumerate() {
            let own = app.account_with_bill(8410).await;
            let mut customer = Visitor::new(&app);
            find_account(&mut customer, ip, &own).await;
            if k == 0 {
                // One typo'd card first, as real customers do.
                let p = attempt(&mut customer, ip, "84.10", "4000000000009995").await;
                assert_eq!(p.status, 402, "{}", p.body);
            }
            let good = if k == 0 { "4242424242424242".to_string() } else { live_card(100 + k as u32) };
            let p = attempt(&mut customer, ip, "84.10", &good).await;
            assert_eq!(p.status, 303, "{ip}: {}", p.body);
            assert!(p.location.unwrap().starts_with("/pay/done/"));
            assert_eq!(app.balance(&own).await, 0);
        }
        app.assert_verified().await;
    }
}

both_engines! {
    with line_with_a_block_list;

    async fn card_testing_by_phone_is_stopped_and_other_callers_pay(app) {
        let victim = app.account_with_bill(8410).await;
        let attacker = "+15550009999";
        let mut stopped_at = None;
        for i in 0..30usize {
            let card = DECLINED[i % DECLINED.len()];
            let heard = call(&app, &format!("CAattack{i}"), attacker, &pay_by_phone(&victim, card)).await;
            if heard.contains("We could not take this payment by phone right now. Nothing was charged.") {
                stopped_at.get_or_insert(i);
            } else {
                assert!(stopped_at.is_none(), "call {i} reached the processor after a refusal:\n{heard}");
                assert!(heard.contains("To pay with another method, press 1."), "call {i}:\n{heard}");
            }
        }
        let stopped_at = stopped_at.expect("the attack was never stopped");
        assert!(stopped_at <= 5, "stopped only at call {stopped_at}");
        assert!(payments_of(&app, &victim).await.len() <= 5);

        // Another caller, another account, the same card range: paid.
        let own = app.account_with_bill(8410).await;
        let heard = call(&app, "CAgenuine", "+15555550123", &pay_by_phone(&own, "4242424242424242")).await;
        assert!(heard.contains("was approved"), "{heard}");
        assert_eq!(app.balance(&own).await, 0);

        // A number on the block list is refused from its first try.
        let third = app.account_with_bill(8410).await;
        let heard = call(&app, "CAblocked", "+15550006666", &pay_by_phone(&third, "4242424242424242")).await;
        assert!(heard.contains("We could not take this payment by phone right now."), "{heard}");
        assert!(payments_of(&app, &third).await.is_empty());
        let ds = decisions(&app, &third).await;
        assert_eq!(ds[0].reasons, vec![billpay_domain::risk::RiskReason::BlockedCaller]);
        app.assert_verified().await;
    }
}

both_engines! {
    async fn one_card_tried_on_many_accounts_is_refused_through_the_api(app) {
        let stolen = live_card(4242);
        let mut results = Vec::new();
        for _ in 0..6 {
            let account = app.account_with_bill(2_000).await;
            let (s, body) = app.pay_with(&account, 2_000, card(&stolen)).await;
            results.push((account, s, body));
        }
        // Four accounts pay; the fifth account with the same card within the hour is one too many.
        for (_, s, body) in &results[..4] {
            assert_eq!(*s, 201, "{body}");
        }
        for (account, s, body) in &results[4..] {
            assert_eq!(*s, 409, "{body}");
            assert_eq!(body["error"]["code"], "payment_refused", "{body}");
            assert_eq!(body["error"]["message"], REFUSED);
            assert!(payments_of(&app, account).await.is_empty());
            let ds = decisions(&app, account).await;
            assert_eq!(ds[0].reasons, vec![billpay_domain::risk::RiskReason::CardAccounts]);
            assert!(!format!("{ds:?}").contains(&stolen), "no card number in a decision");
        }
        // Nothing readable holds the card number.
        let mut c = app.app.store.read_conn().await.unwrap();
        let rows: Vec<(String, Option<String>, Option<String>)> =
            sqlx::query_as("SELECT id, card_fp, bin FROM risk_events").fetch_all(&mut *c).await.unwrap();
        assert_eq!(rows.len(), 6);
        for (_, fp, bin) in rows {
            assert_eq!(bin.as_deref(), Some("411100"));
            assert!(!fp.unwrap().contains(&stolen[6..]));
        }
        // The window slides: an hour later the card pays again.
        app.clock.advance(jiff::SignedDuration::from_mins(61));
        let later = app.account_with_bill(2_000).await;
        let (s, body) = app.pay_with(&later, 2_000, card(&stolen)).await;
        assert_eq!(s, 201, "{body}");
        // A day later the attempts are forgotten by the housekeeping; the decisions stay.
        app.clock.advance(jiff::SignedDuration::from_hours(26));
        let report = app.app.reconcile().await.unwrap();
        assert_eq!(report.risk_events_pruned, 7);
        assert_eq!(decisions(&app, &results[5].0).await.len(), 1);
        app.assert_verified().await;
    }
}

/// A supervisor's and a representative's desk browsers, signed in, and the supervisor's
/// authenticator secret (to sign in again).
async fn reviewers(app: &TestApp) -> (common::desk::Browser, common::desk::Browser, Vec<u8>) {
    use billpay_services::staff::Role;
    common::desk::staff(app, "sue@example.com", "Sue Supervisor", Role::Supervisor).await;
    common::desk::staff(app, "ann@example.com", "Ann Agent", Role::Agent).await;
    let (sue, secret) = common::desk::sign_in(app, "sue@example.com", None).await;
    let (ann, _) = common::desk::sign_in(app, "ann@example.com", None).await;
    (sue, ann, secret)
}

/// Sends a review decision form with the browser's own CSRF token.
async fn decide(
    b: &mut common::desk::Browser,
    payment: &str,
    decision: &str,
    reason: &str,
) -> common::desk::Page {
    let page = b.get("/desk").await;
    let csrf = hidden(&page.body, "csrf");
    b.post(
        &format!("/desk/reviews/{payment}/{decision}"),
        &[("csrf", csrf.as_str()), ("reason", reason)],
    )
    .await
}

async fn payment_status(app: &TestApp, id: &str) -> String {
    let (s, p) = app.get(&format!("/api/v1/payments/{id}")).await;
    assert_eq!(s, 200, "{p}");
    p["status"].as_str().unwrap().to_string()
}

async fn count(app: &TestApp, sql: &'static str) -> i64 {
    let mut c = app.app.store.read_conn().await.unwrap();
    sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(&mut *c)
        .await
        .unwrap()
}

both_engines! {
    async fn a_payment_far_above_the_bill_is_held_for_review_and_a_supervisor_decides(app) {
        use billpay_domain::risk::{RiskAction, RiskReason};
        // $900 and $950 on $84.10 bills: the payments go through, the customer sees the usual
        // confirmation, and each is held for review.
        let stolen = app.account_with_bill(8_410).await;
        let (s, first) = app.pay_with(&stolen, 90_000, card("4242424242424242")).await;
        assert_eq!(s, 201, "{first}");
        assert_eq!(first["status"], "succeeded", "{first}");
        let first_id = first["id"].as_str().unwrap().to_string();
        app.clock.advance(jiff::SignedDuration::from_secs(5));
        let genuine = app.account_with_bill(8_410).await;
        let (s, second) = app.pay_with(&genuine, 95_000, card("5555555555554444")).await;
        assert_eq!(s, 201, "{second}");
        let second_id = second["id"].as_str().unwrap().to_string();
        let d = &decisions(&app, &stolen).await[0];
        assert_eq!(d.action, RiskAction::Review);
        assert_eq!(d.reasons, vec![RiskReason::AmountAboveHistory]);
        assert_eq!(d.payment_id.as_deref(), Some(first_id.as_str()));

        // Small payments are never reviewed: the bill itself, and $400 (above three times the
        // bill but under the $500 floor) on a new account.
        let small = app.account_with_bill(8_410).await;
        for cents in [8_410, 40_000] {
            let (s, p) = app.pay_with(&small, cents, card("4242424242424242")).await;
            assert_eq!(s, 201, "{p}");
            assert_eq!(decisions(&app, &small).await[0].action, RiskAction::Allow, "{cents}");
        }
        assert_eq!(count(&app, "SELECT CAST(COUNT(*) AS BIGINT) FROM payment_reviews").await, 2);

        let (mut sue, mut ann, _) = reviewers(&app).await;
        // The queue, oldest first, with the account, amount, method, channel and reasons in
        // plain words; never a card number.
        let queue = sue.get("/desk/reviews").await;
        assert_eq!(queue.status, 200, "{}", queue.body);
        let (a, b) = (queue.body.find(&first_id).unwrap(), queue.body.find(&second_id).unwrap());
        assert!(a < b, "oldest first");
        for shown in [stolen.as_str(), "$900.00", "Visa ending in 4242", "Mastercard ending in 4444", "web",
            "The amount is far above the account&#39;s bill and its largest payment in the last 12 months"] {
            assert!(queue.body.contains(shown), "{shown}: {}", queue.body);
        }
        assert!(!queue.body.contains("4242424242424242") && !queue.body.contains("5555555555554444"));
        assert!(sue.get("/desk").await.body.contains("href=\"/desk/reviews\""), "linked for supervisors");

        // A representative neither sees the queue nor decides; the refusal is audited.
        assert!(!ann.get("/desk").await.body.contains("href=\"/desk/reviews\""));
        let p = ann.get("/desk/reviews").await;
        assert_eq!(p.status, 403, "{}", p.body);
        let p = decide(&mut ann, &first_id, "reject", "looks odd").await;
        assert_eq!(p.status, 403, "{}", p.body);
        assert!(p.body.contains("approved or rejected by a supervisor"), "{}", p.body);
        assert_eq!(payment_status(&app, &first_id).await, "succeeded");

        // A rejection needs a reason; a form without the session's token changes nothing.
        let p = decide(&mut sue, &first_id, "reject", "   ").await;
        assert_eq!(p.status, 409, "{}", p.body);
        assert!(p.body.contains("Enter the reason for rejecting this payment."), "{}", p.body);
        let p = sue.post(&format!("/desk/reviews/{first_id}/reject"), &[("csrf", "forged"), ("reason", "stolen")]).await;
        assert_eq!(p.status, 403, "{}", p.body);
        assert!(p.body.contains("This form has expired"), "{}", p.body);
        let p = sue.post(&format!("/desk/reviews/{first_id}/approve"), &[("reason", "no token")]).await;
        assert_eq!(p.status, 403, "{}", p.body);
        assert_eq!(payment_status(&app, &first_id).await, "succeeded");
        assert_eq!(app.balance(&stolen).await, 8_410 - 90_000);

        // Rejected with a reason: refunded in full through the refund path, and the ledger holds.
        let p = decide(&mut sue, &first_id, "reject", "Cardholder reported the card stolen").await;
        assert_eq!(p.status, 303, "{}", p.body);
        assert_eq!(p.location.as_deref(), Some("/desk/reviews"));
        assert_eq!(payment_status(&app, &first_id).await, "refunded");
        assert_eq!(app.balance(&stolen).await, 8_410);
        let refunds = app.app.refunds_of(&first_id).await.unwrap();
        assert_eq!(refunds.len(), 1, "{refunds:?}");
        assert_eq!((refunds[0].amount.minor_units(), refunds[0].status.as_str()), (90_000, "succeeded"));
        // Approved: the payment stands.
        let p = decide(&mut sue, &second_id, "approve", "").await;
        assert_eq!(p.status, 303, "{}", p.body);
        assert_eq!(payment_status(&app, &second_id).await, "succeeded");
        let queue = sue.get("/desk/reviews").await;
        assert!(queue.body.contains("No payments are held for review."), "{}", queue.body);
        // Decided once.
        let p = decide(&mut sue, &first_id, "approve", "").await;
        assert_eq!(p.status, 409, "{}", p.body);
        assert!(p.body.contains("already rejected"), "{}", p.body);
        app.assert_verified().await;

        // Every decision is recorded with the rules' reasons, audited, and sealed in the chain.
        assert_eq!(count(&app, "SELECT CAST(COUNT(*) AS BIGINT) FROM risk_decisions WHERE action = 'reject' AND reasons = 'amount_above_history'").await, 1);
        assert_eq!(count(&app, "SELECT CAST(COUNT(*) AS BIGINT) FROM risk_decisions WHERE action = 'approve'").await, 1);
        let actions = common::desk::audit_actions(&app).await;
        for action in ["desk.review_refused", "desk.review_rejected", "desk.review_approved"] {
            assert_eq!(actions.iter().filter(|(_, a)| a == action).count(), 1, "{action}: {actions:?}");
        }
        app.app.seal_audit().await.unwrap();
        let chain = app.app.verify_audit().await.unwrap();
        assert!(chain.ok(), "{:?}", chain.problems);
        let metrics = app.client.get(format!("{}/metrics", app.base)).send().await.unwrap().text().await.unwrap();
        for action in ["review", "reject", "approve"] {
            let counted = format!("billpay_risk_decisions_total{{channel=\"web\",action=\"{action}\"}}");
            assert!(metrics.contains(&counted), "{counted}: {metrics}");
        }

        // The account panel's fraud checks show the review and its decision, to every agent.
        let panel = ann.get(&format!("/desk/accounts/{stolen}")).await;
        assert_eq!(panel.status, 200, "{}", panel.body);
        assert!(panel.body.contains("web payment sent to review (score"), "{}", panel.body);
        assert!(panel.body.contains("rejected by Sue Supervisor on "), "{}", panel.body);
        assert!(panel.body.contains("; $900.00 refunded in all."), "{}", panel.body);
        assert!(panel.body.contains("Cardholder reported the card stolen"), "{}", panel.body);
        let panel = sue.get(&format!("/desk/accounts/{genuine}")).await;
        assert!(panel.body.contains("approved by Sue Supervisor"), "{}", panel.body);
    }

    async fn a_payment_refunded_before_its_review_is_rejected_without_a_second_refund(app) {
        let acct = app.account_with_bill(8_410).await;
        let (s, p) = app.pay_with(&acct, 90_000, card("4242424242424242")).await;
        assert_eq!(s, 201, "{p}");
        let id = p["id"].as_str().unwrap().to_string();
        let (s, r) = app.post_idem(&format!("/api/v1/payments/{id}/refunds"), "refund-all", serde_json::json!({})).await;
        assert_eq!(s, 201, "{r}");
        let (mut sue, _, _) = reviewers(&app).await;
        let d = decide(&mut sue, &id, "reject", "Customer called: not theirs").await;
        assert_eq!(d.status, 303, "{}", d.body);
        let panel = sue.get(&format!("/desk/accounts/{acct}")).await;
        assert!(panel.body.contains("; $900.00 refunded in all."), "{}", panel.body);
        let mut c = app.app.store.read_conn().await.unwrap();
        let (refunds,): (i64,) = sqlx::query_as("SELECT CAST(COUNT(*) AS BIGINT) FROM refunds WHERE payment_id = $1")
            .bind(&id).fetch_one(&mut *c).await.unwrap();
        drop(c);
        assert_eq!(refunds, 1, "one refund only");
        app.assert_verified().await;
    }

    async fn a_large_first_use_of_a_saved_card_or_a_bank_account_is_reviewed(app) {
        use billpay_domain::risk::{RiskAction, RiskReason};
        // A $2,000 bill: $1,500 is ordinary for the account, but not as a new method's first use.
        let acct = app.account_with_bill(200_000).await;
        let (s, m) = app.post(&format!("/api/v1/accounts/{acct}/payment_methods"),
            serde_json::json!({"type": "card", "number": "4242424242424242", "exp_month": 12, "exp_year": 2034})).await;
        assert_eq!(s, 201, "{m}");
        let token = m["id"].as_str().unwrap().to_string();
        let saved = serde_json::json!({"type": "token", "token": token});
        let (s, first) = app.pay_with(&acct, 150_000, saved.clone()).await;
        assert_eq!(s, 201, "{first}");
        let d = &decisions(&app, &acct).await[0];
        assert_eq!((d.action, d.reasons.clone()), (RiskAction::Review, vec![RiskReason::NewMethodAmount]));
        // At or under the threshold, no review.
        let (s, p) = app.pay_with(&acct, 10_000, saved.clone()).await;
        assert_eq!(s, 201, "{p}");
        assert_eq!(decisions(&app, &acct).await[0].action, RiskAction::Allow);
        // Once approved, the method has paid before: its next large payment is not reviewed.
        let (mut sue, _, sue_secret) = reviewers(&app).await;
        let p = decide(&mut sue, first["id"].as_str().unwrap(), "approve", "Customer called ahead").await;
        assert_eq!(p.status, 303, "{}", p.body);
        let (s, p) = app.pay_with(&acct, 120_000, saved).await;
        assert_eq!(s, 201, "{p}");
        assert_eq!(decisions(&app, &acct).await[0].action, RiskAction::Allow);

        // ACH first use: the account's first bank debit above the threshold.
        let other = app.account_with_bill(200_000).await;
        let (s, debit) = app.pay_with(&other, 150_000, ach("000123456789")).await;
        assert_eq!(s, 201, "{debit}");
        let d = &decisions(&app, &other).await[0];
        assert_eq!((d.action, d.reasons.clone()), (RiskAction::Review, vec![RiskReason::AchFirstUse]));
        let debit_id = debit["id"].as_str().unwrap();
        let queue = sue.get("/desk/reviews").await;
        assert!(queue.body.contains("bank account ending in 6789"), "{}", queue.body);
        assert!(!queue.body.contains("000123456789"));
        assert_eq!(debit["status"], "processing", "{debit}");
        // Not settled: it cannot be refunded yet, so it cannot be rejected yet.
        let p = decide(&mut sue, debit_id, "reject", "Unknown bank account").await;
        assert_eq!(p.status, 409, "{}", p.body);
        assert!(p.body.contains("has not settled yet"), "{}", p.body);
        assert_eq!(count(&app, "SELECT CAST(COUNT(*) AS BIGINT) FROM payment_reviews WHERE decided_at IS NULL AND decision IS NULL").await, 1);
        // Once it settles, a rejection refunds it.
        app.clock.advance(jiff::SignedDuration::from_hours(49));
        assert_eq!(app.app.reconcile().await.unwrap().debits_settled, 1);
        let (mut sue, _) = common::desk::sign_in(&app, "sue@example.com", Some(sue_secret)).await;
        let p = decide(&mut sue, debit_id, "reject", "Unknown bank account").await;
        assert_eq!(p.status, 303, "{}", p.body);
        assert_eq!(payment_status(&app, debit_id).await, "refunded");
        assert_eq!(app.balance(&other).await, 200_000);
        app.assert_verified().await;
    }
}

both_engines! {
    async fn a_payment_sent_to_review_whose_answer_was_lost_is_held_once_resolved(app) {
        let acct = app.account_with_bill(8_410).await;
        app.sandbox.inject(billpay_services::sandbox::Fault::TimeoutAfterCharge);
        let (s, p) = app.pay_with(&acct, 90_000, card("4242424242424242")).await;
        assert_eq!(s, 202, "{p}");
        assert_eq!(decisions(&app, &acct).await[0].action, billpay_domain::risk::RiskAction::Review);
        // In doubt: nothing posted, nothing held yet.
        assert_eq!(count(&app, "SELECT CAST(COUNT(*) AS BIGINT) FROM payment_reviews").await, 0);
        // The reconciler learns it was charged: it is posted and held in the same transaction.
        app.clock.advance(jiff::SignedDuration::from_mins(2));
        app.app.reconcile().await.unwrap();
        let id = p["id"].as_str().unwrap();
        assert_eq!(payment_status(&app, id).await, "succeeded");
        let review = app.app.payment_review(id).await.unwrap();
        assert!(review.is_open());
        assert_eq!(review.reasons, vec![billpay_domain::risk::RiskReason::AmountAboveHistory]);
        // Resolving it again changes nothing.
        app.app.reconcile().await.unwrap();
        assert_eq!(count(&app, "SELECT CAST(COUNT(*) AS BIGINT) FROM payment_reviews").await, 1);
        app.assert_verified().await;
    }
}

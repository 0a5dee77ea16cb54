//! Fraud rules on customer payments, through the real entry points on SQLite and PostgreSQL:
//! a card-testing run against guest quick pay (one client address, hundreds of stolen cards)
//! and against the phone line (one caller's number), one card tried on many accounts through
//! the API, and a blocked caller. Each attack is stopped within a bounded number of attempts,
//! the refusal never names the rule, every decision is recorded with its reasons, and genuine
//! customers elsewhere pay as usual.

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

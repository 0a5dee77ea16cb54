//! `serve --demo`: a fictional biller's accounts with bills, an API key, and the commands to try.

use std::net::SocketAddr;

use anyhow::Result;
use billpay_domain::{AccountNumber, CardExpiry, CardNumber, Money, PostalCode};
use billpay_services::Billpay;
use billpay_services::accounts::{NewAccount, NewStatement};
use billpay_services::vault::{Actor, MethodToSave, MethodUpdate};

/// The demo customer with a saved card.
const DEMO_SAVED_CARD_ACCOUNT: &str = "10000000002";

/// Demo customers: (account body, name, email, phone, ZIP, time zone, amount due in cents).
const DEMO_ACCOUNTS: &[(&str, &str, &str, &str, &str, &str, i64)] = &[
    (
        "10000000001",
        "Ada Lovelace",
        "ada@example.com",
        "+15555550101",
        "10001",
        "America/New_York",
        8410,
    ),
    (
        "10000000002",
        "Grace Hopper",
        "grace@example.com",
        "+15555550102",
        "60601",
        "America/Chicago",
        12745,
    ),
    (
        "10000000003",
        "Katherine Johnson",
        "katherine@example.com",
        "+15555550103",
        "90012",
        "America/Los_Angeles",
        6200,
    ),
];

pub async fn seed_and_print(app: &Billpay, addr: SocketAddr, scheme: &str) -> Result<()> {
    let today = app
        .clock
        .now()
        .to_zoned(jiff::tz::TimeZone::get("America/New_York")?)
        .date();
    let mut lines = Vec::new();
    for (body, name, email, phone, zip, tz, cents) in DEMO_ACCOUNTS {
        let number = AccountNumber::from_body(body)?;
        if app.account(&number).await.is_err() {
            app.create_account(NewAccount {
                account_number: Some(number.clone()),
                name: (*name).into(),
                email: Some((*email).into()),
                phone: Some((*phone).into()),
                postal_code: PostalCode::parse(zip)?,
                timezone: Some((*tz).into()),
                currency: None,
            })
            .await?;
            let amount = Money::usd(*cents);
            let service = Money::usd(cents - 1210);
            app.create_statement(
                &number,
                NewStatement {
                    statement_date: today.checked_sub(jiff::Span::new().days(10))?,
                    due_date: today.checked_add(jiff::Span::new().days(15))?,
                    amount_due: amount,
                    lines: vec![
                        ("Monthly service".into(), service),
                        ("Equipment rental".into(), Money::usd(1000)),
                        ("Taxes and fees".into(), Money::usd(210)),
                    ],
                },
            )
            .await?;
            // One customer has a card on file, to try scheduling and AutoPay by phone.
            if *body == DEMO_SAVED_CARD_ACCOUNT && app.vault.is_some() {
                app.save_payment_method(
                    &number,
                    MethodToSave::Card {
                        number: CardNumber::parse("4242424242424242")?,
                        expiry: CardExpiry::new(12, 2034)?,
                        postal_code: Some(PostalCode::parse(zip)?),
                    },
                    MethodUpdate {
                        nickname: Some("Demo Visa".into()),
                        ..MethodUpdate::default()
                    },
                    Actor {
                        id: "demo".into(),
                        channel: billpay_domain::Channel::Api,
                    },
                )
                .await?;
            }
        }
        let summary = app.account_summary(&number).await?;
        let saved = if *body == DEMO_SAVED_CARD_ACCOUNT && app.vault.is_some() {
            "  saved Visa ending 4242"
        } else {
            ""
        };
        lines.push(format!(
            "  {}  {:<18} ZIP {}  balance {}{saved}",
            number, name, zip, summary.balance
        ));
    }
    let failed = seed_failed_payment(app).await?;
    seed_demo_agent(app).await?;
    let (_, key) = app.create_api_key("demo").await?;
    let key = key.expose_secret();
    let first = AccountNumber::from_body(DEMO_ACCOUNTS[0].0)?;
    println!(
        "\nbillpay demo: {biller}\n\nCustomer portal: {scheme}://{addr}/  (quick pay: an account number and its ZIP below)\nDemo mailbox:    {scheme}://{addr}/demo/mailbox  (every email billpay sends, readable here)\n\nDemo accounts:\n{accounts}\n\nAPI key (created now, shown once):\n  {key}\n\nTry a card payment:\n  curl -s {scheme}://{addr}/api/v1/payments -H 'Authorization: Bearer {key}' \\\n    -H 'Content-Type: application/json' -H \"Idempotency-Key: $(uuidgen || date +%s%N)\" \\\n    -d '{{\"account_number\":\"{first}\",\"amount\":8410,\"channel\":\"web\",\"payment_method\":{{\"type\":\"card\",\"number\":\"4242424242424242\",\"exp_month\":12,\"exp_year\":2034,\"cvc\":\"123\",\"postal_code\":\"10001\"}}}}'\n\nA bank (ACH) payment:\n  ... \"payment_method\":{{\"type\":\"ach\",\"routing_number\":\"110000000\",\"account_number\":\"000123456789\",\"account_type\":\"checking\",\"holder_name\":\"Ada Lovelace\"}}\n\nA declined card: 4000000000009995 (insufficient funds). More test cards in README.md.\n\nLive chat and the agent desk:\n  {failed}\n  Customer: open {scheme}://{addr}/chat, start a chat as Ada Lovelace ({first}, ZIP 10001),\n    ask \"why did my payment fail?\", then type \"agent\".\n  Agent desk: {scheme}://{addr}/desk/signin  email {agent_email}  password {agent_password}\n    authenticator code: {scheme}://{addr}/desk/demo-code (demo mode only; a real agent uses an app)\n    Dashboard, Reports, Review queue and Settings are in the desk's header (settings are\n    read-only for this supervisor; `billpay staff add --role admin` makes someone who can change them)\nOpenAPI: {scheme}://{addr}/api/v1/openapi.json   Metrics: {scheme}://{addr}/metrics\n",
        biller = app.config().biller.name,
        accounts = lines.join("\n"),
        agent_email = billpay_http::DEMO_AGENT_EMAIL,
        agent_password = DEMO_AGENT_PASSWORD,
    );
    Ok(())
}

/// The demo agent's password (demo mode only; printed at start).
pub const DEMO_AGENT_PASSWORD: &str = "demo-desk-Otter-Lamp";

/// Ada's account gets one card payment declined for insufficient funds, so the bot has a
/// failed payment to explain. Returns what to print.
async fn seed_failed_payment(app: &Billpay) -> Result<String> {
    use billpay_services::payments::Idempotency;
    let number = AccountNumber::from_body(DEMO_ACCOUNTS[0].0)?;
    let card = CardNumber::parse("4000000000009995")?;
    let cvc = billpay_domain::Cvc::parse("123", card.brand())?;
    let request = billpay_services::PaymentRequest {
        account_number: number.clone(),
        amount: Money::usd(DEMO_ACCOUNTS[0].6),
        channel: billpay_domain::Channel::Web,
        method: billpay_services::NewMethod::Card {
            number: card,
            expiry: CardExpiry::new(12, 2034)?,
            cvc,
            postal_code: Some(PostalCode::parse("10001")?),
        },
        confirm_duplicate: true,
        tel_authorization: None,
        limit_to_balance: false,
        risk: Some(billpay_services::risk::RiskSource::default()),
    };
    // One key: a restarted demo finds the same declined payment instead of making another.
    let idem = Idempotency::new("demo", "declined-card-ada")?;
    app.create_payment_result(idem, request).await?;
    Ok(format!(
        "{number} (Ada Lovelace) has a card payment declined for insufficient funds."
    ))
}

/// The demo agent: created once, with an authenticator enrolled (its codes are shown on
/// `/desk/demo-code`, served only in demo mode).
async fn seed_demo_agent(app: &Billpay) -> Result<()> {
    use billpay_services::staff::{Role, Staff};
    let staff = match app.staff_by_email(billpay_http::DEMO_AGENT_EMAIL).await? {
        Some(s) => s,
        None => {
            app.staff_create(
                billpay_http::DEMO_AGENT_EMAIL,
                "Dana Demo",
                Role::Supervisor,
                DEMO_AGENT_PASSWORD,
            )
            .await?
        }
    };
    let owner = Staff::totp_owner(&staff.id);
    if app.vault.is_some() && !app.totp_enrolled(&owner).await? {
        let enrolment = app.totp_begin(&owner, "demo agent").await?;
        let secret =
            billpay_services::totp::secret_from_text(enrolment.secret_text.expose_secret())
                .ok_or_else(|| anyhow::anyhow!("demo authenticator key"))?;
        // Confirmed with the previous step's code, so the current one still signs in.
        let now = app.clock.now().as_second().max(30) as u64 - 30;
        let code = billpay_services::totp::code_at(&secret, now);
        if !app.totp_confirm(&owner, &code).await? {
            anyhow::bail!("the demo agent's authenticator could not be enrolled");
        }
    }
    Ok(())
}

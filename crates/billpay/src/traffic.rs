//! `billpay demo traffic`: realistic payments over the last days on the demo database, made
//! through the real services with the clock set to each moment, so the desk's dashboard and
//! reports fill in and `billpay verify` still holds.
//!
//! Each day gets web, phone, chat, agent, AutoPay and mailed-check payments in business hours:
//! the phone ones are real calls through the call flow (paid without an agent, transferred to
//! one, or hung up), the mailed checks a lockbox file imported, the chats real conversations
//! (some handed to a person, who answers). Some cards are declined; some bank debits come back
//! (R01, R02) when the sandbox's settlement window has passed — bank debits are only made on
//! days older than that window, so every one is settled or returned by the end of the run.
//!
//! Everything follows from `--seed`: the same seed on the same day makes the same choices. A
//! finished day is recorded in the audit log (`demo.traffic_day`, actor `operator:demo-traffic`)
//! and a later run with the same seed skips it; today is made up to now, and a later run adds
//! the rest, its payments keyed by the seed, the day and their number so none is made twice.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use billpay_domain::{
    AccountNumber, BankAccountNumber, BankAccountType, CardExpiry, CardNumber, Channel, Cvc, Money,
    PostalCode, RoutingNumber,
};
use billpay_ivr::{Call, Input, Step};
use billpay_services::accounts::{NewAccount, NewStatement};
use billpay_services::ivr::CallEvent;
use billpay_services::lockbox::LockboxFormat;
use billpay_services::payments::{Idempotency, NewMethod, PaymentRequest, PaymentResult};
use billpay_services::staff::Staff;
use billpay_services::vault::{Actor, MethodToSave, MethodUpdate};
use billpay_services::{Billpay, Clock, ManualClock};
use jiff::civil::Date;

/// Most days and payments a day one run makes.
pub const TRAFFIC_DAYS_MAX: u32 = 31;
pub const TRAFFIC_PER_DAY_MAX: u32 = 500;
/// The audit action that records a finished day of traffic.
const TRAFFIC_DAY_ACTION: &str = "demo.traffic_day";
/// The customers the traffic pays for (created once, reused by later runs).
const CUSTOMERS: u64 = 40;
/// Bank debits are made only this many days back or more, past the sandbox's 48-hour window.
const BANK_DEBIT_MIN_AGE_DAYS: i64 = 3;
/// Most keypad turns one simulated call takes.
const CALL_TURNS_MAX: usize = 20;

const NAMES: [&str; 10] = [
    "Alex Rivera",
    "Sam Okafor",
    "Priya Natarajan",
    "Jordan Blake",
    "Mei Chen",
    "Luis Ortega",
    "Fatima Haddad",
    "Noah Fischer",
    "Ama Mensah",
    "Ivy Kowalski",
];
/// Cards the sandbox declines (insufficient funds, generic, expired, stolen).
const DECLINED_CARDS: [&str; 4] = [
    "4000000000009995",
    "4000000000000002",
    "4000000000000069",
    "4000000000009979",
];
/// Bank accounts on routing 110000000: one settles, two are returned (R01, R02).
const BANK_SETTLES: &str = "000123456789";
const BANK_RETURNED: [&str; 2] = ["000222222227", "000111111113"];

#[derive(clap::Args, Debug, Clone)]
pub struct TrafficArgs {
    /// Days of traffic, ending today (1-31).
    #[arg(long, default_value_t = 7)]
    pub days: u32,
    /// Payments a day across all channels (1-500).
    #[arg(long, default_value_t = 40)]
    pub per_day: u32,
    /// Seed of every choice: the same seed makes the same traffic.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

impl TrafficArgs {
    /// The limits, checked before anything is opened.
    pub fn check(&self) -> Result<()> {
        if !(1..=TRAFFIC_DAYS_MAX).contains(&self.days) {
            anyhow::bail!("--days must be 1 to {TRAFFIC_DAYS_MAX}; got {}", self.days);
        }
        if !(1..=TRAFFIC_PER_DAY_MAX).contains(&self.per_day) {
            anyhow::bail!(
                "--per-day must be 1 to {TRAFFIC_PER_DAY_MAX}; got {}",
                self.per_day
            );
        }
        Ok(())
    }
}

/// splitmix64: small, deterministic, good enough to pick channels and amounts.
struct Rng(u64);

impl Rng {
    /// A generator seeded by `what` (its FNV-1a hash).
    fn of(what: &str) -> Rng {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in what.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        Rng(h)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// True `percent` times in a hundred.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// What one run did.
#[derive(Debug, Default)]
pub struct TrafficReport {
    pub payments: BTreeMap<&'static str, u64>,
    pub declined: u64,
    /// Refused by the fraud rules before reaching the processor.
    pub refused: u64,
    pub bank_debits_returned: u64,
    pub calls: u64,
    pub calls_transferred: u64,
    pub calls_abandoned: u64,
    pub chats: u64,
    pub chats_handed_over: u64,
    /// Payment webhook events made of the traffic's postings.
    pub webhook_events: usize,
    /// Days an earlier run with the same seed made already.
    pub days_skipped: u64,
}

impl TrafficReport {
    pub fn to_text(&self) -> String {
        let by: Vec<String> = self
            .payments
            .iter()
            .map(|(c, n)| format!("{c} {n}"))
            .collect();
        format!(
            "payments accepted: {} ({})\ndeclined: {}\nrefused by the fraud rules: {}\nbank debits returned: {}\nphone calls: {} ({} transferred to a representative, {} hung up)\nchats: {} ({} handed to a person)\npayment webhook events: {}\ndays made by an earlier run (skipped): {}\n",
            self.payments.values().sum::<u64>(),
            by.join(", "),
            self.declined,
            self.refused,
            self.bank_debits_returned,
            self.calls,
            self.calls_transferred,
            self.calls_abandoned,
            self.chats,
            self.chats_handed_over,
            self.webhook_events,
            self.days_skipped,
        )
    }
}

struct Customer {
    number: AccountNumber,
    phone: String,
    zip: &'static str,
    name: &'static str,
    /// A saved card (when the vault is there).
    card: Option<String>,
    /// The customer's own card number (each customer has a card of their own: one card on
    /// many accounts is what the fraud rules refuse).
    own_card: String,
}

/// Runs the traffic. `clock` is the clock `app` was built with; it is moved to each moment.
pub async fn run(app: &Billpay, clock: &ManualClock, args: &TrafficArgs) -> Result<TrafficReport> {
    args.check()?;
    let real_now = clock.now();
    let tz = jiff::tz::TimeZone::get(&app.config().ivr.timezone).unwrap_or(jiff::tz::TimeZone::UTC);
    let today = real_now.to_zoned(tz.clone()).date();
    let first = today.checked_sub(jiff::Span::new().days(i64::from(args.days) - 1))?;
    let at = |day: Date, minute_of_day: i64| -> Result<jiff::Timestamp> {
        let time =
            jiff::civil::Time::midnight().checked_add(jiff::Span::new().minutes(minute_of_day))?;
        Ok(billpay_domain::calendar::local_instant(day, time, &tz))
    };
    let mut report = TrafficReport::default();

    // The customers, billed before the first day.
    clock.set(at(first, 7 * 60)?.min(real_now));
    let customers = customers(app, first).await?;
    let agent = app.staff_by_email(billpay_http::DEMO_AGENT_EMAIL).await?;

    let mut day = first;
    while day <= today {
        let age_days = i64::from((today - day).get_days());
        // A finished day is in the audit log; a second run skips it (idempotency keys alone
        // would not do: a running server prunes them 72 hours after the time they carry).
        let marker = format!("seed {}, {day}", args.seed);
        if app.audited(TRAFFIC_DAY_ACTION, &marker).await? {
            report.days_skipped += 1;
            day = day.tomorrow()?;
            continue;
        }
        // Chats have no key to be found by: today's are made by the first run only.
        let chats_marker = format!("{marker}, chats");
        let chats_done = app.audited(TRAFFIC_DAY_ACTION, &chats_marker).await?;
        // Every choice comes from a generator of its own seeded by what it is for (the day's
        // times, each payment, each chat), so a run that skips what an earlier run made (a
        // call already there) makes the same choices for the rest.
        let mut rng = Rng::of(&format!("traffic:{}:{day}", args.seed));
        // The day's payments (kind 0) in business hours, 08:00 to 20:00, and chats (kind 1)
        // from 09:00 to 19:00, in time order; today only up to now.
        let mut slots: Vec<(i64, u8, u32)> = Vec::new();
        for n in 0..args.per_day {
            slots.push((8 * 60 + rng.below(12 * 60) as i64, 0, n));
        }
        for n in 0..(args.per_day / 4).max(1) {
            slots.push((9 * 60 + rng.below(10 * 60) as i64, 1, n));
        }
        slots.sort_unstable();
        let mut mail = Vec::new();
        for (minute, kind, n) in slots {
            let when = at(day, minute)?;
            if when > real_now {
                break;
            }
            // A call or chat before may have run past this minute: time only moves on.
            clock.set(when.max(clock.now()));
            if kind == 1 && chats_done {
                continue;
            }
            if kind == 1 {
                // Questions the assistant answers, and some for a person.
                let mut rng = Rng::of(&format!("traffic:{}:{day}:chat-{n}", args.seed));
                let c = &customers[rng.below(CUSTOMERS) as usize];
                chat(app, clock, &mut rng, &mut report, agent.as_ref(), c).await?;
                continue;
            }
            let key = format!("traffic:{}:{day}:{n}", args.seed);
            let mut rng = Rng::of(&key);
            let c = &customers[rng.below(CUSTOMERS) as usize];
            let amount = Money::usd(2_000 + 100 * rng.below(130) as i64);
            match rng.below(100) {
                0..=29 => {
                    let method = card_or_bank(&mut rng, age_days, c);
                    pay(app, &mut report, &key, c, amount, Channel::Web, method).await?;
                }
                30..=49 => phone_call(app, clock, &mut rng, &mut report, &key, c, amount).await?,
                50..=59 => {
                    let method = card_or_bank(&mut rng, age_days, c);
                    pay(app, &mut report, &key, c, amount, Channel::Chat, method).await?;
                }
                60..=69 => {
                    let method = saved_or_card(&mut rng, c);
                    pay(app, &mut report, &key, c, amount, Channel::Agent, method).await?;
                }
                70..=89 => {
                    let method = if age_days >= BANK_DEBIT_MIN_AGE_DAYS && rng.chance(25) {
                        bank(&mut rng)
                    } else {
                        saved_or_card(&mut rng, c)
                    };
                    pay(app, &mut report, &key, c, amount, Channel::Autopay, method).await?;
                }
                _ => mail.push((n, c, amount, 1000 + rng.below(9000))),
            }
        }
        // The day's mailed checks arrive in one lockbox file after hours.
        let evening = at(day, 20 * 60 + 30)?;
        if !mail.is_empty() && evening <= real_now {
            clock.set(evening.max(clock.now()));
            let mut csv = String::from(
                "deposit_date,lockbox,batch,sequence,check_number,amount,account_number,remitter\n",
            );
            for (n, c, amount, check) in &mail {
                csv.push_str(&format!(
                    "{day},DEMO{seed},001,{n:04},{check},{amount},{number},\"{name}\"\n",
                    seed = args.seed,
                    amount = amount.format_plain(),
                    number = c.number.as_str(),
                    name = c.name,
                ));
            }
            let r = app.import_lockbox(&csv, LockboxFormat::Csv).await?;
            *report.payments.entry("mail").or_default() += r.posted.len() as u64;
        }
        // Today is not over: a later run adds the rest of its payments.
        let done = if day < today { &marker } else { &chats_marker };
        if day < today || !chats_done {
            app.audit_command("demo-traffic", TRAFFIC_DAY_ACTION, "demo", done, "{}")
                .await?;
        }
        day = day.tomorrow()?;
    }

    // Back to now: the bank debits old enough settle or come back.
    clock.set(real_now.max(clock.now()));
    loop {
        let (settled, returned) = app.settle_bank_debits().await?;
        report.bank_debits_returned += returned;
        if settled + returned == 0 {
            break;
        }
    }
    // The payment webhooks' relay reads the ledger as it is posted, and these postings are
    // dated in the past: make their events now (once each, whoever else relays).
    report.webhook_events = app
        .relay_ledger_events_since(at(first, 0)?.as_microsecond())
        .await?;
    Ok(report)
}

async fn customers(app: &Billpay, first: Date) -> Result<Vec<Customer>> {
    let mut out = Vec::new();
    for k in 0..CUSTOMERS {
        let number = AccountNumber::from_body(&format!("2{:010}", k + 1))?;
        let name = NAMES[(k % NAMES.len() as u64) as usize];
        let zip = "10001";
        let phone = format!("+1555557{:04}", k + 1);
        if app.account(&number).await.is_err() {
            app.create_account(NewAccount {
                account_number: Some(number.clone()),
                name: name.into(),
                email: Some(format!("customer{}@example.com", k + 1)),
                phone: Some(phone.clone()),
                postal_code: PostalCode::parse(zip)?,
                timezone: None,
                currency: None,
            })
            .await?;
            let amount = Money::usd(60_000 + (k as i64 * 7_919) % 90_000);
            app.create_statement(
                &number,
                NewStatement {
                    statement_date: first.checked_sub(jiff::Span::new().days(5))?,
                    due_date: first.checked_add(jiff::Span::new().days(20))?,
                    amount_due: amount,
                    lines: vec![("Service".into(), amount)],
                },
            )
            .await?;
        }
        // Every other customer keeps a card on file; every fourth pays by AutoPay with it.
        let mut card = None;
        if k % 2 == 0 && app.vault.is_some() {
            let saved = app.payment_methods(&number).await?;
            let token = match saved.first() {
                Some(m) => m.id.clone(),
                None => {
                    let (m, _) = app
                        .save_payment_method(
                            &number,
                            MethodToSave::Card {
                                number: CardNumber::parse(&crate::bench::customer_card(
                                    k as usize,
                                ))?,
                                expiry: CardExpiry::new(12, 2034)?,
                                postal_code: Some(PostalCode::parse(zip)?),
                            },
                            MethodUpdate::default(),
                            Actor {
                                id: "demo-traffic".into(),
                                channel: Channel::Web,
                            },
                        )
                        .await?;
                    m.id
                }
            };
            if k % 4 == 0 && app.autopay(&number).await?.is_none() {
                app.enroll_autopay(
                    &number,
                    &token,
                    billpay_domain::Timing::OnDueDate,
                    None,
                    Channel::Web,
                )
                .await?;
            }
            card = Some(token);
        }
        out.push(Customer {
            number,
            phone,
            zip,
            name,
            card,
            own_card: crate::bench::customer_card(k as usize),
        });
    }
    Ok(out)
}

fn card(number: &str) -> Result<NewMethod> {
    let number = CardNumber::parse(number)?;
    let cvc = Cvc::parse("123", number.brand())?;
    Ok(NewMethod::Card {
        number,
        expiry: CardExpiry::new(12, 2034)?,
        cvc,
        postal_code: Some(PostalCode::parse("10001")?),
    })
}

/// A new card: one in ten declined.
fn typed_card(rng: &mut Rng, c: &Customer) -> Result<NewMethod> {
    if rng.chance(10) {
        card(DECLINED_CARDS[rng.below(DECLINED_CARDS.len() as u64) as usize])
    } else {
        card(&c.own_card)
    }
}

/// A bank debit: one in five comes back.
fn bank(rng: &mut Rng) -> Result<NewMethod> {
    let account = if rng.chance(20) {
        BANK_RETURNED[rng.below(BANK_RETURNED.len() as u64) as usize]
    } else {
        BANK_SETTLES
    };
    Ok(NewMethod::Ach {
        routing: RoutingNumber::parse("110000000")?,
        account: BankAccountNumber::parse(account)?,
        account_type: BankAccountType::Checking,
        holder_name: "Demo Customer".into(),
    })
}

fn card_or_bank(rng: &mut Rng, age_days: i64, c: &Customer) -> Result<NewMethod> {
    if age_days >= BANK_DEBIT_MIN_AGE_DAYS && rng.chance(20) {
        bank(rng)
    } else {
        typed_card(rng, c)
    }
}

fn saved_or_card(rng: &mut Rng, c: &Customer) -> Result<NewMethod> {
    match &c.card {
        Some(token) if rng.chance(80) => Ok(NewMethod::Saved {
            token: token.clone(),
        }),
        _ => typed_card(rng, c),
    }
}

async fn pay(
    app: &Billpay,
    report: &mut TrafficReport,
    key: &str,
    c: &Customer,
    amount: Money,
    channel: Channel,
    method: Result<NewMethod>,
) -> Result<()> {
    let request = PaymentRequest {
        account_number: c.number.clone(),
        amount,
        channel,
        method: method?,
        confirm_duplicate: true,
        tel_authorization: None,
        limit_to_balance: false,
        // The customer (or an agent for them) pays now; AutoPay was set up before.
        risk: (channel != Channel::Autopay).then(billpay_services::risk::RiskSource::default),
    };
    match app
        .create_payment_result(Idempotency::new("demo-traffic", key)?, request)
        .await
    {
        Ok(PaymentResult::Completed(_) | PaymentResult::InDoubt(_)) => {
            *report.payments.entry(channel.as_str()).or_default() += 1
        }
        Ok(PaymentResult::Declined(..)) => report.declined += 1,
        Err(billpay_services::ServiceError::Conflict {
            code: "payment_refused",
            ..
        }) => report.refused += 1,
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!("a {} payment", channel.as_str())));
        }
    }
    Ok(())
}

/// One phone call through the call flow: most pay a part of the balance with a new card, some
/// ask for a representative (0), some hang up half way.
async fn phone_call(
    app: &Billpay,
    clock: &ManualClock,
    rng: &mut Rng,
    report: &mut TrafficReport,
    key: &str,
    c: &Customer,
    amount: Money,
) -> Result<()> {
    let sid = call_sid(key);
    if app.ivr_call(&sid).await?.is_some() {
        return Ok(()); // made by an earlier run
    }
    report.calls += 1;
    let outcome = rng.below(100);
    let card_number = if rng.chance(10) {
        DECLINED_CARDS[0]
    } else {
        c.own_card.as_str()
    };
    let event = |turn: Option<i64>, input: Input| CallEvent {
        call_sid: sid.clone(),
        from: c.phone.clone(),
        turn,
        input,
    };
    app.ivr_event(
        event(
            None,
            Input::Start {
                from: c.phone.clone(),
            },
        ),
        "/ivr/twilio/gather",
    )
    .await?;
    for turn in 1..=CALL_TURNS_MAX {
        let Some(row) = app.ivr_call(&sid).await? else {
            break;
        };
        let call: Call = serde_json::from_str(&row.state)?;
        // 15 in 100 ask for a person at the main menu; 10 in 100 hang up at the amount.
        let keys = match call.step {
            Step::Language => "1".to_string(),
            Step::ConfirmPhoneAccount => "1".into(),
            Step::Zip => c.zip.into(),
            Step::MainMenu if outcome < 15 => "0".into(),
            Step::MainMenu => "2".into(),
            Step::OtherAmount if outcome < 25 => break,
            Step::OtherAmount => amount.minor_units().to_string(),
            Step::ConfirmAmount => "1".into(),
            // No saved method is offered to a new card's call: 1 is "a new card" when none
            // is saved; with saved methods, the first one.
            Step::MethodMenu => "1".into(),
            Step::CardNumber => card_number.into(),
            Step::CardExpiry => "1234".into(),
            Step::CardCvc => "123".into(),
            Step::CardZip => c.zip.into(),
            Step::ConfirmPayment | Step::TelAuthorization => "1".into(),
            _ => break,
        };
        app.ivr_event(
            event(Some(turn as i64), Input::Digits(keys)),
            "/ivr/twilio/gather",
        )
        .await?;
        // A caller listens to a prompt and keys for 5 to 20 seconds a turn.
        clock.advance(jiff::SignedDuration::from_secs(5 + rng.below(16) as i64));
    }
    let row = app.ivr_call(&sid).await?;
    let call: Option<Call> = row.and_then(|r| serde_json::from_str(&r.state).ok());
    match call {
        Some(call) if call.transfer_reason.is_some() => report.calls_transferred += 1,
        Some(call) if call.last_confirmation.is_some() => {
            *report.payments.entry("phone").or_default() += 1
        }
        Some(call) if call.last_decline.is_some() => report.declined += 1,
        _ => report.calls_abandoned += 1,
    }
    app.ivr_status(&sid, "completed").await?;
    Ok(())
}

/// A call id like the provider's ("CA" and 32 hex digits), the same for the same key.
fn call_sid(key: &str) -> String {
    let mut r = Rng::of(key);
    format!("CA{:016x}{:016x}", r.next(), r.next())
}

/// A chat: the customer asks for the balance; one in three asks for a person, whom the demo
/// agent (when there is one) answers a few minutes later.
async fn chat(
    app: &Billpay,
    clock: &ManualClock,
    rng: &mut Rng,
    report: &mut TrafficReport,
    agent: Option<&Staff>,
    c: &Customer,
) -> Result<()> {
    let (token, session) = app.portal_start_session().await?;
    let started = app
        .chat_start(&session, c.name, c.number.as_str(), c.zip)
        .await?
        .map_err(|e| anyhow::anyhow!("chat refused: {e:?}"))?;
    let (token, conversation) = match started {
        (Some(t), conv) => (t, conv),
        (None, conv) => (token, conv),
    };
    let session = app
        .portal_session(token.expose())
        .await?
        .context("the chat's session")?;
    report.chats += 1;
    app.chat_customer_says(&session, "What is my balance?")
        .await?;
    if !rng.chance(33) {
        return Ok(());
    }
    app.chat_customer_says(&session, "agent").await?;
    report.chats_handed_over += 1;
    let Some(agent) = agent else {
        return Ok(());
    };
    let conv = app.chat_conversation(&conversation.id).await?;
    // The least busy available representative may have it already; else the demo agent takes it.
    if conv.agent_id.is_none() && app.desk_take(agent, &conv.id).await.is_err() {
        return Ok(());
    }
    let conv = app.chat_conversation(&conversation.id).await?;
    if conv.agent_id.as_deref() == Some(agent.id.as_str()) {
        // A person answers after one to six minutes in line.
        clock.advance(jiff::SignedDuration::from_secs(
            60 * (1 + rng.below(6) as i64),
        ));
        app.desk_say(
            agent,
            &conv.id,
            "Hello, thank you for waiting. I have your account open. How can I help?",
            false,
        )
        .await?;
    }
    Ok(())
}

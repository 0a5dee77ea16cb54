//! The operator console on the desk, on SQLite and PostgreSQL: `billpay demo traffic` makes
//! payments on every channel through the real services; the dashboard's figures equal the
//! ledger and the posting files of the same days; its filters refuse bad values with clear
//! messages; the reports page's downloads are byte for byte what `billpay report ...` writes;
//! agents are refused.

mod common;

use billpay_services::staff::Role;
use common::desk::*;
use common::*;

const SUPERVISOR: &str = billpay_http::DEMO_AGENT_EMAIL;

/// The value after `<dt>label</dt>` on the dashboard.
fn figure(body: &str, label: &str) -> String {
    let marker = format!("<dt>{label}</dt><dd>");
    let at = body
        .find(&marker)
        .unwrap_or_else(|| panic!("no figure {label:?} in {body}"))
        + marker.len();
    body[at..].split("</dd>").next().unwrap().to_string()
}

/// "$1,234.56" as cents.
fn cents(text: &str) -> i64 {
    let digits: String = text.chars().filter(|c| c.is_ascii_digit()).collect();
    let v: i64 = digits
        .parse()
        .unwrap_or_else(|_| panic!("not money: {text}"));
    if text.starts_with('-') { -v } else { v }
}

/// The column names and rows (day, values) of the numbers under the chart `id`.
fn chart_table(body: &str, id: &str) -> (Vec<String>, Vec<(String, Vec<String>)>) {
    let at = body
        .find(&format!("<svg class=\"chart\" id=\"{id}\""))
        .unwrap_or_else(|| panic!("no chart {id}"));
    let table = &body[at..];
    let table = &table[table.find("<table>").unwrap()..table.find("</table>").unwrap()];
    let head = table
        .split("<th scope=\"col\">")
        .skip(2) // before the first, and "Day"
        .map(|h| h.split('<').next().unwrap().to_string())
        .collect();
    let rows = table
        .split("<tr><th scope=\"row\">")
        .skip(1)
        .map(|r| {
            let day = r.split('<').next().unwrap().to_string();
            let values = r
                .split("<td>")
                .skip(1)
                .map(|v| v.split('<').next().unwrap().to_string())
                .collect();
            (day, values)
        })
        .collect();
    (head, rows)
}

fn days_back(app: &TestApp, n: i64) -> Vec<String> {
    let today = billpay_services::Clock::now(app.clock.as_ref())
        .to_zoned(jiff::tz::TimeZone::get("America/New_York").unwrap())
        .date();
    (0..n)
        .rev()
        .map(|k| {
            today
                .checked_sub(jiff::Span::new().days(k))
                .unwrap()
                .to_string()
        })
        .collect()
}

/// Payments made before `until` (microseconds).
async fn count_payments(app: &TestApp, until: i64) -> i64 {
    let mut c = app.app.store.read_conn().await.unwrap();
    sqlx::query_scalar::<_, i64>(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM payments WHERE created_at < $1",
    )
    .bind(until)
    .fetch_one(&mut *c)
    .await
    .unwrap()
}

async fn count_chats(app: &TestApp) -> i64 {
    let mut c = app.app.store.read_conn().await.unwrap();
    sqlx::query_scalar::<_, i64>("SELECT CAST(COUNT(*) AS BIGINT) FROM chat_conversations")
        .fetch_one(&mut *c)
        .await
        .unwrap()
}

/// What the ledger posted to customers' receivables for payments in the biller's days
/// `first..=last`: (count, amount).
async fn ledger_payments(app: &TestApp, first: &str, last: &str) -> (i64, i64) {
    let tz = jiff::tz::TimeZone::get("America/New_York").unwrap();
    let from = first
        .parse::<jiff::civil::Date>()
        .unwrap()
        .to_zoned(tz.clone())
        .unwrap();
    let to = last
        .parse::<jiff::civil::Date>()
        .unwrap()
        .tomorrow()
        .unwrap()
        .to_zoned(tz)
        .unwrap();
    let mut c = app.app.store.read_conn().await.unwrap();
    sqlx::query_as::<_, (i64, i64)>(
        "SELECT CAST(COUNT(DISTINCT j.id) AS BIGINT), CAST(COALESCE(-SUM(po.amount), 0) AS BIGINT) \
         FROM journal_entries j JOIN postings po ON po.journal_id = j.id \
         WHERE j.source_type = 'payment' AND j.kind = 'payment' AND po.ledger_account LIKE 'ar:%' \
           AND j.created_at >= $1 AND j.created_at < $2",
    )
    .bind(from.timestamp().as_microsecond())
    .bind(to.timestamp().as_microsecond())
    .fetch_one(&mut *c)
    .await
    .unwrap()
}

both_engines! {
    async fn generated_traffic_fills_the_dashboard_and_its_totals_equal_the_ledger(app) {
        staff(&app, SUPERVISOR, "Sue Supervisor", Role::Supervisor).await;
        let (code, out, err) = cli(&app, &["demo", "traffic", "--days", "6", "--per-day", "20", "--seed", "7"]);
        assert_eq!(code, 0, "{err}");
        let out = String::from_utf8(out).unwrap();
        assert!(out.contains("payments accepted:"), "{out}");
        app.assert_verified().await;
        // Its postings, dated in the past, still became payment webhook events, one each.
        let mut c = app.app.store.read_conn().await.unwrap();
        let (entries, events): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT CAST(COUNT(*) AS BIGINT) FROM journal_entries WHERE source_type IN ('payment', 'refund') AND kind <> 'fee'), \
                    (SELECT CAST(COUNT(*) AS BIGINT) FROM account_events WHERE kind IN ('payment.posted', 'refund.posted', 'payment.returned'))",
        )
        .fetch_one(&mut *c)
        .await
        .unwrap();
        drop(c);
        assert_eq!(events, entries, "one event per ledger movement");
        assert!(out.contains(&format!("payment webhook events: {events}")), "{out}");
        // The same seed again skips the days it made, even once their idempotency keys are
        // pruned (as a running server does 72 hours after their times), and makes no payment
        // twice today. (A payment of today's later than the first run may be added.)
        let first_run_end = billpay_services::Clock::now(&billpay_services::SystemClock).as_microsecond();
        let before = count_payments(&app, first_run_end).await;
        let chats_before = count_chats(&app).await;
        let pruned = app.app.reconcile().await.unwrap().keys_pruned;
        assert!(pruned > 0, "the keys of days over 72 hours back are pruned");
        let (code, again, err) = cli(&app, &["demo", "traffic", "--days", "6", "--per-day", "20", "--seed", "7"]);
        assert_eq!(code, 0, "{err}");
        assert!(String::from_utf8(again).unwrap().contains("days made by an earlier run (skipped): 5"));
        assert_eq!(count_payments(&app, first_run_end).await, before, "the same seed adds no payment");
        assert_eq!(count_chats(&app).await, chats_before, "nor chats");

        let days = days_back(&app, 6);
        let (first, last) = (days[0].clone(), days[5].clone());
        let (mut b, _) = sign_in(&app, SUPERVISOR, None).await;
        let inbox = b.get("/desk").await;
        assert!(inbox.body.contains("href=\"/desk/dashboard\""), "supervisors see the link");
        let page = b.get(&format!("/desk/dashboard?from={first}&to={last}")).await;
        assert_eq!(page.status, 200, "{}", page.body);
        let body = page.body;

        // The totals are the ledger's, and the posting files' payment lines of those days.
        let (ledger_count, ledger_amount) = ledger_payments(&app, &first, &last).await;
        assert!(ledger_count > 20, "traffic made payments: {ledger_count}");
        assert_eq!(figure(&body, "Payments posted"), ledger_count.to_string());
        assert_eq!(cents(&figure(&body, "Amount posted")), ledger_amount);
        let mut by_channel: std::collections::BTreeMap<String, i64> = Default::default();
        let mut by_day: Vec<i64> = Vec::new();
        let (mut file_returns, mut file_count) = (0, 0);
        for d in &days {
            let (s, file) = app.get(&format!("/api/v1/reports/posting?date={d}")).await;
            assert_eq!(s, 200, "{file}");
            let mut day_total = 0;
            for l in file["lines"].as_array().unwrap() {
                match l["kind"].as_str().unwrap() {
                    "payment" => {
                        file_count += 1;
                        day_total += l["amount"].as_i64().unwrap();
                        *by_channel.entry(l["channel"].as_str().unwrap().to_string()).or_default() += l["amount"].as_i64().unwrap();
                    }
                    "return" => file_returns += 1,
                    _ => {}
                }
            }
            by_day.push(day_total);
        }
        assert_eq!(file_count, ledger_count);
        // Per channel and per day, the chart's numbers are the posting files'.
        let (head, rows) = chart_table(&body, "amounts-by-channel");
        for ch in ["web", "phone", "chat", "agent", "autopay", "mail"] {
            assert!(head.iter().any(|h| h == ch), "a {ch} series in {head:?}");
        }
        for (i, ch) in head.iter().enumerate() {
            let charted: i64 = rows.iter().map(|(_, v)| cents(&v[i])).sum();
            assert_eq!(charted, by_channel[ch], "channel {ch}");
        }
        for (k, (_, values)) in rows.iter().enumerate() {
            assert_eq!(values.iter().map(|v| cents(v)).sum::<i64>(), by_day[k], "day {}", days[k]);
        }
        let returned: i64 = figure(&body, "Returned").parse().unwrap();
        assert_eq!(returned, file_returns, "returns are the ledger's");
        assert!(returned > 0, "some bank debits came back");
        assert!(figure(&body, "Declined").parse::<i64>().unwrap() > 0, "some cards were declined");
        // The phone line, chat and accounts have figures.
        let calls: i64 = figure(&body, "Calls").parse().unwrap();
        assert!(calls > 0, "{body}");
        assert!(figure(&body, "Paid without an agent (containment)").contains('%'));
        assert!(figure(&body, "Conversations").parse::<i64>().unwrap() > 0);
        assert_ne!(figure(&body, "Average wait for a person"), "–", "the supervisor answered chats");
        assert!(figure(&body, "AutoPay enrolled").starts_with("10 "), "{}", figure(&body, "AutoPay enrolled"));
        // The charts are drawn: accessible SVG with bars and lines.
        for id in ["payments-by-channel", "amounts-by-channel", "payments-by-method", "declines", "calls", "chats"] {
            assert!(body.contains(&format!("<svg class=\"chart\" id=\"{id}\" role=\"img\" aria-labelledby=\"{id}-title {id}-desc\"")), "{id}");
        }
        assert!(body.contains("<rect") && body.contains("<polyline"));

        // One channel: only its payments.
        let phone = b.get(&format!("/desk/dashboard?from={first}&to={last}&channel=phone")).await;
        assert_eq!(phone.status, 200);
        let phone_count: i64 = figure(&phone.body, "Payments posted").parse().unwrap();
        let (_, rows) = chart_table(&phone.body, "payments-by-channel");
        assert_eq!(rows.iter().map(|(_, v)| v.iter().map(|x| x.parse::<i64>().unwrap()).sum::<i64>()).sum::<i64>(), phone_count);
        assert!(phone_count > 0 && phone_count < ledger_count);
        assert_eq!(cents(&figure(&phone.body, "Amount posted")), by_channel["phone"]);

        // The reports page: downloads are the bytes the command writes, every time.
        let day = &days[3];
        let reports = b.get(&format!("/desk/reports?date={day}")).await;
        assert_eq!(reports.status, 200, "{}", reports.body);
        assert!(reports.body.contains(&format!("/desk/reports/posting?date={day}&amp;format=csv")));
        let csv = b.get(&format!("/desk/reports/posting?date={day}&format=csv")).await.body;
        let again = b.get(&format!("/desk/reports/posting?date={day}&format=csv")).await.body;
        assert_eq!(csv, again, "the same day gives the same bytes");
        let (code, cli_csv, err) = cli(&app, &["report", "posting", "--date", day]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(csv.as_bytes(), &cli_csv[..], "the page's CSV is the command's");
        assert!(csv.lines().count() > 2, "{csv}");
        let json = b.get(&format!("/desk/reports/posting?date={day}&format=json")).await.body;
        let (_, cli_json, _) = cli(&app, &["report", "posting", "--date", day, "--format", "json"]);
        assert_eq!(json.as_bytes(), &cli_json[..]);
        let aging = b.get(&format!("/desk/reports/aging?date={day}&format=csv")).await.body;
        let (_, cli_aging, _) = cli(&app, &["report", "aging", "--as-of", day]);
        assert_eq!(aging.as_bytes(), &cli_aging[..]);
        let rec = b.get(&format!("/desk/reports/reconciliation?date={day}")).await;
        assert_eq!(rec.status, 200, "{}", rec.body);
        assert!(rec.body.contains(&format!("Reconciliation for {day} (UTC)")), "{}", rec.body);
        assert!(rec.body.contains("<table id=\"summary\">"), "{}", rec.body);
        let rec_csv = b.get(&format!("/desk/reports/reconciliation?date={day}&format=csv")).await.body;
        let (code, cli_rec, err) = cli(&app, &["report", "reconciliation", "--date", day, "--format", "csv"]);
        assert!(code == 0 || code == 1, "{err}");
        assert_eq!(rec_csv.as_bytes(), &cli_rec[..], "the page's CSV is the command's");
        assert!(rec_csv.starts_with(billpay_services::settlement::SETTLEMENT_CSV_HEADER));
        assert!(rec_csv.contains("\nsummary,sandbox,succeeded,"), "{rec_csv}");
    }

    async fn accounts_by_status_follow_the_aging_rule(app) {
        // Bills relative to the biller's today; payments pay the oldest charges first.
        let today = app.app.today_for_biller();
        let day = |n: i64| today.checked_add(jiff::Span::new().days(n)).unwrap().to_string();
        let account = |bills: Vec<(i64, i64)>| {
            let app = &app;
            async move {
                let (s, a) = app.post("/api/v1/accounts", serde_json::json!({"name": "Pat Payer", "email": "pat@example.com", "postal_code": "10001"})).await;
                assert_eq!(s, 201, "{a}");
                let number = a["account_number"].as_str().unwrap().to_string();
                for (due_in, cents) in bills {
                    let (s, b) = app.post(&format!("/api/v1/accounts/{number}/statements"),
                        serde_json::json!({"statement_date": day(due_in - 21), "due_date": day(due_in), "amount_due": cents})).await;
                    assert_eq!(s, 201, "{b}");
                }
                number
            }
        };
        let pay = |number: String, cents: i64| {
            let app = &app;
            async move {
                let (s, p) = app.pay_with(&number, cents, card("4242424242424242")).await;
                assert_eq!(s, 201, "{p}");
            }
        };
        let _unpaid = account(vec![(-1, 5_000)]).await; // past due
        let _not_due = account(vec![(10, 5_000)]).await; // current
        let paid = account(vec![(-1, 5_000)]).await; // current: paid in full
        pay(paid, 5_000).await;
        let part = account(vec![(-1, 5_000)]).await; // past due: 30.00 left
        pay(part, 2_000).await;
        let old_paid = account(vec![(-20, 3_000), (10, 4_000)]).await; // current: the old bill is paid
        pay(old_paid, 3_000).await;
        let old_short = account(vec![(-20, 3_000), (10, 4_000)]).await; // past due: 10.00 of the old bill
        pay(old_short, 2_000).await;

        staff(&app, SUPERVISOR, "Sue Supervisor", Role::Supervisor).await;
        let (mut b, _) = sign_in(&app, SUPERVISOR, None).await;
        let body = b.get("/desk/dashboard").await.body;
        assert_eq!(figure(&body, "Past due"), "3 (50.0%)", "{body}");
        assert_eq!(figure(&body, "Current"), "3 (50.0%)");
        assert_eq!(figure(&body, "All accounts"), "6");
        // The same accounts the aging report ages past due.
        let aging = app.app.aging_report(today).await.unwrap();
        let overdue = aging.accounts.iter().filter(|l| l.days_1_30 + l.days_31_60 + l.days_61_90 + l.days_over_90 > 0).count();
        assert_eq!(overdue, 3);
    }

    async fn the_dashboard_refuses_bad_filters_and_agents(app) {
        staff(&app, "sue@example.com", "Sue Supervisor", Role::Supervisor).await;
        staff(&app, "ann@example.com", "Ann Agent", Role::Agent).await;
        let (mut sup, _) = sign_in(&app, "sue@example.com", None).await;
        let empty = sup.get("/desk/dashboard").await;
        assert_eq!(empty.status, 200, "{}", empty.body);
        assert_eq!(figure(&empty.body, "Payments posted"), "0");
        assert!(empty.body.contains("Nothing in this range"));
        for (query, message) in [
            ("from=12/01/2026", "from must be a day as YYYY-MM-DD, like 2026-12-04"),
            ("to=yesterday", "to must be a day as YYYY-MM-DD, like 2026-12-04"),
            ("from=2026-12-04&to=2026-12-01", "from must be on or before to"),
            ("from=2026-01-01&to=2026-12-01", "the range can be at most 92 days"),
            ("channel=fax", "channel must be one of web, phone, chat, agent, autopay, mail, api, or empty for all"),
        ] {
            let p = sup.get(&format!("/desk/dashboard?{query}")).await;
            assert_eq!(p.status, 400, "{query}");
            assert!(p.body.contains(message), "{query}: {}", p.body);
            assert!(p.body.contains("id=\"filter-error\""), "{query}");
            assert!(!p.body.contains("<svg"), "nothing is drawn for a bad filter");
        }
        let p = sup.get("/desk/reports/posting?date=12-04&format=csv").await;
        assert_eq!(p.status, 400);
        assert!(p.body.contains("date must be a day as YYYY-MM-DD"), "{}", p.body);
        let p = sup.get("/desk/reports/posting?format=xml").await;
        assert_eq!(p.status, 400);
        assert!(p.body.contains("format must be csv or json"), "{}", p.body);

        let (mut agent, _) = sign_in(&app, "ann@example.com", None).await;
        let inbox = agent.get("/desk").await;
        assert!(!inbox.body.contains("/desk/dashboard"), "no link for agents");
        for path in ["/desk/dashboard", "/desk/reports", "/desk/reports/posting?format=csv", "/desk/reports/aging", "/desk/reports/reconciliation"] {
            let p = agent.get(path).await;
            assert_eq!(p.status, 403, "{path}: {}", p.body);
            assert!(p.body.contains("for supervisors and administrators"), "{path}");
        }
        // Signed out: to the sign-in page.
        let mut anon = Browser::new(&app);
        assert_eq!(anon.get("/desk/dashboard").await.location.as_deref(), Some("/desk/signin"));
    }
}

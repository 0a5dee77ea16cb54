//! The console's settings page, on SQLite and PostgreSQL: an administrator changes branding,
//! fees and reminder times, and the portal, the API and new reminders follow at once; every
//! save is a numbered version with who, when, why and what changed, and an audit record; bad
//! values are refused with messages that name the setting and nothing is saved; supervisors
//! read, agents and strangers get nothing; another instance, and a restart, take up the
//! newest version.

mod common;

use billpay_services::staff::Role;
use common::desk::*;
use common::*;

const ADMIN: &str = "ada@example.com";

/// Every field of the settings form, as the page fills it in.
fn form_fields(body: &str) -> Vec<(String, String)> {
    let form = &body[body
        .find("<form method=\"post\" action=\"/desk/settings\"")
        .expect("form")..];
    let form = &form[..form.find("</form>").unwrap()];
    let mut out = Vec::new();
    for chunk in form.split('<').skip(1) {
        let (tag, rest) = chunk
            .split_once(|c: char| c.is_whitespace())
            .unwrap_or((chunk, ""));
        let attr = |name: &str| {
            let m = format!(" {name}=\"");
            let s = format!(" {rest}");
            s.find(&m)
                .map(|i| s[i + m.len()..].split('"').next().unwrap().to_string())
        };
        match tag {
            "input" if attr("type").as_deref() == Some("text") => {
                out.push((
                    attr("name").unwrap(),
                    unescape(&attr("value").unwrap_or_default()),
                ));
            }
            "textarea" => {
                let text = rest.split_once('>').map(|x| x.1).unwrap_or("");
                out.push((attr("name").unwrap(), unescape(text)));
            }
            _ => {}
        }
    }
    out
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&#60;", "<")
        .replace("&gt;", ">")
        .replace("&#62;", ">")
        .replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
        .replace("&#38;", "&")
}

fn set(form: &mut [(String, String)], key: &str, value: &str) {
    let f = form
        .iter_mut()
        .find(|(k, _)| k == key)
        .unwrap_or_else(|| panic!("no field {key}"));
    f.1 = value.to_string();
}

/// Opens the settings page, changes `changes`, and saves with `reason`.
async fn save(b: &mut Browser, changes: &[(&str, &str)], reason: &str) -> Page {
    let page = b.get("/desk/settings").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = hidden(&page.body, "csrf");
    let mut form = form_fields(&page.body);
    assert!(form.len() >= 40, "{form:?}");
    for (k, v) in changes {
        set(&mut form, k, v);
    }
    form.push(("reason".into(), reason.into()));
    form.push(("csrf".into(), csrf));
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    b.post("/desk/settings", &pairs).await
}

async fn get_text(app: &TestApp, path: &str) -> String {
    app.client
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn versions(app: &TestApp) -> i64 {
    let mut c = app.app.store.read_conn().await.unwrap();
    billpay_store::settings::settings_history(&mut c, 1)
        .await
        .unwrap()
        .first()
        .map_or(0, |v| v.version)
}

both_engines! {
    async fn an_administrator_changes_settings_and_every_channel_follows(app) {
        staff(&app, ADMIN, "Ada Admin", Role::Admin).await;
        let (mut admin, _) = sign_in(&app, ADMIN, None).await;
        let page = admin.get("/desk/settings").await;
        assert!(page.body.contains("In force: the configuration file's settings"), "{}", page.body);
        assert!(page.body.contains("No changes yet"));
        assert!(get_text(&app, "/assets/theme.css").await.contains("#0b5394"));

        let p = save(&mut admin, &[
            ("biller_name", "Northwind Power & Light"),
            ("portal.brand_color", "#1D4E89"),
            ("convenience_fee_cents", "1.50"),
            ("reminders.send_at", "09:30"),
            ("collections.hardship_programs", "LIHEAP\nMedical baseline"),
        ], "Rebrand after the merger").await;
        assert_eq!(p.status, 303, "{}", p.body);
        assert_eq!(p.location.as_deref(), Some("/desk/settings?saved=1#top"));

        // In force at once, on every channel.
        assert!(get_text(&app, "/assets/theme.css").await.contains("--brand: #1d4e89"));
        let pay_page = get_text(&app, "/pay").await;
        assert!(pay_page.contains("Northwind Power &#38; Light"), "{pay_page}");
        let acct = app.account_with_bill(5_000).await;
        let (s, pay) = app.pay_with(&acct, 5_000, card("4242424242424242")).await;
        assert_eq!(s, 201, "{pay}");
        assert_eq!(pay["fee_amount"], 150);
        let (_, r) = app.get(pay["receipt_url"].as_str().unwrap()).await;
        assert!(r["text"].as_str().unwrap().contains("Northwind Power & Light"), "{r}");
        // The new statement's "due soon" reminder is at the new time, in the account's zone.
        let mut c = app.app.store.read_conn().await.unwrap();
        let (run_at,): (i64,) = sqlx::query_as("SELECT run_at FROM jobs WHERE business_key LIKE 'reminder:due_soon:%'")
            .fetch_one(&mut *c).await.unwrap();
        drop(c);
        let local = jiff::Timestamp::from_microsecond(run_at).unwrap().in_tz("America/New_York").unwrap();
        assert_eq!(local.time(), jiff::civil::time(9, 30, 0, 0));

        // The version, who, why and what changed.
        let page = admin.get("/desk/settings?saved=1").await;
        for text in ["Saved as version 1", "In force: version 1", "Ada Admin", "Rebrand after the merger",
            "Biller name: Riverbend Utilities (demo) → Northwind Power &#38; Light",
            "Convenience fee: $0.00 → $1.50", "Reminders are sent at: 10:00 → 09:30",
            "The configuration file says: $0.00"] {
            assert!(page.body.contains(text), "{text}: {}", page.body);
        }
        assert!(audit_actions(&app).await.iter().any(|(who, what)| what == "settings.changed" && who.starts_with("staff:")));
        assert!(app.app.verify_audit().await.unwrap().ok());

        // A second save: the fee back to none. Only what changed is listed; the newest first.
        let p = save(&mut admin, &[("convenience_fee_cents", "0")], "No fee after all").await;
        assert_eq!(p.location.as_deref(), Some("/desk/settings?saved=2#top"), "{}", p.body);
        let page = admin.get("/desk/settings").await;
        let v2 = page.body.find("No fee after all").unwrap();
        let v1 = page.body.find("Rebrand after the merger").unwrap();
        assert!(v2 < v1, "newest first");
        assert!(page.body.contains("Convenience fee: $1.50 → $0.00"));
        let (_, pay) = app.pay_with(&app.account_with_bill(2_000).await, 2_000, card("5555555555554444")).await;
        assert_eq!(pay["fee_amount"], 0, "{pay}");
        assert!(get_text(&app, "/pay").await.contains("Northwind Power &#38; Light"), "the other changes stay");

        // Saving the same values again changes nothing and records nothing.
        let p = save(&mut admin, &[], "Just looking").await;
        assert_eq!(p.status, 422);
        assert!(p.body.contains("Nothing was changed."), "{}", p.body);
        assert_eq!(versions(&app).await, 2);
        app.assert_verified().await;
    }

    async fn bad_values_are_refused_by_name_and_nothing_is_saved(app) {
        staff(&app, ADMIN, "Ada Admin", Role::Admin).await;
        let (mut admin, _) = sign_in(&app, ADMIN, None).await;
        for (changes, reason, messages) in [
            (vec![("agent_hours_start", "25")], "x", vec!["Phone representatives from (hour): a whole number from 0 to 24."]),
            (vec![("portal.brand_color", "blue"), ("convenience_fee_cents", "-2.00")], "x",
             vec!["Brand colour: a colour like #0b5394.", "Convenience fee: must not be negative."]),
            (vec![("collections.late_fee_cents", "ten dollars")], "x", vec!["Late fee, flat: an amount like 5.00."]),
            (vec![("biller_name", "")], "x", vec!["Biller name: must not be empty."]),
            (vec![("reminders.send_at", "noon")], "x", vec!["Reminders are sent at: a time like 08:00."]),
            (vec![("portal.chat_hours_start", "9")], "x", vec!["chat_hours_start and chat_hours_end go together"]),
            // Checked together, as the configuration file is.
            (vec![("collections.late_fee_cents", "5.00"), ("collections.late_fee_percent_bps", "150")], "x",
             vec!["give late_fee_cents or late_fee_percent_bps, not both"]),
            (vec![("reminders.quiet_start", "22:00")], "x", vec!["quiet_start must be from 12:00 to 21:00"]),
            (vec![("agent_hours_start", "18"), ("agent_hours_end", "9")], "x", vec!["agent_hours_start must be before agent_hours_end"]),
            (vec![("agent_number", "555-0100")], "x", vec!["agent_number must be a phone number in E.164 form"]),
            (vec![("risk.blocked_callers", "not a number")], "x", vec!["is not a phone number in E.164 form"]),
            (vec![("biller_name", "Northwind")], "  ", vec!["Reason: say why"]),
        ] {
            let p = save(&mut admin, &changes, reason).await;
            assert_eq!(p.status, 422, "{changes:?}: {}", p.body);
            assert!(p.body.contains("Nothing was saved: check these"), "{changes:?}");
            for m in messages {
                assert!(unescape(&p.body).contains(m), "{changes:?}: {m} in {}", p.body);
            }
            // What was typed is kept in the form, marked.
            let (key, value) = changes[0];
            assert!(p.body.contains("aria-invalid=\"true\""), "{changes:?}");
            if !value.is_empty() {
                assert!(form_fields(&p.body).iter().any(|(k, v)| k == key && v == value), "{key} kept");
            }
        }
        assert_eq!(versions(&app).await, 0, "nothing saved");
        assert!(get_text(&app, "/pay").await.contains("Riverbend Utilities (demo)"));
        assert!(!audit_actions(&app).await.iter().any(|(_, what)| what == "settings.changed"));
    }

    async fn supervisors_read_the_settings_and_only_administrators_change_them(app) {
        staff(&app, "sue@example.com", "Sue Supervisor", Role::Supervisor).await;
        staff(&app, "ann@example.com", "Ann Agent", Role::Agent).await;
        let (mut sup, _) = sign_in(&app, "sue@example.com", None).await;
        let page = sup.get("/desk/settings").await;
        assert_eq!(page.status, 200);
        assert!(page.body.contains("Only an administrator may change them."));
        assert!(page.body.contains(" readonly"));
        assert!(!page.body.contains("Save the settings"));
        let p = save(&mut sup, &[("biller_name", "Sue Power")], "mine now").await;
        assert_eq!(p.status, 403, "{}", p.body);
        assert!(p.body.contains("Only an administrator may change settings."));

        let (mut agent, _) = sign_in(&app, "ann@example.com", None).await;
        assert!(!agent.get("/desk").await.body.contains("/desk/settings"), "no link for agents");
        let p = agent.get("/desk/settings").await;
        assert_eq!(p.status, 403);
        assert!(p.body.contains("Settings are for supervisors and administrators."));
        assert!(!p.body.contains("Riverbend"), "no values shown to agents");
        assert_eq!(versions(&app).await, 0);
    }

    async fn other_instances_and_a_restart_take_up_the_newest_version(app) {
        // A second instance on the same database, as `billpay serve` starts one.
        let keyring = app.db.dir.path().join("vault-keyring.toml");
        let settings = billpay::config::Settings {
            database_url: app.db.url.clone(),
            keyring_file: Some(keyring),
            ..Default::default()
        };
        let (other, _) = billpay::build_with_clock(&settings, false, app.clock.clone()).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let other_base = format!("http://{}", listener.local_addr().unwrap());
        let router = billpay_http::router(other.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>()).await;
        });

        staff(&app, ADMIN, "Ada Admin", Role::Admin).await;
        let (mut admin, _) = sign_in(&app, ADMIN, None).await;
        let p = save(&mut admin, &[("biller_name", "Northwind Power")], "Rebrand").await;
        assert_eq!(p.status, 303, "{}", p.body);

        // The other instance looks every 5 seconds.
        let started = std::time::Instant::now();
        loop {
            let page = app.client.get(format!("{other_base}/pay")).send().await.unwrap().text().await.unwrap();
            if page.contains("Northwind Power") {
                break;
            }
            assert!(started.elapsed() < std::time::Duration::from_secs(20), "the other instance never took up version 1");
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
        assert_eq!(other.settings.version(), 1);

        // A restart starts with the newest version in force.
        let (restarted, _) = billpay::build_with_clock(&settings, false, app.clock.clone()).await.unwrap();
        assert_eq!(restarted.config().biller.name, "Northwind Power");
        assert_eq!(restarted.settings.version(), 1);
    }
}

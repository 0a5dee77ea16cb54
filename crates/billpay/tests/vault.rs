//! Saved payment methods (the vault) through the API, on SQLite and PostgreSQL.

mod common;

use common::*;
use serde_json::{Value, json};

fn save_card(number: &str) -> Value {
    json!({"type": "card", "number": number, "exp_month": 12, "exp_year": 2034, "postal_code": "10001"})
}

async fn save(app: &TestApp, acct: &str, body: Value) -> (u16, Value) {
    app.post(&format!("/api/v1/accounts/{acct}/payment_methods"), body)
        .await
}

async fn pay_token(app: &TestApp, acct: &str, cents: i64, token: &str) -> (u16, Value) {
    app.pay(
        &new_key(),
        json!({"account_number": acct, "amount": cents, "channel": "web",
        "payment_method": {"type": "token", "token": token}}),
    )
    .await
}

async fn audit_actions(app: &TestApp, pm: &str) -> Vec<String> {
    let mut c = app.app.store.read_conn().await.unwrap();
    billpay_store::queries::audit_for_subject(&mut c, "payment_method", pm)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.action)
        .collect()
}

async fn method_row(app: &TestApp, id: &str) -> billpay_store::rows::PaymentMethodRow {
    let mut c = app.app.store.read_conn().await.unwrap();
    billpay_store::queries::payment_method_by_id(&mut c, id)
        .await
        .unwrap()
        .expect("row")
}

both_engines! {
    async fn save_list_and_pay_with_a_saved_card(app) {
        let acct = app.account_with_bill(8410).await;
        let (s, m) = save(&app, &acct, save_card("4242424242424242")).await;
        assert_eq!(s, 201, "{m}");
        let token = m["id"].as_str().unwrap().to_string();
        assert!(token.starts_with("pm_"));
        assert_eq!(m["brand"], "visa");
        assert_eq!(m["last4"], "4242");
        assert_eq!(m["is_default"], true, "the first saved method is the default");
        assert_eq!(m["description"], "Visa ending in 4242");
        assert!(!m.to_string().contains("4242424242424242"));

        // Saving the same card again returns the one already saved.
        let (s, again) = save(&app, &acct, json!({"type": "card", "number": "4242 4242 4242 4242", "exp_month": 1, "exp_year": 2035, "nickname": "Everyday"})).await;
        assert_eq!(s, 200, "{again}");
        assert_eq!(again["id"], token);
        assert_eq!(again["exp_year"], 2035, "the new expiry is kept");
        assert_eq!(again["nickname"], "Everyday");

        let (s, p) = pay_token(&app, &acct, 8410, &token).await;
        assert_eq!(s, 201, "{p}");
        assert_eq!(p["status"], "succeeded");
        assert_eq!(p["payment_method"]["id"], token);
        assert_eq!(p["payment_method"]["last4"], "4242");
        assert_eq!(app.balance(&acct).await, 0);

        let (s, list) = app.get(&format!("/api/v1/accounts/{acct}/payment_methods")).await;
        assert_eq!(s, 200);
        assert_eq!(list["data"].as_array().unwrap().len(), 1);
        let actions = audit_actions(&app, &token).await;
        assert_eq!(actions, vec!["vault.save", "vault.update", "vault.use"]);
        let row = method_row(&app, &token).await;
        assert!(!row.ciphertext.contains("4242424242424242") && !row.ciphertext.is_empty());
        assert_eq!(row.last4, "4242");
        app.assert_verified().await;
    }

    async fn saved_declines_and_bank_accounts(app) {
        let acct = app.account_with_bill(20_000).await;
        let (_, m) = save(&app, &acct, save_card("4000000000009995")).await;
        let (s, d) = pay_token(&app, &acct, 500, m["id"].as_str().unwrap()).await;
        assert_eq!(s, 402, "{d}");
        assert_eq!(d["error"]["decline_code"], "insufficient_funds");

        let (s, b) = save(&app, &acct, json!({"type": "ach", "routing_number": "021000021", "account_number": "987650123456",
            "account_type": "savings", "holder_name": "Pat Payer", "default": true})).await;
        assert_eq!(s, 201, "{b}");
        assert_eq!(b["bank_name"], "JPMorgan Chase");
        assert_eq!(b["last4"], "3456");
        assert_eq!(b["is_default"], true);
        let (_, list) = app.get(&format!("/api/v1/accounts/{acct}/payment_methods")).await;
        let defaults: Vec<bool> = list["data"].as_array().unwrap().iter().map(|m| m["is_default"].as_bool().unwrap()).collect();
        assert_eq!(defaults, vec![true, false], "one default, listed first");
        let (s, p) = pay_token(&app, &acct, 700, b["id"].as_str().unwrap()).await;
        assert_eq!(s, 201, "{p}");
        assert_eq!(p["status"], "processing");
        assert_eq!(p["payment_method"]["type"], "ach");
        app.assert_verified().await;
    }

    async fn a_token_belongs_to_one_account(app) {
        let mine = app.account_with_bill(5000).await;
        let theirs = app.account_with_bill(5000).await;
        let (_, m) = save(&app, &mine, save_card("4242424242424242")).await;
        let token = m["id"].as_str().unwrap();
        let (s, e) = pay_token(&app, &theirs, 5000, token).await;
        assert_eq!(s, 400, "{e}");
        assert_eq!(e["error"]["param"], "payment_method[token]");
        assert!(e["error"]["message"].as_str().unwrap().contains("No such saved payment method"));
        let (s, _) = app.get(&format!("/api/v1/accounts/{theirs}/payment_methods/{token}")).await;
        assert_eq!(s, 404);
        let (s, _) = app.client.delete(format!("{}/api/v1/accounts/{theirs}/payment_methods/{token}", app.base))
            .bearer_auth(&app.key).send().await.map(|r| (r.status().as_u16(), ())).unwrap();
        assert_eq!(s, 404);
        let (s, _) = pay_token(&app, &mine, 5000, "pm_doesnotexist").await;
        assert_eq!(s, 400);
        assert_eq!(app.processor_charges().await, 0);
    }

    async fn update_and_delete(app) {
        let acct = app.account_with_bill(5000).await;
        let (_, a) = save(&app, &acct, save_card("4242424242424242")).await;
        let (_, b) = save(&app, &acct, save_card("5555555555554444")).await;
        let (a, b) = (a["id"].as_str().unwrap().to_string(), b["id"].as_str().unwrap().to_string());
        let path = |id: &str| format!("{}/api/v1/accounts/{acct}/payment_methods/{id}", app.base);
        let resp = app.client.patch(path(&b)).bearer_auth(&app.key).json(&json!({"nickname": "Travel card", "default": true, "exp_month": 3, "exp_year": 2036})).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let m: Value = resp.json().await.unwrap();
        assert_eq!((m["nickname"].as_str(), m["is_default"].as_bool(), m["exp_year"].as_u64()), (Some("Travel card"), Some(true), Some(2036)));
        let resp = app.client.patch(path(&b)).bearer_auth(&app.key).json(&json!({"nickname": "4242424242424242"})).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 400, "a nickname cannot hold a card number");
        let resp = app.client.patch(path(&b)).bearer_auth(&app.key).json(&json!({"exp_month": 3})).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 400);

        let resp = app.client.delete(path(&b)).bearer_auth(&app.key).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let row = method_row(&app, &b).await;
        assert_eq!(row.status, "deleted");
        assert!(row.ciphertext.is_empty() && row.wrapped_key.is_empty(), "the sealed number is destroyed");
        let (_, list) = app.get(&format!("/api/v1/accounts/{acct}/payment_methods")).await;
        let data = list["data"].as_array().unwrap();
        assert_eq!(data.len(), 1);
        assert_eq!(data[0]["id"], a);
        assert_eq!(data[0]["is_default"], true, "the default passes to the remaining method");
        let (s, _) = pay_token(&app, &acct, 5000, &b).await;
        assert_eq!(s, 400, "a deleted method cannot pay");
        assert_eq!(audit_actions(&app, &b).await, vec!["vault.save", "vault.update", "vault.delete"]);
    }

    async fn save_validation(app) {
        let acct = app.account_with_bill(5000).await;
        for (body, param) in [
            (json!({"type": "card", "number": "4242424242424241", "exp_month": 12, "exp_year": 2034}), "number"),
            (json!({"type": "card", "number": "4242424242424242", "exp_month": 12, "exp_year": 2020}), "exp_month"),
            (json!({"type": "card", "number": "4242424242424242", "exp_month": 12}), "exp_year"),
            (json!({"type": "card", "number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "1"}), "cvc"),
            (json!({"type": "token"}), "type"),
            (json!({"type": "ach", "routing_number": "021000022", "account_number": "12345678", "account_type": "checking", "holder_name": "X"}), "routing_number"),
            (json!({"type": "card", "number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "nickname": ""}), "nickname"),
        ] {
            let (s, e) = save(&app, &acct, body.clone()).await;
            assert_eq!(s, 400, "{body}: {e}");
            assert_eq!(e["error"]["param"], param, "{body}: {e}");
        }
        let (s, _) = save(&app, "100000000017", save_card("4242424242424242")).await;
        assert_eq!(s, 404);
    }

    async fn expiry_is_tracked(app) {
        let acct = app.account_with_bill(5000).await;
        let today = app.app.clock.now().to_zoned(jiff::tz::TimeZone::UTC).date();
        let next = today.first_of_month().checked_add(jiff::Span::new().months(1)).unwrap();
        let (_, m) = save(&app, &acct, json!({"type": "card", "number": "4242424242424242", "exp_month": next.month(), "exp_year": next.year()})).await;
        assert_eq!(m["expiry_notice"], "Your Visa ending in 4242 expires next month.", "{m}");
        let (_, far) = save(&app, &acct, save_card("5555555555554444")).await;
        assert!(far["expiry_notice"].is_null());
        // Once the month has passed the card is refused with a way forward.
        app.clock.advance(jiff::SignedDuration::from_hours(24 * 70));
        let (s, e) = pay_token(&app, &acct, 100, m["id"].as_str().unwrap()).await;
        assert_eq!(s, 400, "{e}");
        assert!(e["error"]["message"].as_str().unwrap().contains("has expired"), "{e}");
    }

    async fn tampered_ciphertext_fails_cleanly_and_charges_nothing(app) {
        let acct = app.account_with_bill(5000).await;
        let (_, m) = save(&app, &acct, save_card("4242424242424242")).await;
        let id = m["id"].as_str().unwrap().to_string();
        let row = method_row(&app, &id).await;
        // Flip one character of the stored ciphertext (still valid base64).
        let mut ct: Vec<char> = row.ciphertext.chars().collect();
        let i = ct.len() / 2;
        ct[i] = if ct[i] == 'A' { 'B' } else { 'A' };
        let tampered: String = ct.into_iter().collect();
        let id2 = id.clone();
        app.app.store.write(move |c| Box::pin(async move {
            sqlx::query("UPDATE payment_methods SET ciphertext = $1 WHERE id = $2").bind(tampered).bind(id2).execute(c).await?;
            Ok::<_, billpay_store::StoreError>(())
        })).await.unwrap();
        let (s, e) = pay_token(&app, &acct, 5000, &id).await;
        assert_eq!(s, 409, "{e}");
        assert_eq!(e["error"]["code"], "payment_method_unreadable");
        assert!(e["error"]["message"].as_str().unwrap().contains("Nothing was charged"));
        assert_eq!(app.processor_charges().await, 0);
        assert_eq!(app.balance(&acct).await, 5000);
        // A sealed number copied onto another record does not open there either: the record id
        // is bound into the encryption.
        let (_, a) = save(&app, &acct, save_card("5555555555554444")).await;
        let (_, b) = save(&app, &acct, save_card("6011111111111117")).await;
        let (a, b) = (a["id"].as_str().unwrap().to_string(), b["id"].as_str().unwrap().to_string());
        let from = method_row(&app, &a).await;
        let b2 = b.clone();
        app.app.store.write(move |c| Box::pin(async move {
            sqlx::query("UPDATE payment_methods SET wrapped_key = $1, ciphertext = $2 WHERE id = $3")
                .bind(from.wrapped_key).bind(from.ciphertext).bind(b2).execute(c).await?;
            Ok::<_, billpay_store::StoreError>(())
        })).await.unwrap();
        let (s, e) = pay_token(&app, &acct, 5001, &b).await;
        assert_eq!(s, 409, "{e}");
        let (s, _) = pay_token(&app, &acct, 5002, &a).await;
        assert_eq!(s, 201, "the original still works");
        assert_eq!(app.processor_charges().await, 1);
        app.assert_verified().await;
    }

    async fn rotation_under_load_rewraps_everything(app) {
        let acct = app.account_with_bill(1_000_000).await;
        let mut tokens = Vec::new();
        for n in ["4242424242424242", "5555555555554444", "378282246310005", "6011111111111117"] {
            let (_, m) = save(&app, &acct, save_card(n)).await;
            tokens.push(m["id"].as_str().unwrap().to_string());
        }
        for i in 0..4 {
            let (_, m) = save(&app, &app.account_with_bill(100).await, save_card(["4000056655665556", "2223003122003222", "5200828282828210", "6011981111111113"][i])).await;
            assert!(m["id"].is_string());
        }
        // Payments keep flowing with saved methods while the key rotates.
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut workers = Vec::new();
        for w in 0..4 {
            let (client, base, key, acct, tokens, stop) = (app.client.clone(), app.base.clone(), app.key.clone(), acct.clone(), tokens.clone(), stop.clone());
            workers.push(tokio::spawn(async move {
                let (mut ok, mut i) = (0, 0i64);
                while !stop.load(std::sync::atomic::Ordering::SeqCst) || i < 3 {
                    let token = &tokens[(i as usize + w) % tokens.len()];
                    let resp = client.post(format!("{base}/api/v1/payments")).bearer_auth(&key)
                        .header("Idempotency-Key", format!("rot-{w}-{i}"))
                        .json(&json!({"account_number": acct, "amount": 100 + w as i64 * 10_000 + i, "payment_method": {"type": "token", "token": token}}))
                        .send().await.unwrap();
                    let status = resp.status().as_u16();
                    assert_eq!(status, 201, "payment during rotation: {}", resp.text().await.unwrap());
                    ok += 1;
                    i += 1;
                }
                ok
            }));
        }
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        let path = app.db.dir.path().join("vault-keyring.toml");
        let mut keyring = billpay_vault::Keyring::load(&path).unwrap();
        let rng = |b: &mut [u8]| billpay_services::Random::fill(&billpay_services::OsRandom, b);
        let v2 = keyring.rotate(&rng);
        keyring.save(&path).unwrap();
        let moved = app.app.rewrap_payment_methods().await.unwrap();
        assert_eq!(moved, 8);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let mut paid = 0;
        for w in workers {
            paid += w.await.unwrap();
        }
        assert!(paid >= 12, "payments kept flowing: {paid}");
        let per_version = app.app.methods_per_key_version().await.unwrap();
        assert_eq!(per_version, vec![(i64::from(v2), 8)], "none is under the old key");
        // The old key can go; every method still opens.
        keyring.retire(1).unwrap();
        keyring.save(&path).unwrap();
        for (i, t) in tokens.iter().enumerate() {
            let (s, p) = pay_token(&app, &acct, 99_000 + i as i64, t).await;
            assert_eq!(s, 201, "{p}");
        }
        app.assert_verified().await;
    }
}

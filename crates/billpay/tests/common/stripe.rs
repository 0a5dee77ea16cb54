//! A local server that answers like Stripe's API does, for the Stripe connector's tests: form
//! POSTs with a Bearer key, `Idempotency-Key` replays (with `Idempotent-Replayed: true`),
//! PaymentIntents confirmed at creation with Stripe's test card outcomes, 402 card errors with
//! `decline_code`, search by metadata, refunds, disputes, and signed webhook events. Faults
//! are scripted per request: an error status (with or without `Stripe-Should-Retry`), or doing
//! the work and answering too late. Nothing leaves 127.0.0.1.

#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

pub const SECRET_KEY: &str = "sk_test_51FakeKeyForBillpayTests0123456789";
pub const WEBHOOK_SECRET: &str = "whsec_FakeWebhookSecretForBillpay0123456789";

/// What the next request gets instead of a normal answer.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer this status at once, doing nothing; `Stripe-Should-Retry` when given.
    Status(u16, Option<bool>),
    /// Do the work, then wait this long before answering (the client gives up first).
    SlowAnswer(Duration),
}

#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub idempotency_key: Option<String>,
    /// Form field names only: values (card numbers) are not kept.
    pub fields: Vec<String>,
}

#[derive(Default)]
pub struct Inner {
    pub requests: Vec<Request>,
    pub faults: VecDeque<Fault>,
    /// Idempotency key → (status, body) of the first answer.
    replays: HashMap<String, (u16, Value)>,
    pub payment_intents: Vec<Value>,
    pub refunds: Vec<Value>,
    pub disputes: Vec<Value>,
    seq: u64,
    /// The `created` time (Unix seconds) given to new objects; tests set it from their clock.
    pub created: i64,
    /// Card numbers seen (to prove they were sent, and only at charge time).
    pub card_numbers_seen: Vec<String>,
}

#[derive(Clone)]
pub struct FakeStripe {
    pub base: String,
    pub inner: Arc<Mutex<Inner>>,
}

impl FakeStripe {
    pub async fn start() -> FakeStripe {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            .route("/v1/payment_intents", post(create_pi).get(list_pi))
            .route("/v1/payment_intents/search", get(search_pi))
            .route("/v1/payment_intents/{id}", get(get_pi))
            .route("/v1/refunds", post(create_refund).get(list_refunds))
            .route("/v1/disputes/{id}", get(get_dispute))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake stripe");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeStripe {
            base: format!("http://{addr}"),
            inner,
        }
    }

    /// New objects are created at `t` (Unix seconds).
    pub fn set_created(&self, t: i64) {
        self.inner.lock().unwrap().created = t;
    }

    pub fn fault(&self, f: Fault) {
        self.inner.lock().unwrap().faults.push_back(f);
    }

    /// PaymentIntents created (each is one charge attempt at Stripe).
    pub fn charges(&self) -> usize {
        self.inner.lock().unwrap().payment_intents.len()
    }

    pub fn requests(&self) -> Vec<Request> {
        self.inner.lock().unwrap().requests.clone()
    }

    pub fn pi(&self, id: &str) -> Value {
        let g = self.inner.lock().unwrap();
        g.payment_intents
            .iter()
            .find(|p| p["id"] == id)
            .cloned()
            .expect("pi")
    }

    /// Moves a PaymentIntent to `status` (a bank debit settling or failing), with a failure
    /// code when it failed.
    pub fn set_pi_status(&self, id: &str, status: &str, failure_code: Option<&str>) -> Value {
        let mut g = self.inner.lock().unwrap();
        let pi = g
            .payment_intents
            .iter_mut()
            .find(|p| p["id"] == id)
            .expect("pi");
        pi["status"] = json!(status);
        if let Some(code) = failure_code {
            pi["last_payment_error"] =
                json!({"type": "card_error", "code": code, "message": "The payment failed."});
        }
        pi.clone()
    }

    /// Opens a dispute on a PaymentIntent, as a customer's bank would.
    pub fn open_dispute(&self, pi_id: &str, amount: i64, reason: &str) -> Value {
        let mut g = self.inner.lock().unwrap();
        g.seq += 1;
        let id = format!("dp_{:024}", g.seq);
        let d = json!({
            "id": id, "object": "dispute", "amount": amount, "currency": "usd",
            "charge": format!("ch_for_{pi_id}"), "payment_intent": pi_id,
            "reason": reason, "status": "needs_response", "livemode": false,
            "created": 1_700_000_000,
        });
        g.disputes.push(d.clone());
        d
    }

    pub fn set_dispute_status(&self, id: &str, status: &str) -> Value {
        let mut g = self.inner.lock().unwrap();
        let d = g
            .disputes
            .iter_mut()
            .find(|d| d["id"] == id)
            .expect("dispute");
        d["status"] = json!(status);
        d.clone()
    }

    pub fn next_event_id(&self) -> String {
        let mut g = self.inner.lock().unwrap();
        g.seq += 1;
        format!("evt_{:024}", g.seq)
    }
}

/// A Stripe event envelope around `object`, as Stripe posts it.
pub fn event(id: &str, kind: &str, object: &Value) -> String {
    json!({
        "id": id, "object": "event", "api_version": "2024-06-20", "created": 1_700_000_000,
        "type": kind, "livemode": false, "pending_webhooks": 1,
        "data": {"object": object},
    })
    .to_string()
}

/// `Stripe-Signature` for `payload` at `t`, computed here with HMAC-SHA256 (not with
/// billpay's code).
pub fn sign(secret: &str, t: i64, payload: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{payload}").as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

fn error(status: u16, kind: &str, code: &str, message: &str) -> (u16, Value) {
    (
        status,
        json!({"error": {"type": kind, "code": code, "message": message}}),
    )
}

fn reply(status: u16, body: &Value, replayed: bool, should_retry: Option<bool>) -> Response {
    let mut r = (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response();
    r.headers_mut()
        .insert("request-id", "req_fake".parse().unwrap());
    if replayed {
        r.headers_mut()
            .insert("idempotent-replayed", "true".parse().unwrap());
    }
    if let Some(b) = should_retry {
        r.headers_mut()
            .insert("stripe-should-retry", b.to_string().parse().unwrap());
    }
    r
}

type Shared = Arc<Mutex<Inner>>;

/// Auth, fault, log: the common start of every request. `Err` is the answer to send now.
fn start(
    inner: &Shared,
    headers: &HeaderMap,
    method: &str,
    path: &str,
    fields: Vec<String>,
) -> Result<Option<Duration>, Box<Response>> {
    let mut g = inner.lock().unwrap();
    let idem = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    g.requests.push(Request {
        method: method.into(),
        path: path.into(),
        idempotency_key: idem,
        fields,
    });
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if auth != format!("Bearer {SECRET_KEY}") {
        let (s, b) = error(
            401,
            "invalid_request_error",
            "api_key_invalid",
            "Invalid API Key provided.",
        );
        return Err(Box::new(reply(s, &b, false, None)));
    }
    match g.faults.pop_front() {
        Some(Fault::Status(s, retry)) => {
            let (s, b) = error(
                s,
                "api_error",
                "api_error",
                "Something went wrong on Stripe's end.",
            );
            Err(Box::new(reply(s, &b, false, retry)))
        }
        Some(Fault::SlowAnswer(d)) => Ok(Some(d)),
        None => Ok(None),
    }
}

fn form(body: &Bytes) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes(body).unwrap_or_default()
}

fn field<'a>(f: &'a [(String, String)], name: &str) -> Option<&'a str> {
    f.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Stripe's test cards: (code, decline_code), or None for success; Some(("requires_action", ..))
/// for a card that needs 3-D Secure.
fn card_script(number: &str) -> Option<(&'static str, Option<&'static str>)> {
    Some(match number {
        "4000000000000002" => ("card_declined", Some("generic_decline")),
        "4000000000009995" => ("card_declined", Some("insufficient_funds")),
        "4000000000009987" => ("card_declined", Some("lost_card")),
        "4000000000009979" => ("card_declined", Some("stolen_card")),
        "4000000000000069" => ("expired_card", Some("expired_card")),
        "4000000000000127" => ("incorrect_cvc", Some("incorrect_cvc")),
        "4000000000000119" => ("processing_error", Some("processing_error")),
        "4000000000006975" => ("card_declined", Some("card_velocity_exceeded")),
        "4100000000000019" => ("card_declined", Some("fraudulent")),
        "4000000000000036" => ("incorrect_zip", Some("incorrect_zip")),
        "4000002760003184" => ("requires_action", None),
        _ => return None,
    })
}

async fn create_pi(State(inner): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let f = form(&body);
    let names = f.iter().map(|(k, _)| k.clone()).collect();
    let delay = match start(&inner, &headers, "POST", "/v1/payment_intents", names) {
        Ok(d) => d,
        Err(r) => return *r,
    };
    let idem = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (status, answer, replayed) = {
        let mut g = inner.lock().unwrap();
        if let Some((s, b)) = idem.as_ref().and_then(|k| g.replays.get(k)).cloned() {
            (s, b, true)
        } else {
            let (s, b) = do_create_pi(&mut g, &f);
            if let Some(k) = idem {
                g.replays.insert(k, (s, b.clone()));
            }
            (s, b, false)
        }
    };
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    reply(status, &answer, replayed, None)
}

fn do_create_pi(g: &mut Inner, f: &[(String, String)]) -> (u16, Value) {
    let Some(amount) = field(f, "amount").and_then(|a| a.parse::<i64>().ok()) else {
        return error(
            400,
            "invalid_request_error",
            "parameter_missing",
            "Missing required param: amount.",
        );
    };
    let currency = field(f, "currency").unwrap_or("usd").to_string();
    g.seq += 1;
    let id = format!("pi_{:024}", g.seq);
    let mut metadata = serde_json::Map::new();
    for (k, v) in f {
        if let Some(name) = k
            .strip_prefix("metadata[")
            .and_then(|k| k.strip_suffix(']'))
        {
            metadata.insert(name.to_string(), json!(v));
        }
    }
    let kind = field(f, "payment_method_data[type]")
        .unwrap_or("card")
        .to_string();
    let mut pi = json!({
        "id": id, "object": "payment_intent", "amount": amount, "amount_received": 0,
        "currency": currency, "status": "succeeded", "capture_method": "automatic",
        "confirmation_method": "automatic", "livemode": false, "metadata": metadata,
        "payment_method_types": [kind.clone()], "last_payment_error": null,
        "latest_charge": format!("ch_for_{id}"), "created": g.created,
        "description": field(f, "description"),
    });
    let mut result: (u16, Value) = (200, Value::Null);
    if kind == "card" {
        let number = field(f, "payment_method_data[card][number]").unwrap_or_default();
        g.card_numbers_seen.push(number.to_string());
        match card_script(number) {
            None => pi["amount_received"] = json!(amount),
            Some(("requires_action", _)) => {
                pi["status"] = json!("requires_action");
                pi["next_action"] = json!({"type": "use_stripe_sdk"});
            }
            Some((code, decline)) => {
                let err = json!({
                    "type": "card_error", "code": code, "decline_code": decline,
                    "message": "Your card was declined.", "doc_url": "https://stripe.com/docs/error-codes",
                    "payment_method": {"type": "card", "card": {"last4": &number[number.len().saturating_sub(4)..]}},
                });
                pi["status"] = json!("requires_payment_method");
                pi["last_payment_error"] = err.clone();
                let mut e = err;
                e["payment_intent"] = pi.clone();
                result = (402, json!({"error": e}));
            }
        }
    } else {
        // us_bank_account: processing until the bank settles or returns it.
        pi["status"] = json!("processing");
    }
    g.payment_intents.push(pi.clone());
    if result.0 == 200 {
        result.1 = pi;
    }
    result
}

async fn list_pi(
    State(inner): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = start(&inner, &headers, "GET", "/v1/payment_intents", vec![]) {
        return *r;
    }
    let num = |k: &str| q.get(k).and_then(|v| v.parse::<i64>().ok());
    let (gte, lt) = (
        num("created[gte]").unwrap_or(i64::MIN),
        num("created[lt]").unwrap_or(i64::MAX),
    );
    let limit = num("limit").unwrap_or(10).clamp(1, 100) as usize;
    let g = inner.lock().unwrap();
    // Newest first, as Stripe lists; `starting_after` continues after that id.
    let mut all: Vec<&Value> = g
        .payment_intents
        .iter()
        .rev()
        .filter(|p| p["created"].as_i64().is_some_and(|c| c >= gte && c < lt))
        .collect();
    if let Some(after) = q.get("starting_after")
        && let Some(i) = all.iter().position(|p| p["id"] == after.as_str())
    {
        all.drain(..=i);
    }
    let has_more = all.len() > limit;
    let data: Vec<Value> = all.into_iter().take(limit).cloned().collect();
    reply(
        200,
        &json!({"object": "list", "data": data, "has_more": has_more, "url": "/v1/payment_intents"}),
        false,
        None,
    )
}

async fn get_pi(
    State(inner): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = start(&inner, &headers, "GET", "/v1/payment_intents/{id}", vec![]) {
        return *r;
    }
    let g = inner.lock().unwrap();
    match g.payment_intents.iter().find(|p| p["id"] == id) {
        Some(pi) => reply(200, pi, false, None),
        None => {
            let (s, b) = error(
                404,
                "invalid_request_error",
                "resource_missing",
                "No such payment_intent",
            );
            reply(s, &b, false, None)
        }
    }
}

async fn search_pi(
    State(inner): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = start(
        &inner,
        &headers,
        "GET",
        "/v1/payment_intents/search",
        vec![],
    ) {
        return *r;
    }
    let query = q.get("query").cloned().unwrap_or_default();
    // metadata['billpay_key']:'KEY'
    let Some(key) = query
        .strip_prefix("metadata['billpay_key']:'")
        .and_then(|k| k.strip_suffix('\''))
    else {
        let (s, b) = error(
            400,
            "invalid_request_error",
            "parameter_invalid",
            "Invalid search query.",
        );
        return reply(s, &b, false, None);
    };
    let g = inner.lock().unwrap();
    let data: Vec<Value> = g
        .payment_intents
        .iter()
        .filter(|p| p["metadata"]["billpay_key"] == key)
        .cloned()
        .collect();
    reply(
        200,
        &json!({"object": "search_result", "data": data, "has_more": false, "url": "/v1/payment_intents/search"}),
        false,
        None,
    )
}

async fn create_refund(State(inner): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let f = form(&body);
    let names = f.iter().map(|(k, _)| k.clone()).collect();
    let delay = match start(&inner, &headers, "POST", "/v1/refunds", names) {
        Ok(d) => d,
        Err(r) => return *r,
    };
    let idem = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (status, answer, replayed) = {
        let mut g = inner.lock().unwrap();
        if let Some((s, b)) = idem.as_ref().and_then(|k| g.replays.get(k)).cloned() {
            (s, b, true)
        } else {
            let (s, b) = do_refund(&mut g, &f);
            if let Some(k) = idem {
                g.replays.insert(k, (s, b.clone()));
            }
            (s, b, false)
        }
    };
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    reply(status, &answer, replayed, None)
}

fn do_refund(g: &mut Inner, f: &[(String, String)]) -> (u16, Value) {
    let pi_id = field(f, "payment_intent").unwrap_or_default().to_string();
    let Some(pi) = g
        .payment_intents
        .iter()
        .find(|p| p["id"] == pi_id.as_str())
        .cloned()
    else {
        return error(
            404,
            "invalid_request_error",
            "resource_missing",
            "No such payment_intent",
        );
    };
    if pi["status"] != "succeeded" {
        return error(
            400,
            "invalid_request_error",
            "charge_not_refundable",
            "This charge cannot be refunded.",
        );
    }
    let already: i64 = g
        .refunds
        .iter()
        .filter(|r| r["payment_intent"] == pi_id.as_str())
        .map(|r| r["amount"].as_i64().unwrap_or(0))
        .sum();
    let total = pi["amount"].as_i64().unwrap_or(0);
    let amount = field(f, "amount")
        .and_then(|a| a.parse::<i64>().ok())
        .unwrap_or(total - already);
    if already + amount > total {
        return error(
            400,
            "invalid_request_error",
            "charge_already_refunded",
            "Refund amount exceeds the charge.",
        );
    }
    g.seq += 1;
    let mut metadata = serde_json::Map::new();
    for (k, v) in f {
        if let Some(name) = k
            .strip_prefix("metadata[")
            .and_then(|k| k.strip_suffix(']'))
        {
            metadata.insert(name.to_string(), json!(v));
        }
    }
    let r = json!({
        "id": format!("re_{:024}", g.seq), "object": "refund", "amount": amount,
        "currency": pi["currency"], "payment_intent": pi_id, "charge": pi["latest_charge"],
        "status": "succeeded", "metadata": metadata, "created": 1_700_000_000,
    });
    g.refunds.push(r.clone());
    (200, r)
}

async fn list_refunds(
    State(inner): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = start(&inner, &headers, "GET", "/v1/refunds", vec![]) {
        return *r;
    }
    let pi = q.get("payment_intent").cloned().unwrap_or_default();
    let g = inner.lock().unwrap();
    let data: Vec<Value> = g
        .refunds
        .iter()
        .filter(|r| r["payment_intent"] == pi.as_str())
        .cloned()
        .collect();
    reply(
        200,
        &json!({"object": "list", "data": data, "has_more": false, "url": "/v1/refunds"}),
        false,
        None,
    )
}

async fn get_dispute(
    State(inner): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = start(&inner, &headers, "GET", "/v1/disputes/{id}", vec![]) {
        return *r;
    }
    let g = inner.lock().unwrap();
    match g.disputes.iter().find(|d| d["id"] == id) {
        Some(d) => reply(200, d, false, None),
        None => {
            let (s, b) = error(
                404,
                "invalid_request_error",
                "resource_missing",
                "No such dispute",
            );
            reply(s, &b, false, None)
        }
    }
}

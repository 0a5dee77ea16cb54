//! The phone line's webhooks, Twilio-compatible (SignalWire's cXML and Telnyx's TeXML post the
//! same form fields and accept the same TwiML):
//!
//! - `POST /ivr/twilio/voice` answers a new call;
//! - `POST /ivr/twilio/gather?turn=N` continues it with the keys pressed (`Digits`), or with
//!   no input when a silent Gather falls through to its Redirect;
//! - `POST /ivr/twilio/status` takes call-status callbacks.
//!
//! Every request must carry a valid `X-Twilio-Signature` (base64 HMAC-SHA1 under the auth
//! token of the public URL followed by the sorted POST parameters); anything else is 403 with
//! an empty body. Logs carry the call id and never a parameter value.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use billpay_ivr::Input;
use billpay_services::Billpay;
use billpay_services::ivr::{CallEvent, DIGITS_LEN_MAX};
use hmac13::{Hmac, KeyInit, Mac};
use subtle::ConstantTimeEq;

/// Where a Gather posts its keys.
pub const GATHER_PATH: &str = "/ivr/twilio/gather";

/// The verified form parameters of a webhook.
#[derive(Clone, Debug, Default)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// base64(HMAC-SHA1(token, url + every parameter sorted by name, name then value)).
pub fn twilio_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut data = String::from(url);
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(auth_token.as_bytes()) else {
        return String::new();
    };
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

pub fn routes() -> Router<Billpay> {
    Router::new()
        .route("/ivr/twilio/voice", post(voice))
        .route(GATHER_PATH, post(gather))
        .route("/ivr/twilio/status", post(status))
}

/// Routes with the signature check in front.
pub fn signed_routes(app: Billpay) -> Router<Billpay> {
    routes().layer(middleware::from_fn_with_state(app, require_signature))
}

fn forbidden() -> Response {
    StatusCode::FORBIDDEN.into_response()
}

async fn require_signature(State(app): State<Billpay>, req: Request, next: Next) -> Response {
    let Some(token) = app.config.ivr.twilio_auth_token.clone() else {
        tracing::warn!("phone webhook refused: no Twilio auth token is configured");
        return forbidden();
    };
    let (mut parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, crate::REQUEST_BODY_MAX_BYTES).await else {
        return forbidden();
    };
    let Some(given) = parts
        .headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
    else {
        return forbidden();
    };
    let params: Vec<(String, String)> = match serde_urlencoded::from_bytes(&bytes) {
        Ok(p) => p,
        Err(_) => return forbidden(),
    };
    let base = match &app.config.ivr.public_url {
        Some(u) => u.trim_end_matches('/').to_string(),
        None => {
            let host = parts
                .headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("");
            format!("http://{host}")
        }
    };
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let expected = twilio_signature(token.expose_secret(), &format!("{base}{path}"), &params);
    let ok: bool = expected.as_bytes().ct_eq(given.as_bytes()).into();
    if !ok || expected.is_empty() {
        tracing::warn!("phone webhook refused: bad signature");
        return forbidden();
    }
    parts.extensions.insert(Params(params));
    next.run(Request::from_parts(
        parts,
        axum::body::Body::from(Bytes::new()),
    ))
    .await
}

fn twiml(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], body).into_response()
}

fn turn_of(req: &Request) -> Option<i64> {
    req.uri().query().and_then(|q| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix("turn="))
            .and_then(|t| t.parse().ok())
    })
}

async fn answer(app: Billpay, event: CallEvent) -> Response {
    // In its own task: a provider hanging up mid-request cannot cut a payment short.
    let work = tokio::spawn(async move { app.ivr_event(event, GATHER_PATH).await });
    match work.await {
        Ok(Ok(a)) => twiml(a.twiml),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "phone webhook failed");
            twiml(sorry())
        }
        Err(e) => {
            tracing::error!(error = %e, "phone webhook task failed");
            twiml(sorry())
        }
    }
}

fn sorry() -> String {
    use billpay_domain::Language;
    use billpay_ivr::twiml::{Response, Verb};
    Response::new()
        .push(Verb::say(
            Language::En,
            "We're sorry, we cannot take your call right now. Please call again later.",
        ))
        .push(Verb::say(
            Language::Es,
            "Lo sentimos, no podemos atender su llamada en este momento. Por favor llame más tarde.",
        ))
        .push(Verb::Hangup)
        .to_xml()
}

fn params(req: &Request) -> Params {
    req.extensions()
        .get::<Params>()
        .cloned()
        .unwrap_or_default()
}

async fn voice(State(app): State<Billpay>, req: Request) -> Response {
    let p = params(&req);
    let event = CallEvent {
        call_sid: p.get("CallSid").unwrap_or("").to_string(),
        from: p.get("From").unwrap_or("").to_string(),
        turn: None,
        input: Input::Start {
            from: p.get("From").unwrap_or("").to_string(),
        },
    };
    answer(app, event).await
}

async fn gather(State(app): State<Billpay>, req: Request) -> Response {
    let p = params(&req);
    let digits: String = p
        .get("Digits")
        .unwrap_or("")
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '#' || *c == '*')
        .take(DIGITS_LEN_MAX)
        .collect();
    let input = if digits.trim_end_matches('#').is_empty() {
        Input::NoInput
    } else {
        Input::Digits(digits)
    };
    let event = CallEvent {
        call_sid: p.get("CallSid").unwrap_or("").to_string(),
        from: p.get("From").unwrap_or("").to_string(),
        turn: turn_of(&req),
        input,
    };
    answer(app, event).await
}

async fn status(State(app): State<Billpay>, req: Request) -> Response {
    let p = params(&req);
    let sid = p.get("CallSid").unwrap_or("").to_string();
    let st = p.get("CallStatus").unwrap_or("").to_string();
    match app.ivr_status(&sid, &st).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => {
            tracing::error!(error = %e, "call status callback failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example from Twilio's webhook-security documentation.
    #[test]
    fn signature_matches_twilios_documented_example() {
        let params: Vec<(String, String)> = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            twilio_signature(
                "12345",
                "https://mycompany.com/myapp.php?foo=1&bar=2",
                &params
            ),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        );
    }
}

//! The phone line's webhooks, Twilio-compatible (SignalWire's cXML and Telnyx's TeXML post the
//! same form fields and accept the same TwiML):
//!
//! - `POST /ivr/twilio/voice` answers a new call;
//! - `POST /ivr/twilio/gather?turn=N` continues it with the keys pressed (`Digits`), or with
//!   no input when a silent Gather falls through to its Redirect;
//! - `POST /ivr/twilio/status` takes call-status callbacks;
//! - `POST /ivr/twilio/wait` is the hold message of a caller in the representatives' queue
//!   (`<Enqueue waitUrl>`): place in line and estimated wait, in the caller's language;
//! - `POST /ivr/twilio/whisper?call=SID` is what an answering representative hears before a
//!   `<Dial>`ed transfer connects: the verified account and why the caller was transferred;
//! - `POST /ivr/twilio/dial-status?call=SID` is how that dial ended: unanswered, the caller
//!   hears so and a call back is noted;
//! - `POST /ivr/twilio/handoff?code=N` is where a representative's phone system redirects a
//!   caller to key a card for the amount the agent desk set (the desk shows the code); the
//!   caller goes back to a representative after, and the outcome appears on the desk.
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
use billpay_services::ivr::{
    CallEvent, DIAL_STATUS_PATH, DIGITS_LEN_MAX, HANDOFF_PATH, WAIT_PATH, WHISPER_PATH,
};
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
        .route(WAIT_PATH, post(wait))
        .route(WHISPER_PATH, post(whisper))
        .route(DIAL_STATUS_PATH, post(dial_status))
        .route(HANDOFF_PATH, post(handoff))
}

/// Routes with the signature check in front.
pub fn signed_routes(app: Billpay) -> Router<Billpay> {
    routes().layer(middleware::from_fn_with_state(app, require_signature))
}

fn forbidden() -> Response {
    StatusCode::FORBIDDEN.into_response()
}

async fn require_signature(State(app): State<Billpay>, req: Request, next: Next) -> Response {
    let Some(token) = app.config().ivr.twilio_auth_token.clone() else {
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
    let base = match &app.config().ivr.public_url {
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

/// A phone call as the agent desk sees it.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct CallOut {
    pub call_sid: String,
    /// The caller's number, as the provider reported it.
    pub from: String,
    /// active, ended (the flow finished: paid and hung up, or transferred) or completed
    /// (the provider reported the call over)
    pub status: String,
    /// en or es
    pub language: String,
    /// The account the caller verified with its service ZIP code: the representative does
    /// not need to ask again.
    pub verified_account: Option<String>,
    /// caller_asked, too_many_attempts, no_input, in_doubt, payment_refused, system_error, or
    /// after the desk's card-entry hand-off handoff_paid, handoff_declined, handoff_canceled
    /// or handoff_invalid
    pub transfer_reason: Option<String>,
    /// The caller asked to be called back (transferred outside representatives' hours).
    pub callback_requested: bool,
    /// The confirmation number of the last payment made on the call.
    pub last_confirmation: Option<String>,
    pub started_at: String,
    pub updated_at: String,
}

#[utoipa::path(get, path = "/ivr/calls/{call_sid}", tag = "phone",
    params(("call_sid" = String, Path, description = "The provider's CallSid")),
    responses((status = 200, body = CallOut), (status = 404, body = crate::wire::ErrorBody)),
    security(("api_key" = [])))]
pub async fn get_call(
    State(app): State<Billpay>,
    axum::extract::Path(sid): axum::extract::Path<String>,
) -> Result<axum::Json<CallOut>, crate::error::ApiError> {
    let c = app.ivr_call_info(&sid).await?;
    Ok(axum::Json(CallOut {
        call_sid: c.call_sid,
        from: c.from,
        status: c.status,
        language: match c.language {
            billpay_domain::Language::En => "en",
            billpay_domain::Language::Es => "es",
        }
        .to_string(),
        verified_account: c.verified_account,
        transfer_reason: c.transfer_reason,
        callback_requested: c.callback_requested,
        last_confirmation: c.last_confirmation,
        started_at: c.started_at.to_string(),
        updated_at: c.updated_at.to_string(),
    }))
}

fn query_param(req: &Request, name: &str) -> Option<String> {
    let q = req.uri().query()?;
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(q).ok()?;
    pairs.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

async fn handoff(State(app): State<Billpay>, req: Request) -> Response {
    let p = params(&req);
    let code = query_param(&req, "code").unwrap_or_default();
    let sid = p.get("CallSid").unwrap_or("").to_string();
    let from = p.get("From").unwrap_or("").to_string();
    // In its own task, like every step that may lead to a payment.
    let work = tokio::spawn(async move { app.ivr_handoff(&sid, &from, &code, GATHER_PATH).await });
    match work.await {
        Ok(Ok(a)) => twiml(a.twiml),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "phone hand-off failed");
            twiml(sorry())
        }
        Err(e) => {
            tracing::error!(error = %e, "phone hand-off task failed");
            twiml(sorry())
        }
    }
}

async fn wait(State(app): State<Billpay>, req: Request) -> Response {
    let p = params(&req);
    let sid = p.get("CallSid").unwrap_or("").to_string();
    let number = |name: &str| p.get(name).and_then(|v| v.trim().parse::<u32>().ok());
    match app
        .ivr_hold(&sid, number("QueuePosition"), number("AvgQueueTime"))
        .await
    {
        Ok(xml) => twiml(xml),
        Err(e) => {
            tracing::error!(error = %e, "queue hold message failed");
            // The caller keeps waiting in silence rather than being dropped.
            twiml(
                billpay_ivr::twiml::Response::new()
                    .push(billpay_ivr::twiml::Verb::Pause { secs: 20 })
                    .to_xml(),
            )
        }
    }
}

async fn whisper(State(app): State<Billpay>, req: Request) -> Response {
    let sid = query_param(&req, "call").unwrap_or_default();
    match app.ivr_whisper(&sid).await {
        Ok(xml) => twiml(xml),
        Err(e) => {
            tracing::error!(error = %e, "representative whisper failed");
            twiml(billpay_ivr::twiml::Response::new().to_xml())
        }
    }
}

async fn dial_status(State(app): State<Billpay>, req: Request) -> Response {
    let sid = query_param(&req, "call").unwrap_or_default();
    let p = params(&req);
    let st = p.get("DialCallStatus").unwrap_or("").to_string();
    match app.ivr_dial_result(&sid, &st).await {
        Ok(xml) => twiml(xml),
        Err(e) => {
            tracing::error!(error = %e, "transfer outcome failed");
            twiml(sorry())
        }
    }
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

//! `billpay phone`: a terminal telephone that dials a running billpay the way the telephony
//! provider does (signed form webhooks), speaks each `<Say>` as a line of text, and reads keypad
//! entries from stdin (one line per Gather; an empty line is silence). The tests drive the same
//! phone with scripted keys.

use anyhow::{Context, Result};
use billpay_ivr::twiml::{Event, read};

/// One simulated call.
pub struct Phone {
    pub base: String,
    pub auth_token: String,
    pub from: String,
    pub to: String,
    pub call_sid: String,
    client: reqwest::Client,
}

/// Most webhooks one call may take (a runaway loop ends the call).
const TURNS_MAX: usize = 200;

impl Phone {
    pub fn new(base: &str, auth_token: &str, from: &str, call_sid: &str) -> Phone {
        Phone::with_client(base, auth_token, from, call_sid, reqwest::Client::new())
    }

    /// A phone sharing an HTTP client (and its connections) with other phones. Building a
    /// client reads the system's root certificates, which many phones at once should not.
    pub fn with_client(
        base: &str,
        auth_token: &str,
        from: &str,
        call_sid: &str,
        client: reqwest::Client,
    ) -> Phone {
        Phone {
            base: base.trim_end_matches('/').to_string(),
            auth_token: auth_token.to_string(),
            from: from.to_string(),
            to: "+18005550199".into(),
            call_sid: call_sid.to_string(),
            client,
        }
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        }
    }

    /// Posts one signed webhook; returns the status and body.
    pub async fn post(&self, path: &str, extra: &[(&str, &str)]) -> Result<(u16, String)> {
        let mut params: Vec<(String, String)> = vec![
            ("AccountSid".into(), "ACbillpayphone".into()),
            ("CallSid".into(), self.call_sid.clone()),
            ("From".into(), self.from.clone()),
            ("To".into(), self.to.clone()),
            ("Direction".into(), "inbound".into()),
        ];
        for (k, v) in extra {
            params.push((k.to_string(), v.to_string()));
        }
        let url = self.url(path);
        let signature = billpay_http::twilio::twilio_signature(&self.auth_token, &url, &params);
        let body = serde_urlencoded::to_string(&params)?;
        let resp = self
            .client
            .post(&url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("X-Twilio-Signature", signature)
            .body(body)
            .send()
            .await
            .with_context(|| format!("calling {url}"))?;
        let status = resp.status().as_u16();
        Ok((status, resp.text().await?))
    }

    /// Places the call. `keys` answers each Gather (None = the caller hung up; Some("") =
    /// silence); `out` receives each line of the transcript.
    pub async fn call(
        &self,
        keys: impl FnMut() -> Option<String>,
        out: impl FnMut(&str),
    ) -> Result<()> {
        self.call_at("/ivr/twilio/voice", keys, out).await
    }

    /// Like [`Phone::call`], but the provider first fetches `path`: a call a representative
    /// redirected there (the agent desk's card-entry hand-off, `/ivr/twilio/handoff?code=…`).
    pub async fn call_at(
        &self,
        path: &str,
        mut keys: impl FnMut() -> Option<String>,
        mut out: impl FnMut(&str),
    ) -> Result<()> {
        let (mut status, mut body) = self.post(path, &[]).await?;
        for _ in 0..TURNS_MAX {
            if status != 200 {
                out(&format!("[the line answered HTTP {status}]"));
                break;
            }
            let mut next: Option<(String, Vec<(&str, String)>)> = None;
            let mut in_gather: Option<String> = None;
            let mut ended = false;
            let mut secret_prompt = false;
            for ev in read(&body) {
                match ev {
                    Event::Say(text) => {
                        // The question is the last thing said before the caller keys.
                        secret_prompt = asks_for_secret(&text);
                        out(&format!("  \"{text}\""));
                    }
                    Event::Gather { action } => in_gather = Some(action),
                    Event::GatherEnd => {
                        let Some(action) = in_gather.take() else {
                            continue;
                        };
                        match keys() {
                            None => {
                                out("[caller hangs up]");
                                ended = true;
                                break;
                            }
                            Some(k) if k.trim().is_empty() => out("# (silence)"),
                            Some(k) => {
                                // The echo masks a card number, as every billpay output does,
                                // and the whole answer to a security-code or bank-account prompt.
                                let shown = if secret_prompt {
                                    "*".repeat(k.trim().chars().count())
                                } else {
                                    billpay_domain::mask_card_numbers(k.trim()).into_owned()
                                };
                                out(&format!("# {shown}"));
                                next = Some((action, vec![("Digits", k.trim().to_string())]));
                                break;
                            }
                        }
                    }
                    Event::Redirect(url) => {
                        next = Some((url, Vec::new()));
                        break;
                    }
                    Event::Enqueue { queue, wait_url } => {
                        out(&format!("[transferred to the {queue} queue]"));
                        // The provider plays the hold message while the caller waits.
                        if let Some(url) = wait_url {
                            let (_, hold) = self
                                .post(&url, &[("QueuePosition", "1"), ("AvgQueueTime", "45")])
                                .await?;
                            for e in read(&hold) {
                                if let Event::Say(text) = e {
                                    out(&format!("  \"{text}\""));
                                }
                            }
                        }
                        ended = true;
                        break;
                    }
                    Event::Dial {
                        number,
                        whisper_url,
                    } => {
                        out(&format!("[dialing {number}]"));
                        // What the representative hears on answering, before the caller.
                        if let Some(url) = whisper_url {
                            let (_, heard) = self.post(&url, &[]).await?;
                            for e in read(&heard) {
                                if let Event::Say(text) = e {
                                    out(&format!("  [to the representative] \"{text}\""));
                                }
                            }
                        }
                        ended = true;
                        break;
                    }
                    Event::Pause(_) => {}
                    Event::Hangup => {
                        out("[the line hangs up]");
                        ended = true;
                        break;
                    }
                }
            }
            if ended {
                break;
            }
            let Some((path, params)) = next else {
                out("[the line hangs up]");
                break;
            };
            let extra: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
            (status, body) = self.post(&path, &extra).await?;
        }
        let (_, _) = self
            .post("/ivr/twilio/status", &[("CallStatus", "completed")])
            .await?;
        Ok(())
    }
}

/// Whether a prompt asks for a security code or a bank account number (English or Spanish).
fn asks_for_secret(prompt: &str) -> bool {
    let p = prompt.to_lowercase();
    [
        "security code",
        "código de seguridad",
        "bank account number",
        "cuenta bancaria",
    ]
    .iter()
    .any(|w| p.contains(w))
}

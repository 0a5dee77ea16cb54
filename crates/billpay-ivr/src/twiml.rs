//! A small typed TwiML writer. Every attribute value and text node goes through [`escape`];
//! nothing from a caller is ever pasted into markup. TwiML is also what SignalWire (cXML) and
//! Telnyx (TeXML) accept.

use billpay_domain::Language;

/// Escapes text for an XML text node or a double-quoted attribute.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters other than tab/newline are not allowed in XML 1.0.
            c if (c as u32) < 0x20 && c != '\t' && c != '\n' && c != '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// The `language` attribute of `<Say>` for a caller's language.
pub fn say_language(lang: Language) -> &'static str {
    match lang {
        Language::En => "en-US",
        Language::Es => "es-MX",
    }
}

/// The voice used for each language (Amazon Polly voices, available on Twilio).
pub fn say_voice(lang: Language) -> &'static str {
    match lang {
        Language::En => "Polly.Joanna",
        Language::Es => "Polly.Mia",
    }
}

/// One verb of a TwiML document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verb {
    Say {
        lang: Language,
        text: String,
    },
    Gather {
        action: String,
        num_digits: Option<u8>,
        finish_on_key: Option<char>,
        timeout_secs: u8,
        says: Vec<Verb>,
    },
    Redirect {
        url: String,
    },
    Enqueue {
        queue: String,
        wait_url: Option<String>,
    },
    /// Dials a number; `whisper_url` is TwiML run for the answering representative before
    /// the two are connected (`<Number url=...>`).
    Dial {
        number: String,
        whisper_url: Option<String>,
        /// Where the provider reports how the dial ended (`DialCallStatus`), with the seconds
        /// to ring first.
        action: Option<(String, u8)>,
    },
    Pause {
        secs: u8,
    },
    Hangup,
}

impl Verb {
    pub fn say(lang: Language, text: impl Into<String>) -> Verb {
        Verb::Say {
            lang,
            text: text.into(),
        }
    }

    fn write(&self, out: &mut String) {
        match self {
            Verb::Say { lang, text } => {
                out.push_str(&format!(
                    "<Say language=\"{}\" voice=\"{}\">{}</Say>",
                    say_language(*lang),
                    say_voice(*lang),
                    escape(text)
                ));
            }
            Verb::Gather {
                action,
                num_digits,
                finish_on_key,
                timeout_secs,
                says,
            } => {
                out.push_str("<Gather input=\"dtmf\"");
                if let Some(n) = num_digits {
                    out.push_str(&format!(" numDigits=\"{n}\""));
                }
                let finish = finish_on_key.map(|c| c.to_string()).unwrap_or_default();
                out.push_str(&format!(
                    " finishOnKey=\"{}\" timeout=\"{timeout_secs}\" action=\"{}\" method=\"POST\">",
                    escape(&finish),
                    escape(action)
                ));
                for s in says {
                    s.write(out);
                }
                out.push_str("</Gather>");
            }
            Verb::Redirect { url } => {
                out.push_str(&format!(
                    "<Redirect method=\"POST\">{}</Redirect>",
                    escape(url)
                ));
            }
            Verb::Enqueue { queue, wait_url } => {
                out.push_str("<Enqueue");
                if let Some(w) = wait_url {
                    out.push_str(&format!(
                        " waitUrl=\"{}\" waitUrlMethod=\"POST\"",
                        escape(w)
                    ));
                }
                out.push_str(&format!(">{}</Enqueue>", escape(queue)));
            }
            Verb::Dial {
                number,
                whisper_url,
                action,
            } => {
                out.push_str("<Dial");
                if let Some((url, ring_secs)) = action {
                    out.push_str(&format!(
                        " action=\"{}\" method=\"POST\" timeout=\"{ring_secs}\"",
                        escape(url)
                    ));
                }
                out.push('>');
                match whisper_url {
                    Some(w) => out.push_str(&format!(
                        "<Number url=\"{}\" method=\"POST\">{}</Number>",
                        escape(w),
                        escape(number)
                    )),
                    None => out.push_str(&escape(number)),
                }
                out.push_str("</Dial>");
            }
            Verb::Pause { secs } => out.push_str(&format!("<Pause length=\"{secs}\"/>")),
            Verb::Hangup => out.push_str("<Hangup/>"),
        }
    }
}

/// A whole TwiML `<Response>`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Response {
    pub verbs: Vec<Verb>,
}

impl Response {
    pub fn new() -> Response {
        Response::default()
    }

    pub fn push(mut self, verb: Verb) -> Response {
        self.verbs.push(verb);
        self
    }

    pub fn to_xml(&self) -> String {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>");
        for v in &self.verbs {
            v.write(&mut out);
        }
        out.push_str("</Response>");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_in_text_and_attributes() {
        let r = Response::new()
            .push(Verb::say(Language::En, "Tom & \"Jerry\" <b>"))
            .push(Verb::Redirect {
                url: "/x?a=1&b=\"2\"".into(),
            });
        assert_eq!(
            r.to_xml(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Say language=\"en-US\" voice=\"Polly.Joanna\">Tom &amp; &quot;Jerry&quot; &lt;b&gt;</Say><Redirect method=\"POST\">/x?a=1&amp;b=&quot;2&quot;</Redirect></Response>"
        );
    }

    #[test]
    fn gather_with_nested_say() {
        let r = Response::new().push(Verb::Gather {
            action: "/ivr/twilio/gather?turn=3".into(),
            num_digits: Some(1),
            finish_on_key: Some('#'),
            timeout_secs: 6,
            says: vec![Verb::say(Language::Es, "Oprima 1")],
        });
        assert_eq!(
            r.to_xml(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Gather input=\"dtmf\" numDigits=\"1\" finishOnKey=\"#\" timeout=\"6\" action=\"/ivr/twilio/gather?turn=3\" method=\"POST\"><Say language=\"es-MX\" voice=\"Polly.Mia\">Oprima 1</Say></Gather></Response>"
        );
    }

    #[test]
    fn control_characters_are_dropped() {
        assert_eq!(escape("a\u{0}b\u{7}c"), "abc");
    }
}

/// What a TwiML document asks the phone to do, in order (for the phone simulator and tests;
/// it reads the subset this module writes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Say(String),
    /// A Gather begins: what it says is spoken, then keys are posted to `action`.
    Gather {
        action: String,
    },
    GatherEnd,
    Redirect(String),
    Enqueue {
        queue: String,
        wait_url: Option<String>,
    },
    Dial {
        number: String,
        whisper_url: Option<String>,
    },
    Pause(u32),
    Hangup,
}

/// Undoes [`escape`].
pub fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let key = format!(" {name}=\"");
    let start = tag.find(&key)? + key.len();
    let end = tag.get(start..)?.find('"')? + start;
    tag.get(start..end).map(unescape)
}

/// Reads a TwiML document into events.
pub fn read(xml: &str) -> Vec<Event> {
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(open) = rest.find('<') {
        let Some(close) = rest.get(open..).and_then(|r| r.find('>')).map(|c| c + open) else {
            break;
        };
        let tag = rest.get(open + 1..close).unwrap_or("");
        rest = rest.get(close + 1..).unwrap_or("");
        let name = tag
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap_or("");
        let mut text_until = |end: &str| -> String {
            let pos = rest.find(end).unwrap_or(rest.len());
            let text = unescape(rest.get(..pos).unwrap_or(""));
            rest = rest.get(pos + end.len()..).unwrap_or("");
            text
        };
        match name {
            "Say" => out.push(Event::Say(text_until("</Say>"))),
            "Redirect" => out.push(Event::Redirect(text_until("</Redirect>"))),
            "Enqueue" => out.push(Event::Enqueue {
                wait_url: attr(tag, "waitUrl"),
                queue: text_until("</Enqueue>"),
            }),
            "Dial" => {
                // Read raw (the markup of <Number> is inside), unescaping each value once.
                let pos = rest.find("</Dial>").unwrap_or(rest.len());
                let inner = rest.get(..pos).unwrap_or("").to_string();
                rest = rest.get(pos + "</Dial>".len()..).unwrap_or("");
                let (number, whisper_url) = match inner.strip_prefix("<Number") {
                    Some(n) => {
                        let gt = n.find('>').unwrap_or(n.len());
                        let number = n.get(gt + 1..).unwrap_or("").trim_end_matches("</Number>");
                        (unescape(number), attr(n.get(..gt).unwrap_or(""), "url"))
                    }
                    None => (unescape(&inner), None),
                };
                out.push(Event::Dial {
                    number,
                    whisper_url,
                });
            }
            "Pause" => out.push(Event::Pause(
                attr(tag, "length")
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(1),
            )),
            "Gather" => out.push(Event::Gather {
                action: attr(tag, "action").unwrap_or_default(),
            }),
            "" if tag == "/Gather" => out.push(Event::GatherEnd),
            "Hangup" => out.push(Event::Hangup),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod read_tests {
    use super::*;

    #[test]
    fn reads_back_what_it_writes() {
        let xml = Response::new()
            .push(Verb::Gather {
                action: "/g?turn=1&x=2".into(),
                num_digits: None,
                finish_on_key: Some('#'),
                timeout_secs: 5,
                says: vec![Verb::say(Language::En, "Press <1> & go")],
            })
            .push(Verb::Redirect {
                url: "/g?turn=1".into(),
            })
            .push(Verb::Enqueue {
                queue: "billing".into(),
                wait_url: Some("/ivr/twilio/wait".into()),
            })
            .push(Verb::Dial {
                number: "+15555550100".into(),
                whisper_url: Some("/ivr/twilio/whisper?call=CA1&x=2".into()),
                action: Some(("/ivr/twilio/dial-status?call=CA1".into(), 25)),
            })
            .push(Verb::Pause { secs: 20 })
            .push(Verb::Hangup)
            .to_xml();
        assert_eq!(
            read(&xml),
            vec![
                Event::Gather {
                    action: "/g?turn=1&x=2".into()
                },
                Event::Say("Press <1> & go".into()),
                Event::GatherEnd,
                Event::Redirect("/g?turn=1".into()),
                Event::Enqueue {
                    queue: "billing".into(),
                    wait_url: Some("/ivr/twilio/wait".into())
                },
                Event::Dial {
                    number: "+15555550100".into(),
                    whisper_url: Some("/ivr/twilio/whisper?call=CA1&x=2".into())
                },
                Event::Pause(20),
                Event::Hangup,
            ]
        );
    }
}

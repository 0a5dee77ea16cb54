//! An SMTP sink on loopback for tests: speaks enough SMTP (EHLO/HELO, AUTH PLAIN, MAIL, RCPT,
//! DATA, RSET, NOOP, QUIT) for lettre, records every accepted message and the whole
//! transcript, and answers RCPT or the end of DATA with a reply the test queued (4xx, 5xx).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

#[derive(Clone, Debug)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The message as sent after DATA (headers and body, dot-unstuffed).
    pub data: String,
}

impl Received {
    /// A header's value (first occurrence, unfolded).
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next()?;
        let mut value: Option<String> = None;
        for line in head.split("\r\n") {
            if let Some(v) = value.as_mut() {
                if line.starts_with(' ') || line.starts_with('\t') {
                    v.push_str(line.trim_start());
                    continue;
                }
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case(name)
            {
                value = Some(v.trim().to_string());
            }
        }
        value
    }
}

#[derive(Default)]
struct State {
    messages: Vec<Received>,
    transcript: Vec<u8>,
    rcpt_replies: VecDeque<String>,
    data_replies: VecDeque<String>,
    data_delay: Duration,
    rcpt_commands: usize,
    auth: Vec<String>,
    tls_sessions: usize,
    /// Close the connection instead of answering the next RCPT / the next final `.`.
    hang_up_at_rcpt: bool,
    hang_up_after_data: bool,
    hung_up_messages: usize,
}

#[derive(Clone)]
pub struct SmtpSink {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        Self::start_with(Mode::Plain).await
    }

    /// A sink speaking TLS from the first byte (port 465 style) with this certificate and
    /// PKCS#8 key (DER).
    pub async fn start_tls(
        cert: rustls::pki_types::CertificateDer<'static>,
        key: Vec<u8>,
    ) -> SmtpSink {
        Self::start_with(Mode::Tls(acceptor(cert, key))).await
    }

    /// A sink that offers STARTTLS (port 587 style) and refuses mail before it.
    pub async fn start_starttls(
        cert: rustls::pki_types::CertificateDer<'static>,
        key: Vec<u8>,
    ) -> SmtpSink {
        Self::start_with(Mode::StartTls(acceptor(cert, key))).await
    }

    async fn start_with(mode: Mode) -> SmtpSink {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the SMTP sink");
        let addr = listener.local_addr().expect("sink address");
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let st = st.clone();
                let mode = mode.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, st, mode).await;
                });
            }
        });
        SmtpSink { addr, state }
    }

    /// Messages read in full and then hung up on.
    pub fn hung_up_messages(&self) -> usize {
        self.state.lock().unwrap().hung_up_messages
    }

    /// Connections that completed a TLS handshake.
    pub fn tls_sessions(&self) -> usize {
        self.state.lock().unwrap().tls_sessions
    }

    /// The next RCPT is answered with this line (e.g. "550 5.1.1 no such user").
    pub fn reply_to_next_rcpt(&self, line: &str) {
        self.state
            .lock()
            .unwrap()
            .rcpt_replies
            .push_back(line.into());
    }

    /// The end of the next DATA is answered with this line (e.g. "451 4.7.1 try later").
    pub fn reply_to_next_data(&self, line: &str) {
        self.state
            .lock()
            .unwrap()
            .data_replies
            .push_back(line.into());
    }

    /// The next RCPT gets no answer: the connection is closed (nothing of the message sent).
    pub fn hang_up_at_next_rcpt(&self) {
        self.state.lock().unwrap().hang_up_at_rcpt = true;
    }

    /// The next message is read in full, then the connection is closed without an answer: the
    /// client cannot know whether it was accepted.
    pub fn hang_up_after_next_data(&self) {
        self.state.lock().unwrap().hang_up_after_data = true;
    }

    /// Waits this long before answering the end of DATA (keeps sends in flight).
    pub fn delay_data(&self, d: Duration) {
        self.state.lock().unwrap().data_delay = d;
    }

    pub fn messages(&self) -> Vec<Received> {
        self.state.lock().unwrap().messages.clone()
    }

    pub fn transcript(&self) -> Vec<u8> {
        self.state.lock().unwrap().transcript.clone()
    }

    pub fn rcpt_commands(&self) -> usize {
        self.state.lock().unwrap().rcpt_commands
    }

    /// The AUTH PLAIN credentials received (base64 as sent).
    pub fn auth(&self) -> Vec<String> {
        self.state.lock().unwrap().auth.clone()
    }
}

#[derive(Clone)]
enum Mode {
    Plain,
    Tls(tokio_rustls::TlsAcceptor),
    StartTls(tokio_rustls::TlsAcceptor),
}

fn acceptor(
    cert: rustls::pki_types::CertificateDer<'static>,
    key: Vec<u8>,
) -> tokio_rustls::TlsAcceptor {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.into()),
        )
        .expect("server TLS config");
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// How a session ended: closed, or the client asked for STARTTLS (the plain stream back).
enum End<S> {
    Closed,
    StartTls(S),
}

async fn serve(
    tcp: tokio::net::TcpStream,
    st: Arc<Mutex<State>>,
    mode: Mode,
) -> std::io::Result<()> {
    match mode {
        Mode::Plain => {
            session(tcp, st, true, false).await?;
        }
        Mode::Tls(acceptor) => {
            let tls = acceptor.accept(tcp).await?;
            st.lock().unwrap().tls_sessions += 1;
            session(tls, st, true, false).await?;
        }
        Mode::StartTls(acceptor) => {
            if let End::StartTls(tcp) = session(tcp, st.clone(), true, true).await? {
                let tls = acceptor.accept(tcp).await?;
                st.lock().unwrap().tls_sessions += 1;
                session(tls, st, false, false).await?;
            }
        }
    }
    Ok(())
}

/// One SMTP conversation. `offer_starttls`: advertise STARTTLS and refuse MAIL until it.
async fn session<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    st: Arc<Mutex<State>>,
    greet: bool,
    offer_starttls: bool,
) -> std::io::Result<End<S>> {
    let (r, mut w) = tokio::io::split(stream);
    let mut r = BufReader::new(r);
    let say = |st: &Arc<Mutex<State>>, s: &str| {
        st.lock()
            .unwrap()
            .transcript
            .extend_from_slice(format!("S: {s}").as_bytes());
        s.to_string()
    };
    if greet {
        let hello = say(&st, "220 sink.test ESMTP ready\r\n");
        w.write_all(hello.as_bytes()).await?;
        w.flush().await?;
    }
    let mut from = String::new();
    let mut rcpts = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await? == 0 {
            return Ok(End::Closed);
        }
        st.lock()
            .unwrap()
            .transcript
            .extend_from_slice(format!("C: {line}").as_bytes());
        let upper = line.to_ascii_uppercase();
        let reply = if upper.starts_with("EHLO") && offer_starttls {
            "250-sink.test\r\n250-8BITMIME\r\n250-STARTTLS\r\n250 SMTPUTF8\r\n".to_string()
        } else if upper.starts_with("EHLO") {
            "250-sink.test\r\n250-8BITMIME\r\n250-AUTH PLAIN\r\n250 SMTPUTF8\r\n".to_string()
        } else if upper.starts_with("STARTTLS") && offer_starttls {
            let go = say(&st, "220 2.0.0 ready to start TLS\r\n");
            w.write_all(go.as_bytes()).await?;
            w.flush().await?;
            return Ok(End::StartTls(r.into_inner().unsplit(w)));
        } else if offer_starttls && (upper.starts_with("MAIL") || upper.starts_with("AUTH")) {
            "530 5.7.0 must issue a STARTTLS command first\r\n".to_string()
        } else if upper.starts_with("HELO") {
            "250 sink.test\r\n".to_string()
        } else if upper.starts_with("AUTH PLAIN") {
            let cred = line[10..].trim().to_string();
            st.lock().unwrap().auth.push(cred);
            "235 2.7.0 accepted\r\n".to_string()
        } else if upper.starts_with("MAIL FROM:") {
            from = line[10..].trim().to_string();
            rcpts.clear();
            "250 2.1.0 ok\r\n".to_string()
        } else if upper.starts_with("RCPT TO:") {
            let mut s = st.lock().unwrap();
            s.rcpt_commands += 1;
            if std::mem::take(&mut s.hang_up_at_rcpt) {
                return Ok(End::Closed);
            }
            match s.rcpt_replies.pop_front() {
                Some(reply) => format!("{reply}\r\n"),
                None => {
                    rcpts.push(line[8..].trim().to_string());
                    "250 2.1.5 ok\r\n".to_string()
                }
            }
        } else if upper.starts_with("DATA") {
            let go = say(&st, "354 end with <CRLF>.<CRLF>\r\n");
            w.write_all(go.as_bytes()).await?;
            w.flush().await?;
            let mut data = String::new();
            loop {
                let mut l = String::new();
                if r.read_line(&mut l).await? == 0 {
                    return Ok(End::Closed);
                }
                st.lock()
                    .unwrap()
                    .transcript
                    .extend_from_slice(format!("C: {l}").as_bytes());
                if l == ".\r\n" {
                    break;
                }
                data.push_str(l.strip_prefix('.').unwrap_or(&l));
            }
            let delay = st.lock().unwrap().data_delay;
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let mut s = st.lock().unwrap();
            if std::mem::take(&mut s.hang_up_after_data) {
                s.hung_up_messages += 1;
                return Ok(End::Closed);
            }
            match s.data_replies.pop_front() {
                Some(reply) => format!("{reply}\r\n"),
                None => {
                    s.messages.push(Received {
                        mail_from: from.clone(),
                        rcpt_to: rcpts.clone(),
                        data,
                    });
                    "250 2.0.0 queued\r\n".to_string()
                }
            }
        } else if upper.starts_with("RSET") || upper.starts_with("NOOP") {
            "250 2.0.0 ok\r\n".to_string()
        } else if upper.starts_with("QUIT") {
            let bye = say(&st, "221 2.0.0 bye\r\n");
            w.write_all(bye.as_bytes()).await?;
            w.flush().await?;
            return Ok(End::Closed);
        } else {
            "502 5.5.2 command not recognized\r\n".to_string()
        };
        let reply = say(&st, &reply);
        w.write_all(reply.as_bytes()).await?;
        w.flush().await?;
    }
}

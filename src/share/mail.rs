//! Mail: sends verification codes to a link's recipient, by SMTP (lettre: STARTTLS, TLS, or plain
//! for a local relay, with optional credentials) or to the log (development).
//!
//! A failed delivery is returned to the caller, which tells the recipient and logs it.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailConfig {
    /// `smtp` or `log`.
    #[serde(default = "default_delivery")]
    pub delivery: String,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
    /// `starttls` (default), `tls`, or `none` (a local relay).
    #[serde(default)]
    pub security: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// Sender address, e.g. `"Shares <shares@example.org>"`.
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
    /// Attempts at each share mail before its delivery is `failed` (1–100; default 8).
    #[serde(default)]
    pub share_attempts: Option<u32>,
    /// Wait after a share mail's first failed attempt, doubled after each further one (with
    /// jitter), at most an hour (1–3600; default 60).
    #[serde(default)]
    pub share_retry_seconds: Option<u64>,
}

fn default_delivery() -> String {
    "log".to_string()
}

impl Default for MailConfig {
    fn default() -> Self {
        MailConfig {
            delivery: default_delivery(),
            host: None,
            port: None,
            security: None,
            username: None,
            password: None,
            from: None,
            timeout_seconds: None,
            share_attempts: None,
            share_retry_seconds: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("mail config `{key}`: {message}")]
    Config { key: &'static str, message: String },
    #[error("the message could not be built: {0}")]
    Build(String),
    #[error("the mail server did not accept the message: {0}")]
    Send(String),
}

pub enum Mailer {
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        from: Mailbox,
        retry: ShareRetry,
    },
    Log {
        from: Mailbox,
        retry: ShareRetry,
    },
}

/// How share mails are retried (see `crate::admin::shares`): `mail.share_attempts`,
/// `mail.share_retry_seconds`, and a bound on one attempt from `mail.timeout_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShareRetry {
    /// Attempts before a delivery is given up (`failed`).
    pub attempts: u32,
    /// Waits between attempts.
    pub backoff: crate::model::webhook::Backoff,
    /// Longest one attempt may take (connect, dialogue, answer): 3 × `timeout_seconds` + 5 s.
    pub attempt_timeout: Duration,
}

impl ShareRetry {
    /// How long a mail being sent is held from every other sender (instance): one attempt's
    /// bound plus time to write its outcome down. An attempt whose holder died is made again
    /// when this runs out.
    pub fn hold(&self) -> Duration {
        self.attempt_timeout + Duration::from_secs(10)
    }

    fn from_config(c: &MailConfig) -> Result<ShareRetry, MailError> {
        let bad = |key, message: &str| MailError::Config {
            key,
            message: message.to_string(),
        };
        let attempts = c.share_attempts.unwrap_or(8);
        if !(1..=100).contains(&attempts) {
            return Err(bad("mail.share_attempts", "must be from 1 to 100"));
        }
        let base = c.share_retry_seconds.unwrap_or(60);
        if !(1..=3600).contains(&base) {
            return Err(bad("mail.share_retry_seconds", "must be from 1 to 3600"));
        }
        let timeout = c.timeout_seconds.unwrap_or(10).min(3600);
        Ok(ShareRetry {
            attempts,
            backoff: crate::model::webhook::Backoff {
                base: Duration::from_secs(base),
                max: Duration::from_secs(3600).max(Duration::from_secs(base)),
            },
            attempt_timeout: Duration::from_secs(3 * timeout + 5),
        })
    }
}

/// What a code mail says.
pub struct CodeMail<'a> {
    pub to: &'a str,
    pub document: &'a str,
    pub sender: Option<&'a str>,
    pub code: &'a str,
    /// When the code stops working, formatted with its time zone.
    pub valid_until: &'a str,
}

/// What a share mail says: who shares what with whom, until when, and the recipient's own link.
pub struct ShareMail<'a> {
    pub to: &'a str,
    pub to_name: Option<&'a str>,
    /// The sender's name (or address) as the mail shows it; `From` stays the relay's address.
    pub sender: Option<&'a str>,
    /// The sender's address, set as `Reply-To`.
    pub reply_to: Option<&'a str>,
    pub subject: &'a str,
    pub message: Option<&'a str>,
    /// Display name and size (when known) of each document.
    pub documents: &'a [(String, Option<u64>)],
    /// When the link stops working, formatted with its time zone; `None`: it does not expire.
    pub expires: Option<&'a str>,
    /// Whether the link also accepts uploads.
    pub upload: bool,
    pub url: &'a str,
}

impl Mailer {
    /// How share mails are retried.
    pub fn share_retry(&self) -> ShareRetry {
        match self {
            Mailer::Smtp { retry, .. } | Mailer::Log { retry, .. } => *retry,
        }
    }

    pub fn from_config(c: &MailConfig) -> Result<Mailer, MailError> {
        let bad = |key, message: &str| MailError::Config {
            key,
            message: message.to_string(),
        };
        let from: Mailbox = c
            .from
            .as_deref()
            .unwrap_or("linkgate <linkgate@localhost>")
            .parse()
            .map_err(|_| {
                bad(
                    "mail.from",
                    "is not a mail address like \"Shares <shares@example.org>\"",
                )
            })?;
        let retry = ShareRetry::from_config(c)?;
        match c.delivery.as_str() {
            "log" => Ok(Mailer::Log { from, retry }),
            "smtp" => {
                let host = c
                    .host
                    .as_deref()
                    .ok_or_else(|| bad("mail.host", "is required for smtp delivery"))?;
                let mut builder = match c.security.as_deref().unwrap_or("starttls") {
                    "starttls" => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
                        .map_err(|e| bad("mail.host", &e.to_string()))?,
                    "tls" => AsyncSmtpTransport::<Tokio1Executor>::relay(host)
                        .map_err(|e| bad("mail.host", &e.to_string()))?,
                    "none" => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
                    _ => {
                        return Err(bad(
                            "mail.security",
                            "must be one of \"starttls\", \"tls\", \"none\"",
                        ))
                    }
                };
                if let Some(port) = c.port {
                    builder = builder.port(port);
                }
                match (&c.username, &c.password) {
                    (Some(u), Some(p)) => {
                        builder = builder.credentials(Credentials::new(u.clone(), p.clone()))
                    }
                    (None, None) => {}
                    _ => return Err(bad("mail.username", "username and password go together")),
                }
                builder =
                    builder.timeout(Some(Duration::from_secs(c.timeout_seconds.unwrap_or(10))));
                Ok(Mailer::Smtp {
                    transport: builder.build(),
                    from,
                    retry,
                })
            }
            _ => Err(bad("mail.delivery", "must be \"smtp\" or \"log\"")),
        }
    }

    /// Sends a verification code.
    pub async fn send_code(&self, mail: &CodeMail<'_>) -> Result<(), MailError> {
        let to: Mailbox = mail
            .to
            .parse()
            .map_err(|_| MailError::Build(format!("`{}` is not a mail address", mail.to)))?;
        let sender = mail
            .sender
            .map(|s| format!(" shared by {s}"))
            .unwrap_or_default();
        let text = format!(
            "Your code to open \"{doc}\"{sender} is:\n\n    {code}\n\nIt is valid until {until}, in any browser you open the link in.\n\
             If you did not ask for it, you can ignore this message.\n",
            doc = mail.document,
            code = mail.code,
            until = mail.valid_until
        );
        let html = format!(
            "<!doctype html><html><body><p>Your code to open <strong>{doc}</strong>{sender} is:</p>\
             <p style=\"font-size:1.6em;letter-spacing:.2em\"><strong>{code}</strong></p>\
             <p>It is valid until {until}, in any browser you open the link in.<br>If you did not ask for it, you can ignore this message.</p></body></html>",
            doc = crate::model::markup::escape(mail.document),
            sender = crate::model::markup::escape(&sender),
            code = mail.code,
            until = crate::model::markup::escape(mail.valid_until)
        );
        let from = match self {
            Mailer::Smtp { from, .. } | Mailer::Log { from, .. } => from.clone(),
        };
        let message = Message::builder()
            .from(from)
            .to(to)
            .subject(format!(
                "Your code for {}",
                mail.document.chars().take(80).collect::<String>()
            ))
            .multipart(alternative(text, html))
            .map_err(|e| MailError::Build(e.to_string()))?;
        match self.relay(message).await {
            Some(sent) => sent,
            None => {
                // Development delivery: the code goes to the log, which is the point of it.
                tracing::warn!(
                    to = mail.to,
                    code = mail.code,
                    document = mail.document,
                    "mail.delivery = \"log\": code not mailed"
                );
                Ok(())
            }
        }
    }
}

impl Mailer {
    /// Sends a share's mail to one recipient: plain text and HTML (every operator-given text
    /// escaped), naming the sender, the message, the documents, the expiry and the recipient's
    /// own link. Header values (subject, names) were checked for line breaks when the share was
    /// created; lettre encodes non-ASCII ones (RFC 2047).
    pub async fn send_share(&self, mail: &ShareMail<'_>) -> Result<(), MailError> {
        use crate::model::markup::escape;
        let to = Mailbox::new(
            mail.to_name.map(str::to_string),
            mail.to
                .parse()
                .map_err(|_| MailError::Build(format!("`{}` is not a mail address", mail.to)))?,
        );
        let from = match self {
            Mailer::Smtp { from, .. } | Mailer::Log { from, .. } => from.clone(),
        };
        // "Jane Sender (via Shares)" <shares@example.org>: the relay's address, the sender's name.
        let from = match mail.sender {
            Some(sender) => {
                let via = from.name.clone().unwrap_or_else(|| "linkgate".to_string());
                Mailbox::new(Some(format!("{sender} (via {via})")), from.email.clone())
            }
            None => from,
        };
        let who = mail.sender.unwrap_or("Someone");
        let greeting = mail
            .to_name
            .map(|n| format!("Hello {n},"))
            .unwrap_or_else(|| "Hello,".to_string());
        let size = |s: &Option<u64>| {
            s.map(|b| format!(" ({})", crate::share::pages::human_size(b)))
                .unwrap_or_default()
        };
        let what = if mail.documents.is_empty() {
            "a folder to upload files to".to_string()
        } else if mail.documents.len() == 1 {
            "a document".to_string()
        } else {
            format!("{} documents", mail.documents.len())
        };
        let expiry = match mail.expires {
            Some(e) => format!("The link works until {e}."),
            None => "The link does not expire.".to_string(),
        };
        let upload = if mail.upload && !mail.documents.is_empty() {
            "\nYou can also upload files through it."
        } else {
            ""
        };
        let mut text = format!("{greeting}\n\n{who} shared {what} with you.\n\n");
        if let Some(m) = mail.message.filter(|m| !m.trim().is_empty()) {
            text.push_str(m.trim_end());
            text.push_str("\n\n");
        }
        for (name, bytes) in mail.documents {
            text.push_str(&format!("  - {name}{}\n", size(bytes)));
        }
        if !mail.documents.is_empty() {
            text.push('\n');
        }
        text.push_str(&format!(
            "Open it here (this link is for you alone; other browsers will be asked for a code \
             mailed to {to}):\n\n    {url}\n\n{expiry}{upload}\n",
            to = mail.to,
            url = mail.url,
        ));
        let mut html = format!(
            "<!doctype html><html><body><p>{greeting}</p><p><strong>{who}</strong> shared {what} with you.</p>",
            greeting = escape(&greeting),
            who = escape(who),
        );
        if let Some(m) = mail.message.filter(|m| !m.trim().is_empty()) {
            html.push_str(&format!(
                "<blockquote style=\"white-space:pre-wrap\">{}</blockquote>",
                escape(m.trim_end())
            ));
        }
        if !mail.documents.is_empty() {
            html.push_str("<ul>");
            for (name, bytes) in mail.documents {
                html.push_str(&format!(
                    "<li>{}{}</li>",
                    escape(name),
                    escape(&size(bytes))
                ));
            }
            html.push_str("</ul>");
        }
        html.push_str(&format!(
            "<p><a href=\"{url}\">Open {what}</a></p><p>This link is for you alone; other browsers \
             will be asked for a code mailed to {to}.<br>{expiry}{upload}</p></body></html>",
            url = escape(mail.url),
            what = escape(&what),
            to = escape(mail.to),
            expiry = escape(&expiry),
            upload = escape(upload.trim_start()),
        ));
        let mut builder = Message::builder().from(from).to(to).subject(mail.subject);
        if let Some(r) = mail.reply_to {
            let reply: Mailbox = r
                .parse()
                .map_err(|_| MailError::Build(format!("`{r}` is not a mail address")))?;
            builder = builder.reply_to(reply);
        }
        let message = builder
            .multipart(alternative(text, html))
            .map_err(|e| MailError::Build(e.to_string()))?;
        match self.relay(message).await {
            Some(sent) => sent,
            None => {
                // Development delivery: the link is a bearer secret, so only where it went is
                // logged, never the URL.
                tracing::warn!(
                    to = mail.to,
                    "mail.delivery = \"log\": share mail not sent (its link is not logged)"
                );
                Ok(())
            }
        }
    }
}

/// What the first-download notice says (`notify_sender` on a link).
pub struct FirstDownloadMail<'a> {
    pub to: &'a str,
    pub link: &'a str,
    /// The documents' display names.
    pub documents: &'a [String],
    /// Who downloaded: the link's recipient address, if it has one.
    pub recipient: Option<&'a str>,
    /// When, RFC 3339.
    pub at: &'a str,
}

impl Mailer {
    /// Tells the sender that a link was downloaded for the first time (plain text: every value in
    /// it is the operator's or the store's, and nothing is interpreted as markup).
    pub async fn send_first_download(&self, mail: &FirstDownloadMail<'_>) -> Result<(), MailError> {
        let to: Mailbox = mail
            .to
            .parse()
            .map_err(|_| MailError::Build(format!("`{}` is not a mail address", mail.to)))?;
        let clean =
            |s: &str| -> String { s.chars().filter(|c| !c.is_control()).take(200).collect() };
        let names: Vec<String> = mail.documents.iter().map(|d| clean(d)).collect();
        let first = names
            .first()
            .cloned()
            .unwrap_or_else(|| "the shared files".to_string());
        let who = mail
            .recipient
            .map(|r| format!(" by {}", clean(r)))
            .unwrap_or_default();
        let text = format!(
            "Your shared link was downloaded for the first time{who}, at {at}.\n\nDocuments:\n{list}\n\nLink id: {link}\n\
             You get this message once per link.\n",
            at = clean(mail.at),
            list = names.iter().map(|n| format!("  - {n}")).collect::<Vec<_>>().join("\n"),
            link = mail.link,
        );
        let from = match self {
            Mailer::Smtp { from, .. } | Mailer::Log { from, .. } => from.clone(),
        };
        let message = Message::builder()
            .from(from)
            .to(to)
            .subject(format!(
                "First download: {}",
                first.chars().take(80).collect::<String>()
            ))
            .singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .body(text),
            )
            .map_err(|e| MailError::Build(e.to_string()))?;
        match self.relay(message).await {
            Some(sent) => sent,
            None => {
                tracing::info!(
                    link = mail.link,
                    "mail.delivery = \"log\": first-download notice not mailed"
                );
                Ok(())
            }
        }
    }
}

impl Mailer {
    /// Hands a message to the SMTP relay; `None` for log delivery (development), where the
    /// caller logs what it may of the mail instead.
    async fn relay(&self, message: Message) -> Option<Result<(), MailError>> {
        match self {
            Mailer::Smtp { transport, .. } => Some(
                transport
                    .send(message)
                    .await
                    .map(|_| ())
                    .map_err(|e| MailError::Send(e.to_string())),
            ),
            Mailer::Log { .. } => None,
        }
    }
}

/// A `multipart/alternative` body: the plain text first, then the HTML.
fn alternative(text: String, html: String) -> MultiPart {
    MultiPart::alternative()
        .singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_PLAIN)
                .body(text),
        )
        .singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_HTML)
                .body(html),
        )
}

//! Invitation emails: the two templates and the sinks that deliver them (SMTP relay, a
//! directory of `.eml` files, or the log).

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};

use portal_runtime::vocab::{Email, StepId};

/// What an invitation email says.
#[derive(Debug, Clone)]
pub struct Letter {
    pub given_name: String,
    pub trust_name: String,
    pub inviter_name: String,
    pub product_names: Vec<String>,
    pub content: LetterContent,
}

#[derive(Debug, Clone)]
pub enum LetterContent {
    /// A new user: the sign-up link and when it stops working.
    SignUp {
        /// The accept page with the link's token: it stays out of `Debug` output.
        link: SecretString,
        /// The link's token on its own, for a reader whose mail client breaks the link.
        code: SecretString,
        expire_time: DateTime<Utc>,
    },
    /// An existing user: new access at next sign-in.
    NewProductNotice,
}

/// A rendered email.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn join_names(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

impl Letter {
    pub fn render(&self) -> Rendered {
        let trust = if self.trust_name.is_empty() {
            "your trust"
        } else {
            self.trust_name.as_str()
        };
        let inviter = if self.inviter_name.is_empty() {
            "An administrator".to_string()
        } else {
            self.inviter_name.clone()
        };
        let products = join_names(&self.product_names);
        let greeting = format!("Hello {},", self.given_name);
        let list_text: String = self
            .product_names
            .iter()
            .map(|p| format!("  - {p}\n"))
            .collect();
        let list_html: String = self
            .product_names
            .iter()
            .map(|p| format!("<li>{}</li>", escape(p)))
            .collect();
        match &self.content {
            LetterContent::SignUp {
                link,
                code,
                expire_time,
            } => {
                let until = expire_time.format("%-d %B %Y at %H:%M UTC").to_string();
                let (link, code) = (link.expose_secret(), code.expose_secret());
                Rendered {
                    subject: format!("{inviter} invited you to {products} at {trust}"),
                    text: format!(
                        "{greeting}\n\n{inviter} of {trust} has invited you to use:\n{list_text}\n\
                         Accept the invitation and create your account here:\n{link}\n\n\
                         If the link does not open, enter this invitation code instead:\n\
                         Invitation code: {code}\n\n\
                         This link can be used once and works until {until}. If it expires, \
                         ask an administrator of {trust} to invite you again.\n"
                    ),
                    html: format!(
                        "<p>{}</p><p>{} of {} has invited you to use:</p><ul>{list_html}</ul>\
                         <p><a href=\"{}\">Accept the invitation and create your account</a></p>\
                         <p>This link can be used once and works until {until}. If it expires, \
                         ask an administrator of {} to invite you again.</p>",
                        escape(&greeting),
                        escape(&inviter),
                        escape(trust),
                        escape(link),
                        escape(trust),
                    ),
                }
            }
            LetterContent::NewProductNotice => Rendered {
                subject: format!("New access at {trust}: {products}"),
                text: format!(
                    "{greeting}\n\n{inviter} of {trust} has given you access to:\n{list_text}\n\
                     It will be available the next time you sign in to Portal with your \
                     existing account.\n"
                ),
                html: format!(
                    "<p>{}</p><p>{} of {} has given you access to:</p><ul>{list_html}</ul>\
                     <p>It will be available the next time you sign in to Portal with your \
                     existing account.</p>",
                    escape(&greeting),
                    escape(&inviter),
                    escape(trust),
                ),
            },
        }
    }
}

/// Where emails go.
#[derive(Clone)]
pub enum Sink {
    /// An SMTP relay.
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// One `.eml` file per message in a directory (the quick start, tests).
    Dir(PathBuf),
    /// Only a log line (no address, no link).
    Log,
}

impl Sink {
    /// An SMTP relay when one is given (see [`smtp_transport`]), else a mail directory when
    /// one is given, else the log. `smtp_ca` is a PEM file of extra roots trusted for the
    /// relay's certificate (a private CA).
    pub fn choose(
        smtp_url: Option<&str>,
        smtp_ca: Option<&std::path::Path>,
        dir: Option<&std::path::Path>,
    ) -> anyhow::Result<Self> {
        Ok(match (smtp_url, dir) {
            (Some(url), _) => {
                let ca = smtp_ca
                    .map(|path| {
                        std::fs::read(path)
                            .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))
                    })
                    .transpose()?;
                Sink::Smtp(smtp_transport(url, ca.as_deref())?)
            }
            (None, Some(dir)) => Sink::Dir(dir.to_path_buf()),
            (None, None) => Sink::Log,
        })
    }
}

/// Sends invitation emails.
#[derive(Clone)]
pub struct Mailer {
    from: Mailbox,
    sink: Sink,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sink = match &self.sink {
            Sink::Smtp(_) => "smtp",
            Sink::Dir(_) => "dir",
            Sink::Log => "log",
        };
        f.debug_struct("Mailer").field("sink", &sink).finish()
    }
}

/// How the connection to the relay is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Security {
    /// `smtps://`: TLS from the first byte (port 465).
    Implicit,
    /// `smtp://`: STARTTLS, required: a relay that does not offer it is not used (port 587).
    StartTls,
    /// `smtp://…?tls=none`: plaintext, for a relay on the same host or in tests only.
    None,
}

/// Parses an SMTP URL into a transport:
/// - `smtps://[user:password@]host[:port]`: implicit TLS, port 465 by default;
/// - `smtp://[user:password@]host[:port]`: STARTTLS required, port 587 by default;
/// - `smtp://host[:port]?tls=none`: plaintext, port 25 by default, and no credentials.
///
/// The relay's certificate must chain to a public root or to one of `ca_pem`'s, and name
/// the host.
pub fn smtp_transport(
    url: &str,
    ca_pem: Option<&[u8]>,
) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
    const FORM: &str = "the SMTP URL must look like smtps://host[:port] or smtp://host[:port]";
    let (scheme, rest) = url.split_once("://").ok_or_else(|| anyhow::anyhow!(FORM))?;
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let security = match (scheme, query) {
        ("smtps", "") => Security::Implicit,
        ("smtp", "") | ("smtp", "tls=required") => Security::StartTls,
        ("smtp", "tls=none") => Security::None,
        ("smtp" | "smtps", _) => {
            anyhow::bail!("the SMTP URL takes no query but `?tls=none` (plaintext, smtp:// only)")
        }
        _ => anyhow::bail!(FORM),
    };
    let rest = rest.trim_end_matches('/');
    let (credentials, hostport) = match rest.rsplit_once('@') {
        Some((userinfo, hostport)) => {
            let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            (
                Some(Credentials::new(
                    percent_decode(user)?,
                    percent_decode(password)?,
                )),
                hostport,
            )
        }
        None => (None, rest),
    };
    let default_port = match security {
        Security::Implicit => 465,
        Security::StartTls => 587,
        Security::None => 25,
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || hostport.starts_with('[') => (
            host,
            port.parse::<u16>()
                .map_err(|_| anyhow::anyhow!("the SMTP URL has an invalid port"))?,
        ),
        _ => (hostport, default_port),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    anyhow::ensure!(!host.is_empty(), "the SMTP URL has no host");
    anyhow::ensure!(
        security != Security::None || credentials.is_none(),
        "the SMTP URL sends credentials without TLS: use smtps:// or smtp:// (STARTTLS)"
    );
    let tls = || -> anyhow::Result<TlsParameters> {
        let mut builder = TlsParameters::builder(host.to_string());
        if let Some(pem) = ca_pem {
            for block in pem_certificates(pem) {
                builder = builder.add_root_certificate(
                    Certificate::from_pem(block.as_bytes())
                        .map_err(|e| anyhow::anyhow!("the SMTP CA file: {e}"))?,
                );
            }
        }
        builder
            .build_rustls()
            .map_err(|e| anyhow::anyhow!("TLS settings for the SMTP relay: {e}"))
    };
    let tls = match security {
        Security::Implicit => Tls::Wrapper(tls()?),
        Security::StartTls => Tls::Required(tls()?),
        Security::None => Tls::None,
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(port)
        .tls(tls)
        .timeout(Some(Duration::from_secs(15)));
    if let Some(credentials) = credentials {
        builder = builder.credentials(credentials);
    }
    Ok(builder.build())
}

/// Each certificate of a PEM bundle, as its own PEM block.
fn pem_certificates(pem: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(pem);
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if line.starts_with("-----BEGIN CERTIFICATE-----") {
            current = Some(String::new());
        }
        if let Some(block) = current.as_mut() {
            block.push_str(line);
            block.push('\n');
        }
        if line.starts_with("-----END CERTIFICATE-----")
            && let Some(block) = current.take()
        {
            blocks.push(block);
        }
    }
    blocks
}

/// Decodes `%XX` escapes in a URL's user name or password.
fn percent_decode(text: &str) -> anyhow::Result<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| anyhow::anyhow!("the SMTP URL has a bad %-escape"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| anyhow::anyhow!("the SMTP URL's credentials are not UTF-8"))
}

/// Why an email did not go out.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The relay refused it for good (a 5xx reply: no such mailbox, policy, TLS required):
    /// sending again cannot help.
    #[error("the SMTP relay refused the email ({code})")]
    Permanent { code: String, reply: String },
    /// The relay deferred it (a 4xx reply) or could not be reached: try again later.
    #[error("the SMTP relay deferred the email ({code})")]
    Transient { code: String, reply: String },
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl SendError {
    /// The relay's own reply (it may name the recipient: kept with the email, not logged).
    pub fn reply(&self) -> String {
        match self {
            SendError::Permanent { reply, .. } | SendError::Transient { reply, .. } => {
                reply.clone()
            }
            SendError::Other(error) => format!("{error:#}"),
        }
    }

    pub fn is_permanent(&self) -> bool {
        matches!(self, SendError::Permanent { .. })
    }
}

impl From<lettre::transport::smtp::Error> for SendError {
    fn from(error: lettre::transport::smtp::Error) -> Self {
        let code = error.status().map(|c| c.to_string());
        let reply = error.to_string();
        match code {
            Some(code) if error.is_permanent() => SendError::Permanent { code, reply },
            Some(code) => SendError::Transient { code, reply },
            // No reply at all: a connection, TLS or timeout failure, worth retrying.
            None => SendError::Transient {
                code: if error.is_tls() { "tls" } else { "connection" }.into(),
                reply,
            },
        }
    }
}

impl Mailer {
    pub fn new(from: &str, sink: Sink) -> anyhow::Result<Self> {
        let from: Mailbox = from
            .parse()
            .map_err(|e| anyhow::anyhow!("invalid sender address `{from}`: {e}"))?;
        Ok(Self { from, sink })
    }

    /// Sends one email; `key` names the outbox row (file name in a mail directory).
    pub async fn send(&self, to: &Email, letter: &Letter, key: StepId) -> Result<(), SendError> {
        let rendered = letter.render();
        let to: Mailbox = to
            .as_str()
            .parse()
            .map_err(|e| anyhow::anyhow!("invalid recipient address: {e}"))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(rendered.subject)
            .multipart(MultiPart::alternative_plain_html(
                rendered.text,
                rendered.html,
            ))
            .map_err(anyhow::Error::from)?;
        match &self.sink {
            Sink::Smtp(transport) => {
                transport.send(message).await?;
            }
            Sink::Dir(dir) => {
                let io = |e: std::io::Error| SendError::Other(e.into());
                tokio::fs::create_dir_all(dir).await.map_err(io)?;
                // Time-ordered names so the newest message sorts last; written then renamed so a
                // reader never sees half a file.
                let name = format!(
                    "{:020}-{key}-{}.eml",
                    Utc::now().timestamp_micros(),
                    &uuid::Uuid::new_v4().simple().to_string()[..8]
                );
                let tmp = dir.join(format!(".{name}.tmp"));
                tokio::fs::write(&tmp, message.formatted())
                    .await
                    .map_err(io)?;
                tokio::fs::rename(&tmp, dir.join(name)).await.map_err(io)?;
            }
            Sink::Log => {}
        }
        tracing::info!(
            outbox_step = %key,
            kind = match letter.content {
                LetterContent::SignUp { .. } => "sign-up link",
                LetterContent::NewProductNotice => "new product notice",
            },
            "invitation email sent"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sign_up_email_names_the_trust_products_inviter_link_and_expiry() {
        let letter = Letter {
            given_name: "Chloe".into(),
            trust_name: "Northfield <Trust>".into(),
            inviter_name: "Ada Admin".into(),
            product_names: vec!["Portal".into(), "Websites CMS".into()],
            content: LetterContent::SignUp {
                link: "https://portal.example/accept?token=abc".into(),
                code: "abc".into(),
                expire_time: DateTime::from_timestamp(1_767_225_600, 0).unwrap(),
            },
        };
        let r = letter.render();
        assert!(r.subject.contains("Portal and Websites CMS"));
        assert!(r.text.contains("https://portal.example/accept?token=abc"));
        assert!(r.text.contains("1 January 2026"));
        assert!(r.text.contains("Ada Admin"));
        assert!(r.html.contains("Northfield &lt;Trust&gt;"));
    }

    #[test]
    fn a_new_product_notice_carries_no_link() {
        let letter = Letter {
            given_name: "Ben".into(),
            trust_name: "Northfield".into(),
            inviter_name: String::new(),
            product_names: vec!["Portal".into()],
            content: LetterContent::NewProductNotice,
        };
        let r = letter.render();
        assert!(!r.text.contains("token"));
        assert!(r.text.contains("next time you sign in"));
    }

    #[tokio::test]
    async fn smtp_urls_parse_host_port_credentials_and_how_the_relay_is_reached() {
        for url in [
            "smtps://relay.example:465",
            "smtps://user:p%40ss@relay.example",
            "smtp://user:pw@relay.example:587",
            "smtp://relay.example?tls=required",
            "smtp://127.0.0.1:2525?tls=none",
        ] {
            assert!(smtp_transport(url, None).is_ok(), "{url}");
        }
        for url in [
            "http://relay",
            "smtp://relay:notaport",
            "smtp://user:pw@relay?tls=none",
            "smtps://relay?tls=none",
            "smtp://relay?tls=maybe",
            "smtp://",
        ] {
            assert!(smtp_transport(url, None).is_err(), "{url}");
        }
        assert_eq!(percent_decode("p%40ss%3A").unwrap(), "p@ss:");
    }

    #[test]
    fn every_certificate_of_a_bundle_is_read() {
        let pem = "junk\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n\
                   -----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----\n";
        let blocks = pem_certificates(pem.as_bytes());
        assert_eq!(blocks.len(), 2);
        assert!(blocks[1].contains("BBBB"));
    }
}

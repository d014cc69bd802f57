//! Invitation emails: the two templates and the sinks that deliver them (SMTP relay, a
//! directory of `.eml` files, or the log).

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
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
    /// An SMTP relay when one is given (`smtp://[user:password@]host[:port]`), else a mail
    /// directory when one is given, else the log.
    pub fn choose(smtp_url: Option<&str>, dir: Option<&std::path::Path>) -> anyhow::Result<Self> {
        Ok(match (smtp_url, dir) {
            (Some(url), _) => Sink::Smtp(smtp_transport(url)?),
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

/// Parses `smtp://[user:password@]host[:port]` into a transport (plain SMTP to a relay).
pub fn smtp_transport(url: &str) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
    let rest = url
        .strip_prefix("smtp://")
        .ok_or_else(|| anyhow::anyhow!("the SMTP URL must look like smtp://host:port"))?;
    let rest = rest.trim_end_matches('/');
    let (credentials, hostport) = match rest.rsplit_once('@') {
        Some((userinfo, hostport)) => {
            let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            (
                Some(Credentials::new(user.to_string(), password.to_string())),
                hostport,
            )
        }
        None => (None, rest),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((host, port)) => (
            host,
            port.parse::<u16>()
                .map_err(|_| anyhow::anyhow!("the SMTP URL has an invalid port"))?,
        ),
        None => (hostport, 25),
    };
    anyhow::ensure!(!host.is_empty(), "the SMTP URL has no host");
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(port)
        .timeout(Some(Duration::from_secs(15)));
    if let Some(credentials) = credentials {
        builder = builder.credentials(credentials);
    }
    Ok(builder.build())
}

impl Mailer {
    pub fn new(from: &str, sink: Sink) -> anyhow::Result<Self> {
        let from: Mailbox = from
            .parse()
            .map_err(|e| anyhow::anyhow!("invalid sender address `{from}`: {e}"))?;
        Ok(Self { from, sink })
    }

    /// Sends one email; `key` names the outbox row (file name in a mail directory).
    pub async fn send(&self, to: &Email, letter: &Letter, key: StepId) -> anyhow::Result<()> {
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
            ))?;
        match &self.sink {
            Sink::Smtp(transport) => {
                // The relay's reply may echo the address: report only its kind and code.
                transport.send(message).await.map_err(|e| {
                    let kind = if e.is_permanent() {
                        "permanent"
                    } else if e.is_transient() {
                        "transient"
                    } else {
                        "connection"
                    };
                    let code = e.status().map(|c| c.to_string()).unwrap_or_default();
                    anyhow::anyhow!("SMTP delivery failed ({kind} {code})")
                })?;
            }
            Sink::Dir(dir) => {
                tokio::fs::create_dir_all(dir).await?;
                // Time-ordered names so the newest message sorts last; written then renamed so a
                // reader never sees half a file.
                let name = format!(
                    "{:020}-{key}-{}.eml",
                    Utc::now().timestamp_micros(),
                    &uuid::Uuid::new_v4().simple().to_string()[..8]
                );
                let tmp = dir.join(format!(".{name}.tmp"));
                tokio::fs::write(&tmp, message.formatted()).await?;
                tokio::fs::rename(&tmp, dir.join(name)).await?;
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
    async fn smtp_urls_parse_host_port_and_credentials() {
        assert!(smtp_transport("smtp://127.0.0.1:2525").is_ok());
        assert!(smtp_transport("smtp://user:pw@relay.example:587").is_ok());
        assert!(smtp_transport("http://relay").is_err());
        assert!(smtp_transport("smtp://relay:notaport").is_err());
    }
}

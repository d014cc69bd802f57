"""An SMTP relay for the suite's tests, built on aiosmtpd.

    python3 smtp_relay.py PORT (starttls|smtps) CERT KEY MAILDIR USER PASSWORD [--refuse ADDR] [--defer ADDR]

`starttls` listens in plaintext and requires STARTTLS before anything else (530 otherwise);
`smtps` speaks TLS from the first byte. Either way the client must authenticate as
USER/PASSWORD over TLS. Mail for --refuse is refused for good (550), mail for --defer is
deferred (451); everything else is delivered into the maildir. Runs until killed.
"""

import argparse
import ssl
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult, LoginPassword


class Relay(Mailbox):
    def __init__(self, maildir, refuse, defer):
        super().__init__(maildir)
        self.refuse = set(refuse)
        self.defer = set(defer)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return f"550 5.1.1 <{address}>: mailbox unavailable"
        if address in self.defer:
            return "451 4.3.0 mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"


def main():
    parser = argparse.ArgumentParser()
    for name in ("port", "mode", "cert", "key", "maildir", "user", "password"):
        parser.add_argument(name)
    parser.add_argument("--refuse", action="append", default=[])
    parser.add_argument("--defer", action="append", default=[])
    args = parser.parse_args()

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args.cert, args.key)

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == args.user
            and auth_data.password.decode() == args.password
        )
        return AuthResult(success=ok)

    common = dict(
        hostname="127.0.0.1",
        port=int(args.port),
        authenticator=authenticate,
        auth_required=True,
        auth_require_tls=True,
    )
    handler = Relay(args.maildir, args.refuse, args.defer)
    if args.mode == "starttls":
        controller = Controller(handler, tls_context=context, require_starttls=True, **common)
    else:
        # aiosmtpd does not count implicit TLS as TLS for AUTH: the whole session is TLS.
        common["auth_require_tls"] = False
        controller = Controller(handler, ssl_context=context, **common)
    controller.start()
    threading.Event().wait()


if __name__ == "__main__":
    main()

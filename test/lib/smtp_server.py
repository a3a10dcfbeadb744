#!/usr/bin/python3 -W ignore
"""A real SMTP server for tests (Debian's python3-aiosmtpd), on a free loopback port.

Prints "PORT <n>" on stdout once it accepts connections, then serves until killed. Each
message it accepts is written to DIR/<n>.eml (atomically: written under another name, then
renamed), headed by X-Envelope-From, X-Envelope-To and, when the client logged in,
X-Auth-User lines, then the message as received.

Options:
  --dir DIR             where messages go (required)
  --auth USER:PASS      offer AUTH (PLAIN, LOGIN) and require it before MAIL
  --cert PEM --key PEM  offer STARTTLS with this certificate (required before AUTH/MAIL)
  --implicit-tls        TLS from the first byte (smtps) with --cert/--key
  --rcpt-reply CODE     answer every RCPT TO with CODE (e.g. 450, 550) instead of 250
"""
import argparse
import asyncio
import logging
import os
import socket
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Store:
    def __init__(self, directory, rcpt_reply):
        self.directory = directory
        self.rcpt_reply = rcpt_reply
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_reply:
            return f"{self.rcpt_reply} recipient refused by the test server"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        head = f"X-Envelope-From: {envelope.mail_from}\r\n"
        head += f"X-Envelope-To: {','.join(envelope.rcpt_tos)}\r\n"
        if session.authenticated:
            head += f"X-Auth-User: {session.auth_data.login.decode()}\r\n"
        tmp = os.path.join(self.directory, f".{self.count}.tmp")
        with open(tmp, "wb") as f:
            f.write(head.encode() + envelope.original_content)
        os.rename(tmp, os.path.join(self.directory, f"{self.count}.eml"))
        return "250 Message accepted"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--auth")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--implicit-tls", action="store_true")
    ap.add_argument("--rcpt-reply")
    a = ap.parse_args()
    # aiosmtpd warns about AUTH without TLS on every connection: that is what tests ask for.
    logging.getLogger("mail.log").setLevel(logging.ERROR)

    ctx = None
    if a.cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(a.cert, a.key)

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (a.auth is not None and isinstance(auth_data, LoginPassword) and
              f"{auth_data.login.decode()}:{auth_data.password.decode()}" == a.auth)
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    store = Store(a.dir, a.rcpt_reply)

    def factory():
        kw = dict(hostname="otelmon-test-smtp", decode_data=False)
        if a.auth:
            kw.update(authenticator=authenticator, auth_required=True,
                      auth_require_tls=ctx is not None and not a.implicit_tls)
        if ctx is not None and not a.implicit_tls:
            kw.update(tls_context=ctx, require_starttls=True)
        return SMTP(store, **kw)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(
        loop.create_server(factory, sock=sock, ssl=ctx if a.implicit_tls else None))
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    try:
        loop.run_forever()
    finally:
        server.close()


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""A real SMTP server for the email sink's tests (Debian: python3-aiosmtpd).

STARTTLS is required (or, with --implicit-tls, TLS from the first byte; with --no-starttls, TLS
is not offered at all); AUTH is required when
--user is given, and a failed login is answered at once (handled=False) with 535. Each message is
stored byte-exact as received (after SMTP dot-unstuffing) as STORE/NNNN.eml, with its envelope in
STORE/NNNN.json. --reject ADDR answers 550 to that recipient, --tempfail ADDR 451. Prints
"READY" when listening.
"""

import argparse
import json
import os
import ssl
import sys
import threading
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Store:
    def __init__(self, folder, reject, tempfail):
        self.folder = folder
        self.reject = set(a.lower() for a in reject)
        self.tempfail = set(a.lower() for a in tempfail)
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.reject:
            return "550 5.7.1 <%s>: recipient rejected by test policy" % address
        if address.lower() in self.tempfail:
            return "451 4.7.1 <%s>: try again later" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            n = len([f for f in os.listdir(self.folder) if f.endswith(".eml")])
            base = os.path.join(self.folder, "%04d" % n)
            with open(base + ".tmp", "wb") as f:
                f.write(envelope.original_content)
            with open(base + ".json", "w") as f:
                json.dump(
                    {
                        "mail_from": envelope.mail_from,
                        "rcpt_tos": envelope.rcpt_tos,
                        "tls": session.ssl is not None
                        or server.transport.get_extra_info("ssl_object") is not None,
                        "authenticated": bool(session.authenticated),
                        "peer": list(session.peer),
                    },
                    f,
                )
            os.rename(base + ".tmp", base + ".eml")
        return "250 2.0.0 stored"


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode()
            and auth_data.password == password.encode()
        )
        if ok:
            return AuthResult(success=True)
        # handled=False: aiosmtpd answers 535 itself; anything else leaves the client waiting.
        return AuthResult(success=False, handled=False)

    return check


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--store", required=True)
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--reject", action="append", default=[])
    p.add_argument("--tempfail", action="append", default=[])
    p.add_argument("--implicit-tls", action="store_true")
    p.add_argument("--no-starttls", action="store_true", help="offer no TLS at all")
    p.add_argument("--data-size-limit", type=int, default=200 * 1024 * 1024)
    a = p.parse_args()

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(a.cert, a.key)
    kwargs = dict(
        hostname="127.0.0.1",
        port=a.port,
        decode_data=False,
        data_size_limit=a.data_size_limit,
        server_hostname="localhost",
    )
    if a.implicit_tls:
        kwargs["ssl_context"] = ctx
    elif a.no_starttls:
        pass
    else:
        kwargs["tls_context"] = ctx
        kwargs["require_starttls"] = True
    if a.user:
        kwargs["authenticator"] = authenticator(a.user, a.password or "")
        kwargs["auth_required"] = True
        kwargs["auth_require_tls"] = True
    controller = Controller(Store(a.store, a.reject, a.tempfail), **kwargs)
    controller.start()
    print("READY", flush=True)
    try:
        # Until the test kills us, or our parent goes away.
        while os.getppid() != 1:
            time.sleep(0.5)
    finally:
        controller.stop()


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""A local stand-in for the captcha providers' siteverify APIs, for the service's tests: the real
endpoints (challenges.cloudflare.com, api.hcaptcha.com, www.google.com) are outside this machine.
Python's standard library only.

It speaks the protocol the three providers document: a POST of
application/x-www-form-urlencoded `secret`, `response` (the widget's token) and optional
`remoteip`, answered with JSON `success`, `challenge_ts`, `hostname`, `error-codes`, and per
provider `action` and `cdata` (Turnstile), `credit` (hCaptcha), `score` and `action`
(reCAPTCHA v3). Tokens are single use, as the providers make them.

    verifier.py DIR [--cert CERT --key KEY]

Listens on a free port of 127.0.0.1 (HTTPS with --cert/--key) and prints `listening PORT` once
ready. Every POST is appended to DIR/requests.jsonl as {"path", "content_type", "form"}.

Paths:
  /turnstile/v0/siteverify, /hcaptcha/siteverify, /recaptcha/api/siteverify
      The provider's reply. The secret is SECRET below; a token is KIND~ANYTHING:
        pass~…         success, hostname HOST, action ACTION (Turnstile; reCAPTCHA with a
                       score of 0.9, as v3)
        v2~…           reCAPTCHA v2: success, hostname HOST, no score, no action
        otherhost~…    success, hostname evil.example
        otheraction~…  success, action login
        lowscore~…     reCAPTCHA v3: success with a score of 0.3
      Anything else is invalid-input-response; a token seen before is timeout-or-duplicate
      (hCaptcha: already-seen-response); another secret is invalid-input-secret. On the
      Turnstile path, Cloudflare's documented test secrets behave as documented: 1x…AA
      accepts only the dummy token XXXX.DUMMY.TOKEN.XXXX, 2x…AA always fails, 3x…AA answers
      timeout-or-duplicate.
  /fault/500      500 with a JSON body
  /fault/garbage  200 with an HTML page
  /fault/hang     answers after 30 s
  /fault/redirect 307 to the Turnstile path (a client must not follow it: it would re-send the
                  secret)
"""

import json
import os
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET = "sf-test-siteverify-secret"
HOST = "forms.example.test"
ACTION = "contact"
DUMMY_TOKEN = "XXXX.DUMMY.TOKEN.XXXX"
CF_PASS, CF_FAIL, CF_SPENT = (f"{n}x0000000000000000000000000000000AA" for n in (1, 2, 3))

DIR = sys.argv[1]
LOCK = threading.Lock()
SEEN = set()


def now_ts() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def failure(provider: str, codes: list) -> dict:
    return {"success": False, "error-codes": codes}


def reply(provider: str, form: dict) -> dict:
    secret = form.get("secret", "")
    token = form.get("response", "")
    if not secret:
        return failure(provider, ["missing-input-secret"])
    if provider == "turnstile" and secret in (CF_PASS, CF_FAIL, CF_SPENT):
        if secret == CF_FAIL or token != DUMMY_TOKEN:
            return failure(provider, ["invalid-input-response"])
        if secret == CF_SPENT:
            return failure(provider, ["timeout-or-duplicate"])
        # The success reply Cloudflare's testing page documents for the dummy keys.
        return {"success": True, "challenge_ts": now_ts(), "hostname": "localhost",
                "error-codes": [], "action": "test", "cdata": "test-data"}
    if secret != SECRET:
        return failure(provider, ["invalid-input-secret"])
    if not token:
        return failure(provider, ["missing-input-response"])
    with LOCK:
        seen = token in SEEN
        SEEN.add(token)
    if seen:
        return failure(provider, ["already-seen-response" if provider == "hcaptcha"
                                  else "timeout-or-duplicate"])
    kind = token.split("~", 1)[0]
    if kind not in ("pass", "v2", "otherhost", "otheraction", "lowscore"):
        return failure(provider, ["invalid-input-response"])
    ok = {"success": True, "challenge_ts": now_ts(),
          "hostname": "evil.example" if kind == "otherhost" else HOST}
    action = "login" if kind == "otheraction" else ACTION
    if provider == "turnstile":
        ok.update({"error-codes": [], "action": action, "cdata": ""})
    elif provider == "hcaptcha":
        ok.update({"credit": False})
    elif kind != "v2":  # reCAPTCHA v3
        ok.update({"score": 0.3 if kind == "lowscore" else 0.9, "action": action})
    return ok


PROVIDERS = {
    "/turnstile/v0/siteverify": "turnstile",
    "/hcaptcha/siteverify": "hcaptcha",
    "/recaptcha/api/siteverify": "recaptcha",
}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body: bytes, content_type="application/json", headers=None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        content_type = self.headers.get("Content-Type", "")
        form = {}
        if content_type.split(";")[0].strip() == "application/x-www-form-urlencoded":
            form = dict(urllib.parse.parse_qsl(raw.decode("utf-8", "replace"),
                                               keep_blank_values=True))
        with LOCK:
            with open(os.path.join(DIR, "requests.jsonl"), "a", encoding="utf-8") as f:
                f.write(json.dumps({"path": self.path, "content_type": content_type,
                                    "form": form}) + "\n")
        if self.path == "/fault/500":
            return self.answer(500, b'{"error": "internal"}')
        if self.path == "/fault/garbage":
            return self.answer(200, b"<html><body>Bad gateway</body></html>", "text/html")
        if self.path == "/fault/hang":
            time.sleep(30)
            return self.answer(200, b'{"success": true}')
        if self.path == "/fault/redirect":
            return self.answer(307, b"", headers={"Location": "/turnstile/v0/siteverify"})
        provider = PROVIDERS.get(self.path)
        if provider is None:
            return self.answer(404, b'{"error": "not found"}')
        if not form:
            return self.answer(200, json.dumps(failure(provider, ["bad-request"])).encode())
        return self.answer(200, json.dumps(reply(provider, form)).encode())


def main():
    args = sys.argv[2:]
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if args:
        cert, key = args[args.index("--cert") + 1], args[args.index("--key") + 1]
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    print(f"listening {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

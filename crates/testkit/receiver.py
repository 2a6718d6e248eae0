"""A webhook receiver for the sink's tests: HTTPS on loopback, every POST verified with the
`standardwebhooks` package (a verifier nobody here wrote), scripted answers.

Usage: receiver.py PORT CERT KEY DIR
  Secrets come from the environment, RECEIVER_SECRETS (whsec_… separated by spaces). Each POST is
  verified with each secret separately; one that verifies with none is answered 401. Every POST
  is recorded as DIR/req-<n>.json ({"headers", "verified_with": [secret indexes], "received_at":
  Unix time in seconds, a float, when the request was read}) and DIR/req-<n>.body (the raw
  body). The answer is the first entry of DIR/script.json (a JSON list,
  consumed), default {"status": 200}: keys status, body, sleep (seconds before answering),
  headers (an object). HEAD is answered 200 without verification (the sink's healthcheck).
  DIR/ready is written once listening.
"""

import json
import os
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook

PORT, CERT, KEY, DIR = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
SECRETS = os.environ.get("RECEIVER_SECRETS", "").split()
LOCK = threading.Lock()
COUNT = [0]


def next_action():
    path = os.path.join(DIR, "script.json")
    with LOCK:
        COUNT[0] += 1
        n = COUNT[0]
        try:
            with open(path) as f:
                script = json.load(f)
        except FileNotFoundError:
            script = []
        action = script.pop(0) if script else {"status": 200}
        with open(path + ".tmp", "w") as f:
            json.dump(script, f)
        os.replace(path + ".tmp", path)
    return n, action


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body=b"", headers=None):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self):
        self.answer(200)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        received_at = time.time()
        headers = {k.lower(): v for k, v in self.headers.items()}
        verified = []
        for i, secret in enumerate(SECRETS):
            try:
                Webhook(secret).verify(body, headers, json_parse=False)
                verified.append(i)
            except Exception:
                pass
        n, action = next_action()
        with open(os.path.join(DIR, f"req-{n}.body"), "wb") as f:
            f.write(body)
        with open(os.path.join(DIR, f"req-{n}.json.tmp"), "w") as f:
            json.dump({"headers": headers, "verified_with": verified, "received_at": received_at}, f)
        os.replace(os.path.join(DIR, f"req-{n}.json.tmp"), os.path.join(DIR, f"req-{n}.json"))
        if not verified:
            self.answer(401, b"signature not verified")
            return
        time.sleep(action.get("sleep", 0))
        try:
            self.answer(
                action.get("status", 200),
                action.get("body", "ok").encode(),
                action.get("headers"),
            )
        except (BrokenPipeError, ConnectionResetError):
            pass


server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
server.daemon_threads = True
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(CERT, KEY)
server.socket = ctx.wrap_socket(server.socket, server_side=True)
with open(os.path.join(DIR, "ready"), "w") as f:
    f.write(str(PORT))
server.serve_forever()

#!/usr/bin/env python3
"""Exercises every operation of openapi.yaml against a running SecureForm with realistic
requests, and checks every answer against the document (see openapi_check.py for what is
checked). Also checks the reverse: every documented operation was exercised at least once.

The server must run with tests/contract/server.toml (its forms, limits and tokens are what the
scenarios below rely on). tests/api/contract.rs starts it and runs this script; by hand:

    python3 tests/contract/check_responses.py --base http://127.0.0.1:8080 --spec openapi.yaml

Exit status: 0 when every exchange conforms, 1 otherwise (with a report of each mismatch).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import urllib.parse

sys.dont_write_bytecode = True  # no __pycache__ left in the source tree
import bodies  # noqa: E402
from openapi_check import Recorder, Spec  # noqa: E402

ADMIN = os.environ.get("SECUREFORM_ADMIN_TOKEN", "sf-contract-admin")
READER = os.environ.get("SECUREFORM_READ_TOKEN", "sf-contract-read")
SUBMITTER = os.environ.get("SECUREFORM_SUBMIT_TOKEN", "sf-contract-submit")

F = "/f/{form}"
THANKS = "/f/{form}/thanks"
CHALLENGE = "/f/{form}/challenge"
FORMS = "/api/v1/forms"
SUBMIT = "/api/v1/forms/{form}/submissions"
STATUS = "/api/v1/submissions/{id}"
RETRY = "/api/v1/submissions/{id}/retry"
DOCS = "/api/v1/documents"
DOC = "/api/v1/documents/{id}"
FILE = "/api/v1/documents/{id}/files/{n}"
AUDIT = "/api/v1/audit"

JSON = {"content-type": "application/json"}
HTML = {"accept": "text/html,application/xhtml+xml"}
WANT_JSON = {"accept": "application/json"}
UNKNOWN_ID = "01ARZ3NDEKTSV4RZVFQNAHEAAA"  # a well-formed ULID nobody was given

def id_from_fdf(body: bytes) -> str:
    return body.split(b"Reference: ")[1][:26].decode()


def submissions(r: Recorder) -> dict:
    """POST /f/{form} in every format and every refusal; returns ids for later steps."""
    ids = {}
    resp = r.call("browser urlencoded", "POST", F, {"form": "contact"}, expect=303, headers=HTML,
                  data={"email": "ann@example.com", "topic": ["a", "b"]})
    loc = resp.headers.get("location", "")
    r.check("303 goes to the thank-you page", F, "POST", loc.startswith("/f/contact/thanks?id="), loc)
    ids["urlencoded"] = urllib.parse.parse_qs(urllib.parse.urlparse(loc).query).get("id", [""])[0]
    r.call("thank-you page", "GET", THANKS, {"form": "contact"}, expect=200, params={"id": ids["urlencoded"]})
    r.call("thank-you page, unknown form", "GET", THANKS, {"form": "nope"}, expect=404)
    r.call("proof-of-work challenge", "GET", CHALLENGE, {"form": "pow"}, expect=200)
    r.call("challenge, form without captcha", "GET", CHALLENGE, {"form": "contact"}, expect=404)
    r.call("challenge, unknown form", "GET", CHALLENGE, {"form": "nope"}, expect=404)
    r.call("captcha form, no solution", "POST", F, {"form": "pow"}, expect=422,
           json={"message": "hello"})
    resp = r.call("third-party captcha, no token", "POST", F, {"form": "verified"}, expect=422,
                  json={"message": "hello"})
    r.check("the refusal says why", F, "POST",
            resp.status_code == 422 and resp.json()["error"].get("reason") == "token_missing",
            resp.text)
    resp = r.call("third-party captcha, verifier unreachable", "POST", F, {"form": "verified"},
                  expect=503, json={"message": "hello", "cf-turnstile-response": "token"})
    r.check("fails closed with Retry-After", F, "POST",
            resp.status_code == 503 and resp.headers.get("retry-after", "").isdigit()
            and resp.json()["error"].get("code") == "captcha_unavailable", resp.text)
    r.call("third-party captcha, verifier unreachable, browser", "POST", F, {"form": "verified"},
           expect=503, headers=HTML, data={"cf-turnstile-response": "token"})
    r.call("thank-you page, id given twice", "GET", THANKS, {"form": "contact"}, expect=200,
           params=[("id", ids["urlencoded"]), ("id", "x")])

    r.call("urlencoded asking for JSON", "POST", F, {"form": "contact"}, expect=201,
           headers=WANT_JSON, data={"email": "ann@example.com"})
    files = {"cv": ("cv.pdf", bodies.noise(5000), "application/pdf")}
    resp = r.call("multipart with a file", "POST", F, {"form": "contact"}, expect=201,
                  headers=WANT_JSON, data={"email": "ann@example.com"}, files=files)
    ids["multipart"] = resp.json().get("id") if resp.status_code == 201 else None
    r.call("multipart from a browser", "POST", F, {"form": "contact"}, expect=303, headers=HTML,
           data={"email": "ann@example.com"}, files=files)
    resp = r.call("JSON", "POST", F, {"form": "contact"}, expect=201, headers=JSON,
                  data=b'{"email":"ann@example.com","qty":2,"ok":true,"tags":["x",1]}')
    ids["json"] = resp.json().get("id") if resp.status_code == 201 else None
    fields = {"email": "ann@example.com", "name": "Ann"}
    for label, ct, body in [("FDF", "application/vnd.fdf", bodies.fdf(fields)),
                            ("XFDF", "application/vnd.adobe.xfdf", bodies.xfdf(fields)),
                            ("PDF", "application/pdf", bodies.pdf_form(fields))]:
        resp = r.call(label, "POST", F, {"form": "contact"}, expect=200,
                      headers={"content-type": ct}, data=body)
        if resp.status_code == 200:
            ids[label] = id_from_fdf(resp.content)

    resp = r.call("sealed form, multipart", "POST", F, {"form": "sealed"}, expect=201,
                  headers=WANT_JSON, data={"note": "x"}, files=files)
    ids["sealed"] = resp.json().get("id") if resp.status_code == 201 else None
    resp = r.call("form with a failing sink", "POST", F, {"form": "outbox"}, expect=201,
                  headers=JSON, data=b'{"a":"b"}')
    ids["outbox"] = resp.json().get("id") if resp.status_code == 201 else None
    r.check("warnings name the unencrypted sink", F, "POST",
            resp.status_code == 201 and any("mail" in w for w in resp.json()["warnings"]), resp.text)

    # Refusals, in each client's shape.
    r.call("unknown form, JSON", "POST", F, {"form": "nope"}, expect=404, headers=JSON, data=b"{}")
    r.call("unknown form, browser", "POST", F, {"form": "nope"}, expect=404, headers=HTML, data={"a": "b"})
    r.call("unknown form, FDF", "POST", F, {"form": "nope"}, expect=404,
           headers={"content-type": "application/vnd.fdf"}, data=bodies.fdf(fields))
    big = b'{"email":"a@example.com","pad":"' + b"x" * 70000 + b'"}'
    r.call("too large, JSON", "POST", F, {"form": "contact"}, expect=413, headers=JSON, data=big)
    r.call("too large, browser", "POST", F, {"form": "contact"}, expect=413, headers=HTML,
           data={"email": "a@example.com", "pad": "x" * 70000})
    r.call("too large, multipart", "POST", F, {"form": "contact"}, expect=413, headers=WANT_JSON,
           data={"email": "a@example.com"}, files={"f": ("f", bodies.noise(300000))})
    r.call("too large, PDF", "POST", F, {"form": "contact"}, expect=413,
           headers={"content-type": "application/pdf"}, data=b"%PDF-1.7\n" + b" " * 70000)
    r.call("unsupported type", "POST", F, {"form": "contact"}, expect=415,
           headers={"content-type": "text/plain", **WANT_JSON}, data=b"hello")
    r.call("unsupported type, browser", "POST", F, {"form": "contact"}, expect=415,
           headers={"content-type": "text/plain", **HTML}, data=b"hello")
    r.call("malformed JSON", "POST", F, {"form": "contact"}, expect=400, headers=JSON, data=b'{"a":')
    r.call("nested JSON", "POST", F, {"form": "contact"}, expect=400, headers=JSON, data=b'{"a":{"b":1}}')
    r.call("malformed FDF", "POST", F, {"form": "contact"}, expect=400,
           headers={"content-type": "application/vnd.fdf"}, data=b"%FDF-1.2\n1 0 obj << /FDF")
    r.call("XFDF with a DTD", "POST", F, {"form": "contact"}, expect=400,
           headers={"content-type": "application/vnd.adobe.xfdf"},
           data=b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "x">]>'
                b'<xfdf xmlns="http://ns.adobe.com/xfdf/"><fields/></xfdf>')
    r.call("required field missing", "POST", F, {"form": "contact"}, expect=422, headers=JSON,
           data=b'{"a":"b"}')
    r.call("required field missing, browser", "POST", F, {"form": "contact"}, expect=422,
           headers=HTML, data={"a": "b"})
    resp = r.call("origin not allowed", "POST", F, {"form": "contact"}, expect=403,
                  headers={**JSON, "origin": "https://evil.example"}, data=b'{"email":"a@example.com"}')
    r.check("no CORS allowance for another origin", F, "POST",
            "access-control-allow-origin" not in resp.headers, str(resp.headers))
    resp = r.call("allowed origin", "POST", F, {"form": "contact"}, expect=201,
                  headers={**JSON, "origin": "https://good.example"}, data=b'{"email":"a@example.com"}')
    r.check("CORS allowance for the allowed origin", F, "POST",
            resp.headers.get("access-control-allow-origin") == "https://good.example", str(resp.headers))
    for expect in (201, 201, 429):
        resp = r.call(f"rate limit ({expect})", "POST", F, {"form": "limited"}, expect=expect,
                      headers=JSON, data=b'{"a":"b"}')
    r.call("rate limited, browser", "POST", F, {"form": "limited"}, expect=429, headers=HTML, data={"a": "b"})
    return ids


def preflight(r: Recorder):
    ask = {"access-control-request-method": "POST", "access-control-request-headers": "content-type"}
    resp = r.call("preflight, allowed origin", "OPTIONS", F, {"form": "contact"}, expect=204,
                  headers={**ask, "origin": "https://good.example"})
    r.check("preflight allows the origin and POST", F, "OPTIONS",
            resp.headers.get("access-control-allow-origin") == "https://good.example"
            and "POST" in resp.headers.get("access-control-allow-methods", ""), str(resp.headers))
    for label, form in [("other origin", "contact"), ("unknown form", "nope")]:
        resp = r.call(f"preflight, {label}", "OPTIONS", F, {"form": form}, expect=204,
                      headers={**ask, "origin": "https://evil.example"})
        r.check(f"preflight, {label}: no allowance", F, "OPTIONS",
                not any(h.lower().startswith("access-control-allow") for h in resp.headers),
                str(resp.headers))


def wait_delivery(r: Recorder, sid: str, sink: str, states: tuple, label: str) -> dict:
    """Polls a submission's state until `sink` is in one of `states` (30 s at most)."""
    deadline = time.monotonic() + 30
    delivery = {}
    while time.monotonic() < deadline:
        resp = r.call(label, "GET", STATUS, {"id": sid}, expect=200, token=ADMIN)
        if resp.status_code != 200:
            break
        delivery = next((d for d in resp.json().get("deliveries", []) if d.get("sink") == sink), {})
        if delivery.get("state") in states:
            return delivery
        time.sleep(0.1)
    r.check(label, STATUS, "GET", False, f"{sink} never reached {states}: {delivery}")
    return delivery


def api_forms_and_submit(r: Recorder) -> dict:
    ids = {}
    resp = r.call("forms, admin", "GET", FORMS, expect=200, token=ADMIN)
    forms = {f["name"]: f for f in resp.json().get("forms", [])} if resp.status_code == 200 else {}
    outbox = forms.get("outbox", {})
    r.check("forms: all seven for admin, outbox weakest is plaintext and warned", FORMS, "GET",
            len(forms) == 7 and outbox.get("at_rest") == "plaintext" and outbox.get("warnings"),
            str(forms))
    resp = r.call("forms, reader", "GET", FORMS, expect=200, token=READER)
    r.check("forms: only the token's", FORMS, "GET",
            [f["name"] for f in resp.json().get("forms", [])] == ["contact"], resp.text)
    resp = r.call("forms, no token", "GET", FORMS, expect=401)
    r.check("401 says how to authenticate", FORMS, "GET",
            resp.headers.get("www-authenticate", "").startswith("Bearer"), str(resp.headers))
    r.call("forms, wrong token", "GET", FORMS, expect=401, token="sf-wrong")
    r.call("forms, not a bearer", "GET", FORMS, expect=401, headers={"authorization": "Basic eDp5"})

    body = b'{"email":"api@example.com","n":1.5}'
    resp = r.call("submit", "POST", SUBMIT, {"form": "contact"}, expect=201, token=SUBMITTER,
                  headers=JSON, data=body)
    ids["api"] = resp.json().get("id") if resp.status_code == 201 else None
    r.check("Location names the status", SUBMIT, "POST",
            resp.headers.get("location") == f"/api/v1/submissions/{ids['api']}", str(resp.headers))
    seen = set()
    for i in range(5):
        resp = r.call(f"idempotent repeat {i}", "POST", SUBMIT, {"form": "contact"}, expect=201,
                      token=SUBMITTER, headers={**JSON, "idempotency-key": "contract-1"}, data=body)
        seen.add(resp.json().get("id") if resp.status_code == 201 else None)
    r.check("one id for five repeats of a key", SUBMIT, "POST", len(seen) == 1, str(seen))
    r.call("submit, no token", "POST", SUBMIT, {"form": "contact"}, expect=401, headers=JSON, data=body)
    r.call("submit, read-only token", "POST", SUBMIT, {"form": "contact"}, expect=403, token=READER,
           headers=JSON, data=body)
    r.call("submit, another form", "POST", SUBMIT, {"form": "sealed"}, expect=403, token=SUBMITTER,
           headers=JSON, data=body)
    r.call("submit, unknown form", "POST", SUBMIT, {"form": "nope"}, expect=404, token=ADMIN,
           headers=JSON, data=body)
    r.call("submit, malformed", "POST", SUBMIT, {"form": "contact"}, expect=400, token=SUBMITTER,
           headers=JSON, data=b"[1,2")
    r.call("submit, not an object", "POST", SUBMIT, {"form": "contact"}, expect=400, token=SUBMITTER,
           headers=JSON, data=b'["a"]')
    r.call("submit, key too long", "POST", SUBMIT, {"form": "contact"}, expect=400, token=SUBMITTER,
           headers={**JSON, "idempotency-key": "k" * 201}, data=body)
    r.call("submit, too large", "POST", SUBMIT, {"form": "contact"}, expect=413, token=SUBMITTER,
           headers=JSON, data=b'{"email":"a@example.com","p":"' + b"x" * 70000 + b'"}')
    r.call("submit, too many fields", "POST", SUBMIT, {"form": "contact"}, expect=413, token=SUBMITTER,
           headers=JSON, data=("{" + ",".join(f'"f{i}":1' for i in range(60)) + "}").encode())
    r.call("submit, required missing", "POST", SUBMIT, {"form": "contact"}, expect=422,
           token=SUBMITTER, headers=JSON, data=b'{"a":"b"}')
    return ids


def api_states(r: Recorder, ids: dict):
    d = wait_delivery(r, ids["json"], "docs", ("delivered",), "state until delivered")
    r.check("delivered carries the document receipt", STATUS, "GET",
            d.get("receipt", {}).get("kind") == "document", str(d))
    d = wait_delivery(r, ids["outbox"], "mail", ("retrying",), "failing sink until retrying")
    r.check("retrying carries the last error and the next attempt", STATUS, "GET",
            bool(d.get("last_error")) and bool(d.get("next_attempt_at")), str(d))
    d = wait_delivery(r, ids["outbox"], "mail", ("dead",), "failing sink until dead")
    r.check("dead carries its reason", STATUS, "GET", bool(d.get("reason")), str(d))
    r.call("state, reader, another form's submission", "GET", STATUS, {"id": ids["outbox"]},
           expect=404, token=READER)
    r.call("state, submit-only token", "GET", STATUS, {"id": ids["json"]}, expect=403, token=SUBMITTER)
    r.call("state, unknown", "GET", STATUS, {"id": UNKNOWN_ID}, expect=404, token=ADMIN)
    r.call("state, not an id", "GET", STATUS, {"id": "not-a-ulid"}, expect=404, token=ADMIN)
    r.call("state, no token", "GET", STATUS, {"id": ids["json"]}, expect=401)

    r.call("retry, reader", "POST", RETRY, {"id": ids["outbox"]}, expect=403, token=READER)
    r.call("retry, no token", "POST", RETRY, {"id": ids["outbox"]}, expect=401)
    r.call("retry, unknown", "POST", RETRY, {"id": UNKNOWN_ID}, expect=404, token=ADMIN)
    resp = r.call("retry a dead delivery", "POST", RETRY, {"id": ids["outbox"]}, expect=200, token=ADMIN)
    r.check("one delivery re-queued", RETRY, "POST",
            resp.status_code == 200 and resp.json().get("requeued") == 1, resp.text)
    d = wait_delivery(r, ids["outbox"], "mail", ("retrying",), "retrying again after a retry")
    r.check("a retry starts the attempts afresh", STATUS, "GET", d.get("attempts") == 1, str(d))
    resp = r.call("retry, nothing dead", "POST", RETRY, {"id": ids["json"]}, expect=200, token=ADMIN)
    r.check("nothing re-queued", RETRY, "POST",
            resp.status_code == 200 and resp.json().get("requeued") == 0, resp.text)


def documents(r: Recorder, ids: dict):
    # Two documents sinks (docs, vault), each with a store of its own: every read names one.
    IN_DOCS, IN_VAULT = {"sink": "docs"}, {"sink": "vault"}
    for key in ("json", "multipart", "sealed", "urlencoded", "PDF"):
        if ids.get(key):
            wait_delivery(r, ids[key], "vault" if key == "sealed" else "docs", ("delivered",),
                          f"{key} delivered to documents")
    # Every page, one document at a time: each id once, the cursor null at the end.
    listed, cursor, pages = [], None, 0
    while pages < 100:
        query = {"limit": 1, "sink": "docs", **({"cursor": cursor} if cursor else {})}
        resp = r.call("documents, a page", "GET", DOCS, expect=200, token=ADMIN, params=query)
        if resp.status_code != 200:
            break
        page = resp.json()
        listed += [d["id"] for d in page.get("documents", [])]
        cursor, pages = page.get("next_cursor"), pages + 1
        if not cursor:
            break
    r.check("pages list every document once, oldest first", DOCS, "GET",
            len(listed) == len(set(listed)) and listed == sorted(listed)
            and all(ids[k] in listed for k in ("json", "multipart"))
            and ids["sealed"] not in listed, str(listed))
    r.call("documents, sink not named", "GET", DOCS, expect=400, token=ADMIN)
    r.call("documents, unknown sink", "GET", DOCS, expect=404, token=ADMIN, params={"sink": "nope"})
    resp = r.call("documents, sealed form", "GET", DOCS, expect=200, token=ADMIN,
                  params={"form": "sealed", "since": "2000-01-01T00:00:00Z", "sink": "vault"})
    r.check("the sealed document is marked pgp", DOCS, "GET",
            [d.get("pgp") for d in resp.json().get("documents", [])] == [True], resp.text)
    resp = r.call("documents, since the future", "GET", DOCS, expect=200, token=READER,
                  params={"form": "contact", "since": "2999-01-01T00:00:00+02:00", "sink": "docs"})
    r.check("nothing since the future", DOCS, "GET", resp.json().get("documents") == [], resp.text)
    r.call("documents, bad since", "GET", DOCS, expect=400, token=ADMIN,
           params={"since": "yesterday", **IN_DOCS})
    r.call("documents, bad limit", "GET", DOCS, expect=400, token=ADMIN,
           params={"limit": "abc", **IN_DOCS})
    r.call("documents, another form", "GET", DOCS, expect=403, token=READER,
           params={"form": "sealed", **IN_DOCS})
    r.call("documents, submit-only token", "GET", DOCS, expect=403, token=SUBMITTER,
           params=IN_DOCS)
    r.call("documents, no token", "GET", DOCS, expect=401)

    resp = r.call("document", "GET", DOC, {"id": ids["json"]},
                  params=IN_DOCS, expect=200, token=READER)
    r.check("the document is what was sent", DOC, "GET", resp.status_code == 200
            and resp.json().get("fields") == {"email": "ann@example.com", "qty": 2, "ok": True,
                                              "tags": ["x", 1]}, resp.text)
    r.call("document, double-encrypted", "GET", DOC, {"id": ids["sealed"]},
           params=IN_VAULT, expect=200, token=ADMIN)
    r.call("document, PDF submission", "GET", DOC, {"id": ids["PDF"]},
           params=IN_DOCS, expect=200, token=ADMIN)
    r.call("document, another form's", "GET", DOC, {"id": ids["sealed"]},
           params=IN_VAULT, expect=404, token=READER)
    r.call("document, unknown", "GET", DOC, {"id": UNKNOWN_ID},
           params=IN_DOCS, expect=404, token=READER)
    r.call("document, submit-only token", "GET", DOC, {"id": ids["json"]},
           params=IN_DOCS, expect=403, token=SUBMITTER)
    r.call("document, no token", "GET", DOC, {"id": ids["json"]}, params=IN_DOCS, expect=401)

    resp = r.call("file", "GET", FILE, {"id": ids["multipart"], "n": 0},
                  params=IN_DOCS, expect=200, token=READER)
    r.check("the file's bytes", FILE, "GET", resp.content == bodies.noise(5000), f"{len(resp.content)} bytes")
    r.call("file, the kept PDF", "GET", FILE, {"id": ids["PDF"], "n": 0},
           params=IN_DOCS, expect=200, token=ADMIN)
    r.call("file, double-encrypted", "GET", FILE, {"id": ids["sealed"], "n": 0},
           params=IN_VAULT, expect=200, token=ADMIN)
    r.call("file, past the last", "GET", FILE, {"id": ids["multipart"], "n": 1},
           params=IN_DOCS, expect=404, token=READER)
    r.call("file, index not a number", "GET", FILE, {"id": ids["multipart"], "n": "x"},
           params=IN_DOCS, expect=404,
           token=READER)
    r.call("file, unknown document", "GET", FILE, {"id": UNKNOWN_ID, "n": 0},
           params=IN_DOCS, expect=404, token=READER)
    r.call("file, submit-only token", "GET", FILE, {"id": ids["multipart"], "n": 0},
           params=IN_DOCS, expect=403,
           token=SUBMITTER)
    r.call("file, no token", "GET", FILE, {"id": ids["multipart"], "n": 0},
           params=IN_DOCS, expect=401)

    resp = r.call("audit", "GET", AUDIT, expect=200, token=ADMIN, params={"limit": 1000})
    entries = resp.json().get("entries", []) if resp.status_code == 200 else []
    r.check("the reader's reads are audited", AUDIT, "GET",
            {("reader", "read_submission", ids["json"]), ("reader", "read_file", ids["multipart"])}
            <= {(e["token"], e["action"], e["document_id"]) for e in entries}, str(entries[:5]))
    r.call("audit, bad limit", "GET", AUDIT, expect=400, token=ADMIN, params={"limit": "many"})
    r.call("audit, read token", "GET", AUDIT, expect=403, token=READER)
    r.call("audit, no token", "GET", AUDIT, expect=401)
    r.call("an unknown API path", "GET", "/api/v1/nope", expect=404, token=ADMIN)
    r.call("an unknown method", "DELETE", FORMS + "/contact", expect=404, token=ADMIN)


def erasure(r: Recorder, ids: dict):
    """DELETE of a document and of a submission (issue 17), last: it removes what it touches."""
    sid = ids["urlencoded"]
    IN_DOCS = {"sink": "docs"}  # noqa: N806 (as in documents())
    r.call("erase document, read token", "DELETE", DOC, {"id": sid}, params=IN_DOCS, expect=403,
           token=READER)
    r.call("erase document, no token", "DELETE", DOC, {"id": sid}, params=IN_DOCS, expect=401)
    r.call("erase document, unknown", "DELETE", DOC, {"id": UNKNOWN_ID}, params=IN_DOCS,
           expect=404, token=ADMIN)
    r.call("erase document", "DELETE", DOC, {"id": sid}, params=IN_DOCS, expect=204, token=ADMIN)
    r.call("erase document, again", "DELETE", DOC, {"id": sid}, params=IN_DOCS, expect=404,
           token=ADMIN)
    r.call("the erased document", "GET", DOC, {"id": sid}, params=IN_DOCS, expect=404, token=ADMIN)
    r.call("erase submission, read token", "DELETE", STATUS, {"id": sid}, expect=403, token=READER)
    r.call("erase submission, unknown", "DELETE", STATUS, {"id": UNKNOWN_ID}, expect=404,
           token=ADMIN)
    resp = r.call("erase submission", "DELETE", STATUS, {"id": sid}, expect=200, token=ADMIN)
    r.check("the erasure says what it did", STATUS, "DELETE",
            resp.status_code == 200 and resp.json().get("erased") is True, resp.text)
    r.call("erase submission, again", "DELETE", STATUS, {"id": sid}, expect=404, token=ADMIN)
    r.call("an erased submission's status", "GET", STATUS, {"id": sid}, expect=404, token=ADMIN)
    r.call("audit, after below 0", "GET", AUDIT, expect=400, token=ADMIN, params={"after": -1})
    resp = r.call("deletion report", "GET", "/api/v1/erasures", expect=200, token=ADMIN)
    r.check("the report names the erasures", "/api/v1/erasures", "GET",
            resp.status_code == 200 and sid in resp.json().get("report", ""), resp.text[:300])
    r.call("deletion report, bad limit", "GET", "/api/v1/erasures", expect=400, token=ADMIN,
           params={"limit": 0})
    r.call("deletion report, read token", "GET", "/api/v1/erasures", expect=403, token=READER)
    r.call("deletion report, no token", "GET", "/api/v1/erasures", expect=401)
    subjects = "/api/v1/subjects"
    resp = r.call("erase a subject nobody is", "DELETE", subjects, expect=200, token=ADMIN,
                  params={"field": "email", "value": "nobody@example.com"})
    r.check("nothing erased", subjects, "DELETE",
            resp.status_code == 200 and resp.json().get("erased") == [], resp.text)
    r.call("erase a subject, no value", "DELETE", subjects, expect=400, token=ADMIN,
           params={"field": "email", "value": " "})
    r.call("erase a subject, read token", "DELETE", subjects, expect=403, token=READER,
           params={"field": "email", "value": "x"})
    resp = r.call("audit, paged", "GET", AUDIT, expect=200, token=ADMIN,
                  params={"after": 0, "limit": 1000})
    entries = resp.json().get("entries", []) if resp.status_code == 200 else []
    r.check("the erasures are audited", AUDIT, "GET",
            {("admin", "erase_document", sid), ("admin", "erase_submission", sid)}
            <= {(e["actor"], e["action"], e["document_id"]) for e in entries}, str(entries[-5:]))


def operations(r: Recorder):
    r.call("the root, as a page", "GET", "/", expect=200)
    r.call("the root, as JSON", "GET", "/", expect=200, headers={"Accept": "application/json"})
    r.call("the HTTP interface", "GET", "/openapi.yaml", expect=200)
    r.call("health", "GET", "/healthz", expect=200)
    r.call("readiness", "GET", "/readyz", expect=200)
    resp = r.call("metrics", "GET", "/metrics", expect=200)
    text = resp.text
    r.check("metrics count by form and source", "/metrics", "GET",
            'secureform_submissions_accepted_total{form="contact",source="pdf"}' in text, text[:2000])
    r.check("metrics carry no field value", "/metrics", "GET",
            "ann@example.com" not in text and "api@example.com" not in text, "a field value in /metrics")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the server, e.g. http://127.0.0.1:8080")
    parser.add_argument("--spec", default=os.path.join(os.path.dirname(__file__), "..", "..", "openapi.yaml"))
    args = parser.parse_args()
    r = Recorder(Spec(args.spec), args.base)
    started = time.monotonic()
    ids = submissions(r)
    preflight(r)
    ids.update(api_forms_and_submit(r))
    if all(ids.get(k) for k in ("json", "multipart", "sealed", "outbox", "PDF", "urlencoded")):
        api_states(r, ids)
        documents(r, ids)
        erasure(r, ids)
    else:
        r.check("submissions needed by the API checks", F, "POST", False, str(ids))
    operations(r)
    failures = r.report()
    print(f"check_responses: {time.monotonic() - started:.1f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

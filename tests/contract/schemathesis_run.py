#!/usr/bin/env python3
"""Runs schemathesis (PyPI) against a running SecureForm with a valid token, bounded in examples
and time, and exits non-zero on any failure.

Checks: all of schemathesis's, none left out: among them not_a_server_error (no 5xx),
status_code_conformance (every status documented), content_type_conformance,
response_schema_conformance and response_headers_conformance (every answer matches
openapi.yaml), negative_data_rejection (what the document forbids is refused with a 4xx),
positive_data_acceptance (what it allows is accepted), unsupported_method (a method a path does
not take is 405 with Allow), missing_required_header, ignored_auth (a request without a valid
token is refused) and use_after_free (a deleted resource is gone). Modes: positive and negative data. Phases: examples, coverage,
fuzzing and stateful (the links schemathesis infers, e.g. a submission's id into its status).

Every operation of openapi.yaml is fuzzed; none is excluded. Some are fuzzed less deeply than
others, and why:
- `POST /f/{form}` with FDF, XFDF and PDF bodies: the document can only say "binary", so
  schemathesis sends random bytes. That does test that garbage is refused with a 4xx in the
  client's shape, never a crash; well-formed Acrobat bodies are check_responses.py's job (and
  the PDF corpus tests').
- Path parameters (`form`, `id`, `n`): random values almost always name nothing (404). So that
  the operations' success paths are fuzzed too, this runner first makes a few real submissions
  (one with a file) and hands their ids, the configured form names and file index 0 to
  schemathesis as dictionaries, drawn half of the time.

Failures that are the symptom of a reported server bug are dropped by known_bugs.py (a
`filter_failure` hook), visibly; nothing else is.

    python3 tests/contract/schemathesis_run.py --base http://127.0.0.1:8080 [--spec openapi.yaml]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import requests

HERE = os.path.dirname(os.path.abspath(__file__))
TOKEN = os.environ.get("SECUREFORM_ADMIN_TOKEN", "sf-contract-admin")
FORMS = ["fuzz", "contact", "sealed", "outbox"]
CHECKS = "all"


def seed(base: str) -> list[str]:
    """Makes submissions to fuzz with (one with a file, one through the API) and waits until the
    Documents store has them; returns their ids."""
    auth = {"authorization": f"Bearer {TOKEN}"}
    ids = []
    resp = requests.post(f"{base}/f/fuzz", headers={"accept": "application/json"},
                         data={"a": "b"}, files={"f": ("f.bin", b"\x00\x01" * 500)}, timeout=30)
    resp.raise_for_status()
    ids.append(resp.json()["id"])
    resp = requests.post(f"{base}/api/v1/forms/fuzz/submissions", headers=auth,
                         json={"a": 1, "b": [True, "x"]}, timeout=30)
    resp.raise_for_status()
    ids.append(resp.json()["id"])
    deadline = time.monotonic() + 30
    for sid in ids:
        while True:
            resp = requests.get(f"{base}/api/v1/submissions/{sid}", headers=auth, timeout=30)
            resp.raise_for_status()
            if all(d["state"] == "delivered" for d in resp.json()["deliveries"]):
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"seed submission {sid} never delivered: {resp.text}")
            time.sleep(0.1)
    return ids


def config_toml(ids: list[str]) -> str:
    """A schemathesis configuration whose dictionaries hold real form names, ids and index 0."""
    return "\n".join([
        "[dictionaries.forms]", f"values = {json.dumps(FORMS)}",
        "[dictionaries.ids]", f"values = {json.dumps(ids)}",
        "[dictionaries.file_index]", "values = [0]",
        "[parameters]",
        '"path.form" = { dictionary = "forms", probability = 0.5 }',
        '"path.id" = { dictionary = "ids", probability = 0.5 }',
        '"path.n" = { dictionary = "file_index", probability = 0.5 }',
        # A form's own rules (`required` fields, the honeypot) cannot be written into the one
        # schema all forms share: a schema-valid body may fail them, with 422. The `[limits]`
        # (max_name_bytes, max_fields...) are configuration, counted in bytes, and a schema
        # cannot carry them: over one is 413. Nothing else is added to what
        # positive_data_acceptance expects.
        "[[operations]]",
        'include-operation-id = ["createSubmission"]',
        "checks.positive_data_acceptance.expected-statuses = "
        '["2xx", "3xx", "401", "403", "404", "409", "413", "422", "429", "5xx"]',
        # The browser endpoint also refuses, with 400 `multipart_malformed`, a multipart part
        # whose name holds a control character (a header cannot carry one; openapi.yaml says
        # so with `propertyNames`, which schemathesis does not apply to multipart bodies).
        "[[operations]]",
        'include-operation-id = ["submitForm"]',
        "checks.positive_data_acceptance.expected-statuses = "
        '["2xx", "3xx", "400", "401", "403", "404", "409", "413", "422", "429", "5xx"]',
        # With several documents sinks (this server has two), a documents request must name
        # one with `sink`: 400 `sink_required` otherwise. Whether `sink` is required depends on
        # the configuration, which one schema cannot say.
        "[[operations]]",
        'include-operation-id = ["listDocuments", "getDocument", "getDocumentFile"]',
        "checks.positive_data_acceptance.expected-statuses = "
        '["2xx", "400", "401", "403", "404", "429", "5xx"]',
        "",
    ])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True)
    parser.add_argument("--spec", default=os.path.join(HERE, "..", "..", "openapi.yaml"))
    parser.add_argument("--max-examples", type=int, default=25)
    parser.add_argument("--seed", default=os.environ.get("SECUREFORM_FUZZ_SEED"),
                        help="schemathesis's seed, to replay a run (it prints the one it used)")
    parser.add_argument("--timeout", type=int, default=150, help="seconds before the run is stopped")
    args = parser.parse_args()
    if not args.base.startswith(("http://127.", "http://localhost", "http://[::1]")):
        raise SystemExit("refusing to fuzz anything but a loopback address")
    started = time.monotonic()
    ids = seed(args.base)
    # Run inside a temporary folder: schemathesis and hypothesis keep caches in the current one.
    with tempfile.TemporaryDirectory() as tmp:
        config = os.path.join(tmp, "schemathesis.toml")
        with open(config, "w", encoding="utf-8") as f:
            f.write(config_toml(ids))
        cmd = [sys.executable, "-m", "schemathesis.cli", "--config-file", config,
               "run", os.path.abspath(args.spec),
               "--url", args.base,
               "--header", f"Authorization: Bearer {TOKEN}",
               "--checks", CHECKS,
               "--mode", "all",
               "--phases", "examples,coverage,fuzzing,stateful",
               "--max-examples", str(args.max_examples),
               "--max-redirects", "0",
               "--generation-database", "none",
               "--request-timeout", "30",
               # One worker: with two threads, CPython 3.11's `ast.parse` (which hypothesis
               # runs to describe its filters) can fail with "SystemError: AST constructor
               # recursion depth mismatch", a crash of the tool, not a finding (the AST
               # converter's depth counter is shared by the interpreter's threads).
               "--workers", "1",
               "--no-color"]
        if args.seed:
            cmd += ["--seed", args.seed]
        env = {**os.environ, "SCHEMATHESIS_HOOKS": "known_bugs", "PYTHONDONTWRITEBYTECODE": "1",
               "PYTHONPATH": HERE + os.pathsep + os.environ.get("PYTHONPATH", "")}
        try:
            rc = subprocess.run(cmd, env=env, cwd=tmp, timeout=args.timeout).returncode
        except subprocess.TimeoutExpired:
            print(f"schemathesis did not finish within {args.timeout} s", file=sys.stderr)
            rc = 1
    print(f"schemathesis_run: exit {rc} in {time.monotonic() - started:.1f} s")
    return rc


if __name__ == "__main__":
    sys.exit(main())

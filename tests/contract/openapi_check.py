"""Checking live HTTP answers against openapi.yaml.

`Spec` loads the document, checks it is valid OpenAPI 3.1, and inlines its `$ref`s; `Recorder` sends requests, records which
documented operation each one exercised, and checks every answer against that operation:

- the status code is documented for it (exactly, as `4XX`, or as `default`);
- the Content-Type is one the documented response lists, and a response documented without
  content has an empty body;
- a JSON body validates against the documented schema (OpenAPI 3.1: JSON Schema 2020-12 with
  the OpenAPI dialect, `null` in type arrays, formats such as `date-time` checked); other types get a sanity check of their own (FDF starts
  with `%FDF-`, an armored OpenPGP message with its header, HTML is a page, text is UTF-8);
- headers documented with `required: true` are present and match their schema.

On top of that, each call states the status its scenario expects, so a server that answers a
documented but wrong status (404 everywhere, say) still fails. Failures are collected, not
raised, so one run reports every mismatch. A failing answer that is exactly the symptom of a
reported server bug (known_bugs.py) is listed as such and not counted.
"""

from __future__ import annotations

import copy
import json
import re
import sys
import urllib.parse
from dataclasses import dataclass, field

import openapi_spec_validator
import openapi_spec_validator.validation.exceptions
import requests
import yaml
from openapi_schema_validator import OAS31Validator, oas31_format_checker

import known_bugs

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def inline_refs(node, root, seen=()):
    """Returns `node` with every local `$ref` replaced by a copy of its target."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            if ref in seen:
                raise ValueError(f"recursive $ref {ref} is not supported here")
            target = root
            for part in ref[2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            return inline_refs(copy.deepcopy(target), root, seen + (ref,))
        return {k: inline_refs(v, root, seen) for k, v in node.items()}
    if isinstance(node, list):
        return [inline_refs(v, root, seen) for v in node]
    return node


class Spec:
    """The OpenAPI document, with references inlined."""

    def __init__(self, path: str):
        with open(path, encoding="utf-8") as f:
            raw = yaml.safe_load(f)
        if not str(raw.get("openapi", "")).startswith("3.1."):
            raise SystemExit(f"{path}: this checker reads OpenAPI 3.1 documents, "
                             f"not {raw.get('openapi')!r}")
        # The document itself against the OpenAPI 3.1 specification's schema (its `webhooks`
        # included, which no request here exercises).
        try:
            openapi_spec_validator.validate(raw)
        except openapi_spec_validator.validation.exceptions.OpenAPIValidationError as e:
            raise SystemExit(f"{path} is not a valid OpenAPI 3.1 document: {e}")
        self.doc = inline_refs(raw, raw)
        self.operations = {}
        for template, item in self.doc.get("paths", {}).items():
            for method in METHODS:
                if method in item:
                    self.operations[(template, method.upper())] = item[method]

    def responses(self, template: str, method: str) -> dict:
        return self.operations[(template, method)].get("responses", {})


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def documented_response(responses: dict, status: int):
    """The response object documented for `status`, or None."""
    for key in (str(status), f"{status // 100}XX", f"{status // 100}xx", "default"):
        if key in responses:
            return responses[key]
    return None


def schema_errors(schema: dict, value) -> list[str]:
    validator = OAS31Validator(schema, format_checker=oas31_format_checker)
    out = []
    for err in sorted(validator.iter_errors(value), key=lambda e: list(e.path)):
        where = "/".join(str(p) for p in err.absolute_path) or "(root)"
        out.append(f"at {where}: {err.message}")
    return out


def body_errors(mt: str, schema: dict | None, body: bytes) -> list[str]:
    """Checks a body against its documented media type and schema."""
    if mt == "application/json" or mt.endswith("+json"):
        try:
            value = json.loads(body)
        except ValueError as e:
            return [f"body is not JSON: {e}"]
        return schema_errors(schema, value) if schema else []
    if mt == "application/vnd.fdf":
        return [] if body.lstrip().startswith(b"%FDF-") else ["body is not an FDF (no %FDF- header)"]
    if mt == "application/pgp-encrypted":
        return [] if body.startswith(b"-----BEGIN PGP MESSAGE-----") else ["not an armored OpenPGP message"]
    if mt.startswith("text/"):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return ["text body is not UTF-8"]
        if mt == "text/html" and "<html" not in text.lower():
            return ["text/html body is not an HTML page"]
    return []


@dataclass
class Outcome:
    """One checked exchange."""

    label: str
    template: str
    method: str
    status: int
    problems: list[str] = field(default_factory=list)
    known_bug: str | None = None


class Recorder:
    """Sends requests and checks each answer against the operation it exercised."""

    def __init__(self, spec: Spec, base: str):
        self.spec = spec
        self.base = base.rstrip("/")
        self.session = requests.Session()
        self.outcomes: list[Outcome] = []

    def call(self, label, method, template, path_params=None, *, expect, token=None,
             **kwargs) -> requests.Response:
        """Sends one request to `template` (its `{name}`s filled from `path_params`) and checks
        the answer; other keyword arguments go to `requests`. `expect` is the status this
        scenario must get."""
        path = template
        for name, value in (path_params or {}).items():
            path = path.replace("{" + name + "}", urllib.parse.quote(str(value), safe=""))
        headers = dict(kwargs.pop("headers", {}) or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        resp = self.session.request(method, self.base + path, headers=headers,
                                    allow_redirects=False, timeout=60, **kwargs)
        out = Outcome(label, template, method, resp.status_code)
        if resp.status_code != expect:
            out.problems.append(f"expected status {expect}, got {resp.status_code}")
        out.problems += self.conformance(template, method, resp)
        if out.problems:
            bug = known_bugs.matching(method, template, resp.status_code,
                                      resp.headers.get("content-type", ""), resp.content)
            out.known_bug = bug["name"] if bug else None
            snippet = resp.content[:300].decode("utf-8", "replace")
            out.problems.append(f"response: {resp.status_code} "
                                f"{resp.headers.get('content-type')!r} {snippet!r}")
        self.outcomes.append(out)
        return resp

    def conformance(self, template, method, resp) -> list[str]:
        if (template, method) not in self.spec.operations:
            return self.undocumented_route(resp)
        documented = documented_response(self.spec.responses(template, method), resp.status_code)
        if documented is None:
            return [f"status {resp.status_code} is not documented for {method} {template}"]
        problems = []
        content = documented.get("content") or {}
        mt = media_type(resp.headers.get("content-type"))
        if not content:
            if resp.content:
                problems.append(f"documented without a body, got {len(resp.content)} bytes ({mt})")
        elif mt not in content:
            problems.append(f"Content-Type {mt or '(none)'} is not one of {sorted(content)}")
        else:
            problems += body_errors(mt, (content[mt] or {}).get("schema"), resp.content)
        for name, header in (documented.get("headers") or {}).items():
            value = resp.headers.get(name)
            if value is None:
                if header.get("required"):
                    problems.append(f"required header {name} is missing")
                continue
            schema = header.get("schema") or {}
            if schema.get("type") == "integer":
                if not re.fullmatch(r"\d+", value):
                    problems.append(f"header {name}: {value!r} is not an integer")
                    continue
                value = int(value)
            problems += [f"header {name} {e}" for e in schema_errors(schema, value)]
        return problems

    def undocumented_route(self, resp) -> list[str]:
        """A path openapi.yaml does not list: under /api/ it must still be a JSON error."""
        if resp.status_code < 400:
            return [f"an undocumented route answered {resp.status_code}"]
        error = self.spec.doc["components"]["schemas"]["Error"]
        mt = media_type(resp.headers.get("content-type"))
        if mt != "application/json":
            return [f"an error under /api/ must be JSON, got {mt or '(none)'}"]
        return body_errors(mt, error, resp.content)

    def check(self, label, template, method, condition: bool, detail: str = ""):
        """A scenario's own assertion, reported like a conformance problem."""
        if not condition:
            self.outcomes.append(Outcome(label, template, method, 0, [f"check failed: {detail}"]))

    def report(self, stream=sys.stdout) -> int:
        """Prints the results and the coverage of documented operations; returns the number of
        failures (known bugs excluded)."""
        failures = 0
        for o in self.outcomes:
            if not o.problems:
                continue
            if o.known_bug:
                print(f"KNOWN BUG ({o.known_bug}): {o.label}: {o.method} {o.template}", file=stream)
                continue
            failures += 1
            print(f"FAIL {o.label}: {o.method} {o.template}", file=stream)
            for p in o.problems:
                print(f"    {p}", file=stream)
        seen_bugs = {o.known_bug for o in self.outcomes}
        for bug in known_bugs.BUGS:
            if bug["name"] not in seen_bugs:
                print(f"NOTE: known bug not seen in this run; if it is fixed, delete its entry "
                      f"in known_bugs.py: {bug['name']}", file=stream)
        seen = {}
        for o in self.outcomes:
            if o.status:
                seen.setdefault((o.template, o.method), set()).add(o.status)
        for (template, method) in sorted(self.spec.operations):
            statuses = seen.get((template, method))
            if not statuses:
                failures += 1
                print(f"FAIL coverage: {method} {template} was never exercised", file=stream)
            else:
                codes = " ".join(str(s) for s in sorted(statuses))
                print(f"covered {method:7} {template:40} {codes}", file=stream)
        checked = len(self.outcomes)
        print(f"{checked} exchanges checked, {failures} failed", file=stream)
        return failures

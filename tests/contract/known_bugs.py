"""Server bugs the contract checks found and reported, accepted here one by one so the suite stays
green until they are fixed. Each entry matches its bug's exact symptom (operation, status,
Content-Type and the start of the body), so any other failure still fails the run.

Used twice: by check_responses.py (the scenario that shows a bug is marked with it) and, as a
schemathesis hooks module (SCHEMATHESIS_HOOKS=known_bugs), by `filter_failure`, which drops only
the failures whose response is one of these symptoms; schemathesis reports how many it dropped,
and this module prints each one it drops on stderr.

When a bug is fixed, delete its entry: check_responses.py then says so if a mark is left over.
"""

from __future__ import annotations

import sys

# None open. (Fixed: undecodable query strings and non-numeric file indexes used to get actix's
# plain-text 400/404 instead of the JSON error; the /api/v1 scope now has Query and Path error
# handlers, and the thank-you page reads its query leniently.)
BUGS: list[dict] = []


def matching(method: str, path: str, status: int, content_type: str, body: bytes):
    """The known bug whose symptom this response is, or None."""
    for bug in BUGS:
        if ((method.upper(), path) in bug["operations"] and status == bug["status"]
                and content_type.lower().startswith("text/plain")
                and body.startswith(bug["body_prefix"])):
            return bug
    return None


try:
    import schemathesis
except ImportError:  # check_responses.py runs without schemathesis installed too
    schemathesis = None

if schemathesis is not None:

    @schemathesis.hook
    def filter_failure(context, failure, case, response) -> bool:
        """Keeps every failure except the symptoms of the bugs above."""
        op = context.operation
        content_type = ";".join(response.headers.get("content-type", []))
        bug = matching(op.method, op.path, response.status_code, content_type, response.content)
        if bug is None:
            return True
        print(f"known bug, failure dropped: {bug['name']}: {op.method.upper()} {op.path} -> "
              f"{response.status_code} ({failure.title})", file=sys.stderr)
        return False

#!/usr/bin/python3
"""Splits a MIME message with Python's own email parser (code nobody here wrote).

parts.py MESSAGE OUTDIR writes OUTDIR/manifest.json: the top-level headers (name, raw value) in
order, and every leaf part with its content type, filename and the file holding its decoded
payload (OUTDIR/part-N).
"""

import email
import email.policy
import json
import os
import sys


def main():
    source, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    with open(source, "rb") as f:
        msg = email.message_from_binary_file(f, policy=email.policy.default)
    manifest = {
        "headers": [[k, str(v)] for k, v in msg.items()],
        "defects": [type(d).__name__ for d in msg.defects],
        "parts": [],
    }
    for i, part in enumerate(msg.walk()):
        if part.is_multipart():
            manifest["parts"].append(
                {"content_type": part.get_content_type(), "multipart": True}
            )
            continue
        path = os.path.join(out, "part-%d" % i)
        with open(path, "wb") as f:
            f.write(part.get_payload(decode=True) or b"")
        manifest["parts"].append(
            {
                "content_type": part.get_content_type(),
                "params": dict(part.get_params() or []),
                "filename": part.get_filename(),
                "disposition": part.get_content_disposition(),
                "file": path,
            }
        )
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


if __name__ == "__main__":
    main()

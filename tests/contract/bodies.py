"""Request bodies in the formats Acrobat sends: FDF, XFDF and a filled PDF form, written out by
hand here (with a correct cross-reference table), so the checks need no PDF library."""

from __future__ import annotations


def pdf_string(text: str) -> bytes:
    """A PDF literal string (ASCII text)."""
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return b"(" + escaped.encode("ascii") + b")"


def fdf(fields: dict[str, str]) -> bytes:
    """An FDF as Acrobat's "Submit as FDF" sends it."""
    entries = b" ".join(b"<< /T " + pdf_string(k) + b" /V " + pdf_string(v) + b" >>"
                        for k, v in fields.items())
    return (b"%FDF-1.2\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /FDF << /Fields [ " + entries
            + b" ] >> >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n")


def xfdf(fields: dict[str, str]) -> bytes:
    """An XFDF (no DTD, no entities) as Acrobat's "Submit as XFDF" sends it."""
    from xml.sax.saxutils import escape, quoteattr

    inner = "".join(f"<field name={quoteattr(k)}><value>{escape(v)}</value></field>"
                    for k, v in fields.items())
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<xfdf xmlns="http://ns.adobe.com/xfdf/" xml:space="preserve">'
            f"<fields>{inner}</fields></xfdf>\n").encode("utf-8")


def pdf_form(fields: dict[str, str]) -> bytes:
    """A one-page PDF whose AcroForm has a filled text field per entry ("Submit as PDF")."""
    n = len(fields)
    field_ids = list(range(4, 4 + n))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R /AcroForm 3 0 R >>",
        b"<< /Type /Pages /Kids [" + str(4 + n).encode() + b" 0 R] /Count 1 >>",
        b"<< /Fields [" + b" ".join(f"{i} 0 R".encode() for i in field_ids) + b"] >>",
    ]
    for (name, value), _ in zip(fields.items(), field_ids):
        objects.append(b"<< /FT /Tx /T " + pdf_string(name) + b" /V " + pdf_string(value)
                       + b" /Type /Annot /Subtype /Widget /Rect [0 0 100 20] /P "
                       + str(4 + n).encode() + b" 0 R >>")
    objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Annots ["
                   + b" ".join(f"{i} 0 R".encode() for i in field_ids) + b"] >>")
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        out += f"{off:010d} 00000 n \n".encode()
    out += (f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\n"
            f"startxref\n{xref}\n%%EOF\n").encode()
    return bytes(out)


def noise(length: int, seed: int = 7) -> bytes:
    """Deterministic pseudo-random bytes, so a file read back can be compared."""
    import hashlib

    out = bytearray()
    counter = 0
    while len(out) < length:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:length])

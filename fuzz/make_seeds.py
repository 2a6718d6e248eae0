#!/usr/bin/env python3
"""Writes the committed seed corpus, fuzz/seeds/<target>/, by hand-written generators (no file
from any outside corpus). Each seed starts with the choice bytes its target reads first (see
fuzz/src/lib.rs `Input` and each target's header). Run from anywhere: python3 fuzz/make_seeds.py
"""
import os
import struct
import zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds")
# Caps::from_input: max_fields = 0x003f % 64 + 1 = 64, max_field_bytes = 0x0fff % 4096 + 1 = 4096.
CAPS = b"\x00\x3f\x0f\xff"
# Tight caps: 2 fields, 8-byte values, so that refusals are seeded too.
TIGHT = b"\x00\x01\x00\x07"


def put(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def urlencoded():
    bodies = {
        "contact": b"email=ann%40example.com&message=hello+world&ok=1",
        "multi": b"tags=a&tags=b&tags=c&x=%ZZ&y=%e9t%C3%A9&&=v&novalue",
        "coords": b"submit.x=12&submit.y=-3&name=Ann&img.x=a&img.y=1",
        "latin1": b"nom=Ren%E9e&ville=Z%FCrich",
        "sjis": b"name=%93%FA%96%7B",
    }
    for charset, (name, body) in enumerate(bodies.items()):
        put("urlencoded", name, CAPS + bytes([charset]) + body)
    put("urlencoded", "tight", TIGHT + b"\x00" + b"a=123456789&b=2&c=3")


def json_fields():
    bodies = {
        "object": b'{"email": "ann@example.com", "n": 3, "f": 1.5e3, "ok": true, "tags": ["x", 2, false]}',
        "escapes": b'{"\\u00e9\\ud83d\\ude00": "a\\nb\\"c", "": "", "dup": 1, "dup": 2}',
        "numbers": b'{"a": -0, "b": 1e308, "c": 18446744073709551615, "d": -9223372036854775808, "e": 1E-7}',
        "bad": b'{"a": {"b": 1}, "c": null}',
    }
    for name, body in bodies.items():
        put("json_fields", name, CAPS + body)
    put("json_fields", "tight", TIGHT + b'{"a": "123456789", "b": [1,2,3,4,5,6,7,8,9], "c": 1}')


def xfdf():
    doc = (b'<?xml version="1.0" encoding="UTF-8"?>\n'
           b'<xfdf xmlns="http://ns.adobe.com/xfdf/" xml:space="preserve">\n'
           b'<f href="form.pdf"/><fields>\n'
           b'<field name="person"><field name="name"><value>Ann &amp; Bob</value></field>'
           b'<field name="city"><value>Z\xc3\xbcrich</value></field></field>\n'
           b'<field name="list"><value>a</value><value>b</value></field>\n'
           b'<field name="long"><value-richtext><body xmlns="http://www.w3.org/1999/xhtml"><p>rich</p></body></value-richtext></field>\n'
           b'<field name="empty"><value></value></field>\n'
           b'</fields><ids original="0A" modified="0B"/></xfdf>\n')
    put("xfdf", "form", CAPS + doc)
    put("xfdf", "dtd", CAPS + b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]>'
        b'<xfdf xmlns="http://ns.adobe.com/xfdf/"><fields><field name="a"><value>&a;</value></field></fields></xfdf>')
    deep = b"".join(b'<field name="n%d">' % i for i in range(70)) + b"<value>x</value>" + b"</field>" * 70
    put("xfdf", "deep", CAPS + b'<xfdf xmlns="http://ns.adobe.com/xfdf/"><fields>' + deep + b"</fields></xfdf>")


def pdf_file(objects, trailer_extra=b"", header=b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"):
    """A PDF (or FDF) with a correct cross-reference table; objects are the bodies of 1..n."""
    out = bytearray(header)
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R %s>>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, trailer_extra, xref)
    return bytes(out)


def stream(data, compress=False):
    if compress:
        data = zlib.compress(data)
        return b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(data) + data + b"\nendstream"
    return b"<< /Length %d >>\nstream\n" % len(data) + data + b"\nendstream"


def pdf():
    utf16 = b"\xfe\xff" + "Zoë ✓".encode("utf-16-be")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R /AcroForm 3 0 R >>",
        b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>",
        b"<< /Fields [5 0 R 6 0 R 7 0 R 8 0 R 9 0 R] /NeedAppearances true >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Annots [5 0 R 6 0 R] >>",
        b"<< /FT /Tx /T (name) /V (" + utf16.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b") /Type /Annot /Subtype /Widget /Rect [0 0 10 10] >>",
        b"<< /FT /Btn /T (agree) /V /Yes /AS /Yes /Type /Annot /Subtype /Widget /Rect [0 0 10 10] >>",
        b"<< /FT /Ch /Ff 2097152 /T (colors) /V [(red) <677265656E>] /Opt [(red) (green) (blue)] >>",
        b"<< /T (person) /Kids [10 0 R 11 0 R] >>",
        b"<< /FT /Tx /T (notes) /V 12 0 R >>",
        b"<< /FT /Tx /Parent 8 0 R /T (city) /V (Z\\374rich) >>",
        b"<< /FT /Btn /Ff 49152 /Parent 8 0 R /T (size) /V /L#c3#a9 /Opt [(Small) (Large)] >>",
        stream(b"A long value held in a stream.\nSecond line.", compress=True),
    ]
    put("pdf", "acroform", CAPS + pdf_file(objects))
    # One string referenced by several fields (what issue 15 item 1 is about).
    shared = [
        b"<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [4 0 R 5 0 R 6 0 R] >> >>",
        b"<< /Type /Pages /Kids [] /Count 0 >>",
        b"(" + b"x" * 64 + b")",
        b"<< /FT /Tx /T (a) /V 3 0 R >>",
        b"<< /FT /Tx /T (b) /V 3 0 R >>",
        b"<< /FT /Tx /T (c) /V 3 0 R >>",
    ]
    put("pdf", "shared-string", CAPS + pdf_file(shared))
    cycle = [
        b"<< /Type /Catalog /AcroForm << /Fields [2 0 R] >> >>",
        b"<< /T (loop) /Kids [3 0 R] >>",
        b"<< /T (back) /Parent 2 0 R /Kids [2 0 R] >>",
    ]
    put("pdf", "cycle", CAPS + pdf_file(cycle))
    put("pdf", "truncated", CAPS + pdf_file(objects)[:400])
    put("pdf", "no-acroform", CAPS + pdf_file([b"<< /Type /Catalog >>"]))


def fdf():
    objects = [
        b"<< /FDF << /F (form.pdf) /Fields [ << /T (name) /V (Ann) >> "
        b"<< /T (person) /Kids [ << /T (city) /V <FEFF005A00FC> >> << /T (zip) /V 2 0 R >> ] >> "
        b"<< /T (agree) /V /Yes >> << /T (list) /V [(a) (b)] >> << /T (notes) /V 3 0 R >> ] >> >>",
        b"(8000)",
        stream(b"long value\nin a stream", compress=True),
    ]
    body = pdf_file(objects, header=b"%FDF-1.2\n%\xe2\xe3\xcf\xd3\n")
    put("fdf", "fields", CAPS + body)
    put("fdf", "minimal", CAPS + b"%FDF-1.2\n1 0 obj\n<< /FDF << /Fields [<< /T (a) /V (b) >>] >> >>\nendobj\n"
        b"trailer\n<< /Root 1 0 R >>\n%%EOF\n")
    put("fdf", "tight", TIGHT + body)


def pdf_text():
    put("pdf_text", "pdfdoc", b"Caf\xe9 \x18\x19 \x80\x9f\xa0 (x)")
    put("pdf_text", "utf16be", b"\xfe\xff" + "Zoë ✓ \U0001F600".encode("utf-16-be") + b"\x00\x1bfr\x00\x1b")
    put("pdf_text", "utf16le", b"\xff\xfe" + "abc".encode("utf-16-le"))
    put("pdf_text", "lone-surrogate", b"\xfe\xff\xd8\x00\x00A")
    put("pdf_text", "utf8", b"\xef\xbb\xbfZo\xc3\xab \xff")


def multipart():
    b = b"b"
    body = (b"preamble\r\n--b\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nAnn\r\n"
            b"--b\r\nContent-Disposition: form-data; name=\"cv\"; filename=\"cv.pdf\"\r\n"
            b"Content-Type: application/pdf\r\n\r\n%PDF-1.4 \r\n-- \r\n--\r\n--b  \r\n"
            b"Content-Disposition: form-data; name=\"empty\"; filename=\"\"\r\n\r\n\r\n--b--\r\nepilogue")
    # raw mode, boundary "b" (mode byte 0), max 0xffff, cuts 3 bytes.
    put("multipart", "raw", b"\x00\xff\xff\x03\x05\x11\x01" + body)
    put("multipart", "raw-too-large", b"\x00\x00\x10\x00" + body)
    put("multipart", "raw-bad-head", b"\x00\xff\xff\x00" + b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--")
    # written mode (odd mode byte), boundary index 1, 2 parts.
    put("multipart", "written", b"\x03\x02" + b"\x04name" + b"\x01" + b"\x06cv.pdf" + b"\x05hello"
        + b"\x03doc" + b"\x02" + b"\x0c\r\n--b\r\n--x\r\n" + b"\x01\x02\x03")


def seal():
    # mode 1: magic and key id 0; mode 3: key id 1; read size 16.
    put("seal_open", "random", b"\x00\x10" + bytes(range(200)))
    put("seal_open", "header-key0", b"\x01\x10" + bytes(300))
    put("seal_open", "header-key1", b"\x03\x00" + bytes(range(256)) * 2)
    put("seal_roundtrip", "small", b"\x00\x01\x07" + b"\x00\x10" + b"\x00\x20" + b"hello, sealed world")
    put("seal_roundtrip", "multi-segment", b"\x27\x03\x10\x80\xff" + b"\x01\x00" + b"\x7f\x00" + bytes(range(256)) * 8)
    put("seal_roundtrip", "empty", b"\x00\x00\x00\x00\x00\x00")


def smime():
    # flags: cipher bit 0, recipients (flags>>1)%3+1; per recipient serial (len+bytes), name len (2).
    put("smime_der", "cbc-one", b"\x00" + b"\x02\x12\x34" + b"\x00\x10" + b"\x00" + b"\x00" + b"hello")
    put("smime_der", "gcm-three", b"\x05" + b"\x01\x7f" + b"\x00\x80" + b"\x14" + bytes(range(1, 21))
        + b"\x01\x00" + b"\x00\x01" + b"\x01\x2b" + b"\x03" + b"\x02\x01\xff" + bytes(range(256)) * 4)
    put("smime_der", "empty", b"\x01\x00\x00\x00\x00\x00")


def email():
    def t(s):
        s = s.encode() if isinstance(s, str) else s
        return bytes([len(s)]) + s
    fields = [("name", "Ann"), ("Subject: x\r\nBcc: evil@example.com", "v\r\n\r\n--=_secureform_mixed_x\r\n"),
              ("=?UTF-8?B?QQ==?=", "Zoë ✓ \u2028 <b>&</b>")]
    files = [("cv", "../../etc/pass\"wd\r\n.pdf", "application/pdf; x=\"\r\nBcc: y\"", b"%PDF-1.4\r\n"),
             ("photo", "Zoë ✓ ünïcode name that is rather long to cross the eighty byte cap of safe names.jpg", "image/jpeg", bytes(range(255)))]
    counts = len(fields) | (len(files) << 3)
    data = bytearray(b"\x01" + bytes([counts]))
    for n, v in fields:
        data += t(n) + t(v)
    for field, name, ctype, content in files:
        data += t(field) + t(name) + t(ctype) + t(content)
    data += t("New submission\r\nBcc: z@example.com {{")
    put("email_mime", "hostile", bytes(data))
    put("email_mime", "plain", b"\x00\x01" + t("email") + t("ann@example.com") + t("Hello"))


for gen in (urlencoded, json_fields, xfdf, pdf, fdf, pdf_text, multipart, seal, smime, email):
    gen()

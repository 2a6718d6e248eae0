//! The filled form of [`super::build::filled_form_pdf`] as Acrobat submits it in FDF, XFDF and
//! HTML format, and what each format must yield.

use serde_json::{json, Value};

/// What each format of the filled form yields, in order. FDF, XFDF and the HTML format carry
/// no field flags, so there a multi-select list with one item selected is one value.
pub fn expected(format: &str) -> Value {
    let mut v = json!({
        "name": "Zoë O’Brien",
        "email": "zoe@example.com",
        "message": "line one\rline two",
        "comment": "",
        "subscribe": "Yes",
        "newsletter": "Off",
        "agree": "I agree ✓",
        "contact": "phone",
        "language": "日本語",
        "country": "France",
        "topics": ["billing", "support"],
        "one_topic": ["support"],
        "size": "M",
        "person.name": "Zoë",
        "person.address.city": "Zürich",
        "person.address.zip": "8001",
        "Straße ☃": "Grüße 😀",
        "姓名": "张三"
    });
    if format != "pdf" {
        v["one_topic"] = json!("support");
    }
    if format == "xfdf" {
        v["notes"] = json!("Bold move\rNext");
    }
    v
}

/// The order of [`expected`]'s names (serde_json's map sorts them).
pub fn expected_order(format: &str) -> Vec<&'static str> {
    let mut names = vec![
        "name",
        "email",
        "message",
        "comment",
        "subscribe",
        "newsletter",
        "agree",
        "contact",
        "language",
        "country",
        "topics",
        "one_topic",
        "size",
        "person.name",
        "person.address.city",
        "person.address.zip",
        "Straße ☃",
        "姓名",
    ];
    if format == "xfdf" {
        names.insert(4, "notes");
    }
    names
}

/// The filled form as Acrobat submits it in FDF: no cross-reference table, the message in a
/// stream, checkbox and radio states as names with `#xx` escapes (UTF-8), UTF-16BE and
/// PDFDocEncoding strings, `person` as a tree of `/Kids`, the Submit button's `/T` with no
/// value, and the PDF's own path in `/F` (which the answer must never echo).
pub const FDF: &[u8] = b"%FDF-1.2\n%\xE2\xE3\xCF\xD3\n1 0 obj\n<< /FDF << /Fields [\n\
<< /T (name) /V (Zo\\353 O\\220Brien) >>\n\
<< /T (email) /V (zoe@example.com) >>\n\
<< /T (message) /V 2 0 R >>\n\
<< /T (comment) /V () >>\n\
<< /T (subscribe) /V /Yes >>\n\
<< /T (newsletter) /V /Off >>\n\
<< /T (agree) /V /I#20agree#20#E2#9C#93 >>\n\
<< /T (contact) /V /phone >>\n\
<< /T (language) /V /#E6#97#A5#E6#9C#AC#E8#AA#9E >>\n\
<< /T (country) /V (France) >>\n\
<< /T (topics) /V [(billing) (support)] >>\n\
<< /T (one_topic) /V (support) >>\n\
<< /T (size) /V (M) >>\n\
<< /T (person) /Kids [ << /T (name) /V <FEFF005A006F00EB> >>\n\
   << /T (address) /Kids [ << /T (city) /V <FEFF005A00FC0072006900630068> >> << /T (zip) /V (8001) >> ] >> ] >>\n\
<< /T <FEFF005300740072006100DF006500202603> /V <FEFF0047007200FC00DF00650020D83DDE00> >>\n\
<< /T <FEFF59D3540D> /V (\\376\\377\\137\\040\\116\\011) >>\n\
<< /T (submit) >>\n\
] /F (file:///C:/Users/zoe/secret-path/form.pdf) /ID [<0A1B> <2C3D>] >> >>\nendobj\n\
2 0 obj\n<< /Length 17 >>\nstream\nline one\rline two\nendstream\nendobj\n\
trailer\n<< /Root 1 0 R >>\n%%EOF\n";

/// The filled form as Acrobat submits it in XFDF, with a rich-text field `notes`.
pub const XFDF: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<xfdf xmlns="http://ns.adobe.com/xfdf/" xml:space="preserve">
  <f href="file:///C:/Users/zoe/secret-path/form.pdf"/>
  <fields>
    <field name="name"><value>Zoë O’Brien</value></field>
    <field name="email"><value>zoe@example.com</value></field>
    <field name="message"><value>line one&#13;line two</value></field>
    <field name="comment"><value></value></field>
    <field name="notes"><value-richtext><body xmlns="http://www.w3.org/1999/xhtml"><p>Bold <b>move</b></p><p>Next</p></body></value-richtext></field>
    <field name="subscribe"><value>Yes</value></field>
    <field name="newsletter"><value>Off</value></field>
    <field name="agree"><value>I agree ✓</value></field>
    <field name="contact"><value>phone</value></field>
    <field name="language"><value>日本語</value></field>
    <field name="country"><value>France</value></field>
    <field name="topics"><value>billing</value><value>support</value></field>
    <field name="one_topic"><value>support</value></field>
    <field name="size"><value>M</value></field>
    <field name="person">
      <field name="name"><value>Zoë</value></field>
      <field name="address">
        <field name="city"><value>Zürich</value></field>
        <field name="zip"><value>8001</value></field>
      </field>
    </field>
    <field name="Straße ☃"><value>Grüße 😀</value></field>
    <field name="姓名"><value>张三</value></field>
    <field name="submit"/>
  </fields>
  <ids original="0A1B" modified="2C3D"/>
</xfdf>
"#;

/// The filled form in Acrobat's HTML format (fully qualified names, UTF-8 here), with the
/// SubmitCoordinates pair of the Submit button.
pub fn html_format() -> Vec<u8> {
    let enc = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    let pairs = [
        ("name", "Zoë O’Brien"),
        ("email", "zoe@example.com"),
        ("message", "line one\rline two"),
        ("comment", ""),
        ("subscribe", "Yes"),
        ("newsletter", "Off"),
        ("agree", "I agree ✓"),
        ("contact", "phone"),
        ("language", "日本語"),
        ("country", "France"),
        ("topics", "billing"),
        ("topics", "support"),
        ("one_topic", "support"),
        ("size", "M"),
        ("person.name", "Zoë"),
        ("person.address.city", "Zürich"),
        ("person.address.zip", "8001"),
        ("Straße ☃", "Grüße 😀"),
        ("姓名", "张三"),
        ("submit.x", "31"),
        ("submit.y", "7"),
    ];
    let body: Vec<String> = pairs
        .iter()
        .map(|(n, v)| format!("{}={}", enc(n), enc(v)))
        .collect();
    body.join("&").into_bytes()
}

//! Acrobat's HTML format sends the host's code page and no charset: bodies are percent-decoded
//! to bytes, then decoded with the form's `charset` (default: UTF-8 when valid, otherwise
//! windows-1252), exactly, and never lossily.

use encoding_rs::{Encoding, GBK, WINDOWS_1252};
use serde_json::{json, Value};

use super::*;

/// Percent-encodes every byte that is not alphanumeric, as Acrobat does.
fn pct(bytes: &[u8]) -> String {
    percent_encoding::percent_encode(bytes, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A urlencoded body of `pairs`, each name and value encoded in `encoding` first.
fn body_in(encoding: &'static Encoding, pairs: &[(&str, &str)]) -> Vec<u8> {
    let encode = |s: &str| {
        let (bytes, _, unmappable) = encoding.encode(s);
        assert!(
            !unmappable,
            "{s} is not representable in {}",
            encoding.name()
        );
        pct(&bytes)
    };
    let all: Vec<String> = pairs
        .iter()
        .map(|(n, v)| format!("{}={}", encode(n), encode(v)))
        .collect();
    all.join("&").into_bytes()
}

/// Posts as Acrobat's HTML format, with Accept: application/json to get the id back.
fn submit(server: &Server, form: &str, body: Vec<u8>) -> Answer {
    post(
        server,
        form,
        "application/x-www-form-urlencoded",
        Some("application/json"),
        body,
    )
}

fn fields_of(server: &Server, answer: &Answer) -> Value {
    let (s, json, _) = submission(server, &json_id(answer));
    assert_eq!(json["source"], "urlencoded");
    serde_json::to_value(&s.fields).unwrap()
}

fn error_code(answer: &Answer) -> (u16, String) {
    let v: Value = serde_json::from_slice(&answer.body).unwrap();
    (
        answer.status,
        v["error"]["code"].as_str().unwrap().to_owned(),
    )
}

fn server() -> Server {
    Server::with_config(&config(
        "",
        &[
            ("western", "charset = \"windows-1252\""),
            ("chinese", "charset = \"gbk\""),
            ("auto", ""),
            ("strict", "charset = \"utf-8\""),
        ],
    ))
}

#[test]
fn windows_1252_and_gbk_bodies_are_decoded_exactly() {
    let server = server();
    // Every printable windows-1252 character above ASCII, in a name and in a value.
    let high: String = (0x80u8..=0xFF)
        .filter(|b| ![0x81, 0x8D, 0x8F, 0x90, 0x9D].contains(b))
        .map(|b| {
            WINDOWS_1252
                .decode_without_bom_handling(&[b])
                .0
                .into_owned()
        })
        .collect();
    let western = [
        ("name", "Zoë O’Brien"),
        ("Straße", "Grüße – „quoted“ € 5"),
        ("all", high.as_str()),
        ("topics", "billing"),
        ("topics", "support"),
        ("Submit.x", "31"),
        ("Submit.y", "7"),
    ];
    let body = body_in(WINDOWS_1252, &western);
    assert!(
        contains(&body, b"%EB") && contains(&body, b"%92"),
        "not windows-1252"
    );
    let got = fields_of(&server, &submit(&server, "western", body));
    assert_eq!(
        got,
        json!({"name": "Zoë O’Brien", "Straße": "Grüße – „quoted“ € 5", "all": high,
               "topics": ["billing", "support"]})
    );

    let chinese = [
        ("姓名", "张三"),
        ("地址", "北京市朝阳区建国路８８号"),
        ("备注", "你好，世界！"),
        ("Submit.x", "5"),
        ("Submit.y", "12"),
    ];
    let body = body_in(GBK, &chinese);
    assert!(
        std::str::from_utf8(&percent_encoding::percent_decode(&body).collect::<Vec<_>>()).is_err()
    );
    let got = fields_of(&server, &submit(&server, "chinese", body));
    assert_eq!(
        got,
        json!({"姓名": "张三", "地址": "北京市朝阳区建国路８８号", "备注": "你好，世界！"})
    );
    // A byte sequence that is not GBK (a lead byte with no trail byte) is refused, not replaced.
    let answer = submit(&server, "chinese", b"name=%D5%C5%81".to_vec());
    assert_eq!(error_code(&answer), (400, "invalid_charset".to_owned()));
}

#[test]
fn without_a_charset_utf8_else_windows_1252_and_a_utf8_charset_is_strict() {
    let server = server();
    // Valid UTF-8: read as UTF-8.
    let got = fields_of(
        &server,
        &submit(&server, "auto", b"name=Z%C3%BCrich&x=%E2%82%AC".to_vec()),
    );
    assert_eq!(got, json!({"name": "Zürich", "x": "€"}));
    // Not UTF-8: the whole submission is windows-1252 (one decision per submission).
    let got = fields_of(
        &server,
        &submit(&server, "auto", b"name=Z%FCrich&x=%80&y=%C3%BC".to_vec()),
    );
    assert_eq!(got, json!({"name": "Zürich", "x": "€", "y": "Ã¼"}));
    // charset = "utf-8": invalid bytes are a 400, never a replacement character.
    let answer = submit(&server, "strict", b"name=Z%FCrich".to_vec());
    assert_eq!(error_code(&answer), (400, "invalid_charset".to_owned()));
    let got = fields_of(
        &server,
        &submit(&server, "strict", b"name=Z%C3%BCrich".to_vec()),
    );
    assert_eq!(got, json!({"name": "Zürich"}));
    // The same body to the windows-1252 form: read as windows-1252, byte for byte.
    let got = fields_of(
        &server,
        &submit(&server, "western", b"name=Z%C3%BCrich".to_vec()),
    );
    assert_eq!(got, json!({"name": "ZÃ¼rich"}));
}

#[test]
fn submit_coordinates_are_dropped_and_nothing_else() {
    let server = server();
    let body = b"name=a&Submit.x=12&Submit.y=34&size.x=wide&other.x=3&Send.x=-1&Send.y=0".to_vec();
    let got = fields_of(&server, &submit(&server, "auto", body));
    // A pair of numeric `.x`/`.y` is a click position; a lone `.x` or a text value is a field.
    assert_eq!(got, json!({"name": "a", "size.x": "wide", "other.x": "3"}));
}

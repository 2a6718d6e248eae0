//! Hostile input gets a 4xx with a machine-readable reason, and the server keeps serving.

use std::io::{Read, Write};
use std::net::TcpStream;

use crate::support::*;

fn error_code(resp: reqwest::blocking::Response) -> (u16, String) {
    let status = resp.status().as_u16();
    let v: serde_json::Value = resp.json().unwrap();
    (status, v["error"]["code"].as_str().unwrap_or("").to_owned())
}

#[test]
fn each_refusal_has_its_status_and_code_and_the_server_lives_on() {
    let server = Server::with_config(
        r#"
[limits]
max_body_bytes = 1048576
max_upload_bytes = 4194304
max_fields = 1000
max_field_bytes = 65536

[forms.contact]
sinks = ["docs"]

[sinks.docs]
type = "documents"
"#,
    );
    let url = server.url("/f/contact");
    let json = |ct: &str, body: Vec<u8>| {
        client()
            .post(&url)
            .header("content-type", ct)
            .header("accept", "application/json")
            .body(body)
            .send()
            .unwrap()
    };

    // Oversized body.
    let (s, c) = error_code(json(
        "application/x-www-form-urlencoded",
        vec![b'a'; 2 * 1024 * 1024],
    ));
    assert_eq!((s, c.as_str()), (413, "body_too_large"));
    // 10,000 fields.
    let many: String = (0..10_000).map(|i| format!("f{i}=x&")).collect();
    let (s, c) = error_code(json("application/x-www-form-urlencoded", many.into_bytes()));
    assert_eq!((s, c.as_str()), (413, "too_many_fields"));
    // One field over the size limit.
    let (s, c) = error_code(json(
        "application/x-www-form-urlencoded",
        format!("big={}", "y".repeat(70_000)).into_bytes(),
    ));
    assert_eq!((s, c.as_str()), (413, "field_too_large"));
    // Malformed JSON.
    let (s, c) = error_code(json("application/json", b"{\"a\": [1, ".to_vec()));
    assert_eq!((s, c.as_str()), (400, "malformed_json"));
    // Unknown form.
    let resp = client()
        .post(server.url("/f/nope"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .unwrap();
    assert_eq!(error_code(resp), (404, "unknown_form".to_owned()));
    // Unsupported type.
    let (s, c) = error_code(json("text/plain", b"hello".to_vec()));
    assert_eq!((s, c.as_str()), (415, "unsupported_media_type"));
    // Multipart over the upload limit.
    let form = reqwest::blocking::multipart::Form::new().part(
        "f",
        reqwest::blocking::multipart::Part::bytes(vec![0u8; 5 * 1024 * 1024]).file_name("x.bin"),
    );
    let resp = client()
        .post(&url)
        .header("accept", "application/json")
        .multipart(form)
        .send()
        .unwrap();
    assert_eq!(error_code(resp), (413, "body_too_large".to_owned()));

    // A truncated multipart body: the client closes its side mid-part.
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&addr).unwrap();
    let partial = "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nhello\r\n--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"t.bin\"\r\n\r\nsome bytes and then noth";
    write!(
        stream,
        "POST /f/contact HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\nContent-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: {}\r\n\r\n{partial}",
        partial.len() + 500
    )
    .unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("multipart_malformed"), "{answer}");

    // Malformed multipart (a body with no boundary at all).
    let (s, c) = error_code(json(
        "multipart/form-data; boundary=abc",
        b"garbage".to_vec(),
    ));
    assert_eq!((s, c.as_str()), (400, "multipart_malformed"));
    // A part whose headers run past 8 KiB, and a chunked multipart body that never ends (no
    // Content-Length to refuse it by: it is cut off at the upload limit as it is read).
    let long_head = format!(
        "--b\r\nContent-Disposition: form-data; name=\"a\"\r\nX-Pad: {}\r\n\r\nv\r\n--b--",
        "p".repeat(9000)
    );
    let (s, c) = error_code(json(
        "multipart/form-data; boundary=b",
        long_head.into_bytes(),
    ));
    assert_eq!((s, c.as_str()), (400, "multipart_malformed"));
    let head = b"--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x\"\r\n\r\n";
    let endless = std::io::Cursor::new(head.to_vec()).chain(std::io::repeat(b'z').take(6 << 20));
    let resp = client()
        .post(&url)
        .header("content-type", "multipart/form-data; boundary=b")
        .header("accept", "application/json")
        .body(reqwest::blocking::Body::new(endless))
        .send()
        .unwrap();
    assert_eq!(error_code(resp), (413, "body_too_large".to_owned()));

    // Still serving, and no half-written upload is left in the spool.
    let ok = client().get(server.url("/healthz")).send().unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    let (s, _) = (
        json("application/json", b"{\"a\":1}".to_vec())
            .status()
            .as_u16(),
        (),
    );
    assert_eq!(s, 201);
    let leftovers = std::fs::read_dir(server.dir.join("secureform-data/spool/files"))
        .unwrap()
        .count();
    assert!(leftovers <= 1, "{leftovers} spool folders left");
}

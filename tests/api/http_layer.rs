//! The HTTP layer's own answers (issue 15 items 6, 20, 21, 23): slow bodies cut off with 408,
//! wrong methods and unknown paths in the error shape, the API's query bounds, and the bearer
//! scheme in any case.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::Digest;

use crate::support::*;

const TOKEN: &str = "sf-http-layer-token";

fn config() -> String {
    let hash = hex::encode(sha2::Sha256::digest(TOKEN.as_bytes()));
    format!(
        r#"
[limits]
body_read_secs = 3
upload_read_secs = 3600
min_body_bytes_per_sec = 100

[forms.contact]
sinks = ["docs"]

[sinks.docs]
type = "documents"

[tokens.reader]
sha256 = "{hash}"
scopes = ["read", "submit"]
forms = ["contact"]
"#
    )
}

/// Status, `Allow` header and error code of an answer that must be JSON.
fn json_error(resp: reqwest::blocking::Response) -> (u16, String, String) {
    let status = resp.status().as_u16();
    let allow = resp
        .headers()
        .get("allow")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("application/json"), "{status}: {ct}");
    let v: Value = resp.json().unwrap();
    let code = v["error"]["code"].as_str().unwrap().to_owned();
    assert!(v["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
    (status, allow, code)
}

#[test]
fn wrong_methods_unknown_paths_and_api_queries_answer_in_the_error_shape() {
    let server = Server::with_config(&config());
    let c = client();
    let send = |method: &str, path: &str, accept: &str| {
        c.request(method.parse().unwrap(), server.url(path))
            .header("accept", accept)
            .send()
            .unwrap()
    };
    // Item 20: a known path with the wrong method is 405 with Allow, in the client's shape.
    assert_eq!(
        json_error(send("GET", "/f/contact", "application/json")),
        (405, "POST, OPTIONS".into(), "method_not_allowed".into())
    );
    let page = send("GET", "/f/contact", "text/html");
    assert_eq!(page.status().as_u16(), 405);
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(page.text().unwrap().contains("<html"));
    assert_eq!(
        json_error(send("DELETE", "/healthz", "*/*")),
        (405, "GET".into(), "method_not_allowed".into())
    );
    assert_eq!(
        json_error(send("PUT", "/api/v1/forms", "*/*")),
        (405, "GET".into(), "method_not_allowed".into())
    );
    assert_eq!(
        json_error(send("GET", "/api/v1/forms/contact/submissions", "*/*")),
        (405, "POST".into(), "method_not_allowed".into())
    );
    // Unknown paths, and path segments that do not parse, are 404 in the shape.
    assert_eq!(
        json_error(send("GET", "/nothing/here", "application/json")),
        (404, String::new(), "not_found".into())
    );
    assert_eq!(
        json_error(send("POST", "/f/contact/extra", "application/json")),
        (404, String::new(), "not_found".into())
    );

    // A 1 MiB header: actix-http answers 431 itself (no body: no request was read) and closes.
    assert!(
        oversized_head(&server).starts_with("HTTP/1.1 431"),
        "no 431 for a 1 MiB header"
    );

    // Item 23: the scheme is case-insensitive.
    let forms = |auth: &str| {
        c.get(server.url("/api/v1/forms"))
            .header("authorization", auth)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(forms(&format!("Bearer {TOKEN}")), 200);
    assert_eq!(forms(&format!("bearer {TOKEN}")), 200);
    assert_eq!(forms(&format!("BEARER {TOKEN}")), 200);
    assert_eq!(forms(&format!("Basic {TOKEN}")), 401);

    // Item 21: `limit` outside what openapi.yaml allows is refused, not clamped.
    let documents = |query: &str| {
        c.get(server.url(&format!("/api/v1/documents{query}")))
            .bearer_auth(TOKEN)
            .send()
            .unwrap()
    };
    assert_eq!(documents("?limit=500").status().as_u16(), 200);
    for bad in ["?limit=501", "?limit=0", "?limit=-1", "?limit=x"] {
        assert_eq!(
            json_error(documents(bad)),
            (400, String::new(), "invalid_query".into()),
            "{bad}"
        );
    }
}

/// Sends a request whose one header is 1 MiB, over a raw socket, and returns the answer (what
/// arrived before the server closed, even if it then reset the connection).
fn oversized_head(server: &Server) -> String {
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&addr).unwrap();
    let mut head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    head.extend(std::iter::repeat_n(b'a', 1 << 20));
    head.extend_from_slice(b"\r\n\r\n");
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let _ = writer.write_all(&head);
    });
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let _ = sender.join();
    String::from_utf8_lossy(&answer).into_owned()
}

/// Writes `head`, then one byte of body a second (the body never completes), and returns what
/// the server answers. Gives up after 40 s.
fn dribble(server: &Server, head: String) -> (String, Duration) {
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    let mut writer = stream.try_clone().unwrap();
    std::thread::spawn(move || {
        for _ in 0..40 {
            if writer.write_all(b"x").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    stream
        .set_read_timeout(Some(Duration::from_secs(40)))
        .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

/// Item 6: a body sent one byte a second is cut off, by the whole-body deadline (a form post)
/// or by the minimum rate (an upload, whose deadline is an hour), and answered 408.
#[test]
fn a_slow_body_is_cut_off_with_408() {
    let server = Server::with_config(&config());
    let urlencoded = String::from(
        "POST /f/contact HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\na=",
    );
    let multipart = String::from(
        "POST /f/contact HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n\
         Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n\
         --b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x\"\r\n\r\n",
    );
    // A head that never ends is actix's to cut off (client_request_timeout, 10 s): a bare 408.
    let head = String::from("POST /f/contact HTTP/1.1\r\nHost: x\r\nX-Slow: ");
    let [form, upload, head] = std::thread::scope(|s| {
        let form = s.spawn(|| dribble(&server, urlencoded));
        let upload = s.spawn(|| dribble(&server, multipart));
        let head = s.spawn(|| dribble(&server, head));
        [form, upload, head].map(|t| t.join().unwrap())
    });
    for (answer, took) in [form, upload] {
        assert!(
            answer.starts_with("HTTP/1.1 408"),
            "after {took:?}: {answer}"
        );
        assert!(answer.contains("\"body_timeout\""), "{answer}");
        assert!(took < Duration::from_secs(30), "{took:?}");
    }
    let (answer, took) = head;
    assert!(
        answer.starts_with("HTTP/1.1 408"),
        "after {took:?}: {answer}"
    );
    assert!(took < Duration::from_secs(30), "{took:?}");
    let ok = client().get(server.url("/healthz")).send().unwrap();
    assert_eq!(ok.status().as_u16(), 200);
}

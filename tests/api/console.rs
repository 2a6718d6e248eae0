//! The web console (issue 18): off by default; sign-in with a `read` token for a server-side
//! session in an `HttpOnly`, `SameSite=Strict` cookie; CSRF token and same-origin check on every
//! state-changing request; strict CSP and `no-store`; a form the token may not read is not
//! listed; sign-out ends the session for good.

use reqwest::blocking::Response;
use sha2::Digest;

use crate::support::*;

pub(crate) const READER: &str = "reader-token-0123456789abcdef";
const SUBMITTER: &str = "submit-only-token-0123456789";

pub(crate) fn token_lines(name: &str, token: &str, scopes: &str, forms: &str) -> String {
    let hash = hex::encode(sha2::Sha256::digest(token.as_bytes()));
    format!("[tokens.{name}]\nsha256 = \"{hash}\"\nscopes = [{scopes}]\nforms = [{forms}]\n")
}

fn config(console: bool) -> String {
    let mut c = String::from(
        "[sinks.docs]\ntype = \"documents\"\n\n\
         [forms.alpha]\nsinks = [\"docs\"]\n\n[forms.bravo]\nsinks = [\"docs\"]\n\n",
    );
    if console {
        c.push_str("[console]\nenabled = true\n\n");
    }
    c.push_str(&token_lines("front-desk", READER, "\"read\"", "\"alpha\""));
    c.push_str(&token_lines("kiosk", SUBMITTER, "\"submit\"", "\"*\""));
    c
}

/// The value a `Set-Cookie` of the answer gives cookie `name`, with the attributes.
pub(crate) fn set_cookie(resp: &Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

pub(crate) fn cookie_value(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .and_then(|kv| kv.split_once('='))
        .map(|(_, v)| v.to_owned())
        .unwrap()
}

/// The value of the hidden `csrf` field of `form_id` in `html`.
pub(crate) fn csrf_of(html: &str, form_id: &str) -> String {
    let form = html.split(&format!("id=\"{form_id}\"")).nth(1).unwrap();
    let rest = form.split("name=\"csrf\" value=\"").nth(1).unwrap();
    rest.split('"').next().unwrap().to_owned()
}

pub(crate) struct Browser<'a> {
    pub(crate) server: &'a Server,
    pub(crate) origin: String,
}

impl Browser<'_> {
    pub(crate) fn get(&self, path: &str, cookies: &str) -> Response {
        client()
            .get(self.server.url(path))
            .header("cookie", cookies)
            .send()
            .unwrap()
    }

    pub(crate) fn post(
        &self,
        path: &str,
        cookies: &str,
        body: &str,
        origin: Option<&str>,
    ) -> Response {
        let mut req = client()
            .post(self.server.url(path))
            .header("cookie", cookies)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_owned());
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        req.send().unwrap()
    }

    /// Loads the sign-in page and posts `token`; returns the answer to the post.
    pub(crate) fn sign_in(&self, token: &str) -> Response {
        let page = self.get("/console/", "");
        let login = cookie_value(&set_cookie(&page, "sf_console_login").unwrap());
        let csrf = csrf_of(&page.text().unwrap(), "sign-in");
        assert_eq!(login, csrf);
        self.post(
            "/console/sign-in",
            &format!("sf_console_login={login}"),
            &format!("csrf={csrf}&token={token}"),
            Some(&self.origin),
        )
    }
}

pub(crate) fn assert_private(resp: &Response) {
    let h = resp.headers();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("script-src"),
        "{csp}"
    );
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["x-content-type-options"], "nosniff");
}

#[test]
fn the_console_is_off_unless_enabled() {
    let server = Server::with_config(&config(false));
    for path in ["/console/", "/console/static/console.css"] {
        let resp = client().get(server.url(path)).send().unwrap();
        assert_eq!(resp.status(), 404, "{path}");
    }
    let resp = client()
        .post(server.url("/console/sign-in"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf=x&token={READER}"))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 404);
}

#[test]
fn sign_in_session_csrf_and_sign_out() {
    let server = Server::with_config(&config(true));
    let b = Browser {
        server: &server,
        origin: server.base.trim_end_matches('/').to_owned(),
    };

    // The sign-in page: private headers, a CSRF cookie matching its form, no script.
    let page = b.get("/console/", "");
    assert_eq!(page.status(), 200);
    assert_private(&page);
    let login = set_cookie(&page, "sf_console_login").unwrap();
    assert!(
        login.contains("HttpOnly") && login.contains("SameSite=Strict"),
        "{login}"
    );
    let html = page.text().unwrap();
    assert!(!html.contains("<script"), "{html}");
    assert!(html.contains("<label for=\"token\">"), "{html}");

    // A wrong token and a token without `read` are refused, and no session cookie is set.
    let resp = b.sign_in("not-a-token");
    assert_eq!(resp.status(), 401);
    assert!(set_cookie(&resp, "sf_console").is_none());
    let resp = b.sign_in(SUBMITTER);
    assert_eq!(resp.status(), 403);
    assert!(set_cookie(&resp, "sf_console").is_none());
    assert!(resp.text().unwrap().contains("read scope"));

    // Sign-in without the CSRF cookie, with a wrong one, or from another origin: refused.
    let page = b.get("/console/", "");
    let login = cookie_value(&set_cookie(&page, "sf_console_login").unwrap());
    let origin = b.origin.clone();
    for (cookies, csrf, origin) in [
        (String::new(), login.clone(), Some(origin.as_str())),
        (
            format!("sf_console_login={login}"),
            "0".repeat(64),
            Some(origin.as_str()),
        ),
        (
            format!("sf_console_login={login}"),
            login.clone(),
            Some("http://evil.example"),
        ),
    ] {
        let resp = b.post(
            "/console/sign-in",
            &cookies,
            &format!("csrf={csrf}&token={READER}"),
            origin,
        );
        assert_eq!(resp.status(), 403, "{cookies} {csrf} {origin:?}");
        assert!(set_cookie(&resp, "sf_console").is_none());
    }

    // A `read` token: a session cookie, HttpOnly, SameSite=Strict, not Secure over plain HTTP.
    let resp = b.sign_in(READER);
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/console/");
    let set = set_cookie(&resp, "sf_console").unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    assert!(
        set.contains("Path=/console/") && !set.contains("Secure"),
        "{set}"
    );
    let session = cookie_value(&set);
    assert_eq!(session.len(), 64);
    assert!(
        !server.log_text().contains(&session),
        "the session id is logged"
    );
    assert!(!server.log_text().contains(READER), "the token is logged");
    let cookies = format!("sf_console={session}");

    // The inbox lists form alpha (the token's), never bravo.
    let inbox = b.get("/console/", &cookies);
    assert_eq!(inbox.status(), 200);
    assert_private(&inbox);
    let html = inbox.text().unwrap();
    assert!(html.contains("id=\"forms\""), "{html}");
    assert!(
        html.contains(">alpha<") && !html.contains("bravo"),
        "{html}"
    );
    assert!(html.contains("front-desk") && html.contains("Encrypted at rest"));
    let csrf = csrf_of(&html, "sign-out");
    assert_ne!(csrf, session);

    // Sign-out from another origin, or without the session's CSRF token: refused, and the
    // session still works.
    for (body, origin) in [
        (format!("csrf={csrf}"), Some("http://evil.example")),
        (
            "csrf=".to_owned() + &"0".repeat(64),
            Some(b.origin.as_str()),
        ),
    ] {
        let resp = b.post("/console/sign-out", &cookies, &body, origin);
        assert_eq!(resp.status(), 403, "{body} {origin:?}");
    }
    let resp = client()
        .post(server.url("/console/sign-out"))
        .header("cookie", &cookies)
        .header("sec-fetch-site", "cross-site")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}"))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert!(b
        .get("/console/", &cookies)
        .text()
        .unwrap()
        .contains("id=\"forms\""));

    // Sign-out: the cookie is cleared and the old session id no longer works.
    let resp = b.post(
        "/console/sign-out",
        &cookies,
        &format!("csrf={csrf}"),
        Some(&b.origin),
    );
    assert_eq!(resp.status(), 303);
    let cleared = set_cookie(&resp, "sf_console").unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let after = b.get("/console/", &cookies).text().unwrap();
    assert!(!after.contains("id=\"forms\"") && after.contains("id=\"sign-in\""));

    // The stylesheet is served from the console itself.
    let css = b.get("/console/static/console.css", "");
    assert_eq!(css.status(), 200);
    assert!(css.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/css"));
    assert!(css.text().unwrap().contains("prefers-color-scheme:dark"));
}

/// Posts a multipart submission to `form`, written by hand so that names go on the wire as
/// they are (quotes escaped as browsers do); returns its id.
pub(crate) fn post(
    server: &Server,
    form: &str,
    fields: &[(&str, &str)],
    file: Option<(&str, Vec<u8>)>,
) -> String {
    let boundary = "console-test-boundary-7f3a";
    let quote = |s: &str| s.replace('"', "%22");
    let mut body = Vec::new();
    for (k, v) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"\r\n\r\n{v}\r\n",
                quote(k)
            )
            .as_bytes(),
        );
    }
    if let Some((name, bytes)) = file {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"scan\"; filename=\"{}\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n",
                quote(name)
            )
            .as_bytes(),
        );
        body.extend_from_slice(&bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let resp = client()
        .post(server.url(&format!("/f/{form}")))
        .header("accept", "application/json")
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .unwrap();
    let status = resp.status().as_u16();
    let v: serde_json::Value = resp.json().unwrap();
    assert_eq!(status, 201, "{v}");
    v["id"].as_str().unwrap().to_owned()
}

#[test]
fn inbox_submission_page_and_download_are_escaped_scoped_and_audited() {
    const ADMIN: &str = "admin-token-0123456789abcdef";
    let mut toml = config(true);
    toml.push_str(&token_lines("auditor", ADMIN, "\"admin\"", "\"*\""));
    let server = Server::with_config(&toml);
    let b = Browser {
        server: &server,
        origin: server.base.trim_end_matches('/').to_owned(),
    };
    let file = noise(70_000, 18);
    let id = post(
        &server,
        "alpha",
        &[
            ("name", "Zoë 報告 ✓"),
            (
                "<script>alert(1)</script>",
                "\"><img src=x onerror=alert(2)>",
            ),
            ("site", "javascript:alert(3)"),
        ],
        Some(("../Zoë <scan>.bin", file.clone())),
    );
    let other = post(&server, "bravo", &[("secret", "bravo-only")], None);
    server.wait_for_doc(&id);
    server.wait_for_doc(&other);

    let resp = b.sign_in(READER);
    let cookies = format!(
        "sf_console={}",
        cookie_value(&set_cookie(&resp, "sf_console").unwrap())
    );

    // Not signed in: sent to the sign-in page, nothing shown.
    let resp = b.get(&format!("/console/submissions/docs/{id}"), "");
    assert_eq!(resp.status(), 303);

    // The list of form alpha: the submission, its file count, its delivery state.
    let list = b.get("/console/forms/alpha", &cookies);
    assert_eq!(list.status(), 200);
    assert_private(&list);
    let html = list.text().unwrap();
    assert!(
        html.contains(&format!("/console/submissions/docs/{id}")),
        "{html}"
    );
    assert!(!html.contains(&other), "{html}");
    assert!(html.contains("docs: delivered"), "{html}");
    // Its summary: the first fields, escaped; reading it is in the audit log (checked below).
    assert!(
        html.contains(
            "<span class=\"field\">&lt;script&gt;alert(1)&lt;/script&gt;:</span> \
             &quot;&gt;&lt;img src=x onerror=alert(2)&gt;"
        ),
        "{html}"
    );
    assert!(html.contains("name:</span> Zoë 報告 ✓"), "{html}");
    assert!(
        !html.contains("<script") && !html.contains("<img"),
        "{html}"
    );

    // Form bravo is out of the token's reach: 404 for its list and its submission.
    assert_eq!(b.get("/console/forms/bravo", &cookies).status(), 404);
    let resp = b.get(&format!("/console/submissions/docs/{other}"), &cookies);
    assert_eq!(resp.status(), 404);
    assert!(!resp.text().unwrap().contains("bravo-only"));
    assert_eq!(
        b.get(
            &format!("/console/submissions/docs/{other}/files/0"),
            &cookies
        )
        .status(),
        404
    );
    assert_eq!(
        b.get("/console/submissions/docs/not-an-id", &cookies)
            .status(),
        404
    );

    // The submission page: every field, escaped; nothing hostile survives as markup.
    let page = b.get(&format!("/console/submissions/docs/{id}"), &cookies);
    assert_eq!(page.status(), 200);
    assert_private(&page);
    let html = page.text().unwrap();
    assert!(html.contains("Zoë 報告 ✓"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert!(
        html.contains("&quot;&gt;&lt;img src=x onerror=alert(2)&gt;"),
        "{html}"
    );
    assert!(
        !html.contains("<script") && !html.contains("<img"),
        "{html}"
    );
    assert!(!html.contains("href=\"javascript:"), "{html}");
    assert!(html.contains("Decrypted on the server with the service key"));
    assert!(html.contains("Zoë scan.bin"), "{html}");

    // The download: byte-exact, an attachment with the sanitized name.
    let resp = b.get(&format!("/console/submissions/docs/{id}/files/0"), &cookies);
    assert_eq!(resp.status(), 200);
    assert_private(&resp);
    let cd = resp.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cd.starts_with("attachment; filename=\"Zo_ scan.bin\""),
        "{cd}"
    );
    assert!(cd.contains("filename*=UTF-8''Zo%C3%AB%20scan.bin"), "{cd}");
    assert_eq!(resp.bytes().unwrap().to_vec(), file);
    assert_eq!(
        b.get(&format!("/console/submissions/docs/{id}/files/1"), &cookies)
            .status(),
        404
    );

    // The export: CSV as Python's csv module reads it, formulas guarded; JSON lines.
    let day = &id_day(&server, &id);
    let formula = post(
        &server,
        "alpha",
        &[("name", "=HYPERLINK(\"http://x\")"), ("n", "-5")],
        None,
    );
    server.wait_for_doc(&formula);
    let resp = b.get(
        &format!("/console/forms/alpha/export?format=csv&from={day}&to=2999-12-31"),
        &cookies,
    );
    assert_eq!(resp.status(), 200);
    assert_private(&resp);
    assert!(resp.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment;"));
    let csv_bytes = resp.bytes().unwrap().to_vec();
    let dir = tempdir();
    std::fs::write(dir.join("export.csv"), &csv_bytes).unwrap();
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg("import csv,json,sys; print(json.dumps(list(csv.DictReader(open(sys.argv[1], newline='', encoding='utf-8')))))")
        .arg(dir.join("export.csv"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0]["id"], id.as_str());
    assert_eq!(rows[0]["name"], "Zoë 報告 ✓");
    assert_eq!(
        rows[0]["<script>alert(1)</script>"],
        "\"><img src=x onerror=alert(2)>"
    );
    assert_eq!(rows[1]["name"], "'=HYPERLINK(\"http://x\")");
    assert_eq!(rows[1]["n"], "'-5");
    assert!(rows.iter().all(|r| r["form"] == "alpha"));
    let resp = b.get(
        &format!("/console/forms/alpha/export?format=jsonl&from={day}&to=2999-12-31"),
        &cookies,
    );
    assert_eq!(resp.status(), 200);
    let text = resp.text().unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["fields"]["name"], "Zoë 報告 ✓");
    // A range before the submissions: an empty export; another form's: 404; bad dates: 400.
    let resp = b.get(
        "/console/forms/alpha/export?format=jsonl&from=2000-01-01&to=2000-01-02",
        &cookies,
    );
    assert_eq!(resp.text().unwrap(), "");
    assert_eq!(
        b.get(
            &format!("/console/forms/bravo/export?format=csv&from={day}&to={day}"),
            &cookies
        )
        .status(),
        404
    );
    assert_eq!(
        b.get(
            "/console/forms/alpha/export?format=csv&from=x&to=y",
            &cookies
        )
        .status(),
        400
    );

    // Both reads are in the audit log with the token's name.
    let audit: serde_json::Value = client()
        .get(server.url("/api/v1/audit"))
        .bearer_auth(ADMIN)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let entries = audit["entries"].as_array().unwrap();
    for action in [
        "console_read_submission",
        "console_read_file",
        "console_export",
    ] {
        assert!(
            entries.iter().any(|e| e["action"] == action
                && e["token"] == "front-desk"
                && e["document_id"] == id.as_str()),
            "{action} missing: {audit}"
        );
    }
    assert!(
        !entries.iter().any(|e| e["document_id"] == other.as_str()),
        "{audit}"
    );
    // Logs carry ids, never the values or file names.
    let log = server.log_text();
    assert!(!log.contains("Zoë") && !log.contains("onerror"), "{log}");
}

/// The UTC day a submission was received on, from the API's view of it.
fn id_day(server: &Server, id: &str) -> String {
    let out = server.cli(&["docs", "list", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let doc = v
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == id)
        .unwrap();
    doc["received_at"].as_str().unwrap()[..10].to_owned()
}

/// The console in headless Chromium (tests/browser/console.mjs): keyboard sign-in, the inbox, a
/// submission with unicode and XSS payloads rendered inert (no dialog, no request leaving the
/// console), a byte-exact download, screenshots at desktop and 360 px, sign-out after which
/// the old cookie opens nothing; then an admin deletes it by keyboard through the confirmation
/// page (screenshots too).
#[test]
fn the_console_in_a_real_browser() {
    use crate::browser::{artifacts_dir, require_tools, CHROMIUM};
    require_tools();
    const ADMIN: &str = "browser-admin-token-0123456789";
    let mut toml = config(true);
    toml.push_str(&token_lines(
        "ops",
        ADMIN,
        "\"read\", \"admin\"",
        "\"alpha\"",
    ));
    let server = Server::with_config(&toml);
    let file = noise(50_000, 1818);
    let id = post(
        &server,
        "alpha",
        &[
            ("name", "Zoë 報告 ✓"),
            (
                "<script>alert(1)</script>",
                "\"><img src=x onerror=alert(2)>",
            ),
            ("site", "javascript:alert(3)"),
            ("\"><img src=x onerror=alert(4)>", "<svg onload=alert(5)>"),
        ],
        Some(("Zoë.bin", file.clone())),
    );
    server.wait_for_doc(&id);
    let dir = tempdir();
    let input = serde_json::json!({
        "base": server.base.trim_end_matches('/'),
        "token": READER,
        "admin_token": ADMIN,
        "id": id,
        "chromium": CHROMIUM,
        "artifacts": artifacts_dir(),
    });
    let results = crate::browser::run_node_script("console.mjs", &input, &dir, "");
    let downloaded = std::fs::read(results["download"].as_str().unwrap()).unwrap();
    assert_eq!(downloaded, file, "the download is not byte-exact");
    assert_eq!(results["suggested"], "Zoë.bin");
    for name in ["inbox", "list", "submission", "confirm"] {
        for shot in results["screenshots"][name].as_array().unwrap() {
            assert!(std::fs::metadata(shot.as_str().unwrap()).unwrap().len() > 1000);
        }
    }
}

/// Scope `admin` sees "Retry failed deliveries" on a submission with a dead delivery; it needs
/// the session's CSRF token; a `read`-only token sees no button and is refused.
#[test]
fn an_admin_retries_dead_deliveries_with_csrf() {
    use secureform_testkit::sshd::keygen;
    const ADMIN: &str = "console-admin-token-0123456789";
    let keys = tempdir();
    let client_key = keygen(&keys, "id_ed25519", &["-t", "ed25519"], "");
    // A port where nothing listens: the SFTP delivery fails and, at one attempt, is dead.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let toml = format!(
        "[dispatch]\nmax_attempts = 1\n\n[console]\nenabled = true\n\n\
         [forms.alpha]\nsinks = [\"docs\", \"gone\"]\n\n[sinks.docs]\ntype = \"documents\"\n\n\
         [sinks.gone]\ntype = \"sftp\"\nhost = \"127.0.0.1\"\nport = {port}\nuser = \"root\"\n\
         private_key_file = \"{key}\"\n\
         host_key_sha256 = \"SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU\"\n\
         path = \"/tmp\"\ntimeout_secs = 2\n\n{}{}",
        token_lines("ops", ADMIN, "\"read\", \"admin\"", "\"*\""),
        token_lines("front-desk", READER, "\"read\"", "\"alpha\""),
        key = client_key.display(),
    );
    let server = Server::with_config(&toml);
    let b = Browser {
        server: &server,
        origin: server.base.trim_end_matches('/').to_owned(),
    };
    let id = post(&server, "alpha", &[("name", "retry me")], None);
    server.wait_for_doc(&id);
    let admin = format!(
        "sf_console={}",
        cookie_value(&set_cookie(&b.sign_in(ADMIN), "sf_console").unwrap())
    );
    let path = format!("/console/submissions/docs/{id}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let html = loop {
        let html = b.get(&path, &admin).text().unwrap();
        if html.contains("id=\"retry\"") {
            break html;
        }
        assert!(std::time::Instant::now() < deadline, "never dead: {html}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert!(html.contains("failed"), "{html}");
    let csrf = csrf_of(&html, "retry");

    // A read-only token: no button, and the POST is refused.
    let reader = format!(
        "sf_console={}",
        cookie_value(&set_cookie(&b.sign_in(READER), "sf_console").unwrap())
    );
    let page = b.get(&path, &reader).text().unwrap();
    assert!(!page.contains("id=\"retry\""), "{page}");
    let reader_csrf = csrf_of(&page, "sign-out");
    let resp = b.post(
        &format!("{path}/retry"),
        &reader,
        &format!("csrf={reader_csrf}"),
        Some(&b.origin),
    );
    assert_eq!(resp.status(), 403);

    // Without the CSRF token: refused. With it: re-queued (attempts go on), back to the page.
    let resp = b.post(
        &format!("{path}/retry"),
        &admin,
        "csrf=nope",
        Some(&b.origin),
    );
    assert_eq!(resp.status(), 403);
    let resp = b.post(
        &format!("{path}/retry"),
        &admin,
        &format!("csrf={csrf}"),
        Some(&b.origin),
    );
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], path.as_str());
    // The log line is read from the server's stderr by another thread: wait for it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !server
        .log_text()
        .contains("console: dead deliveries re-queued")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            server.log_text()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // Audited with the signed-in token's name, before anything changed.
    let audit: serde_json::Value = client()
        .get(server.url("/api/v1/audit"))
        .bearer_auth(ADMIN)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(
        audit["entries"].as_array().unwrap().iter().any(|e| {
            e["action"] == "retry" && e["document_id"] == id.as_str() && e["token"] == "ops"
        }),
        "{audit}"
    );
}

/// Scope `admin` sees "Delete this submission…", which leads to a confirmation page whose form
/// (with the session's CSRF token) erases the submission from the Documents sink and from the
/// spool (its pending delivery ends), audited with the token's name and the reason `console`;
/// then the submission is a 404 everywhere. A `read`-only token, a missing or wrong CSRF token,
/// a cross-site request and another form's submission change nothing.
#[test]
fn an_admin_deletes_a_submission_with_confirmation_and_csrf() {
    use secureform_testkit::sshd::keygen;
    const ADMIN: &str = "console-admin-token-0123456789";
    let keys = tempdir();
    let client_key = keygen(&keys, "id_ed25519", &["-t", "ed25519"], "");
    // A port where nothing listens: the SFTP delivery stays pending (retrying) in the spool.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let toml = format!(
        "[console]\nenabled = true\n\n\
         [forms.alpha]\nsinks = [\"docs\", \"gone\"]\n\n[forms.bravo]\nsinks = [\"docs\"]\n\n\
         [sinks.docs]\ntype = \"documents\"\n\n\
         [sinks.gone]\ntype = \"sftp\"\nhost = \"127.0.0.1\"\nport = {port}\nuser = \"root\"\n\
         private_key_file = \"{key}\"\n\
         host_key_sha256 = \"SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU\"\n\
         path = \"/tmp\"\ntimeout_secs = 2\n\n{}{}{}",
        token_lines("ops", ADMIN, "\"read\", \"admin\"", "\"alpha\""),
        token_lines("front-desk", READER, "\"read\"", "\"alpha\""),
        token_lines(
            "auditor",
            "auditor-token-0123456789abcdef",
            "\"read\", \"admin\"",
            "\"*\""
        ),
        key = client_key.display(),
    );
    let server = Server::with_config(&toml);
    let b = Browser {
        server: &server,
        origin: server.base.trim_end_matches('/').to_owned(),
    };
    let id = post(&server, "alpha", &[("name", "delete me")], None);
    let other = post(&server, "bravo", &[("name", "not yours")], None);
    server.wait_for_doc(&id);
    server.wait_for_doc(&other);
    let admin = format!(
        "sf_console={}",
        cookie_value(&set_cookie(&b.sign_in(ADMIN), "sf_console").unwrap())
    );
    let reader = format!(
        "sf_console={}",
        cookie_value(&set_cookie(&b.sign_in(READER), "sf_console").unwrap())
    );
    let path = format!("/console/submissions/docs/{id}");

    // The admin's page has the button (a GET to the confirmation page); the reader's has none.
    let html = b.get(&path, &admin).text().unwrap();
    assert!(html.contains("id=\"delete\""), "{html}");
    assert!(
        html.contains(&format!("action=\"{path}/delete\"")),
        "{html}"
    );
    let page = b.get(&path, &reader).text().unwrap();
    assert!(!page.contains("id=\"delete\""), "{page}");
    let reader_csrf = csrf_of(&page, "sign-out");

    // The confirmation page: the warning, the POST form with the CSRF token, a way back.
    let confirm = b.get(&format!("{path}/delete"), &admin);
    assert_eq!(confirm.status(), 200);
    assert_private(&confirm);
    let confirm = confirm.text().unwrap();
    assert!(
        confirm.contains("Delete this submission? This cannot be undone."),
        "{confirm}"
    );
    assert!(
        confirm.contains("id=\"cancel\"") && confirm.contains("method=\"post\""),
        "{confirm}"
    );
    assert!(!confirm.contains("delete me"), "{confirm}");
    let csrf = csrf_of(&confirm, "delete");
    assert_eq!(csrf, csrf_of(&html, "sign-out"));
    assert_eq!(b.get(&format!("{path}/delete"), &reader).status(), 403);

    // Refused: a read-only token, no or a wrong CSRF token, cross-site, another form's.
    let resp = b.post(
        &format!("{path}/delete"),
        &reader,
        &format!("csrf={reader_csrf}"),
        Some(&b.origin),
    );
    assert_eq!(resp.status(), 403);
    for body in ["csrf=nope", "csrf="] {
        let resp = b.post(&format!("{path}/delete"), &admin, body, Some(&b.origin));
        assert_eq!(resp.status(), 403, "{body}");
    }
    let resp = b.post(
        &format!("{path}/delete"),
        &admin,
        &format!("csrf={csrf}"),
        Some("https://evil.example"),
    );
    assert_eq!(resp.status(), 403);
    let resp = client()
        .post(server.url(&format!("{path}/delete")))
        .header("cookie", &admin)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "cross-site")
        .body(format!("csrf={csrf}"))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 403);
    let resp = b.post(
        &format!("/console/submissions/docs/{other}/delete"),
        &admin,
        &format!("csrf={csrf}"),
        Some(&b.origin),
    );
    assert_eq!(resp.status(), 404);
    assert_eq!(b.get(&path, &admin).status(), 200, "still there");
    let audit = |token: &str| -> serde_json::Value {
        client()
            .get(server.url("/api/v1/audit"))
            .bearer_auth(token)
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    let before = audit(ADMIN);
    assert!(
        !before["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"].as_str().unwrap().starts_with("erase_")),
        "{before}"
    );

    // Deleted: back to the form's list, which says so (and nothing more).
    let resp = b.post(
        &format!("{path}/delete"),
        &admin,
        &format!("csrf={csrf}"),
        Some(&b.origin),
    );
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/console/forms/alpha?deleted=1");
    let list = b
        .get("/console/forms/alpha?deleted=1", &admin)
        .text()
        .unwrap();
    assert!(list.contains("The submission was deleted."), "{list}");
    assert!(!list.contains(id.as_str()), "{list}");
    assert!(!b
        .get("/console/forms/alpha", &admin)
        .text()
        .unwrap()
        .contains("The submission was deleted."));

    // Gone from the console and the API.
    assert_eq!(b.get(&path, &admin).status(), 404);
    assert_eq!(b.get(&format!("{path}/delete"), &admin).status(), 404);
    for api in [
        format!("/api/v1/documents/{id}"),
        format!("/api/v1/submissions/{id}"),
    ] {
        let resp = client()
            .get(server.url(&api))
            .bearer_auth(ADMIN)
            .send()
            .unwrap();
        assert_eq!(resp.status(), 404, "{api}");
    }
    // A second delete finds nothing.
    let resp = b.post(
        &format!("{path}/delete"),
        &admin,
        &format!("csrf={csrf}"),
        Some(&b.origin),
    );
    assert_eq!(resp.status(), 404);
    // The other form's submission is untouched.
    let resp = client()
        .get(server.url(&format!("/api/v1/documents/{other}")))
        .bearer_auth("auditor-token-0123456789abcdef")
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);

    // Audited with the token's name and the reason `console`, in the spool and the store.
    let after = audit(ADMIN);
    let entries = after["entries"].as_array().unwrap();
    for action in ["erase_submission", "erase_document"] {
        assert!(
            entries.iter().any(|e| e["action"] == action
                && e["token"] == "ops"
                && e["reason"] == "console"
                && e["document_id"] == id.as_str()),
            "{action} missing: {after}"
        );
    }
    let document = entries
        .iter()
        .find(|e| e["action"] == "erase_document")
        .unwrap();
    assert!(
        document["detail"]
            .as_str()
            .unwrap()
            .starts_with("sink=docs "),
        "{document}"
    );
    let submission = entries
        .iter()
        .find(|e| e["action"] == "erase_submission")
        .unwrap();
    assert_eq!(submission["detail"], "deliveries_ended=1", "{submission}");
    // The logs carry the id, never the values.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !server.log_text().contains("console: submission deleted") {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            server.log_text()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(!server.log_text().contains("delete me"));
}

//! A tiny static web server for the example pages of `examples/web`, on its own loopback port, so
//! that the pages have a real `http://` origin different from SecureForm's. Each page is served
//! under a prefix naming the SecureForm form it should post to: the one thing a site owner edits
//! in an example (its action, `http://127.0.0.1:8080/f/contact`) is replaced by that form's URL.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Where every example page posts, as shipped.
pub const SHIPPED_ENDPOINT: &str = "http://127.0.0.1:8080/f/contact";

/// The example pages served.
pub const PAGES: [&str; 3] = ["contact.html", "apply.html", "fetch.html"];

/// The page a form's `redirect` points at in the tests.
pub const DONE_PAGE: &str = "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>Sent</title></head><body><main><h1 id=\"done\">Sent, thank you</h1></main></body></html>";

type Routes = Arc<Mutex<HashMap<String, String>>>;

/// A running static site. Stopped on drop.
pub struct Site {
    /// `http://127.0.0.1:PORT`, the pages' origin.
    pub origin: String,
    addr: SocketAddr,
    routes: Routes,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Site {
    /// Starts serving `/done`; pages come with [`Site::route`]. The origin is known at once,
    /// so that a SecureForm configuration can name it before the routes name SecureForm.
    pub fn start() -> Site {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let routes = Routes::default();
        let shared = Arc::clone(&routes);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    let routes = Arc::clone(&shared);
                    std::thread::spawn(move || serve(stream, &routes));
                }
            }
        });
        Site {
            origin: format!("http://{addr}"),
            addr,
            routes,
            stop,
            thread: Some(thread),
        }
    }

    /// Serves the example pages under `/{prefix}/`, posting to `endpoint`.
    pub fn route(&self, prefix: &str, endpoint: &str) {
        self.routes
            .lock()
            .unwrap()
            .insert(prefix.to_owned(), endpoint.to_owned());
    }

    /// The URL of a page under a prefix.
    pub fn page(&self, prefix: &str, page: &str) -> String {
        format!("{}/{prefix}/{page}", self.origin)
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The folder of the example pages.
pub fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join("web")
}

/// One request, one answer, then the connection is closed.
fn serve(mut stream: TcpStream, routes: &Mutex<HashMap<String, String>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head);
    let mut words = head.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, body) = match (method, answer(path, routes)) {
        ("GET", Some(body)) => ("200 OK", body),
        _ => ("404 Not Found", "not found\n".to_owned()),
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
Cache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.flush();
}

fn answer(path: &str, routes: &Mutex<HashMap<String, String>>) -> Option<String> {
    if path == "/done" {
        return Some(DONE_PAGE.to_owned());
    }
    let (prefix, page) = path.strip_prefix('/')?.split_once('/')?;
    let endpoint = routes.lock().ok()?.get(prefix)?.clone();
    if !PAGES.contains(&page) {
        return None;
    }
    let html = std::fs::read_to_string(examples_dir().join(page)).ok()?;
    Some(html.replace(SHIPPED_ENDPOINT, &endpoint))
}

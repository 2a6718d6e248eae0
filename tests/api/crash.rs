//! Accepted means durable: a `kill -9` right after the last 2xx loses nothing, and a restart
//! delivers every acknowledged submission exactly once.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::support::*;

#[test]
fn kill_9_after_the_last_answer_loses_nothing() {
    let server = Server::embedded();
    let url = server.url("/f/contact");
    let ids: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let url = url.clone();
                scope.spawn(move || {
                    let c = client();
                    (0..25)
                        .map(|i| {
                            let resp = c
                                .post(&url)
                                .header("content-type", "application/json")
                                .body(format!(r#"{{"thread":{t},"n":{i}}}"#))
                                .send()
                                .unwrap();
                            assert_eq!(resp.status().as_u16(), 201);
                            let v: serde_json::Value = resp.json().unwrap();
                            v["id"].as_str().unwrap().to_owned()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert_eq!(ids.len(), 100);
    let (dir, config) = server.kill9();

    let server = Server::start_in(&dir, config);
    let wanted: BTreeSet<String> = ids.iter().cloned().collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let stored = server.doc_ids();
        let unique: BTreeSet<String> = stored.iter().cloned().collect();
        assert_eq!(unique.len(), stored.len(), "a document is listed twice");
        if wanted.is_subset(&unique) {
            assert_eq!(
                unique.len(),
                100,
                "more documents than acknowledged submissions"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "missing after restart: {:?}",
            wanted.difference(&unique).count()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Each one opens, with its own fields.
    for id in ids.iter().take(5) {
        let (doc, _) = server.doc(id, &[]);
        assert!(doc["fields"]["n"].is_number());
    }
}

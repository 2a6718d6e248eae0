//! The real-world corpus in `../shared/corpus/` (34 PDFs and 43 FDF/XFDF files from public PDF
//! projects, with readings by pypdf, pdftk and qpdf), posted over HTTP when the folder exists
//! (or `$SECUREFORM_CORPUS`). Without it, these tests print a notice and pass: the project's
//! own fixtures (`formats`, `hostile`) stand on their own.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::*;

fn corpus_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("SECUREFORM_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpus")));
    if dir.is_dir() {
        Some(dir)
    } else {
        println!(
            "NOTICE corpus: {} not found; corpus checks not run",
            dir.display()
        );
        None
    }
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut all: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    all.sort();
    all
}

/// Deliberate differences from a value all three tools agree on, each decided by ISO 32000-1:
/// (file, field, our value as JSON). The same list as `src/ingest/pdf/tests/corpus.rs`.
const DELIBERATE: &[(&str, &str, &str)] = &[
    // A list with the MultiSelect flag (table 230) and one item selected: a list of one.
    ("pdfjs__issue15096.pdf", "List Box8", r#"["item4"]"#),
];

/// A value cut short for printing: corpus values can be long.
fn short(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(100) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

/// A server whose form takes whatever a real PDF holds.
fn corpus_server() -> Server {
    Server::with_config(&config(
        "max_body_bytes = 67108864\nmax_fields = 10000\nmax_field_bytes = 1048576",
        &[("corpus", "")],
    ))
}

/// Posts every corpus PDF; returns, per file, the id and the stored fields.
fn post_pdfs(server: &Server, dir: &Path) -> BTreeMap<String, (String, Value)> {
    let mut posted = Vec::new();
    for pdf in files(&dir.join("pdf"), "pdf") {
        let file = pdf.file_name().unwrap().to_string_lossy().into_owned();
        let body = std::fs::read(&pdf).unwrap();
        let answer = post(server, "corpus", "application/pdf", None, body.clone());
        let id = accepted_fdf(&answer, &file);
        posted.push((file, id, body));
    }
    let ids: Vec<String> = posted.iter().map(|(_, id, _)| id.clone()).collect();
    wait_for_docs(server, &ids);
    let mut out = BTreeMap::new();
    for (file, id, body) in posted {
        let (s, json, stored) = submission(server, &id);
        assert_eq!(json["source"], "pdf", "{file}");
        // The PDF is file 0, byte for byte.
        assert_eq!(s.files.len(), 1, "{file}");
        assert_eq!(s.files[0].sha256, sha256_hex(&body), "{file}");
        assert_eq!(s.files[0].size, body.len() as u64, "{file}");
        assert_eq!(sha256_hex(&stored[0]), sha256_hex(&body), "{file}");
        out.insert(file, (id, json["fields"].clone()));
    }
    out
}

#[test]
fn corpus_pdfs_posted_over_http_match_the_agreed_values() {
    let Some(dir) = corpus_dir() else { return };
    let server = corpus_server();
    let stored = post_pdfs(&server, &dir);
    let (mut total, mut matched) = (0usize, 0usize);
    let mut mismatches = Vec::new();
    for (file, (_, fields)) in &stored {
        let expected: Value = serde_json::from_slice(
            &std::fs::read(dir.join("expected").join(format!("{file}.json"))).unwrap(),
        )
        .unwrap();
        let ours = |name: &str| fields.get(name).cloned().unwrap_or(Value::Null);
        for (name, want) in expected["agreed_values"].as_object().unwrap() {
            total += 1;
            let got = ours(name);
            if &got == want {
                matched += 1;
                continue;
            }
            let deliberate = DELIBERATE.iter().any(|(f, n, v)| {
                f == file && n == name && serde_json::from_str::<Value>(v).unwrap() == got
            });
            let tag = if deliberate { "deliberate" } else { "MISMATCH" };
            mismatches.push(format!(
                "{tag} {file}: {name:?}: ours {}, agreed {}",
                short(&got),
                short(want)
            ));
        }
        for d in expected["disagreements"].as_array().unwrap() {
            if let Some(name) = d["field"].as_str() {
                let ours = ours(name);
                let agree: Vec<&String> = d["values"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .filter(|(_, v)| **v == ours)
                    .map(|(tool, _)| tool)
                    .collect();
                println!(
                    "disagreement {file}: {name:?}: ours {} (as {agree:?}); tools {}",
                    short(&ours),
                    short(&d["values"])
                );
            }
        }
    }
    let rate = matched as f64 / total as f64;
    println!(
        "HTTP corpus: {} PDFs, {matched} of {total} agreed values matched ({:.2}%)",
        stored.len(),
        rate * 100.0
    );
    for m in &mismatches {
        println!("  {m}");
    }
    assert_eq!(stored.len(), 34);
    assert!(rate >= 0.99, "match rate {rate}");
    let unexplained: Vec<&String> = mismatches
        .iter()
        .filter(|m| !m.starts_with("deliberate"))
        .collect();
    assert!(
        unexplained.is_empty(),
        "unexplained mismatches: {unexplained:#?}"
    );
}

/// Whether the value read from a pdftk FDF is the value read from its PDF. pdftk writes
/// multi-select values as `/V ()`: it loses them, we do not; and FDF has no field flags, so one
/// selected item is one value there.
fn same_as_pdf(pdf: &Value, fdf: Option<&Value>) -> bool {
    match pdf {
        Value::Array(all) => {
            fdf == Some(pdf)
                || fdf == Some(&Value::from(""))
                || (all.len() == 1 && fdf == all.first())
        }
        _ => fdf == Some(pdf),
    }
}

#[test]
fn corpus_fdf_and_xfdf_files_are_accepted_and_pdftk_fdfs_match_their_pdfs() {
    let Some(dir) = corpus_dir() else { return };
    let server = corpus_server();
    let pdfs = post_pdfs(&server, &dir);
    let fdf_dir = dir.join("fdf");
    let mut posted = Vec::new();
    for path in files(&fdf_dir, "fdf")
        .into_iter()
        .chain(files(&fdf_dir, "xfdf"))
    {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let xml = name.ends_with(".xfdf");
        let ct = if xml {
            "application/vnd.adobe.xfdf"
        } else {
            "application/vnd.fdf"
        };
        let answer = post(&server, "corpus", ct, None, std::fs::read(&path).unwrap());
        let id = accepted_fdf(&answer, &name);
        posted.push((name, path, id, xml));
    }
    assert_eq!(posted.len(), 43);
    let ids: Vec<String> = posted.iter().map(|(_, _, id, _)| id.clone()).collect();
    wait_for_docs(&server, &ids);
    let (mut compared, mut differ) = (0usize, Vec::new());
    for (name, path, id, xml) in &posted {
        let (s, json, _) = submission(&server, id);
        assert_eq!(json["source"], if *xml { "xfdf" } else { "fdf" }, "{name}");
        println!("{name}: {} fields", s.fields.len());
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        let Some((_, from_pdf)) = pdfs.get(&format!("{stem}.pdf")) else {
            continue;
        };
        for (field, value) in from_pdf.as_object().unwrap() {
            compared += 1;
            let theirs = json["fields"].get(field);
            // The radio group `Group1` has kids that are fields named `Group1` too (each with
            // its own /V); pdftk folds them into one field `Group1` with the last kid's /V.
            let pdftk_folds = stem == "pdfjs__issue15096" && field == "Group1.Group1";
            if !same_as_pdf(value, theirs) && !pdftk_folds {
                differ.push(format!(
                    "{stem}: {field:?}: pdf {}, fdf {}",
                    short(value),
                    short(theirs.unwrap_or(&Value::Null))
                ));
            }
        }
    }
    println!("pdftk FDFs over HTTP: {compared} fields compared with their PDFs");
    assert!(differ.is_empty(), "{differ:#?}");
    assert!(compared > 250, "{compared}");
}

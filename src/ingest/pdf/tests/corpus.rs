//! The real-world corpus in `../shared/corpus/` (PDFs and FDF/XFDF files from public PDF
//! projects, with readings by pypdf, pdftk and qpdf), read from there when the folder exists.
//! Set `SECUREFORM_CORPUS` to read it from elsewhere.

use std::path::{Path, PathBuf};

use secureform_contract::{FieldValue, Fields, Scalar};
use serde_json::Value;

use super::super::*;

fn corpus_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("SECUREFORM_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpus")));
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("corpus: {} not found; corpus checks not run", dir.display());
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

/// Our value as the corpus writes values: null when absent, a string, or a list.
fn as_json(value: Option<&FieldValue>) -> Value {
    let text = |s: &Scalar| Value::String(s.to_text());
    match value {
        None => Value::Null,
        Some(FieldValue::One(s)) => text(s),
        Some(FieldValue::Many(all)) => Value::Array(all.iter().map(text).collect()),
    }
}

/// Deliberate differences from a value all three tools agree on, each decided by
/// ISO 32000-1: (file, field, our value as JSON).
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

#[test]
fn corpus_pdfs_match_the_agreed_values() {
    let Some(dir) = corpus_dir() else { return };
    let limits = PdfLimits::default();
    let (mut total, mut matched) = (0usize, 0usize);
    let mut mismatches = Vec::new();
    for pdf in files(&dir.join("pdf"), "pdf") {
        let file = pdf.file_name().unwrap().to_string_lossy().into_owned();
        let expected: Value = serde_json::from_slice(
            &std::fs::read(dir.join("expected").join(format!("{file}.json"))).unwrap(),
        )
        .unwrap();
        let body = std::fs::read(&pdf).unwrap();
        assert_eq!(sniff(&body), Some(PdfKind::Pdf), "{file}");
        let fields = match parse_pdf(&body, &limits) {
            Ok(f) => f,
            Err(e) => {
                mismatches.push(format!("{file}: refused: {}", e.code()));
                Fields::new()
            }
        };
        for (name, want) in expected["agreed_values"].as_object().unwrap() {
            total += 1;
            let got = as_json(fields.get(name));
            if &got == want {
                matched += 1;
            } else {
                let deliberate = DELIBERATE.iter().any(|(f, n, v)| {
                    *f == file && n == name && serde_json::from_str::<Value>(v).unwrap() == got
                });
                let tag = if deliberate { "deliberate" } else { "MISMATCH" };
                mismatches.push(format!(
                    "{tag} {file}: {name:?}: ours {}, agreed {}",
                    short(&got),
                    short(want)
                ));
            }
        }
        for d in expected["disagreements"].as_array().unwrap() {
            if let Some(name) = d["field"].as_str() {
                let ours = as_json(fields.get(name));
                println!(
                    "disagreement {file}: {name:?}: ours {}; tools {}",
                    short(&ours),
                    short(&d["values"])
                );
            }
        }
    }
    let rate = matched as f64 / total as f64;
    println!(
        "corpus: {matched} of {total} agreed values matched ({:.2}%)",
        rate * 100.0
    );
    for m in &mismatches {
        println!("  {m}");
    }
    let unexplained = mismatches
        .iter()
        .filter(|m| !m.starts_with("deliberate"))
        .count();
    assert!(rate >= 0.99, "match rate {rate}");
    assert_eq!(unexplained, 0, "unexplained mismatches: {mismatches:#?}");
}

/// Where the tools disagree, the value ISO 32000 gives.
#[test]
fn corpus_disagreements_are_decided_by_the_spec() {
    let Some(dir) = corpus_dir() else { return };
    let read = |file: &str| {
        parse_pdf(
            &std::fs::read(dir.join("pdf").join(file)).unwrap(),
            &PdfLimits::default(),
        )
        .unwrap()
    };
    let fancy = read("pdflib__fancy_fields.pdf");
    assert_eq!(
        as_json(fancy.get("Historical Figures 🐺")),
        Value::from("Marcus Aurelius 🏛️")
    );
    let utf8 = read("qpdf__need-appearances-utf8.pdf");
    assert_eq!(as_json(utf8.get("text")), Value::from("abcde"));
    let control = read("pdfbox__ControlCharacters.pdf");
    assert_eq!(as_json(control.get("acrobat-dc2")), Value::from("DC2˘DC2"));
    assert_eq!(
        as_json(control.get("acrobat-ack")),
        Value::from("ACK\u{6}ACK")
    );
    let signed = read("qpdf__minimal-signed-restricted.pdf");
    assert!(signed.get("SignatureField1").is_none());
    let radio = read("pdfjs__annotation-button-widget.pdf");
    let name = "formulier1[0].#subform[0].LijstKeuzerondje[0]";
    assert_eq!(as_json(radio.get(name)), Value::from("2")); // /V /1, /Opt [(1) (2)]
    let f1040 = read("pdfjs__prefilled_f1040.pdf");
    assert!(f1040.get("topmostSubform[0].Page1[0].c1_04").is_none());
    let groups = read("pdfjs__issue15096.pdf");
    assert_eq!(as_json(groups.get("Group1.Group1")), Value::from("Choice2"));
    assert!(groups.get("Group1").is_none());
}

#[test]
fn corpus_pdftk_fdfs_yield_the_fields_of_their_pdfs() {
    let Some(dir) = corpus_dir() else { return };
    let limits = PdfLimits::default();
    let mut compared = 0usize;
    let mut differ = Vec::new();
    for pdf in files(&dir.join("pdf"), "pdf") {
        let stem = pdf.file_stem().unwrap().to_string_lossy().into_owned();
        let fdf = dir.join("fdf").join(format!("{stem}.fdf"));
        if !fdf.exists() {
            continue;
        }
        let from_pdf = parse_pdf(&std::fs::read(&pdf).unwrap(), &limits).unwrap();
        let from_fdf = parse_fdf(&std::fs::read(&fdf).unwrap(), &limits)
            .unwrap_or_else(|e| panic!("{stem}.fdf: {}", e.code()));
        for (name, value) in from_pdf.iter() {
            compared += 1;
            let theirs = from_fdf.get(name);
            let same = match value {
                // pdftk writes multi-select values as `/V ()`: it loses them, we do not. FDF has
                // no field flags, so one selected item is one value there.
                FieldValue::Many(all) => {
                    theirs == Some(value)
                        || matches!(theirs, Some(FieldValue::One(Scalar::Text(t))) if t.is_empty())
                        || (all.len() == 1
                            && theirs == all.first().cloned().map(FieldValue::One).as_ref())
                }
                _ => theirs == Some(value),
            };
            // The radio group `Group1` has kids that are fields named `Group1` too (each with its
            // own /V); pdftk folds them into one field `Group1` with the last kid's /V.
            let pdftk_folds = stem == "pdfjs__issue15096" && name == "Group1.Group1";
            if !same && !pdftk_folds {
                differ.push(format!(
                    "{stem}: {name:?}: pdf {}, fdf {}",
                    short(&as_json(Some(value))),
                    short(&as_json(theirs))
                ));
            }
        }
    }
    println!("pdftk FDFs: {compared} fields compared with their PDFs");
    assert!(differ.is_empty(), "{differ:#?}");
    assert!(compared > 250);
}

#[test]
fn corpus_other_fdf_and_xfdf_files_parse() {
    let Some(dir) = corpus_dir() else { return };
    let limits = PdfLimits::default();
    let fdf_dir = dir.join("fdf");
    for path in files(&fdf_dir, "fdf")
        .into_iter()
        .chain(files(&fdf_dir, "xfdf"))
    {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let body = std::fs::read(&path).unwrap();
        let result = match sniff(&body) {
            Some(PdfKind::Fdf) => parse_fdf(&body, &limits),
            Some(PdfKind::Xfdf) => parse_xfdf(&body, &limits),
            other => panic!("{name}: sniffed as {other:?}"),
        };
        let fields = result.unwrap_or_else(|e| panic!("{name}: {}", e.code()));
        println!("{name}: {} fields", fields.len());
    }
}

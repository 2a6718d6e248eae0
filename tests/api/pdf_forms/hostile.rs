//! Hostile PDF-family bodies over HTTP: each is answered promptly with a 4xx FDF whose
//! `/Status` names the reason, the server's memory stays bounded, and it keeps serving.

use lopdf::{dictionary, Object};

use super::acrobat::{FDF, XFDF};
use super::build::{filled_form_pdf, flate_bomb, lit, pdf_with};
use super::*;

/// A body, its label, and the answers allowed: (status, code).
struct Case {
    what: &'static str,
    ct: &'static str,
    body: Vec<u8>,
    answers: &'static [(u16, &'static str)],
}

/// An object stream that inflates to a gigabyte: lopdf would inflate it while loading.
fn object_stream_bomb() -> Vec<u8> {
    let bomb = flate_bomb(1 << 30);
    let mut body =
        b"%PDF-1.7\n1 0 obj\n<< /Type /ObjStm /N 1 /First 4 /Filter /FlateDecode /Length ".to_vec();
    body.extend_from_slice(format!("{} >>\nstream\n", bomb.len()).as_bytes());
    body.extend_from_slice(&bomb);
    body.extend_from_slice(b"\nendstream\nendobj\ntrailer\n<< /Root 2 0 R >>\n%%EOF\n");
    body
}

/// A text field whose value is a stream that inflates to a gigabyte.
fn value_stream_bomb() -> Vec<u8> {
    pdf_with(|doc, _| {
        let v = doc.add_object(lopdf::Stream::new(
            dictionary! {"Filter" => "FlateDecode"},
            flate_bomb(1 << 30),
        ));
        vec![doc
            .add_object(dictionary! {"FT" => "Tx", "T" => lit(b"big"), "V" => v})
            .into()]
    })
}

/// An FDF whose one value is a gigabyte flate bomb.
fn fdf_bomb() -> Vec<u8> {
    let bomb = flate_bomb(1 << 30);
    let mut body = b"%FDF-1.2\n1 0 obj\n<< /FDF << /Fields [ << /T (a) /V 2 0 R >> ] >> >>\nendobj\n2 0 obj\n<< /Filter /FlateDecode /Length ".to_vec();
    body.extend_from_slice(format!("{} >>\nstream\n", bomb.len()).as_bytes());
    body.extend_from_slice(&bomb);
    body.extend_from_slice(b"\nendstream\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n");
    body
}

const XXE: &str = r#"<?xml version="1.0"?>
<!DOCTYPE xfdf [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<xfdf xmlns="http://ns.adobe.com/xfdf/"><fields>
<field name="a"><value>&xxe;</value></field></fields></xfdf>"#;

fn billion_laughs() -> String {
    let mut dtd = String::from("<!ENTITY lol0 \"lol\">");
    for i in 1..10 {
        let prev = format!("&lol{};", i - 1).repeat(10);
        dtd.push_str(&format!("<!ENTITY lol{i} \"{prev}\">"));
    }
    format!(
        "<?xml version=\"1.0\"?>\n<!DOCTYPE xfdf [{dtd}]>\n<xfdf xmlns=\"http://ns.adobe.com/xfdf/\"><fields><field name=\"a\"><value>&lol9;</value></field></fields></xfdf>"
    )
}

/// Field trees that refer back to themselves: a field its own kid, a kid whose kid is its
/// parent.
fn reference_loops() -> (Vec<u8>, Vec<u8>) {
    let self_loop = pdf_with(|doc, _| {
        let id = doc.new_object_id();
        doc.objects.insert(
            id,
            Object::Dictionary(dictionary! {"T" => lit(b"a"), "Kids" => vec![id.into()]}),
        );
        vec![id.into()]
    });
    let parent_loop = pdf_with(|doc, _| {
        let (a, b) = (doc.new_object_id(), doc.new_object_id());
        doc.objects.insert(
            a,
            Object::Dictionary(dictionary! {"T" => lit(b"a"), "Kids" => vec![b.into()]}),
        );
        doc.objects.insert(
            b,
            Object::Dictionary(dictionary! {"T" => lit(b"b"), "Parent" => a,
            "Kids" => vec![a.into()]}),
        );
        vec![a.into()]
    });
    (self_loop, parent_loop)
}

/// 10,000 nested arrays in one value; a field tree 10,000 levels deep; FDF `/Kids` likewise.
fn deep_nesting() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let mut arrays = b"%PDF-1.7\n1 0 obj\n<< /FT /Tx /T (a) /V ".to_vec();
    arrays.extend(std::iter::repeat_n(b'[', 10_000));
    arrays.extend(std::iter::repeat_n(b']', 10_000));
    arrays.extend_from_slice(b" >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n");
    let tree = pdf_with(|doc, _| {
        let mut child: Option<lopdf::ObjectId> = None;
        for _ in 0..10_000 {
            let mut d = dictionary! {"T" => lit(b"n")};
            if let Some(c) = child {
                d.set("Kids", vec![c.into()]);
            }
            child = Some(doc.add_object(d));
        }
        vec![child.unwrap().into()]
    });
    let mut fdf = b"%FDF-1.2\n1 0 obj\n<< /FDF << /Fields [ ".to_vec();
    fdf.extend_from_slice(&b"<< /T (n) /Kids [ ".repeat(5_000));
    fdf.extend_from_slice(&b"] >> ".repeat(5_000));
    fdf.extend_from_slice(b"] >> >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n");
    (arrays, tree, fdf)
}

/// 200,000 indirect objects.
fn many_objects() -> Vec<u8> {
    let mut body = b"%PDF-1.7\n".to_vec();
    for i in 1..=200_000 {
        body.extend_from_slice(format!("{i} 0 obj\nnull\nendobj\n").as_bytes());
    }
    body.extend_from_slice(b"trailer\n<< /Root 1 0 R >>\n%%EOF\n");
    body
}

/// 2,000 filled text fields (the server's default `max_fields` is 1,000).
fn many_fields() -> Vec<u8> {
    pdf_with(|doc, _| {
        (0..2_000)
            .map(|i| {
                let t = format!("f{i}");
                doc.add_object(
                    dictionary! {"FT" => "Tx", "T" => lit(t.as_bytes()), "V" => lit(b"x")},
                )
                .into()
            })
            .collect()
    })
}

fn cases() -> Vec<Case> {
    let (self_loop, parent_loop) = reference_loops();
    let (arrays, tree, deep_fdf) = deep_nesting();
    let full = filled_form_pdf();
    let pdf = "application/pdf";
    let fdf = "application/vnd.fdf";
    let xfdf = "application/vnd.adobe.xfdf";
    // Unoptimized builds inflate slowly: the parse-time cap may trip before the byte cap.
    const BOMB: &[(u16, &str)] = &[(413, "pdf_decompression_limit"), (400, "pdf_timeout")];
    vec![
        Case {
            what: "object stream bomb",
            ct: pdf,
            body: object_stream_bomb(),
            answers: BOMB,
        },
        Case {
            what: "value stream bomb",
            ct: pdf,
            body: value_stream_bomb(),
            answers: BOMB,
        },
        Case {
            what: "FDF value bomb",
            ct: fdf,
            body: fdf_bomb(),
            answers: BOMB,
        },
        Case {
            what: "XFDF external entity",
            ct: xfdf,
            body: XXE.as_bytes().to_vec(),
            answers: &[(400, "xfdf_dtd_forbidden")],
        },
        Case {
            what: "XFDF billion laughs",
            ct: xfdf,
            body: billion_laughs().into_bytes(),
            answers: &[(400, "xfdf_dtd_forbidden")],
        },
        Case {
            what: "self loop",
            ct: pdf,
            body: self_loop,
            answers: &[(400, "pdf_reference_loop")],
        },
        Case {
            what: "parent loop",
            ct: pdf,
            body: parent_loop,
            answers: &[(400, "pdf_reference_loop")],
        },
        Case {
            what: "nested arrays",
            ct: pdf,
            body: arrays,
            answers: &[(400, "pdf_too_deep")],
        },
        Case {
            what: "deep field tree",
            ct: pdf,
            body: tree,
            answers: &[(400, "pdf_too_deep")],
        },
        Case {
            what: "deep FDF kids",
            ct: fdf,
            body: deep_fdf,
            answers: &[(400, "pdf_too_deep")],
        },
        Case {
            what: "truncated PDF",
            ct: pdf,
            body: full[..full.len() / 2].to_vec(),
            answers: &[(400, "pdf_malformed")],
        },
        Case {
            what: "PDF without %%EOF",
            ct: pdf,
            body: full[..full.len() - 20].to_vec(),
            answers: &[(400, "pdf_malformed")],
        },
        Case {
            what: "truncated FDF",
            ct: fdf,
            body: FDF[..FDF.len() / 2].to_vec(),
            answers: &[(400, "fdf_malformed")],
        },
        Case {
            what: "truncated XFDF",
            ct: xfdf,
            body: XFDF.as_bytes()[..XFDF.len() / 2].to_vec(),
            answers: &[(400, "xfdf_malformed")],
        },
        Case {
            what: "too many objects",
            ct: pdf,
            body: many_objects(),
            answers: &[(413, "pdf_too_many_objects")],
        },
        Case {
            what: "too many fields",
            ct: pdf,
            body: many_fields(),
            answers: &[(413, "too_many_fields")],
        },
        Case {
            what: "body over max_body_bytes",
            ct: pdf,
            body: [b"%PDF-1.7\n".as_slice(), &vec![b' '; 21 << 20]].concat(),
            answers: &[(413, "body_too_large")],
        },
    ]
}

#[test]
fn hostile_bodies_get_a_4xx_fdf_answer_in_bounded_memory_and_the_server_lives_on() {
    let server = Server::with_config(&config("", &[("contact", "")]));
    let before = peak_rss(server.pid());
    for case in cases() {
        let answer = post(&server, "contact", case.ct, None, case.body);
        let message = fdf_status(&answer.body);
        println!(
            "{}: {} in {:?}: {message}",
            case.what, answer.status, answer.elapsed
        );
        let (status, code) = case
            .answers
            .iter()
            .find(|(_, code)| message.contains(&format!("({code})")))
            .unwrap_or_else(|| {
                panic!(
                    "{}: unexpected answer {}: {message}",
                    case.what, answer.status
                )
            });
        refused_fdf(&answer, *status, code, 10);
        assert!(!message.contains("root:x:"), "{}: {message}", case.what);
        let health = client().get(server.url("/healthz")).send().unwrap();
        assert_eq!(health.status().as_u16(), 200, "{}: not healthy", case.what);
    }
    // Still accepting, and nothing was stored from the refused bodies.
    let answer = post(
        &server,
        "contact",
        "application/vnd.fdf",
        None,
        FDF.to_vec(),
    );
    let id = accepted_fdf(&answer, "after the hostile bodies");
    server.wait_for_doc(&id);
    assert_eq!(server.doc_ids(), vec![id]);
    let peak = peak_rss(server.pid());
    println!(
        "server peak memory: {} MiB (at start {} MiB)",
        peak >> 20,
        before >> 20
    );
    assert!(peak < 300 << 20, "peak memory {} MiB", peak >> 20);
}

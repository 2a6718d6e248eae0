//! Baselines for `scripts/bench.sh`: the same actix-web and tokio setup as `secureform serve`,
//! doing as little as possible, so the service's figures can be read as ratios against what
//! this machine can do at all in the same run.
//!
//! - `POST /bare`: reads the body the way the service does (payload chunks into a buffer,
//!   within a limit) and answers `303 See Other`: the ceiling for HTTP alone.
//! - `POST /fsync`: reads the body, appends it to `DATA/fsync.log` and calls `fdatasync` once
//!   per request on the blocking pool, then answers 303: what durability costs without group
//!   commit. The service must beat it.
//! - `POST /devnull`: streams any body (multipart included) and discards it, answering `201`
//!   with the byte count: the ceiling for a large upload.
//! - `POST /tofile`: streams any body into a new file under `DATA` the way the service writes a
//!   spool file, past the page cache (`O_DIRECT`, 2 MiB at a time from a block-aligned buffer,
//!   on a thread of its own while the event loop reads on), `fdatasync`s it, answers `201`, and
//!   removes the file afterwards: what this machine's disk allows a large upload that must be
//!   durable before its answer, with no parsing, hashing or encryption. Meant for one upload at
//!   a time.
//!
//! Run: `cargo run --release --example bench_baseline -- --listen 127.0.0.1:0 --data DIR`.
//! It prints `listening on http://ADDR` on stderr once bound.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;

use actix_web::http::{header, StatusCode};
use actix_web::{web, App, HttpResponse, HttpServer};
use clap::Parser;
use futures_util::StreamExt;

/// The spool's writer for large files, shared with the service so that `/tofile` writes the same
/// way (the service has no library target to import it from).
#[allow(dead_code)]
#[path = "../src/spool/direct.rs"]
mod direct;

/// The service's default `max_body_bytes`: the same limit on the same read loop.
const MAX_BODY_BYTES: usize = 20 * 1024 * 1024;

#[derive(Parser)]
#[command(about = "Baseline handlers for the SecureForm benchmarks")]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// Folder for the fsync baseline's file and `/tofile`'s uploads (created when missing).
    #[arg(long)]
    data: PathBuf,
}

/// The append-only file of the fsync baseline.
struct Log {
    file: File,
}

/// Reads a whole body within `limit`, as the service's `read_all` does.
async fn read_body(mut payload: web::Payload, limit: usize) -> Result<web::BytesMut, HttpResponse> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| HttpResponse::BadRequest().finish())?;
        if body.len() + chunk.len() > limit {
            return Err(HttpResponse::PayloadTooLarge().finish());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn see_other() -> HttpResponse {
    HttpResponse::build(StatusCode::SEE_OTHER)
        .insert_header((header::LOCATION, "/thanks"))
        .finish()
}

async fn bare(payload: web::Payload) -> HttpResponse {
    match read_body(payload, MAX_BODY_BYTES).await {
        Ok(_) => see_other(),
        Err(resp) => resp,
    }
}

async fn fsync(payload: web::Payload, log: web::Data<Log>) -> HttpResponse {
    let body = match read_body(payload, MAX_BODY_BYTES).await {
        Ok(body) => body.freeze(),
        Err(resp) => return resp,
    };
    let log = log.into_inner();
    // One write and one fdatasync per request; concurrent requests sync concurrently, as
    // independent requests each making themselves durable would.
    let done = web::block(move || -> std::io::Result<()> {
        (&log.file).write_all(&body)?;
        log.file.sync_data()
    })
    .await;
    match done {
        Ok(Ok(())) => see_other(),
        _ => HttpResponse::ServiceUnavailable().finish(),
    }
}

async fn devnull(mut payload: web::Payload) -> HttpResponse {
    let mut total: u64 = 0;
    while let Some(chunk) = payload.next().await {
        match chunk {
            Ok(chunk) => total += chunk.len() as u64,
            Err(_) => return HttpResponse::BadRequest().finish(),
        }
    }
    HttpResponse::Created().json(serde_json::json!({ "bytes": total }))
}

/// The folder `/tofile` writes into.
struct UploadDir(PathBuf);

async fn tofile(mut payload: web::Payload, dir: web::Data<UploadDir>) -> HttpResponse {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = dir.0.join(format!("upload-{n}.bin"));
    let Ok(file) = File::create(&path) else {
        return HttpResponse::ServiceUnavailable().finish();
    };
    // A few chunks in flight: the writer works while the next ones are read.
    let (chunks, to_write) = tokio::sync::mpsc::channel(64);
    let writer = tokio::task::spawn_blocking(move || write_direct(file, to_write));
    let mut total: u64 = 0;
    let mut failed = None;
    while let Some(chunk) = payload.next().await {
        match chunk {
            Ok(chunk) => {
                total += chunk.len() as u64;
                if chunks.send(chunk).await.is_err() {
                    break; // the writer failed: its error is the answer
                }
            }
            Err(_) => {
                failed = Some(HttpResponse::BadRequest().finish());
                break;
            }
        }
    }
    drop(chunks);
    let written = writer.await;
    let answer = match (failed, written) {
        (Some(answer), _) => answer,
        (None, Ok(Ok(()))) => HttpResponse::Created().json(serde_json::json!({ "bytes": total })),
        (None, _) => HttpResponse::ServiceUnavailable().finish(),
    };
    // Removed after the answer (unlinking 1 GiB can wait for the device to trim it).
    drop(tokio::task::spawn_blocking(move || {
        std::fs::remove_file(path)
    }));
    answer
}

/// `/tofile`'s writer: the spool's own direct writer (`src/spool/direct.rs`: 2 MiB block-aligned
/// windows written with `O_DIRECT`, plain writes where the filesystem refuses them, the tail
/// after switching the flag off), then `fdatasync`.
fn write_direct(
    file: File,
    mut chunks: tokio::sync::mpsc::Receiver<bytes::Bytes>,
) -> std::io::Result<()> {
    let mut writer = direct::DirectWriter::new(file);
    while let Some(chunk) = chunks.blocking_recv() {
        writer.write_all(&chunk)?;
    }
    writer.finish()?.sync_data()
}

async fn serve(args: Args) -> std::io::Result<()> {
    std::fs::create_dir_all(&args.data)?;
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(args.data.join("fsync.log"))?;
    let log = web::Data::new(Log { file });
    let uploads = web::Data::new(UploadDir(args.data.clone()));
    let listener = TcpListener::bind(&args.listen)?;
    let addr = listener.local_addr()?;
    let server = HttpServer::new(move || {
        App::new()
            .app_data(log.clone())
            .app_data(uploads.clone())
            .route("/bare", web::post().to(bare))
            .route("/fsync", web::post().to(fsync))
            .route("/devnull", web::post().to(devnull))
            .route("/tofile", web::post().to(tofile))
    })
    .listen(listener)?
    .run();
    eprintln!("listening on http://{addr}");
    server.await
}

fn main() {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(serve(args)) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

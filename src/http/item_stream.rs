//! Serving one sealed item of a Documents store over HTTP, for the API and the console: the item
//! is held open (file and key, [`DocumentStore::pin_item`]), read through once without sending
//! anything (every segment must authenticate, and the length is learnt), then read again from
//! the same open file and streamed from a blocking thread with that `Content-Length`, in bounded
//! memory (a channel of eight chunks). An erasure after the item was opened does not cut the
//! answer short.
//!
//! A read that fails because the document is being erased, or is gone, is a 404; one that fails
//! on a document still there is a 500 `document_damaged`.

use std::io::Write;
use std::sync::Arc;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpResponse};
use bytes::Bytes;
use secureform_documents::{DocumentItem, DocumentStore, PinnedItem, StoreError};
use tokio::sync::mpsc;

use super::api::{internal, not_found};
use crate::error::ClientError;

/// How an item is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// As the seal holds it: the plaintext, or for a PGP document the binary OpenPGP message.
    AsSealed,
    /// A PGP document's OpenPGP message, ASCII-armored.
    Armored,
}

/// Why an item could not be served whole.
#[derive(Debug, thiserror::Error)]
enum PumpError {
    /// The item did not open (gone, or sealed under a key that is not there).
    #[error("{0}")]
    Open(#[from] StoreError),
    /// Reading it through failed: a segment that does not authenticate, a truncated file.
    #[error("reading: {0}")]
    Read(#[from] std::io::Error),
    /// Armoring the OpenPGP message failed.
    #[error("{0}")]
    Armor(#[from] secureform_crypto::pgp::PgpError),
}

impl PumpError {
    /// Whether the item is simply not there (any more): erased, or never stored.
    fn is_not_found(&self) -> bool {
        match self {
            PumpError::Open(StoreError::NotFound(_)) => true,
            PumpError::Open(StoreError::Io(e)) | PumpError::Read(e) => {
                e.kind() == std::io::ErrorKind::NotFound
            }
            _ => false,
        }
    }
}

/// Writes one reading of a pinned item: as sealed, or as an armored OpenPGP message.
fn pump(pinned: &PinnedItem, shape: Shape, out: &mut dyn Write) -> Result<(), PumpError> {
    let mut sealed = pinned.reader()?;
    if shape == Shape::Armored {
        secureform_crypto::pgp::armor_message(&mut sealed, out)?;
    } else {
        std::io::copy(&mut sealed, out)?;
    }
    Ok(())
}

/// What a failed read of `id` is answered with: 404 when the document went away meanwhile (an
/// erasure raced the read: its key and items go before its folder does), 500
/// `document_damaged` when it is there and did not check out.
fn read_failure(store: &DocumentStore, id: &str, e: &PumpError) -> ClientError {
    let gone = e.is_not_found()
        || store.is_being_erased(id)
        || matches!(store.meta(id), Err(StoreError::NotFound(_)));
    if gone {
        tracing::info!(document = %id, "a document was erased while it was being read");
        return not_found("document");
    }
    tracing::error!(document = %id, error = %e, "a document item failed its check");
    ClientError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "document_damaged",
        "The document is damaged and cannot be served; it has been logged.",
    )
}

/// Counts what is written, keeping nothing.
struct Counter(u64);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Serves one item (see the module): 200 with its `Content-Length` and `Content-Type`
/// (`application/pgp-encrypted` when armored, else `application/json` for the submission and
/// `application/octet-stream` for a file or an OpenPGP message), `Cache-Control: no-store` and
/// `nosniff`.
pub async fn serve_item(
    store: &Arc<DocumentStore>,
    id: &str,
    item: DocumentItem,
    shape: Shape,
) -> Result<HttpResponse, ClientError> {
    let (store, id) = (Arc::clone(store), id.to_owned());
    let owned = id.clone();
    // The item is opened once (its file and key held), read through to check it and learn its
    // length, then read again from the same open file to send it: an erasure in between removes
    // names, not what is open, so the answer is whole.
    let (pinned, len) = web::block(move || {
        let checked = store
            .pin_item(&owned, item)
            .map_err(PumpError::from)
            .and_then(|pinned| {
                let mut counter = Counter(0);
                pump(&pinned, shape, &mut counter).map(|()| (pinned, counter.0))
            });
        checked.map_err(|e| read_failure(&store, &owned, &e))
    })
    .await
    .map_err(|e| internal("store task failed", e))??;
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    tokio::task::spawn_blocking(move || {
        let mut out = ChannelWriter { tx: tx.clone() };
        if let Err(e) = pump(&pinned, shape, &mut out) {
            tracing::error!(document = %id, error = %e, "streaming a document failed");
            let _ = tx.blocking_send(Err(std::io::Error::other("document stream failed")));
        }
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .content_type(match (shape, item) {
            (Shape::Armored, _) => "application/pgp-encrypted",
            (Shape::AsSealed, DocumentItem::Submission) => "application/json",
            (Shape::AsSealed, DocumentItem::File(_)) => "application/octet-stream",
        })
        .no_chunking(len)
        .streaming(body))
}

struct ChannelWriter {
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tx
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

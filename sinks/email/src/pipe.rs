//! The bounded pipe between the thread that writes the message (MIME, encryption, base64) and
//! the SMTP connection that sends it, and the stream wrapper that lets lettre's DATA phase wait
//! for the next chunk without blocking the runtime.
//!
//! lettre's `AsyncSmtpConnection::message_iter` takes a plain (synchronous) iterator of parts:
//! for each part it dot-stuffs it, writes it and flushes the connection. [`Chunks`] never
//! blocks: when no chunk is ready it yields an empty part, whose flush reaches [`Gated`] — the
//! wrapper under the TLS layer, on the TCP stream — and that flush waits (asynchronously, under
//! the step's deadline) until the writer has produced the next chunk or finished.
//!
//! If the writer fails (a file cannot be read, encryption fails) or goes away, the pipe closes
//! without its end marker: the iterator stops and the wrapper is *poisoned*, so the terminating
//! `CRLF.CRLF` that lettre then writes never reaches the server, which discards the incomplete
//! message when the connection drops. A server that refuses mid-way closes the pipe from the
//! other side, and the writer stops at its next chunk.
//!
//! This relies on lettre 0.11's `message_iter` flushing after every part. Should a later lettre
//! stop doing so, an empty part would be followed by another request for a part without the
//! wait in between: [`Chunks`] then poisons the connection and the delivery fails (retryable),
//! rather than spinning on empty parts.
//!
//! Memory: [`DEPTH`] chunks of [`CHUNK`] bytes in the pipe, one being filled, one being sent.

use std::fmt;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use lettre::transport::smtp::client::AsyncTokioStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;

/// Bytes of message per chunk.
pub const CHUNK: usize = 64 * 1024;
/// Chunks the pipe holds before the writer waits.
pub const DEPTH: usize = 4;

enum Piece {
    Bytes(Vec<u8>),
    /// The message is complete.
    End,
}

/// The writing end: collects bytes into chunks and hands each over, waiting while the pipe is
/// full. Blocking: use it on a blocking thread, never in async code.
pub struct PipeWriter {
    tx: mpsc::Sender<Piece>,
    buf: Vec<u8>,
    count: u64,
    closed: bool,
}

/// The reading end, handed to [`crate::transport::Smtp::send`].
pub struct Feed {
    rx: mpsc::Receiver<Piece>,
    /// What the last wait in [`Gated::poll_flush`] received; `Some(None)`: the pipe closed.
    peeked: Option<Option<Piece>>,
    ended: bool,
    /// An empty part went out and no flush has waited for a chunk since.
    awaiting_flush: bool,
}

/// A new pipe.
pub fn pipe() -> (PipeWriter, Feed) {
    let (tx, rx) = mpsc::channel(DEPTH);
    (
        PipeWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
            count: 0,
            closed: false,
        },
        Feed {
            rx,
            peeked: None,
            ended: false,
            awaiting_flush: false,
        },
    )
}

impl PipeWriter {
    fn send(&mut self, piece: Piece) -> io::Result<()> {
        if self.tx.blocking_send(piece).is_err() {
            self.closed = true;
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the SMTP connection stopped taking the message",
            ));
        }
        Ok(())
    }

    fn send_buffered(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.send(Piece::Bytes(chunk))
    }

    /// Sends what is buffered and the end marker; returns the message's size in bytes.
    pub fn finish(&mut self) -> io::Result<u64> {
        self.send_buffered()?;
        self.send(Piece::End)?;
        Ok(self.count)
    }

    /// Whether the reading end went away (the SMTP side failed or gave up first).
    pub fn closed_by_reader(&self) -> bool {
        self.closed || self.tx.is_closed()
    }
}

impl Write for PipeWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = CHUNK.saturating_sub(self.buf.len());
        let n = buf.len().min(room);
        self.buf.extend_from_slice(buf.get(..n).unwrap_or_default());
        self.count += n as u64;
        if self.buf.len() >= CHUNK {
            self.send_buffered()?;
        }
        Ok(n)
    }

    /// Chunks go out when full or at [`PipeWriter::finish`]; flushing sends nothing early.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[derive(Default)]
struct GateState {
    feed: Option<Feed>,
    poisoned: bool,
}

/// The shared switch between a connection's [`Gated`] stream and the [`Chunks`] of the message
/// being sent on it.
#[derive(Clone, Default)]
pub struct Gate(Arc<Mutex<GateState>>);

impl Gate {
    fn state(&self) -> MutexGuard<'_, GateState> {
        // The state stays consistent whatever a panicking holder did: every update is one store.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Attaches a message to the connection; its chunks are then read by [`Gate::chunks`].
    pub fn attach(&self, feed: Feed) {
        let mut state = self.state();
        state.feed = Some(feed);
        state.poisoned = false;
    }

    /// Takes the message off the connection (to move it to another, or to drop it, which stops
    /// the writer).
    pub fn detach(&self) -> Option<Feed> {
        self.state().feed.take()
    }

    /// The parts of the attached message, for `message_iter`.
    pub fn chunks(&self) -> Chunks {
        Chunks { gate: self.clone() }
    }
}

/// The attached message as lettre's parts: a chunk when one is ready, an empty part (whose
/// flush waits for one) when not, and the end when the writer finished. A pipe that closed
/// without its end marker poisons the connection and ends the parts.
pub struct Chunks {
    gate: Gate,
}

impl Iterator for Chunks {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        let mut state = self.gate.state();
        let Some(feed) = state.feed.as_mut() else {
            state.poisoned = true;
            return None;
        };
        if feed.ended {
            return None;
        }
        let next = match feed.peeked.take() {
            Some(piece) => piece,
            None if feed.awaiting_flush => {
                // The flush that should have waited for this chunk did not happen.
                feed.ended = true;
                state.poisoned = true;
                return None;
            }
            None => match feed.rx.try_recv() {
                Ok(piece) => Some(piece),
                Err(mpsc::error::TryRecvError::Empty) => {
                    feed.awaiting_flush = true;
                    return Some(Vec::new());
                }
                Err(mpsc::error::TryRecvError::Disconnected) => None,
            },
        };
        match next {
            Some(Piece::Bytes(bytes)) => Some(bytes),
            Some(Piece::End) => {
                feed.ended = true;
                None
            }
            None => {
                feed.ended = true;
                state.poisoned = true;
                None
            }
        }
    }
}

/// A connection's stream with its [`Gate`]: flushing waits for the next chunk while a message
/// is attached and unfinished, and a poisoned stream refuses to write anything more.
pub struct Gated<S> {
    inner: S,
    gate: Gate,
}

impl<S> Gated<S> {
    /// Wraps the stream `inner`; its flushes wait on `gate` (see the module docs).
    pub fn new(inner: S, gate: Gate) -> Self {
        Gated { inner, gate }
    }
}

fn abandoned() -> io::Error {
    io::Error::other("the message could not be completed; it was abandoned")
}

impl<S> fmt::Debug for Gated<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Gated")
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Gated<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Gated<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.gate.state().poisoned {
            return Poll::Ready(Err(abandoned()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        {
            let mut state = self.gate.state();
            if state.poisoned {
                return Poll::Ready(Err(abandoned()));
            }
            if let Some(feed) = state.feed.as_mut() {
                if !feed.ended && feed.peeked.is_none() {
                    match feed.rx.poll_recv(cx) {
                        Poll::Ready(piece) => {
                            feed.peeked = Some(piece);
                            feed.awaiting_flush = false;
                        }
                        Poll::Pending => return Poll::Pending,
                    }
                }
            }
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for Gated<tokio::net::TcpStream> {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }
}

/// lettre's own stream (used for implicit TLS, so that lettre's TLS runs over a [`Gated`] TCP
/// stream) seen through tokio's I/O traits, as `connect_with_transport` wants.
#[allow(deprecated)]
pub struct Lettre(pub lettre::transport::smtp::client::AsyncNetworkStream);

impl fmt::Debug for Lettre {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Lettre")
    }
}

impl AsyncRead for Lettre {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let unfilled = buf.initialize_unfilled();
        match futures_io::AsyncRead::poll_read(Pin::new(&mut self.0), cx, unfilled) {
            Poll::Ready(Ok(n)) => {
                buf.advance(n);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for Lettre {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        futures_io::AsyncWrite::poll_write(Pin::new(&mut self.0), cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        futures_io::AsyncWrite::poll_flush(Pin::new(&mut self.0), cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        futures_io::AsyncWrite::poll_close(Pin::new(&mut self.0), cx)
    }
}

impl AsyncTokioStream for Lettre {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.peer_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_arrive_in_order_and_end_only_with_the_marker() {
        let (mut w, feed) = pipe();
        let writer = std::thread::spawn(move || {
            for i in 0..100u8 {
                w.write_all(&vec![i; 10_000]).unwrap();
            }
            w.finish().unwrap()
        });
        let gate = Gate::default();
        gate.attach(feed);
        let mut got = Vec::new();
        for part in gate.chunks() {
            if part.is_empty() {
                // What the flush after an empty part does: wait for the next piece.
                let mut state = gate.state();
                let feed = state.feed.as_mut().unwrap();
                feed.peeked = Some(feed.rx.blocking_recv());
                feed.awaiting_flush = false;
            }
            got.extend_from_slice(&part);
        }
        assert_eq!(writer.join().unwrap(), 1_000_000);
        assert_eq!(got.len(), 1_000_000);
        assert!(got.chunks(10_000).enumerate().all(|(i, c)| c[0] == i as u8));
        assert!(!gate.state().poisoned);
    }

    #[test]
    fn a_writer_that_goes_away_poisons_the_connection() {
        let (mut w, feed) = pipe();
        w.write_all(&[1; CHUNK + 1]).unwrap();
        drop(w); // no end marker
        let gate = Gate::default();
        gate.attach(feed);
        let parts: Vec<_> = gate.chunks().collect();
        assert_eq!(parts.concat().len(), CHUNK);
        assert!(gate.state().poisoned);
    }

    #[test]
    fn two_empty_parts_without_a_flush_between_poison_rather_than_spin() {
        let (w, feed) = pipe();
        let gate = Gate::default();
        gate.attach(feed);
        let mut chunks = gate.chunks();
        assert_eq!(chunks.next(), Some(Vec::new()));
        assert_eq!(chunks.next(), None);
        assert!(gate.state().poisoned);
        drop(w);
    }

    #[test]
    fn a_reader_that_goes_away_stops_the_writer() {
        let (mut w, feed) = pipe();
        drop(feed);
        assert!(w.write_all(&[0; CHUNK]).is_err());
        assert!(w.closed_by_reader());
    }
}

//! Writing one submission over an open connection.
//!
//! Layout: `<path>/<id>/<index>[.pgp]` for each file of the submission, then
//! `<path>/<id>.<format>[.pgp]` last, so that the submission's own file appearing means everything
//! it refers to is already there. Each file is streamed to `<name>.part-<random>` (mode 0600),
//! fsynced where the server supports it, closed, and only then renamed to its name; a rename over
//! an existing file (a redelivery) replaces it, so a redelivery leaves the same names and no copy.
//! Every name is built from the configured path, the submission id (checked to be a plain ULID)
//! and an index: never from anything a client sent.

use std::io::{self, BufWriter, Read, Write};
use std::path::Path;
use std::sync::Arc;

use libssh2_sys as raw;
use secureform_contract::{DeliveryError, FailureReason, FileSource, Submission};
use secureform_crypto::pgp::{self, Recipients, Signer};
use ssh2::{ErrorCode, OpenFlags, OpenType, RenameFlags, Sftp};

use crate::config::Format;
use crate::remote::{classify, is_transport};
use crate::render::render;

/// Size of the chunks streamed to the server (SFTP writes are pipelined by libssh2).
const CHUNK: usize = 128 * 1024;

/// The OpenPGP settings: every uploaded file becomes a message to `recipients`.
pub(crate) struct Pgp {
    pub recipients: Recipients,
    pub signer: Option<Arc<Signer>>,
}

/// Where and how a submission is written.
pub(crate) struct Layout {
    pub path: String,
    pub format: Format,
    pub pgp: Option<Pgp>,
}

/// A failed step, and whether the connection can still be used afterwards.
pub(crate) struct Failure {
    pub error: DeliveryError,
    pub connection_ok: bool,
}

impl From<DeliveryError> for Failure {
    fn from(error: DeliveryError) -> Self {
        Failure {
            error,
            connection_ok: true,
        }
    }
}

fn remote(e: &ssh2::Error, what: &str) -> Failure {
    Failure {
        error: classify(e, what),
        connection_ok: !is_transport(e),
    }
}

/// Bytes written for one submission (for logs: counts and sizes only).
pub(crate) struct Written {
    pub document: String,
    pub plaintext_bytes: u64,
}

impl Layout {
    fn suffix(&self) -> &'static str {
        if self.pgp.is_some() {
            ".pgp"
        } else {
            ""
        }
    }

    /// The remote name of the submission's own file.
    pub(crate) fn document_path(&self, id: &str) -> String {
        join(
            &self.path,
            &format!("{id}.{}{}", self.format.extension(), self.suffix()),
        )
    }

    /// Writes the submission's files, then its own file.
    pub(crate) fn deliver(
        &self,
        sftp: &Sftp,
        submission: &Submission,
        files: &dyn FileSource,
    ) -> Result<Written, Failure> {
        let id = checked_id(&submission.id)?;
        let document = self.document_path(id);
        ensure_dir(sftp, &self.path)?;
        let mut total = 0u64;
        if !submission.files.is_empty() {
            let dir = join(&self.path, id);
            ensure_dir(sftp, &dir)?;
            for index in 0..submission.files.len() {
                let what = format!("file {index}");
                let mut input = files.open(index).map_err(|e| {
                    DeliveryError::retryable(
                        FailureReason::Internal,
                        format!("cannot open {what} of the submission: {e}"),
                    )
                })?;
                let dest = join(&dir, &format!("{index}{}", self.suffix()));
                total += self.upload(sftp, &dest, &mut input, &what)?;
            }
        }
        let body = render(submission, self.format).map_err(|e| {
            DeliveryError::permanent(
                FailureReason::Payload,
                format!("cannot render the submission: {e}"),
            )
        })?;
        total += self.upload(
            sftp,
            &document,
            &mut io::Cursor::new(body),
            "the submission",
        )?;
        Ok(Written {
            document,
            plaintext_bytes: total,
        })
    }

    /// Streams `input` (encrypted when configured) to a temporary name, then renames it to `dest`.
    fn upload(
        &self,
        sftp: &Sftp,
        dest: &str,
        input: &mut dyn Read,
        what: &str,
    ) -> Result<u64, Failure> {
        let tmp = format!("{dest}.part-{}", random_suffix()?);
        let file = sftp
            .open_mode(
                Path::new(&tmp),
                OpenFlags::WRITE | OpenFlags::TRUNCATE,
                0o600,
                OpenType::File,
            )
            .map_err(|e| remote(&e, &format!("creating a temporary file for {what}")))?;
        let result = self.write_and_rename(sftp, file, &tmp, dest, input, what);
        if let Err(failure) = &result {
            if failure.connection_ok {
                // Best effort: do not leave a partial file behind.
                let _ = sftp.unlink(Path::new(&tmp));
            }
        }
        result
    }

    fn write_and_rename(
        &self,
        sftp: &Sftp,
        file: ssh2::File,
        tmp: &str,
        dest: &str,
        input: &mut dyn Read,
        what: &str,
    ) -> Result<u64, Failure> {
        let mut reader = Watched::new(input);
        let mut writer = BufWriter::with_capacity(CHUNK, Watched::new(file));
        let streamed = match &self.pgp {
            Some(p) => pgp::encrypt(
                &p.recipients,
                p.signer.as_deref(),
                false,
                &mut reader,
                &mut writer,
            )
            .map(|_| ())
            .map_err(|e| e.to_string()),
            None => copy(&mut reader, &mut writer)
                .map(|_| ())
                .map_err(|e| e.to_string()),
        };
        let flushed = writer.into_inner().map_err(|e| e.into_error().to_string());
        let failed = |detail: String, remote_side: bool| Failure {
            error: if remote_side {
                DeliveryError::retryable(
                    FailureReason::Connection,
                    format!("writing to the server failed for {what}: {detail}"),
                )
            } else {
                DeliveryError::retryable(
                    FailureReason::Internal,
                    format!("reading from the spool failed for {what}: {detail}"),
                )
            },
            connection_ok: !remote_side,
        };
        let mut file = match (streamed, flushed) {
            (Err(detail), _) if reader.failed => return Err(failed(detail, false)),
            (Err(detail), Ok(w)) if w.failed => return Err(failed(detail, true)),
            (Err(detail), Err(_)) => return Err(failed(detail, true)),
            (Err(detail), Ok(_)) => {
                return Err(DeliveryError::permanent(
                    FailureReason::Payload,
                    format!("OpenPGP encryption of {what} failed: {detail}"),
                )
                .into())
            }
            (Ok(()), Err(detail)) => return Err(failed(detail, true)),
            (Ok(()), Ok(w)) => w.inner,
        };
        match file.fsync() {
            Ok(()) => {}
            // fsync@openssh.com is an extension; without it the rename still publishes whole files.
            Err(e) if e.code() == ErrorCode::SFTP(raw::LIBSSH2_FX_OP_UNSUPPORTED) => {}
            Err(e) => return Err(remote(&e, &format!("syncing {what}"))),
        }
        file.close()
            .map_err(|e| remote(&e, &format!("closing {what}")))?;
        publish(sftp, tmp, dest).map_err(|e| remote(&e, &format!("renaming {what} into place")))?;
        Ok(reader.bytes)
    }
}

/// Renames `tmp` to `dest`, replacing `dest`. SFTP version 3 servers (OpenSSH) ignore the
/// overwrite flag and refuse to replace a file, so an existing `dest` is removed, then renamed to.
fn publish(sftp: &Sftp, tmp: &str, dest: &str) -> Result<(), ssh2::Error> {
    let flags = Some(RenameFlags::OVERWRITE | RenameFlags::ATOMIC | RenameFlags::NATIVE);
    let (tmp, dest) = (Path::new(tmp), Path::new(dest));
    match sftp.rename(tmp, dest, flags) {
        Ok(()) => Ok(()),
        Err(first) => {
            if sftp.lstat(dest).is_err() {
                return Err(first);
            }
            sftp.unlink(dest)?;
            sftp.rename(tmp, dest, flags)
        }
    }
}

/// Creates `dir` and any missing parent (mode 0700).
fn ensure_dir(sftp: &Sftp, dir: &str) -> Result<(), Failure> {
    let what = "creating the remote folder";
    match sftp.stat(Path::new(dir)) {
        Ok(stat) if stat.is_dir() => return Ok(()),
        Ok(_) => {
            return Err(DeliveryError::permanent(
                FailureReason::BadConfig,
                format!("{what}: a file that is not a folder has its name"),
            )
            .into())
        }
        Err(e) if is_transport(&e) => return Err(remote(&e, what)),
        Err(_) => {}
    }
    let trimmed = dir.trim_end_matches('/');
    if let Some((parent, _)) = trimmed.rsplit_once('/') {
        if !parent.is_empty() {
            ensure_dir(sftp, parent)?;
        }
    }
    match sftp.mkdir(Path::new(trimmed), 0o700) {
        Ok(()) => Ok(()),
        // Created meanwhile by someone else: fine if it is a folder now.
        Err(e) => match sftp.stat(Path::new(trimmed)) {
            Ok(stat) if stat.is_dir() => Ok(()),
            _ => Err(remote(&e, what)),
        },
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// The submission id is the file name: it must be a plain ULID-like token, never a path.
fn checked_id(id: &str) -> Result<&str, DeliveryError> {
    if !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(id)
    } else {
        Err(DeliveryError::permanent(
            FailureReason::Payload,
            "the submission id is not a plain ULID; refusing to build a remote name from it",
        ))
    }
}

fn random_suffix() -> Result<String, DeliveryError> {
    let mut bytes = [0u8; 8];
    getrandom::getrandom(&mut bytes).map_err(|e| {
        DeliveryError::retryable(
            FailureReason::Internal,
            format!("the system random generator failed: {e}"),
        )
    })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Copies in fixed chunks: memory stays at one chunk whatever the file's size.
fn copy(input: &mut dyn Read, output: &mut dyn Write) -> io::Result<u64> {
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        output.write_all(buf.get(..n).unwrap_or_default())?;
        total += n as u64;
    }
}

/// Remembers whether the wrapped side failed, so a failure surfacing through the OpenPGP layer
/// is still classified by where it happened; counts the bytes read.
struct Watched<T> {
    inner: T,
    failed: bool,
    bytes: u64,
}

impl<T> Watched<T> {
    fn new(inner: T) -> Self {
        Watched {
            inner,
            failed: false,
            bytes: 0,
        }
    }

    fn note<R>(&mut self, r: io::Result<R>) -> io::Result<R> {
        if r.as_ref()
            .is_err_and(|e| e.kind() != io::ErrorKind::Interrupted)
        {
            self.failed = true;
        }
        r
    }
}

impl<T: Read> Read for Watched<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let r = self.inner.read(buf);
        let n = self.note(r)?;
        self.bytes += n as u64;
        Ok(n)
    }
}

impl<T: Write> Write for Watched<T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let r = self.inner.write(buf);
        self.note(r)
    }

    fn flush(&mut self) -> io::Result<()> {
        let r = self.inner.flush();
        self.note(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_could_be_paths_are_refused() {
        assert!(checked_id("01JD0000000000000000000000").is_ok());
        for bad in ["", "../x", "a/b", "a.b", "a b", "\u{e9}"] {
            assert!(checked_id(bad).is_err(), "{bad:?}");
        }
        assert_eq!(join("/in", "x"), "/in/x");
        assert_eq!(join("/in/", "x"), "/in/x");
    }
}

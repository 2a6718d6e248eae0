//! The contract between SecureForm's core and its sinks.
//!
//! The core ingests a request, normalizes it into one [`Submission`], seals it into the spool and
//! then hands it to each configured sink as a [`Delivery`]. A sink knows nothing of HTTP or of the
//! spool: it delivers, and either returns a [`Receipt`] or *classifies* its failure as a
//! [`DeliveryError`]: retryable or permanent, with a [`FailureReason`], a message, and the wait a
//! peer may have asked for (`Retry-After`). Backoff, attempts and the dead state belong to the
//! dispatcher, in one place.
//!
//! Every sink also states, from its configuration alone, whether what it writes is encrypted at
//! rest ([`AtRest`]). A form's status is the weakest of its sinks' (see [`AtRest::weakest`]).

#![warn(missing_docs)]

use std::fmt;
use std::future::Future;
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

mod spec;
pub use spec::{BuildContext, SinkSpec};

/// The body format a submission arrived in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// `application/x-www-form-urlencoded`, as an HTML form posts by default.
    Urlencoded,
    /// `multipart/form-data`, the HTML form encoding that carries file uploads.
    Multipart,
    /// A JSON object of fields.
    Json,
    /// Adobe's Forms Data Format (FDF), as Acrobat or Reader submits a PDF form.
    Fdf,
    /// XFDF, the XML form of FDF.
    Xfdf,
    /// The whole filled-in PDF, its field values read from the form; the PDF itself is kept as a
    /// file.
    Pdf,
}

impl Source {
    /// The lowercase name used in JSON, logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Urlencoded => "urlencoded",
            Source::Multipart => "multipart",
            Source::Json => "json",
            Source::Fdf => "fdf",
            Source::Xfdf => "xfdf",
            Source::Pdf => "pdf",
        }
    }
}

/// One value of a field: JSON submissions may carry numbers and booleans; every other format
/// yields text.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Scalar {
    /// `true` or `false`, from a JSON submission.
    Bool(bool),
    /// A number, from a JSON submission.
    Number(serde_json::Number),
    /// Text: every value of the other formats, and JSON strings.
    Text(String),
}

impl Scalar {
    /// The value as text, as a person reading an email or a CSV file would expect it.
    pub fn to_text(&self) -> String {
        match self {
            Scalar::Bool(b) => b.to_string(),
            Scalar::Number(n) => n.to_string(),
            Scalar::Text(s) => s.clone(),
        }
    }
}

impl From<&str> for Scalar {
    fn from(s: &str) -> Self {
        Scalar::Text(s.to_owned())
    }
}

impl From<String> for Scalar {
    fn from(s: String) -> Self {
        Scalar::Text(s)
    }
}

/// A field's value: one value, or several when the name was repeated (or a multi-select list).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum FieldValue {
    /// A single value.
    One(Scalar),
    /// Several values, in the order they arrived.
    Many(Vec<Scalar>),
}

// `Scalar` and `FieldValue` are read by visitors of their own rather than derived as untagged
// enums: serde reads an untagged enum by buffering each value and trying every variant in turn,
// which made reading a stored submission several times slower than writing it. Anything else
// (null, an object, an array inside an array) is refused as the wrong type, as before.

/// Reads a string, a number or a boolean.
struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string, a number or a boolean")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar::Number(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
        Ok(Scalar::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
        serde_json::Number::from_f64(v)
            .map(Scalar::Number)
            .ok_or_else(|| E::invalid_value(de::Unexpected::Float(v), &self))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar::Text(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
        Ok(Scalar::Text(v))
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarVisitor)
    }
}

/// Reads one scalar, or an array of them.
struct FieldValueVisitor;

impl<'de> Visitor<'de> for FieldValueVisitor {
    type Value = FieldValue;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string, a number, a boolean or an array of them")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<FieldValue, E> {
        ScalarVisitor.visit_bool(v).map(FieldValue::One)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<FieldValue, E> {
        ScalarVisitor.visit_i64(v).map(FieldValue::One)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<FieldValue, E> {
        ScalarVisitor.visit_u64(v).map(FieldValue::One)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<FieldValue, E> {
        ScalarVisitor.visit_f64(v).map(FieldValue::One)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<FieldValue, E> {
        ScalarVisitor.visit_str(v).map(FieldValue::One)
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<FieldValue, E> {
        ScalarVisitor.visit_string(v).map(FieldValue::One)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<FieldValue, A::Error> {
        let mut values = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(value) = seq.next_element::<Scalar>()? {
            values.push(value);
        }
        Ok(FieldValue::Many(values))
    }
}

impl<'de> Deserialize<'de> for FieldValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(FieldValueVisitor)
    }
}

impl FieldValue {
    /// Every value, in order.
    pub fn values(&self) -> Vec<&Scalar> {
        match self {
            FieldValue::One(v) => vec![v],
            FieldValue::Many(vs) => vs.iter().collect(),
        }
    }

    /// The values as text joined with ", ", for one-line renderings (CSV cells, email lines).
    pub fn to_text(&self) -> String {
        self.values()
            .iter()
            .map(|v| v.to_text())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The fields of a submission, in the order they were received. Serialized as a JSON object
/// whose keys keep that order.
///
/// Names are indexed by hash (an insertion-ordered map), so adding a value under a repeated name
/// costs the same as under a new one: a body with 100,000 distinct names is read in linear time,
/// not quadratic. Two `Fields` are equal when they hold the same names, in the same order, with
/// the same values.
#[derive(Clone, Debug, Default)]
pub struct Fields(IndexMap<String, FieldValue>);

impl PartialEq for Fields {
    fn eq(&self, other: &Self) -> bool {
        // IndexMap's own equality ignores order; the order of fields is part of a submission.
        self.0.len() == other.0.len() && self.0.iter().eq(other.0.iter())
    }
}

impl Fields {
    /// An empty set of fields.
    pub fn new() -> Self {
        Fields(IndexMap::new())
    }

    /// Adds one value; a repeated name turns its value into a list, keeping its first position.
    pub fn push(&mut self, name: impl Into<String>, value: impl Into<Scalar>) {
        let value = value.into();
        match self.0.entry(name.into()) {
            indexmap::map::Entry::Occupied(mut slot) => append(slot.get_mut(), value),
            indexmap::map::Entry::Vacant(slot) => {
                slot.insert(FieldValue::One(value));
            }
        }
    }

    /// Sets a field to a whole value (a list stays a list even with one element); a repeated
    /// name has its values appended.
    pub fn insert(&mut self, name: impl Into<String>, value: FieldValue) {
        match self.0.entry(name.into()) {
            indexmap::map::Entry::Occupied(mut slot) => match value {
                FieldValue::One(v) => append(slot.get_mut(), v),
                FieldValue::Many(vs) => {
                    for v in vs {
                        append(slot.get_mut(), v);
                    }
                }
            },
            indexmap::map::Entry::Vacant(slot) => {
                slot.insert(value);
            }
        }
    }

    /// The value of the field `name`, if there is one.
    pub fn get(&self, name: &str) -> Option<&FieldValue> {
        self.0.get(name)
    }

    /// Whether a field of this name exists.
    pub fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// Removes a field, keeping the order of the others.
    pub fn remove(&mut self, name: &str) -> Option<FieldValue> {
        self.0.shift_remove(name)
    }

    /// The fields with their values, in the order they arrived.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &FieldValue)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v))
    }

    /// The number of names.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no fields at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Appends `value` to a field's value, turning one value into a list.
fn append(existing: &mut FieldValue, value: Scalar) {
    match existing {
        FieldValue::Many(all) => all.push(value),
        FieldValue::One(_) => {
            let previous = std::mem::replace(existing, FieldValue::Many(Vec::with_capacity(2)));
            if let (FieldValue::One(first), FieldValue::Many(all)) = (previous, existing) {
                all.push(first);
                all.push(value);
            }
        }
    }
}

impl Serialize for Fields {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in self.iter() {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldsVisitor;
        impl<'de> Visitor<'de> for FieldsVisitor {
            type Value = Fields;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of fields")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Fields, A::Error> {
                let mut fields = Fields::new();
                while let Some((name, value)) = access.next_entry::<String, FieldValue>()? {
                    fields.insert(name, value);
                }
                Ok(fields)
            }
        }
        deserializer.deserialize_map(FieldsVisitor)
    }
}

/// Metadata of one uploaded file. The file name is kept as metadata only: nothing is ever written
/// under a name that came from a client.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileMeta {
    /// The form field the file was uploaded under.
    pub field: String,
    /// The file name the client sent (metadata only, never used as a path).
    pub filename: String,
    /// The content type the client declared for the file.
    pub content_type: String,
    /// The file's size in bytes.
    pub size: u64,
    /// Lowercase hex SHA-256 of the file's bytes.
    pub sha256: String,
}

/// The normalized submission: what every format becomes, and what every sink receives.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Submission {
    /// A ULID: sortable and unique; the idempotency key of every sink.
    pub id: String,
    /// The form it was posted to: its name in the configuration (`/f/<form>`).
    pub form: String,
    /// RFC 3339, UTC, whole seconds.
    pub received_at: String,
    /// The body format the submission arrived in.
    pub source: Source,
    /// The submitted fields and their values, in order.
    pub fields: Fields,
    /// Metadata of the uploaded files; their bytes come from the delivery's [`FileSource`].
    pub files: Vec<FileMeta>,
}

/// Gives a sink the plaintext bytes of a submission's files, one at a time, streamed: a sink must
/// never need a whole file in memory.
pub trait FileSource: Send + Sync {
    /// Opens file `index` of the submission's `files` array.
    fn open(&self, index: usize) -> std::io::Result<Box<dyn Read + Send>>;
}

/// A [`FileSource`] for submissions without files, and for tests that hold files in memory.
pub struct MemoryFiles(pub Vec<Vec<u8>>);

impl FileSource for MemoryFiles {
    fn open(&self, index: usize) -> std::io::Result<Box<dyn Read + Send>> {
        match self.0.get(index) {
            Some(bytes) => Ok(Box::new(std::io::Cursor::new(bytes.clone()))),
            None => Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("no file {index}"),
            )),
        }
    }
}

/// What a sink is given for one delivery. Both parts are shared (`Arc`), so a sink can clone them
/// into `tokio::task::spawn_blocking` for blocking work (disk, ssh2, large encryptions).
pub struct Delivery<'a> {
    /// The submission to deliver.
    pub submission: &'a Arc<Submission>,
    /// Its files' plaintext bytes, by index into [`Submission::files`].
    pub files: &'a Arc<dyn FileSource>,
}

impl<'a> Delivery<'a> {
    /// Pairs a submission with the source of its files.
    pub fn new(submission: &'a Arc<Submission>, files: &'a Arc<dyn FileSource>) -> Self {
        Delivery { submission, files }
    }
}

/// How well a sink protects what it writes once written. Ordered from weakest to strongest, so
/// that a form's status is the minimum over its sinks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AtRestLevel {
    /// Written in plaintext at the destination (TLS-only email, SFTP without PGP, `none`).
    Plaintext,
    /// Encrypted, with a known weakness the owner must know of (MariaDB's AES-128-ECB).
    Weak,
    /// Encrypted with a modern authenticated or public-key scheme.
    Encrypted,
}

/// A sink's at-rest status, derived from its configuration alone (no I/O).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AtRest {
    /// How well the sink protects what it writes.
    pub level: AtRestLevel,
    /// One sentence a form's owner can act on: how it is encrypted, or why it is not.
    pub detail: String,
}

impl AtRest {
    /// An [`AtRestLevel::Encrypted`] status with its explanation.
    pub fn encrypted(detail: impl Into<String>) -> Self {
        AtRest {
            level: AtRestLevel::Encrypted,
            detail: detail.into(),
        }
    }

    /// An [`AtRestLevel::Weak`] status with the weakness the owner must know of.
    pub fn weak(detail: impl Into<String>) -> Self {
        AtRest {
            level: AtRestLevel::Weak,
            detail: detail.into(),
        }
    }

    /// An [`AtRestLevel::Plaintext`] status with the reason it is not encrypted.
    pub fn plaintext(detail: impl Into<String>) -> Self {
        AtRest {
            level: AtRestLevel::Plaintext,
            detail: detail.into(),
        }
    }

    /// Whether the owner must be warned about this sink.
    pub fn needs_warning(&self) -> bool {
        self.level < AtRestLevel::Encrypted
    }

    /// The weakest level among `levels`, [`AtRestLevel::Encrypted`] for none.
    pub fn weakest<'a>(all: impl IntoIterator<Item = &'a AtRest>) -> AtRestLevel {
        all.into_iter()
            .map(|a| a.level)
            .min()
            .unwrap_or(AtRestLevel::Encrypted)
    }
}

/// What a sink hands back on success: where the submission now is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// What `value` names: "document", "message_id", "row", "remote_path".
    pub kind: String,
    /// Where the submission now is: a document id, a message id, `<table>/<id>` for a row, or a
    /// remote path.
    pub value: String,
}

impl Receipt {
    /// A receipt of this kind and value.
    pub fn new(kind: impl Into<String>, value: impl Into<String>) -> Self {
        Receipt {
            kind: kind.into(),
            value: value.into(),
        }
    }
}

/// Whether a transport failure's sources show a TLS failure: rustls reports a failed handshake
/// or a certificate it cannot trust as an `InvalidData` I/O error, and other layers name the
/// certificate. For sinks that classify [`FailureReason::Tls`] from a client library's error.
pub fn caused_by_tls(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = error.source();
    while let Some(err) = current {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::InvalidData {
                return true;
            }
        }
        let text = err.to_string();
        if text.contains("certificate") || text.contains("Certificate") {
            return true;
        }
        current = err.source();
    }
    false
}

/// Why a delivery failed, in one machine-readable word: what an integrator or an alert can act
/// on without parsing the message. The sink chooses it together with whether the failure is
/// retryable; the two are independent (a `timeout` is usually retryable, an `auth` failure
/// usually not, but a sink may know better).
///
/// The names ([`FailureReason::as_str`]) are part of the HTTP contract (`failure_reason` in
/// `GET /api/v1/submissions/{id}`, and `openapi.yaml`): a reason may be added, never renamed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    /// The peer could not be reached, or the connection broke: a name that does not resolve, a
    /// refused or reset connection, a connection closed mid-way.
    Connection,
    /// The peer did not answer in time.
    Timeout,
    /// No trusted secure channel: a TLS handshake or certificate that does not verify, STARTTLS
    /// not offered, an SSH host key other than the pinned one.
    Tls,
    /// The peer refused the sink's credentials or its right to do this (HTTP 401/403, SMTP
    /// 530/535, SSH authentication, MySQL access denied, SFTP permission denied).
    Auth,
    /// The peer (or our own disk) is out of room or asks us to slow down: HTTP 429, a full
    /// mailbox or disk, too many connections.
    Quota,
    /// The peer answered and refused this delivery: other HTTP 4xx and redirects, an SMTP 5xx
    /// for the recipient or the message, a constraint of the table.
    RejectedByPeer,
    /// The peer answered with a failure of its own: HTTP 5xx, SMTP 4xx, a database deadlock, a
    /// generic SFTP failure, a reply that breaks the protocol.
    PeerError,
    /// The sink's configuration or the destination's setup does not fit: a table that lacks a
    /// column, a remote folder that is a file, a URL refused by the SSRF guard, a sink that is no
    /// longer configured.
    BadConfig,
    /// The submission itself cannot be delivered: its payload or a file is gone from the spool
    /// or damaged, or it cannot be rendered or encrypted for this sink.
    Payload,
    /// A failure inside this service: a lost task, the spool unreadable for a moment, the
    /// random generator, a local I/O error.
    Internal,
    /// The submission was erased (on request or by retention) before it was delivered.
    Erased,
    /// Anything not classified above (and failures recorded before reasons were kept).
    Other,
}

impl FailureReason {
    /// Every reason, in declaration order.
    pub const ALL: [FailureReason; 12] = [
        FailureReason::Connection,
        FailureReason::Timeout,
        FailureReason::Tls,
        FailureReason::Auth,
        FailureReason::Quota,
        FailureReason::RejectedByPeer,
        FailureReason::PeerError,
        FailureReason::BadConfig,
        FailureReason::Payload,
        FailureReason::Internal,
        FailureReason::Erased,
        FailureReason::Other,
    ];

    /// The `snake_case` name used in JSON, in the spool and in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::Connection => "connection",
            FailureReason::Timeout => "timeout",
            FailureReason::Tls => "tls",
            FailureReason::Auth => "auth",
            FailureReason::Quota => "quota",
            FailureReason::RejectedByPeer => "rejected_by_peer",
            FailureReason::PeerError => "peer_error",
            FailureReason::BadConfig => "bad_config",
            FailureReason::Payload => "payload",
            FailureReason::Internal => "internal",
            FailureReason::Erased => "erased",
            FailureReason::Other => "other",
        }
    }

    /// The reason named `name` ([`FailureReason::as_str`]); `None` for an unknown name.
    pub fn parse(name: &str) -> Option<FailureReason> {
        FailureReason::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed delivery, classified by the sink: whether it is worth trying again, why it failed
/// ([`FailureReason`]), a message for people, and optionally how long the peer asked us to wait
/// before the next attempt (HTTP `Retry-After`).
///
/// The message must never carry field values, file names or file contents: it is stored and
/// shown to integrators.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryError {
    retryable: bool,
    reason: FailureReason,
    message: String,
    retry_after: Option<Duration>,
}

impl DeliveryError {
    /// Worth trying again later: the peer is down, busy, or failed on its side.
    pub fn retryable(reason: FailureReason, message: impl Into<String>) -> Self {
        DeliveryError {
            retryable: true,
            reason,
            message: message.into(),
            retry_after: None,
        }
    }

    /// Will fail the same way every time: refused credentials, a pinned key mismatch, a
    /// rejected request, a table that does not fit.
    pub fn permanent(reason: FailureReason, message: impl Into<String>) -> Self {
        DeliveryError {
            retryable: false,
            reason,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The peer asked for the next attempt to wait at least `after` (meaningful on a retryable
    /// error only; the dispatcher bounds it).
    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    /// Whether the dispatcher should try again.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    /// Why it failed.
    pub fn reason(&self) -> FailureReason {
        self.reason
    }

    /// What went wrong, for people (no field values).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The message, taken.
    pub fn into_message(self) -> String {
        self.message
    }

    /// The wait the peer asked for, if it asked.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

impl fmt::Display for DeliveryError {
    /// `retryable (timeout): <message>` or `permanent (auth): <message>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.retryable {
            "retryable"
        } else {
            "permanent"
        };
        write!(f, "{kind} ({}): {}", self.reason, self.message)
    }
}

impl std::error::Error for DeliveryError {}

/// A problem in one sink's configuration, found without any I/O (or while loading a key file it
/// names). `key` is the configuration key at fault, e.g. `recipient_keys`; the service adds the
/// file and the table.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigError {
    /// The configuration key at fault, e.g. `recipient_keys`.
    pub key: String,
    /// What is wrong with it.
    pub message: String,
}

impl ConfigError {
    /// An error for configuration key `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// What every sink implements. Sinks are a closed set in the service (an enum with exhaustive
/// matches); this trait only keeps their shape the same.
pub trait Sink: Send + Sync {
    /// Delivers one submission. Must be idempotent on `submission.id`: a redelivery of the same
    /// submission must not produce a second copy where the destination can tell.
    fn deliver(
        &self,
        delivery: &Delivery<'_>,
    ) -> impl Future<Output = Result<Receipt, DeliveryError>> + Send;

    /// Reaches the sink's peer as a delivery would, delivering nothing: for the start-up report,
    /// `secureform check --online` and `/readyz`. A sink with no peer (a local store) is healthy
    /// once built, the default.
    fn healthcheck(&self) -> impl Future<Output = Result<(), DeliveryError>> + Send {
        async { Ok(()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_names_become_lists_in_first_position() {
        let mut f = Fields::new();
        f.push("topic", "billing");
        f.push("email", "a@example.com");
        f.push("topic", "support");
        let json = serde_json::to_string(&f).unwrap();
        assert_eq!(
            json,
            r#"{"topic":["billing","support"],"email":"a@example.com"}"#
        );
        let back: Fields = serde_json::from_str(&json).unwrap();
        assert_eq!(back, f);
    }

    #[test]
    fn order_is_part_of_equality_and_removal_keeps_it() {
        let mut ab = Fields::new();
        ab.push("a", "1");
        ab.push("b", "2");
        ab.push("c", "3");
        let mut ba = Fields::new();
        ba.push("b", "2");
        ba.push("a", "1");
        ba.push("c", "3");
        assert_ne!(ab, ba);
        ab.remove("a");
        ba.remove("a");
        assert_eq!(ab, ba);
        let names: Vec<&str> = ab.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["b", "c"]);
        assert!(ab.contains("c") && !ab.contains("a"));
    }

    #[test]
    fn every_kind_of_value_reads_back_as_written() {
        let json = concat!(
            r#"{"t":"a \"q\" \u00e9","b":false,"i":-7,"u":18446744073709551615,"f":1.5,"#,
            r#""e":1e-7,"l":["x",2,true,-0.25],"none":[]}"#
        );
        let fields: Fields = serde_json::from_str(json).unwrap();
        assert_eq!(
            fields.get("t"),
            Some(&FieldValue::One(Scalar::Text("a \"q\" é".to_owned())))
        );
        assert_eq!(
            fields.get("u").map(FieldValue::to_text).as_deref(),
            Some("18446744073709551615")
        );
        assert_eq!(fields.get("none"), Some(&FieldValue::Many(Vec::new())));
        let again: Fields = serde_json::from_str(&serde_json::to_string(&fields).unwrap()).unwrap();
        assert_eq!(again, fields);
        assert_eq!(
            serde_json::to_string(&fields).unwrap(),
            concat!(
                r#"{"t":"a \"q\" é","b":false,"i":-7,"u":18446744073709551615,"f":1.5,"#,
                r#""e":1e-7,"l":["x",2,true,-0.25],"none":[]}"#
            )
        );
        for refused in [
            r#"{"a":null}"#,
            r#"{"a":{"b":1}}"#,
            r#"{"a":[["x"]]}"#,
            r#"{"a":[null]}"#,
            r#"{"a":[{}]}"#,
            r#"["a"]"#,
        ] {
            let err = serde_json::from_str::<Fields>(refused).unwrap_err();
            assert!(err.is_data(), "{refused}: {err}");
        }
    }

    #[test]
    fn failure_reasons_have_stable_snake_case_names() {
        for r in FailureReason::ALL {
            assert_eq!(FailureReason::parse(r.as_str()), Some(r));
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
            assert!(r
                .as_str()
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_'));
        }
        assert_eq!(FailureReason::RejectedByPeer.as_str(), "rejected_by_peer");
        assert_eq!(FailureReason::parse("nope"), None);
        let mut names: Vec<_> = FailureReason::ALL.iter().map(|r| r.as_str()).collect();
        names.dedup();
        assert_eq!(names.len(), FailureReason::ALL.len());
    }

    #[test]
    fn delivery_errors_carry_their_classification() {
        let e = DeliveryError::retryable(FailureReason::PeerError, "HTTP 503")
            .with_retry_after(Duration::from_secs(3));
        assert!(e.is_retryable());
        assert_eq!(e.reason(), FailureReason::PeerError);
        assert_eq!(e.message(), "HTTP 503");
        assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
        assert_eq!(e.to_string(), "retryable (peer_error): HTTP 503");
        let p = DeliveryError::permanent(FailureReason::Auth, "535 refused");
        assert!(!p.is_retryable() && p.retry_after().is_none());
        assert_eq!(p.to_string(), "permanent (auth): 535 refused");
        assert_eq!(p.into_message(), "535 refused");
    }

    #[test]
    fn weakest_level_wins() {
        let all = [
            AtRest::encrypted("a"),
            AtRest::plaintext("b"),
            AtRest::weak("c"),
        ];
        assert_eq!(AtRest::weakest(&all), AtRestLevel::Plaintext);
        assert_eq!(AtRest::weakest(&[]), AtRestLevel::Encrypted);
    }
}

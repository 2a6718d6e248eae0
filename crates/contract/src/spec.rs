//! How a sink crate presents itself to the service: a [`SinkSpec`] per sink kind.
//!
//! The service lists the sink kinds in one place (`src/registry.rs`); everything it does with a
//! sink — parse its `[sinks.NAME]` table, validate it, state its at-rest status, check it for
//! `secureform check`, build it — goes through this trait. A sink crate implements it on a unit
//! type, conventionally `pub struct Spec;`.

use std::fmt::Debug;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use secureform_crypto::pgp::Signer;
use secureform_crypto::KeyRing;
use serde::de::DeserializeOwned;

use crate::{AtRest, ConfigError, Sink};

/// What the service gives a sink when it builds it.
#[derive(Clone)]
pub struct BuildContext<'a> {
    /// The sink's name, the `NAME` of `[sinks.NAME]` (for logs and messages).
    pub name: &'a str,
    /// The configuration file's folder: relative paths in the sink's table resolve against it.
    pub base_dir: &'a Path,
    /// The sink's own state folder, `<data_dir>/sinks/<name>`. Not created by the service: a sink
    /// that keeps state creates it when it is built (the Documents store keeps its documents
    /// there); nothing else writes into it.
    pub state_dir: PathBuf,
    /// Where the sink keeps keys that must not be backed up with the data folder,
    /// `<data_dir>-keys/<name>` (per-document data keys: destroying one erases its document).
    pub key_dir: PathBuf,
    /// The service's key-encryption keys.
    pub keys: Arc<KeyRing>,
    /// The service's PGP signing key, when `[storage] pgp_signing_key` is set.
    pub signer: Option<Arc<Signer>>,
}

impl BuildContext<'_> {
    /// A path from the sink's configuration, resolved against the configuration's folder.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        self.base_dir.join(path)
    }
}

/// One kind of sink, as the service sees it.
pub trait SinkSpec {
    /// The `[sinks.NAME]` table without its `type` key. Implementations use
    /// `#[serde(deny_unknown_fields)]`, so that a misspelt key is an error, not a default.
    type Config: DeserializeOwned + Clone + Debug + Send + Sync + 'static;
    /// The built sink.
    type Sink: Sink + 'static;

    /// Whether the sink writes on this machine only (the Documents store): then
    /// `secureform check --online` has no peer to reach, and does not build it (building would
    /// create its state folder).
    const LOCAL: bool = false;

    /// Pure checks of the configuration (no I/O): values in range, required combinations.
    fn validate(config: &Self::Config) -> Result<(), ConfigError>;

    /// How what this sink writes is protected at rest, from the configuration alone. The service
    /// reports it at start, in `secureform check` and in `GET /api/v1/forms`, and warns when a
    /// form delivers to a sink that is not encrypted at rest.
    fn at_rest(config: &Self::Config) -> AtRest;

    /// What `secureform check` runs: everything that can be checked without reaching another
    /// machine or creating a file (keys, certificates, secrets). Defaults to [`Self::validate`].
    fn check_offline(
        config: &Self::Config,
        context: &BuildContext<'_>,
    ) -> impl Future<Output = Result<(), ConfigError>> + Send {
        let _ = context;
        let result = Self::validate(config);
        async move { result }
    }

    /// Loads the sink's keys and secrets and prepares its client. A peer that is down must not
    /// fail (or hold up) the build: the first delivery, or [`Sink::healthcheck`], finds out.
    fn build(
        config: &Self::Config,
        context: BuildContext<'_>,
    ) -> impl Future<Output = Result<Self::Sink, ConfigError>> + Send;
}

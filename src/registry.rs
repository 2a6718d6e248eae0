//! The sink registry: the one place that lists the sink kinds.
//!
//! Each kind is one line of [`sinks!`]: its `type` name in the configuration, the variant name,
//! and the sink crate's [`SinkSpec`]. The macro generates [`SinkConfig`] (the parsed
//! `[sinks.NAME]` table) and [`BuiltSink`] (a sink ready to deliver), and everything the service
//! does with a sink goes through them and the spec: parsing, validation, the at-rest status,
//! `secureform check`, building, delivery and health checks. Adding a sink is a new crate in
//! `sinks/` with a `Spec`, a dependency in `Cargo.toml`, and one line here (see
//! docs/architecture.md).

use std::path::Path;
use std::sync::Arc;

use secureform_contract::{
    AtRest, BuildContext, ConfigError, Delivery, DeliveryError, Receipt, Sink, SinkSpec,
};
use secureform_crypto::pgp::Signer;
use secureform_crypto::KeyRing;
use serde::Deserialize;

use crate::config::Config;

/// Generates [`SinkConfig`] and [`BuiltSink`] from the list of kinds.
macro_rules! sinks {
    ($($kind:literal => $variant:ident($spec:ty),)+) => {
        /// `[sinks.NAME]`: one variant per sink kind, chosen by its `type`.
        #[derive(Clone, Debug, Deserialize)]
        #[serde(tag = "type")]
        pub enum SinkConfig {
            $(#[serde(rename = $kind)] $variant(<$spec as SinkSpec>::Config),)+
        }

        /// A sink ready to deliver.
        pub enum BuiltSink {
            $($variant(Box<<$spec as SinkSpec>::Sink>),)+
        }

        /// Every sink kind's `type`, in the order listed.
        pub const KINDS: &[&str] = &[$($kind),+];

        impl SinkConfig {
            /// The sink's kind, as written in `type`.
            pub fn kind(&self) -> &'static str {
                match self {
                    $(SinkConfig::$variant(_) => $kind,)+
                }
            }

            /// How what the sink writes is protected at rest, from its configuration alone.
            pub fn at_rest(&self) -> AtRest {
                match self {
                    $(SinkConfig::$variant(c) => <$spec>::at_rest(c),)+
                }
            }

            /// Pure checks of the table (no I/O).
            pub fn validate(&self) -> Result<(), ConfigError> {
                match self {
                    $(SinkConfig::$variant(c) => <$spec>::validate(c),)+
                }
            }

            /// Whether the sink writes on this machine only (see [`SinkSpec::LOCAL`]).
            pub fn is_local(&self) -> bool {
                match self {
                    $(SinkConfig::$variant(_) => <$spec as SinkSpec>::LOCAL,)+
                }
            }

            async fn check_offline(&self, context: &BuildContext<'_>) -> Result<(), ConfigError> {
                match self {
                    $(SinkConfig::$variant(c) => <$spec>::check_offline(c, context).await,)+
                }
            }

            async fn build(&self, context: BuildContext<'_>) -> Result<BuiltSink, ConfigError> {
                match self {
                    $(SinkConfig::$variant(c) => <$spec>::build(c, context)
                        .await
                        .map(|s| BuiltSink::$variant(Box::new(s))),)+
                }
            }
        }

        impl BuiltSink {
            /// Delivers one submission (see [`Sink::deliver`]).
            pub async fn deliver(&self, delivery: &Delivery<'_>) -> Result<Receipt, DeliveryError> {
                match self {
                    $(BuiltSink::$variant(s) => s.deliver(delivery).await,)+
                }
            }

            /// Reaches the sink's peer as a delivery would, delivering nothing (see
            /// [`crate::health`]).
            pub async fn healthcheck(&self) -> Result<(), DeliveryError> {
                match self {
                    $(BuiltSink::$variant(s) => s.healthcheck().await,)+
                }
            }
        }
    };
}

sinks! {
    "documents" => Documents(secureform_documents::Spec),
    "sftp" => Sftp(secureform_sftp::Spec),
    "mysql" => Mysql(secureform_mysql::Spec),
    "email" => Email(secureform_email::Spec),
    "webhook" => Webhook(secureform_webhook::Spec),
}

/// The context sink `name` is built in: its state folder `<data_dir>/sinks/<name>`, its key
/// folder `<data_dir>-keys/<name>` (see [`crate::documents::data_keys_dir`]), the keys and the
/// signer.
fn context<'a>(
    name: &'a str,
    config: &'a Config,
    keys: Arc<KeyRing>,
    signer: Option<Arc<Signer>>,
) -> BuildContext<'a> {
    BuildContext {
        name,
        base_dir: &config.base_dir,
        state_dir: state_dir(&config.data_dir, name),
        key_dir: crate::documents::data_keys_dir(config, name),
        keys,
        signer,
    }
}

/// The state folder of sink `name`.
pub fn state_dir(data_dir: &Path, name: &str) -> std::path::PathBuf {
    data_dir.join("sinks").join(name)
}

/// A sink that cannot be set up: its configuration file, its table and the key at fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: [sinks.{sink}] {error}")]
pub struct SinkSetupError {
    /// The configuration's origin (its file, or the embedded default).
    pub origin: String,
    /// The sink's name (its `[sinks.NAME]` table).
    pub sink: String,
    /// The key at fault and what is wrong with it.
    #[source]
    pub error: ConfigError,
}

/// Names the sink and the configuration file in a sink's configuration error.
fn named(config: &Config, name: &str, error: ConfigError) -> SinkSetupError {
    SinkSetupError {
        origin: config.origin.to_string(),
        sink: name.to_owned(),
        error,
    }
}

impl BuiltSink {
    /// Builds sink `name`: loads and checks its keys, certificates and secrets, prepares its
    /// client. Connects nowhere (a peer that is down is found by the first delivery or the
    /// health check).
    pub async fn build(
        name: &str,
        sink: &SinkConfig,
        config: &Config,
        keys: Arc<KeyRing>,
        signer: Option<Arc<Signer>>,
    ) -> Result<BuiltSink, SinkSetupError> {
        sink.build(context(name, config, keys, signer))
            .await
            .map_err(|e| named(config, name, e))
    }
}

/// Checks every sink's keys, certificates and secrets without connecting anywhere or creating
/// anything (for `secureform check`). An error is a [`SinkSetupError`], or an earlier
/// version's Documents store that `serve` could not place.
pub async fn check_offline(
    config: &Config,
    keys: Arc<KeyRing>,
    signer: &Option<Arc<Signer>>,
) -> anyhow::Result<()> {
    // `serve` would refuse to start on an earlier version's store it cannot place.
    crate::documents::legacy_move(config)?;
    for (name, sink) in &config.sinks {
        let context = context(name, config, Arc::clone(&keys), signer.clone());
        sink.check_offline(&context)
            .await
            .map_err(|e| named(config, name, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each kind parses from its `type`, and an unknown `type` names the known ones.
    #[test]
    fn every_kind_parses_from_its_type_name() {
        for kind in KINDS {
            let table = format!("type = \"{kind}\"\n");
            match toml::from_str::<SinkConfig>(&table) {
                Ok(sink) => assert_eq!(sink.kind(), *kind),
                // A kind with required keys says which one is missing, not that the type is
                // unknown.
                Err(e) => assert!(e.to_string().contains("missing field"), "{kind}: {e}"),
            }
        }
        let unknown = toml::from_str::<SinkConfig>("type = \"fax\"\n").unwrap_err();
        for kind in KINDS {
            assert!(unknown.to_string().contains(kind), "{unknown}");
        }
    }
}

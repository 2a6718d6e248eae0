//! The built sinks: a closed set. Adding a sink means adding a variant here, and the compiler then
//! asks for its at-rest class, its building and its delivery in every `match`.

use std::sync::Arc;

use secureform_contract::{AtRest, Delivery, DeliveryError, Receipt, Sink};
use secureform_crypto::pgp::Signer;
use secureform_crypto::KeyRing;
use secureform_documents::DocumentsSink;
use secureform_email::EmailSink;
use secureform_mysql::MysqlSink;
use secureform_sftp::SftpSink;
use secureform_webhook::WebhookSink;

use crate::config::{Config, SinkConfig};

/// A sink ready to deliver.
pub enum BuiltSink {
    Documents(DocumentsSink),
    Sftp(SftpSink),
    Mysql(Box<MysqlSink>),
    Email(Box<EmailSink>),
    Webhook(Box<WebhookSink>),
}

impl BuiltSink {
    /// Builds one sink: loads and checks its keys and certificates, prepares its client.
    pub async fn build(
        name: &str,
        sink: &SinkConfig,
        config: &Config,
        keys: Arc<KeyRing>,
        signer: Option<Arc<Signer>>,
    ) -> Result<BuiltSink, String> {
        let named = |e: secureform_contract::ConfigError| {
            format!("{}: [sinks.{name}] {}: {}", config.origin, e.key, e.message)
        };
        match sink {
            SinkConfig::Documents(c) => {
                // Each documents sink has a store of its own (see `crate::documents`).
                crate::documents::migrate_legacy(config).map_err(|e| format!("{e:#}"))?;
                DocumentsSink::build(
                    c,
                    &config.base_dir,
                    &crate::documents::store_root(&config.data_dir, name),
                    keys,
                    signer,
                )
                .map(BuiltSink::Documents)
                .map_err(named)
            }
            SinkConfig::Sftp(c) => SftpSink::build(name, c, &config.base_dir, signer)
                .await
                .map(BuiltSink::Sftp)
                .map_err(named),
            SinkConfig::Mysql(c) => MysqlSink::build(name, c, &config.base_dir)
                .await
                .map(|s| BuiltSink::Mysql(Box::new(s)))
                .map_err(named),
            SinkConfig::Email(c) => EmailSink::build(name, c, &config.base_dir, signer)
                .await
                .map(|s| BuiltSink::Email(Box::new(s)))
                .map_err(named),
            SinkConfig::Webhook(c) => WebhookSink::build(name, c, &config.base_dir, signer)
                .await
                .map(|s| BuiltSink::Webhook(Box::new(s)))
                .map_err(named),
        }
    }

    #[allow(dead_code)] // for the integrator API
    pub fn at_rest(&self) -> AtRest {
        match self {
            BuiltSink::Documents(s) => s.at_rest(),
            BuiltSink::Sftp(s) => s.at_rest(),
            BuiltSink::Mysql(s) => s.at_rest(),
            BuiltSink::Email(s) => s.at_rest(),
            BuiltSink::Webhook(s) => s.at_rest(),
        }
    }

    /// Reaches the sink's server as a delivery would, delivering nothing (see
    /// [`crate::health`]). The Documents store is local: it is healthy when it is open.
    pub async fn healthcheck(&self) -> Result<(), String> {
        match self {
            BuiltSink::Documents(_) => Ok(()),
            BuiltSink::Sftp(s) => s.healthcheck().await.map_err(|e| e.into_message()),
            BuiltSink::Mysql(s) => s
                .healthcheck()
                .await
                .map_err(|e| format!("{}: {}", e.key, e.message)),
            BuiltSink::Email(s) => s.healthcheck().await.map_err(|e| e.into_message()),
            BuiltSink::Webhook(s) => s.healthcheck().await.map_err(|e| e.into_message()),
        }
    }

    pub async fn deliver(&self, delivery: &Delivery<'_>) -> Result<Receipt, DeliveryError> {
        match self {
            BuiltSink::Documents(s) => s.deliver(delivery).await,
            BuiltSink::Sftp(s) => s.deliver(delivery).await,
            BuiltSink::Mysql(s) => s.deliver(delivery).await,
            BuiltSink::Email(s) => s.deliver(delivery).await,
            BuiltSink::Webhook(s) => s.deliver(delivery).await,
        }
    }
}

/// Loads and checks every sink's keys, certificates and secrets without connecting anywhere
/// (for `secureform check`): building these sinks does no network I/O.
pub async fn check_offline(
    config: &Config,
    keys: Arc<KeyRing>,
    signer: &Option<Arc<Signer>>,
) -> Result<(), String> {
    // `serve` would refuse to start on an earlier version's store it cannot place.
    crate::documents::legacy_move(config).map_err(|e| format!("{e:#}"))?;
    for (name, sink) in &config.sinks {
        let named = |e: secureform_contract::ConfigError| {
            format!("{}: [sinks.{name}] {}: {}", config.origin, e.key, e.message)
        };
        match sink {
            // Building the store would create its folder: check its certificates only.
            SinkConfig::Documents(c) => {
                if !c.pgp_recipients.is_empty() {
                    let paths: Vec<_> = c
                        .pgp_recipients
                        .iter()
                        .map(|p| config.base_dir.join(p))
                        .collect();
                    secureform_crypto::pgp::Recipients::load(&paths).map_err(|e| {
                        named(secureform_contract::ConfigError::new(
                            "pgp_recipients",
                            e.to_string(),
                        ))
                    })?;
                }
            }
            SinkConfig::Sftp(_) | SinkConfig::Email(_) => {
                BuiltSink::build(name, sink, config, Arc::clone(&keys), signer.clone()).await?;
            }
            // Building connects to the database: check what needs no connection.
            SinkConfig::Mysql(c) => c.validate().map_err(named)?,
            // Building resolves the receiver's host name: check the configuration only.
            SinkConfig::Webhook(c) => c.validate().map_err(named)?,
        }
    }
    Ok(())
}

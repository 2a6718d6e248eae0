//! Putting the service together: keys, spool, sinks, dispatcher, HTTP.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context;
use secureform_crypto::pgp::Signer;
use secureform_crypto::KeyRing;

use crate::config::{Config, KeySource, ListenAddr};
use crate::datadir;
use crate::http::{self, AppState};
use crate::metrics::Metrics;
use crate::registry::BuiltSink;
use crate::spool::Spool;

/// Loads the key-encryption keys.
///
/// A missing key file is created (with `create`, by `serve`) only when it is the default key
/// file and the data folder is new. In every other case a missing key file is an error naming
/// the file and, when the data folder is not new, the key ids its data was sealed under: a new
/// key would silently make every stored item unreadable.
pub fn load_keys(config: &Config, create: bool) -> anyhow::Result<Arc<KeyRing>> {
    let ring = match &config.keys {
        KeySource::File(path) => {
            if !path.exists() {
                if !create || !config.create_key || !datadir::is_new(&config.data_dir)? {
                    return Err(datadir::missing_key(path, &config.data_dir).into());
                }
                if let Some(dir) = path.parent() {
                    secureform_crypto::files::create_private_dir(dir)?;
                }
                let id = secureform_crypto::keys::create_key_file(path)?;
                tracing::info!(key_id = %id, "created a new key-encryption key for a new data folder");
            }
            KeyRing::load_file(path).with_context(|| {
                format!(
                    "{}: [storage] master_key_file (create one with `secureform keygen --out FILE`)",
                    config.origin
                )
            })?
        }
        KeySource::Env(var) => {
            let text = std::env::var(var).with_context(|| {
                format!(
                    "{}: [storage] master_key_env: environment variable {var} is not set",
                    config.origin
                )
            })?;
            KeyRing::parse(&text, &format!("environment variable {var}"))?
        }
    };
    Ok(Arc::new(ring))
}

/// Loads the service's PGP signing key, when configured.
pub fn load_signer(config: &Config) -> anyhow::Result<Option<Arc<Signer>>> {
    match &config.pgp_signing_key {
        None => Ok(None),
        Some(path) => Ok(Some(Arc::new(Signer::load(path).with_context(|| {
            format!("{}: [storage] pgp_signing_key", config.origin)
        })?))),
    }
}

/// Builds every configured sink.
pub async fn build_sinks(
    config: &Config,
    keys: &Arc<KeyRing>,
    signer: &Option<Arc<Signer>>,
) -> anyhow::Result<BTreeMap<String, Arc<BuiltSink>>> {
    // An earlier version's single Documents store moves to its sink's folder first.
    crate::documents::migrate_legacy(config)?;
    let mut sinks = BTreeMap::new();
    for (name, sink) in &config.sinks {
        let built = BuiltSink::build(name, sink, config, Arc::clone(keys), signer.clone()).await?;
        sinks.insert(name.clone(), Arc::new(built));
    }
    Ok(sinks)
}

/// Says which configuration, key, forms and sinks are in use (names and kinds only).
fn log_startup(config: &Config, keys: &KeyRing) {
    tracing::info!(config = %config.origin, data_dir = %config.data_dir.display(), "configuration");
    let ids: Vec<String> = keys.ids().iter().map(ToString::to_string).collect();
    match &config.keys {
        KeySource::File(path) => tracing::info!(key_file = %path.display(),
            current = %keys.current_id(), keys = %ids.join(","), "key-encryption keys"),
        KeySource::Env(var) => tracing::info!(key_env = %var,
            current = %keys.current_id(), keys = %ids.join(","), "key-encryption keys"),
    }
    for (name, sink) in &config.sinks {
        let at_rest = sink.at_rest();
        let level = match at_rest.level {
            secureform_contract::AtRestLevel::Encrypted => "encrypted",
            secureform_contract::AtRestLevel::Weak => "weak",
            secureform_contract::AtRestLevel::Plaintext => "not encrypted",
        };
        tracing::info!(sink = %name, kind = sink.kind(), at_rest = level, "sink");
    }
    for (name, form) in &config.forms {
        tracing::info!(form = %name, sinks = %form.sinks.join(","), "form");
    }
}

/// Runs the service until it is stopped.
pub async fn serve(mut config: Config, listen: Option<ListenAddr>) -> anyhow::Result<()> {
    crate::documents::resolve_data_keys(&mut config);
    let clock = crate::clock::service_clock();
    let first_start = !config.data_dir.exists();
    // Held until the server stops: a second `serve` on this folder fails at once.
    let _lock = datadir::prepare(&config.data_dir)?;
    let keys = load_keys(&config, true)?;
    log_startup(&config, &keys);
    let signer = load_signer(&config)?;
    let sink_names: Vec<String> = config.sinks.keys().cloned().collect();
    let spool = match config.spool_backend.postgres_options(true)? {
        None => Spool::open(
            &config.data_dir,
            Arc::clone(&keys),
            &sink_names,
            Arc::clone(&clock),
        )
        .context("opening the spool")?,
        Some(mut options) => {
            options.orphan_upload_ms = crate::storage_backend::orphan_upload_ms(&config.limits);
            Spool::open_postgres(
                &config.data_dir,
                &options,
                Arc::clone(&keys),
                Arc::clone(&clock),
            )
            .await
            .context("opening the spool on PostgreSQL")?
        }
    };
    let sinks = build_sinks(&config, &keys, &signer).await?;
    let sink_health = crate::health::start(&sinks);
    let metrics = Arc::new(Metrics::default());
    let dispatch = crate::dispatch::start(
        Arc::clone(&spool),
        &sinks,
        config.dispatch.clone(),
        Arc::clone(&metrics),
    );
    let mut form_warnings = BTreeMap::new();
    for (name, form) in &config.forms {
        let warnings = config.form_warnings(form);
        for w in &warnings {
            tracing::warn!(form = %name, "{w}");
        }
        form_warnings.insert(name.clone(), warnings);
    }
    let addr = listen.unwrap_or_else(|| config.listen.clone());
    let listener = addr
        .bind()
        .with_context(|| format!("cannot listen on {addr}"))?;
    let no_tokens = config.tokens.is_empty();
    let pdf_gate = Arc::new(http::pdf_gate::PdfGate::new(
        config.limits.pdf_parse_memory_bytes,
        http::pdf_gate::parse_threads(),
        std::time::Duration::from_secs(config.limits.pdf_parse_secs.saturating_mul(5)),
    )?);
    let documents = Arc::new(crate::documents::DocumentStores::open(&config, &keys));
    // Which configuration and keys this start runs with: the file's SHA-256 (a change between
    // two starts shows in the log; its content never does) and the key ids.
    let config_sha256 = match std::fs::read(&config.origin) {
        Ok(bytes) => hex::encode(ring::digest::digest(&ring::digest::SHA256, &bytes)),
        Err(_) => "embedded".to_owned(),
    };
    let key_ids: Vec<String> = keys.ids().iter().map(ToString::to_string).collect();
    spool
        .audit_entry(
            "service",
            crate::audit::Action::ServiceStart,
            "",
            None,
            Some(format!(
                "version={} config_sha256={config_sha256} keys={} forms={} sinks={} tokens={}",
                env!("CARGO_PKG_VERSION"),
                key_ids.join(","),
                config.forms.len(),
                config.sinks.len(),
                config.tokens.len()
            )),
        )
        .await
        .context("recording the start in the audit log")?;
    let config = Arc::new(config);
    crate::retention::start(
        Arc::clone(&spool),
        Arc::clone(&documents),
        Arc::clone(&config),
    );
    let altcha = Arc::new(http::altcha::Altcha::from_config(&config)?);
    let siteverify = Arc::new(http::siteverify::Siteverify::from_config(
        &config,
        http::siteverify::Secrets::Required,
    )?);
    let state = AppState {
        tokens: http::known_tokens(&config),
        config,
        spool,
        dispatch,
        metrics,
        form_warnings,
        documents,
        rate_limiter: http::RateLimiter::default(),
        sink_health,
        pdf_gate,
        console: crate::console::Sessions::default(),
        altcha,
        siteverify,
        signer: signer.clone(),
    };
    let (server, bound) = http::start(state, listener)?;
    if first_start && no_tokens {
        tracing::info!(
            "to try the API, make a token: `secureform token new --name me --scopes submit,read \
             --write secureform.toml` (then restart); see the README, \"API tokens\""
        );
    }
    tracing::info!("secureform listening on http://{bound}");
    server.await?;
    Ok(())
}

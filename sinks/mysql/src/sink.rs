//! The sink: building it (keys, connection, table check), and delivering one submission as one
//! transaction (the row, then its stored files).

use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use secureform_contract::{
    AtRest, BuildContext, ConfigError, Delivery, DeliveryError, FailureReason, Receipt, Sink,
    SinkSpec,
};
use sqlx::mysql::MySqlPool;
use tokio::sync::OnceCell;

use crate::config::{Config, Encryption};
use crate::connect::{self, Server};
use crate::errors::{classify, connection_lost, db_number};
use crate::gcm::{self, file_row_key};
use crate::row::{bind_all, cell, row_params, Param};
use crate::schema::Layout;
use crate::secrets::{load_key, ValueKey};

/// How long one delivery may take before it is abandoned as retryable.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(120);
/// Room in a packet for the statement around a stored file.
const PACKET_SLACK: u64 = 64 * 1024;
/// MySQL's "duplicate entry for key".
const DUPLICATE_KEY: u16 = 1062;

/// What is known once the server answered: its kind, and the statements for it.
#[derive(Debug)]
struct Prepared {
    server: Server,
    cbc: bool,
    row_sql: String,
    file_sql: Option<String>,
}

/// Why the sink could not get ready.
enum PrepareError {
    /// The table does not fit: a configuration problem.
    Schema(ConfigError),
    /// The database failed.
    Database(sqlx::Error),
}

impl PrepareError {
    fn into_delivery(self) -> DeliveryError {
        match self {
            // Retryable: the operator can fix the table while the service runs, and the
            // deliveries then go through; the dispatcher's max_attempts / max_age still end
            // them if nobody does.
            PrepareError::Schema(e) => {
                DeliveryError::retryable(FailureReason::BadConfig, e.to_string())
            }
            PrepareError::Database(e) => classify(&e),
        }
    }
}

/// Writes each submission as one row of a MySQL/MariaDB table; see the crate documentation.
pub struct MysqlSink {
    name: String,
    pool: MySqlPool,
    layout: Layout,
    key: Arc<ValueKey>,
    create_table: bool,
    files_max_bytes: u64,
    prepared: OnceCell<Prepared>,
}

impl std::fmt::Debug for MysqlSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MysqlSink")
            .field("name", &self.name)
            .field("table", &self.layout.table)
            .field("encryption", &self.layout.encryption)
            .finish_non_exhaustive()
    }
}

enum Outcome {
    Inserted { files: usize, skipped: usize },
    AlreadyThere,
}

impl MysqlSink {
    /// Loads the key and the password, reads the CA file, and prepares the pool, without
    /// connecting: a database that is down or slow never holds up the service's start. The
    /// first delivery (or [`MysqlSink::check_table`]) connects, finds the server's kind, creates
    /// the table when `create_table = true` and checks that the table fits; until that works,
    /// deliveries stay retryable.
    pub async fn build(
        sink_name: &str,
        config: &Config,
        base_dir: &Path,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let key = load_key(config, base_dir)?;
        let options = connect::options(sink_name, config, base_dir)?;
        Ok(MysqlSink {
            name: sink_name.to_owned(),
            pool: connect::pool(config, options),
            layout: Layout::from_config(config),
            key: Arc::new(key),
            create_table: config.create_table,
            files_max_bytes: config.files_max_bytes,
            prepared: OnceCell::new(),
        })
    }

    /// Connects and checks (or creates) the table: what the first delivery does anyway. For
    /// start-up's report, `secureform check --online` and `/readyz`: a table that does not
    /// fit names its key (`table`, `columns`, `files_max_bytes`); a database that cannot be
    /// reached or refuses the login is reported under `url`.
    pub async fn check_table(&self) -> Result<(), ConfigError> {
        match self.prepare().await {
            Ok(_) => Ok(()),
            Err(PrepareError::Schema(e)) => Err(e),
            Err(PrepareError::Database(e)) => {
                Err(ConfigError::new("url", classify(&e).into_message()))
            }
        }
    }

    /// The server's `VERSION()`, once it has answered.
    pub fn server_version(&self) -> Option<&str> {
        self.prepared.get().map(|p| p.server.version.as_str())
    }

    async fn prepare(&self) -> Result<&Prepared, PrepareError> {
        self.prepared
            .get_or_try_init(|| async {
                let mut conn = self.pool.acquire().await.map_err(PrepareError::Database)?;
                let server = connect::probe(&mut conn)
                    .await
                    .map_err(PrepareError::Database)?;
                self.check_packet_size(&server)?;
                if self.create_table {
                    for sql in self.layout.create_statements() {
                        sqlx::query(&sql)
                            .execute(&mut *conn)
                            .await
                            .map_err(PrepareError::Database)?;
                    }
                }
                self.layout
                    .check(&mut conn)
                    .await
                    .map_err(PrepareError::Database)?
                    .map_err(|m| PrepareError::Schema(ConfigError::new(m.key, m.message)))?;
                let cbc = self.layout.encryption == Encryption::MysqlAes && server.cbc;
                self.announce(&server, cbc);
                Ok(Prepared {
                    row_sql: self.layout.insert_row_sql(cbc),
                    file_sql: self.layout.insert_file_sql(cbc),
                    server,
                    cbc,
                })
            })
            .await
    }

    /// A stored file travels in one statement: it must fit the server's `max_allowed_packet`.
    fn check_packet_size(&self, server: &Server) -> Result<(), PrepareError> {
        let needed = self.files_max_bytes.saturating_add(PACKET_SLACK);
        if self.layout.files_table.is_some() && needed > server.max_packet {
            return Err(PrepareError::Schema(ConfigError::new(
                "files_max_bytes",
                format!(
                    "{} bytes (plus {PACKET_SLACK} for the statement) exceed the server's \
                     max_allowed_packet of {} bytes; lower files_max_bytes or raise \
                     max_allowed_packet",
                    self.files_max_bytes, server.max_packet
                ),
            )));
        }
        Ok(())
    }

    /// Says once, when the server first answers, how rows are protected on it.
    fn announce(&self, server: &Server, cbc: bool) {
        let (sink, table, version) = (&self.name, &self.layout.table, &server.version);
        match self.layout.encryption {
            Encryption::AesGcm => {
                tracing::info!(
                    sink,
                    table,
                    version,
                    "rows sealed with AES-256-GCM in the service"
                )
            }
            Encryption::MysqlAes if cbc => tracing::warn!(
                sink,
                table,
                version,
                "mysql_aes: AES_ENCRYPT runs as AES-256-CBC with a random IV per value \
                 (block_encryption_mode); unauthenticated, and the key travels to the server"
            ),
            Encryption::MysqlAes => tracing::warn!(
                sink,
                table,
                version,
                "mysql_aes: this server's AES_ENCRYPT is AES-128-ECB: deterministic (equal \
                 values give equal ciphertexts), no IV, the key folded to 16 bytes by XOR"
            ),
            Encryption::None => tracing::warn!(
                sink,
                table,
                version,
                "encryption = \"none\": rows are stored in plaintext"
            ),
        }
    }

    async fn insert(&self, prepared: &Prepared, d: &Delivery<'_>) -> Result<Outcome, Failure> {
        let submission = d.submission;
        let params = row_params(&self.layout, &self.key, prepared.cbc, submission)?;
        let mut tx = self.pool.begin().await?;
        let inserted = bind_all(sqlx::query(&prepared.row_sql), params)
            .execute(&mut *tx)
            .await;
        match inserted {
            Ok(_) => {}
            Err(e) if db_number(&e) == Some(DUPLICATE_KEY) => {
                tx.rollback().await?;
                let exists = sqlx::query(&self.layout.exists_sql())
                    .bind(&submission.id)
                    .fetch_optional(&self.pool)
                    .await?;
                return match exists {
                    Some(_) => Ok(Outcome::AlreadyThere),
                    None => Err(Failure::Done(DeliveryError::permanent(
                        FailureReason::RejectedByPeer,
                        "MySQL error 1062 (23000): duplicate key on another unique index of the table",
                    ))),
                };
            }
            Err(e) => return Err(e.into()),
        }
        let (mut files, mut skipped) = (0, 0);
        if let (Some(sql), Some(files_table)) = (&prepared.file_sql, &self.layout.files_table) {
            for (index, meta) in submission.files.iter().enumerate() {
                let plain = match self.read_file(d, index, meta.size).await? {
                    Some(bytes) => bytes,
                    None => {
                        skipped += 1;
                        continue;
                    }
                };
                let row_key = file_row_key(&submission.id, index);
                let params = self
                    .file_params(prepared.cbc, files_table, &row_key, plain)
                    .await?;
                let index_param = u32::try_from(index).unwrap_or(u32::MAX);
                let q = sqlx::query(sql).bind(&submission.id).bind(index_param);
                bind_all(q, params).execute(&mut *tx).await?;
                files += 1;
            }
        } else {
            skipped = submission.files.len();
        }
        tx.commit().await?;
        Ok(Outcome::Inserted { files, skipped })
    }

    /// The parameters of one stored file; AES-GCM sealing runs off the async threads.
    async fn file_params<'k>(
        &'k self,
        cbc: bool,
        files_table: &str,
        row_key: &str,
        plain: Vec<u8>,
    ) -> Result<Vec<Param<'k>>, Failure> {
        let mut params = Vec::new();
        if let ValueKey::Gcm(_) = &*self.key {
            let key = Arc::clone(&self.key);
            let (table, row) = (files_table.to_owned(), row_key.to_owned());
            let sealed = tokio::task::spawn_blocking(move || match &*key {
                ValueKey::Gcm(k) => gcm::seal_value(k, &table, "content", &row, &plain).ok(),
                _ => None,
            })
            .await
            .ok()
            .flatten()
            .ok_or_else(|| {
                DeliveryError::retryable(FailureReason::Internal, "could not seal a file")
            })?;
            params.push(Param::Bytes(Some(sealed)));
        } else {
            let cell_id = (files_table, "content", row_key);
            cell(
                self.layout.encryption,
                &self.key,
                cbc,
                cell_id,
                Some(plain),
                &mut params,
            )?;
        }
        Ok(params)
    }

    /// Reads file `index` when it fits `files_max_bytes` (never more than that plus one byte).
    async fn read_file(
        &self,
        d: &Delivery<'_>,
        index: usize,
        size: u64,
    ) -> Result<Option<Vec<u8>>, Failure> {
        let max = self.files_max_bytes;
        if size > max {
            return Ok(None);
        }
        // Opening and reading may block (spool files): off the async threads.
        let files = Arc::clone(d.files);
        let read = tokio::task::spawn_blocking(move || {
            let reader = files.open(index)?;
            let mut buf = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
            reader
                .take(max.saturating_add(1))
                .read_to_end(&mut buf)
                .map(|_| buf)
        })
        .await;
        match read {
            Ok(Ok(buf)) if buf.len() as u64 <= max => Ok(Some(buf)),
            Ok(Ok(_)) => Ok(None),
            _ => Err(Failure::Done(DeliveryError::retryable(
                FailureReason::Internal,
                format!("cannot read file {index} from the spool"),
            ))),
        }
    }
}

/// A failed attempt: a database error (classified later, maybe retried once) or a decision.
enum Failure {
    Sql(sqlx::Error),
    Done(DeliveryError),
}

impl From<sqlx::Error> for Failure {
    fn from(e: sqlx::Error) -> Self {
        Failure::Sql(e)
    }
}

impl From<DeliveryError> for Failure {
    fn from(e: DeliveryError) -> Self {
        Failure::Done(e)
    }
}

/// `type = "mysql"`.
pub struct Spec;

impl SinkSpec for Spec {
    type Config = Config;
    type Sink = MysqlSink;

    fn validate(config: &Config) -> Result<(), ConfigError> {
        config.validate()
    }

    fn at_rest(config: &Config) -> AtRest {
        config.at_rest()
    }

    /// Building connects nowhere: it loads the key and the password and reads the CA file.
    async fn check_offline(config: &Config, context: &BuildContext<'_>) -> Result<(), ConfigError> {
        MysqlSink::build(context.name, config, context.base_dir)
            .await
            .map(drop)
    }

    async fn build(config: &Config, context: BuildContext<'_>) -> Result<MysqlSink, ConfigError> {
        MysqlSink::build(context.name, config, context.base_dir).await
    }
}

impl Sink for MysqlSink {
    /// Connects and checks (or creates) the table, as [`MysqlSink::check_table`]; the reason
    /// names the configuration key at fault.
    async fn healthcheck(&self) -> Result<(), DeliveryError> {
        self.check_table().await.map_err(|e| {
            // A database that cannot be reached or refuses the login is reported under `url`.
            let reason = if e.key == "url" {
                FailureReason::Connection
            } else {
                FailureReason::BadConfig
            };
            DeliveryError::permanent(reason, format!("{}: {}", e.key, e.message))
        })
    }

    async fn deliver(&self, d: &Delivery<'_>) -> Result<Receipt, DeliveryError> {
        let id = d.submission.id.as_str();
        let prepared = self.prepare().await.map_err(PrepareError::into_delivery)?;
        let mut reconnected = false;
        loop {
            let attempt = tokio::time::timeout(DELIVERY_TIMEOUT, self.insert(prepared, d)).await;
            let failure = match attempt {
                Err(_) => DeliveryError::retryable(
                    FailureReason::Timeout,
                    "the database did not answer in time",
                ),
                Ok(Ok(outcome)) => {
                    match outcome {
                        Outcome::Inserted { files, skipped } => tracing::info!(
                            sink = %self.name, submission = id, files, skipped_files = skipped,
                            "row inserted"
                        ),
                        Outcome::AlreadyThere => tracing::info!(
                            sink = %self.name, submission = id,
                            "row already there (redelivery); nothing inserted"
                        ),
                    }
                    return Ok(Receipt::new("row", format!("{}/{id}", self.layout.table)));
                }
                Ok(Err(Failure::Sql(e))) if connection_lost(&e) && !reconnected => {
                    reconnected = true;
                    tracing::debug!(sink = %self.name, submission = id, "connection lost; reconnecting once");
                    continue;
                }
                Ok(Err(Failure::Sql(e))) => classify(&e),
                Ok(Err(Failure::Done(e))) => e,
            };
            // Logged once, by the dispatcher, with what happens next.
            return Err(failure);
        }
    }
}

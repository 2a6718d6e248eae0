//! Reading rows back (the `secureform mysql read` command): the submissions, decrypted with the
//! configured key, and the stored files.

use std::path::Path;
use std::time::Duration;

use ring::aead::LessSafeKey;
use secureform_contract::ConfigError;
use sqlx::mysql::MySqlArguments;
use sqlx::query::QueryAs;
use sqlx::MySql;

use crate::config::{files_table, Config, Encryption};
use crate::connect;
use crate::errors::classify;
use crate::gcm::{self, file_row_key, ValueError};
use crate::schema::q;
use crate::secrets::{load_key, ValueKey};

/// Why rows could not be read back. Never carries a value.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The sink's configuration is invalid, or its key could not be loaded.
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    /// Connecting to the database or querying it failed.
    #[error("database: {reason}")]
    Database {
        /// What the database driver reported.
        reason: String,
    },
    /// An `aes_gcm` value of a row did not open.
    #[error("submission {submission_id}: {source}")]
    Value {
        /// The row's submission id.
        submission_id: String,
        /// Why the value did not open.
        source: ValueError,
    },
    /// `AES_DECRYPT` returned NULL for a `mysql_aes` row: most likely the wrong key.
    #[error("submission {submission_id}: AES_DECRYPT gave nothing (wrong key?)")]
    WrongKey {
        /// The row's submission id.
        submission_id: String,
    },
    /// A row's submission decrypted but is not the JSON of a submission.
    #[error("submission {submission_id}: the stored submission is not JSON")]
    NotJson {
        /// The row's submission id.
        submission_id: String,
    },
}

impl From<sqlx::Error> for ReadError {
    fn from(e: sqlx::Error) -> Self {
        ReadError::Database {
            reason: classify(&e).into_message(),
        }
    }
}

struct Reader {
    key: ValueKey,
    cbc: bool,
    encryption: Encryption,
}

impl Reader {
    async fn open(
        config: &Config,
        base_dir: &Path,
    ) -> Result<(Self, sqlx::MySqlConnection), ReadError> {
        config.validate()?;
        let key = load_key(config, base_dir)?;
        let options = connect::options("read", config, base_dir)?;
        let timeout = Duration::from_secs(config.connect_timeout_secs);
        let mut conn = connect::single(&options, config.encryption, timeout).await?;
        let server = connect::probe(&mut conn).await?;
        let reader = Reader {
            key,
            cbc: config.encryption == Encryption::MysqlAes && server.cbc,
            encryption: config.encryption,
        };
        Ok((reader, conn))
    }

    /// The select expression of an encrypted column, with its key placeholder(s).
    fn value_sql(&self, column: &str) -> String {
        match (self.encryption, self.cbc) {
            (Encryption::MysqlAes, true) => format!(
                "AES_DECRYPT({}, ?, {})",
                q(column),
                q(&crate::config::iv_column(column))
            ),
            (Encryption::MysqlAes, false) => format!("AES_DECRYPT({}, ?)", q(column)),
            _ => format!("CAST({} AS BINARY)", q(column)),
        }
    }

    fn bind_key<'q, O>(
        &'q self,
        query: QueryAs<'q, MySql, O, MySqlArguments>,
    ) -> QueryAs<'q, MySql, O, MySqlArguments> {
        match self.key.mysql_key() {
            Some(k) => query.bind(k),
            None => query,
        }
    }

    fn open_value(
        &self,
        cell: (&str, &str, &str),
        id: &str,
        value: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, ReadError> {
        let (table, column, row_key) = cell;
        let value = value.ok_or_else(|| ReadError::WrongKey {
            submission_id: id.to_owned(),
        })?;
        match &self.key {
            ValueKey::Gcm(k) => {
                open_gcm(k, table, column, row_key, &value).map_err(|source| ReadError::Value {
                    submission_id: id.to_owned(),
                    source,
                })
            }
            _ => Ok(value),
        }
    }
}

fn open_gcm(
    key: &LessSafeKey,
    table: &str,
    column: &str,
    row_key: &str,
    value: &[u8],
) -> Result<Vec<u8>, ValueError> {
    gcm::open_with(key, table, column, row_key, value)
}

/// Reads back the newest `limit` submissions (of `form`, when given), newest first, decrypted
/// with the configured key: each is the normalized submission as JSON.
pub async fn read_rows(
    config: &Config,
    base_dir: &Path,
    form: Option<&str>,
    limit: u32,
) -> Result<Vec<serde_json::Value>, ReadError> {
    let (reader, mut conn) = Reader::open(config, base_dir).await?;
    let sql = format!(
        "SELECT CAST(`submission_id` AS CHAR(64)), {} FROM {} {} \
         ORDER BY `received_at` DESC, `submission_id` DESC LIMIT ?",
        reader.value_sql("submission"),
        q(&config.table),
        if form.is_some() {
            "WHERE `form` = ?"
        } else {
            ""
        }
    );
    let mut query = reader.bind_key(sqlx::query_as::<_, (String, Option<Vec<u8>>)>(&sql));
    if let Some(form) = form {
        query = query.bind(form);
    }
    let rows = query.bind(limit).fetch_all(&mut conn).await?;
    let mut out = Vec::with_capacity(rows.len());
    for (id, value) in rows {
        let plain = reader.open_value((&config.table, "submission", &id), &id, value)?;
        let json = serde_json::from_slice(&plain).map_err(|_| ReadError::NotJson {
            submission_id: id.clone(),
        })?;
        out.push(json);
    }
    Ok(out)
}

/// Reads back file `index` of a submission from the files table, decrypted; `None` when it was
/// not stored here (too large for `files_max_bytes`, or no such file).
pub async fn read_file(
    config: &Config,
    base_dir: &Path,
    submission_id: &str,
    index: u32,
) -> Result<Option<Vec<u8>>, ReadError> {
    if config.files_max_bytes == 0 {
        return Ok(None);
    }
    let (reader, mut conn) = Reader::open(config, base_dir).await?;
    let table = files_table(&config.table);
    let sql = format!(
        "SELECT {} FROM {} WHERE `submission_id` = ? AND `file_index` = ?",
        reader.value_sql("content"),
        q(&table)
    );
    let query = reader.bind_key(sqlx::query_as::<_, (Option<Vec<u8>>,)>(&sql));
    let row = query
        .bind(submission_id)
        .bind(index)
        .fetch_optional(&mut conn)
        .await?;
    let Some((value,)) = row else { return Ok(None) };
    let row_key = file_row_key(submission_id, index as usize);
    reader
        .open_value((&table, "content", &row_key), submission_id, value)
        .map(Some)
}

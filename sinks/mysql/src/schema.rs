//! The tables: their SQL (built only from validated identifiers, always backquoted), their
//! creation, and the health check that an existing table fits.

use sqlx::MySqlConnection;

use crate::config::{files_table, is_identifier, iv_column, Config, Encryption};

/// The shape of what this sink writes, from the configuration.
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    pub(crate) table: String,
    /// `<table>_files`, when files are stored (`files_max_bytes > 0`).
    pub(crate) files_table: Option<String>,
    /// (column, field), in column-name order.
    pub(crate) columns: Vec<(String, String)>,
    pub(crate) encryption: Encryption,
}

/// A table that does not fit, found by the health check or the first delivery. `key` is the configuration key to look at.
#[derive(Debug)]
pub(crate) struct SchemaMismatch {
    pub(crate) key: &'static str,
    pub(crate) message: String,
}

/// Backquotes an identifier. Only ever called on names that passed [`is_identifier`], which
/// excludes backquotes; the check is repeated here so that no other name can slip through.
pub(crate) fn q(ident: &str) -> String {
    if is_identifier(ident) {
        format!("`{ident}`")
    } else {
        // Unreachable for validated configurations; an invalid name yields invalid SQL, never
        // injected SQL.
        String::from("`invalid identifier`")
    }
}

const BINARY: &[&str] = &[
    "binary",
    "varbinary",
    "tinyblob",
    "blob",
    "mediumblob",
    "longblob",
];
const TEXT: &[&str] = &[
    "char",
    "varchar",
    "tinytext",
    "text",
    "mediumtext",
    "longtext",
    "json",
];
const INTEGER: &[&str] = &["tinyint", "smallint", "mediumint", "int", "bigint"];
const TIME: &[&str] = &["datetime", "timestamp", "char", "varchar"];

impl Layout {
    pub(crate) fn from_config(config: &Config) -> Self {
        Layout {
            table: config.table.clone(),
            files_table: (config.files_max_bytes > 0).then(|| files_table(&config.table)),
            columns: config
                .columns
                .iter()
                .map(|(c, f)| (c.clone(), f.clone()))
                .collect(),
            encryption: config.encryption,
        }
    }

    fn mysql_aes(&self) -> bool {
        self.encryption == Encryption::MysqlAes
    }

    /// `CREATE TABLE IF NOT EXISTS` statements for the table and the files table.
    pub(crate) fn create_statements(&self) -> Vec<String> {
        let (value_type, big_type) = match self.encryption {
            Encryption::None => ("MEDIUMTEXT", "LONGTEXT"),
            _ => ("MEDIUMBLOB", "LONGBLOB"),
        };
        let iv = |col: &str| {
            if self.mysql_aes() {
                format!(",\n  {} VARBINARY(16) NULL", q(&iv_column(col)))
            } else {
                String::new()
            }
        };
        let mut sql = format!(
            "CREATE TABLE IF NOT EXISTS {} (\n  \
             `submission_id` VARCHAR(64) COLLATE utf8mb4_bin NOT NULL,\n  `form` VARCHAR(255) NOT NULL,\n  `received_at` DATETIME NOT NULL,\n  \
             `submission` {big_type} NOT NULL{}",
            q(&self.table),
            iv("submission")
        );
        for (column, _) in &self.columns {
            sql.push_str(&format!(
                ",\n  {} {value_type} NULL{}",
                q(column),
                iv(column)
            ));
        }
        sql.push_str(
            ",\n  PRIMARY KEY (`submission_id`),\n  KEY `form_received_at` (`form`, `received_at`)\n) \
             ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        );
        let mut all = vec![sql];
        if let Some(files) = &self.files_table {
            all.push(format!(
                "CREATE TABLE IF NOT EXISTS {} (\n  \
                 `submission_id` VARCHAR(64) COLLATE utf8mb4_bin NOT NULL,\n  \
                 `file_index` INT UNSIGNED NOT NULL,\n  `content` LONGBLOB NOT NULL{},\n  \
                 PRIMARY KEY (`submission_id`, `file_index`)\n) \
                 ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
                q(files),
                iv("content")
            ));
        }
        all
    }

    /// The value expression of one encrypted cell, and whether its IV column follows.
    fn value_sql(&self, cbc: bool) -> &'static str {
        match (self.encryption, cbc) {
            (Encryption::MysqlAes, true) => "AES_ENCRYPT(?, ?, ?), ?",
            (Encryption::MysqlAes, false) => "AES_ENCRYPT(?, ?), ?",
            _ => "?",
        }
    }

    fn value_columns(&self, column: &str) -> String {
        if self.mysql_aes() {
            format!("{}, {}", q(column), q(&iv_column(column)))
        } else {
            q(column)
        }
    }

    /// The row insert; placeholders in the order [`crate::row`] binds them.
    pub(crate) fn insert_row_sql(&self, cbc: bool) -> String {
        let mut cols = vec![
            "`submission_id`".to_owned(),
            "`form`".to_owned(),
            "`received_at`".to_owned(),
            self.value_columns("submission"),
        ];
        let mut vals = vec!["?", "?", "?", self.value_sql(cbc)];
        for (column, _) in &self.columns {
            cols.push(self.value_columns(column));
            vals.push(self.value_sql(cbc));
        }
        format!(
            "INSERT INTO {} ({}) VALUES ({})",
            q(&self.table),
            cols.join(", "),
            vals.join(", ")
        )
    }

    /// The file insert, when files are stored.
    pub(crate) fn insert_file_sql(&self, cbc: bool) -> Option<String> {
        self.files_table.as_ref().map(|files| {
            format!(
                "INSERT INTO {} (`submission_id`, `file_index`, {}) VALUES (?, ?, {})",
                q(files),
                self.value_columns("content"),
                self.value_sql(cbc)
            )
        })
    }

    /// Whether a row of this submission already exists.
    pub(crate) fn exists_sql(&self) -> String {
        format!(
            "SELECT 1 FROM {} WHERE `submission_id` = ? LIMIT 1",
            q(&self.table)
        )
    }

    /// Checks that the table (and the files table) exist with columns of fitting types and a
    /// unique key on the submission id.
    pub(crate) async fn check(
        &self,
        conn: &mut MySqlConnection,
    ) -> Result<Result<(), SchemaMismatch>, sqlx::Error> {
        let value_types: Vec<&str> = match self.encryption {
            Encryption::None => [BINARY, TEXT].concat(),
            _ => BINARY.to_vec(),
        };
        let mut expected: Vec<(String, Vec<&str>, &'static str)> = vec![
            ("submission_id".into(), [TEXT, BINARY].concat(), "table"),
            ("form".into(), TEXT.to_vec(), "table"),
            ("received_at".into(), TIME.to_vec(), "table"),
        ];
        for column in
            std::iter::once("submission").chain(self.columns.iter().map(|(c, _)| c.as_str()))
        {
            let key = if column == "submission" {
                "table"
            } else {
                "columns"
            };
            expected.push((column.to_owned(), value_types.clone(), key));
            if self.mysql_aes() {
                expected.push((iv_column(column), BINARY.to_vec(), key));
            }
        }
        if let Err(m) = check_table(conn, &self.table, &expected, &["submission_id"]).await? {
            return Ok(Err(m));
        }
        if let Some(files) = &self.files_table {
            let mut expected = vec![
                (
                    "submission_id".to_owned(),
                    [TEXT, BINARY].concat(),
                    "files_max_bytes",
                ),
                ("file_index".to_owned(), INTEGER.to_vec(), "files_max_bytes"),
                ("content".to_owned(), BINARY.to_vec(), "files_max_bytes"),
            ];
            if self.mysql_aes() {
                expected.push(("content_iv".to_owned(), BINARY.to_vec(), "files_max_bytes"));
            }
            return check_table(conn, files, &expected, &["submission_id", "file_index"]).await;
        }
        Ok(Ok(()))
    }
}

async fn check_table(
    conn: &mut MySqlConnection,
    table: &str,
    expected: &[(String, Vec<&str>, &'static str)],
    unique_on: &[&str],
) -> Result<Result<(), SchemaMismatch>, sqlx::Error> {
    let columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT CAST(COLUMN_NAME AS CHAR(64)), CAST(LOWER(DATA_TYPE) AS CHAR(64)) \
         FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
    )
    .bind(table)
    .fetch_all(&mut *conn)
    .await?;
    if columns.is_empty() {
        return Ok(Err(SchemaMismatch {
            key: "table",
            message: format!(
                "table `{table}` does not exist in the database of the url; create it, or set \
                 create_table = true"
            ),
        }));
    }
    for (name, types, key) in expected {
        let found = columns.iter().find(|(c, _)| c.eq_ignore_ascii_case(name));
        match found {
            None => {
                return Ok(Err(SchemaMismatch {
                    key,
                    message: format!("table `{table}` has no column `{name}`"),
                }))
            }
            Some((_, ty)) if !types.contains(&ty.as_str()) => {
                return Ok(Err(SchemaMismatch {
                    key,
                    message: format!(
                        "column `{name}` of table `{table}` is {ty}; expected one of: {}",
                        types.join(", ")
                    ),
                }))
            }
            Some(_) => {}
        }
    }
    let stats: Vec<(String, String)> = sqlx::query_as(
        "SELECT CAST(INDEX_NAME AS CHAR(64)), CAST(LOWER(COLUMN_NAME) AS CHAR(64)) \
         FROM information_schema.STATISTICS \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND NON_UNIQUE = 0",
    )
    .bind(table)
    .fetch_all(&mut *conn)
    .await?;
    let mut indexes: Vec<&str> = stats.iter().map(|(i, _)| i.as_str()).collect();
    indexes.sort_unstable();
    indexes.dedup();
    let fits = indexes.iter().any(|index| {
        let mut cols: Vec<&str> = stats
            .iter()
            .filter(|(i, _)| i == index)
            .map(|(_, c)| c.as_str())
            .collect();
        cols.sort_unstable();
        let mut want = unique_on.to_vec();
        want.sort_unstable();
        cols == want
    });
    if !fits {
        return Ok(Err(SchemaMismatch {
            key: "table",
            message: format!(
                "table `{table}` needs a PRIMARY or UNIQUE key on exactly ({}) so that a \
                 redelivery inserts nothing new",
                unique_on.join(", ")
            ),
        }));
    }
    Ok(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_identifiers_are_quoted() {
        assert_eq!(q("contact_1"), "`contact_1`");
        assert_eq!(q("x`; DROP TABLE t; --"), "`invalid identifier`");
    }
}

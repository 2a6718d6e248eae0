//! Integration tests of the MySQL sink against real MariaDB servers, read back with tools
//! nobody here wrote: the server's own AES_DECRYPT, Python's `cryptography`, and the server's
//! data files on disk.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod config;
mod modes;
mod outage;
mod schema;
mod support;
mod tls;

use std::path::Path;
use std::sync::Arc;

use secureform_contract::{
    Delivery, DeliveryError, FileSource, MemoryFiles, Receipt, Sink, Submission,
};
use secureform_mysql::{Config, MysqlSink};

pub async fn build(config: &Config, dir: &Path) -> MysqlSink {
    MysqlSink::build("db", config, dir).await.unwrap()
}

pub async fn deliver(
    sink: &MysqlSink,
    submission: &Submission,
    files: &[&[u8]],
) -> Result<Receipt, DeliveryError> {
    let files: Arc<dyn FileSource> =
        Arc::new(MemoryFiles(files.iter().map(|f| f.to_vec()).collect()));
    let submission = Arc::new(submission.clone());
    sink.deliver(&Delivery::new(&submission, &files)).await
}

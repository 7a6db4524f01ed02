//! Backup destinations of shredlog beyond a directory: S3-compatible object
//! stores (AWS S3, MinIO, Ceph, moto…) through the `object_store` crate.
//!
//! The engine (`shredlog`) defines what a destination must do
//! ([`shredlog::backup::Target`]) and has no HTTP client; this crate holds
//! the one, and the tokio runtime it needs, so that the engine stays small.
//!
//! ```no_run
//! let target = shredlog_backup::open_target("s3://bucket/prefix")?;
//! println!("{}", target.describe());
//! # Ok::<(), shredlog::Error>(())
//! ```
//!
//! What it is not: a general S3 client. Credentials and endpoint come from
//! the usual `AWS_*` environment variables (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`,
//! `AWS_ENDPOINT` or `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`).

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::sync::Arc;

use futures_util::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use shredlog::Error;
use shredlog::backup::{DirTarget, Target, Versioning};

/// Opens a destination: `s3://bucket[/prefix]`, or else a directory path.
///
/// # Errors
/// [`Error::Target`] if the URL or the environment's settings are bad.
pub fn open_target(dest: &str) -> Result<Box<dyn Target>, Error> {
    open_target_with(dest, &[])
}

/// As [`open_target`], with `AWS_*` settings over the environment's.
///
/// # Errors
/// [`Error::Target`] if the URL or the settings are bad.
pub fn open_target_with(dest: &str, vars: &[(&str, &str)]) -> Result<Box<dyn Target>, Error> {
    if dest.starts_with("s3://") {
        Ok(Box::new(S3Target::with_vars(dest, vars)?))
    } else if dest.contains("://") {
        Err(target_error(
            dest,
            "only directories and s3:// URLs are supported destinations",
        ))
    } else {
        Ok(Box::new(DirTarget::new(dest)))
    }
}

fn target_error(object: &str, reason: impl std::fmt::Display) -> Error {
    Error::Target {
        object: object.to_owned(),
        reason: reason.to_string(),
    }
}

/// An S3-compatible bucket (and prefix) as a backup destination.
pub struct S3Target {
    store: Arc<AmazonS3>,
    bucket: String,
    prefix: String,
    runtime: tokio::runtime::Runtime,
}

impl S3Target {
    /// `url` is `s3://bucket[/prefix]`; the endpoint and credentials come
    /// from the environment (`AWS_*`). An `http://` endpoint is allowed
    /// (for a server on the loopback address), an `https://` one verified.
    ///
    /// # Errors
    /// [`Error::Target`] if the URL or the settings are bad.
    pub fn new(url: &str) -> Result<S3Target, Error> {
        S3Target::with_vars(url, &[])
    }

    /// As [`S3Target::new`], with `AWS_*` settings that take precedence
    /// over the environment's (e.g. `("AWS_ENDPOINT", "http://127.0.0.1:9000")`).
    ///
    /// # Errors
    /// [`Error::Target`] if the URL or the settings are bad.
    pub fn with_vars(url: &str, vars: &[(&str, &str)]) -> Result<S3Target, Error> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| target_error(url, "not an s3:// URL"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(target_error(url, "the URL names no bucket"));
        }
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        for (k, v) in vars {
            if let Ok(key) = k.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
                builder = builder.with_config(key, *v);
            }
        }
        let var = |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
                .or_else(|| std::env::var(name).ok())
        };
        let endpoint = var("AWS_ENDPOINT_URL_S3")
            .or_else(|| var("AWS_ENDPOINT_URL"))
            .or_else(|| var("AWS_ENDPOINT"));
        if let Some(e) = endpoint {
            if e.starts_with("http://") {
                builder = builder.with_allow_http(true);
            }
            builder = builder.with_endpoint(e);
        }
        let store = builder
            .build()
            .map_err(|e| target_error(url, format!("cannot set up the object store: {e}")))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| target_error(url, format!("cannot start the I/O runtime: {e}")))?;
        Ok(S3Target {
            store: Arc::new(store),
            bucket: bucket.to_owned(),
            prefix: prefix.trim_matches('/').to_owned(),
            runtime,
        })
    }

    fn path(&self, name: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(name)
        } else {
            ObjectPath::from(format!("{}/{name}", self.prefix))
        }
    }

    fn put_result(&self, name: &str, bytes: &[u8]) -> Result<object_store::PutResult, Error> {
        let path = self.path(name);
        let payload = PutPayload::from(bytes.to_vec());
        self.runtime
            .block_on(self.store.put(&path, payload))
            .map_err(|e| target_error(name, format!("cannot write: {e}")))
    }
}

impl Target for S3Target {
    fn describe(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }

    fn put(&self, name: &str, bytes: &[u8]) -> Result<(), Error> {
        self.put_result(name, bytes).map(|_| ())
    }

    fn get(&self, name: &str) -> Result<Option<Vec<u8>>, Error> {
        let path = self.path(name);
        let got = self.runtime.block_on(async {
            match self.store.get(&path).await {
                Ok(r) => r.bytes().await.map(Some),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        });
        got.map(|b| b.map(|b| b.to_vec()))
            .map_err(|e| target_error(name, format!("cannot read: {e}")))
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, Error> {
        // List under the deepest whole folder of `prefix`, then filter.
        let folder = prefix.rsplit_once('/').map_or("", |(f, _)| f);
        let base = if self.prefix.is_empty() {
            folder.to_owned()
        } else if folder.is_empty() {
            self.prefix.clone()
        } else {
            format!("{}/{folder}", self.prefix)
        };
        let base_path = ObjectPath::from(base);
        let metas: Vec<object_store::ObjectMeta> = self
            .runtime
            .block_on(self.store.list(Some(&base_path)).try_collect())
            .map_err(|e| target_error(prefix, format!("cannot list: {e}")))?;
        let strip = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        };
        let mut out: Vec<String> = metas
            .into_iter()
            .filter_map(|m| {
                let full = m.location.to_string();
                let rel = full.strip_prefix(&strip)?.to_owned();
                rel.starts_with(prefix).then_some(rel)
            })
            .collect();
        out.sort();
        Ok(out)
    }

    fn delete(&self, name: &str) -> Result<(), Error> {
        let path = self.path(name);
        match self.runtime.block_on(self.store.delete(&path)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(target_error(name, format!("cannot delete: {e}"))),
        }
    }

    /// A versioned bucket answers a write with a version id: a probe object
    /// is written and deleted to see.
    fn versioning(&self) -> Result<Versioning, Error> {
        let name = "probe/versioning";
        let r = self.put_result(name, b"probe")?;
        self.delete(name)?;
        Ok(match r.version {
            Some(v) if !v.is_empty() && v != "null" => Versioning::On,
            _ => Versioning::Off,
        })
    }
}

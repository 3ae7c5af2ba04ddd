//! The one error type of fastfc. Every variant says where (file, flag, key, kernel), what was
//! expected, and where it helps, what to do.

use std::path::{Path, PathBuf};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file exists but its content is not what fastfc expected.
    #[error("{}: {msg}", path.display())]
    File { path: PathBuf, msg: String },
    /// The operating system refused a read or write.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A command-line flag has a value fastfc cannot use.
    #[error("{flag}: {msg}")]
    Flag { flag: String, msg: String },
    /// A flag (or argument) names a file or folder that already holds what would be written;
    /// fastfc never overwrites silently.
    #[error("{flag}: {msg}")]
    Exists { flag: String, msg: String },
    /// The user asked the run to stop (Ctrl-C in Python); what finished is journaled.
    #[error("interrupted: {0}")]
    Interrupted(String),
    /// A search-space file has a key with a bad value.
    #[error("{}: key `{key}`: {msg}", path.display())]
    Space {
        path: PathBuf,
        key: String,
        msg: String,
    },
    /// No data source could be found or used.
    #[error("{0}")]
    Data(String),
    /// A backend (CPU or CUDA) failed; names the kernel or device where known.
    #[error("{backend}: {msg}")]
    Backend { backend: String, msg: String },
    /// A device ran out of memory; the trainer splits the cohort and tries again.
    #[error("{backend}: out of memory: {msg}")]
    OutOfMemory { backend: String, msg: String },
    /// The shared study's database failed; `transient` when trying again may work (a lost
    /// connection, a deadlock or serialization failure the server resolved by cancelling us).
    #[error("postgresql: {msg}")]
    Storage { msg: String, transient: bool },
}

impl Error {
    /// A database failure that a retry, on a new connection, may get past.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Storage {
                transient: true,
                ..
            }
        )
    }

    pub fn file(path: impl AsRef<Path>, msg: impl Into<String>) -> Self {
        Error::File {
            path: path.as_ref().to_path_buf(),
            msg: msg.into(),
        }
    }
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }
    pub fn flag(flag: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Flag {
            flag: flag.into(),
            msg: msg.into(),
        }
    }
    pub fn space(path: impl AsRef<Path>, key: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Space {
            path: path.as_ref().to_path_buf(),
            key: key.into(),
            msg: msg.into(),
        }
    }
    pub fn backend(backend: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Backend {
            backend: backend.into(),
            msg: msg.into(),
        }
    }
}

/// `.ctx_io(path)` turns an `io::Result` into an [`Error::Io`] naming the path.
pub trait IoContext<T> {
    fn ctx_io(self, path: impl AsRef<Path>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx_io(self, path: impl AsRef<Path>) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}

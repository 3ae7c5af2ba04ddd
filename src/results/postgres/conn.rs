//! `--storage postgresql://…`: the URL, with libpq's `sslmode` and `sslrootcert`, and the
//! connection (rustls for TLS, through tokio-postgres-rustls). The password never leaves this
//! module: every message shows the URL with it masked ([`PgUrl::shown`]).
//!
//! `sslmode` as libpq defines it: `disable` (plain), `prefer` (the default: TLS when the server
//! offers it, without checking its certificate), `require` (TLS, certificate not checked),
//! `verify-ca` (TLS, certificate signed by the CA in `sslrootcert`), `verify-full` (and issued
//! for the host connected to). Without `sslrootcert`, the verify modes use
//! `~/.postgresql/root.crt` as libpq does, and fail if it is absent.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use postgres::config::{Host, SslMode};
use postgres::{Client, NoTls};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq)]
pub enum Tls {
    Disable,
    Prefer,
    Require,
    VerifyCa(PathBuf),
    VerifyFull(PathBuf),
}

/// A parsed `--storage` URL.
#[derive(Clone)]
pub struct PgUrl {
    config: postgres::Config,
    pub tls: Tls,
    /// The URL as given, with the password masked: what messages show.
    pub shown: String,
    /// The flag it came from, for errors.
    flag: String,
}

impl std::fmt::Debug for PgUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PgUrl({})", self.shown)
    }
}

/// Where the credentials end: the first `@` after the scheme, as tokio-postgres reads them (so
/// a password may hold `/`, `?` or `:`).
fn credentials_end(url: &str) -> (usize, Option<usize>) {
    let scheme = url.find("://").map_or(0, |i| i + 3);
    (scheme, url[scheme..].find('@').map(|i| scheme + i))
}

/// Where the query string starts (after the credentials, which may contain `?`).
fn query_start(url: &str) -> Option<usize> {
    let (scheme, at) = credentials_end(url);
    let from = at.map_or(scheme, |a| a + 1);
    url[from..].find('?').map(|i| from + i)
}

/// The URL with any password replaced by `***` (in the credentials and in a `password=` query
/// parameter).
pub fn mask(url: &str) -> String {
    let (scheme, at) = credentials_end(url);
    let mut out = match at {
        Some(at) => match url[scheme..at].find(':') {
            Some(colon) => format!("{}:***{}", &url[..scheme + colon], &url[at..]),
            None => url.to_string(),
        },
        None => url.to_string(),
    };
    if let Some(q) = query_start(&out) {
        let masked: Vec<String> = out[q + 1..]
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some(("password", _)) => "password=***".to_string(),
                _ => kv.to_string(),
            })
            .collect();
        out = format!("{}?{}", &out[..q], masked.join("&"));
    }
    out
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl PgUrl {
    /// Parses `postgresql://user:password@host:port/db?sslmode=…&sslrootcert=…` (or
    /// `postgres://`). Errors name `flag` and show the URL masked.
    pub fn parse(url: &str, flag: &str) -> Result<PgUrl> {
        let shown = mask(url);
        let bad = |msg: String| Error::flag(flag, format!("{shown}: {msg}"));
        if !(url.starts_with("postgresql://") || url.starts_with("postgres://")) {
            return Err(bad(
                "expected a PostgreSQL URL, postgresql://user:password@host:port/database".into(),
            ));
        }
        let (head, query) = match query_start(url) {
            Some(q) => (&url[..q], &url[q + 1..]),
            None => (url, ""),
        };
        let mut mode = None;
        let mut root = None;
        let mut rest = vec![];
        for kv in query.split('&').filter(|kv| !kv.is_empty()) {
            match kv.split_once('=') {
                Some(("sslmode", v)) => mode = Some(percent_decode(v)),
                Some(("sslrootcert", v)) => root = Some(PathBuf::from(percent_decode(v))),
                _ => rest.push(kv),
            }
        }
        let plain = if rest.is_empty() {
            head.to_string()
        } else {
            format!("{head}?{}", rest.join("&"))
        };
        let mut config: postgres::Config = plain.parse().map_err(|e: postgres::Error| {
            // tokio-postgres' parse errors name the option, never its value.
            bad(format!("{e}"))
        })?;
        let root_file = || -> Result<PathBuf> {
            root.clone()
                .or_else(|| {
                    std::env::var_os("HOME")
                        .map(|h| PathBuf::from(h).join(".postgresql/root.crt"))
                        .filter(|p| p.exists())
                })
                .ok_or_else(|| {
                    bad("sslmode verify-ca and verify-full need the CA certificate: add sslrootcert=FILE (or put it in ~/.postgresql/root.crt)".into())
                })
        };
        let tls = match mode.as_deref() {
            None | Some("prefer") => Tls::Prefer,
            Some("disable") => Tls::Disable,
            Some("require") => Tls::Require,
            Some("verify-ca") => Tls::VerifyCa(root_file()?),
            Some("verify-full") => Tls::VerifyFull(root_file()?),
            Some(other) => {
                return Err(bad(format!(
                    "sslmode={other}: expected disable, prefer, require, verify-ca or verify-full"
                )))
            }
        };
        config.ssl_mode(match tls {
            Tls::Disable => SslMode::Disable,
            Tls::Prefer => SslMode::Prefer,
            _ => SslMode::Require,
        });
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_hosts().is_empty() {
            return Err(bad(
                "no host: expected postgresql://user@host/database".into()
            ));
        }
        Ok(PgUrl {
            config,
            tls,
            shown,
            flag: flag.to_string(),
        })
    }

    /// A new connection.
    pub fn connect(&self) -> Result<Client> {
        let unix_only = self
            .config
            .get_hosts()
            .iter()
            .all(|h| matches!(h, Host::Unix(_)));
        let res = if self.tls == Tls::Disable || unix_only {
            self.config.connect(NoTls)
        } else {
            let tls = tokio_postgres_rustls::MakeRustlsConnect::new(self.rustls()?);
            self.config.connect(tls)
        };
        res.map_err(|e| {
            Error::flag(
                &self.flag,
                format!("{}: cannot connect: {}", self.shown, describe(&e)),
            )
        })
    }

    fn rustls(&self) -> Result<rustls::ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::backend("postgresql", format!("TLS setup: {e}")))?;
        let roots = |path: &PathBuf| -> Result<Arc<RootCertStore>> {
            let mut store = RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
                .map_err(|e| {
                    Error::file(
                        path,
                        format!("sslrootcert: not a PEM certificate file: {e}"),
                    )
                })?;
            for c in certs {
                store.add(c).map_err(|e| {
                    Error::file(path, format!("sslrootcert: unusable certificate: {e}"))
                })?;
            }
            if store.is_empty() {
                return Err(Error::file(path, "sslrootcert: no certificate in the file"));
            }
            Ok(Arc::new(store))
        };
        let verifier: Arc<dyn ServerCertVerifier> = match &self.tls {
            Tls::VerifyFull(path) | Tls::VerifyCa(path) => {
                let inner =
                    WebPkiServerVerifier::builder_with_provider(roots(path)?, provider.clone())
                        .build()
                        .map_err(|e| Error::backend("postgresql", format!("TLS setup: {e}")))?;
                Arc::new(Checked {
                    inner,
                    check_name: matches!(self.tls, Tls::VerifyFull(_)),
                })
            }
            _ => Arc::new(Unchecked { provider }),
        };
        Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth())
    }
}

/// Whether trying again (on a new connection) may get past this error.
pub fn transient(e: &postgres::Error) -> bool {
    use postgres::error::SqlState;
    if e.is_closed() {
        return true;
    }
    match e.code() {
        Some(c) => [
            SqlState::T_R_DEADLOCK_DETECTED,
            SqlState::T_R_SERIALIZATION_FAILURE,
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
        ]
        .contains(c),
        // No server error: the connection itself failed (I/O).
        None => true,
    }
}

/// A postgres error with its cause (the server's message, or the I/O or TLS failure).
pub fn describe(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} ({})", db.message(), db.code().code());
    }
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(x) = src {
        let t = x.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = x.source();
    }
    s
}

/// `verify-ca` and `verify-full`: the chain must lead to the CA; `verify-full` also checks that the
/// certificate names the host.
#[derive(Debug)]
struct Checked {
    inner: Arc<WebPkiServerVerifier>,
    check_name: bool,
}

impl ServerCertVerifier for Checked {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `prefer` and `require`: encrypted, the certificate not checked (libpq's meaning); the
/// handshake's signatures still are.
#[derive(Debug)]
struct Unchecked {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

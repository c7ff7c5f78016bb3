//! TLS termination on the `https` listener: certificates chosen by SNI.
//!
//! Each certificate (a PEM chain and its key) serves a list of host patterns (`shop.example`,
//! `*.shop.example`). A client's SNI picks the first certificate with an exact host, else the
//! first with a wildcard that covers it, else the first certificate of the list (also the one
//! for clients that send no SNI). Every file is read and checked (the key must match its
//! certificate) when the gateway starts, so a bad file stops start-up with an error that names
//! it, never a panic in the middle of serving.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::routes::HostPattern;

/// One certificate of the `https` listener, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateConfig {
    /// The hosts it serves.
    pub hosts: Vec<HostPattern>,
    /// The PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// The PEM private key.
    pub key: PathBuf,
}

/// The listener's certificates, resolved by SNI.
#[derive(Debug)]
pub struct SniCertificates {
    entries: Vec<(Vec<HostPattern>, Arc<CertifiedKey>)>,
}

impl SniCertificates {
    /// Reads and checks every certificate and key; the error names the file at fault.
    pub fn load(certificates: &[CertificateConfig]) -> Result<SniCertificates, String> {
        if certificates.is_empty() {
            return Err(
                "tls.certificates: the https listener needs at least one certificate".into(),
            );
        }
        let provider = rustls::crypto::ring::default_provider();
        let entries = certificates
            .iter()
            .map(|c| Ok((c.hosts.clone(), Arc::new(certified_key(c, &provider)?))))
            .collect::<Result<_, String>>()?;
        Ok(SniCertificates { entries })
    }

    fn choose(&self, server_name: Option<&str>) -> Arc<CertifiedKey> {
        if let Some(name) = server_name {
            let exact = self.entries.iter().find(|(hosts, _)| {
                hosts
                    .iter()
                    .any(|h| matches!(h, HostPattern::Exact(_)) && h.matches_host(name))
            });
            let wildcard = || {
                self.entries
                    .iter()
                    .find(|(hosts, _)| hosts.iter().any(|h| h.matches_host(name)))
            };
            if let Some((_, key)) = exact.or_else(wildcard) {
                return key.clone();
            }
        }
        self.entries[0].1.clone()
    }
}

impl ResolvesServerCert for SniCertificates {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.choose(hello.server_name()))
    }
}

fn certified_key(
    config: &CertificateConfig,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, String> {
    let chain = read_certificates(&config.cert)?;
    let key = PrivateKeyDer::from_pem_file(&config.key)
        .map_err(|e| format!("reading the key {}: {e}", config.key.display()))?;
    CertifiedKey::from_der(chain, key, provider).map_err(|e| {
        format!(
            "the key {} does not go with the certificate {}: {e}",
            config.key.display(),
            config.cert.display()
        )
    })
}

/// The certificates of the PEM file at `path`. The error names the file; a file that holds
/// none is an error too.
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certificates = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("reading {}: {e}", path.display()))?;
    if certificates.is_empty() {
        return Err(format!("{} holds no certificate", path.display()));
    }
    Ok(certificates)
}

/// Adds the certificates of the PEM CA file at `path` to `roots`, each checked to be a usable
/// root, and returns them.
pub fn add_roots(
    path: &Path,
    roots: &mut rustls::RootCertStore,
) -> Result<Vec<CertificateDer<'static>>, String> {
    let certificates = read_certificates(path)?;
    for certificate in &certificates {
        roots
            .add(certificate.clone())
            .map_err(|e| format!("a certificate of {}: {e}", path.display()))?;
    }
    Ok(certificates)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate for `names`, written to `dir` as `<stem>.pem` and
    /// `<stem>.key`.
    fn write_certificate(
        dir: &Path,
        stem: &str,
        names: &[&str],
        hosts: &[&str],
    ) -> CertificateConfig {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let generated = rcgen::generate_simple_self_signed(names).unwrap();
        let cert = dir.join(format!("{stem}.pem"));
        let key = dir.join(format!("{stem}.key"));
        std::fs::write(&cert, generated.cert.pem()).unwrap();
        std::fs::write(&key, generated.key_pair.serialize_pem()).unwrap();
        CertificateConfig {
            hosts: hosts
                .iter()
                .map(|h| HostPattern::parse(h).unwrap())
                .collect(),
            cert,
            key,
        }
    }

    #[test]
    fn sni_picks_exact_then_wildcard_then_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let first = write_certificate(dir.path(), "first", &["first.test"], &["first.test"]);
        let wild = write_certificate(dir.path(), "wild", &["*.shop.test"], &["*.shop.test"]);
        let exact = write_certificate(dir.path(), "exact", &["api.shop.test"], &["api.shop.test"]);
        let certificates = SniCertificates::load(&[first, wild, exact]).unwrap();
        let leaf = |name: Option<&str>| certificates.choose(name).cert[0].clone();
        let [first, wild, exact] = [0, 1, 2].map(|i| certificates.entries[i].1.cert[0].clone());
        assert_eq!(leaf(Some("api.shop.test")), exact);
        assert_eq!(leaf(Some("www.shop.test")), wild);
        assert_eq!(leaf(Some("first.test")), first);
        assert_eq!(leaf(Some("unknown.test")), first);
        assert_eq!(leaf(None), first);
    }

    #[test]
    fn bad_files_are_errors_that_name_them() {
        let dir = tempfile::tempdir().unwrap();
        let good = write_certificate(dir.path(), "good", &["a.test"], &["a.test"]);
        let other = write_certificate(dir.path(), "other", &["b.test"], &["b.test"]);

        let missing = CertificateConfig {
            cert: dir.path().join("missing.pem"),
            ..good.clone()
        };
        let e = SniCertificates::load(&[missing]).unwrap_err();
        assert!(e.contains("missing.pem"), "{e}");

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not pem\n").unwrap();
        let e = SniCertificates::load(&[CertificateConfig {
            cert: empty,
            ..good.clone()
        }])
        .unwrap_err();
        assert!(e.contains("holds no certificate"), "{e}");

        let mismatched = CertificateConfig {
            key: other.key.clone(),
            ..good.clone()
        };
        let e = SniCertificates::load(&[mismatched]).unwrap_err();
        assert!(e.contains("does not go with"), "{e}");

        assert!(SniCertificates::load(&[]).is_err());
        SniCertificates::load(&[good, other]).unwrap();
    }
}

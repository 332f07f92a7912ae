//! How the bridge trusts a `wss://` backend: the public web's roots (built in, so a static
//! bridge works on any distribution), plus the certificate authorities of a PEM file the
//! operator names at enrolment (`--ca-file`) for a backend behind a private CA, such as a
//! load balancer's own (Caddy's `tls internal`) or a company's. The PEM is kept in the
//! credential file, so the bridge keeps trusting it after the file is gone.

use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;

/// The TLS settings a connection uses: `None` is the built-in roots only.
pub type Trust = Option<Arc<rustls::ClientConfig>>;

/// Why a CA file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("the CA file holds no PEM certificate (\"-----BEGIN CERTIFICATE-----\")")]
    Empty,
    #[error("the CA file's certificate {index} cannot be read: {reason}")]
    Unreadable { index: usize, reason: String },
}

/// The built-in roots plus every certificate in `pem` (none: the built-in roots only).
pub fn trust(pem: Option<&str>) -> Result<Trust, TrustError> {
    let Some(pem) = pem else { return Ok(None) };
    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    let mut added = 0;
    for (index, cert) in CertificateDer::pem_slice_iter(pem.as_bytes()).enumerate() {
        let cert = cert.map_err(|e| TrustError::Unreadable { index: index + 1, reason: e.to_string() })?;
        roots.add(cert).map_err(|e| TrustError::Unreadable { index: index + 1, reason: e.to_string() })?;
        added += 1;
    }
    if added == 0 {
        return Err(TrustError::Empty);
    }
    let config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    Ok(Some(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed CA made for this test (`openssl req -x509 -newkey ec …`).
    const CA: &str = "-----BEGIN CERTIFICATE-----\n\
MIIBhzCCAS2gAwIBAgIUM/FniH6mTS0DeBeCpi0XiTmtruswCgYIKoZIzj0EAwIw\n\
GDEWMBQGA1UEAwwNUG9ydGEgdGVzdCBDQTAgFw0yNjEyMDUyMzQ1MTJaGA8yMTI2\n\
MTExMTIzNDUxMlowGDEWMBQGA1UEAwwNUG9ydGEgdGVzdCBDQTBZMBMGByqGSM49\n\
AgEGCCqGSM49AwEHA0IABHcKMSX/JzWAjmT4+OJzXDoCWJ/0mdzRHLlB8X6Z2QKH\n\
Y5TlX/kjws5+jhCxOhHdqkhXxqnr6e671KPve29Iz7ujUzBRMB0GA1UdDgQWBBS2\n\
oirtaIgWFlH8iSK1C9vK8EnFzzAfBgNVHSMEGDAWgBS2oirtaIgWFlH8iSK1C9vK\n\
8EnFzzAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIE1S8j5KC613\n\
LhC+aGO2j8bNmQ8gzm1Rd9CP+tOsluHIAiEAkDNeMqEsOAHCyf0EPeLGmNojdo+1\n\
lwz2cq0KlQAhIOU=\n\
-----END CERTIFICATE-----\n\
";

    #[test]
    fn a_ca_file_adds_its_certificates_to_the_built_in_roots() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let two = format!("{CA}{CA}");
        assert!(trust(Some(CA)).expect("one CA").is_some());
        assert!(trust(Some(&two)).expect("two CAs").is_some());
    }

    #[test]
    fn a_file_without_certificates_is_refused_with_what_to_fix() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        assert!(trust(None).expect("no file").is_none(), "no file: the built-in roots");
        assert!(matches!(trust(Some("not a certificate\n")), Err(TrustError::Empty)));
        let bad = "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n";
        assert!(matches!(trust(Some(bad)), Err(TrustError::Unreadable { index: 1, .. })), "{:?}", trust(Some(bad)));
    }
}

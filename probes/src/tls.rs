//! TLS certificate: handshake accepting whatever the server presents, then
//! judge the chain it sent (trusted by the system's roots?), the name
//! (does the leaf name the host?) and the leaf's expiry, each on its own so
//! a monitor can alert on any of them.

use std::sync::{Arc, OnceLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use protocol::views::monitoring::{Parameter, ProbeOutcome, TlsProbe};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_rustls::TlsConnector;

const SECONDS_PER_DAY: f64 = 86_400.0;

pub(crate) async fn run(probe: &TlsProbe) -> ProbeOutcome {
    match tokio::time::timeout(crate::limit(probe.timeout_ms), check(probe)).await {
        Err(_) => crate::timed_out(probe.timeout_ms),
        Ok(Err(error)) => ProbeOutcome::failed(error),
        Ok(Ok(outcome)) => outcome,
    }
}

async fn check(probe: &TlsProbe) -> Result<ProbeOutcome, String> {
    let name = probe.server_name.as_deref().unwrap_or(&probe.host).trim();
    let server_name = ServerName::try_from(name.to_owned())
        .map_err(|_| format!("{name:?} is not a valid server name"))?;
    let connector = TlsConnector::from(shared().config.clone()?);
    let start = Instant::now();
    let tcp = crate::connect(&probe.host, probe.port).await?;
    let stream = connector
        .connect(server_name.clone(), tcp)
        .await
        .map_err(|err| format!("TLS handshake failed: {}", handshake_message(&err)))?;
    let latency_ms = crate::elapsed_ms(start);
    let chain: Vec<CertificateDer<'static>> = stream
        .get_ref()
        .1
        .peer_certificates()
        .map(|certs| certs.iter().map(|c| c.clone().into_owned()).collect())
        .unwrap_or_default();
    drop(stream);
    let Some((leaf, intermediates)) = chain.split_first() else {
        return Err("the server sent no certificate".to_owned());
    };
    let shared = shared();
    let roots = shared.roots.as_deref().map_err(String::as_str);
    let verdict = judge(
        leaf,
        intermediates,
        &server_name,
        roots,
        &shared.algorithms,
        SystemTime::now(),
    );
    let mut errors = Vec::new();
    if let Some(why) = &verdict.untrusted {
        errors.push(format!("certificate chain is not trusted: {why}"));
    }
    if !verdict.hostname_match {
        errors.push(format!("certificate does not match {name}"));
    }
    match verdict.days_to_expiry {
        Some(days) if days <= 0.0 => errors.push("certificate has expired".to_owned()),
        Some(_) => {}
        None => errors.push("the certificate's expiry could not be read".to_owned()),
    }
    let mut values = vec![
        (
            Parameter::ChainValid,
            f64::from(u8::from(verdict.untrusted.is_none())),
        ),
        (
            Parameter::HostnameMatch,
            f64::from(u8::from(verdict.hostname_match)),
        ),
    ];
    values.extend(verdict.days_to_expiry.map(|d| (Parameter::DaysToExpiry, d)));
    Ok(ProbeOutcome {
        ok: errors.is_empty(),
        latency_ms: Some(latency_ms),
        values: values.into_iter().collect(),
        error: (!errors.is_empty()).then(|| errors.join("; ")),
    })
}

struct Verdict {
    /// Why the chain is not trusted; `None` when it is.
    untrusted: Option<String>,
    hostname_match: bool,
    days_to_expiry: Option<f64>,
}

fn judge(
    leaf: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    server_name: &ServerName<'_>,
    roots: Result<&RootCertStore, &str>,
    algorithms: &WebPkiSupportedAlgorithms,
    now: SystemTime,
) -> Verdict {
    let days_to_expiry = days_to_expiry(leaf, now);
    let parsed = match rustls::server::ParsedCertificate::try_from(leaf) {
        Ok(parsed) => parsed,
        Err(err) => {
            return Verdict {
                untrusted: Some(err.to_string()),
                hostname_match: false,
                days_to_expiry,
            };
        }
    };
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let untrusted = match roots {
        Err(error) => Some(error.to_owned()),
        Ok(roots) => rustls::client::verify_server_cert_signed_by_trust_anchor(
            &parsed,
            roots,
            intermediates,
            UnixTime::since_unix_epoch(since_epoch),
            algorithms.all,
        )
        .err()
        .map(|err| err.to_string()),
    };
    let hostname_match = rustls::client::verify_server_name(&parsed, server_name).is_ok();
    Verdict {
        untrusted,
        hostname_match,
        days_to_expiry,
    }
}

/// Days from `now` until the leaf's notAfter, floored to two decimals.
fn days_to_expiry(leaf: &CertificateDer<'_>, now: SystemTime) -> Option<f64> {
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
    let not_after = cert.validity().not_after.timestamp();
    let now = match now.duration_since(UNIX_EPOCH) {
        Ok(since) => since.as_secs_f64(),
        Err(before) => -before.duration().as_secs_f64(),
    };
    let days = (not_after as f64 - now) / SECONDS_PER_DAY;
    Some((days * 100.0).floor() / 100.0)
}

fn handshake_message(error: &std::io::Error) -> String {
    match error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls) => tls.to_string(),
        None => crate::io_message(error),
    }
}

/// Built once: the ring provider's algorithms, the system's roots and the
/// handshake configuration.
struct Shared {
    algorithms: WebPkiSupportedAlgorithms,
    roots: Result<Arc<RootCertStore>, String>,
    config: Result<Arc<rustls::ClientConfig>, String>,
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let algorithms = provider.signature_verification_algorithms;
        Shared {
            algorithms,
            roots: native_roots(),
            config: client_config(provider),
        }
    })
}

fn native_roots() -> Result<Arc<RootCertStore>, String> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err("no trusted root certificates on this system".to_owned());
    }
    Ok(Arc::new(roots))
}

fn client_config(provider: Arc<CryptoProvider>) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|err| format!("TLS setup: {err}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnything(provider)))
        .with_no_client_auth();
    // Every check sees the server's full handshake and certificate, not a
    // resumed session.
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}

/// Accepts any certificate so the handshake completes and the probe can
/// report what is wrong with it; the judging happens afterwards. The
/// handshake signatures are still checked, so the peer holds the key of
/// the certificate it presented.
#[derive(Debug)]
struct AcceptAnything(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnything {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    use std::time::Duration;

    /// A CA and a leaf for `localhost` it signed, valid for `days`.
    fn chain(days: i64) -> (CertificateDer<'static>, CertificateDer<'static>) {
        let ca_key = KeyPair::generate().expect("key");
        let mut ca_params = CertificateParams::default();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.clone().self_signed(&ca_key).expect("ca");
        let issuer = Issuer::new(ca_params, ca_key);
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
        params.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(1);
        params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(days);
        let leaf = params
            .signed_by(&KeyPair::generate().expect("key"), &issuer)
            .expect("leaf");
        (ca.der().clone(), leaf.der().clone())
    }

    #[test]
    fn a_chain_to_a_trusted_root_is_valid_and_names_are_checked_separately() {
        let (ca, leaf) = chain(10);
        let mut roots = RootCertStore::empty();
        roots.add(ca).expect("root");
        let algorithms = rustls::crypto::ring::default_provider().signature_verification_algorithms;
        let name = |n: &str| ServerName::try_from(n.to_owned()).expect("name");
        let now = SystemTime::now();

        let good = judge(&leaf, &[], &name("localhost"), Ok(&roots), &algorithms, now);
        assert_eq!(good.untrusted, None);
        assert!(good.hostname_match);
        let days = good.days_to_expiry.expect("expiry");
        assert!((9.9..=10.0).contains(&days), "{days}");

        let other = judge(
            &leaf,
            &[],
            &name("example.com"),
            Ok(&roots),
            &algorithms,
            now,
        );
        assert_eq!(
            other.untrusted, None,
            "the chain does not depend on the name"
        );
        assert!(!other.hostname_match);

        let untrusted = judge(
            &leaf,
            &[],
            &name("localhost"),
            Ok(&RootCertStore::empty()),
            &algorithms,
            now,
        );
        assert!(untrusted.untrusted.is_some());
        assert!(untrusted.hostname_match);

        let later = now + Duration::from_secs(11 * 86_400);
        let expired = judge(
            &leaf,
            &[],
            &name("localhost"),
            Ok(&roots),
            &algorithms,
            later,
        );
        assert!(expired.untrusted.is_some(), "an expired chain is not valid");
        assert!(expired.days_to_expiry.expect("expiry") < 0.0);
    }
}

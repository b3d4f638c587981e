//! The simulator's certificate authority, its serving certificates and a TLS
//! listener for axum.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::serve::Listener;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde::{Deserialize, Serialize};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::mpsc,
};
use tokio_rustls::{TlsAcceptor, server::TlsStream};

use crate::error::Error;

/// A CA certificate and its key, both PEM; persisted so that kubeconfigs
/// handed out before a restart stay valid.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Ca {
    pub cert_pem: String,
    pub key_pem: String,
}

/// The CA's identity is fixed so that an issuer rebuilt from the persisted key
/// signs certificates that chain to the persisted CA certificate.
fn ca_params(common_name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "kubesim");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

const CA_NAME: &str = "kubesim-ca";

impl Ca {
    pub fn generate() -> Result<Ca, Error> {
        let key = KeyPair::generate()?;
        let cert = ca_params(CA_NAME).self_signed(&key)?;
        Ok(Ca {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Issues a serving certificate for `sans` (DNS names or IP addresses).
    pub fn issue(&self, sans: &[String]) -> Result<ServingCert, Error> {
        let ca_key = KeyPair::from_pem(&self.key_pem)?;
        let issuer = Issuer::new(ca_params(CA_NAME), ca_key);
        let mut names: Vec<String> = Vec::new();
        for san in sans {
            if !san.is_empty() && !names.contains(san) {
                names.push(san.clone());
            }
        }
        let mut params = CertificateParams::new(names)?;
        params
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &issuer)?;
        Ok(ServingCert {
            cert_der: cert.der().clone(),
            key_der: key.serialize_der(),
        })
    }
}

pub(crate) struct ServingCert {
    cert_der: CertificateDer<'static>,
    key_der: Vec<u8>,
}

impl ServingCert {
    pub fn acceptor(self) -> Result<TlsAcceptor, Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(
                vec![self.cert_der],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der)),
            )?;
        // Only HTTP/1.1 is served; watches stream as chunked responses.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

/// Accepts TCP connections and completes TLS handshakes off the accept path,
/// so one stalled client (a port probe, say) cannot hold up the others.
pub(crate) struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

impl TlsListener {
    pub fn new(tcp: TcpListener, acceptor: TlsAcceptor) -> std::io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                // The TCP socket closes as soon as the server drops this
                // listener: callers rely on "connection refused" afterwards.
                let (socket, peer) = tokio::select! {
                    _ = tx.closed() => break,
                    accepted = tcp.accept() => match accepted {
                        Ok(pair) => pair,
                        Err(error) => {
                            tracing::debug!(%error, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    },
                };
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(socket)).await {
                        Ok(Ok(stream)) => {
                            let _ = tx.send((stream, peer)).await;
                        }
                        Ok(Err(error)) => tracing::debug!(%error, %peer, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { ready, local })
    }
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(pair) => pair,
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// A random bearer token.
pub(crate) fn new_token() -> String {
    use rand::Rng;
    let bytes: [u8; 24] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

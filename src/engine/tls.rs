//! TLS inside the grabber's own TCP (`-sV` on `ssl` ports, as nmap's SSL tunnel): rustls as a
//! pure state machine fed with the segments the grabber receives, its records sent as the
//! grabber's data. No certificate is checked (we read what the server says, whoever it is);
//! the probe is written before the handshake ends and goes out right after it.

use std::{
    io::{Read, Write},
    net::IpAddr,
    sync::{Arc, OnceLock},
};

use rustls::{
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    pki_types::{CertificateDer, ServerName, UnixTime},
    ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme,
};

/// Accepts any certificate: a scanner wants the service behind it, not its identity.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn config() -> Option<Arc<ClientConfig>> {
    static CONFIG: OnceLock<Option<Arc<ClientConfig>>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let cfg = ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .ok()?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                .with_no_client_auth();
            Some(Arc::new(cfg))
        })
        .clone()
}

/// The session failed (an alert, a protocol error) or the server closed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("TLS session ended")]
pub(crate) struct TlsEnded;

/// One TLS session over a grabber connection.
pub(crate) struct TlsLayer {
    conn: ClientConnection,
}

impl std::fmt::Debug for TlsLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsLayer")
            .field("handshaking", &self.conn.is_handshaking())
            .finish()
    }
}

impl TlsLayer {
    /// A session to `server` that will send `probe` once it is up.
    pub(crate) fn new(server: IpAddr, probe: &[u8]) -> Option<Self> {
        let mut conn =
            ClientConnection::new(config()?, ServerName::IpAddress(server.into())).ok()?;
        if !probe.is_empty() {
            conn.writer().write_all(probe).ok()?;
        }
        Some(Self { conn })
    }

    /// Sends `probe` (buffered until the handshake is done).
    pub(crate) fn write(&mut self, probe: &[u8]) {
        let _ = self.conn.writer().write_all(probe);
    }

    /// Bytes to put on the wire now (the ClientHello, handshake replies, the probe).
    pub(crate) fn outgoing(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        while self.conn.wants_write() {
            if self.conn.write_tls(&mut out).is_err() {
                break;
            }
        }
        out
    }

    /// Takes bytes the server sent; returns the plaintext they carried.
    pub(crate) fn incoming(&mut self, mut data: &[u8]) -> Result<Vec<u8>, TlsEnded> {
        let mut plain = Vec::new();
        while !data.is_empty() {
            match self.conn.read_tls(&mut data) {
                Ok(0) => break,
                Ok(_) => {}
                Err(_) => return Err(TlsEnded),
            }
            let state = self.conn.process_new_packets().map_err(|_| TlsEnded)?;
            if state.plaintext_bytes_to_read() > 0 {
                let mut buf = vec![0u8; state.plaintext_bytes_to_read()];
                if let Ok(n) = self.conn.reader().read(&mut buf) {
                    plain.extend_from_slice(&buf[..n]);
                }
            }
            if state.peer_has_closed() && plain.is_empty() {
                return Err(TlsEnded);
            }
        }
        Ok(plain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_hello_goes_out_first() {
        let mut t =
            TlsLayer::new("198.19.0.1".parse().unwrap(), b"GET / HTTP/1.0\r\n\r\n").unwrap();
        let hello = t.outgoing();
        assert_eq!(hello[0], 0x16, "a handshake record");
        assert_eq!(hello[5], 0x01, "ClientHello");
        assert!(
            !hello.windows(4).any(|w| w == b"GET "),
            "the probe waits for the handshake"
        );
        assert!(
            t.incoming(b"\x15\x03\x03\x00\x02\x02\x28").is_err(),
            "an alert ends it"
        );
    }
}

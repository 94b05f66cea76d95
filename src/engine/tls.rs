//! TLS inside the grabber's own TCP (`-sV` on `ssl` ports, as nmap's SSL tunnel): rustls as a
//! pure state machine fed with the segments the grabber receives, its records sent as the
//! grabber's data. No certificate is checked (we read what the server says, whoever it is);
//! the probe is written before the handshake ends and goes out right after it.

use std::{
    io::{Read, Write},
    net::IpAddr,
    sync::{Arc, OnceLock},
};

use crate::app::{TlsFacts, TlsUse};
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

/// The client configuration: no ALPN for a session that carries a probe (the server's
/// default protocol), `h2` and `http/1.1` offered for a handshake alone (`--grab tls`: which
/// one the server picks is a fact worth recording).
fn config(mode: TlsUse) -> Option<Arc<ClientConfig>> {
    static CONFIGS: OnceLock<[Option<Arc<ClientConfig>>; 2]> = OnceLock::new();
    let make = |alpn: &[&[u8]]| {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .ok()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth();
        cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Some(Arc::new(cfg))
    };
    let configs = CONFIGS.get_or_init(|| [make(&[]), make(&[b"h2", b"http/1.1"])]);
    configs[usize::from(mode == TlsUse::Handshake)].clone()
}

/// The session failed (an alert, a protocol error) or the server closed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("TLS session ended")]
pub(crate) struct TlsEnded;

/// One TLS session over a grabber connection.
pub(crate) struct TlsLayer {
    conn: ClientConnection,
    /// The bytes it could not read, as received (`TlsFacts::refused`).
    refused: Vec<u8>,
    failed: bool,
}

impl std::fmt::Debug for TlsLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsLayer")
            .field("handshaking", &self.conn.is_handshaking())
            .finish()
    }
}

impl TlsLayer {
    /// A session to `server` (asking for `sni` when named) that will send `probe` once it is
    /// up.
    pub(crate) fn new(
        server: IpAddr,
        probe: &[u8],
        sni: Option<&str>,
        mode: TlsUse,
    ) -> Option<Self> {
        let name = match sni.and_then(|n| ServerName::try_from(n.to_string()).ok()) {
            Some(n) => n,
            None => ServerName::IpAddress(server.into()),
        };
        let mut conn = ClientConnection::new(config(mode)?, name).ok()?;
        if !probe.is_empty() {
            conn.writer().write_all(probe).ok()?;
        }
        Some(Self {
            conn,
            refused: Vec::new(),
            failed: false,
        })
    }

    pub(crate) fn handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// The session broke on `data` (kept, bounded, for what the port speaks instead) while
    /// it was being made.
    pub(crate) fn refused(&mut self, data: &[u8]) {
        if !self.conn.is_handshaking() {
            return; // the session was made; this is its end (close_notify), not a refusal
        }
        self.failed = true;
        let room = 4096usize.saturating_sub(self.refused.len());
        self.refused
            .extend_from_slice(&data[..data.len().min(room)]);
    }

    /// What the session told us so far.
    pub(crate) fn facts(&self) -> TlsFacts {
        let c = &self.conn;
        TlsFacts {
            version: c.protocol_version().map_or(0, |v| v.into()),
            suite: c.negotiated_cipher_suite().map_or(0, |s| s.suite().into()),
            alpn: c.alpn_protocol().map(<[u8]>::to_vec),
            chain: c
                .peer_certificates()
                .map(|certs| certs.iter().map(|d| d.to_vec()).collect())
                .unwrap_or_default(),
            complete: !self.failed && !c.is_handshaking(),
            alert: None,
            refused: self.refused.clone(),
        }
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
        let mut t = TlsLayer::new(
            "198.19.0.1".parse().unwrap(),
            b"GET / HTTP/1.0\r\n\r\n",
            None,
            TlsUse::Session,
        )
        .unwrap();
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

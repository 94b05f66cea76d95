//! Cookies in UDP payloads, so a UDP result cannot be forged off-path: each built-in payload
//! carries cookie bits in the field its protocol copies into the answer, and a reply without
//! them is invalid. The source port alone (ZMap's and masscan's check) is one guess in 4,536;
//! these fields add (per forged datagram):
//!
//! | protocol | field we fill | where the answer copies it | bits |
//! | --- | --- | --- | --- |
//! | DNS, mDNS | ID; 0x20 case of the question's letters | ID; question section | 16 + one per letter, up to 16 (version.bind: 27) |
//! | NTP | transmit timestamp | origin timestamp | 32 |
//! | SNMP | request-id | response PDU's request-id | 30 |
//! | ONC RPC (portmap) | XID | XID | 32 |
//! | memcached, NetBIOS-NS | request ID / transaction ID | the same | 16 |
//! | QUIC | Destination Connection ID | Version Negotiation's Source Connection ID | 32 |
//! | SIP | Call-ID | Call-ID | 32 |
//!
//! A responder that sends the datagram back unchanged (echo) passes too: the cookie is in it.
//! DTLS has no such field that servers keep (RFC 6347 asks the HelloVerifyRequest to copy the
//! record sequence number; OpenSSL 3 writes 0): its answer must be a DTLS record, so on the
//! ports that also carry QUIC (443, 4433, 8443) a reply is either a QUIC Version Negotiation
//! with our connection ID or a DTLS record, never anything else on the port alone.
//! SSDP, empty datagrams and `--udp-payloads` payloads have no field: the port is their only
//! check. The cookie bits are the probe cookie's 32 `seq` bits (unused by UDP
//! otherwise); 64-bit fields take them twice, so they hold 32 bits of the key's secret.

/// Where a payload carries cookie bits, and how the answer returns them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Echo {
    /// DNS query: ID at 0, question name of `name_len` bytes at 12 (letters take 0x20 bits).
    Dns { name_len: usize },
    /// NTP: transmit timestamp at 40, copied to the origin timestamp at 24.
    Ntp,
    /// SNMP: a 4-byte INTEGER request-id whose value starts at `at`.
    Snmp { at: usize },
    /// The first `len` bytes (ONC RPC XID, memcached request ID, NetBIOS transaction ID).
    Head { len: usize },
    /// QUIC long header: an 8-byte Destination Connection ID at 6.
    QuicDcid,
    /// SIP: 8 hex digits of the Call-ID at `at`.
    SipCallId { at: usize },
    /// DTLS: nothing echoed; the answer must be a DTLS record (shape, not a secret).
    Dtls,
    /// No field an answer copies: the source port is the check.
    None,
}

impl Echo {
    /// As a template mark (`FrameTemplate::mark`): kind in the low 4 bits, its offset or length
    /// above. `Echo::None` is 0.
    pub(crate) fn to_mark(self) -> u32 {
        let (kind, arg) = match self {
            Echo::None => (0, 0),
            Echo::Dns { name_len } => (1, name_len),
            Echo::Ntp => (2, 0),
            Echo::Snmp { at } => (3, at),
            Echo::Head { len } => (4, len),
            Echo::QuicDcid => (5, 0),
            Echo::SipCallId { at } => (6, at),
            Echo::Dtls => (7, 0),
        };
        kind | (arg as u32) << 4
    }

    #[inline]
    pub(crate) fn from_mark(m: u32) -> Echo {
        let arg = (m >> 4) as usize;
        match m & 0xf {
            1 => Echo::Dns { name_len: arg },
            2 => Echo::Ntp,
            3 => Echo::Snmp { at: arg },
            4 => Echo::Head { len: arg },
            5 => Echo::QuicDcid,
            6 => Echo::SipCallId { at: arg },
            7 => Echo::Dtls,
            _ => Echo::None,
        }
    }
    /// Writes the cookie bits `bits` into `payload` (a copy of the template's).
    pub(crate) fn stamp(self, payload: &mut [u8], bits: u32) {
        let b = bits.to_be_bytes();
        match self {
            Echo::Dns { name_len } => {
                put(payload, 0, &b[2..]);
                // 0x20: the i-th letter of the name is upper case when bit i of the high half is.
                let case = bits >> 16;
                let mut i = 0;
                for c in payload.iter_mut().skip(12).take(name_len) {
                    if c.is_ascii_alphabetic() && i < 16 {
                        *c = if case >> i & 1 == 1 {
                            c.to_ascii_uppercase()
                        } else {
                            c.to_ascii_lowercase()
                        };
                        i += 1;
                    }
                }
            }
            Echo::Ntp => {
                put(payload, 40, &b);
                put(payload, 44, &(!bits).to_be_bytes());
            }
            // Positive, four bytes long whatever the value: BER encodes it as given.
            Echo::Snmp { at } => put(
                payload,
                at,
                &(bits & 0x7fff_ffff | 0x4000_0000).to_be_bytes(),
            ),
            Echo::Head { len } => put(payload, 0, &b[4 - len.min(4)..]),
            Echo::QuicDcid => {
                put(payload, 6, &b);
                put(payload, 10, &(!bits).to_be_bytes());
            }
            Echo::SipCallId { at } => put(payload, at, format!("{bits:08x}").as_bytes()),
            Echo::Dtls | Echo::None => {}
        }
    }

    /// Does `reply` (a UDP payload) answer `sent`, the payload as stamped for this probe?
    pub(crate) fn answers(self, sent: &[u8], reply: &[u8]) -> bool {
        if reply == sent {
            return true; // an echo
        }
        match self {
            Echo::Dns { name_len } => {
                reply.len() >= 12 + name_len
                    && reply[..2] == sent[..2]
                    && reply[12..12 + name_len] == sent[12..12 + name_len]
            }
            Echo::Ntp => reply.len() >= 32 && sent.len() >= 48 && reply[24..32] == sent[40..48],
            Echo::Snmp { at } => {
                snmp_request_id(reply)
                    == Some(u32::from_be_bytes(
                        sent[at..at + 4].try_into().unwrap_or_default(),
                    ))
            }
            Echo::Head { len } => reply.len() >= len && reply[..len] == sent[..len],
            Echo::QuicDcid => quic_vn_scid(reply) == sent.get(6..14),
            Echo::SipCallId { at } => {
                let id = &sent[at..at + 8];
                reply.windows(8).any(|w| w == id)
            }
            Echo::Dtls => is_dtls_record(reply),
            Echo::None => true,
        }
    }
}

fn put(p: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(dst) = p.get_mut(at..at + bytes.len()) {
        dst.copy_from_slice(bytes);
    }
}

/// One BER TLV at the start of `b`: (tag, value, rest).
fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, b) = b.split_first()?;
    let (&l, mut b) = b.split_first()?;
    let len = if l < 0x80 {
        l as usize
    } else {
        let n = (l & 0x7f) as usize;
        if n == 0 || n > 4 || b.len() < n {
            return None;
        }
        let v = b[..n].iter().fold(0usize, |a, &x| a << 8 | x as usize);
        b = &b[n..];
        v
    };
    (b.len() >= len).then(|| (tag, &b[..len], &b[len..]))
}

/// The request-id of an SNMP v1/v2c message: SEQUENCE { version, community, PDU { request-id
/// ... } }.
pub(crate) fn snmp_request_id(msg: &[u8]) -> Option<u32> {
    let (0x30, body, _) = tlv(msg)? else {
        return None;
    };
    let (0x02, _, rest) = tlv(body)? else {
        return None;
    };
    let (0x04, _, rest) = tlv(rest)? else {
        return None;
    };
    let (tag, pdu, _) = tlv(rest)?;
    if tag & 0xe0 != 0xa0 {
        return None;
    }
    let (0x02, id, _) = tlv(pdu)? else {
        return None;
    };
    if id.is_empty() || id.len() > 5 {
        return None;
    }
    Some(id.iter().fold(0u64, |a, &x| a << 8 | x as u64) as u32)
}

/// Does `b` start with a DTLS record header (RFC 6347 4.1): a TLS content type, a DTLS
/// version (1.0 0xfeff, 1.2 0xfefd, 1.3 0xfefc) and a length that fits?
fn is_dtls_record(b: &[u8]) -> bool {
    b.len() >= 13
        && (20..=25).contains(&b[0])
        && b[1] == 0xfe
        && matches!(b[2], 0xff | 0xfd | 0xfc)
        && 13 + u16::from_be_bytes([b[11], b[12]]) as usize <= b.len()
}

/// A QUIC Version Negotiation packet's Source Connection ID (RFC 9000 17.2.1).
fn quic_vn_scid(b: &[u8]) -> Option<&[u8]> {
    if b.len() < 7 || b[0] & 0x80 == 0 || b[1..5] != [0, 0, 0, 0] {
        return None;
    }
    let dlen = b[5] as usize;
    let slen = *b.get(6 + dlen)? as usize;
    b.get(7 + dlen..7 + dlen + slen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_id_and_0x20_case_must_come_back() {
        let mut q = vec![0u8; 12];
        q.extend_from_slice(b"\x07version\x04bind\x00\x00\x10\x00\x03");
        let e = Echo::Dns { name_len: 14 };
        e.stamp(&mut q, 0b1010_0000_1100_0101_1011_1110_1110_1111);
        assert_eq!(&q[..2], &[0xbe, 0xef]);
        assert_eq!(
            &q[12..26],
            b"\x07VeRsioN\x04Bind\x00",
            "letters by the high bits"
        );
        // A server's answer: same ID, the question copied, flags and an answer added.
        let mut reply = q.clone();
        reply[2] = 0x85;
        reply.extend_from_slice(b"\xc0\x0c\x00\x10\x00\x03");
        assert!(e.answers(&q, &reply));
        let mut lower = reply.clone();
        lower[13] = b'v';
        assert!(!e.answers(&q, &lower), "the case is part of the cookie");
        let mut other_id = reply;
        other_id[0] ^= 1;
        assert!(!e.answers(&q, &other_id));
    }

    #[test]
    fn ntp_origin_snmp_request_id_quic_and_sip() {
        let mut ntp = vec![0u8; 48];
        Echo::Ntp.stamp(&mut ntp, 0x1234_5678);
        let mut reply = vec![0u8; 48];
        reply[24..32].copy_from_slice(&ntp[40..48]);
        assert!(Echo::Ntp.answers(&ntp, &reply));
        reply[31] ^= 1;
        assert!(!Echo::Ntp.answers(&ntp, &reply));

        // net-snmp's answer, request-id 0x4234 5678 (from the probe's 0x1234 5678).
        let mut get = vec![
            0x30, 0x29, 0x02, 0x01, 0x00, 0x04, 0x06, b'p', b'u', b'b', b'l', b'i', b'c', 0xa0,
            0x1c, 0x02, 0x04, 1, 1, 1, 1, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x30, 0x0e, 0x30,
            0x0c, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x02, 0x01, 0x01, 0x01, 0x00, 0x05, 0x00,
        ];
        let e = Echo::Snmp { at: 17 };
        e.stamp(&mut get, 0x1234_5678);
        assert_eq!(snmp_request_id(&get), Some(0x5234_5678));
        let mut resp = get.clone();
        resp[13] = 0xa2;
        resp.truncate(get.len() - 2);
        resp.extend_from_slice(&[0x04, 0x02, b'v', b'm']);
        resp[1] = (resp.len() - 2) as u8;
        resp[14] = (resp.len() - 15) as u8;
        assert!(e.answers(&get, &resp));
        resp[20] ^= 1;
        assert!(!e.answers(&get, &resp));
        assert_eq!(snmp_request_id(b"\x30\x80"), None, "no panic on nonsense");

        let mut quic = vec![0xc0, 0x1a, 0x2a, 0x3a, 0x4a, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        Echo::QuicDcid.stamp(&mut quic, 7);
        let mut vn = vec![0x80, 0, 0, 0, 0, 0, 8];
        vn.extend_from_slice(&quic[6..14]);
        vn.extend_from_slice(&[0, 0, 0, 1]);
        assert!(Echo::QuicDcid.answers(&quic, &vn));
        vn[8] ^= 1;
        assert!(!Echo::QuicDcid.answers(&quic, &vn));

        let mut sip = b"Call-ID: xdpscan-00000000\r\n".to_vec();
        let e = Echo::SipCallId { at: 17 };
        e.stamp(&mut sip, 0xdead_beef);
        assert_eq!(&sip[..27], b"Call-ID: xdpscan-deadbeef\r\n");
        assert!(e.answers(&sip, b"SIP/2.0 200 OK\r\nCall-ID: xdpscan-deadbeef\r\n\r\n"));
        assert!(!e.answers(&sip, b"SIP/2.0 200 OK\r\nCall-ID: xdpscan-00000000\r\n\r\n"));
    }

    #[test]
    fn marks_round_trip() {
        for e in [
            Echo::None,
            Echo::Dns { name_len: 14 },
            Echo::Ntp,
            Echo::Snmp { at: 17 },
            Echo::Head { len: 4 },
            Echo::QuicDcid,
            Echo::SipCallId { at: 300 },
            Echo::Dtls,
        ] {
            assert_eq!(Echo::from_mark(e.to_mark()), e);
        }
    }

    #[test]
    fn an_echo_answers_any_kind_and_none_checks_nothing() {
        let mut p = vec![0u8; 8];
        Echo::Head { len: 4 }.stamp(&mut p, 0x0102_0304);
        assert_eq!(&p[..4], &[1, 2, 3, 4]);
        assert!(Echo::Head { len: 4 }.answers(&p, &p.clone()));
        assert!(!Echo::Head { len: 4 }.answers(&p, b"\x01\x02\x03\x05 nope"));
        assert!(Echo::None.answers(b"probe", b"anything"));
    }
}

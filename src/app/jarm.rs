//! `jarm`: Salesforce's JARM fingerprint of a TLS server. Ten ClientHellos, each on a
//! connection of its own, differ in version, cipher order, GREASE, ALPN and supported
//! versions; what the server picks each time (suite, version, ALPN, the order of its
//! extensions) is hashed into 62 hex characters: per hello the suite's place in a fixed list
//! (two hex digits) and the version (one letter), then the first half of the SHA-256 of the
//! ALPNs and extension lists. The hellos and the reading follow the reference implementation
//! (github.com/salesforce/jarm, "jarm.py") byte for byte, its quirks included, so the
//! fingerprints equal the ones published for known servers; ZGrab2's `jarm` module writes
//! `{"fingerprint"}` as we do. ARCHITECTURE.md, "The application layer".

/// The version a hello claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    Tls11,
    Tls12,
    Tls13,
}

/// How a list is reordered (the reference's `cipher_mung`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    Forward,
    Reverse,
    TopHalf,
    BottomHalf,
    MiddleOut,
}

/// Which `supported_versions` extension a hello carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Support {
    None,
    UpTo12,
    UpTo13,
}

/// One of the ten hellos.
#[derive(Debug, Clone, Copy)]
struct Probe {
    version: Version,
    /// All suites, or none of TLS 1.3's.
    with_13_suites: bool,
    suite_order: Order,
    grease: bool,
    rare_alpn: bool,
    support: Support,
    /// The order of the ALPN and supported-versions lists (not of the extensions).
    list_order: Order,
}

const fn probe(
    version: Version,
    with_13_suites: bool,
    suite_order: Order,
    grease: bool,
    rare_alpn: bool,
    support: Support,
    list_order: Order,
) -> Probe {
    Probe {
        version,
        with_13_suites,
        suite_order,
        grease,
        rare_alpn,
        support,
        list_order,
    }
}

use Order::*;
use Version::*;

/// The ten hellos, in the reference's order (`tls1_2_forward` ... `tls1_3_middle_out`).
const PROBES: [Probe; 10] = [
    probe(Tls12, true, Forward, false, false, Support::UpTo12, Reverse),
    probe(Tls12, true, Reverse, false, false, Support::UpTo12, Forward),
    probe(Tls12, true, TopHalf, false, false, Support::None, Forward),
    probe(Tls12, true, BottomHalf, false, true, Support::None, Forward),
    probe(Tls12, true, MiddleOut, true, true, Support::None, Reverse),
    probe(Tls11, true, Forward, false, false, Support::None, Forward),
    probe(Tls13, true, Forward, false, false, Support::UpTo13, Reverse),
    probe(Tls13, true, Reverse, false, false, Support::UpTo13, Forward),
    probe(
        Tls13,
        false,
        Forward,
        false,
        false,
        Support::UpTo13,
        Forward,
    ),
    probe(
        Tls13,
        true,
        MiddleOut,
        true,
        false,
        Support::UpTo13,
        Reverse,
    ),
];

/// How many hellos a fingerprint takes.
pub(crate) const HELLOS: usize = PROBES.len();

/// The suites offered, in the reference's order.
const SUITES: [u16; 69] = [
    0x0016, 0x0033, 0x0067, 0xc09e, 0xc0a2, 0x009e, 0x0039, 0x006b, 0xc09f, 0xc0a3, 0x009f, 0x0045,
    0x00be, 0x0088, 0x00c4, 0x009a, 0xc008, 0xc009, 0xc023, 0xc0ac, 0xc0ae, 0xc02b, 0xc00a, 0xc024,
    0xc0ad, 0xc0af, 0xc02c, 0xc072, 0xc073, 0xcca9, 0x1302, 0x1301, 0xcc14, 0xc007, 0xc012, 0xc013,
    0xc027, 0xc02f, 0xc014, 0xc028, 0xc030, 0xc060, 0xc061, 0xc076, 0xc077, 0xcca8, 0x1305, 0x1304,
    0x1303, 0xcc13, 0xc011, 0x000a, 0x002f, 0x003c, 0xc09c, 0xc0a0, 0x009c, 0x0035, 0x003d, 0xc09d,
    0xc0a1, 0x009d, 0x0041, 0x00ba, 0x0084, 0x00c0, 0x0007, 0x0004, 0x0005,
];

/// The suites as the fingerprint numbers them (from 1; one past the end for any other).
const SUITE_INDEX: [u16; 69] = [
    0x0004, 0x0005, 0x0007, 0x000a, 0x0016, 0x002f, 0x0033, 0x0035, 0x0039, 0x003c, 0x003d, 0x0041,
    0x0045, 0x0067, 0x006b, 0x0084, 0x0088, 0x009a, 0x009c, 0x009d, 0x009e, 0x009f, 0x00ba, 0x00be,
    0x00c0, 0x00c4, 0xc007, 0xc008, 0xc009, 0xc00a, 0xc011, 0xc012, 0xc013, 0xc014, 0xc023, 0xc024,
    0xc027, 0xc028, 0xc02b, 0xc02c, 0xc02f, 0xc030, 0xc060, 0xc061, 0xc072, 0xc073, 0xc076, 0xc077,
    0xc09c, 0xc09d, 0xc09e, 0xc09f, 0xc0a0, 0xc0a1, 0xc0a2, 0xc0a3, 0xc0ac, 0xc0ad, 0xc0ae, 0xc0af,
    0xcc13, 0xcc14, 0xcca8, 0xcca9, 0x1301, 0x1302, 0x1303, 0x1304, 0x1305,
];

/// ALPN lists, each protocol with its length byte. The reference's full list joins `spdy/3`
/// and `h2` into one item (a missing comma), which matters when the list is reordered.
const ALPN_ALL: &[&[u8]] = &[
    b"\x08http/0.9",
    b"\x08http/1.0",
    b"\x08http/1.1",
    b"\x06spdy/1",
    b"\x06spdy/2",
    b"\x06spdy/3\x02h2",
    b"\x03h2c",
    b"\x02hq",
];
const ALPN_RARE: &[&[u8]] = &[
    b"\x08http/0.9",
    b"\x08http/1.0",
    b"\x06spdy/1",
    b"\x06spdy/2",
    b"\x06spdy/3",
    b"\x03h2c",
    b"\x02hq",
];

/// The reference's reorderings.
fn reorder<T: Copy>(items: &[T], order: Order) -> Vec<T> {
    let n = items.len();
    let half = n / 2;
    match order {
        Forward => items.to_vec(),
        Reverse => items.iter().rev().copied().collect(),
        BottomHalf => items[half + n % 2..].to_vec(),
        // The middle item (of an odd list), then the first half reversed.
        TopHalf => {
            let mut out = Vec::new();
            if n % 2 == 1 {
                out.push(items[half]);
            }
            out.extend(reorder(&reorder(items, Reverse), BottomHalf));
            out
        }
        // From the middle outwards, the later side first.
        MiddleOut => {
            let mut out = Vec::new();
            if n % 2 == 1 {
                out.push(items[half]);
                for i in 1..=half {
                    out.push(items[half + i]);
                    out.push(items[half - i]);
                }
            } else {
                for i in 1..=half {
                    out.push(items[half - 1 + i]);
                    out.push(items[half - i]);
                }
            }
            out
        }
    }
}

/// Random bytes for one hello.
struct Noise(u64);

impl Noise {
    fn byte(&mut self) -> u8 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 24) as u8
    }

    fn fill(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.byte()).collect()
    }

    /// A GREASE value (RFC 8701: 0x?a?a).
    fn grease(&mut self) -> [u8; 2] {
        let b = (self.byte() & 0xf0) | 0x0a;
        [b, b]
    }
}

fn u16be(n: usize) -> [u8; 2] {
    (n as u16).to_be_bytes()
}

/// Hello `k` (0..10) for `host` (the reference sends the target as given, an address too, as
/// the server name).
pub(crate) fn client_hello(k: usize, host: &str, seed: u64) -> Vec<u8> {
    hello_with(k, host, Noise(seed | 1))
}

/// Hello `k` with the random fields from `noise` (`Noise(0)`: zeros and GREASE 0x0a0a).
fn hello_with(k: usize, host: &str, mut noise: Noise) -> Vec<u8> {
    let p = PROBES[k];
    let (record_version, hello_version) = match p.version {
        Tls11 => ([3, 2], [3, 2]),
        Tls12 => ([3, 3], [3, 3]),
        Tls13 => ([3, 1], [3, 3]),
    };
    let mut body = hello_version.to_vec();
    body.extend(noise.fill(32)); // random
    body.push(32);
    body.extend(noise.fill(32)); // session id
    let suites: Vec<u16> = SUITES
        .iter()
        .copied()
        .filter(|s| p.with_13_suites || s >> 8 != 0x13)
        .collect();
    let mut suite_bytes = Vec::new();
    if p.grease {
        suite_bytes.extend(noise.grease());
    }
    for s in reorder(&suites, p.suite_order) {
        suite_bytes.extend(s.to_be_bytes());
    }
    body.extend(u16be(suite_bytes.len()));
    body.extend(suite_bytes);
    body.extend([1, 0]); // one compression method: none
    let ext = extensions(&p, host, &mut noise);
    body.extend(u16be(ext.len()));
    body.extend(ext);
    let mut hs = vec![1, 0];
    hs.extend(u16be(body.len()));
    hs.extend(body);
    let mut rec = vec![0x16, record_version[0], record_version[1]];
    rec.extend(u16be(hs.len()));
    rec.extend(hs);
    rec
}

fn extensions(p: &Probe, host: &str, noise: &mut Noise) -> Vec<u8> {
    let mut ext = Vec::new();
    let put = |ext: &mut Vec<u8>, kind: u16, data: &[u8]| {
        ext.extend(kind.to_be_bytes());
        ext.extend(u16be(data.len()));
        ext.extend_from_slice(data);
    };
    if p.grease {
        ext.extend(noise.grease());
        ext.extend([0, 0]);
    }
    let name = host.as_bytes();
    let mut sni = u16be(name.len() + 3).to_vec();
    sni.push(0);
    sni.extend(u16be(name.len()));
    sni.extend_from_slice(name);
    put(&mut ext, 0x0000, &sni);
    put(&mut ext, 0x0017, &[]); // extended master secret
    put(&mut ext, 0x0001, &[1]); // max fragment length
    put(&mut ext, 0xff01, &[0]); // renegotiation info
    put(
        &mut ext,
        0x000a,
        &[0, 8, 0, 0x1d, 0, 0x17, 0, 0x18, 0, 0x19],
    ); // groups
    put(&mut ext, 0x000b, &[1, 0]); // point formats
    put(&mut ext, 0x0023, &[]); // session ticket
    let alpns = if p.rare_alpn { ALPN_RARE } else { ALPN_ALL };
    let list: Vec<u8> = reorder(alpns, p.list_order).concat();
    let mut alpn = u16be(list.len()).to_vec();
    alpn.extend(list);
    put(&mut ext, 0x0010, &alpn);
    let sigs = [
        0x04, 0x03, 0x08, 0x04, 0x04, 0x01, 0x05, 0x03, 0x08, 0x05, 0x05, 0x01, 0x08, 0x06, 0x06,
        0x01, 0x02, 0x01,
    ];
    let mut sig = u16be(sigs.len()).to_vec();
    sig.extend(sigs);
    put(&mut ext, 0x000d, &sig);
    let mut shares = Vec::new();
    if p.grease {
        shares.extend(noise.grease());
        shares.extend([0, 1, 0]);
    }
    shares.extend([0, 0x1d, 0, 32]);
    shares.extend(noise.fill(32));
    let mut key_share = u16be(shares.len()).to_vec();
    key_share.extend(shares);
    put(&mut ext, 0x0033, &key_share);
    put(&mut ext, 0x002d, &[1, 1]); // psk modes: psk_dhe_ke
    if p.version == Tls13 || p.support == Support::UpTo12 {
        let versions: &[[u8; 2]] = match p.support {
            Support::UpTo12 => &[[3, 1], [3, 2], [3, 3]],
            _ => &[[3, 1], [3, 2], [3, 3], [3, 4]],
        };
        let mut list = Vec::new();
        if p.grease {
            list.extend(noise.grease());
        }
        for v in reorder(versions, p.list_order) {
            list.extend(v);
        }
        let mut sv = vec![list.len() as u8];
        sv.extend(list);
        put(&mut ext, 0x002b, &sv);
    }
    ext
}

/// The reply is as much as the reference reads: the first record whole, an alert, or its
/// 1,484 bytes.
pub(crate) fn whole(data: &[u8]) -> bool {
    data.len() >= READ
        || data.first() == Some(&21)
        || (data.len() >= 5 && data.len() >= 5 + u16::from_be_bytes([data[3], data[4]]) as usize)
}

/// What the reference's one `recv` takes.
const READ: usize = 1484;

/// What one hello's reply says, as the reference writes it before hashing: `suite|version|
/// alpn|extension-types`, or `|||` for no ServerHello. `None` is no reply at all within the
/// wait, which the reference takes for a dead server (every hello then counts as failed).
pub fn read_reply(data: &[u8]) -> String {
    let data = &data[..data.len().min(READ)];
    server_hello(data).unwrap_or_else(|| FAILED.to_string())
}

/// A hello that got no ServerHello.
const FAILED: &str = "|||";

/// Python's slice `d[a:b]`: clamped, never failing.
fn slice(d: &[u8], a: usize, b: usize) -> &[u8] {
    &d[a.min(d.len())..b.min(d.len())]
}

/// Python's `int(hex(d[a:b]), 16)`, which fails on an empty slice.
fn number(d: &[u8], a: usize, b: usize) -> Option<usize> {
    let s = slice(d, a, b);
    (!s.is_empty()).then(|| s.iter().fold(0usize, |n, &b| n << 8 | b as usize))
}

fn server_hello(d: &[u8]) -> Option<String> {
    if *d.first()? != 22 || *d.get(5)? != 2 {
        return None; // an alert, or not a ServerHello
    }
    let counter = *d.get(43)? as usize; // the session id's length
    let suite = super::hex(slice(d, counter + 44, counter + 46));
    let version = super::hex(slice(d, 9, 11));
    let (alpn, types) = extension_info(d, counter)?;
    Some(format!("{suite}|{version}|{alpn}|{types}"))
}

/// The ALPN the server chose and its extensions' types, `-` joined; `None` where the reference
/// gives up on the whole reply.
fn extension_info(d: &[u8], counter: usize) -> Option<(String, String)> {
    // A Certificate right after an extension-less ServerHello, or two known error shapes.
    if *d.get(counter + 47)? == 11
        || slice(d, counter + 50, counter + 53) == b"\x0e\xac\x0b"
        || slice(d, 82, 85) == b"\x0f\xf0\x0b"
    {
        return None;
    }
    let mut at = counter + 49;
    let end = number(d, counter + 47, counter + 49)? + at - 1;
    let mut types: Vec<&[u8]> = Vec::new();
    let mut values: Vec<Option<&[u8]>> = Vec::new();
    while at < end {
        types.push(slice(d, at, at + 2));
        let len = number(d, at + 2, at + 4)?;
        values.push((len > 0).then(|| slice(d, at + 4, at + 4 + len)));
        at += len + 4;
    }
    let alpn = match types.iter().position(|t| *t == [0x00, 0x10]) {
        // The protocol after the list's length and the name's length byte; an empty value
        // or one that is not UTF-8 ends the reference's reading.
        Some(i) => String::from_utf8(slice(values[i]?, 3, usize::MAX).to_vec()).ok()?,
        None => String::new(),
    };
    let types: Vec<String> = types.iter().map(|t| super::hex(t)).collect();
    Some((alpn, types.join("-")))
}

/// The fingerprint of the ten replies' readings; `None` for a server that never answered
/// (62 zeros, as the reference writes for a dead server).
pub fn fingerprint(raws: &[String]) -> String {
    let joined = raws.join(",");
    if raws.iter().all(|r| r == FAILED) {
        return "0".repeat(62);
    }
    let mut fuzzy = String::new();
    let mut rest = String::new();
    for hello in joined.split(',') {
        let parts: Vec<&str> = hello.split('|').collect();
        let part = |i: usize| parts.get(i).copied().unwrap_or("");
        fuzzy.push_str(&suite_digits(part(0)));
        fuzzy.push(version_letter(part(1)));
        rest.push_str(part(2));
        rest.push_str(part(3));
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, rest.as_bytes());
    fuzzy.push_str(&super::hex(digest.as_ref())[..32]);
    fuzzy
}

/// A suite's place in [`SUITE_INDEX`] from 1, two hex digits; `00` for none.
fn suite_digits(suite: &str) -> String {
    if suite.is_empty() {
        return "00".into();
    }
    let place = SUITE_INDEX
        .iter()
        .position(|s| format!("{s:04x}") == suite)
        .unwrap_or(SUITE_INDEX.len())
        + 1;
    format!("{place:02x}")
}

/// The version's minor number as a letter (`0303`: `d`); `0` for none.
fn version_letter(version: &str) -> char {
    version
        .get(3..4)
        .and_then(|d| d.parse::<usize>().ok())
        .and_then(|d| b"abcdef".get(d))
        .map_or('0', |&c| c as char)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reorderings_are_the_references() {
        let odd = [1, 2, 3, 4, 5];
        assert_eq!(reorder(&odd, Reverse), [5, 4, 3, 2, 1]);
        assert_eq!(reorder(&odd, BottomHalf), [4, 5]);
        assert_eq!(reorder(&odd, TopHalf), [3, 2, 1]);
        assert_eq!(reorder(&odd, MiddleOut), [3, 4, 2, 5, 1]);
        let even = [1, 2, 3, 4];
        assert_eq!(reorder(&even, BottomHalf), [3, 4]);
        assert_eq!(reorder(&even, TopHalf), [2, 1]);
        assert_eq!(reorder(&even, MiddleOut), [3, 2, 4, 1]);
    }

    #[test]
    fn readings_hash_as_the_reference_hashes_them() {
        // Dead: 62 zeros.
        let dead = vec![FAILED.to_string(); 10];
        assert_eq!(fingerprint(&dead), "0".repeat(62));
        // One answer among failures: the suite's place (c02f is 41st: 0x29), `d` for 0303,
        // and the SHA-256 of "h2" "ff01-0010".
        let mut raws = dead.clone();
        raws[0] = "c02f|0303|h2|ff01-0010".into();
        let fp = fingerprint(&raws);
        assert_eq!(&fp[..30], "29d000000000000000000000000000");
        let sha = ring::digest::digest(&ring::digest::SHA256, b"h2ff01-0010");
        let sha = super::super::hex(sha.as_ref());
        assert_eq!(&fp[30..], &sha[..32]);
        // A suite the list does not have is its length plus one (70: 0x46).
        assert_eq!(suite_digits("abcd"), "46");
        assert_eq!(version_letter("0301"), 'b');
    }

    /// A ServerHello (TLS 1.2, ECDHE-RSA-AES128-GCM, renegotiation info and ALPN h2) as a
    /// server writes it, read as the reference reads it.
    #[test]
    fn a_server_hello_reads_into_suite_version_alpn_and_extensions() {
        let mut hello = vec![3, 3];
        hello.extend([0x11; 32]); // random
        hello.push(32);
        hello.extend([0x22; 32]); // session id
        hello.extend([0xc0, 0x2f, 0]); // suite, compression
        let ext = [
            0xff, 0x01, 0, 1, 0, // renegotiation info
            0, 0x10, 0, 5, 0, 3, 2, b'h', b'2', // ALPN h2
        ];
        hello.extend(u16be(ext.len()));
        hello.extend(ext);
        let mut hs = vec![2, 0];
        hs.extend(u16be(hello.len()));
        hs.extend(hello);
        let mut rec = vec![22, 3, 3];
        rec.extend(u16be(hs.len()));
        rec.extend(hs);
        assert!(whole(&rec) && !whole(&rec[..rec.len() - 1]));
        assert_eq!(read_reply(&rec), "c02f|0303|h2|ff01-0010");
        assert_eq!(read_reply(&[21, 3, 3, 0, 2, 2, 40]), FAILED);
        assert_eq!(read_reply(&[]), FAILED);
        assert_eq!(read_reply(&rec[..40]), FAILED);
    }

    /// The reference's hellos (pyjarm 0.0.5, which builds Salesforce's bytes) for the server
    /// name 198.18.0.1, with `os.urandom` giving zeros and GREASE always 0x0a0a: SHA-256 and
    /// length of each, in order.
    #[test]
    fn hellos_equal_the_references_byte_for_byte() {
        let want = [
            (
                "721368ba8a66a13b0bb624909ba47d6dea27ab78e8dff9903dbdb97b9bdb2a91",
                424,
            ),
            (
                "bcc634c5eea5170fd59982df65d00e67a45cfcfdc58b2102aa36dd671f42daab",
                424,
            ),
            (
                "61269d36d6bd16611721222d06abee46151b00cae87a1c5abe5cb3795bc31f26",
                345,
            ),
            (
                "cd6ee889a835ff76966a4b26e1a043286125e601210ae54eee381af1b2a28359",
                331,
            ),
            (
                "20d4eac30c6cdb839a78c8ec9ab2e7c78a818e6509644a1c1b24074ac0d440f3",
                412,
            ),
            (
                "91c08d6c069eba500635eea177ffa3628d1b045b6bec5a8962d0c54ed5cc21bc",
                413,
            ),
            (
                "a7bb7df86c1fa64a8d23a7c048c177741fef504b7b919e0f7564a3c17a01aad6",
                426,
            ),
            (
                "9d3aff1fe0110f0736127b1cb033a88f11d2fc7ef55ac360385208faab21b414",
                426,
            ),
            (
                "74bd07e7ea23a1a33a958ff0825c4fe3de324847766e56e95766f10dfc5f796c",
                416,
            ),
            (
                "fe6353f4c3e49d6f68e1b42b4dcf1f7af50a1222bf1e1d59f6ca3870d6c308eb",
                439,
            ),
        ];
        for (k, (sha, len)) in want.iter().enumerate() {
            let h = hello_with(k, "198.18.0.1", Noise(0));
            let got = ring::digest::digest(&ring::digest::SHA256, &h);
            assert_eq!(
                (super::super::hex(got.as_ref()).as_str(), h.len()),
                (*sha, *len),
                "{k}"
            );
        }
    }

    #[test]
    fn hellos_are_well_formed_records_with_the_name_asked() {
        for k in 0..HELLOS {
            let h = client_hello(k, "198.18.0.1", 7);
            assert_eq!(h[0], 0x16);
            assert_eq!(u16::from_be_bytes([h[3], h[4]]) as usize, h.len() - 5);
            assert_eq!(h[5], 1);
            assert!(h.windows(10).any(|w| w == b"198.18.0.1"), "{k}");
            assert_eq!(client_hello(k, "198.18.0.1", 7), h, "the seed makes it");
        }
    }
}

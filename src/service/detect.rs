//! Version detection for one open port, the way nmap runs it (`service_scan.cc`): the NULL
//! probe first (wait for a greeting), then the probes that list the port, then every other
//! probe up to the intensity's rarity; the first match line of the probe, its fallbacks and
//! NULL names the service. A hard match ends it; a soft match goes on with only the probes that
//! can name that service; `ssl` starts over inside a TLS tunnel; a port that closes on the NULL
//! probe without a word within `tcpwrappedms` is `tcpwrapped`. Pure: the receive thread's
//! grabber carries out each step (`engine::grab`) and the version worker runs this
//! (`engine::version`), so matching never slows the receive path.

use std::time::Duration;

use super::{Method, Service, ServiceProbes};

/// nmap's default intensity (`--version-intensity`).
pub(crate) const DEFAULT_INTENSITY: u8 = 7;
/// nmap's `DEFAULT_TCPWRAPPEDMS`.
const TCPWRAPPED_MS: u64 = 2000;

/// How one probe's conversation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Nothing more came within the probe's wait (with or without an answer before).
    Quiet,
    /// The port closed the connection (FIN or RST).
    Closed,
    /// The connection could not be made (no SYN-ACK, a RST, an ICMP error).
    Failed,
    /// The scan is ending: no further probe can be sent.
    Aborted,
}

/// What to do next for the port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send probe `probe` (an index into the database): on the connection still open after a
    /// silent NULL probe (`reuse`), else on a new one; inside TLS when `tls`.
    Probe {
        probe: usize,
        reuse: bool,
        tls: bool,
    },
    /// Finished: what the port is, when anything said so.
    Done(Option<Box<Service>>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Initial,
    Null,
    /// Probes that list the port, from `at` on.
    Listing(usize),
    /// The others, up to the intensity, from `at` on.
    Others(usize),
    Done,
}

/// The state of one port's detection.
#[derive(Debug, Clone)]
pub struct Detection {
    port: u16,
    /// A UDP port (`-sU -sV`): nmap's UDP probes, no NULL probe, no TLS, no `tcpwrapped`.
    udp: bool,
    intensity: u8,
    phase: Phase,
    tunnel: bool,
    /// Whether TLS can be tried (a `ssl` hard match restarts the probes inside it).
    tls_possible: bool,
    current: Option<usize>,
    soft: Option<Service>,
    /// nmap's `tcpwrap_possible`: no probe timed out and none got an answer.
    tcpwrap_possible: bool,
}

impl Detection {
    pub fn new(port: u16, intensity: u8, tls_possible: bool) -> Self {
        Self {
            port,
            udp: false,
            intensity,
            phase: Phase::Initial,
            tunnel: false,
            tls_possible,
            current: None,
            soft: None,
            tcpwrap_possible: true,
        }
    }

    /// A UDP port's detection: the UDP probes listing it, then the others up to `intensity`.
    pub(crate) fn udp(port: u16, intensity: u8) -> Self {
        Self {
            udp: true,
            tls_possible: false,
            tcpwrap_possible: false,
            ..Self::new(port, intensity, false)
        }
    }

    /// The probe being answered.
    pub(crate) fn current(&self) -> Option<usize> {
        self.current
    }

    /// The first step: the NULL probe (the connection the scan's SYN-ACK opened), or the first
    /// probe when the database has no NULL probe.
    pub fn start(&mut self, db: &ServiceProbes) -> Step {
        self.next(db, false)
    }

    /// The answer to the current probe: `data` (all it sent), how it ended, and how long after
    /// the probe went out.
    pub fn answer(&mut self, db: &ServiceProbes, data: &[u8], end: End, elapsed: Duration) -> Step {
        let Some(idx) = self.current else {
            return self.finish();
        };
        let probe = &db.probes[idx];
        if !data.is_empty() {
            self.tcpwrap_possible = false;
            if let Some(m) = db.first_match(idx, data) {
                if !m.soft {
                    if m.name == "ssl" && m.tunnel.is_none() && !self.tunnel && self.tls_possible {
                        // Start over inside TLS.
                        self.tunnel = true;
                        self.soft = None;
                        self.phase = Phase::Initial;
                        return self.next(db, false);
                    }
                    return self.done(Some(Box::new(self.in_tunnel(m))));
                }
                self.soft = Some(self.in_tunnel(m));
            }
        }
        match end {
            End::Aborted | End::Failed => self.finish(),
            _ if self.udp => self.next(db, false),
            End::Closed => {
                let wrapped_ms = probe.tcpwrapped_ms.unwrap_or(TCPWRAPPED_MS);
                if self.tcpwrap_possible
                    && probe.is_null()
                    && elapsed < Duration::from_millis(wrapped_ms)
                {
                    return self.done(Some(Box::new(tcpwrapped())));
                }
                self.next(db, false)
            }
            End::Quiet => {
                self.tcpwrap_possible = false;
                // After a silent NULL probe the next one goes on the same connection.
                self.next(db, probe.is_null() && data.is_empty())
            }
        }
    }

    fn in_tunnel(&self, mut s: Service) -> Service {
        if self.tunnel && s.tunnel.is_none() {
            s.tunnel = Some("ssl".into());
        }
        s
    }

    /// nmap's `nextProbe`.
    fn next(&mut self, db: &ServiceProbes, reuse: bool) -> Step {
        loop {
            match self.phase {
                Phase::Initial => {
                    self.phase = Phase::Null;
                    if let Some(i) = db.tcp_index("NULL").filter(|_| !self.udp) {
                        return self.send(i, false);
                    }
                }
                Phase::Null => self.phase = Phase::Listing(0),
                Phase::Listing(at) => match (at..db.probes.len()).find(|&i| {
                    let p = &db.probes[i];
                    p.tcp != self.udp
                        && !p.is_null()
                        && p.lists_port(self.port, self.tunnel)
                        && self.soft_allows(i, db)
                }) {
                    Some(i) => {
                        self.phase = Phase::Listing(i + 1);
                        return self.send(i, reuse);
                    }
                    None => self.phase = Phase::Others(0),
                },
                Phase::Others(at) => match (at..db.probes.len()).find(|&i| {
                    let p = &db.probes[i];
                    p.tcp != self.udp
                        && !p.is_null()
                        && !p.lists_port(self.port, self.tunnel)
                        && match &self.soft {
                            None => p.rarity <= self.intensity,
                            Some(_) => self.soft_allows(i, db),
                        }
                }) {
                    Some(i) => {
                        self.phase = Phase::Others(i + 1);
                        return self.send(i, reuse);
                    }
                    None => return self.finish(),
                },
                Phase::Done => return self.finish(),
            }
        }
    }

    /// After a soft match only probes that can name that service are worth sending (all of
    /// them at intensity 9, nmap's `--version-all`).
    fn soft_allows(&self, i: usize, db: &ServiceProbes) -> bool {
        match &self.soft {
            None => true,
            Some(_) if self.intensity >= 9 => true,
            Some(s) => {
                let name = match &s.tunnel {
                    Some(t) if !self.tunnel => format!("{t}/{}", s.name),
                    _ => s.name.clone(),
                };
                db.probes[i].can_name(&name)
            }
        }
    }

    fn send(&mut self, probe: usize, reuse: bool) -> Step {
        self.current = Some(probe);
        Step::Probe {
            probe,
            reuse,
            tls: self.tunnel,
        }
    }

    /// Out of probes: a soft match if there was one; `tcpwrapped` if every connection was
    /// closed on us without a word; else nothing.
    fn finish(&mut self) -> Step {
        let s = match self.soft.take() {
            Some(s) => Some(s),
            None if self.tcpwrap_possible && self.current.is_some() => Some(tcpwrapped()),
            None => None,
        };
        self.done(s.map(Box::new))
    }

    fn done(&mut self, s: Option<Box<Service>>) -> Step {
        self.phase = Phase::Done;
        self.current = None;
        Step::Done(s)
    }
}

/// nmap's verdict on a port that closes before saying anything.
pub(crate) fn tcpwrapped() -> Service {
    Service {
        name: "tcpwrapped".into(),
        method: Method::Probed,
        ..Service::from_table("tcpwrapped")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DB: &str = r#"
Probe TCP NULL q||
totalwaitms 6000
tcpwrappedms 3000
match ssh m|^SSH-([\d.]+)-OpenSSH_([\w._-]+)| p/OpenSSH/ v/$2/ i/protocol $1/
softmatch ftp m|^220 |
Probe TCP GenericLines q|\r\n\r\n|
rarity 1
ports 21,23
match ftp m|^220 ProFTPD| p/ProFTPD/
Probe TCP GetRequest q|GET / HTTP/1.0\r\n\r\n|
rarity 1
ports 80,8080
sslports 443
match http m|^HTTP/1\.[01] \d\d\d .*\r\nServer: nginx/([\d.]+)|s p/nginx/ v/$1/
softmatch http m|^HTTP/1\.[01] \d\d\d|
Probe TCP SSLSessionReq q|\x16\x03\0|
rarity 1
ports 443
match ssl m|^\x16\x03[\0-\x03]|
Probe TCP Rare q|rare|
rarity 8
match rare m|^rare|
Probe TCP Redis q|*1\r\n$4\r\ninfo\r\n|
rarity 6
match redis m|^\$\d+\r\n# Server\r\nredis_version:([\d.]+)| p/Redis key-value store/ v/$1/
"#;

    fn db() -> ServiceProbes {
        ServiceProbes::parse(DB.as_bytes(), "test").unwrap()
    }

    fn name(db: &ServiceProbes, s: &Step) -> String {
        match s {
            Step::Probe { probe, reuse, tls } => {
                format!(
                    "{}{}{}",
                    db.probes[*probe].name,
                    if *reuse { "+reuse" } else { "" },
                    if *tls { "+tls" } else { "" }
                )
            }
            Step::Done(Some(s)) => format!(
                "done:{}{}",
                s.tunnel
                    .as_deref()
                    .map(|t| format!("{t}/"))
                    .unwrap_or_default(),
                s.name
            ),
            Step::Done(None) => "done:none".into(),
        }
    }

    const MS: Duration = Duration::from_millis(10);

    #[test]
    fn a_greeting_matches_on_the_null_probe() {
        let db = db();
        let mut d = Detection::new(22, 7, true);
        assert_eq!(name(&db, &d.start(&db)), "NULL");
        let s = d.answer(&db, b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n", End::Quiet, MS);
        let Step::Done(Some(s)) = s else {
            panic!("{s:?}")
        };
        assert_eq!(
            (s.name.as_str(), s.details.version.as_deref()),
            ("ssh", Some("9.2p1"))
        );
    }

    #[test]
    fn listing_probes_first_then_the_rest_up_to_the_intensity() {
        let db = db();
        let mut d = Detection::new(8080, 7, true);
        d.start(&db);
        // Silent NULL: the next probe goes on the same connection.
        let s = d.answer(&db, b"", End::Quiet, MS);
        assert_eq!(name(&db, &s), "GetRequest+reuse");
        let s = d.answer(&db, b"", End::Quiet, MS);
        assert_eq!(name(&db, &s), "GenericLines", "rarity 1, not listing 8080");
        let s = d.answer(&db, b"", End::Quiet, MS);
        assert_eq!(name(&db, &s), "SSLSessionReq");
        let s = d.answer(&db, b"", End::Quiet, MS);
        assert_eq!(name(&db, &s), "Redis");
        let s = d.answer(&db, b"", End::Quiet, MS);
        assert_eq!(name(&db, &s), "done:none", "Rare is rarity 8, past 7");
        // Intensity 9 sends it too; intensity 0 only the probes listing the port.
        let mut all = Detection::new(8080, 9, true);
        let mut light = Detection::new(8080, 0, true);
        let count = |d: &mut Detection| {
            let mut n = 0;
            let mut s = d.start(&db);
            while let Step::Probe { .. } = s {
                n += 1;
                s = d.answer(&db, b"", End::Quiet, MS);
            }
            n
        };
        assert_eq!((count(&mut all), count(&mut light)), (6, 2));
    }

    #[test]
    fn a_soft_match_narrows_the_probes_and_is_kept() {
        let db = db();
        let mut d = Detection::new(2121, 7, true);
        d.start(&db);
        // "220 " soft-matches ftp on NULL: only GenericLines can name ftp.
        let s = d.answer(&db, b"220 hello\r\n", End::Quiet, MS);
        assert_eq!(name(&db, &s), "GenericLines");
        let s = d.answer(&db, b"220 hello\r\n", End::Quiet, MS);
        assert_eq!(name(&db, &s), "done:ftp", "out of probes: the soft match");
        let mut d = Detection::new(21, 7, true);
        d.start(&db);
        d.answer(&db, b"220 x\r\n", End::Quiet, MS);
        let s = d.answer(&db, b"220 ProFTPD 1.3\r\n", End::Quiet, MS);
        assert_eq!(name(&db, &s), "done:ftp");
    }

    #[test]
    fn ssl_starts_over_inside_tls() {
        let db = db();
        let mut d = Detection::new(443, 7, true);
        d.start(&db);
        let s = d.answer(&db, b"", End::Quiet, MS);
        assert_eq!(name(&db, &s), "SSLSessionReq+reuse");
        let s = d.answer(&db, b"\x16\x03\x03\x00\x10", End::Quiet, MS);
        assert_eq!(name(&db, &s), "NULL+tls");
        let s = d.answer(&db, b"", End::Quiet, MS);
        assert_eq!(
            name(&db, &s),
            "GetRequest+reuse+tls",
            "443 is in its sslports"
        );
        let s = d.answer(
            &db,
            b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\n\r\n",
            End::Quiet,
            MS,
        );
        assert_eq!(name(&db, &s), "done:ssl/http");
        // Without TLS support the ssl match stands.
        let mut d = Detection::new(443, 7, false);
        d.start(&db);
        d.answer(&db, b"", End::Quiet, MS);
        let s = d.answer(&db, b"\x16\x03\x03\x00\x10", End::Quiet, MS);
        assert_eq!(name(&db, &s), "done:ssl");
    }

    #[test]
    fn a_port_that_hangs_up_at_once_is_tcpwrapped() {
        let db = db();
        let mut d = Detection::new(22, 7, true);
        d.start(&db);
        let s = d.answer(&db, b"", End::Closed, Duration::from_millis(5));
        assert_eq!(name(&db, &s), "done:tcpwrapped");
        // Closed after tcpwrappedms (3 s for this NULL probe): the other probes follow.
        let mut d = Detection::new(22, 7, true);
        d.start(&db);
        let s = d.answer(&db, b"", End::Closed, Duration::from_millis(3500));
        assert_eq!(
            name(&db, &s),
            "GenericLines",
            "22 is listed by none: file order"
        );
        // Every later connection closed without a word as well: still tcpwrapped, as nmap.
        let mut s = s;
        while let Step::Probe { .. } = s {
            s = d.answer(&db, b"", End::Closed, MS);
        }
        assert_eq!(name(&db, &s), "done:tcpwrapped");
        // A probe that timed out rules it out.
        let mut d = Detection::new(22, 7, true);
        d.start(&db);
        d.answer(&db, b"", End::Quiet, MS);
        let mut s = d.answer(&db, b"", End::Closed, MS);
        while let Step::Probe { .. } = s {
            s = d.answer(&db, b"", End::Closed, MS);
        }
        assert_eq!(name(&db, &s), "done:none");
    }

    #[test]
    fn udp_ports_get_the_udp_probes() {
        let db = ServiceProbes::parse(
            concat!(
                "Probe TCP NULL q||\n",
                "Probe UDP DNSStatusRequest q|\\0\\0\\x10\\0|\nrarity 1\nports 53\n",
                "match domain m|^\\0\\0\\x90| p/dnsmasq/\n",
                "Probe UDP Help q|help\\r\\n|\nrarity 3\n",
                "Probe UDP Rare q|x|\nrarity 9\n",
            )
            .as_bytes(),
            "t",
        )
        .unwrap();
        let mut d = Detection::udp(53, 7);
        assert_eq!(name(&db, &d.start(&db)), "DNSStatusRequest");
        let s = d.answer(&db, b"", End::Quiet, MS);
        assert_eq!(name(&db, &s), "Help");
        let s = d.answer(&db, b"", End::Quiet, MS);
        assert_eq!(name(&db, &s), "done:none", "no NULL, no tcpwrapped for UDP");
        let mut d = Detection::udp(53, 7);
        d.start(&db);
        let s = d.answer(&db, b"\0\0\x90\x80", End::Quiet, MS);
        assert_eq!(name(&db, &s), "done:domain");
    }

    #[test]
    fn with_the_real_database() {
        let path = std::path::Path::new(super::super::probes::DEFAULT_PATH);
        let Ok(db) = ServiceProbes::load(path) else {
            return; // nmap not installed
        };
        let mut d = Detection::new(6379, 7, true);
        let mut sent = vec![];
        let mut s = d.start(&db);
        while let Step::Probe { probe, .. } = s {
            sent.push(db.probes[probe].name.clone());
            s = d.answer(&db, b"", End::Quiet, MS);
        }
        assert_eq!(sent[0], "NULL");
        assert!(sent.iter().any(|p| p == "redis-server"), "{sent:?}");
        assert!(!sent
            .iter()
            .any(|p| db.probes[db.tcp_index(p).unwrap()].rarity > 7
                && !db.probes[db.tcp_index(p).unwrap()].lists_port(6379, false)));
        eprintln!("port 6379, intensity 7: {} probes", sent.len());
    }
}

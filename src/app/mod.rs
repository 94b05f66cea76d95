//! The application layer (`--grab`): TLS certificates, HTTP and SSH host keys from the open
//! ports the scan finds, in the same pass, over the grabber's own TCP (`engine::grab`), written
//! as ZGrab2 writes them. One table row per module ([`MODULES`]); a port's grab is a protocol
//! machine with no I/O ([`PortGrab`]): it is handed the scan connection's greeting and each
//! exchange's reply, and answers with the next exchange (bytes to send, on the same connection
//! or a new one, plain or inside TLS) until its results are in. The port worker
//! (`engine::port_worker`) carries its exchanges to the grabber. ARCHITECTURE.md, "The
//! application layer".

pub(crate) mod auto;
pub mod http;
pub mod jarm;
pub(crate) mod nmap;
pub mod ssh;
pub mod tls;
pub mod x509;

use std::{collections::VecDeque, net::IpAddr, time::SystemTime};

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use tls::TlsFacts;

/// How an exchange ended (the grabber's `service::detect::End`, which the port worker maps:
/// `app` depends on nothing of `service`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// Nothing more came within the wait (with or without an answer before).
    Quiet,
    /// The port closed the connection.
    Closed,
    /// The connection could not be made.
    Failed,
    /// The scan is ending.
    Aborted,
}

/// A module's result before its timestamp: status, result, error.
pub(crate) type Outcome = (&'static str, Value, Option<String>);

pub(crate) fn b64(d: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(d)
}

pub(crate) fn unb64(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

pub(crate) fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// A grab module's row.
pub(crate) struct ModuleRow {
    pub(crate) module: Module,
    /// Its `--grab` name and ZGrab2's module and protocol name.
    pub(crate) name: &'static str,
    /// The first exchange.
    open: fn(&Ctx) -> Exchange,
    /// Reads one exchange's reply (`stage` counts them from 0): another exchange, or the
    /// module's results.
    read: fn(&Ctx, u8, &Reply) -> Next,
}

/// The grab modules, in the order a port runs them (a TLS session found by `tls` carries
/// `http` after it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Module {
    Tls,
    Http,
    Ssh,
    Jarm,
}

pub(crate) static MODULES: &[ModuleRow] = &[
    ModuleRow {
        module: Module::Tls,
        name: "tls",
        open: auto::tls_open,
        read: auto::tls_read,
    },
    ModuleRow {
        module: Module::Http,
        name: "http",
        open: auto::http_open,
        read: auto::http_read,
    },
    ModuleRow {
        module: Module::Ssh,
        name: "ssh",
        open: auto::ssh_open,
        read: auto::ssh_read,
    },
    ModuleRow {
        module: Module::Jarm,
        name: "jarm",
        open: auto::jarm_open,
        read: auto::jarm_read,
    },
];

impl Module {
    pub(crate) fn row(self) -> &'static ModuleRow {
        &MODULES[self as usize]
    }

    pub(crate) fn from_name(s: &str) -> Option<Module> {
        MODULES.iter().find(|r| r.name == s).map(|r| r.module)
    }
}

/// `--grab`'s value: modules with the ports each runs on (none: every open port), or `auto`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct GrabSpec {
    pub(crate) modules: Vec<(Module, Vec<(u16, u16)>)>,
    pub(crate) auto: bool,
}

/// Why a `--grab` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum GrabSpecError {
    #[error("unknown grab module {0:?} (auto, tls, http, ssh, jarm)")]
    Module(String),
    #[error("bad port range {0:?} in --grab (http:8000-8100)")]
    Ports(String),
    #[error("--grab auto takes no other module")]
    AutoAlone,
}

impl std::str::FromStr for GrabSpec {
    type Err = GrabSpecError;

    /// `tls,http:8000-8100,ssh:22,2222` (a port list after `:` runs to the next name), `auto`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut spec = GrabSpec {
            modules: Vec::new(),
            auto: false,
        };
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (name, first) = match item.split_once(':') {
                Some((n, p)) => (n, Some(p)),
                None => (item, None),
            };
            let ports = |p: &str| -> Result<(u16, u16), GrabSpecError> {
                let bad = || GrabSpecError::Ports(p.to_string());
                let (a, b) = p.split_once('-').unwrap_or((p, p));
                let (a, b) = (
                    a.trim().parse::<u16>().map_err(|_| bad())?,
                    b.trim().parse::<u16>().map_err(|_| bad())?,
                );
                if a == 0 || a > b {
                    return Err(bad());
                }
                Ok((a, b))
            };
            if name.chars().all(|c| c.is_ascii_digit() || c == '-') && first.is_none() {
                // A further port of the module before it (`ssh:22,2222`).
                let last = spec
                    .modules
                    .last_mut()
                    .filter(|m| !m.1.is_empty())
                    .ok_or_else(|| GrabSpecError::Module(item.to_string()))?;
                last.1.push(ports(name)?);
                continue;
            }
            if name == "auto" {
                if first.is_some() {
                    return Err(GrabSpecError::Ports(item.to_string()));
                }
                spec.auto = true;
                continue;
            }
            let m = Module::from_name(name).ok_or_else(|| GrabSpecError::Module(name.into()))?;
            let list = match first {
                Some(p) => vec![ports(p)?],
                None => Vec::new(),
            };
            match spec.modules.iter_mut().find(|x| x.0 == m) {
                Some(x) => x.1.extend(list),
                None => spec.modules.push((m, list)),
            }
        }
        if spec.auto && !spec.modules.is_empty() {
            return Err(GrabSpecError::AutoAlone);
        }
        if !spec.auto && spec.modules.is_empty() {
            return Err(GrabSpecError::Module(s.to_string()));
        }
        spec.modules.sort_by_key(|m| m.0 as usize);
        Ok(spec)
    }
}

impl GrabSpec {
    /// The modules that run on `port`, in table order.
    fn for_port(&self, port: u16) -> VecDeque<Module> {
        self.modules
            .iter()
            .filter(|(_, p)| p.is_empty() || p.iter().any(|(a, b)| (*a..=*b).contains(&port)))
            .map(|m| m.0)
            .collect()
    }
}

/// What the application layer is told (`--grab`, `--sni`, `--http-host`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AppPlan {
    pub(crate) spec: GrabSpec,
    pub(crate) sni: Option<String>,
    pub(crate) http_host: Option<String>,
    /// `--http-redirects`: how many redirects `http` follows on its port.
    pub(crate) http_redirects: u8,
}

/// One module's result, as ZGrab2 writes it under `data.<module>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppResult {
    /// The module (`tls`, `http`, `ssh`; `banner` for a port `auto` found no protocol of ours
    /// on).
    pub module: String,
    pub status: String,
    pub protocol: String,
    pub result: Value,
    pub timestamp: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl AppResult {
    pub(crate) fn new(
        module: &str,
        (status, result, error): (&str, Value, Option<String>),
        at: SystemTime,
    ) -> Self {
        AppResult {
            module: module.to_string(),
            status: status.to_string(),
            protocol: module.to_string(),
            result,
            timestamp: humantime::format_rfc3339_seconds(at).to_string(),
            error,
        }
    }
}

/// ZGrab2's `data`: each module's result under its name.
pub(crate) fn data_json(results: &[AppResult]) -> Value {
    let mut m = serde_json::Map::new();
    for r in results {
        let mut one = serde_json::json!({
            "status": r.status,
            "protocol": r.protocol,
            "result": r.result,
            "timestamp": r.timestamp,
        });
        if let Some(e) = &r.error {
            one["error"] = Value::String(e.clone());
        }
        m.insert(r.module.clone(), one);
    }
    Value::Object(m)
}

/// The results a `data` object holds (a line read back).
pub(crate) fn from_data(v: &Value) -> Result<Vec<AppResult>, String> {
    let Value::Object(m) = v else {
        return Err("data: not an object".into());
    };
    m.iter()
        .map(|(module, one)| {
            let s = |k: &str| one.get(k).and_then(Value::as_str).map(str::to_string);
            Ok(AppResult {
                module: module.clone(),
                status: s("status").ok_or("data: a module without status")?,
                protocol: s("protocol").unwrap_or_else(|| module.clone()),
                result: one.get("result").cloned().unwrap_or(Value::Null),
                timestamp: s("timestamp").unwrap_or_default(),
                error: s("error"),
            })
        })
        .collect()
}

/// Whether an exchange runs inside TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsUse {
    /// Plain bytes.
    No,
    /// Inside a TLS session (opened first if the connection has none).
    Session,
    /// Only the handshake: the exchange ends when it does.
    Handshake,
}

/// One exchange a grab asks for: bytes to send and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Exchange {
    pub(crate) name: &'static str,
    pub(crate) payload: Vec<u8>,
    pub(crate) tls: TlsUse,
    /// On the connection still open from the previous exchange; else on a new one.
    pub(crate) reuse: bool,
    /// When the reply is whole.
    pub(crate) whole: Whole,
}

/// When an exchange's reply is whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whole {
    /// When the port falls quiet, closes, or fills the byte bound.
    Quiet,
    /// Also once the first TLS record (or an alert) is in: JARM reads no more, and need not
    /// wait for the quiet spell.
    FirstRecord,
}

impl Whole {
    pub(crate) fn reached(self, data: &[u8]) -> bool {
        match self {
            Whole::Quiet => false,
            Whole::FirstRecord => jarm::whole(data),
        }
    }
}

/// An exchange's reply.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reply<'a> {
    /// What arrived (the plaintext, inside TLS).
    pub(crate) data: &'a [u8],
    pub(crate) end: End,
    /// The TLS session's facts, when the exchange ran in one.
    pub(crate) tls: Option<&'a TlsFacts>,
}

/// What a module does after a reply.
pub(crate) enum Next {
    /// Another exchange, at this stage.
    Again(u8, Exchange),
    /// The same, keeping a note for the module's later stages (`Ctx::notes`).
    Note(String, u8, Exchange),
    /// Hand the port to a module, at a stage, with this exchange (`auto` once it knows the
    /// protocol).
    Switch(Module, u8, Exchange),
    /// Its results (more than one when one exchange answered for two modules), and whether
    /// the port speaks TLS.
    Done(Vec<(&'static str, Outcome)>, Option<bool>),
}

/// What a module's functions see of the port.
pub(crate) struct Ctx<'a> {
    pub(crate) ip: IpAddr,
    pub(crate) port: u16,
    pub(crate) plan: &'a AppPlan,
    /// What the port said on the scan's connection before we sent anything.
    pub(crate) greeting: &'a [u8],
    /// The connection of the last exchange is still open (and whether it is inside TLS).
    pub(crate) open: Option<bool>,
    /// A TLS session was made on this port.
    pub(crate) speaks_tls: bool,
    /// Whether this exchange reuses the connection (set by the machine when it sends).
    pub(crate) reused: bool,
    /// What the running module noted at its earlier stages.
    pub(crate) notes: &'a [String],
    pub(crate) seed: u64,
}

/// What runs now on a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Running {
    Module(Module),
    Auto,
}

/// What to do next for the port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    Send(Exchange),
    Done,
}

/// One port's grab: the modules that run on it, one exchange at a time.
#[derive(Debug)]
pub(crate) struct PortGrab {
    ip: IpAddr,
    port: u16,
    queue: VecDeque<Module>,
    auto: bool,
    running: Option<(Running, u8)>,
    greeting: Vec<u8>,
    open: Option<bool>,
    speaks_tls: bool,
    reused: bool,
    /// The exchange out, until its reply.
    pending: Option<Exchange>,
    /// The running module's notes.
    notes: Vec<String>,
    pub(crate) results: Vec<AppResult>,
    seed: u64,
}

impl PortGrab {
    /// The grab of an open TCP port; `None` when no module runs on it.
    pub(crate) fn new(plan: &AppPlan, ip: IpAddr, port: u16, seed: u64) -> Option<Self> {
        let queue = plan.spec.for_port(port);
        if queue.is_empty() && !plan.spec.auto {
            return None;
        }
        Some(PortGrab {
            ip,
            port,
            queue,
            auto: plan.spec.auto,
            running: None,
            greeting: Vec::new(),
            open: None,
            speaks_tls: false,
            reused: false,
            pending: None,
            notes: Vec::new(),
            results: Vec::new(),
            seed,
        })
    }

    fn ctx<'a>(&'a self, plan: &'a AppPlan) -> Ctx<'a> {
        Ctx {
            ip: self.ip,
            port: self.port,
            plan,
            greeting: &self.greeting,
            open: self.open,
            speaks_tls: self.speaks_tls,
            reused: self.reused,
            notes: &self.notes,
            seed: self.seed,
        }
    }

    /// The scan's own connection: what the port said before we sent anything.
    pub(crate) fn greeting(&mut self, plan: &AppPlan, data: &[u8], end: End) -> Step {
        self.greeting = data.to_vec();
        self.open = (end == End::Quiet).then_some(false);
        if self.auto {
            self.running = Some((Running::Auto, 0));
            let next = auto::auto_greeting(&self.ctx(plan), end);
            return self.follow(plan, next);
        }
        self.next_module(plan)
    }

    fn next_module(&mut self, plan: &AppPlan) -> Step {
        let Some(m) = self.queue.pop_front() else {
            self.running = None;
            return Step::Done;
        };
        self.running = Some((Running::Module(m), 0));
        self.notes.clear();
        let ex = (m.row().open)(&self.ctx(plan));
        self.send(ex)
    }

    fn send(&mut self, ex: Exchange) -> Step {
        let reuse = ex.reuse && self.open.is_some();
        let ex = Exchange { reuse, ..ex };
        self.reused = reuse;
        self.pending = Some(ex.clone());
        self.seed = self.seed.rotate_left(17) ^ 0x9e37_79b9_7f4a_7c15;
        Step::Send(ex)
    }

    /// The reply to the exchange out.
    pub(crate) fn reply(&mut self, plan: &AppPlan, reply: Reply) -> Step {
        let Some((running, stage)) = self.running else {
            return Step::Done;
        };
        let ex = self.pending.take();
        let in_tls = ex.as_ref().is_some_and(|e| e.tls != TlsUse::No)
            || (self.open == Some(true) && self.reused);
        let tls_ok = reply.tls.is_some_and(|t| t.complete);
        self.open = (reply.end == End::Quiet && (!in_tls || tls_ok)).then_some(in_tls);
        let ctx = self.ctx(plan);
        let next = match running {
            Running::Module(m) => (m.row().read)(&ctx, stage, &reply),
            Running::Auto => auto::auto_read(&ctx, stage, &reply),
        };
        self.follow(plan, next)
    }

    fn follow(&mut self, plan: &AppPlan, next: Next) -> Step {
        match next {
            Next::Again(stage, ex) => {
                if let Some((r, _)) = self.running {
                    self.running = Some((r, stage));
                }
                self.send(ex)
            }
            Next::Note(note, stage, ex) => {
                self.notes.push(note);
                self.follow(plan, Next::Again(stage, ex))
            }
            Next::Switch(m, stage, ex) => {
                self.notes.clear();
                self.queue.retain(|q| *q != m);
                self.running = Some((Running::Module(m), stage));
                self.send(ex)
            }
            Next::Done(results, tls) => {
                let now = SystemTime::now();
                for (module, r) in results {
                    // A module that ran already (http inside auto's TLS) does not run again.
                    self.queue.retain(|m| m.row().name != module);
                    self.results.push(AppResult::new(module, r, now));
                }
                if let Some(t) = tls {
                    self.speaks_tls = t;
                }
                self.next_module(plan)
            }
        }
    }

    /// The scan is ending: the exchange out gets no reply.
    pub(crate) fn abort(&mut self) -> Vec<AppResult> {
        if let Some((r, _)) = self.running.take() {
            let name = match r {
                Running::Module(m) => m.row().name,
                Running::Auto => "banner",
            };
            self.results.push(AppResult::new(
                name,
                (
                    "io-timeout",
                    serde_json::json!({}),
                    Some("the scan ended before the grab did".into()),
                ),
                SystemTime::now(),
            ));
        }
        std::mem::take(&mut self.results)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grab_values_parse_into_modules_and_ports() {
        let s: GrabSpec = "ssh:22,2222,http:8000-8100,tls".parse().unwrap();
        assert_eq!(
            s.modules,
            vec![
                (Module::Tls, vec![]),
                (Module::Http, vec![(8000, 8100)]),
                (Module::Ssh, vec![(22, 22), (2222, 2222)]),
            ]
        );
        assert_eq!(s.for_port(2222), [Module::Tls, Module::Ssh]);
        assert_eq!(s.for_port(8080), [Module::Tls, Module::Http]);
        assert!("auto".parse::<GrabSpec>().unwrap().auto);
        for bad in ["ftp", "http:0", "http:9-8", "auto,tls", "", "22", "http:x"] {
            assert!(bad.parse::<GrabSpec>().is_err(), "{bad}");
        }
    }

    /// `jarm` carries its readings from stage to stage in the machine's notes: ten hellos,
    /// the first on the scan's silent connection, the others on new ones, each ending at its
    /// first record; then one fingerprint.
    #[test]
    fn jarm_notes_its_readings_and_fingerprints_after_the_tenth() {
        let plan = AppPlan {
            spec: "jarm".parse().unwrap(),
            sni: None,
            http_host: None,
            http_redirects: 0,
        };
        let ip: IpAddr = "198.18.0.1".parse().unwrap();
        let mut g = PortGrab::new(&plan, ip, 443, 1).unwrap();
        let alert = [21u8, 3, 3, 0, 2, 2, 40];
        let mut step = g.greeting(&plan, &[], End::Quiet);
        for k in 0..jarm::HELLOS {
            let Step::Send(ex) = step else {
                panic!("hello {k}")
            };
            assert_eq!(
                (ex.name, ex.reuse, ex.whole),
                ("jarm", k == 0, Whole::FirstRecord)
            );
            let reply = Reply {
                data: &alert,
                end: End::Closed,
                tls: None,
            };
            step = g.reply(&plan, reply);
        }
        assert_eq!(step, Step::Done);
        assert_eq!(g.results.len(), 1);
        assert_eq!(g.results[0].status, "success");
        let zeros = "0".repeat(62);
        assert_eq!(g.results[0].result["fingerprint"], zeros.as_str());
    }
}

//! The modules' exchanges (the table's functions) and `--grab auto`: what the port says
//! first, then a TLS ClientHello with an HTTP request inside on the same connection, then a
//! plain request on a new one (three connections at most) tell SSH, TLS, HTTP, another
//! protocol (kept as ZGrab2's `banner`), or a port that opens but carries no service.

use serde_json::{json, Value};

use super::{
    http, jarm, ssh, tls, Ctx, End, Exchange, Module, Next, Outcome, Reply, TlsUse, Whole,
};

/// A reply with nothing in it, by how it ended.
fn empty(end: End) -> Outcome {
    let (status, error) = match end {
        End::Closed => ("connection-closed", "the port closed the connection"),
        End::Quiet => ("io-timeout", "no answer before the timeout"),
        End::Failed => ("connection-timeout", "the connection could not be made"),
        End::Aborted => ("io-timeout", "the scan ended before the answer"),
    };
    (status, json!({}), Some(error.to_string()))
}

fn host(ctx: &Ctx, tls: bool) -> String {
    http::host_value(ctx.plan.http_host.as_deref(), ctx.ip, ctx.port, tls)
}

/// Our own ClientHello, read in the clear.
fn clear_hello(ctx: &Ctx, reuse: bool) -> Exchange {
    Exchange {
        name: "tls",
        payload: tls::client_hello(ctx.plan.sni.as_deref(), ctx.seed),
        tls: TlsUse::No,
        reuse,
        whole: Whole::Quiet,
    }
}

/// rustls's handshake on a new connection (a TLS 1.3-only server).
fn full_handshake() -> Exchange {
    Exchange {
        name: "tls",
        payload: Vec::new(),
        tls: TlsUse::Handshake,
        reuse: false,
        whole: Whole::Quiet,
    }
}

fn not_tls() -> Outcome {
    (
        "protocol-error",
        json!({}),
        Some("the port does not speak TLS".into()),
    )
}

pub(super) fn tls_open(ctx: &Ctx) -> Exchange {
    clear_hello(ctx, ctx.open == Some(false) && ctx.greeting.is_empty())
}

/// Stage 0: our ClientHello, whose answer (TLS 1.2 and older) carries the chain in the
/// clear: no cryptography. Stage 1: rustls's full handshake, for a server that refused it (TLS
/// 1.3 only). Stage 2: `auto`'s TLS session failed with an alert; our hello, read in the clear.
pub(super) fn tls_read(_ctx: &Ctx, stage: u8, reply: &Reply) -> Next {
    if stage == 1 {
        let facts = reply.tls.cloned().unwrap_or_default();
        if facts.complete || !facts.chain.is_empty() {
            return Next::Done(vec![("tls", tls::zgrab(&facts))], Some(true));
        }
        if !facts.refused.is_empty() && !tls::looks_like_tls(&facts.refused) {
            return Next::Done(vec![("tls", not_tls())], Some(false));
        }
        let said = match (facts.version, reply.end) {
            (0, End::Closed | End::Quiet) if facts.refused.is_empty() => empty(reply.end),
            _ => (
                "handshake-error",
                json!({}),
                Some("the TLS handshake failed".into()),
            ),
        };
        return Next::Done(vec![("tls", said)], None);
    }
    match tls::read_flight(reply.data) {
        Some(f) if !f.chain.is_empty() => Next::Done(vec![("tls", tls::zgrab(&f))], Some(true)),
        // An alert, a close, or a hello with no certificate after it: the full handshake.
        Some(_) if stage == 0 => Next::Again(1, full_handshake()),
        None if reply.data.is_empty() && stage == 0 && reply.end == End::Closed => {
            Next::Again(1, full_handshake())
        }
        Some(f) => Next::Done(vec![("tls", tls::zgrab(&f))], Some(f.version != 0)),
        None if reply.data.is_empty() => Next::Done(vec![("tls", empty(reply.end))], None),
        None => Next::Done(vec![("tls", not_tls())], Some(false)),
    }
}

pub(super) fn http_open(ctx: &Ctx) -> Exchange {
    http_request(ctx, "/")
}

/// `GET path`, inside the session where the port speaks TLS; on the connection left open only
/// for the first request (a redirect's request, after a note, goes on a new one: ours asked
/// the server to close).
fn http_request(ctx: &Ctx, path: &str) -> Exchange {
    let tls = ctx.speaks_tls;
    Exchange {
        name: "http",
        payload: http::request(&host(ctx, tls), path),
        tls: if tls { TlsUse::Session } else { TlsUse::No },
        reuse: ctx.notes.is_empty() && ctx.open == Some(tls) && ctx.greeting.is_empty(),
        whole: Whole::Quiet,
    }
}

/// Stage `k` read the response to the `k`th request: a redirect on this port, while
/// `--http-redirects` allows, is noted (the response, and the path it leads to) and followed;
/// the last response is the result, the noted ones its `redirect_response_chain`.
pub(super) fn http_read(ctx: &Ctx, stage: u8, reply: &Reply) -> Next {
    let tls = ctx.speaks_tls;
    if tls && !reply.tls.is_some_and(|t| t.complete) {
        let said = (
            "handshake-error",
            json!({}),
            Some("the TLS handshake failed".into()),
        );
        return Next::Done(vec![("http", said)], None);
    }
    if reply.data.is_empty() && ctx.notes.is_empty() {
        return Next::Done(vec![("http", empty(reply.end))], None);
    }
    let log = reply.tls.map(|f| tls::zgrab(f).1);
    let (host, path) = (host(ctx, tls), redirected_path(ctx));
    let (status, mut result, error) = http::zgrab(reply.data, &host, &path, log);
    let next = http::parse(reply.data).and_then(|r| {
        http::redirect(
            &r,
            &path,
            tls,
            ctx.plan.http_host.as_deref(),
            ctx.ip,
            ctx.port,
        )
    });
    if let Some(next) = next.filter(|_| stage < ctx.plan.http_redirects) {
        let note = json!({ "next": next, "response": result["response"] }).to_string();
        return Next::Note(note, stage + 1, http_request(ctx, &next));
    }
    if !ctx.notes.is_empty() {
        let chain: Vec<Value> = ctx
            .notes
            .iter()
            .filter_map(|n| serde_json::from_str::<Value>(n).ok())
            .map(|n| n["response"].clone())
            .collect();
        result["redirect_response_chain"] = Value::Array(chain);
    }
    Next::Done(vec![("http", (status, result, error))], None)
}

/// The path of the request out: `/`, or where the last noted redirect led.
fn redirected_path(ctx: &Ctx) -> String {
    ctx.notes
        .last()
        .and_then(|n| serde_json::from_str::<Value>(n).ok())
        .and_then(|n| n["next"].as_str().map(str::to_string))
        .unwrap_or_else(|| "/".into())
}

pub(super) fn ssh_open(ctx: &Ctx) -> Exchange {
    Exchange {
        name: "ssh",
        payload: ssh::client_flight(ctx.seed),
        tls: TlsUse::No,
        reuse: ctx.open == Some(false),
        whole: Whole::Quiet,
    }
}

pub(super) fn ssh_read(ctx: &Ctx, _stage: u8, reply: &Reply) -> Next {
    let data = if ctx.reused {
        [ctx.greeting, reply.data].concat()
    } else {
        reply.data.to_vec()
    };
    if data.is_empty() {
        return Next::Done(vec![("ssh", empty(reply.end))], None);
    }
    Next::Done(vec![("ssh", ssh::zgrab(&ssh::read_server(&data)))], None)
}

/// JARM's hello `k`, on the scan's connection when it is open and silent.
fn jarm_hello(ctx: &Ctx, k: usize) -> Exchange {
    let host = match &ctx.plan.sni {
        Some(name) => name.clone(),
        None => ctx.ip.to_string(),
    };
    Exchange {
        name: "jarm",
        payload: jarm::client_hello(k, &host, ctx.seed),
        tls: TlsUse::No,
        reuse: k == 0 && ctx.open == Some(false) && ctx.greeting.is_empty(),
        whole: Whole::FirstRecord,
    }
}

pub(super) fn jarm_open(ctx: &Ctx) -> Exchange {
    jarm_hello(ctx, 0)
}

/// Stage `k` read hello `k`'s reply: its reading is kept, and the next hello goes out on a
/// new connection; after the tenth, the fingerprint. No reply at all within the wait ends it
/// as the reference does: a dead server, 62 zeros.
pub(super) fn jarm_read(ctx: &Ctx, stage: u8, reply: &Reply) -> Next {
    let k = stage as usize;
    if reply.data.is_empty() && matches!(reply.end, End::Quiet | End::Aborted) {
        let (status, _, error) = empty(reply.end);
        let zeros = json!({ "fingerprint": jarm::fingerprint(&[]) });
        return Next::Done(vec![("jarm", (status, zeros, error))], None);
    }
    let reading = jarm::read_reply(reply.data);
    if k + 1 < jarm::HELLOS {
        return Next::Note(reading, stage + 1, jarm_hello(ctx, k + 1));
    }
    let mut readings = ctx.notes.to_vec();
    readings.push(reading);
    let fp = json!({ "fingerprint": jarm::fingerprint(&readings) });
    Next::Done(vec![("jarm", ("success", fp, None))], None)
}

/// What another protocol said (ZGrab2's `banner` module).
fn banner(data: &[u8]) -> Outcome {
    let text = String::from_utf8_lossy(data).into_owned();
    ("success", json!({ "banner": text }), None)
}

/// A port whose connection opens but carries no service.
fn no_service(end: End, why: &str) -> Outcome {
    let status = if end == End::Closed {
        "connection-closed"
    } else {
        "io-timeout"
    };
    (status, json!({}), Some(format!("no service: {why}")))
}

/// `auto`, on the scan's connection: a greeting names SSH or another protocol; silence sends
/// TLS (with a request inside) on the same connection.
pub(super) fn auto_greeting(ctx: &Ctx, end: End) -> Next {
    let g = ctx.greeting;
    if g.starts_with(b"SSH-") {
        return Next::Switch(Module::Ssh, 0, ssh_open(ctx));
    }
    if !g.is_empty() {
        return Next::Done(vec![("banner", banner(g))], None);
    }
    if end != End::Quiet {
        let why = "the connection closed before any data";
        return Next::Done(vec![("banner", no_service(end, why))], None);
    }
    Next::Again(
        1,
        Exchange {
            name: "auto",
            payload: http::request(&host(ctx, true), "/"),
            tls: TlsUse::Session,
            reuse: true,
            whole: Whole::Quiet,
        },
    )
}

/// `auto`'s stage 1: the TLS hello's reply; 2: a plain request's on a new connection.
pub(super) fn auto_read(ctx: &Ctx, stage: u8, reply: &Reply) -> Next {
    let plain = || Exchange {
        name: "auto",
        payload: http::request(&host(ctx, false), "/"),
        tls: TlsUse::No,
        reuse: false,
        whole: Whole::Quiet,
    };
    if stage == 1 {
        let facts = reply.tls.cloned().unwrap_or_default();
        if facts.complete {
            let mut out = vec![("tls", tls::zgrab(&facts))];
            if http::looks_like_http(reply.data) {
                let log = Some(out[0].1 .1.clone());
                out.push(("http", http::zgrab(reply.data, &host(ctx, true), "/", log)));
            }
            return Next::Done(out, Some(true));
        }
        let refused = &facts.refused;
        if http::looks_like_http(refused) {
            return Next::Again(2, plain());
        }
        if tls::looks_like_tls(refused) {
            return Next::Switch(Module::Tls, 2, clear_hello(ctx, false));
        }
        if !refused.is_empty() {
            return Next::Done(vec![("banner", banner(refused))], None);
        }
        return Next::Again(2, plain());
    }
    if http::looks_like_http(reply.data) {
        return Next::Done(
            vec![(
                "http",
                http::zgrab(reply.data, &host(ctx, false), "/", None),
            )],
            Some(false),
        );
    }
    if !reply.data.is_empty() {
        return Next::Done(vec![("banner", banner(reply.data))], None);
    }
    let why = if reply.end == End::Closed {
        "the connection closes on any data"
    } else {
        "the port says nothing"
    };
    Next::Done(vec![("banner", no_service(reply.end, why))], None)
}

#[cfg(test)]
mod tests {
    use super::super::{AppPlan, GrabSpec, PortGrab, Step, TlsFacts};
    use super::*;

    fn plan(spec: &str) -> AppPlan {
        AppPlan {
            spec: spec.parse::<GrabSpec>().unwrap(),
            sni: None,
            http_host: None,
            http_redirects: 0,
        }
    }

    fn sent(s: Step) -> Exchange {
        match s {
            Step::Send(e) => e,
            Step::Done => panic!("done early"),
        }
    }

    #[test]
    fn auto_tells_ssh_from_its_greeting_on_one_connection() {
        let p = plan("auto");
        let mut g = PortGrab::new(&p, "198.18.0.2".parse().unwrap(), 443, 1).unwrap();
        let ex = sent(g.greeting(&p, b"SSH-2.0-OpenSSH_9.2\r\n", End::Quiet));
        assert_eq!((ex.name, ex.reuse), ("ssh", true));
        let r = Reply {
            data: b"",
            end: End::Closed,
            tls: None,
        };
        assert_eq!(g.reply(&p, r), Step::Done);
        assert_eq!(g.results[0].module, "ssh");
        assert_eq!(g.results[0].result["server_id"]["software"], "OpenSSH_9.2");
    }

    #[test]
    fn auto_finds_http_behind_a_silent_port_and_no_service_behind_a_closing_one() {
        let p = plan("auto");
        let mut g = PortGrab::new(&p, "198.18.0.2".parse().unwrap(), 2222, 1).unwrap();
        let ex = sent(g.greeting(&p, b"", End::Quiet));
        assert_eq!((ex.tls, ex.reuse), (TlsUse::Session, true));
        let refused = TlsFacts {
            refused: b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec(),
            ..Default::default()
        };
        let r = Reply {
            data: b"",
            end: End::Closed,
            tls: Some(&refused),
        };
        let ex = sent(g.reply(&p, r));
        assert_eq!(
            (ex.tls, ex.reuse),
            (TlsUse::No, false),
            "a new plain connection"
        );
        let r = Reply {
            data: b"HTTP/1.1 200 OK\r\n\r\n<title>x</title>",
            end: End::Closed,
            tls: None,
        };
        assert_eq!(g.reply(&p, r), Step::Done);
        assert_eq!((g.results.len(), g.results[0].module.as_str()), (1, "http"));

        // A middlebox: the handshake completes, any data closes it.
        let mut g = PortGrab::new(&p, "198.18.0.2".parse().unwrap(), 9, 1).unwrap();
        sent(g.greeting(&p, b"", End::Quiet));
        let closed = Reply {
            data: b"",
            end: End::Closed,
            tls: Some(&TlsFacts::default()),
        };
        sent(g.reply(&p, closed));
        let closed = Reply {
            data: b"",
            end: End::Closed,
            tls: None,
        };
        assert_eq!(g.reply(&p, closed), Step::Done);
        let r = &g.results[0];
        assert_eq!(
            (r.module.as_str(), r.status.as_str()),
            ("banner", "connection-closed")
        );
        assert!(r.error.as_deref().unwrap().starts_with("no service"));
    }

    #[test]
    fn tls_reads_the_chain_in_the_clear_then_asks_rustls_and_http_follows_inside_tls() {
        let p = plan("tls,http");
        let mut g = PortGrab::new(&p, "198.18.0.2".parse().unwrap(), 443, 1).unwrap();
        let ex = sent(g.greeting(&p, b"", End::Quiet));
        assert_eq!((ex.name, ex.tls, ex.reuse), ("tls", TlsUse::No, true));
        assert_eq!(ex.payload[..3], [22, 3, 1], "our hello, in the clear");
        // A TLS 1.3-only server: an alert, then rustls on a new connection.
        let ex = sent(g.reply(
            &p,
            Reply {
                data: &[21, 3, 3, 0, 2, 2, 70],
                end: End::Closed,
                tls: None,
            },
        ));
        assert_eq!((ex.tls, ex.reuse), (TlsUse::Handshake, false));
        let made = TlsFacts {
            version: 0x0304,
            suite: 0x1302,
            chain: vec![vec![0x30, 0]],
            complete: true,
            ..Default::default()
        };
        let ex = sent(g.reply(
            &p,
            Reply {
                data: b"",
                end: End::Quiet,
                tls: Some(&made),
            },
        ));
        assert_eq!(
            (ex.name, ex.tls, ex.reuse),
            ("http", TlsUse::Session, true),
            "http inside the session just made"
        );
        let tls = &g.results[0];
        assert_eq!(
            (tls.module.as_str(), tls.status.as_str()),
            ("tls", "success")
        );
        assert_eq!(
            tls.result["handshake_log"]["server_hello"]["version"]["name"],
            "TLSv1.3"
        );
    }

    #[test]
    fn a_chain_in_the_clear_needs_no_second_connection() {
        let p = plan("tls");
        let mut g = PortGrab::new(&p, "198.18.0.2".parse().unwrap(), 4433, 1).unwrap();
        sent(g.greeting(&p, b"", End::Quiet));
        let mut hello = vec![3, 1];
        hello.extend_from_slice(&[0; 32]);
        hello.extend_from_slice(&[0, 0, 0x2f, 0]);
        let mut hs = vec![2, 0, 0, hello.len() as u8];
        hs.extend(hello);
        hs.extend_from_slice(&[11, 0, 0, 8, 0, 0, 5, 0, 0, 2, 0x30, 0]);
        let mut rec = vec![22, 3, 1, 0, hs.len() as u8];
        rec.extend(hs);
        let r = Reply {
            data: &rec,
            end: End::Quiet,
            tls: None,
        };
        assert_eq!(g.reply(&p, r), Step::Done);
        let tls = &g.results[0];
        assert_eq!(
            (tls.module.as_str(), tls.status.as_str()),
            ("tls", "success")
        );
        assert_eq!(
            tls.result["handshake_log"]["server_hello"]["cipher_suite"]["name"],
            "TLS_RSA_WITH_AES_128_CBC_SHA"
        );
    }
}

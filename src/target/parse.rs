//! Target syntax: `198.19.0.5`, `198.19.0.0/16`, `198.19.0.1-198.19.0.200`, nmap's last-octet
//! range `198.19.0.1-200`; several per argument separated by commas; files one or more per line
//! with `#` comments.

use std::{net::Ipv4Addr, path::Path};

use super::Ipv4Range;

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("invalid target '{spec}': {why}")]
    Invalid { spec: String, why: String },
    #[error("cannot read target file {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {source}")]
    InFile {
        path: String,
        line: usize,
        source: Box<TargetError>,
    },
}

fn invalid(spec: &str, why: impl Into<String>) -> TargetError {
    TargetError::Invalid {
        spec: spec.to_string(),
        why: why.into(),
    }
}

fn addr(spec: &str, s: &str) -> Result<u32, TargetError> {
    s.parse::<Ipv4Addr>()
        .map(u32::from)
        .map_err(|_| invalid(spec, format!("'{s}' is not an IPv4 address")))
}

/// Parses one target (no commas).
pub fn parse_target(spec: &str) -> Result<Ipv4Range, TargetError> {
    let s = spec.trim();
    if s.is_empty() {
        return Err(invalid(spec, "empty"));
    }
    if let Some((net, len)) = s.split_once('/') {
        let net = addr(spec, net)?;
        let prefix: u8 = len
            .parse()
            .ok()
            .filter(|p| *p <= 32 && len.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| invalid(spec, format!("'/{len}' is not a prefix length 0-32")))?;
        return Ok(Ipv4Range::cidr(net, prefix));
    }
    if let Some((a, b)) = s.split_once('-') {
        let start = addr(spec, a)?;
        let end = if b.contains('.') {
            addr(spec, b)?
        } else {
            let last: u8 = b
                .parse()
                .ok()
                .filter(|_| !b.is_empty() && b.bytes().all(|c| c.is_ascii_digit()))
                .ok_or_else(|| {
                    invalid(
                        spec,
                        format!("'{b}' is neither an address nor an octet 0-255"),
                    )
                })?;
            (start & 0xffff_ff00) | last as u32
        };
        if end < start {
            return Err(invalid(spec, "range runs backwards"));
        }
        return Ok(Ipv4Range::new(start, end));
    }
    Ok(Ipv4Range::single(addr(spec, s)?))
}

/// Parses a comma- or whitespace-separated list of targets.
pub fn parse_target_list(spec: &str) -> Result<Vec<Ipv4Range>, TargetError> {
    let items: Vec<&str> = spec
        .split([',', ' ', '\t'])
        .filter(|s| !s.is_empty())
        .collect();
    if items.is_empty() {
        return Err(invalid(spec, "empty"));
    }
    items.into_iter().map(parse_target).collect()
}

/// Reads targets from a file: any number per line, `#` starts a comment.
pub fn read_target_file(path: &Path) -> Result<Vec<Ipv4Range>, TargetError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| TargetError::File {
        path: name.clone(),
        source,
    })?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let body = line.split('#').next().unwrap_or("").trim();
        if body.is_empty() {
            continue;
        }
        let v = parse_target_list(body).map_err(|e| TargetError::InFile {
            path: name.clone(),
            line: n + 1,
            source: Box::new(e),
        })?;
        out.extend(v);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert_eq!(
            parse_target("198.19.0.5").unwrap(),
            Ipv4Range::single(0xc613_0005)
        );
        assert_eq!(
            parse_target("198.19.0.5/16").unwrap(),
            Ipv4Range::new(0xc613_0000, 0xc613_ffff)
        );
        assert_eq!(parse_target("0.0.0.0/0").unwrap().len(), 1 << 32);
        assert_eq!(
            parse_target("198.19.0.1-198.19.1.0").unwrap(),
            Ipv4Range::new(0xc613_0001, 0xc613_0100)
        );
        assert_eq!(
            parse_target("198.19.0.1-200").unwrap(),
            Ipv4Range::new(0xc613_0001, 0xc613_00c8)
        );
        assert_eq!(
            parse_target_list("198.19.0.1,198.19.0.3 198.19.0.9")
                .unwrap()
                .len(),
            3
        );
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "198.19.0",
            "198.19.0.256",
            "198.19.0.0/33",
            "198.19.0.0/",
            "198.19.0.0/x",
            "198.19.0.9-198.19.0.1",
            "198.19.0.9-3",
            "198.19.0.1-300",
            "example.com",
            "1.2.3.4/-1",
            "::1",
        ] {
            let e = parse_target(bad);
            assert!(e.is_err(), "{bad:?} accepted: {e:?}");
        }
        let msg = parse_target("198.19.0.256").unwrap_err().to_string();
        assert!(msg.contains("198.19.0.256"), "{msg}");
    }

    #[test]
    fn file_with_comments() {
        let dir = std::env::temp_dir().join(format!("xdpscan-tf-{}", std::process::id()));
        std::fs::write(
            &dir,
            "# lab\n198.19.0.1  # one\n\n198.19.1.0/30, 198.19.2.1\n",
        )
        .unwrap();
        let v = read_target_file(&dir).unwrap();
        assert_eq!(v.len(), 3);
        std::fs::write(&dir, "198.19.0.1\nbogus\n").unwrap();
        let e = read_target_file(&dir).unwrap_err().to_string();
        assert!(e.contains(":2:") && e.contains("bogus"), "{e}");
        std::fs::remove_file(&dir).unwrap();
        assert!(read_target_file(&dir).is_err());
    }
}

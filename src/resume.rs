//! Resume files: where each transmit thread of an interrupted scan stopped, so `--resume F`
//! sends exactly the probes not yet sent. The file is tied to its scan by a fingerprint of the
//! targets, ports, scan type, shard and retries; the seed and thread count come from it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::engine::Position;

pub(crate) const FORMAT: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResumeFile {
    pub(crate) xdpscan_resume: u32,
    pub(crate) fingerprint: String,
    pub(crate) seed: u64,
    /// 0-based shard index and count.
    pub(crate) shard: (u32, u32),
    pub(crate) threads: usize,
    pub(crate) positions: Vec<Position>,
    pub(crate) command_line: Vec<String>,
    /// Names this scan across its resumes (`--publish` message ids); 0 in older files.
    #[serde(default)]
    pub(crate) scan_id: u64,
    /// Probe indices past `positions` that already answered (a cooldown cut short gave them
    /// back): the resumed run takes their replies for duplicates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) answered: Vec<u64>,
    /// Results past `--max-results` (NDJSON wire lines): the resumed run writes them first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) carried: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    #[error("cannot read resume file {0}: {1}{hint}", hint = if .1.kind() == std::io::ErrorKind::NotFound { " (a resumed scan that completes removes its file)" } else { "" })]
    Read(String, std::io::Error),
    #[error("{0} is not an xdpscan resume file: {1}")]
    Parse(String, String),
    #[error("resume file {0} is for a different scan (targets, ports, scan type, shard or retries differ)")]
    Mismatch(String),
    #[error("resume file {path} was written by a scan with {file}; {what} must be the same (or left out)")]
    Conflict {
        path: String,
        file: String,
        what: &'static str,
    },
}

impl ResumeFile {
    pub(crate) fn load(path: &Path) -> Result<Self, ResumeError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ResumeError::Read(name.clone(), e))?;
        Self::parse(&text, &name)
    }

    /// A resume file's text; `name` says where it came from in errors.
    pub fn parse(text: &str, name: &str) -> Result<Self, ResumeError> {
        let name = name.to_string();
        let f: ResumeFile = serde_json::from_str(text)
            .map_err(|e| ResumeError::Parse(name.clone(), e.to_string()))?;
        if f.xdpscan_resume != FORMAT || f.positions.len() != f.threads || f.threads == 0 {
            return Err(ResumeError::Parse(
                name,
                "unknown format version or inconsistent positions".into(),
            ));
        }
        Ok(f)
    }

    pub(crate) fn save(
        &self,
        path: &Path,
        keeper: &crate::io::keeper::Keeper,
    ) -> std::io::Result<()> {
        let mut s = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        s.push('\n');
        // Write then rename: a crash never leaves half a resume file.
        let tmp = Self::tmp_path(path);
        keeper.write_temp(&tmp, s.as_bytes())?;
        keeper.rename(&tmp, path)
    }

    /// Where `save` writes before the rename.
    pub(crate) fn tmp_path(path: &Path) -> PathBuf {
        path.with_extension("tmp")
    }
}

/// A stable digest of what makes two runs the same scan.
pub(crate) fn fingerprint(parts: &[&str]) -> String {
    use std::hash::Hasher;
    let mut h = siphasher::sip::SipHasher13::new_with_keys(0x7864_7073_6361_6e21, 1);
    for p in parts {
        h.write(p.as_bytes());
        h.write_u8(0xff);
    }
    format!("{:016x}", h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_fingerprint() {
        let f = ResumeFile {
            xdpscan_resume: FORMAT,
            fingerprint: fingerprint(&["syn", "198.19.0.0-198.19.255.255", "80"]),
            seed: 7,
            shard: (1, 3),
            threads: 2,
            positions: vec![
                Position {
                    pass: 0,
                    walked: 10,
                },
                Position { pass: 1, walked: 0 },
            ],
            command_line: vec!["xdpscan".into()],
            scan_id: 0x5ca1ab1e,
            answered: vec![3, 9],
            carried: vec!["{}".into()],
        };
        let p =
            std::env::temp_dir().join(format!("xdpscan-resume-test-{}.json", std::process::id()));
        f.save(&p, &Default::default()).unwrap();
        let g = ResumeFile::load(&p).unwrap();
        assert_eq!((g.seed, g.shard, g.positions), (7, (1, 3), f.positions));
        std::fs::write(&p, "{}").unwrap();
        assert!(matches!(ResumeFile::load(&p), Err(ResumeError::Parse(..))));
        std::fs::remove_file(&p).unwrap();
        assert_ne!(fingerprint(&["a", "bc"]), fingerprint(&["ab", "c"]));
        assert_eq!(fingerprint(&["x"]), fingerprint(&["x"]));
    }
}

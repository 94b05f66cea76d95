//! The error of the subcommands beside the scan (`xdpscan probe`, `xdpscan bench`): bad input
//! (exit status 2) told apart from a failure of the machine, and the privileges hint on a
//! permission error, so `main` maps them in one place.

use crate::{
    config::ConfigError,
    io::{IoError, PRIVILEGES},
};

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Io(#[from] IoError),
    /// What was asked cannot be built or measured (exit status 2).
    #[error("{0}")]
    Usage(String),
    /// A measuring scan failed: its own last line.
    #[error("the {0} scan failed: {1}")]
    Scan(String, String),
}

impl ToolError {
    /// Bad input, the user's to fix: exit status 2.
    pub fn is_usage(&self) -> bool {
        match self {
            ToolError::Usage(_) => true,
            ToolError::Config(c) => c.exit_code() == 2,
            _ => false,
        }
    }

    /// The one line to print, with what to do about missing privileges.
    pub fn message(&self) -> String {
        match self {
            ToolError::Io(e) if e.is_permission() => format!("{e}: {PRIVILEGES}"),
            e => e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_and_privileges_are_told_apart() {
        assert!(ToolError::Usage("--to x: not an address".into()).is_usage());
        assert!(!ToolError::Scan("receive".into(), "no metadata".into()).is_usage());
        let denied = ToolError::Io(IoError::os(
            "cannot open the socket",
            std::io::Error::from_raw_os_error(libc::EPERM),
        ));
        assert!(!denied.is_usage());
        assert!(
            denied.message().ends_with(PRIVILEGES),
            "{}",
            denied.message()
        );
    }
}

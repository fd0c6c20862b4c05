//! The node's admin token, kept off the command line.
//!
//! Anything on a process's command line is readable by every user of the
//! machine (`ps`, `/proc/PID/cmdline`), so the token comes from one of:
//!
//! 1. the environment, `CRAPCOIN_ADMIN_TOKEN` (a process's environment is
//!    readable only by its owner);
//! 2. a file named by `--admin-token-file`, which must be readable and
//!    writable by its owner only ([`read_token_file`] refuses anything
//!    else, as ssh does with private keys);
//! 3. otherwise, when the node has a data directory, a fresh random token
//!    written to the *cookie file* [`COOKIE_FILE`] in it, mode `0600`, at
//!    every start, as bitcoind does ([`write_cookie`]); admin callers on
//!    the machine read it from there ([`read_cookie`]).
//!
//! Without any of these the admin routes are disabled.

use std::fs::{self, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

/// The cookie file's name inside the data directory.
pub const COOKIE_FILE: &str = "admin.cookie";

/// The environment variable the admin token may come from.
pub const TOKEN_ENV: &str = "CRAPCOIN_ADMIN_TOKEN";

/// Longest token file read, in bytes: a token is a line, not a document.
pub const MAX_TOKEN_FILE: u64 = 4096;

/// Why the admin token could not be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The token file could not be read.
    #[error("admin token file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The token file may be read or written by others than its owner.
    #[error(
        "admin token file {path} is accessible to group or others (mode {mode:03o}); \
         make it private with `chmod 600 {path}`"
    )]
    NotPrivate {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The token file is not a regular file, is too long or holds no
    /// token.
    #[error("admin token file {path}: {reason}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: &'static str,
    },
    /// The token given is empty or not one line of visible text.
    #[error("the admin token must be one line of visible characters, not empty")]
    Invalid,
    /// The cookie file could not be written.
    #[error("writing the admin cookie {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

/// Checks that `token` can be sent as `Authorization: Bearer TOKEN`: not
/// empty, visible ASCII only.
///
/// # Errors
///
/// [`TokenError::Invalid`] otherwise.
pub fn check_token(token: &str) -> Result<(), TokenError> {
    if !token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(TokenError::Invalid)
    }
}

/// The token in the file at `path`: its content without the trailing
/// newline. The file must be a regular file of at most
/// [`MAX_TOKEN_FILE`] bytes with no permission for group or others.
///
/// # Errors
///
/// [`TokenError::NotPrivate`] for a file others may read or write,
/// [`TokenError::Read`] or [`TokenError::Malformed`] for one that cannot
/// be read or holds no valid token.
pub fn read_token_file(path: &Path) -> Result<String, TokenError> {
    let read = |source| TokenError::Read {
        path: path.to_path_buf(),
        source,
    };
    let malformed = |reason| TokenError::Malformed {
        path: path.to_path_buf(),
        reason,
    };
    let file = fs::File::open(path).map_err(read)?;
    // The permissions of the file opened, not of whatever the path names
    // a moment later.
    let meta = file.metadata().map_err(read)?;
    if !meta.is_file() {
        return Err(malformed("not a regular file"));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(TokenError::NotPrivate {
            path: path.to_path_buf(),
            mode,
        });
    }
    let mut text = String::new();
    file.take(MAX_TOKEN_FILE + 1)
        .read_to_string(&mut text)
        .map_err(read)?;
    if text.len() as u64 > MAX_TOKEN_FILE {
        return Err(malformed("longer than 4096 bytes"));
    }
    let token = text.strip_suffix('\n').unwrap_or(&text);
    let token = token.strip_suffix('\r').unwrap_or(token);
    check_token(token).map_err(|_| malformed("not one line of visible characters"))?;
    Ok(token.to_owned())
}

/// Makes a fresh random token and writes it to [`COOKIE_FILE`] in `dir`
/// (mode `0600`, replacing any older cookie in one rename, so a reader
/// never sees half a token); answers the token.
///
/// # Errors
///
/// [`TokenError::Write`] when the file cannot be written.
pub fn write_cookie(dir: &Path) -> Result<String, TokenError> {
    let path = dir.join(COOKIE_FILE);
    let temp = dir.join(format!("{COOKIE_FILE}.tmp"));
    let token: String = rand::random::<[u8; 32]>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let write = |source| TokenError::Write {
        path: path.clone(),
        source,
    };
    match fs::remove_file(&temp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(write(e)),
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temp)
        .map_err(write)?;
    file.write_all(token.as_bytes()).map_err(write)?;
    file.sync_all().map_err(write)?;
    drop(file);
    fs::rename(&temp, &path).map_err(write)?;
    Ok(token)
}

/// Removes the cookie in `dir`, if any: a node given its token another
/// way leaves no stale cookie that no longer opens it.
///
/// # Errors
///
/// [`TokenError::Write`] when it is there and cannot be removed.
pub fn remove_cookie(dir: &Path) -> Result<(), TokenError> {
    let path = dir.join(COOKIE_FILE);
    match fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(TokenError::Write { path, source }),
    }
}

/// The token in the cookie of the node whose data directory is `dir`, for
/// admin callers (watercooler, tests, scripts).
///
/// # Errors
///
/// As [`read_token_file`] (the cookie is such a file).
pub fn read_cookie(dir: &Path) -> Result<String, TokenError> {
    read_token_file(&dir.join(COOKIE_FILE))
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt as _;

    use super::{COOKIE_FILE, TokenError, read_cookie, read_token_file, write_cookie};

    #[test]
    fn a_cookie_is_private_fresh_and_readable_back() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = write_cookie(dir.path()).expect("writes");
        let path = dir.path().join(COOKIE_FILE);
        let mode = fs::metadata(&path).expect("exists").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(first.len(), 64);
        assert_eq!(read_cookie(dir.path()).expect("reads"), first);
        let second = write_cookie(dir.path()).expect("writes again");
        assert_ne!(first, second);
        assert_eq!(read_cookie(dir.path()).expect("reads"), second);
    }

    #[test]
    fn token_files_others_may_touch_or_holding_nonsense_are_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("token");
        fs::write(&path, "s3cret\n").expect("writes");
        for mode in [0o644, 0o640, 0o604, 0o620, 0o602] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
            let err = read_token_file(&path).expect_err("refused");
            assert!(
                matches!(err, TokenError::NotPrivate { mode: m, .. } if m == mode),
                "{mode:o}: {err}"
            );
            assert!(err.to_string().contains("chmod 600"), "{err}");
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
        assert_eq!(read_token_file(&path).expect("reads"), "s3cret");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).expect("chmod");
        assert_eq!(read_token_file(&path).expect("reads"), "s3cret");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
        for bad in ["", "\n", "two words", "line\nline", "tab\there"] {
            fs::write(&path, bad).expect("writes");
            assert!(
                matches!(read_token_file(&path), Err(TokenError::Malformed { .. })),
                "{bad:?}"
            );
        }
        fs::write(&path, "x".repeat(5000)).expect("writes");
        assert!(matches!(
            read_token_file(&path),
            Err(TokenError::Malformed { .. })
        ));
        assert!(matches!(
            read_token_file(&dir.path().join("missing")),
            Err(TokenError::Read { .. })
        ));
        assert!(matches!(
            read_token_file(dir.path()),
            Err(TokenError::Malformed { .. })
        ));
    }
}

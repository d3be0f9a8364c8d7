//! A network's secret kept in a file (`--secret-file`).

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use proto::keys::{MAX_SECRET_LEN, check_secret};

/// The secret in a file: its bytes less one trailing newline (`\n` or
/// `\r\n`), so `echo SECRET > FILE` and an editor's file both work.
pub fn read_secret_file(path: &Path) -> io::Result<Vec<u8>> {
    let wrap = |e: io::Error| {
        io::Error::new(
            e.kind(),
            format!(
                "cannot read secret file {}: {}",
                path.display(),
                proto::error::io_reason(&e)
            ),
        )
    };
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|f| f.take(MAX_SECRET_LEN as u64 + 3).read_to_end(&mut bytes))
        .map_err(wrap)?;
    if bytes.ends_with(b"\n") {
        bytes.pop();
        if bytes.ends_with(b"\r") {
            bytes.pop();
        }
    }
    check_secret(&bytes).map_err(|why| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("secret file {}: {why}", path.display()),
        )
    })?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn a_secret_file_loses_one_trailing_newline() {
        let path = std::env::temp_dir().join(format!("proto-secret-{}", std::process::id()));
        fs::write(&path, "hunter2\r\n").unwrap();
        assert_eq!(read_secret_file(&path).unwrap(), b"hunter2");
        fs::write(&path, "\n").unwrap();
        assert!(
            read_secret_file(&path)
                .unwrap_err()
                .to_string()
                .contains("empty")
        );
        fs::remove_file(&path).unwrap();
    }
}

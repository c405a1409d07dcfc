//! Atomic file replacement.
//!
//! [`write_atomic`] writes the bytes to a new temporary file in the target's
//! directory (`.<name>.tmp-<pid>-<n>`, created exclusively with mode 0600),
//! sets the requested mode, fsyncs the file, renames it over the target and
//! fsyncs the directory. A reader sees the old file or the new one, and after
//! a crash the directory holds one of them: never a truncated or mixed file.
//! On an error the temporary file is removed; only a crash between its
//! creation and the rename can leave one behind (a dot file, which the store
//! and the CLI ignore).

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Distinguishes the temporary files of concurrent writes in one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// How many temporary names are tried when one exists already (left by a
/// crashed process that had the same pid, or by a process with the same pid
/// in another PID namespace sharing the directory).
const NAME_ATTEMPTS: usize = 64;

/// Replaces `path` with `bytes`, atomically and durably, leaving the file
/// with exactly `mode` (not filtered by the umask; ignored off Unix).
///
/// The parent directory must exist. The error is the underlying I/O error;
/// callers add which file they were writing.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let dir = parent_of(path);
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a file path", path.display()),
        )
    })?;
    let (temp, file) = create_temp(&dir, name, &TEMP_COUNTER)?;
    let result = finish(file, &temp, path, bytes, mode).and_then(|()| sync_dir(&dir));
    if result.is_err() {
        // After a successful rename the temporary name is gone already.
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Makes a directory's entries durable (a rename or a created entry in
/// it): fsync of the directory. Directories cannot be opened off Unix;
/// there it does nothing.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// The directory `path` lives in (`.` for a bare file name).
fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Creates a fresh temporary file next to the target, owner-only, named
/// with the next values of `counter`.
fn create_temp(dir: &Path, name: &OsStr, counter: &AtomicU64) -> io::Result<(PathBuf, File)> {
    for _ in 0..NAME_ATTEMPTS {
        let mut temp_name = OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(
            ".tmp-{}-{}",
            std::process::id(),
            counter.fetch_add(1, Ordering::Relaxed)
        ));
        let temp = dir.join(temp_name);
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        match options.open(&temp) {
            Ok(file) => return Ok((temp, file)),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(err) => return Err(err),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!(
            "no free temporary name for {} in {} after {NAME_ATTEMPTS} attempts",
            Path::new(name).display(),
            dir.display()
        ),
    ))
}

/// Fills the temporary file, sets its mode, syncs it and renames it into
/// place.
fn finish(mut file: File, temp: &Path, path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    file.write_all(bytes)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    let _ = mode;
    file.sync_all()?;
    drop(file);
    fs::rename(temp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::names_in;

    #[cfg(unix)]
    fn mode_of(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn writes_a_new_file_and_replaces_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file");
        write_atomic(&path, b"one", 0o644).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"one");
        write_atomic(&path, b"second, longer", 0o644).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second, longer");
        write_atomic(&path, b"3", 0o644).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"3");
        assert_eq!(names_in(dir.path()), ["file"]);
    }

    #[cfg(unix)]
    #[test]
    fn the_file_gets_exactly_the_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        // More than the usual umask lets through, and read-only modes that
        // the writer itself could not reopen.
        for mode in [0o666, 0o644, 0o600, 0o444, 0o400] {
            write_atomic(&path, format!("{mode:o}").as_bytes(), mode).unwrap();
            assert_eq!(mode_of(&path), mode, "{mode:o}");
            assert_eq!(fs::read(&path).unwrap(), format!("{mode:o}").as_bytes());
        }
        assert_eq!(names_in(dir.path()), ["key.pem"]);
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        // The target is a non-empty directory: the rename over it fails
        // after the temporary file was written and synced.
        let target = dir.path().join("target");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("inside"), b"kept").unwrap();
        assert!(write_atomic(&target, b"new", 0o644).is_err());
        assert_eq!(names_in(dir.path()), ["target"]);
        assert_eq!(fs::read(target.join("inside")).unwrap(), b"kept");
    }

    #[test]
    fn a_missing_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = write_atomic(&dir.path().join("no/such/file"), b"x", 0o644).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(names_in(dir.path()).is_empty());
    }

    #[test]
    fn leftover_temporary_files_are_not_reused() {
        let dir = tempfile::tempdir().unwrap();
        // What a crashed process with our pid would have left.
        let leftovers: Vec<_> = (0..3)
            .map(|n| format!(".file.tmp-{}-{n}", std::process::id()))
            .collect();
        for name in &leftovers {
            fs::write(dir.path().join(name), b"stale").unwrap();
        }
        let counter = AtomicU64::new(0);
        let (temp, _file) = create_temp(dir.path(), OsStr::new("file"), &counter).unwrap();
        assert_eq!(
            temp.file_name().unwrap(),
            format!(".file.tmp-{}-3", std::process::id()).as_str()
        );
        for name in &leftovers {
            assert_eq!(fs::read(dir.path().join(name)).unwrap(), b"stale");
        }
    }

    #[test]
    fn a_path_without_a_file_name_is_refused() {
        let err = write_atomic(Path::new("/"), b"x", 0o644).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn a_bare_file_name_is_in_the_current_directory() {
        assert_eq!(parent_of(Path::new("file")), Path::new("."));
        assert_eq!(parent_of(Path::new("a/file")), Path::new("a"));
    }
}

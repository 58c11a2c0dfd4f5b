//! [`StdFs`]: the [`Fs`] trait over the real filesystem, for native tests and tools.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use std::io::ErrorKind;

use crate::fs::{Fs, FsError, StatVfs};

/// Reads this machine's files directly, with no capability checks.
///
/// Permission errors map to [`FsError::Denied`], so an unprivileged run behaves like a sandbox
/// that was not granted those paths.
#[derive(Debug, Default, Clone, Copy)]
pub struct StdFs;

fn map_io(e: &std::io::Error) -> FsError {
    match e.kind() {
        ErrorKind::NotFound | ErrorKind::NotADirectory | ErrorKind::IsADirectory => {
            FsError::NotFound
        }
        ErrorKind::PermissionDenied => FsError::Denied,
        _ => FsError::Io,
    }
}

fn map_errno(e: rustix::io::Errno) -> FsError {
    map_io(&std::io::Error::from(e))
}

impl Fs for StdFs {
    fn read(&mut self, path: &str, buf: &mut Vec<u8>) -> Result<(), FsError> {
        use std::io::Read;
        buf.clear();
        let mut file = std::fs::File::open(path).map_err(|e| map_io(&e))?;
        file.read_to_end(buf).map_err(|e| map_io(&e))?;
        Ok(())
    }

    fn read_dir(&mut self, path: &str) -> Result<Vec<String>, FsError> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(path).map_err(|e| map_io(&e))? {
            let entry = entry.map_err(|e| map_io(&e))?;
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        Ok(names)
    }

    fn statvfs(&mut self, path: &str) -> Result<StatVfs, FsError> {
        let s = rustix::fs::statvfs(path).map_err(map_errno)?;
        Ok(StatVfs {
            block_size: s.f_bsize,
            blocks: s.f_blocks,
            blocks_free: s.f_bfree,
            blocks_avail: s.f_bavail,
            files: s.f_files,
            files_free: s.f_ffree,
            readonly: s.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY),
        })
    }

    fn real_path(&mut self, path: &str) -> Result<String, FsError> {
        let real = std::fs::canonicalize(path).map_err(|e| map_io(&e))?;
        Ok(real.to_string_lossy().to_string())
    }
}

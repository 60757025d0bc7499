//! NumPy `.npz` archives (`np.savez`, `np.savez_compressed`, scipy's `save_npz`): a zip file of
//! `.npy` members, read one member at a time as a stream.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use zip::read::ZipFile;
use zip::result::ZipError;
use zip::{CompressionMethod, ZipArchive};

use super::npy::NpyStream;
use crate::error::{ExportError, Result};

/// Deflate cannot expand data by more than about 1032:1; with some slack.
const MAX_DEFLATE_RATIO: u64 = 1100;

/// An open `.npz` archive and the names of its members (without the `.npy` suffix).
pub(crate) struct Npz {
    path: PathBuf,
    /// Size of the archive file, the bound on any member's compressed data.
    archive_len: u64,
    archive: ZipArchive<BufReader<File>>,
    /// Member names as NumPy shows them (`.npy` stripped) and their index in the archive.
    members: Vec<(String, usize)>,
}

/// A member being read from an archive.
pub(crate) type MemberStream<'a> = NpyStream<ZipFile<'a, BufReader<File>>>;

impl Npz {
    /// Opens `path` as a zip archive and lists its members.
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| ExportError::io(path, e))?;
        let archive_len = file.metadata().map_err(|e| ExportError::io(path, e))?.len();
        let archive = ZipArchive::new(BufReader::new(file)).map_err(|e| zip_error(path, e))?;
        let mut members = Vec::new();
        for (index, raw) in archive.file_names_raw().enumerate() {
            if raw.ends_with(b"/") {
                continue; // a directory entry
            }
            let name = String::from_utf8_lossy(raw);
            let name = name.strip_suffix(".npy").unwrap_or(&name).to_string();
            members.push((name, index));
        }
        Ok(Npz {
            path: path.to_path_buf(),
            archive_len,
            archive,
            members,
        })
    }

    /// The member names, in archive order, without the `.npy` suffix.
    pub(crate) fn names(&self) -> Vec<String> {
        self.members.iter().map(|(n, _)| n.clone()).collect()
    }

    /// Whether the archive has a member called `name` (with or without `.npy`).
    pub(crate) fn has(&self, name: &str) -> bool {
        self.find(name).is_some()
    }

    /// The member called `name` or `name.npy`: its name as listed and its archive index.
    fn find(&self, name: &str) -> Option<(String, usize)> {
        let bare = name.strip_suffix(".npy").unwrap_or(name);
        self.members
            .iter()
            .find(|(n, _)| n == name)
            .or_else(|| self.members.iter().find(|(n, _)| n == bare))
            .cloned()
    }

    /// The member called `name` (with or without `.npy`), or a MissingTensor error listing the
    /// members there are. Returns the member's name as listed.
    pub(crate) fn resolve(&self, name: &str) -> Result<String> {
        match self.find(name) {
            Some((n, _)) => Ok(n),
            None => Err(self.missing(name)),
        }
    }

    /// Opens member `name` (with or without `.npy`), reads its npy header and hands the stream
    /// to `f`; then reads the rest of the member so that its checksum is verified.
    pub(crate) fn with_member<T>(
        &mut self,
        name: &str,
        f: impl FnOnce(&mut MemberStream<'_>) -> Result<T>,
    ) -> Result<T> {
        let (listed, index) = match self.find(name) {
            Some(found) => found,
            None => return Err(self.missing(name)),
        };
        let path = self.path.clone();
        let member = self
            .archive
            .by_index(index)
            .map_err(|e| member_error(&path, &listed, e))?;
        // The declared size is only a claim: bound it by what the compressed bytes can really
        // hold, so that a crafted size cannot make the npy reader allocate for data not there.
        let compressed = member.compressed_size().min(self.archive_len);
        let bound = match member.compression() {
            CompressionMethod::Stored => compressed,
            _ => compressed
                .saturating_mul(MAX_DEFLATE_RATIO)
                .saturating_add(1024),
        };
        let available = member.size().min(bound);
        let mut stream = NpyStream::open(member, available, &path, &listed)?;
        let value = f(&mut stream)?;
        stream.drain()?;
        Ok(value)
    }

    /// The MissingTensor error for `name`, listing the members there are.
    fn missing(&self, name: &str) -> ExportError {
        ExportError::MissingTensor {
            path: self.path.clone(),
            tensor: name.to_string(),
            available: self.names().join(", "),
        }
    }

    /// The archive's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

/// Maps a zip error on the whole archive to an ExportError.
fn zip_error(path: &Path, e: ZipError) -> ExportError {
    match e {
        ZipError::Io(io) if io.kind() != std::io::ErrorKind::UnexpectedEof => {
            ExportError::io(path, io)
        }
        other => ExportError::parse(path, format!("not a readable npz (zip) archive: {other}")),
    }
}

/// Maps a zip error on one member to an ExportError.
fn member_error(path: &Path, member: &str, e: ZipError) -> ExportError {
    match e {
        ZipError::Io(io) if io.kind() != std::io::ErrorKind::UnexpectedEof => {
            ExportError::io(path, io)
        }
        other => ExportError::parse(path, format!("cannot read npz member '{member}': {other}")),
    }
}

//! Where bodies go on disk: the calls that change the output directory, and the sink a body
//! streams into.
//!
//! Creating and renaming files in one directory from many threads at once makes them spin on
//! the directory's lock in the kernel (measured on ext4: twice the CPU of doing it in turn), so
//! those calls take turns here. A large body is written by a thread of its own, so that the
//! network and the disk work at the same time even where one thread drives the download.

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

/// Bytes buffered between the socket and the file: few, large writes, bounded memory.
const WRITE_BUFFER: usize = 256 * 1024;
/// From this size on, a body gets a writer thread.
const THREADED_FROM: u64 = 8 << 20;
/// Chunks in flight to a writer thread (each up to a few hundred KiB): bounded memory.
const CHANNEL_CHUNKS: usize = 4;
/// Up to this size, a fresh body is written to an unnamed file (see [`stage`]).
const UNNAMED_UP_TO: u64 = 1 << 20;

/// Held while the output directory changes (a file created or renamed).
static DIRECTORY: Mutex<()> = Mutex::new(());

fn directory_turn() -> MutexGuard<'static, ()> {
    // The guarded data is `()`: a panic while holding it cannot leave anything half-done.
    DIRECTORY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Opens `path` for writing from byte `start`: truncated when `start` is 0, else cut to
/// `start` bytes (what a resumed download keeps).
pub fn open_part(path: &Path, start: u64) -> io::Result<File> {
    let mut file = {
        let _turn = directory_turn();
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(start == 0)
            .open(path)?
    };
    if start > 0 {
        file.set_len(start)?;
        file.seek(SeekFrom::Start(start))?;
    }
    Ok(file)
}

/// Where a body is written before it gets its final name.
#[derive(Debug)]
pub enum Staging {
    /// `<name>.part`: visible, so that a retry or `-c` can resume it.
    Part,
    /// An unnamed file in the output directory (`O_TMPFILE`): one directory change to publish
    /// instead of two (measured: creating and renaming thousands of small files is most of
    /// their cost). Small fresh bodies only. Should the body not be published (an error,
    /// Ctrl-C), it is named `<name>.part` after all, so that it can be resumed like any other.
    Unnamed(PartKeeper),
}

/// Names an unpublished unnamed file `<name>.part` when dropped.
#[derive(Debug)]
pub struct PartKeeper {
    /// The same file as the body's (a duplicated descriptor).
    file: File,
    part: PathBuf,
    published: bool,
}

impl Drop for PartKeeper {
    fn drop(&mut self) {
        if !self.published {
            // Best effort: without the link the bytes are lost, and a retry starts over.
            let _ = link(&self.file, &self.part);
        }
    }
}

/// Opens the file a body of `len` bytes (when known) is written to, from byte `start`.
pub fn stage(dir: &Path, part: &Path, start: u64, len: Option<u64>) -> io::Result<(File, Staging)> {
    if start == 0 && len.is_some_and(|len| len <= UNNAMED_UP_TO) {
        let unnamed = {
            let _turn = directory_turn();
            OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_TMPFILE)
                .open(dir)
        };
        // Filesystems without O_TMPFILE refuse it; they get a `.part` like any other body.
        if let Ok(file) = unnamed {
            let keeper = PartKeeper {
                file: file.try_clone()?,
                part: part.to_owned(),
                published: false,
            };
            return Ok((file, Staging::Unnamed(keeper)));
        }
    }
    Ok((open_part(part, start)?, Staging::Part))
}

/// Gives a finished body its final name `path` (replacing what was there).
pub fn publish(file: File, staging: Staging, part: &Path, path: &Path) -> io::Result<()> {
    drop(file);
    let Staging::Unnamed(mut keeper) = staging else {
        return rename(part, path);
    };
    match link(&keeper.file, path) {
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
            // linkat never replaces: name it `.part` first, then rename over the old file.
            let _ = std::fs::remove_file(part);
            keeper.published = true;
            link(&keeper.file, part)?;
            rename(part, path)
        }
        linked => {
            keeper.published = linked.is_ok();
            linked
        }
    }
}

/// Gives the unnamed `file` the name `path`, through its `/proc/self/fd` entry (which needs no
/// privilege, unlike `AT_EMPTY_PATH`).
fn link(file: &File, path: &Path) -> io::Result<()> {
    let source = CString::new(format!("/proc/self/fd/{}", file.as_raw_fd()))?;
    let target = CString::new(path.as_os_str().as_bytes())?;
    let _turn = directory_turn();
    // SAFETY: both arguments are valid NUL-terminated strings that outlive the call.
    let linked = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            source.as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    if linked == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Creates `path` (truncated) and sets its length to `len`, for positional writes.
pub fn create_sized(path: &Path, len: u64) -> io::Result<File> {
    let file = open_part(path, 0)?;
    file.set_len(len)?;
    Ok(file)
}

/// Renames a finished `.part` to its final name.
pub fn rename(from: &Path, to: &Path) -> io::Result<()> {
    let _turn = directory_turn();
    std::fs::rename(from, to)
}

/// A body's way to its file.
pub enum Sink {
    /// Buffered writes on the calling thread (small or unknown-length bodies).
    Inline(BufWriter<File>),
    /// Chunks handed to a writer thread.
    Threaded {
        chunks: mpsc::Sender<Bytes>,
        done: oneshot::Receiver<io::Result<File>>,
    },
}

impl Sink {
    /// A sink for a body of `len` bytes (when known) into `file`.
    pub fn new(file: File, len: Option<u64>) -> io::Result<Sink> {
        match len {
            Some(len) if len >= THREADED_FROM => Sink::threaded(file),
            // A small body gets a buffer its size: no 256 KiB allocation per 4 KiB file.
            Some(len) => {
                let capacity =
                    usize::try_from(len).map_or(WRITE_BUFFER, |l| l.clamp(8192, WRITE_BUFFER));
                Ok(Sink::Inline(BufWriter::with_capacity(capacity, file)))
            }
            None => Ok(Sink::Inline(BufWriter::with_capacity(WRITE_BUFFER, file))),
        }
    }

    fn threaded(file: File) -> io::Result<Sink> {
        let (chunks, mut received) = mpsc::channel::<Bytes>(CHANNEL_CHUNKS);
        let (report, done) = oneshot::channel();
        std::thread::Builder::new()
            .name("writer".to_owned())
            .spawn(move || {
                let mut out = BufWriter::with_capacity(WRITE_BUFFER, file);
                let written = (|| {
                    // Ends when the download drops its sender: finished, failed or cancelled.
                    while let Some(chunk) = received.blocking_recv() {
                        out.write_all(&chunk)?;
                    }
                    out.into_inner().map_err(|err| err.into_error())
                })();
                let _ = report.send(written);
            })?;
        Ok(Sink::Threaded { chunks, done })
    }

    /// Writes `chunk` (a threaded sink waits while its channel is full).
    pub async fn write(&mut self, chunk: Bytes) -> io::Result<()> {
        match self {
            Sink::Inline(out) => out.write_all(&chunk),
            Sink::Threaded { chunks, done } => match chunks.send(chunk).await {
                Ok(()) => Ok(()),
                // The writer stopped: it failed, and says why.
                Err(_) => Err(writer_result(done)
                    .await
                    .err()
                    .unwrap_or_else(|| io::Error::other("the writer thread stopped"))),
            },
        }
    }

    /// Writes out everything received so far, and gives the file back.
    pub async fn finish(self) -> io::Result<File> {
        match self {
            Sink::Inline(out) => out.into_inner().map_err(|err| err.into_error()),
            Sink::Threaded { chunks, mut done } => {
                drop(chunks);
                writer_result(&mut done).await
            }
        }
    }
}

async fn writer_result(done: &mut oneshot::Receiver<io::Result<File>>) -> io::Result<File> {
    done.await
        .unwrap_or_else(|_| Err(io::Error::other("the writer thread died")))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn write_all(len: u64, chunks: &[&[u8]]) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.part");
        let mut sink = Sink::new(open_part(&path, 0).unwrap(), Some(len)).unwrap();
        for chunk in chunks {
            sink.write(Bytes::copy_from_slice(chunk)).await.unwrap();
        }
        drop(sink.finish().await.unwrap());
        std::fs::read(&path).unwrap()
    }

    #[tokio::test]
    async fn small_and_large_bodies_land_whole() {
        assert_eq!(write_all(6, &[b"abc", b"def"]).await, b"abcdef");
        let big = vec![7u8; 100_000];
        let chunks: Vec<&[u8]> = std::iter::repeat_n(&big[..], 90).collect();
        let written = write_all(THREADED_FROM, &chunks).await;
        assert_eq!(written.len(), 9_000_000);
        assert!(written.iter().all(|&b| b == 7));
    }

    #[tokio::test]
    async fn a_writer_thread_reports_its_error() {
        let full = OpenOptions::new().write(true).open("/dev/full").unwrap();
        let mut sink = Sink::new(full, Some(THREADED_FROM)).unwrap();
        let chunk = Bytes::from(vec![0u8; 300_000]);
        let mut failed = None;
        for _ in 0..64 {
            if let Err(err) = sink.write(chunk.clone()).await {
                failed = Some(err);
                break;
            }
        }
        let err = match failed {
            Some(err) => err,
            None => sink.finish().await.unwrap_err(),
        };
        assert_eq!(err.raw_os_error(), Some(28), "ENOSPC: {err}");
    }

    #[tokio::test]
    async fn an_unnamed_body_appears_only_when_published_and_replaces_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let (part, path) = (dir.path().join("u.part"), dir.path().join("u"));
        for contents in [&b"first"[..], b"second"] {
            let (file, staging) = stage(dir.path(), &part, 0, Some(6)).unwrap();
            assert!(matches!(staging, Staging::Unnamed(_)));
            let mut sink = Sink::new(file, Some(6)).unwrap();
            sink.write(Bytes::copy_from_slice(contents)).await.unwrap();
            let file = sink.finish().await.unwrap();
            let names = || std::fs::read_dir(dir.path()).unwrap().count();
            assert_eq!(
                names(),
                usize::from(contents == b"second"),
                "nothing shows before"
            );
            publish(file, staging, &part, &path).unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), contents);
            assert_eq!(names(), 1, "no .part is left");
        }
    }

    #[tokio::test]
    async fn an_unpublished_unnamed_body_is_kept_as_a_part() {
        let dir = tempfile::tempdir().unwrap();
        let part = dir.path().join("k.part");
        let (file, staging) = stage(dir.path(), &part, 0, Some(100)).unwrap();
        let mut sink = Sink::new(file, Some(100)).unwrap();
        sink.write(Bytes::from_static(b"half")).await.unwrap();
        // An error or Ctrl-C: the download is dropped before it publishes.
        drop(sink);
        drop(staging);
        assert_eq!(std::fs::read(&part).unwrap(), b"half");
    }

    #[test]
    fn large_or_resumed_bodies_get_a_part_file() {
        let dir = tempfile::tempdir().unwrap();
        let part = dir.path().join("p.part");
        let staging = |start, len| stage(dir.path(), &part, start, len).unwrap().1;
        assert!(matches!(staging(0, Some(UNNAMED_UP_TO + 1)), Staging::Part));
        assert!(matches!(staging(0, None), Staging::Part));
        assert!(matches!(staging(3, Some(10)), Staging::Part));
    }

    #[test]
    fn resuming_cuts_the_part_to_its_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.part");
        std::fs::write(&path, b"0123456789").unwrap();
        let mut file = open_part(&path, 4).unwrap();
        file.write_all(b"xy").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"0123xy");
    }
}

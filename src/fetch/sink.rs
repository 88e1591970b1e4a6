//! Where bodies go on disk: the calls that change the output directory, and the sink a body
//! streams into.
//!
//! A body is written to `<name>.part` and renamed when complete. A fresh body of known, modest
//! size starts in an unnamed file instead (Linux `O_TMPFILE`); if it arrives in one read, as
//! small files do, it is linked under its final name when complete: one directory change per
//! file instead of three (create, and rename's unlink and link), and the inode is allocated
//! outside the directory's lock. A body that needs more reads, or is abandoned with bytes in
//! it, is linked as `<name>.part` at once, so that a crash, a retry or `-c` finds it as any
//! other.
//!
//! Creating and renaming files in one directory from many threads at once makes them spin on
//! the directory's lock in the kernel (measured on ext4: twice the CPU of doing it in turn), so
//! those calls take turns here; linking an unnamed file is brief enough not to. A large body
//! is written by a thread of its own, so that the network and the disk work at the same time
//! even where one thread drives the download.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

/// Bytes buffered between the socket and the file: few, large writes, bounded memory.
const WRITE_BUFFER: usize = 256 * 1024;
/// From this size on, a body gets a writer thread.
const THREADED_FROM: u64 = 8 << 20;
/// Chunks in flight to a writer thread (each up to a few hundred KiB): bounded memory (with
/// 16, four large downloads peaked at 38 MiB RSS; with 4, at 19 MiB).
const CHANNEL_CHUNKS: usize = 4;

/// Writer threads alive now; see [`writer_threads_allowed`].
static WRITERS: AtomicUsize = AtomicUsize::new(0);

/// How many writer threads may run at once: one per two cores. A writer thread lets one
/// download read the network while its disk writes proceed; with more large downloads than
/// cores, the downloads already keep the cores busy and extra threads only add switching
/// (measured, 2 cores: one 1 GiB file 0.31 s -> 0.27 s with a writer; four 256 MiB files 0.18 s
/// without writers, 0.24 s with four).
fn writer_threads_allowed() -> usize {
    static ALLOWED: OnceLock<usize> = OnceLock::new();
    *ALLOWED.get_or_init(|| {
        std::thread::available_parallelism().map_or(1, |cores| (cores.get() / 2).max(1))
    })
}

/// Held while the output directory changes (a file created or renamed).
static DIRECTORY: Mutex<()> = Mutex::new(());

fn directory_turn() -> MutexGuard<'static, ()> {
    // The guarded data is `()`: a panic while holding it cannot leave anything half-done.
    DIRECTORY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Opens `path` with `options` so that it cannot follow a link or block: `O_NOFOLLOW` (a
/// symlink fails with `ELOOP`) and `O_NONBLOCK` (a FIFO without a reader fails with `ENXIO`
/// instead of waiting for ever), then checks that what was opened is a regular file. The one
/// place with the platform's flags; elsewhere, a plain open (no FIFOs or symlinks to fear in
/// the same way) followed by the same check.
pub fn open_no_follow(path: &Path, options: &mut OpenOptions) -> io::Result<File> {
    let file = crate::platform::no_follow_no_block(options).open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a regular file", path.display()),
        ));
    }
    Ok(file)
}

/// The length of the `.part` at `path` when it is a regular file of our own (not a link, a
/// FIFO, a device, or a file hard-linked from elsewhere); `None` otherwise, which makes it
/// count as absent.
pub fn part_len(path: &Path) -> Option<u64> {
    let meta = path.symlink_metadata().ok()?;
    if crate::platform::has_other_links(&meta) {
        return None;
    }
    meta.file_type().is_file().then_some(meta.len())
}

/// Opens `path` for writing from byte `start`: a new file when `start` is 0 (whatever was at
/// `path` is unlinked first, never written through: a link, a FIFO, or an old `.part`), else
/// the existing regular file cut to `start` bytes (what a resumed download keeps).
pub fn open_part(path: &Path, start: u64) -> io::Result<File> {
    let mut file = {
        let _turn = directory_turn();
        if start == 0 {
            create_new(path)?
        } else {
            open_no_follow(path, OpenOptions::new().write(true))?
        }
    };
    if start > 0 {
        file.set_len(start)?;
        file.seek(SeekFrom::Start(start))?;
    }
    Ok(file)
}

/// Creates `path` afresh: removes the entry there (the entry itself: a symlink's target is
/// untouched), then creates exclusively, which never follows a link. Twice at most, should
/// something appear at `path` in between.
fn create_new(path: &Path) -> io::Result<File> {
    let mut tries = 0;
    loop {
        match std::fs::remove_file(path) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(err),
            _ => {}
        }
        let mut options = OpenOptions::new();
        // Readable too, so that a digest can be taken through the same descriptor.
        options.read(true).write(true).create_new(true);
        match open_no_follow(path, &mut options) {
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists && tries == 0 => tries += 1,
            other => return other,
        }
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

/// The file a body is written to: `<name>.part`, or an unnamed file that takes that name only
/// if it has to ([`Unnamed`]).
pub enum Part {
    Named(File),
    Unnamed(Unnamed),
}

impl Part {
    /// A fresh file for a body of `len` bytes (when known) that lands as `part` until complete:
    /// unnamed where the body is small enough for one inline writer and the filesystem allows.
    pub fn fresh(dir: &Path, part: &Path, len: Option<u64>) -> io::Result<Part> {
        if len.is_some_and(|len| len < THREADED_FROM) {
            if let Some(file) = unnamed::open(dir) {
                return Ok(Part::Unnamed(Unnamed {
                    file,
                    part: part.to_owned(),
                    written: 0,
                    as_part: false,
                    landed: false,
                }));
            }
        }
        open_part(part, 0).map(Part::Named)
    }

    /// A named `.part` to resume from byte `start`.
    pub fn resume(part: &Path, start: u64) -> io::Result<Part> {
        open_part(part, start).map(Part::Named)
    }

    /// Gives the complete file its final name `path`; its `.part` name was `part`.
    pub fn land(self, part: &Path, path: &Path) -> io::Result<()> {
        match self {
            Part::Named(file) => {
                drop(file);
                rename(part, path)
            }
            Part::Unnamed(unnamed) => unnamed.land(path),
        }
    }
}

impl Write for Part {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Part::Named(file) => file.write(buf),
            Part::Unnamed(unnamed) => {
                let n = unnamed.file.write(buf)?;
                unnamed.written += n as u64;
                Ok(n)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A body's file before it has a name. It takes its `.part` name as soon as the body proves
/// to need more than one read ([`Sink::name_part`]), so that only bodies that arrive at once
/// stay unnamed to the end; and if dropped before [`Part::land`] (a failed or cancelled
/// download) with bytes in it.
pub struct Unnamed {
    file: File,
    part: PathBuf,
    written: u64,
    /// Linked as `part` already.
    as_part: bool,
    landed: bool,
}

impl Unnamed {
    /// Links the file as its `.part` (once), replacing a stale one. Where linking is refused
    /// (a sandbox, another filesystem), what was written is copied into a new `.part`, which
    /// takes the unnamed file's place.
    fn link_as_part(&mut self) -> io::Result<()> {
        if self.as_part {
            return Ok(());
        }
        let linked = match unnamed::link(&self.file, &self.part) {
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
                std::fs::remove_file(&self.part)?;
                unnamed::link(&self.file, &self.part)
            }
            linked => linked,
        };
        if linked.is_err() {
            let mut named = open_part(&self.part, 0)?;
            self.file.seek(SeekFrom::Start(0))?;
            io::copy(&mut (&self.file).take(self.written), &mut named)?;
            self.file = named;
        }
        self.as_part = true;
        Ok(())
    }

    /// Gives the complete file its final name `path`.
    fn land(mut self, path: &Path) -> io::Result<()> {
        self.landed = true;
        if !self.as_part {
            if unnamed::link(&self.file, path).is_ok() {
                return Ok(());
            }
            // The name is taken (replace the old file atomically, as a rename would), or
            // linking is refused: through the `.part`.
            self.link_as_part()?;
        }
        rename(&self.part, path)
    }
}

impl Drop for Unnamed {
    fn drop(&mut self) {
        if !self.landed && self.written > 0 {
            // Nowhere to report a failure from here: the download's own error says what went
            // wrong, and without the `.part` a retry starts over.
            let _ = self.link_as_part();
        }
    }
}

/// Unnamed files: `O_TMPFILE`, named with `linkat` through `/proc/self/fd`.
#[cfg(target_os = "linux")]
mod unnamed {
    use super::*;
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::io::AsRawFd;
    use std::sync::atomic::AtomicBool;

    /// Cleared when the filesystem or the kernel refuses: the rest of the run then writes
    /// named `.part` files without asking again.
    static USABLE: AtomicBool = AtomicBool::new(true);

    /// An unnamed file in `dir`, or `None` (write a named `.part` instead).
    pub fn open(dir: &Path) -> Option<File> {
        // Naming it later goes through /proc.
        static PROC: OnceLock<bool> = OnceLock::new();
        if !USABLE.load(Ordering::Relaxed)
            || !*PROC.get_or_init(|| Path::new("/proc/self/fd").is_dir())
        {
            return None;
        }
        // Readable too, to copy it out should linking be refused.
        let opened = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_TMPFILE)
            .open(dir);
        match opened {
            Ok(file) => Some(file),
            Err(err) => {
                // "Not here" (filesystem, kernel), as opposed to a passing shortage.
                let unsupported = [libc::EOPNOTSUPP, libc::EISDIR, libc::EINVAL];
                if err
                    .raw_os_error()
                    .is_some_and(|code| unsupported.contains(&code))
                {
                    USABLE.store(false, Ordering::Relaxed);
                }
                None
            }
        }
    }

    pub fn link(file: &File, path: &Path) -> io::Result<()> {
        let source = CString::new(format!("/proc/self/fd/{}", file.as_raw_fd()))?;
        let target = CString::new(path.as_os_str().as_bytes())?;
        // No turn to wait for: adding one entry holds the directory's lock briefly (measured,
        // 2000 x 4 KiB: 55 ms with turns, 51 ms without; with recently freed inodes to skip,
        // 65 and 52 ms).
        // SAFETY: both are NUL-terminated paths that outlive the call.
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
}

#[cfg(not(target_os = "linux"))]
mod unnamed {
    use super::*;

    pub fn open(_dir: &Path) -> Option<File> {
        None
    }

    pub fn link(_file: &File, _path: &Path) -> io::Result<()> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }
}

/// A body's way to its file.
pub enum Sink {
    /// Buffered writes on the calling thread (small or unknown-length bodies).
    Inline(BufWriter<Part>),
    /// Chunks handed to a writer thread.
    Threaded {
        chunks: mpsc::Sender<Bytes>,
        done: oneshot::Receiver<io::Result<File>>,
    },
}

impl Sink {
    /// A sink for a body of `len` bytes (when known) into `part`.
    pub fn new(part: Part, len: Option<u64>) -> io::Result<Sink> {
        let writer_free = || {
            let allowed = writer_threads_allowed();
            WRITERS
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < allowed).then_some(n + 1)
                })
                .is_ok()
        };
        match (part, len) {
            (Part::Named(file), Some(len)) if len >= THREADED_FROM && writer_free() => {
                Sink::threaded(file)
            }
            // A small body gets a buffer its size: no 256 KiB allocation per 4 KiB file.
            (part, Some(len)) => {
                let capacity =
                    usize::try_from(len).map_or(WRITE_BUFFER, |l| l.clamp(8192, WRITE_BUFFER));
                Ok(Sink::Inline(BufWriter::with_capacity(capacity, part)))
            }
            (part, None) => Ok(Sink::Inline(BufWriter::with_capacity(WRITE_BUFFER, part))),
        }
    }

    /// A sink with a writer thread; the caller has counted it in [`WRITERS`].
    fn threaded(file: File) -> io::Result<Sink> {
        let (chunks, mut received) = mpsc::channel::<Bytes>(CHANNEL_CHUNKS);
        let (report, done) = oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name("writer".to_owned())
            .spawn(move || {
                let mut out = BufWriter::with_capacity(WRITE_BUFFER, file);
                let written = (|| {
                    // Ends when the download drops its sender: finished, failed or cancelled.
                    while let Some(chunk) = received.blocking_recv() {
                        out.write_all(&chunk)?;
                    }
                    out.into_inner().map_err(io::IntoInnerError::into_error)
                })();
                WRITERS.fetch_sub(1, Ordering::AcqRel);
                let _ = report.send(written);
            });
        if let Err(err) = spawned {
            WRITERS.fetch_sub(1, Ordering::AcqRel);
            return Err(err);
        }
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

    /// Writes out what an inline sink has buffered (a threaded one writes as chunks come).
    pub fn flush_buffer(&mut self) -> io::Result<()> {
        match self {
            Sink::Inline(out) => out.flush(),
            Sink::Threaded { .. } => Ok(()),
        }
    }

    /// Gives an unnamed file its `.part` name now (see [`Unnamed`]).
    pub fn name_part(&mut self) -> io::Result<()> {
        match self {
            Sink::Inline(out) => match out.get_mut() {
                Part::Unnamed(unnamed) => unnamed.link_as_part(),
                Part::Named(_) => Ok(()),
            },
            Sink::Threaded { .. } => Ok(()),
        }
    }

    /// Writes out everything received so far; the file is then ready to [`Part::land`] (or,
    /// dropped, keeps what it has as `.part`).
    pub async fn finish(self) -> io::Result<Part> {
        match self {
            Sink::Inline(out) => out.into_inner().map_err(io::IntoInnerError::into_error),
            Sink::Threaded { chunks, mut done } => {
                drop(chunks);
                writer_result(&mut done).await.map(Part::Named)
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

    /// A sink with a writer thread, whatever other tests hold.
    fn threaded(file: File) -> Sink {
        WRITERS.fetch_add(1, Ordering::AcqRel);
        Sink::threaded(file).unwrap()
    }

    async fn write_all(len: u64, chunks: &[&[u8]]) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let (part, path) = (dir.path().join("f.part"), dir.path().join("f"));
        let mut sink = if len >= THREADED_FROM {
            threaded(open_part(&part, 0).unwrap())
        } else {
            Sink::new(
                Part::fresh(dir.path(), &part, Some(len)).unwrap(),
                Some(len),
            )
            .unwrap()
        };
        for chunk in chunks {
            sink.write(Bytes::copy_from_slice(chunk)).await.unwrap();
        }
        let written = sink.finish().await.unwrap();
        written.land(&part, &path).unwrap();
        assert!(!part.exists());
        std::fs::read(&path).unwrap()
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_small_fresh_body_has_no_name_until_it_lands() {
        let dir = tempfile::tempdir().unwrap();
        let (part, path) = (dir.path().join("a.part"), dir.path().join("a"));
        std::fs::write(&path, b"old").unwrap();
        let mut file = Part::fresh(dir.path(), &part, Some(5)).unwrap();
        assert!(
            matches!(file, Part::Unnamed(_)),
            "ext4 and tmpfs take O_TMPFILE"
        );
        file.write_all(b"hello").unwrap();
        assert_eq!(names(dir.path()), ["a"]);
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        // Over an existing file, as a rename would.
        file.land(&part, &path).unwrap();
        assert_eq!(names(dir.path()), ["a"]);
        assert_eq!(std::fs::read(&path).unwrap(), b"hello");
    }

    #[test]
    fn an_abandoned_unnamed_body_becomes_its_part() {
        let dir = tempfile::tempdir().unwrap();
        let part = dir.path().join("b.part");
        // A stale `.part` from an earlier run gives way to this run's bytes.
        std::fs::write(&part, b"stale stale").unwrap();
        let mut file = Part::fresh(dir.path(), &part, Some(100)).unwrap();
        file.write_all(b"half").unwrap();
        drop(file);
        assert_eq!(std::fs::read(&part).unwrap(), b"half");

        // With nothing written, nothing is left.
        let empty = dir.path().join("c.part");
        drop(Part::fresh(dir.path(), &empty, Some(100)).unwrap());
        assert_eq!(names(dir.path()), ["b.part"]);
    }

    #[test]
    fn where_linking_is_refused_the_bytes_are_copied_into_the_part() {
        // A `.part` on another filesystem than the unnamed file: linkat fails with EXDEV.
        let (dir, elsewhere) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir_in("/dev/shm"),
        );
        let Ok(elsewhere) = elsewhere else {
            return; // No tmpfs here: nothing to cross.
        };
        let same_fs = |a: &Path, b: &Path| {
            use std::os::unix::fs::MetadataExt;
            a.metadata().unwrap().dev() == b.metadata().unwrap().dev()
        };
        if same_fs(dir.path(), elsewhere.path()) {
            return;
        }
        let (part, path) = (elsewhere.path().join("e.part"), elsewhere.path().join("e"));
        let mut file = Part::fresh(dir.path(), &part, Some(10)).unwrap();
        file.write_all(b"first").unwrap();
        let Part::Unnamed(unnamed) = &mut file else {
            panic!("ext4 takes O_TMPFILE");
        };
        unnamed.link_as_part().unwrap();
        assert_eq!(std::fs::read(&part).unwrap(), b"first");
        file.write_all(b"+more").unwrap();
        file.land(&part, &path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"first+more");
        assert_eq!(names(elsewhere.path()), ["e"]);

        // A one-read body lands the same way.
        let mut file = Part::fresh(dir.path(), &part, Some(3)).unwrap();
        file.write_all(b"one").unwrap();
        file.land(&part, &path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"one");
        assert_eq!(names(elsewhere.path()), ["e"]);
        assert!(names(dir.path()).is_empty());
    }

    #[test]
    fn large_or_unknown_bodies_are_named_from_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let part = dir.path().join("d.part");
        assert!(matches!(
            Part::fresh(dir.path(), &part, Some(THREADED_FROM)).unwrap(),
            Part::Named(_)
        ));
        assert!(matches!(
            Part::fresh(dir.path(), &part, None).unwrap(),
            Part::Named(_)
        ));
        assert!(part.exists());
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
        let mut sink = threaded(full);
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
            None => sink.finish().await.err().unwrap(),
        };
        assert_eq!(err.raw_os_error(), Some(28), "ENOSPC: {err}");
    }

    #[test]
    fn writer_threads_are_rationed() {
        // Small bodies never take one, however many there are.
        let before = WRITERS.load(Ordering::Acquire);
        let small: Vec<Sink> = (0..4)
            .map(|_| Sink::new(Part::Named(tempfile::tempfile().unwrap()), Some(10)).unwrap())
            .collect();
        assert!(small.iter().all(|s| matches!(s, Sink::Inline(_))));
        assert_eq!(WRITERS.load(Ordering::Acquire), before);
        assert!(writer_threads_allowed() >= 1);
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

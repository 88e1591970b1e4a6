//! The output directory and a download's file in it, from start to landing: the only place
//! that knows a file's `.part` name, opens files in `-o`, and renames or links them there.
//!
//! A body is written to `<name>.part` and renamed when complete. A fresh body of known, modest
//! size starts in an unnamed file instead (Linux `O_TMPFILE`, see [`crate::platform`]); if it
//! arrives in one read, as small files do, it is linked under its final name when complete:
//! one directory change per file instead of three (create, and rename's unlink and link), and
//! the inode is allocated outside the directory's lock. A body that needs more reads, or is
//! abandoned with bytes in it, is linked as `<name>.part` at once, so that a crash, a retry or
//! `-c` finds it as any other.
//!
//! Nothing already in the directory is trusted: every open refuses to follow a link or to wait
//! on a FIFO, and a `.part` that is not a regular file of our own counts as absent (its entry
//! is replaced, never its target).
//!
//! Each `.part` has its crash-safe record beside it ([`super::record`], `NAME.part.fbstate`),
//! and belongs to one process at a time: whoever writes it holds an advisory lock on it
//! ([`platform::try_lock`]), taken when it is opened and kept until it lands or is closed.
//! Another run finds it busy and leaves it alone (never writes, resumes, renames or removes
//! it).
//!
//! Creating and renaming files in one directory from many threads at once makes them spin on
//! the directory's lock in the kernel (measured on ext4: twice the CPU of doing it in turn), so
//! those calls take turns here; linking an unnamed file is brief enough not to.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::SystemTime;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::record::{MAX_RECORD, Record};
use crate::error::FetchError;
use crate::platform;
use crate::sync::lock;

/// What a download's file is called until it is complete.
pub(crate) const PART_SUFFIX: &str = ".part";
/// What follows a `.part`'s name for its record.
pub(crate) const RECORD_SUFFIX: &str = ".fbstate";
/// From this size on a body is large: it starts as a named `.part` (it needs many reads, and
/// would be named at its second anyway), and its sink may give it a writer thread.
pub(crate) const LARGE_BODY: u64 = 8 << 20;

/// The directory downloads land in (`-o`), checked usable before the first download.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct OutputDir {
    dir: PathBuf,
    /// Whether it held `.part` files when the run began (a fresh download then looks for its
    /// own, to write over it).
    parts_on_disk: bool,
}

impl OutputDir {
    /// Creates `dir` and proves it writable, so that a bad `-o` fails before any download
    /// starts; notes whether it holds `.part` files (left by an earlier run).
    pub(crate) fn prepare(dir: &Path) -> Result<OutputDir> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create output directory {}", dir.display()))?;
        prove_writable(dir)?;
        let entries = std::fs::read_dir(dir)
            .with_context(|| format!("cannot list output directory {}", dir.display()))?;
        let parts_on_disk = entries.flatten().any(|entry| {
            entry
                .file_name()
                .as_encoded_bytes()
                .ends_with(PART_SUFFIX.as_bytes())
        });
        Ok(OutputDir {
            dir: dir.to_owned(),
            parts_on_disk,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.dir
    }

    /// Where `name` lands when complete.
    pub(crate) fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Where `name` is written until it is complete.
    pub(crate) fn part(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}{PART_SUFFIX}"))
    }

    /// Whether anything (of any kind, a dangling link too) is at `name`.
    pub(crate) fn holds(&self, name: &str) -> bool {
        self.file(name).symlink_metadata().is_ok()
    }

    /// The length of the regular file at `name` (never through a link).
    pub(crate) fn file_len(&self, name: &str) -> Option<u64> {
        let meta = self.file(name).symlink_metadata().ok()?;
        meta.file_type().is_file().then_some(meta.len())
    }

    /// Whether anything is at `name`'s `.part`.
    pub(crate) fn holds_part(&self, name: &str) -> bool {
        self.part(name).symlink_metadata().is_ok()
    }

    /// The length of `name`'s `.part`, when it is one to resume (see [`part_len`]).
    pub(crate) fn part_len(&self, name: &str) -> Option<u64> {
        part_len(&self.part(name))
    }

    /// Removes `name`'s `.part` and its record, of no use any more (best effort: a retry
    /// replaces them anyway). A `.part` another run holds is left alone.
    pub(crate) fn discard_part(&self, name: &str) {
        let part = self.part(name);
        if let Ok(file) = open_no_follow(&part, File::options().read(true)) {
            if !matches!(platform::try_lock(&file), Ok(true)) {
                return;
            }
        }
        let _ = std::fs::remove_file(&part);
        self.remove_record(name);
    }

    /// Where `name`'s record is kept.
    pub(crate) fn record_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}{PART_SUFFIX}{RECORD_SUFFIX}"))
    }

    /// `name`'s record: `Ok(None)` when there is none, `Err(())` when there is something
    /// at its place that is not a record (it proves nothing).
    fn record(&self, name: &str) -> Result<Option<Record>, ()> {
        let path = self.record_path(name);
        let file = match open_no_follow(&path, File::options().read(true)) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(_) => return Err(()),
        };
        let mut text = Vec::new();
        if file.take(MAX_RECORD + 1).read_to_end(&mut text).is_err() {
            return Err(());
        }
        Record::parse(&text).map(Some).ok_or(())
    }

    /// Replaces `name`'s record with `record`, atomically (a temporary file, then a rename;
    /// neither followed through a link). The caller holds the `.part` (its lock).
    pub(crate) fn save_record(&self, name: &str, record: &Record) -> io::Result<()> {
        let path = self.record_path(name);
        let temp = self.record_temp(name);
        let mut file = create_new(&temp)?;
        file.write_all(&record.to_bytes())?;
        if record.ranges.is_some() {
            // What it claims of a preallocated `.part` must outlive a power cut too.
            file.sync_data()?;
        }
        drop(file);
        rename(&temp, &path)
    }

    /// Removes `name`'s record (best effort: without its `.part` a record is ignored), and
    /// the temporary one a process killed while writing it left (the caller holds the
    /// `.part`, so no other process is writing one).
    pub(crate) fn remove_record(&self, name: &str) {
        let _ = std::fs::remove_file(self.record_path(name));
        let _ = std::fs::remove_file(self.record_temp(name));
    }

    fn record_temp(&self, name: &str) -> PathBuf {
        self.dir
            .join(format!("{name}{PART_SUFFIX}{RECORD_SUFFIX}.tmp"))
    }

    /// Where a download of `name` may resume: the bytes of its `.part` that its record
    /// proves (see [`Resume`]). A `.part` whose record is unreadable is of no use and goes;
    /// a record without its `.part` too.
    pub(crate) fn resume_point(&self, name: &str) -> Resume {
        let Some(len) = self.part_len(name) else {
            if self.record_path(name).symlink_metadata().is_ok() {
                self.remove_record(name);
            }
            return Resume::default();
        };
        match self.record(name) {
            Ok(Some(record)) => Resume {
                offset: record.proven(len),
                complete: record.complete(len),
                record: Some(record),
            },
            // Without a record, bytes written in order (an earlier version, another tool,
            // a body that never had a validator or size): its length, as wget trusts it.
            Ok(None) => Resume {
                offset: len,
                complete: false,
                record: None,
            },
            Err(()) => {
                self.discard_part(name);
                Resume::default()
            }
        }
    }

    /// The `.part` a download that did not complete leaves for `-c`, if it holds any bytes
    /// (an empty one is removed).
    pub(crate) fn leftover_part(&self, name: &str) -> Option<PathBuf> {
        let part = self.part(name);
        match self.resume_point(name).offset {
            0 if self.part_len(name).is_some() => {
                self.discard_part(name);
                None
            }
            0 => None,
            _ => Some(part),
        }
    }

    /// The file for `name`'s body from byte `start` (`len` bytes of it, when known): the
    /// `.part` kept so far cut to `start`, or a fresh file, unnamed where it can be. A `.part`
    /// left by an earlier run is written over (and so consumed), not left behind.
    pub(crate) fn open(&self, name: &str, start: u64, len: Option<u64>) -> io::Result<Part> {
        let part = self.part(name);
        let fresh = start == 0 && !(self.parts_on_disk && part.symlink_metadata().is_ok());
        if fresh {
            Part::fresh(&self.dir, &part, len)
        } else {
            let file = open_part(&part, Some(start)).map(Part::Named)?;
            if start == 0 {
                // Started over: an old record describes nothing that is there now.
                self.remove_record(name);
            }
            Ok(file)
        }
    }

    /// A fresh `.part` for `name` of `len` bytes, to be written at any offset (segments).
    /// Its record is written first (nothing written yet), so that a preallocated `.part`
    /// never exists without one.
    pub(crate) fn preallocate(
        &self,
        name: &str,
        len: u64,
        validator: Option<String>,
    ) -> io::Result<Preallocated> {
        let path = self.part(name);
        let file = open_part(&path, Some(0))?;
        self.save_record(name, &Record::segmented(validator.clone(), len, Vec::new()))?;
        file.set_len(len)?;
        Ok(Preallocated {
            file,
            len,
            validator,
        })
    }

    /// Reads `name`'s `.part`, never through a link.
    pub(crate) fn read_part(&self, name: &str) -> io::Result<File> {
        open_no_follow(&self.part(name), File::options().read(true))
    }

    /// Gives the complete `part` of `name` its final name; returns that path.
    pub(crate) fn land(&self, name: &str, part: Part) -> io::Result<PathBuf> {
        let path = self.file(name);
        let had_name = part.is_named();
        part.land(&self.part(name), &path)?;
        if had_name {
            self.remove_record(name);
        }
        Ok(path)
    }

    /// The modification time of the file `name`, when it is a regular file (`-N`).
    pub(crate) fn modified(&self, name: &str) -> Option<SystemTime> {
        let meta = self.file(name).symlink_metadata().ok()?;
        meta.file_type().is_file().then(|| meta.modified().ok())?
    }

    /// Sets the modification time of the landed file `name` (the server's Last-Modified),
    /// through a descriptor that cannot follow a link.
    pub(crate) fn set_modified(&self, name: &str, time: SystemTime) -> io::Result<()> {
        // Open for writing (nothing is written): Windows sets times only through such a handle.
        open_no_follow(&self.file(name), File::options().write(true))?.set_modified(time)
    }

    /// Gives `name`'s `.part`, complete, its final name; returns that path. `held` is the
    /// `.part` open and locked by this download.
    pub(crate) fn land_part(&self, name: &str, held: &File) -> io::Result<PathBuf> {
        let path = self.file(name);
        let part = self.part(name);
        if !still_at(held, &part) {
            return Err(io::Error::other(format!(
                "{} was replaced by another program before its rename",
                part.display()
            )));
        }
        rename(&part, &path)?;
        self.remove_record(name);
        Ok(path)
    }

    /// `name`'s `.part` as it is, open and locked by this download (to land it whole, after
    /// a 416 said it is complete).
    pub(crate) fn hold_part(&self, name: &str) -> io::Result<File> {
        open_part(&self.part(name), None)
    }
}

impl OutputDir {
    /// The object for `name`'s file: its `.part`, its record and its final name, with the
    /// errors of each step said as a download's ([`FetchError`]: which file, read or write).
    pub(crate) fn file_for<'a>(&'a self, name: &'a str) -> FileFor<'a> {
        FileFor { dir: self, name }
    }
}

/// One name's file in the output directory, for one download's life: where it may resume,
/// its opening (fresh, resumed, preallocated) and record, and its landing or discarding.
pub(crate) struct FileFor<'a> {
    dir: &'a OutputDir,
    name: &'a str,
}

impl FileFor<'_> {
    fn error_at(&self, path: PathBuf) -> impl FnOnce(io::Error) -> FetchError {
        move |source| FetchError::write(path, source)
    }

    /// A write error of the `.part`.
    pub(crate) fn write_error(&self, source: io::Error) -> FetchError {
        FetchError::write(self.dir.part(self.name), source)
    }

    /// Where the file is under its final name.
    pub(crate) fn path(&self) -> PathBuf {
        self.dir.file(self.name)
    }

    /// Whether anything is at the final name ([`OutputDir::holds`]).
    pub(crate) fn exists(&self) -> bool {
        self.dir.holds(self.name)
    }

    /// The length of the regular file at the final name ([`OutputDir::file_len`]).
    pub(crate) fn len(&self) -> Option<u64> {
        self.dir.file_len(self.name)
    }

    /// The modification time of the regular file at the final name.
    pub(crate) fn modified(&self) -> Option<SystemTime> {
        self.dir.modified(self.name)
    }

    /// Whether anything is at the `.part` name, of any kind.
    pub(crate) fn has_any_part(&self) -> bool {
        self.dir.holds_part(self.name)
    }

    /// The length of the `.part`, when it is one to resume ([`OutputDir::part_len`]).
    pub(crate) fn part_len(&self) -> Option<u64> {
        self.dir.part_len(self.name)
    }

    /// Gives the landed file the server's time ([`OutputDir::set_modified`]).
    pub(crate) fn set_modified(&self, time: SystemTime) -> io::Result<()> {
        self.dir.set_modified(self.name, time)
    }

    /// What a download may resume from ([`OutputDir::resume_point`]).
    pub(crate) fn resume_point(&self) -> Resume {
        self.dir.resume_point(self.name)
    }

    /// The file for the body from byte `start` ([`OutputDir::open`]).
    pub(crate) fn open(&self, start: u64, len: Option<u64>) -> Result<Part, FetchError> {
        let part = self.dir.part(self.name);
        self.dir
            .open(self.name, start, len)
            .map_err(self.error_at(part))
    }

    /// A fresh, preallocated `.part` for segments ([`OutputDir::preallocate`]).
    pub(crate) fn preallocate(
        &self,
        len: u64,
        validator: Option<String>,
    ) -> Result<Preallocated, FetchError> {
        let part = self.dir.part(self.name);
        self.dir
            .preallocate(self.name, len, validator)
            .map_err(self.error_at(part))
    }

    /// The preallocated `.part` of `len` bytes a segmented download left, as it is (locked),
    /// to go on with it; its record says what it holds.
    pub(crate) fn reopen_preallocated(
        &self,
        len: u64,
        validator: String,
    ) -> Result<Preallocated, FetchError> {
        let file = self.hold()?;
        match file.metadata() {
            Ok(meta) if meta.len() == len => Ok(Preallocated {
                file,
                len,
                validator: Some(validator),
            }),
            Ok(_) => Err(FetchError::BadResume(
                "a .part of another length than its record".to_owned(),
            )),
            Err(source) => Err(self.read_error(source)),
        }
    }

    /// The `.part` as it is, locked, to land it ([`OutputDir::hold_part`]).
    pub(crate) fn hold(&self) -> Result<File, FetchError> {
        let part = self.dir.part(self.name);
        self.dir.hold_part(self.name).map_err(self.error_at(part))
    }

    /// Replaces the record ([`OutputDir::save_record`]).
    pub(crate) fn save_record(&self, record: &Record) -> Result<(), FetchError> {
        let path = self.dir.record_path(self.name);
        self.dir
            .save_record(self.name, record)
            .map_err(self.error_at(path))
    }

    /// A SHA-256 hasher over the `.part`'s first `len` bytes.
    pub(crate) fn digest(&self, len: u64) -> Result<Sha256, FetchError> {
        let mut hasher = Sha256::new();
        if len > 0 {
            let part = self.dir.read_part(self.name);
            part.and_then(|part| io::copy(&mut part.take(len), &mut hasher))
                .map_err(|source| self.read_error(source))?;
        }
        Ok(hasher)
    }

    /// What a download that did not complete leaves for `-c` ([`OutputDir::leftover_part`]).
    pub(crate) fn leftover(&self) -> Option<PathBuf> {
        self.dir.leftover_part(self.name)
    }

    /// A read error of the `.part`.
    pub(crate) fn read_error(&self, source: io::Error) -> FetchError {
        FetchError::Read {
            path: self.dir.part(self.name),
            source,
        }
    }

    /// Whether a `.part` of this download's own is there (with any bytes).
    pub(crate) fn has_part(&self) -> bool {
        self.dir.part_len(self.name).is_some_and(|len| len > 0)
    }

    /// Removes the `.part` and its record ([`OutputDir::discard_part`]).
    pub(crate) fn discard(&self) {
        self.dir.discard_part(self.name);
    }

    /// Gives the complete `part` its final name.
    pub(crate) fn land(&self, part: Part) -> Result<PathBuf, FetchError> {
        let path = self.dir.file(self.name);
        self.dir.land(self.name, part).map_err(self.error_at(path))
    }

    /// Gives the `.part`, complete and `held`, its final name.
    pub(crate) fn land_held(&self, held: &File) -> Result<PathBuf, FetchError> {
        let path = self.dir.file(self.name);
        self.dir
            .land_part(self.name, held)
            .map_err(self.error_at(path))
    }
}

/// A `.part` of known length, written at any offset (bytes land out of order).
pub(crate) struct Preallocated {
    pub(crate) file: File,
    pub(crate) len: u64,
    /// The validator of the body, kept in its record.
    pub(crate) validator: Option<String>,
}

impl Preallocated {
    /// Keeps the first `len` bytes only (all that is known good when a segmented download
    /// stops), then records them as written in order, so that a later `-c` resumes from
    /// there safely. In that order: should it stop in between, the old record's ranges
    /// still prove no more than the cut file holds.
    pub(crate) fn keep_first(&self, file: &FileFor<'_>, len: u64) -> Result<(), FetchError> {
        self.file
            .set_len(len)
            .map_err(|source| file.write_error(source))?;
        file.save_record(&Record::in_order(self.validator.clone(), Some(self.len)))
    }

    /// Records `ranges` as written: they are on the file (synced first, so that the record
    /// never claims bytes a power cut could take).
    pub(crate) fn record(
        &self,
        file: &FileFor<'_>,
        ranges: Vec<(u64, u64)>,
    ) -> Result<(), FetchError> {
        self.file
            .sync_data()
            .map_err(|source| file.write_error(source))?;
        file.save_record(&Record::segmented(self.validator.clone(), self.len, ranges))
    }
}

/// What a download may resume from, by what [`OutputDir::resume_point`] found.
#[derive(Debug, Default)]
pub(crate) struct Resume {
    /// The bytes from the start known good (0: start over).
    pub(crate) offset: u64,
    /// Whether the record proves the `.part` whole (the file's total size, every byte).
    pub(crate) complete: bool,
    pub(crate) record: Option<Record>,
}

/// Creates a probe file in `dir` and removes it. Created exclusively, never through a link; a
/// name that is taken (by anything) is left alone and the next one tried.
fn prove_writable(dir: &Path) -> Result<()> {
    let pid = std::process::id();
    let mut attempt = 0;
    let probe = loop {
        let probe = dir.join(match attempt {
            0 => format!(".fetchbench-probe-{pid}"),
            n => format!(".fetchbench-probe-{pid}-{n}"),
        });
        let mut options = File::options();
        options.write(true).create_new(true);
        match open_no_follow(&probe, &mut options) {
            Ok(_) => break probe,
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists && attempt < 16 => {
                attempt += 1;
            }
            Err(err) => {
                return Err(err).with_context(|| {
                    format!("cannot write in output directory {}", dir.display())
                });
            }
        }
    };
    std::fs::remove_file(&probe)
        .with_context(|| format!("cannot remove {} after a write test", probe.display()))
}

/// Held while the output directory changes (a file created or renamed).
static DIRECTORY: Mutex<()> = Mutex::new(());

fn directory_turn() -> MutexGuard<'static, ()> {
    lock(&DIRECTORY)
}

/// Opens `path` with `options` so that it cannot follow a link or block: `O_NOFOLLOW` (a
/// symlink fails with `ELOOP`) and `O_NONBLOCK` (a FIFO without a reader fails with `ENXIO`
/// instead of waiting for ever), then checks that what was opened is a regular file. Where the
/// platform has no such flags ([`platform::no_follow_no_block`]), a plain open followed by the
/// same check.
fn open_no_follow(path: &Path, options: &mut OpenOptions) -> io::Result<File> {
    let file = platform::no_follow_no_block(options).open(path)?;
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
fn part_len(path: &Path) -> Option<u64> {
    let meta = path.symlink_metadata().ok()?;
    if platform::has_other_links(&meta) {
        return None;
    }
    meta.file_type().is_file().then_some(meta.len())
}

/// Opens `path` for writing from byte `start` (`None`: as it is, to land it), locked by this
/// process: an existing regular file of its own is taken over (cut to `start`: 0 for a fresh
/// body, the bytes a resumed download keeps); anything else at `path` (a link, a FIFO, a file
/// with other names) is unlinked first, never written through. A `.part` another process
/// holds is refused with [`io::ErrorKind::ResourceBusy`] ([`busy`]), and left alone.
fn open_part(path: &Path, start: Option<u64>) -> io::Result<File> {
    let mut file = {
        let _turn = directory_turn();
        take_over(path, start.is_some_and(|start| start == 0))?
    };
    if let Some(start) = start {
        // Only when it changes anything: on ext4, a truncate to 0 (even of an empty file)
        // makes the close after the writes wait for their writeback (auto_da_alloc), which
        // cost a 1 GiB download half a second.
        if file.metadata()?.len() != start {
            file.set_len(start)?;
        }
        file.seek(SeekFrom::Start(start))?;
    }
    Ok(file)
}

/// The `.part` at `path`, opened (created when `create` and absent) and locked; see
/// [`open_part`].
fn take_over(path: &Path, create: bool) -> io::Result<File> {
    for _ in 0..4 {
        let mut options = OpenOptions::new();
        // Readable too, so that a digest can be taken through the same descriptor.
        options.read(true).write(true).create(create);
        let file = match platform::no_follow_no_block(&mut options).open(path) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Err(err),
            Err(err) if !create => return Err(err),
            // A symlink (ELOOP), a FIFO without a reader (ENXIO), ...: not ours; its entry
            // goes (never its target).
            Err(_) => {
                remove_entry(path)?;
                continue;
            }
        };
        let meta = file.metadata()?;
        if !meta.is_file() || platform::has_other_links(&meta) {
            if !create {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{} is not a regular file of its own", path.display()),
                ));
            }
            drop(file);
            remove_entry(path)?;
            continue;
        }
        if !platform::try_lock(&file)? {
            return Err(busy(path));
        }
        // Locked, but is it still the file at `path` (not renamed away or replaced since)?
        if still_at(&file, path) {
            return Ok(file);
        }
    }
    Err(io::Error::other(format!(
        "{} keeps changing under this run",
        path.display()
    )))
}

/// The error for a `.part` another process holds.
pub(crate) fn busy(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::ResourceBusy,
        format!("{} is held by another download", path.display()),
    )
}

/// Whether `file` is (still) the file at `path`.
fn still_at(file: &File, path: &Path) -> bool {
    match (file.metadata(), path.symlink_metadata()) {
        (Ok(open), Ok(named)) => platform::same_file(&open, &named),
        _ => false,
    }
}

/// Removes the entry at `path` (a missing one is fine).
fn remove_entry(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
        _ => Ok(()),
    }
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

/// Renames a finished `.part` to its final name.
fn rename(from: &Path, to: &Path) -> io::Result<()> {
    let _turn = directory_turn();
    std::fs::rename(from, to)
}

/// The file a body is written to: `<name>.part`, or an unnamed file that takes that name only
/// if it has to ([`Unnamed`]).
pub(crate) enum Part {
    Named(File),
    Unnamed(Unnamed),
}

impl Part {
    /// A fresh file for a body of `len` bytes (when known) that lands as `part` until complete:
    /// unnamed where the body is small enough for one inline writer and the filesystem allows.
    fn fresh(dir: &Path, part: &Path, len: Option<u64>) -> io::Result<Part> {
        if len.is_some_and(|len| len < LARGE_BODY) {
            if let Some(file) = platform::unnamed_file(dir) {
                // Locked from the start: when it takes its `.part` name, that `.part` is ours.
                platform::try_lock(&file)?;
                return Ok(Part::Unnamed(Unnamed {
                    file,
                    part: part.to_owned(),
                    written: 0,
                    as_part: false,
                    landed: false,
                }));
            }
        }
        open_part(part, Some(0)).map(Part::Named)
    }

    /// Gives the complete file its final name `path`; its `.part` name was `part`. A named
    /// one is renamed while still open (and locked), so no other run can have taken it.
    fn land(self, part: &Path, path: &Path) -> io::Result<()> {
        match self {
            Part::Named(file) => {
                if !still_at(&file, part) {
                    return Err(io::Error::other(format!(
                        "{} was replaced by another program before its rename",
                        part.display()
                    )));
                }
                rename(part, path)
            }
            Part::Unnamed(unnamed) => unnamed.land(path),
        }
    }

    /// Whether the file has its `.part` name (and so, maybe, a record beside it).
    pub(crate) fn is_named(&self) -> bool {
        match self {
            Part::Named(_) => true,
            Part::Unnamed(unnamed) => unnamed.as_part,
        }
    }
}

impl Part {
    /// Gives an unnamed file its `.part` name now: the body needs more than one read, and a
    /// crash must not take what arrived.
    pub(crate) fn name_now(&mut self) -> io::Result<()> {
        match self {
            Part::Unnamed(unnamed) => unnamed.link_as_part(),
            Part::Named(_) => Ok(()),
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
/// to need more than one read ([`Part::name_now`]), so that only bodies that arrive at once
/// stay unnamed to the end; and if dropped before it lands (a failed or cancelled download)
/// with bytes in it.
pub(crate) struct Unnamed {
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
        let linked = match platform::link_unnamed(&self.file, &self.part) {
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
                // A stale `.part` gives way; one another run holds does not, and this body
                // stays unnamed (it lands whole all the same, but a crash takes it).
                match open_no_follow(&self.part, File::options().read(true)) {
                    Ok(other) if !platform::try_lock(&other)? => return Ok(()),
                    _ => {}
                }
                remove_entry(&self.part)?;
                platform::link_unnamed(&self.file, &self.part)
            }
            linked => linked,
        };
        if linked.is_err() {
            let mut named = match open_part(&self.part, Some(0)) {
                Err(err) if err.kind() == io::ErrorKind::ResourceBusy => return Ok(()),
                named => named?,
            };
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
            // No turn to wait for: adding one entry holds the directory's lock briefly
            // (measured, 2000 x 4 KiB: 55 ms with turns, 51 ms without; with recently freed
            // inodes to skip, 65 and 52 ms).
            if platform::link_unnamed(&self.file, path).is_ok() {
                return Ok(());
            }
            // The name is taken (replace the old file atomically, as a rename would), or
            // linking is refused: through the `.part`.
            self.link_as_part()?;
            if !self.as_part {
                // Another run holds the `.part`: through a name of this process's own.
                let own = private_name(path);
                platform::link_unnamed(&self.file, &own)?;
                return rename(&own, path);
            }
        }
        rename(&self.part, path)
    }
}

/// A name beside `path` no other process uses: `.NAME.fbtmp-PID-N`.
fn private_name(path: &Path) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = path
        .file_name()
        .map_or_else(Default::default, |n| n.to_string_lossy());
    path.with_file_name(format!(".{name}.fbtmp-{}-{n}", std::process::id()))
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn landing_removes_a_record_left_half_written() {
        let dir = tempfile::tempdir().unwrap();
        let output = OutputDir::prepare(dir.path()).unwrap();
        // A process killed while it wrote the record leaves its temporary file.
        let part = output.preallocate("k", 10, None).unwrap();
        std::fs::write(output.record_temp("k"), b"half").unwrap();
        output.land_part("k", &part.file).unwrap();
        assert_eq!(names(dir.path()), ["k"]);
    }

    #[test]
    fn large_or_unknown_bodies_are_named_from_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let part = dir.path().join("d.part");
        assert!(matches!(
            Part::fresh(dir.path(), &part, Some(LARGE_BODY)).unwrap(),
            Part::Named(_)
        ));
        assert!(matches!(
            Part::fresh(dir.path(), &part, None).unwrap(),
            Part::Named(_)
        ));
        assert!(part.exists());
    }

    #[test]
    fn a_stopped_download_leaves_only_a_part_of_its_own_with_bytes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("half.part"), b"abc").unwrap();
        let output = OutputDir::prepare(dir.path()).unwrap();
        assert!(output.parts_on_disk);
        // An empty `.part` is nothing to resume: it goes.
        std::fs::write(output.part("empty"), b"").unwrap();
        assert_eq!(output.leftover_part("empty"), None);
        assert!(!output.holds_part("empty"));
        assert_eq!(
            output.leftover_part("half"),
            Some(dir.path().join("half.part"))
        );
        // A link at `.part` is not ours: not resumed, not reported, its target untouched.
        std::os::unix::fs::symlink("/etc/hostname", output.part("link")).unwrap();
        assert_eq!(output.part_len("link"), None);
        assert_eq!(output.leftover_part("link"), None);
        assert!(output.holds_part("link"));
        let held = output.hold_part("half").unwrap();
        let path = output.land_part("half", &held).unwrap();
        assert_eq!(path, dir.path().join("half"));
        assert_eq!(std::fs::read(path).unwrap(), b"abc");
        assert!(!output.holds_part("half"));
    }

    #[test]
    fn resuming_cuts_the_part_to_its_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.part");
        std::fs::write(&path, b"0123456789").unwrap();
        let mut file = open_part(&path, Some(4)).unwrap();
        file.write_all(b"xy").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"0123xy");
    }
}

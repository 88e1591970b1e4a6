//! A body streamed in order into its file ([`Download::stream`]): through a [`Sink`], with its
//! digest, its `.part` name taken once it is worth one, and the record that lets `-c` resume
//! it after a crash; then its length checked.

use reqwest::Response;
use sha2::{Digest, Sha256};

use super::download::{Download, Extent};
use super::output::{FileFor, Part};
use super::pump::{Drain, End};
use super::record::Record;
use super::sink::Sink;
use crate::error::FetchError;

/// A whole body's way into its file, as the pump feeds it.
struct InOrder<'d, 'a> {
    download: &'d mut Download<'a>,
    file: &'d FileFor<'d>,
    out: Sink,
    hasher: Option<Sha256>,
    /// Where the body starts in the file, and how far it is written.
    start: u64,
    written: u64,
    /// The body's end in the file, when its length is known.
    expected: Option<u64>,
    max_filesize: Option<u64>,
    /// The `.part`'s record until it is on disk ([`PendingRecord`]).
    pending: PendingRecord<'d>,
}

impl Drain for InOrder<'_, '_> {
    fn room(&self) -> u64 {
        u64::MAX
    }

    async fn take(&mut self, chunk: bytes::Bytes) -> Result<(), FetchError> {
        let len = chunk.len() as u64;
        if let Some(hasher) = &mut self.hasher {
            hasher.update(&chunk);
        }
        let first_read = self.written == self.start;
        self.out
            .write(chunk)
            .await
            .map_err(|source| self.file.write_error(source))?;
        self.written += len;
        if let Some(limit) = self.max_filesize {
            if self.written > limit {
                // A body without a Content-Length (or longer than it said) is cut here.
                return Err(FetchError::TooLarge { limit });
            }
        }
        if first_read
            && self
                .expected
                .is_some_and(|expected| self.written < expected)
        {
            // More than one read: worth a name that a crash cannot take away.
            self.out
                .name_part()
                .map_err(|source| self.file.write_error(source))?;
        }
        self.download.received(len);
        Ok(())
    }

    async fn write_out(&mut self, _quiet: bool) -> Result<(), FetchError> {
        self.out
            .flush_buffer()
            .await
            .map_err(|source| self.file.write_error(source))?;
        self.pending.save(&self.out)
    }
}

impl Download<'_> {
    /// Streams the body into `file` from byte `extent.start`, then checks its length (and
    /// digest). Returns the file, complete, to land under its final name.
    pub(super) async fn stream(
        &mut self,
        mut response: Response,
        file: &FileFor<'_>,
        extent: &Extent,
    ) -> Result<Part, FetchError> {
        let start = extent.start;
        // The length of the body as read: a body that reqwest decodes (`--compressed` and a
        // Content-Encoding it knows) has none, so the Content-Length of the encoded bytes is
        // never compared with the decoded ones; an unencoded body is still checked.
        let expected = response.content_length().map(|len| start + len);
        self.tracker().set_length(extent.size.or(expected));
        self.tracker().set_position(start);
        let hasher = self.digest_part(file, start)?;
        let body_len = expected.map(|e| e - start);
        // What the `.part` holds, beside it: written when the body first goes to disk (a
        // pause, or every write-out), or when the download stops without landing, so a crash
        // leaves what `-c` needs to resume this version only; a body that lands at once never
        // writes one. Made before the sink, so that it is dropped after it.
        let stored = self.stored_validator();
        let pending = PendingRecord {
            file,
            record: (stored.is_some() || extent.size.is_some())
                .then(|| Record::in_order(stored, extent.size)),
        };
        let out = Sink::new(file.open(start, body_len)?, body_len)
            .map_err(|source| file.write_error(source))?;
        let pump = self.pump();
        let max_filesize = self.policy().max_filesize;
        let mut drain = InOrder {
            download: self,
            file,
            out,
            hasher,
            start,
            written: start,
            expected,
            max_filesize,
            pending,
        };
        let end = pump.run(&mut response, &mut drain).await;
        drain.finish(end, extent).await
    }
}

impl InOrder<'_, '_> {
    /// Writes out what arrived, whatever happened (a retry resumes from it; an unnamed file
    /// becomes the `.part` when dropped), then judges the body by how the pump `end`ed and
    /// by its length; complete, it is ready to land.
    async fn finish(
        self,
        end: Result<End, FetchError>,
        extent: &Extent,
    ) -> Result<Part, FetchError> {
        let InOrder {
            download,
            file,
            out,
            hasher,
            written,
            expected,
            mut pending,
            ..
        } = self;
        let done = out.finish().await;
        let broken = match end {
            Ok(End::Ended | End::Full) => None,
            Ok(End::Broken(err)) => Some(match expected {
                Some(expected) => FetchError::from_body_error(err, written, expected),
                None => FetchError::from_reqwest(err),
            }),
            Err(err) => return Err(err),
        };
        let done = done.map_err(|source| file.write_error(source))?;
        if let Some(err) = broken {
            return Err(err);
        }
        match expected {
            Some(expected) if written < expected => Err(FetchError::ShortBody {
                got: written,
                expected,
                cause: None,
            }),
            Some(expected) if written > expected => Err(FetchError::LongBody { expected }),
            // A 206 is complete only at the end of the file: the rest is another request's.
            _ if extent.range.is_some() && extent.size.is_some_and(|size| written < size) => {
                drop(done);
                Err(FetchError::ShortBody {
                    got: written,
                    expected: extent.size.unwrap_or_default(),
                    cause: Some("the server's range ended before the file's end".to_owned()),
                })
            }
            _ => {
                download.check_digest(hasher)?;
                // Complete: it lands now, and needs no record.
                pending.record = None;
                Ok(done)
            }
        }
    }
}

/// The record of a body written in order, until it is on disk.
struct PendingRecord<'a> {
    file: &'a FileFor<'a>,
    /// `None` once written (or when there is nothing worth recording).
    record: Option<Record>,
}

impl PendingRecord<'_> {
    /// Writes the record if the body's file has its `.part` name.
    fn save(&mut self, out: &Sink) -> Result<(), FetchError> {
        if out.is_named() {
            if let Some(record) = self.record.take() {
                self.file.save_record(&record)?;
            }
        }
        Ok(())
    }
}

impl Drop for PendingRecord<'_> {
    fn drop(&mut self) {
        // Stopped before landing (a fault, a final error, Ctrl-C): the `.part` it leaves
        // gets its record. Nowhere to report a failure from here: without it, `-c` trusts
        // the `.part` as bytes in order, without If-Range.
        if let Some(record) = self.record.take() {
            if self.file.has_part() {
                let _ = self.file.save_record(&record);
            }
        }
    }
}

//! The crash-safe record beside a partial download (`NAME.part.fbstate`, as aria2 keeps a
//! control file): which version of the file the `.part` holds (its ETag or Last-Modified),
//! the file's total size, and which of its bytes are known written.
//!
//! The rules that make it safe:
//! - a record is replaced whole (a temporary file, then a rename), never edited in place, so
//!   a crash leaves the old record or the new one;
//! - it is written only after the bytes it describes were handed to the file (and, for the
//!   ranges of a segmented download, synced to the disk), so it never claims more than is
//!   there;
//! - a segmented download writes its record before it preallocates the `.part`, so a
//!   preallocated `.part` (with holes) never exists without a record saying what it holds;
//! - a record that cannot be read or parsed proves nothing: the `.part` is started over.

use serde::{Deserialize, Serialize};

/// The largest record read back (anything larger is not one of ours).
pub(crate) const MAX_RECORD: u64 = 64 * 1024;
/// The tag that starts every record, with its version.
const FORMAT: &str = "fetchbench-part-1";

/// What a `.part` holds, as its download last recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Record {
    format: String,
    /// The validator of the body the bytes came from (ETag, else Last-Modified), as sent.
    pub(crate) validator: Option<String>,
    /// The file's size, when the server gave it.
    pub(crate) total: Option<u64>,
    /// `None`: the bytes were written in order from the start, so the `.part`'s length is
    /// what it holds. `Some`: the `[start, end)` ranges known written (a segmented download
    /// into a preallocated `.part`, whose length says nothing).
    pub(crate) ranges: Option<Vec<(u64, u64)>>,
}

impl Record {
    /// A record for a body written in order from the start.
    pub(crate) fn in_order(validator: Option<String>, total: Option<u64>) -> Record {
        Record {
            format: FORMAT.to_owned(),
            validator,
            total,
            ranges: None,
        }
    }

    /// A record for a segmented download, with the ranges written so far.
    pub(crate) fn segmented(
        validator: Option<String>,
        total: u64,
        ranges: Vec<(u64, u64)>,
    ) -> Record {
        Record {
            format: FORMAT.to_owned(),
            validator,
            total: Some(total),
            ranges: Some(ranges),
        }
    }

    /// Parses a record; `None` for anything that is not a record of this format.
    pub(crate) fn parse(text: &[u8]) -> Option<Record> {
        let record: Record = serde_json::from_slice(text).ok()?;
        (record.format == FORMAT).then_some(record)
    }

    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        // A record of plain fields always serialises.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The bytes from the file's start that this record proves are in a `.part` of `len`
    /// bytes: all of them when written in order (never past the total), else the ranges'
    /// unbroken run from byte 0.
    pub(crate) fn proven(&self, len: u64) -> u64 {
        let len = self.total.map_or(len, |total| len.min(total));
        let Some(ranges) = &self.ranges else {
            return len;
        };
        let mut sorted = ranges.clone();
        sorted.sort_unstable();
        let mut prefix = 0;
        for (start, end) in sorted {
            if start > prefix {
                break;
            }
            prefix = prefix.max(end);
        }
        prefix.min(len)
    }

    /// Whether a `.part` of `len` bytes holds the whole file, as this record proves.
    pub(crate) fn complete(&self, len: u64) -> bool {
        self.total
            .is_some_and(|total| len == total && self.proven(len) == total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_records_trust_the_length_up_to_the_total() {
        let record = Record::in_order(Some("\"v1\"".into()), Some(100));
        assert_eq!(record.proven(40), 40);
        assert_eq!(record.proven(150), 100);
        assert!(record.complete(100));
        assert!(!record.complete(99));
        assert!(!Record::in_order(None, None).complete(10));
    }

    #[test]
    fn segmented_records_trust_only_the_run_from_zero() {
        let record = Record::segmented(None, 100, vec![(50, 60), (0, 20), (20, 30), (75, 100)]);
        assert_eq!(record.proven(100), 30);
        // A `.part` cut shorter than the ranges claim proves only its length.
        assert_eq!(record.proven(10), 10);
        assert!(!record.complete(100));
        let whole = Record::segmented(None, 100, vec![(0, 50), (50, 100)]);
        assert!(whole.complete(100));
        // Preallocated but nothing written: nothing proven.
        assert_eq!(Record::segmented(None, 100, vec![]).proven(100), 0);
    }

    #[test]
    fn only_records_of_this_format_parse() {
        let record = Record::in_order(Some("x".into()), None);
        assert_eq!(Record::parse(&record.to_bytes()), Some(record));
        assert_eq!(Record::parse(b"{}"), None);
        assert_eq!(Record::parse(b"garbage"), None);
        assert_eq!(
            Record::parse(br#"{"format":"other","validator":null,"total":1,"ranges":null}"#),
            None
        );
    }
}

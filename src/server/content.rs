//! Synthetic content: a served file's bytes as a pure function of its name and offset, and
//! the check of a downloaded file against them.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use anyhow::{Context, bail};

/// Buffer size used by [`verify_file`].
const VERIFY_BUFFER: usize = 256 * 1024;

/// Writes the bytes of synthetic file `name` starting at byte `offset` into
/// `buf` (`buf.len()` bytes; files are conceptually infinite, the `size` only
/// truncates them).
///
/// The content is defined as follows, so other clients can reimplement it:
///
/// 1. `seed` = 64-bit FNV-1a of the UTF-8 bytes of `name`: start with
///    `h = 0xcbf29ce484222325`; for each byte `b`: `h = (h ^ b) * 0x100000001b3`
///    (wrapping).
/// 2. The file is a sequence of 8-byte blocks; block `k` (bytes `8k..8k+8`) is
///    `splitmix64(seed ^ k)` in little-endian byte order, where (all
///    arithmetic wrapping on `u64`):
///    ```text
///    z = x + 0x9e3779b97f4a7c15
///    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
///    z = (z ^ (z >> 27)) * 0x94d049bb133111eb
///    splitmix64(x) = z ^ (z >> 31)
///    ```
/// 3. Byte `i` of the file is byte `i % 8` of block `i / 8`.
///
/// Different names give unrelated content and every offset has its own
/// block, so swapped files and shifted ranges are detected.
#[cfg(test)]
pub(crate) fn fill(name: &str, offset: u64, buf: &mut [u8]) {
    fill_seeded(name_seed(name), offset, buf);
}

/// Checks that the file at `path` holds exactly the `size` bytes of synthetic
/// file `name`, reading it in bounded memory.
///
/// Errors name the path and, for content errors, the first differing offset.
pub fn verify_file(path: &Path, name: &str, size: u64) -> anyhow::Result<()> {
    let shown = path.display();
    let mut file = File::open(path).with_context(|| format!("failed to open {shown}"))?;
    let seed = name_seed(name);
    let mut actual = vec![0u8; VERIFY_BUFFER];
    let mut expected = vec![0u8; VERIFY_BUFFER];
    let mut offset = 0u64;
    loop {
        let n =
            read_some(&mut file, &mut actual).with_context(|| format!("failed to read {shown}"))?;
        if n == 0 {
            break;
        }
        let wanted = usize::try_from(size - offset).map_or(n, |left| left.min(n));
        fill_seeded(seed, offset, &mut expected[..wanted]);
        if let Some(i) = first_difference(&actual[..wanted], &expected[..wanted]) {
            bail!(
                "{shown}: byte at offset {} is 0x{:02x}, expected 0x{:02x} (content of {name:?})",
                offset + i as u64,
                actual[i],
                expected[i]
            );
        }
        if wanted < n {
            bail!("{shown}: longer than the expected {size} bytes");
        }
        offset += n as u64;
    }
    if offset < size {
        bail!("{shown}: only {offset} bytes, expected {size}");
    }
    Ok(())
}

/// 64-bit FNV-1a hash of the name: the seed of its content.
pub(super) fn name_seed(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn block_bytes(seed: u64, block: u64) -> [u8; 8] {
    splitmix64(seed ^ block).to_le_bytes()
}

/// [`fill`] for an already hashed name: a partial leading block, whole
/// blocks, then a partial trailing block.
pub(super) fn fill_seeded(seed: u64, offset: u64, buf: &mut [u8]) {
    let mut block = offset / 8;
    let skip = (offset % 8) as usize;
    let head_len = if skip == 0 {
        0
    } else {
        (8 - skip).min(buf.len())
    };
    let (head, rest) = buf.split_at_mut(head_len);
    if !head.is_empty() {
        head.copy_from_slice(&block_bytes(seed, block)[skip..skip + head_len]);
        block += 1;
    }
    let mut whole = rest.chunks_exact_mut(8);
    for chunk in &mut whole {
        chunk.copy_from_slice(&block_bytes(seed, block));
        block += 1;
    }
    let tail = whole.into_remainder();
    let tail_len = tail.len();
    tail.copy_from_slice(&block_bytes(seed, block)[..tail_len]);
}

/// One `read`, retried on `Interrupted`.
fn read_some(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match reader.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            result => return result,
        }
    }
}

fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter().zip(b).position(|(x, y)| x != y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::testing::expected;

    #[test]
    fn fill_matches_independent_reference_values() {
        // Computed with a separate Python implementation of the documented formula.
        assert_eq!(name_seed("file-0001.bin"), 0xa89e_0a07_1de0_0a92);
        assert_eq!(name_seed(""), 0xcbf2_9ce4_8422_2325);
        let mut buf = [0u8; 16];
        fill("file-0001.bin", 0, &mut buf);
        assert_eq!(
            buf,
            *b"\x8f\x31\x64\x3a\xa8\x20\xb2\x50\xcb\xc4\xc5\xf2\x44\xf7\x13\xee"
        );
        let mut buf = [0u8; 11];
        fill("file-0001.bin", 5, &mut buf);
        assert_eq!(buf, *b"\x20\xb2\x50\xcb\xc4\xc5\xf2\x44\xf7\x13\xee");
        let mut buf = [0u8; 10];
        fill("a", 1_000_003, &mut buf);
        assert_eq!(buf, *b"\x3b\xf9\x82\xc1\xb0\x33\x6e\x24\xce\x65");
    }

    #[test]
    fn fill_at_unaligned_offsets_equals_slice_of_larger_fill() {
        let whole = expected("x.bin", 0..200);
        for offset in 0..20u64 {
            for len in 0..40usize {
                let mut part = vec![0u8; len];
                fill("x.bin", offset, &mut part);
                let at = offset as usize;
                assert_eq!(part, whole[at..at + len], "offset {offset}, len {len}");
            }
        }
    }

    #[test]
    fn fill_depends_on_name_and_offset() {
        let a = expected("a.bin", 0..64);
        assert_ne!(a, expected("b.bin", 0..64));
        assert_ne!(a, expected("a.bin", 1..65));
        assert_ne!(a, expected("a.bin", 8..72));
        // Not trivially periodic over a few blocks.
        assert_ne!(a[..8], a[8..16]);
    }

    #[test]
    fn fill_handles_offsets_near_u64_max() {
        let offset = u64::MAX - 20;
        let whole = expected("big", offset..u64::MAX);
        let mut part = [0u8; 7];
        fill("big", offset + 3, &mut part);
        assert_eq!(part, whole[3..10]);
    }

    #[test]
    fn verify_file_accepts_exact_content() {
        let dir = tempfile::tempdir().expect("tempdir");
        for size in [0u64, 1, 7, 300_000] {
            let path = dir.path().join(format!("ok-{size}"));
            std::fs::write(&path, expected("f.bin", 0..size)).expect("write");
            verify_file(&path, "f.bin", size).expect("valid file");
        }
    }

    #[test]
    fn verify_file_reports_first_bad_offset_and_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("corrupt.bin");
        let mut data = expected("f.bin", 0..300_000);
        data[270_001] ^= 0x40;
        data[290_000] ^= 0x01;
        std::fs::write(&path, &data).expect("write");
        let err = format!("{:#}", verify_file(&path, "f.bin", 300_000).unwrap_err());
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(err.contains("offset 270001"), "{err}");
    }

    #[test]
    fn verify_file_rejects_wrong_name_and_wrong_length() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f.bin");
        std::fs::write(&path, expected("f.bin", 0..1000)).expect("write");
        let err = format!("{:#}", verify_file(&path, "g.bin", 1000).unwrap_err());
        assert!(err.contains("offset 0"), "{err}");
        let err = format!("{:#}", verify_file(&path, "f.bin", 1001).unwrap_err());
        assert!(err.contains("only 1000 bytes, expected 1001"), "{err}");
        let err = format!("{:#}", verify_file(&path, "f.bin", 999).unwrap_err());
        assert!(err.contains("longer than the expected 999 bytes"), "{err}");
        let missing = dir.path().join("missing");
        let err = format!("{:#}", verify_file(&missing, "f.bin", 1).unwrap_err());
        assert!(
            err.contains("failed to open") && err.contains("missing"),
            "{err}"
        );
    }
}

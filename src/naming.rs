//! File names: derived from URLs, made safe, and kept distinct within one run.
//!
//! A name is always a single plain path component: whatever a URL (or a server) says, nothing is
//! ever written outside the output directory.

use std::collections::HashSet;
use std::sync::Mutex;

use percent_encoding::percent_decode_str;
use reqwest::Url;

use crate::fetch::Target;

/// The name used when a URL's path gives none (`http://host/`, `http://host/dir/`).
pub const DEFAULT_NAME: &str = "index.html";

/// Suffix of the file a download streams into before it is complete.
pub const PART_SUFFIX: &str = ".part";

/// Longest name we produce, in bytes; leaves room under the usual 255-byte limit for the
/// collision counter and the `.part` suffix.
const MAX_NAME_BYTES: usize = 200;

/// The safe file name for a URL: its last path segment, percent-decoded.
pub fn name_from_url(url: &Url) -> String {
    let segment = url
        .path_segments()
        .and_then(|mut segments| segments.next_back())
        .unwrap_or("");
    sanitize(&percent_decode_str(segment).decode_utf8_lossy())
}

/// The safe file name a `Content-Disposition` header suggests, if it suggests one.
///
/// `filename*` (RFC 6266 / RFC 8187, `UTF-8''percent%20encoded`) wins over `filename`; either
/// is then sanitised exactly like a URL's name.
pub fn name_from_content_disposition(header: &str) -> Option<String> {
    let mut plain = None;
    let mut extended = None;
    for (key, value) in disposition_params(header) {
        match key.to_ascii_lowercase().as_str() {
            "filename*" => extended = decode_extended_value(&value),
            "filename" => plain = Some(value),
            _ => {}
        }
    }
    extended
        .or(plain)
        .filter(|name| !name.trim().is_empty())
        .map(|name| sanitize(&name))
}

/// The `key=value` parameters after the disposition type; values may be quoted strings.
fn disposition_params(header: &str) -> Vec<(String, String)> {
    let mut params = Vec::new();
    let Some((_, mut rest)) = header.split_once(';') else {
        return params;
    };
    loop {
        rest = rest.trim_start_matches([';', ' ', '\t']);
        let Some((key, after)) = rest.split_once('=') else {
            return params;
        };
        let after = after.trim_start();
        let (value, remainder) = match after.strip_prefix('"') {
            Some(quoted) => read_quoted(quoted),
            None => {
                let end = after.find(';').unwrap_or(after.len());
                (after[..end].trim().to_owned(), &after[end..])
            }
        };
        params.push((key.trim().to_owned(), value));
        rest = remainder;
    }
}

/// A quoted string's content (backslash escapes undone) and what follows its closing quote.
fn read_quoted(s: &str) -> (String, &str) {
    let mut value = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return (value, &s[i + 1..]),
            '\\' => value.extend(chars.next().map(|(_, c)| c)),
            c => value.push(c),
        }
    }
    (value, "")
}

/// `charset'language'percent-encoded` → text (UTF-8, or ISO-8859-1 byte for byte).
fn decode_extended_value(value: &str) -> Option<String> {
    let mut parts = value.splitn(3, '\'');
    let (charset, _language, encoded) = (parts.next()?, parts.next()?, parts.next()?);
    let bytes: Vec<u8> = percent_decode_str(encoded).collect();
    if charset.eq_ignore_ascii_case("iso-8859-1") {
        Some(bytes.iter().map(|&b| char::from(b)).collect())
    } else {
        Some(String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// Turns an untrusted name into one plain file name.
///
/// Keeps only the last component after any `/` or `\`, drops control characters (NUL
/// included), strips leading dots and spaces (no `..`, no hidden files) and trailing dots and
/// spaces, and caps the length, keeping the extension. An empty result becomes
/// [`DEFAULT_NAME`].
pub fn sanitize(raw: &str) -> String {
    let last = raw
        .rsplit(['/', '\\'])
        .map(|part| part.trim_matches(|c: char| c == '.' || c.is_whitespace()))
        .find(|part| !part.is_empty())
        .unwrap_or("");
    let cleaned: String = last.chars().filter(|c| !c.is_control()).collect();
    let cleaned = cleaned.trim_matches(|c: char| c == '.' || c.is_whitespace());
    if cleaned.is_empty() {
        return DEFAULT_NAME.to_owned();
    }
    truncate_keeping_extension(cleaned, MAX_NAME_BYTES)
}

fn truncate_keeping_extension(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_owned();
    }
    let (stem, ext) = split_extension(name);
    let ext = if ext.len() <= 16 { ext } else { "" };
    let mut end = max - ext.len();
    while !stem.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ext}", &stem[..end])
}

/// Splits `name` into stem and extension (with its dot). `.tar.*` counts as one extension, so
/// `a.tar.gz` gets the counter as `a-1.tar.gz`.
fn split_extension(name: &str) -> (&str, &str) {
    let Some(dot) = name.rfind('.').filter(|&i| i > 0) else {
        return (name, "");
    };
    let dot = match name[..dot].rfind(".tar") {
        Some(tar) if tar > 0 && tar + 4 == dot => tar,
        _ => dot,
    };
    name.split_at(dot)
}

/// Where a download gets its file name: the registry of the run, or (in a worker process) the
/// parent's registry, asked over a pipe.
pub trait Names: Send + Sync {
    /// The name reserved up front for URL number `index` (its label before a response).
    fn planned(&self, index: usize) -> String;
    /// The name download `index` saves under, given the (safe) name its response asks for.
    fn claim(&self, index: usize, wanted: String) -> String;
}

/// The names taken in one run, so that two URLs never write the same file.
///
/// Names are first reserved for every URL in input order (so that `a.png` goes to the first URL
/// that asks for it, whatever the mode's timing); a download whose final URL, after redirects,
/// gives another name claims that one when its response arrives.
#[derive(Debug)]
pub struct NameRegistry {
    planned: Vec<Planned>,
    taken: Mutex<HashSet<String>>,
}

#[derive(Debug)]
struct Planned {
    wanted: String,
    reserved: String,
}

impl NameRegistry {
    /// Reserves a name for each target, in order: the name its input gave, else its URL's.
    pub fn new(targets: &[Target]) -> Self {
        let mut taken = HashSet::new();
        let planned = targets
            .iter()
            .map(|target| {
                let wanted = target
                    .name
                    .clone()
                    .unwrap_or_else(|| name_from_url(&target.url));
                let reserved = claim(&mut taken, &wanted);
                Planned { wanted, reserved }
            })
            .collect();
        NameRegistry {
            planned,
            taken: Mutex::new(taken),
        }
    }
}

impl Names for NameRegistry {
    fn planned(&self, index: usize) -> String {
        self.planned[index].reserved.clone()
    }

    /// The one reserved up front when it matches `wanted`, else a newly claimed distinct one.
    fn claim(&self, index: usize, wanted: String) -> String {
        let planned = &self.planned[index];
        if wanted == planned.wanted {
            return planned.reserved.clone();
        }
        // A poisoned lock only means another download panicked mid-claim; the set is intact.
        let mut taken = self.taken.lock().unwrap_or_else(|e| e.into_inner());
        claim(&mut taken, &wanted)
    }
}

/// Takes `wanted`, or the first free `stem-N.ext`. A name also blocks its `.part` twin.
fn claim(taken: &mut HashSet<String>, wanted: &str) -> String {
    let is_free = |taken: &HashSet<String>, name: &str| {
        !taken.contains(name)
            && !taken.contains(&format!("{name}{PART_SUFFIX}"))
            && !name
                .strip_suffix(PART_SUFFIX)
                .is_some_and(|base| taken.contains(base))
    };
    let (stem, ext) = split_extension(wanted);
    let name = (0..)
        .map(|n| match n {
            0 => wanted.to_owned(),
            n => format!("{stem}-{n}{ext}"),
        })
        .find(|name| is_free(taken, name))
        .unwrap_or_else(|| wanted.to_owned());
    taken.insert(name.clone());
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    fn targets(urls: &[Url]) -> Vec<Target> {
        urls.iter()
            .enumerate()
            .map(|(index, url)| Target {
                index,
                url: url.clone(),
                name: None,
                sha256: None,
            })
            .collect()
    }

    #[test]
    fn last_segment_percent_decoded() {
        assert_eq!(name_from_url(&url("http://h/a/b%20c.txt?x=1")), "b c.txt");
        assert_eq!(name_from_url(&url("http://h/files/a.bin?size=3")), "a.bin");
    }

    #[test]
    fn empty_paths_get_index_html() {
        assert_eq!(name_from_url(&url("http://h")), "index.html");
        assert_eq!(name_from_url(&url("http://h/dir/")), "index.html");
    }

    #[test]
    fn traversal_becomes_a_plain_name() {
        assert_eq!(name_from_url(&url("http://h/x/..%2F..%2Fevil")), "evil");
        assert_eq!(name_from_url(&url("http://h/x/..%5C..%5Cevil")), "evil");
        assert_eq!(name_from_url(&url("http://h/%2E%2E")), "index.html");
        assert_eq!(sanitize("../../etc/passwd"), "passwd");
        assert_eq!(sanitize("C:\\x"), "x");
        assert_eq!(sanitize("/etc/x/"), "x");
        assert_eq!(sanitize(".."), "index.html");
        assert_eq!(sanitize(".hidden"), "hidden");
    }

    #[test]
    fn control_characters_and_nul_are_dropped() {
        assert_eq!(sanitize("a\0b\nc\x1b.txt"), "abc.txt");
        assert_eq!(name_from_url(&url("http://h/a%00b%0A.txt")), "ab.txt");
    }

    #[test]
    fn long_names_are_capped_keeping_the_extension() {
        let long = format!("{}.tar.gz", "é".repeat(300));
        let name = sanitize(&long);
        assert!(name.len() <= MAX_NAME_BYTES, "{} bytes", name.len());
        assert!(name.ends_with("é.tar.gz"), "{name}");
    }

    #[test]
    fn collisions_get_counters_in_input_order() {
        let urls = [
            url("http://h/a.png"),
            url("http://g/a.png"),
            url("http://h/x/a.png"),
            url("http://h/b.tar.gz"),
            url("http://g/b.tar.gz"),
        ];
        let names = NameRegistry::new(&targets(&urls));
        let got: Vec<_> = (0..urls.len()).map(|i| names.planned(i)).collect();
        assert_eq!(
            got,
            ["a.png", "a-1.png", "a-2.png", "b.tar.gz", "b-1.tar.gz"]
        );
    }

    #[test]
    fn redirected_names_are_claimed_distinctly() {
        let urls = [url("http://h/a"), url("http://h/b")];
        let names = NameRegistry::new(&targets(&urls));
        assert_eq!(names.claim(0, "a".into()), "a");
        assert_eq!(names.claim(1, "a".into()), "a-1");
    }

    #[test]
    fn content_disposition_names() {
        let cd = name_from_content_disposition;
        assert_eq!(
            cd("attachment; filename=\"report.pdf\"").as_deref(),
            Some("report.pdf")
        );
        assert_eq!(
            cd("attachment; filename=plain.txt; size=3").as_deref(),
            Some("plain.txt")
        );
        assert_eq!(
            cd("attachment; filename=\"fallback.txt\"; filename*=UTF-8''na%C3%AFve%20file.txt")
                .as_deref(),
            Some("naïve file.txt")
        );
        assert_eq!(
            cd("attachment; filename*=iso-8859-1'en'caf%E9").as_deref(),
            Some("café")
        );
        assert_eq!(
            cd("attachment; filename=\"a\\\"b;c\"").as_deref(),
            Some("a\"b;c")
        );
        assert_eq!(cd("inline").as_deref(), None);
        assert_eq!(cd("attachment; filename=\"\"").as_deref(), None);
    }

    #[test]
    fn hostile_content_disposition_names_stay_plain() {
        let cd = |v: &str| name_from_content_disposition(v).unwrap();
        assert_eq!(cd("attachment; filename=\"../../evil\""), "evil");
        assert_eq!(cd("attachment; filename=\"/etc/x\""), "x");
        assert_eq!(cd("attachment; filename=\"C:\\\\x\""), "x");
        assert_eq!(cd("attachment; filename*=UTF-8''..%2F..%2Fevil"), "evil");
        assert_eq!(cd("attachment; filename=\"..\""), "index.html");
        let long = cd(&format!(
            "attachment; filename=\"{}.bin\"",
            "x".repeat(1000)
        ));
        assert!(
            long.len() <= MAX_NAME_BYTES && long.ends_with(".bin"),
            "{long}"
        );
    }

    #[test]
    fn names_given_by_the_input_are_reserved_first_come() {
        let mut given = targets(&[url("http://h/a"), url("http://h/b")]);
        given[1].name = Some("a".to_owned());
        let names = NameRegistry::new(&given);
        assert_eq!(
            (names.planned(0), names.planned(1)),
            ("a".into(), "a-1".into())
        );
    }

    #[test]
    fn a_name_blocks_its_part_file() {
        let urls = [url("http://h/a"), url("http://h/a.part")];
        let names = NameRegistry::new(&targets(&urls));
        assert_eq!(names.planned(1), "a-1.part");
    }
}

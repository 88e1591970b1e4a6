//! File names: derived from URLs, made safe, and kept distinct within one run.
//!
//! A name is always a single plain path component: whatever a URL (or a server) says, nothing is
//! ever written outside the output directory.

use std::collections::HashSet;

use std::sync::Mutex;

use percent_encoding::percent_decode_str;
use reqwest::header;
use reqwest::{Response, Url};

use super::Downloader;
use super::output::{OutputDir, PART_SUFFIX};
use crate::model::Target;
use crate::sync::lock;

/// The name used when a URL's path gives none (`http://host/`, `http://host/dir/`).
pub(crate) const DEFAULT_NAME: &str = "index.html";

/// Longest name we produce, in bytes; leaves room under the usual 255-byte limit for the
/// collision counter and the `.part` suffix.
const MAX_NAME_BYTES: usize = 200;

/// The safe file name for a URL: its last path segment, percent-decoded.
pub(crate) fn name_from_url(url: &Url) -> String {
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
pub(crate) fn name_from_content_disposition(header: &str) -> Option<String> {
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
/// Drops control characters (NUL included) and the invisible characters that make a name
/// read other than it is (bidi controls such as U+202E, line and paragraph separators), keeps
/// only the last component after any `/` or `\`, strips leading dots and spaces (no `..`, no
/// hidden files) and trailing dots and spaces, and caps the length, keeping the extension. An
/// empty result becomes [`DEFAULT_NAME`].
pub(crate) fn sanitize(raw: &str) -> String {
    let visible: String = raw.chars().filter(|&c| !is_hidden_char(c)).collect();
    let last = visible
        .rsplit(['/', '\\'])
        .map(|part| part.trim_matches(|c: char| c == '.' || c.is_whitespace()))
        .find(|part| !part.is_empty())
        .unwrap_or("");
    let cleaned = last.trim_matches(|c: char| c == '.' || c.is_whitespace());
    if cleaned.is_empty() {
        return DEFAULT_NAME.to_owned();
    }
    truncate_keeping_extension(cleaned, MAX_NAME_BYTES)
}

/// Characters a file name never keeps: controls, and the invisible ones that change how the
/// rest reads (`invoice\u{202E}fdp.exe` shows as `invoiceexe.pdf`).
fn is_hidden_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'                  // Arabic letter mark
                | '\u{200B}'            // zero-width space
                | '\u{200E}'..='\u{200F}' // left-to-right and right-to-left marks
                | '\u{2028}'..='\u{2029}' // line and paragraph separators
                | '\u{202A}'..='\u{202E}' // bidi embeddings and overrides
                | '\u{2066}'..='\u{2069}' // bidi isolates
                | '\u{FEFF}' // byte order mark
        )
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

/// Where a download gets its file name when its response asks for another than the one
/// reserved for it: the run's registry, or (in a worker process) the parent's, asked over a
/// pipe.
pub(crate) trait Names: Send + Sync {
    /// A distinct name for `target`, whose response asks for the (safe) name `wanted`, which
    /// is not the one reserved for it ([`granted`] answers that one).
    fn grant(&self, target: &Target, wanted: String) -> String;
}

/// The name `target` saves under when its response asks for `wanted`: the one reserved for
/// it when its line was read, if that is `wanted`; else the one `names` grants.
pub(crate) fn granted(names: &dyn Names, target: &Target, wanted: String) -> String {
    if is_reserved_for(target, &wanted) {
        // Reserved when its line was read (made distinct from the other URLs' then).
        return target.planned.clone();
    }
    names.grant(target, wanted)
}

impl Downloader {
    /// The file name for `target`'s first response: the server's suggestion when asked and
    /// given, else the final URL's.
    pub(super) fn name_for(&self, target: &Target, response: &Response) -> String {
        if target.name.is_some() {
            // The input named the file: that name was reserved when its line was read.
            return target.planned.clone();
        }
        let suggested = self
            .policy
            .content_disposition
            .then(|| response.headers().get(header::CONTENT_DISPOSITION))
            .flatten()
            .and_then(|value| value.to_str().ok())
            .and_then(name_from_content_disposition);
        let wanted = suggested.unwrap_or_else(|| name_from_url(response.url()));
        self.name_asked(target, wanted)
    }

    /// The name `target` gets when its response asks for `wanted` (a redirect's, or
    /// Content-Disposition's; in a worker process, its child asks); says so when a file
    /// already in the output directory keeps `wanted`.
    pub(crate) fn name_asked(&self, target: &Target, wanted: String) -> String {
        let name = granted(&*self.names, target, wanted.clone());
        // The name reserved for it is no rename to speak of, even with a counter: that was
        // decided among the run's own URLs when its line was read.
        let kept = name != wanted && !is_reserved_for(target, &wanted);
        if kept && self.output.holds(&wanted) {
            self.progress.println(&format!(
                "renamed {}: {wanted} is already in {}, so it is saved as {name}",
                crate::secret::url(&target.url),
                self.output.path().display()
            ));
        }
        name
    }
}

/// The names taken in one run, so that two URLs never write the same file.
///
/// Each URL reserves its name as its line is read, in input order (so `a.png` goes to the
/// first URL that asks for it); a download whose final URL (after redirects) or
/// Content-Disposition gives another name asks for that one when its response arrives.
///
/// Only a 64-bit hash of each name is kept: 8 bytes in a hash set, about 16 bytes of memory per
/// URL with the set's spare room, whatever the names' lengths. Two names with the same hash
/// (odds about n²/2⁶⁵: 3·10⁻⁸ for a million names) would give the second a needless `-1`.
#[derive(Debug, Default)]
pub(crate) struct NameRegistry {
    taken: Mutex<HashSet<u64>>,
    /// The output directory, whose files a name chosen by a server never replaces.
    existing: Option<OnDisk>,
}

#[derive(Debug)]
struct OnDisk {
    output: OutputDir,
    resume: bool,
}

impl NameRegistry {
    /// Takes `wanted`, or the first free `stem-N.ext`. A name also blocks its `.part` twin.
    pub(crate) fn reserve(&self, wanted: &str) -> String {
        self.take(wanted, |_| false)
    }

    /// Like [`NameRegistry::reserve`], also skipping names for which `also_taken` holds.
    fn take(&self, wanted: &str, also_taken: impl Fn(&str) -> bool) -> String {
        let mut taken = lock(&self.taken);
        let is_free = |taken: &HashSet<u64>, name: &str| {
            !taken.contains(&hash(name))
                && !taken.contains(&hash(&format!("{name}{PART_SUFFIX}")))
                && !name
                    .strip_suffix(PART_SUFFIX)
                    .is_some_and(|base| taken.contains(&hash(base)))
                && !also_taken(name)
        };
        let (stem, ext) = split_extension(wanted);
        let name = (0..)
            .map(|n| match n {
                0 => wanted.to_owned(),
                n => format!("{stem}-{n}{ext}"),
            })
            .find(|name| is_free(&taken, name))
            .unwrap_or_else(|| wanted.to_owned());
        taken.insert(hash(&name));
        name
    }

    /// Makes the names a server chooses (those [`Names::grant`] gets)
    /// skip what is already in `output`: a name itself (of any kind), or its `.part`, unless
    /// resuming (`-c` continues that one).
    pub(crate) fn keeping_existing(mut self, output: &OutputDir, resume: bool) -> Self {
        self.existing = Some(OnDisk {
            output: output.clone(),
            resume,
        });
        self
    }
}

impl OnDisk {
    fn taken(&self, name: &str) -> bool {
        self.output.holds(name) || (!self.resume && self.output.holds_part(name))
    }
}

impl Names for NameRegistry {
    /// A newly taken distinct one.
    fn grant(&self, _target: &Target, wanted: String) -> String {
        // The name comes from the server (a redirect, Content-Disposition): it may not
        // replace a file that was there before.
        self.take(&wanted, |name| {
            self.existing.as_ref().is_some_and(|disk| disk.taken(name))
        })
    }
}

/// Whether `wanted` is the name `target` reserved when its line was read (the one its input
/// gave, else its URL's): then the name it gets is `target.planned`.
pub(crate) fn is_reserved_for(target: &Target, wanted: &str) -> bool {
    match &target.name {
        Some(name) => name == wanted,
        None => name_from_url(&target.url) == wanted,
    }
}

/// A name's fingerprint in the registry: the same in every run (SipHash with fixed keys).
fn hash(name: &str) -> u64 {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut hasher = DefaultHasher::new();
    name.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    /// Targets for `urls`, their names reserved in order as the input reader does.
    fn targets(names: &NameRegistry, urls: &[Url]) -> Vec<Target> {
        urls.iter()
            .enumerate()
            .map(|(index, url)| Target {
                index,
                url: url.clone(),
                name: None,
                sha256: None,
                planned: names.reserve(&name_from_url(url)),
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
        let names = NameRegistry::default();
        let got: Vec<_> = targets(&names, &urls)
            .into_iter()
            .map(|t| t.planned)
            .collect();
        assert_eq!(
            got,
            ["a.png", "a-1.png", "a-2.png", "b.tar.gz", "b-1.tar.gz"]
        );
    }

    #[test]
    fn redirected_names_are_granted_distinctly() {
        let urls = [url("http://h/a"), url("http://h/b")];
        let names = NameRegistry::default();
        let targets = targets(&names, &urls);
        assert_eq!(granted(&names, &targets[0], "a".into()), "a");
        assert_eq!(granted(&names, &targets[1], "a".into()), "a-1");
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
    fn a_name_blocks_its_part_file() {
        let urls = [url("http://h/a"), url("http://h/a.part")];
        let names = NameRegistry::default();
        assert_eq!(targets(&names, &urls)[1].planned, "a-1.part");
        assert_eq!(names.reserve("b.part"), "b.part");
        assert_eq!(names.reserve("b"), "b-1");
    }

    #[test]
    fn invisible_characters_are_dropped() {
        assert_eq!(sanitize("invoice\u{202E}fdp.exe"), "invoicefdp.exe");
        assert_eq!(
            sanitize("a\u{2028}b\u{2029}c\u{200E}\u{2066}.txt"),
            "abc.txt"
        );
        assert_eq!(sanitize("\u{FEFF}x"), "x");
    }

    /// What every name we produce is: one plain, visible component, never empty or a dot
    /// name, within the length cap.
    fn is_safe_name(name: &str) -> bool {
        !name.is_empty()
            && name.len() <= MAX_NAME_BYTES
            && !name.starts_with('.')
            && !name.contains(['/', '\\'])
            && !name.chars().any(is_hidden_char)
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Text full of what hostile names are made of.
        fn hostile() -> impl Strategy<Value = String> {
            "[a-z./\\\\ \t\n\u{0}\u{202E}\u{2028}\u{2066}\u{200F}\u{FEFF}é%\"';=*]{0,300}"
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(200))]

            #[test]
            fn sanitized_names_are_always_safe(raw in prop_oneof![hostile(), any::<String>()]) {
                let name = sanitize(&raw);
                prop_assert!(is_safe_name(&name), "{raw:?} -> {name:?}");
                prop_assert_eq!(sanitize(&name), name.clone(), "not idempotent");
            }

            #[test]
            fn content_disposition_never_panics_and_gives_safe_names(
                value in prop_oneof![
                    hostile().prop_map(|v| format!("attachment; filename=\"{v}\"")),
                    hostile().prop_map(|v| format!("attachment; filename*=UTF-8''{v}")),
                    hostile().prop_map(|v| format!("attachment; filename*={v}")),
                    any::<String>(),
                ]
            ) {
                if let Some(name) = name_from_content_disposition(&value) {
                    prop_assert!(is_safe_name(&name), "{value:?} -> {name:?}");
                }
            }

            #[test]
            fn a_plain_quoted_name_round_trips(name in "[a-zA-Z0-9][a-zA-Z0-9 _-]{0,40}\\.[a-z]{1,4}") {
                let name = name.trim().to_owned();
                let header = format!("attachment; filename=\"{name}\"");
                prop_assert_eq!(name_from_content_disposition(&header), Some(name.clone()));
                let encoded: String = name.bytes().map(|b| format!("%{b:02X}")).collect();
                let header = format!("attachment; filename*=UTF-8''{encoded}");
                prop_assert_eq!(name_from_content_disposition(&header), Some(name));
            }

            #[test]
            fn names_from_any_url_path_are_safe(path in hostile()) {
                let encoded: String = path.bytes().map(|b| format!("%{b:02X}")).collect();
                if let Ok(url) = Url::parse(&format!("http://h/x/{encoded}")) {
                    let name = name_from_url(&url);
                    prop_assert!(is_safe_name(&name), "{path:?} -> {name:?}");
                }
            }
        }
    }
}

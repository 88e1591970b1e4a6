//! Credentials: `-u USER:PASS` and `.netrc` entries (`--netrc`, `--netrc-file`).
//!
//! They go only to the host of a URL given: each download's first request carries them, and
//! reqwest's redirect handling drops the `Authorization` header when a redirect leads to
//! another origin (host, port or scheme), so a redirect never takes them elsewhere.

use std::fmt;
use std::path::Path;

use anyhow::{Context, Result};
use reqwest::Url;
use serde::{Deserialize, Serialize};

/// A user name and password for HTTP basic auth.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Credentials {
    pub(crate) user: String,
    pub(crate) password: Option<String>,
}

/// Never prints the password (a `Config` is debug-printed in places).
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .finish()
    }
}

impl Credentials {
    /// `USER:PASS` (split at the first colon; `USER:` is an empty password).
    pub(crate) fn parse(text: &str) -> Result<Credentials, String> {
        match text.split_once(':') {
            Some((user, password)) if !user.is_empty() => Ok(Credentials {
                user: user.to_owned(),
                password: Some(password.to_owned()),
            }),
            _ => Err("expected USER:PASS (`USER:` for an empty password)".to_owned()),
        }
    }
}

/// Where credentials come from for a run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Auth {
    /// `-u`: for every URL given.
    pub(crate) user: Option<Credentials>,
    /// `--netrc`/`--netrc-file`: for the URLs whose host has an entry (or `default`).
    pub(crate) netrc: Option<Netrc>,
}

impl Auth {
    /// The credentials for a URL given: none when the URL carries its own (`user:pass@`,
    /// which reqwest sends), else `-u`, else the `.netrc` entry for its host.
    pub(crate) fn for_url(&self, url: &Url) -> Option<Credentials> {
        if !url.username().is_empty() {
            return None;
        }
        if let Some(user) = &self.user {
            return Some(user.clone());
        }
        self.netrc.as_ref()?.lookup(url.host_str()?)
    }
}

/// One `machine` (or `default`) entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    /// `None` for `default`.
    machine: Option<String>,
    login: Option<String>,
    password: Option<String>,
}

/// A parsed `.netrc` file.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Netrc {
    entries: Vec<Entry>,
}

/// Lists the machines, never the passwords.
impl fmt::Debug for Netrc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let machines: Vec<&str> = self
            .entries
            .iter()
            .map(|e| e.machine.as_deref().unwrap_or("default"))
            .collect();
        f.debug_struct("Netrc")
            .field("machines", &machines)
            .finish()
    }
}

impl Netrc {
    /// Reads and parses `path`.
    pub(crate) fn read(path: &Path) -> Result<Netrc> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read netrc file {}", path.display()))?;
        Netrc::parse(&text).map_err(|why| anyhow::anyhow!("{}: {why}", path.display()))
    }

    /// The entries of a netrc file, as curl reads them: whitespace-separated tokens
    /// (`"quoted"` with `\"`, `\\`, `\n`, `\r`, `\t` escapes), `machine NAME`, `default`,
    /// `login`, `password`; `account` is skipped, `macdef` up to the next empty line; a token
    /// starting with `#` comments out the rest of its line.
    pub(crate) fn parse(text: &str) -> Result<Netrc, String> {
        let tokens = tokenize(text)?;
        let mut entries: Vec<Entry> = Vec::new();
        let mut tokens = tokens.into_iter();
        while let Some((line, token)) = tokens.next() {
            let mut value = |what: &str| {
                tokens
                    .next()
                    .map(|(_, v)| v)
                    .ok_or(format!("line {line}: `{what}` without a value"))
            };
            match token.as_str() {
                "machine" => {
                    let machine = value("machine")?;
                    entries.push(Entry {
                        machine: Some(machine),
                        ..Entry::default()
                    });
                }
                "default" => entries.push(Entry::default()),
                "login" | "password" | "account" => {
                    let v = value(&token)?;
                    let entry = entries
                        .last_mut()
                        .ok_or(format!("line {line}: `{token}` before any `machine`"))?;
                    match token.as_str() {
                        "login" => entry.login = Some(v),
                        "password" => entry.password = Some(v),
                        _ => {}
                    }
                }
                // Not echoed: a stray word may be part of a password.
                _ => {
                    return Err(format!(
                        "line {line}: unexpected word (expected machine, default, login, \
                         password, account or macdef)"
                    ));
                }
            }
        }
        Ok(Netrc { entries })
    }

    /// The credentials for `host`: its `machine` entry (compared without case), else the
    /// `default` entry; an entry without `login` gives none.
    pub(crate) fn lookup(&self, host: &str) -> Option<Credentials> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let entry = self
            .entries
            .iter()
            .find(|e| {
                e.machine
                    .as_deref()
                    .is_some_and(|m| m.eq_ignore_ascii_case(host))
            })
            .or_else(|| self.entries.iter().find(|e| e.machine.is_none()))?;
        Some(Credentials {
            user: entry.login.clone()?,
            password: entry.password.clone(),
        })
    }
}

/// The tokens of a netrc file with their line numbers; `macdef` bodies and comments dropped.
fn tokenize(text: &str) -> Result<Vec<(usize, String)>, String> {
    let mut tokens = Vec::new();
    let mut in_macdef = false;
    for (n, line) in text.lines().enumerate() {
        let line_no = n + 1;
        if in_macdef {
            // A macro runs to the first empty line.
            in_macdef = !line.trim().is_empty();
            continue;
        }
        let mut chars = line.chars().peekable();
        let mut words: Vec<String> = Vec::new();
        loop {
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
            let Some(&first) = chars.peek() else { break };
            if first == '#' {
                break;
            }
            let mut word = String::new();
            if first == '"' {
                chars.next();
                loop {
                    match chars.next() {
                        None => return Err(format!("line {line_no}: unterminated quote")),
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some('n') => word.push('\n'),
                            Some('r') => word.push('\r'),
                            Some('t') => word.push('\t'),
                            Some(c) => word.push(c),
                            None => return Err(format!("line {line_no}: unterminated quote")),
                        },
                        Some(c) => word.push(c),
                    }
                }
            } else {
                while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                    word.push(c);
                }
            }
            words.push(word);
        }
        for word in words {
            if word == "macdef" {
                // `macdef NAME`: the rest of this line and the lines up to an empty one.
                in_macdef = true;
                break;
            }
            tokens.push((line_no, word));
        }
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(user: &str, password: &str) -> Option<Credentials> {
        Some(Credentials {
            user: user.to_owned(),
            password: Some(password.to_owned()),
        })
    }

    const FILE: &str = "\
# a comment line
machine files.example.com login alice password s3cret
machine other.example  # a comment after a token
  login bob
  password \"two words \\\"quoted\\\"\"
  account ignored
macdef init
  cd /pub
  binary

machine after.macdef login carol password c
default login anonymous password guest@
";

    #[test]
    fn netrc_gives_each_host_its_own_entry() {
        let netrc = Netrc::parse(FILE).unwrap();
        assert_eq!(netrc.lookup("files.example.com"), creds("alice", "s3cret"));
        // Host names are compared without case.
        assert_eq!(netrc.lookup("FILES.Example.COM"), creds("alice", "s3cret"));
        assert_eq!(
            netrc.lookup("other.example"),
            creds("bob", "two words \"quoted\"")
        );
        // The macro's lines are not entries; parsing goes on after its empty line.
        assert_eq!(netrc.lookup("after.macdef"), creds("carol", "c"));
        // No prefix or suffix matching: anything else gets `default`.
        assert_eq!(netrc.lookup("example.com"), creds("anonymous", "guest@"));
        assert_eq!(
            netrc.lookup("evil-files.example.com"),
            creds("anonymous", "guest@")
        );
    }

    #[test]
    fn without_default_an_unknown_host_gets_nothing() {
        let netrc = Netrc::parse("machine a.test login u password p\n").unwrap();
        assert_eq!(netrc.lookup("a.test"), creds("u", "p"));
        assert_eq!(netrc.lookup("b.test"), None);
        assert_eq!(netrc.lookup("127.0.0.1"), None);
        // A machine without a login gives no credentials.
        let netrc = Netrc::parse("machine a.test password p\n").unwrap();
        assert_eq!(netrc.lookup("a.test"), None);
    }

    #[test]
    fn a_machine_entry_beats_default_wherever_it_is() {
        let netrc =
            Netrc::parse("default login d password d\nmachine h login u password p").unwrap();
        assert_eq!(netrc.lookup("h"), creds("u", "p"));
        assert_eq!(netrc.lookup("x"), creds("d", "d"));
    }

    #[test]
    fn broken_netrc_files_say_where() {
        let err = Netrc::parse("machine a login").unwrap_err();
        assert!(
            err.contains("line 1") && err.contains("`login` without"),
            "{err}"
        );
        let err = Netrc::parse("login u").unwrap_err();
        assert!(err.contains("before any `machine`"), "{err}");
        // Named by its line, not echoed: a stray word may be a password's second half.
        let err = Netrc::parse("machine a\npassword two words").unwrap_err();
        assert!(
            err.contains("line 2") && err.contains("unexpected word"),
            "{err}"
        );
        assert!(!err.contains("words"), "{err}");
        let err = Netrc::parse("machine a password \"open").unwrap_err();
        assert!(err.contains("unterminated quote"), "{err}");
    }

    #[test]
    fn user_option_and_url_credentials() {
        assert_eq!(Credentials::parse("u:p:q").ok(), creds("u", "p:q"));
        assert_eq!(Credentials::parse("u:").ok(), creds("u", ""));
        assert!(Credentials::parse("u").is_err());
        assert!(Credentials::parse(":p").is_err());
        let auth = Auth {
            user: None,
            netrc: Some(Netrc::parse("machine h login n password m").unwrap()),
        };
        let url = |s: &str| Url::parse(s).unwrap();
        assert_eq!(auth.for_url(&url("http://h:8080/x")), creds("n", "m"));
        assert_eq!(auth.for_url(&url("http://other/x")), None);
        // The URL's own credentials win (reqwest sends them).
        assert_eq!(auth.for_url(&url("http://me:pw@h/x")), None);
        // -u wins over the netrc file.
        let auth = Auth {
            user: creds("u", "p"),
            ..auth
        };
        assert_eq!(auth.for_url(&url("http://h/x")), creds("u", "p"));
        assert_eq!(auth.for_url(&url("http://other/x")), creds("u", "p"));
    }

    #[test]
    fn debug_output_hides_passwords() {
        let netrc = Netrc::parse(FILE).unwrap();
        let auth = Auth {
            user: creds("u", "hunter2"),
            netrc: Some(netrc),
        };
        let shown = format!("{auth:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("s3cret"),
            "{shown}"
        );
        assert!(shown.contains("files.example.com"), "{shown}");
    }
}

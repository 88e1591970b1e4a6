//! Secrets never printed: the password of a URL's userinfo shows as `***`
//! (`http://user:***@host/f`), in every line, table, JSON field and error that names a URL.

use reqwest::Url;

/// `url` as text, its password (if any) as `***`.
pub(crate) fn url(url: &Url) -> String {
    if url.password().is_none() {
        return url.to_string();
    }
    let mut shown = url.clone();
    // Only URLs that cannot carry a password refuse one; this one has one.
    let _ = shown.set_password(Some("***"));
    shown.to_string()
}

/// `text` with the password of every `scheme://user:password@` in it as `***`: for text
/// that may hold a URL that did not parse (a list line), or an error that quotes one.
pub(crate) fn text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        // The authority: up to the path, query, fragment, or anything that ends a URL.
        let end = tail
            .find(|c: char| {
                matches!(c, '/' | '?' | '#' | '"' | '\'' | '<' | '>') || c.is_whitespace()
            })
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.split_once(':') {
                    Some((user, _)) => {
                        out.push_str(user);
                        out.push_str(":***");
                    }
                    None => out.push_str(userinfo),
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_urls_are_hidden() {
        let parsed = Url::parse("http://alice:s3cret@host:8080/f?x=1").unwrap();
        assert_eq!(url(&parsed), "http://alice:***@host:8080/f?x=1");
        let plain = Url::parse("https://host/f").unwrap();
        assert_eq!(url(&plain), "https://host/f");
        assert_eq!(
            text("list.txt:3: \"http://bob:hunter2@h/a b\" and ftp://u:p@x"),
            "list.txt:3: \"http://bob:***@h/a b\" and ftp://u:***@x"
        );
        assert_eq!(
            text("http://user@h/ (no password)"),
            "http://user@h/ (no password)"
        );
        assert_eq!(text("no url here"), "no url here");
        // A password with an @ in it: everything before the last @ is userinfo.
        assert_eq!(text("http://a:b@c@host/"), "http://a:***@host/");
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn never_panics_and_never_shows_the_password(
                user in "[a-z]{1,8}",
                password in "[A-Za-z0-9]{6,12}",
                noise in ".{0,40}",
            ) {
                let line = format!("{noise} http://{user}:{password}@host/x {noise}");
                let shown = text(&line);
                let secret = format!(":{password}@");
                prop_assert!(!shown.contains(&secret), "{}", shown);
                let _ = text(&noise);
            }
        }
    }
}

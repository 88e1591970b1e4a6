//! What fetchbench adds to certificate checks, and how TLS failures read.
//!
//! A `--cacert` file that holds the server's own certificate (the self-signed one everyone
//! makes with `openssl req -x509 ...`, which marks itself a CA) is trusted as that server's
//! certificate after the name and date checks, as curl and wget2 do: webpki refuses a CA
//! certificate as a server's (`CaUsedAsEndEntity`), so that case is checked here.

use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, Error};

/// Checks `end_entity`, byte for byte one of the `--cacert` certificates: for `name`, and
/// valid `now`.
pub(crate) fn check_own_certificate(
    end_entity: &CertificateDer<'_>,
    name: &ServerName<'_>,
    now: UnixTime,
) -> Result<(), Error> {
    let parsed = rustls::server::ParsedCertificate::try_from(end_entity)?;
    rustls::client::verify_server_name(&parsed, name)?;
    let (not_before, not_after) = validity(end_entity.as_ref())
        .ok_or(Error::InvalidCertificate(CertificateError::BadEncoding))?;
    let now = now.as_secs();
    if now < not_before {
        return Err(Error::InvalidCertificate(CertificateError::NotValidYet));
    }
    if now > not_after {
        return Err(Error::InvalidCertificate(CertificateError::Expired));
    }
    Ok(())
}

/// A TLS failure in words, with what to do about it where there is something.
pub(crate) fn describe(err: &Error) -> String {
    let certificate = match err {
        Error::InvalidCertificate(certificate) => certificate,
        other => return other.to_string(),
    };
    match certificate {
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "the server's certificate has expired".to_owned()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "the server's certificate is not valid yet (or this machine's clock is wrong)"
                .to_owned()
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            "the server's certificate is for another name than the URL's host".to_owned()
        }
        CertificateError::Revoked => "the server's certificate has been revoked".to_owned(),
        CertificateError::BadEncoding => "the server's certificate cannot be read".to_owned(),
        // No chain to a trusted root: webpki names the last step it tried (an unknown
        // issuer, a key that did not sign it, a CA certificate used as the server's).
        CertificateError::UnknownIssuer
        | CertificateError::BadSignature
        | CertificateError::UnsupportedSignatureAlgorithmContext { .. }
        | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. }
        | CertificateError::Other(_) => "the server's certificate is not signed by a trusted \
             authority (self-signed? use --cacert FILE with it)"
            .to_owned(),
        other => {
            // The variant's name, not its Debug dump of bytes.
            let debug = format!("{other:?}");
            let name: String = debug
                .chars()
                .take_while(char::is_ascii_alphanumeric)
                .collect();
            format!("the server's certificate is refused ({name})")
        }
    }
}

/// `notBefore` and `notAfter` of a DER certificate, in seconds since 1970.
fn validity(der: &[u8]) -> Option<(u64, u64)> {
    let (certificate, _) = element(der, 0x30)?;
    let (mut tbs, _) = element(certificate, 0x30)?;
    // [0] version (optional), serialNumber, signature, issuer, then validity.
    if tbs.first() == Some(&0xa0) {
        tbs = element(tbs, 0xa0)?.1;
    }
    let tbs = element(tbs, 0x02)?.1;
    let tbs = element(tbs, 0x30)?.1;
    let tbs = element(tbs, 0x30)?.1;
    let (validity, _) = element(tbs, 0x30)?;
    let (not_before, rest) = time(validity)?;
    let (not_after, _) = time(rest)?;
    Some((not_before, not_after))
}

/// The content of the DER element of `tag` at the start of `der`, and what follows it.
fn element(der: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&first, rest) = der.split_first()?;
    if first != tag {
        return None;
    }
    let (&len, mut rest) = rest.split_first()?;
    let len = if len < 0x80 {
        usize::from(len)
    } else {
        let bytes = usize::from(len & 0x7f);
        if bytes == 0 || bytes > 4 || rest.len() < bytes {
            return None;
        }
        let (len, tail) = rest.split_at(bytes);
        rest = tail;
        len.iter().fold(0usize, |n, &b| (n << 8) | usize::from(b))
    };
    (rest.len() >= len).then(|| rest.split_at(len))
}

/// A UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`) at the start of `der`.
fn time(der: &[u8]) -> Option<(u64, &[u8])> {
    let (text, rest, century) = match der.first()? {
        0x17 => {
            let (text, rest) = element(der, 0x17)?;
            (text, rest, true)
        }
        0x18 => (element(der, 0x18)?.0, element(der, 0x18)?.1, false),
        _ => return None,
    };
    let text = std::str::from_utf8(text).ok()?.strip_suffix('Z')?;
    let digits = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| s.parse::<u64>().ok())?
    };
    let (year, rest_text) = if century {
        let yy = digits(text.get(..2)?)?;
        (if yy >= 50 { 1900 + yy } else { 2000 + yy }, text.get(2..)?)
    } else {
        (digits(text.get(..4)?)?, text.get(4..)?)
    };
    if rest_text.len() != 10 {
        return None;
    }
    let field = |i: usize| digits(&rest_text[i..i + 2]);
    let (month, day, hour, minute, second) =
        (field(0)?, field(2)?, field(4)?, field(6)?, field(8)?);
    let days = days_from_civil(year, month, day)?;
    Some((days * 86_400 + hour * 3600 + minute * 60 + second, rest))
}

/// Days from 1970-01-01 to the given date (Howard Hinnant's algorithm), for dates after 1970.
fn days_from_civil(year: u64, month: u64, day: u64) -> Option<u64> {
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || year < 1970 {
        return None;
    }
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe).checked_sub(719_468)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::pem::PemObject;

    fn fixture(name: &str) -> CertificateDer<'static> {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        CertificateDer::from_pem_file(path).unwrap()
    }

    #[test]
    fn dates_are_read_from_the_certificate() {
        assert_eq!(days_from_civil(1970, 1, 1), Some(0));
        assert_eq!(days_from_civil(2000, 3, 1), Some(11_017));
        // The one-liner fixture: valid for 100 years from when it was made (2026).
        let (not_before, not_after) = validity(fixture("oneliner-cert.pem").as_ref()).unwrap();
        assert!(not_before > 1_790_000_000 - 60_000_000, "{not_before}");
        assert!(not_after > not_before + 99 * 365 * 86_400, "{not_after}");
        assert_eq!(validity(b"\x30\x03\x02\x01\x00"), None);
    }

    #[test]
    fn its_own_certificate_is_checked_for_name_and_date() {
        let cert = fixture("oneliner-cert.pem");
        let ip = ServerName::try_from("127.0.0.1").unwrap();
        let now = UnixTime::now();
        assert!(check_own_certificate(&cert, &ip, now).is_ok());
        let other = ServerName::try_from("example.com").unwrap();
        let err = check_own_certificate(&cert, &other, now).unwrap_err();
        assert!(describe(&err).contains("another name"), "{err:?}");
        let late = UnixTime::since_unix_epoch(std::time::Duration::from_secs(6_000_000_000));
        let err = check_own_certificate(&cert, &ip, late).unwrap_err();
        assert_eq!(describe(&err), "the server's certificate has expired");
        let early = UnixTime::since_unix_epoch(std::time::Duration::from_secs(1_000_000_000));
        let err = check_own_certificate(&cert, &ip, early).unwrap_err();
        assert!(describe(&err).contains("not valid yet"));
    }
}

//! Just enough DER to name a verified client certificate: its subject (as
//! an RFC 4514 string) and its subject alternative names. rustls has already
//! verified the certificate; this only reads it, and gives up (`None`) on
//! anything it does not understand rather than guess.

use std::fmt::Write as _;

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const OCTET_STRING: u8 = 0x04;
const EXTENSIONS: u8 = 0xA3;
/// id-ce-subjectAltName, 2.5.29.17.
const SAN_OID: &[u8] = &[0x55, 0x1D, 0x11];

/// The subject and SANs of a DER certificate; `None` when it does not parse.
pub(super) fn identity(cert: &[u8]) -> Option<(String, Vec<String>)> {
    let (tag, certificate, _) = tlv(cert)?;
    expect(tag, SEQUENCE)?;
    let (tag, tbs, _) = tlv(certificate)?;
    expect(tag, SEQUENCE)?;
    let mut rest = tbs;
    // The version ([0]) is optional; serial, signature, issuer and validity
    // come before the subject.
    if tbs.first() == Some(&0xA0) {
        rest = tlv(rest)?.2;
    }
    for _ in 0..4 {
        rest = tlv(rest)?.2;
    }
    let (tag, subject, mut rest) = tlv(rest)?;
    expect(tag, SEQUENCE)?;
    let subject = name(subject)?;
    let mut sans = Vec::new();
    while !rest.is_empty() {
        let (tag, value, after) = tlv(rest)?;
        if tag == EXTENSIONS {
            sans = subject_alt_names(value)?;
        }
        rest = after;
    }
    Some((subject, sans))
}

fn expect(tag: u8, want: u8) -> Option<()> {
    (tag == want).then_some(())
}

/// One tag-length-value: the tag, the contents and what follows.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7F);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// A Name (RDNSequence) as RFC 4514 text: the last RDN first.
fn name(mut rdns: &[u8]) -> Option<String> {
    let mut parts = Vec::new();
    while !rdns.is_empty() {
        let (tag, set, rest) = tlv(rdns)?;
        expect(tag, SET)?;
        parts.push(rdn(set)?);
        rdns = rest;
    }
    parts.reverse();
    Some(parts.join(","))
}

/// One RDN: its attributes joined with `+`.
fn rdn(mut set: &[u8]) -> Option<String> {
    let mut attrs = Vec::new();
    while !set.is_empty() {
        let (tag, attr, rest) = tlv(set)?;
        expect(tag, SEQUENCE)?;
        let (tag, oid, value) = tlv(attr)?;
        expect(tag, OID)?;
        let (vtag, text, _) = tlv(value)?;
        let value = match string(vtag, text) {
            Some(s) => escape(&s),
            None => format!("#{}", hex(value)),
        };
        attrs.push(format!("{}={value}", attribute_type(oid)));
        set = rest;
    }
    Some(attrs.join("+"))
}

/// The short names RFC 4514 lists, else the dotted OID.
fn attribute_type(oid: &[u8]) -> String {
    let short = match oid {
        [0x55, 0x04, 0x03] => "CN",
        [0x55, 0x04, 0x07] => "L",
        [0x55, 0x04, 0x08] => "ST",
        [0x55, 0x04, 0x0A] => "O",
        [0x55, 0x04, 0x0B] => "OU",
        [0x55, 0x04, 0x06] => "C",
        [0x55, 0x04, 0x09] => "STREET",
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xF2, 0x2C, 0x64, 0x01, 0x19] => "DC",
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xF2, 0x2C, 0x64, 0x01, 0x01] => "UID",
        _ => return dotted(oid),
    };
    short.to_string()
}

fn dotted(oid: &[u8]) -> String {
    let mut out = String::new();
    let mut value: u64 = 0;
    for &b in oid {
        value = (value << 7) | u64::from(b & 0x7F);
        if b & 0x80 != 0 {
            continue;
        }
        if out.is_empty() {
            let (a, b) = if value < 80 {
                (value / 40, value % 40)
            } else {
                (2, value - 80)
            };
            let _ = write!(out, "{a}.{b}");
        } else {
            let _ = write!(out, ".{value}");
        }
        value = 0;
    }
    out
}

/// The directory string types certificates use.
fn string(tag: u8, bytes: &[u8]) -> Option<String> {
    match tag {
        // UTF8String, PrintableString, IA5String, NumericString, VisibleString
        0x0C | 0x13 | 0x16 | 0x12 | 0x1A => String::from_utf8(bytes.to_vec()).ok(),
        // TeletexString: in practice Latin-1.
        0x14 => Some(bytes.iter().map(|&b| char::from(b)).collect()),
        // BMPString: UTF-16BE.
        0x1E if bytes.len().is_multiple_of(2) => {
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

/// RFC 4514's escaping of an attribute value.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && matches!(c, '#' | ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The SANs in the extensions ([3] { SEQUENCE OF Extension }).
fn subject_alt_names(explicit: &[u8]) -> Option<Vec<String>> {
    let (tag, mut exts, _) = tlv(explicit)?;
    expect(tag, SEQUENCE)?;
    while !exts.is_empty() {
        let (tag, ext, rest) = tlv(exts)?;
        expect(tag, SEQUENCE)?;
        let (tag, oid, mut fields) = tlv(ext)?;
        expect(tag, OID)?;
        if oid == SAN_OID {
            // `critical` (a BOOLEAN) may come before the value.
            loop {
                let (tag, value, after) = tlv(fields)?;
                if tag == OCTET_STRING {
                    return general_names(value);
                }
                fields = after;
            }
        }
        exts = rest;
    }
    Some(Vec::new())
}

/// GeneralNames as `DNS:…`, `URI:…`, `IP:…`, `email:…` (OpenSSL's
/// spelling); other kinds are left out.
fn general_names(value: &[u8]) -> Option<Vec<String>> {
    let (tag, mut names, _) = tlv(value)?;
    expect(tag, SEQUENCE)?;
    let mut out = Vec::new();
    while !names.is_empty() {
        let (tag, bytes, rest) = tlv(names)?;
        let text = || String::from_utf8(bytes.to_vec()).ok();
        match tag {
            0x81 => out.push(format!("email:{}", text()?)),
            0x82 => out.push(format!("DNS:{}", text()?)),
            0x86 => out.push(format!("URI:{}", text()?)),
            0x87 => out.push(format!("IP:{}", ip(bytes)?)),
            _ => {}
        }
        names = rest;
    }
    Some(out)
}

fn ip(bytes: &[u8]) -> Option<std::net::IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(std::net::IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(std::net::IpAddr::from),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_escape_and_oids() {
        assert_eq!(escape("a,b"), "a\\,b");
        assert_eq!(escape(" x "), "\\ x\\ ");
        assert_eq!(
            dotted(&[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D]),
            "1.2.840.113549"
        );
        assert_eq!(attribute_type(&[0x55, 0x04, 0x03]), "CN");
    }

    #[test]
    fn reads_what_rcgen_writes() {
        use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CountryName, "NL");
        params.distinguished_name.push(DnType::CommonName, "a,b #1");
        params.subject_alt_names = vec![
            SanType::DnsName("svc.local".try_into().unwrap()),
            SanType::IpAddress([10, 0, 0, 1].into()),
            SanType::IpAddress(std::net::Ipv6Addr::LOCALHOST.into()),
            SanType::Rfc822Name("ops@example.org".try_into().unwrap()),
            SanType::URI("spiffe://td/ns/a".try_into().unwrap()),
        ];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let (subject, sans) = identity(cert.der()).unwrap();
        assert_eq!(subject, "CN=a\\,b #1,C=NL");
        assert_eq!(
            sans,
            [
                "DNS:svc.local",
                "IP:10.0.0.1",
                "IP:::1",
                "email:ops@example.org",
                "URI:spiffe://td/ns/a"
            ]
        );
    }

    #[test]
    fn garbage_is_none() {
        assert_eq!(identity(&[]), None);
        assert_eq!(identity(&[0x30, 0x84, 0xFF, 0xFF, 0xFF, 0xFF]), None);
        assert_eq!(identity(&[0x30, 0x03, 0x30, 0x01]), None);
    }
}

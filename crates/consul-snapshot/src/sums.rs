//! `SHA256SUMS`: the integrity list inside the archive (spec §5; Consul's `snapshot/archive.go`
//! hashList). Two lines, `<64 lowercase hex>  <name>\n`, in either order.

use super::error::IntegrityError;

/// Entry names Consul hashes, in the order their `file missing` errors are reported here.
pub const HASHED: [&str; 2] = ["meta.json", "state.bin"];

/// Formats the list in the given line order.
pub fn format(lines: &[(&str, &[u8; 32])]) -> Vec<u8> {
    let mut out = Vec::with_capacity(152);
    for (name, digest) in lines {
        out.extend_from_slice(hex::encode(digest).as_bytes());
        out.extend_from_slice(b"  ");
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
    }
    out
}

/// Checks `list` against the digests of the bytes actually read (`digest_of(name)`; an absent
/// entry hashes as empty input), with Consul's rules: every listed name must be hashed, every
/// digest must match, every hashed name must be listed.
pub fn verify(list: &[u8], digest_of: impl Fn(&str) -> [u8; 32]) -> Result<(), IntegrityError> {
    let mut seen = [false; HASHED.len()];
    // Go's bufio.ScanLines: split on LF, drop one trailing CR, no empty final line.
    let text = list.strip_suffix(b"\n").unwrap_or(list);
    if !list.is_empty() {
        for (n, raw) in text.split(|&c| c == b'\n').enumerate() {
            let line = raw.strip_suffix(b"\r").unwrap_or(raw);
            let (digest, name) = parse_line(line).map_err(|reason| IntegrityError::Malformed {
                line: n + 1,
                reason,
            })?;
            let Some(idx) = HASHED.iter().position(|h| h.as_bytes() == name) else {
                return Err(IntegrityError::ListMissingHash(
                    String::from_utf8_lossy(name).into_owned(),
                ));
            };
            if digest_of(HASHED[idx]).as_slice() != digest.as_slice() {
                return Err(IntegrityError::HashCheckFailed(HASHED[idx].to_string()));
            }
            seen[idx] = true;
        }
    }
    match HASHED.iter().zip(seen).find(|(_, s)| !s) {
        Some((name, _)) => Err(IntegrityError::FileMissing((*name).to_string())),
        None => Ok(()),
    }
}

/// `hex`, white space, `name` (Go's `Sscanf("%x  %s")` tolerates the amount of spacing).
fn parse_line(line: &[u8]) -> Result<(Vec<u8>, &[u8]), String> {
    let mut fields = line
        .split(|c| c.is_ascii_whitespace())
        .filter(|f| !f.is_empty());
    let hex_field = fields.next().ok_or("unexpected EOF")?;
    let digest = hex::decode(hex_field).map_err(|e| format!("bad digest: {e}"))?;
    let name = fields.next().ok_or("unexpected EOF")?;
    Ok((digest, name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn d(b: &[u8]) -> [u8; 32] {
        Sha256::digest(b).into()
    }

    fn digests(name: &str) -> [u8; 32] {
        d(name.as_bytes())
    }

    #[test]
    fn accepts_either_order_and_rejects_each_failure_by_name() {
        let (m, s) = (d(b"meta.json"), d(b"state.bin"));
        assert_eq!(
            verify(&format(&[("meta.json", &m), ("state.bin", &s)]), digests),
            Ok(())
        );
        assert_eq!(
            verify(&format(&[("state.bin", &s), ("meta.json", &m)]), digests),
            Ok(())
        );
        assert_eq!(
            verify(&format(&[("state.bin", &m), ("meta.json", &m)]), digests),
            Err(IntegrityError::HashCheckFailed("state.bin".into()))
        );
        assert_eq!(
            verify(&format(&[("meta.json", &m)]), digests),
            Err(IntegrityError::FileMissing("state.bin".into()))
        );
        assert_eq!(
            verify(&format(&[("SHA256SUMS", &m)]), digests),
            Err(IntegrityError::ListMissingHash("SHA256SUMS".into()))
        );
        assert_eq!(
            verify(b"", digests),
            Err(IntegrityError::FileMissing("meta.json".into()))
        );
        assert!(matches!(
            verify(b"\nabc  meta.json\n", digests),
            Err(IntegrityError::Malformed { line: 1, .. })
        ));
    }

    #[test]
    fn format_is_152_bytes_for_two_entries() {
        assert_eq!(
            format(&[("meta.json", &[0; 32]), ("state.bin", &[1; 32])]).len(),
            152
        );
    }
}

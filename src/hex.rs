//! Lowercase hex, as digests and signatures are written (render digests,
//! webhook signatures), by `faster-hex`.

/// `bytes` as lowercase hex.
pub fn encode(bytes: &[u8]) -> String {
    faster_hex::hex_string(bytes)
}

/// The bytes hex text (either case) stands for; `None` when it is not hex.
pub fn decode(hex: &str) -> Option<Vec<u8>> {
    let mut out = vec![0; hex.len() / 2];
    faster_hex::hex_decode(hex.as_bytes(), &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_refuses_what_is_not_hex() {
        let bytes = [0x00, 0x7f, 0xa5, 0xff];
        assert_eq!(encode(&bytes), "007fa5ff");
        assert_eq!(decode("007fa5ff"), Some(bytes.to_vec()));
        assert_eq!(decode("007FA5FF"), Some(bytes.to_vec()));
        assert_eq!(decode(""), Some(Vec::new()));
        for bad in ["0", "zz", "0g", "é0", "007fa5f"] {
            assert_eq!(decode(bad), None, "{bad}");
        }
    }
}

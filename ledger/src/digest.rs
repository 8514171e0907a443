//! Content digests: how a resubmitted id is told from a modified reuse.

/// xxh3-128 of the parts, each prefixed by its length so ("ab","c") and
/// ("a","bc") differ. Journals store these digests: the value must never change.
pub(crate) fn content_digest_parts(parts: &[&[u8]]) -> u128 {
    // One-shot hashing of the concatenation equals the streaming hasher's
    // result, and is several times faster for these small inputs.
    let mut buffer = [0_u8; 512];
    let mut len = 0;
    for part in parts {
        let Some(slot) = buffer.get_mut(len..len + 4 + part.len()) else {
            return content_digest_streaming(parts);
        };
        slot[..4].copy_from_slice(&(part.len() as u32).to_le_bytes());
        slot[4..].copy_from_slice(part);
        len += 4 + part.len();
    }
    xxhash_rust::xxh3::xxh3_128(&buffer[..len])
}

pub(crate) fn content_digest_streaming(parts: &[&[u8]]) -> u128 {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    for part in parts {
        hasher.update(&(part.len() as u32).to_le_bytes());
        hasher.update(part);
    }
    hasher.digest128()
}

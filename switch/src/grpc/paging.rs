//! Pages of lists that grow with volume (Google's AIP-158): a bounded page
//! size and an opaque page token naming where the next page starts.
//!
//! A token names the last item of the page before (a key, a claim id, a
//! transfer's position in the engine's recording order, which it keeps
//! when it moves to the archive), so a list read by pages is exact while
//! items move between memory and the archive. Tokens are tied to the list
//! they came from and checked: a token of another cycle, or text that is
//! no token, is INVALID_ARGUMENT.

use ponte_directory::keys::{Key, KeyType};
use ponte_wire::FieldError;

/// A list's page sizes: what 0 means, and the most one page holds.
#[derive(Debug, Clone, Copy)]
pub(super) struct PageBounds {
    pub default: usize,
    pub max: usize,
}

/// `CycleTransfers`: a page of 10,000 transfers is ~2.5 MB, under the
/// 4 MiB default limit of gRPC clients.
pub(super) const CYCLE_TRANSFERS_PAGE: PageBounds = PageBounds { default: 1_000, max: 10_000 };

/// The page size to use for `asked`: 0 is the default, more than the most
/// is the most (AIP-158).
pub(super) fn page_size(asked: u32, bounds: PageBounds) -> usize {
    match usize::try_from(asked).unwrap_or(usize::MAX) {
        0 => bounds.default,
        n => n.min(bounds.max),
    }
}

/// `ListKeys` and `ListClaims`: a key entry or a claim is a few hundred bytes.
pub(super) const DIRECTORY_PAGE: PageBounds = PageBounds { default: 1_000, max: 10_000 };

const CYCLE_TRANSFERS_TAG: &str = "ct1";
const KEYS_TAG: &str = "lk1";
const CLAIMS_TAG: &str = "lc1";

/// The token of the `ListKeys` page after the one ending with `last`.
pub(super) fn keys_token(last: &Key) -> String {
    hex(format!("{KEYS_TAG}:{}:{}", last.kind().as_str(), last.value()).as_bytes())
}

/// Where the `ListKeys` page `token` asks for starts.
pub(super) fn keys_after(token: &str) -> Result<Option<Key>, FieldError> {
    let Some(body) = token_body(token, KEYS_TAG, "ListKeys")? else { return Ok(None) };
    let (kind, value) = body.split_once(':').ok_or_else(|| not_a_token("ListKeys"))?;
    let kind = KeyType::from_name(kind).ok_or_else(|| not_a_token("ListKeys"))?;
    Ok(Some(Key::page_bound(kind, value.to_owned())))
}

/// The token of the `ListClaims` page after the one ending with claim `last`.
pub(super) fn claims_token(last: u64) -> String {
    hex(format!("{CLAIMS_TAG}:{last}").as_bytes())
}

/// Where the `ListClaims` page `token` asks for starts.
pub(super) fn claims_after(token: &str) -> Result<Option<u64>, FieldError> {
    let Some(body) = token_body(token, CLAIMS_TAG, "ListClaims")? else { return Ok(None) };
    body.parse().map(Some).map_err(|_| not_a_token("ListClaims"))
}

/// The token of the page after the one ending with the transfer at
/// position `last` (the engine's recording order), in `cycle`.
pub(super) fn cycle_transfers_token(cycle: u64, last: u64) -> String {
    hex(format!("{CYCLE_TRANSFERS_TAG}:{cycle}:{last}").as_bytes())
}

/// Where the page `token` asks for starts (after that position): `None`
/// for the first page.
pub(super) fn cycle_transfers_after(token: &str, cycle: u64) -> Result<Option<u64>, FieldError> {
    let Some(body) = token_body(token, CYCLE_TRANSFERS_TAG, "CycleTransfers")? else { return Ok(None) };
    let bad = || not_a_token("CycleTransfers");
    let (of, last) = body.split_once(':').ok_or_else(bad)?;
    if of.parse::<u64>().map_err(|_| bad())? != cycle {
        return Err(FieldError::new("page_token", format!("a page token of cycle {of}, not of cycle {cycle}")));
    }
    last.parse::<u64>().map(Some).map_err(|_| bad())
}

/// What a token of list `list` carries after its `tag`; `None` for the
/// empty token (the first page).
fn token_body(token: &str, tag: &str, list: &str) -> Result<Option<String>, FieldError> {
    if token.is_empty() {
        return Ok(None);
    }
    let text = unhex(token).ok_or_else(|| not_a_token(list))?;
    let body = text.strip_prefix(tag).and_then(|rest| rest.strip_prefix(':')).ok_or_else(|| not_a_token(list))?;
    Ok(Some(body.to_owned()))
}

fn not_a_token(list: &str) -> FieldError {
    FieldError::new("page_token", format!("not a page token of {list} (pass next_page_token unchanged)"))
}

/// Cuts a page read with one item more than `limit` (to learn whether more
/// follow) back to `limit`, and returns the token of the next page (empty
/// on the last page), made from the page's last item.
pub(super) fn cut_page<T>(items: &mut Vec<T>, limit: usize, token_of: impl Fn(&T) -> String) -> String {
    if items.len() <= limit {
        return String::new();
    }
    items.truncate(limit);
    items.last().map_or_else(String::new, token_of)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads [`hex`] back; `None` unless it is lowercase hex of ASCII text of
/// a sane length.
fn unhex(text: &str) -> Option<String> {
    if !text.len().is_multiple_of(2) || text.len() > 256 {
        return None;
    }
    let bytes: Option<Vec<u8>> =
        (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect();
    String::from_utf8(bytes?).ok().filter(|s| s.is_ascii())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_sizes_follow_aip_158() {
        assert_eq!(page_size(0, CYCLE_TRANSFERS_PAGE), 1_000);
        assert_eq!(page_size(1, CYCLE_TRANSFERS_PAGE), 1);
        assert_eq!(page_size(10_000, CYCLE_TRANSFERS_PAGE), 10_000);
        assert_eq!(page_size(u32::MAX, CYCLE_TRANSFERS_PAGE), 10_000);
    }

    #[test]
    fn tokens_round_trip_and_belong_to_their_cycle() {
        let token = cycle_transfers_token(7, 1_234_567);
        assert_eq!(cycle_transfers_after(&token, 7).unwrap(), Some(1_234_567));
        let id = ponte_domain::EndToEndId::parse("E10000001202612071200abcdefghijk").unwrap();
        let old = hex(format!("{CYCLE_TRANSFERS_TAG}:7:{id}").as_bytes());
        assert!(cycle_transfers_after(&old, 7).is_err(), "a token naming an id (before positions) is refused");
        assert_eq!(cycle_transfers_after("", 7).unwrap(), None);
        let other = cycle_transfers_after(&token, 8).unwrap_err().to_string();
        assert!(other.contains("cycle 7, not of cycle 8"), "{other}");
        let not_a_position = hex(format!("{CYCLE_TRANSFERS_TAG}:7:-1").as_bytes());
        for bad in ["zz", "abc", &token[..token.len() - 1], &not_a_position, &"ab".repeat(200), "6374313a373a45", "é"]
        {
            assert!(cycle_transfers_after(bad, 7).is_err(), "{bad:?}");
        }
        // A token of one list is not a token of another.
        assert!(keys_after(&token).is_err() && claims_after(&token).is_err());
        assert_eq!(claims_after(&claims_token(41)).unwrap(), Some(41));
        assert!(cycle_transfers_after(&claims_token(41), 7).is_err());
        let key = Key::page_bound(KeyType::Email, "maria@example.com".into());
        assert_eq!(keys_after(&keys_token(&key)).unwrap(), Some(key));
    }
}

//! The 100,000 most common passwords (SecLists, MIT; see `data/README.md`), embedded gzip-compressed,
//! decompressed once on first use and binary-searched case-insensitively.

use std::io::Read;
use std::sync::OnceLock;

const COMPRESSED: &[u8] = include_bytes!("../../data/common-passwords.lower.sorted.txt.gz");

struct Blocklist {
    text: String,
    /// Start offset of every line of `text`, in sorted order.
    starts: Vec<u32>,
}

impl Blocklist {
    fn load() -> Self {
        let mut text = String::new();
        // The embedded file is fixed at build time and checked by a test; if it were corrupt the list
        // would be empty and the policy would still enforce every other rule.
        if flate2::read::GzDecoder::new(COMPRESSED)
            .read_to_string(&mut text)
            .is_err()
        {
            text.clear();
        }
        let mut starts = Vec::with_capacity(100_000);
        if !text.is_empty() {
            starts.push(0);
            starts.extend(
                text.match_indices('\n')
                    .filter_map(|(i, _)| u32::try_from(i + 1).ok()),
            );
        }
        Self { text, starts }
    }

    fn line(&self, index: usize) -> &str {
        let start = self.starts[index] as usize;
        let end = self
            .starts
            .get(index + 1)
            .map_or(self.text.len(), |next| *next as usize - 1);
        &self.text[start..end]
    }

    fn contains(&self, lowercase: &str) -> bool {
        let (mut lo, mut hi) = (0, self.starts.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.line(mid).as_bytes().cmp(lowercase.as_bytes()) {
                std::cmp::Ordering::Equal => return true,
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
            }
        }
        false
    }
}

fn list() -> &'static Blocklist {
    static LIST: OnceLock<Blocklist> = OnceLock::new();
    LIST.get_or_init(Blocklist::load)
}

/// Whether `password` is on the list, ignoring case.
pub fn is_common(password: &str) -> bool {
    list().contains(&password.to_lowercase())
}

/// Number of entries (for tests and diagnostics).
pub fn len() -> usize {
    list().starts.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_whole_list_is_embedded() {
        assert_eq!(len(), 96_518);
    }

    #[test]
    fn lookups_ignore_case_and_find_both_ends() {
        for common in [
            "123456", "password", "PassWord", "qwerty", "iloveyou", "zzzzzz",
        ] {
            assert!(is_common(common), "{common}");
        }
        assert!(!is_common("correct horse battery staple 42!"));
        assert!(!is_common(""));
    }
}

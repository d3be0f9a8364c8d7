//! `blake3:275ba016`: a content named by the start of its hash, as git
//! names a commit. `ls`, `--list` and `--search` print eight hex digits;
//! pasted back, they are looked up among the contents the relay's index
//! lists. One content starting so is that content; none, or several, is
//! said (the several listed), and the fetch ends as a file not found
//! (status 1). Fewer than eight digits, or a character that is not a hex
//! digit, is a usage error (status 2): too short a prefix matches by
//! chance too often to be worth a lookup.
//!
//! A whole hash (64 digits) needs no index, and still works when every
//! relay is down (the DHT, `crate::dht_source`).

use proto::content::HASH_PREFIX;
use proto::{ContentHash, SearchResults, Target};

use crate::{EXIT_MISSING, EXIT_USAGE, Session, report};

/// The fewest hex digits a prefix may have: the eight the listings print.
pub const MIN_DIGITS: usize = 8;

/// What `blake3:...` typed by a user is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Typed {
    /// All 64 digits.
    Whole(ContentHash),
    /// 8 to 63 hex digits, lowercase.
    Prefix(String),
}

/// Reads `text` (which starts with `blake3:`); Err is the usage error.
pub fn parse(text: &str) -> Result<Typed, String> {
    let hex = text.strip_prefix(HASH_PREFIX).unwrap_or(text);
    let digits = hex.chars().count();
    if digits == 64 {
        return text
            .parse()
            .map(Typed::Whole)
            .map_err(|e| format!("{text}: {e}"));
    }
    if let Some(bad) = hex.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(format!(
            "{text}: {bad:?} is not a hex digit ({HASH_PREFIX} is followed by hex digits, \
             {MIN_DIGITS} to 64 of them)"
        ));
    }
    if !(MIN_DIGITS..64).contains(&digits) {
        return Err(format!(
            "{text}: {HASH_PREFIX} must be followed by 64 hex digits, or a unique prefix of \
             at least {MIN_DIGITS} (got {digits})"
        ));
    }
    Ok(Typed::Prefix(hex.to_ascii_lowercase()))
}

/// How a prefix fared in the index's listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// One content starts so.
    One(ContentHash),
    /// None does.
    Unknown,
    /// Several do: each content once, with the names it is shared under.
    Ambiguous(Vec<(ContentHash, Vec<String>)>),
}

/// The contents in `listed` (the index's listing) whose hash starts with
/// `prefix` (lowercase hex).
pub fn lookup(prefix: &str, listed: &SearchResults) -> Lookup {
    let mut found: Vec<(ContentHash, Vec<String>)> = Vec::new();
    for hit in &listed.hits {
        if !hit.hash.to_string().starts_with(prefix) {
            continue;
        }
        match found.iter_mut().find(|(h, _)| *h == hit.hash) {
            Some((_, names)) => names.push(hit.name.clone()),
            None => found.push((hit.hash, vec![hit.name.clone()])),
        }
    }
    match found.len() {
        0 => Lookup::Unknown,
        1 => Lookup::One(found[0].0),
        _ => Lookup::Ambiguous(found),
    }
}

/// The lines that say why `text` named no one content: the first an
/// error, the rest the candidates (as git lists them).
pub fn unresolved_lines(text: &str, lookup: &Lookup, listed: &SearchResults) -> Vec<String> {
    match lookup {
        Lookup::One(_) => Vec::new(),
        Lookup::Unknown => {
            let mut line = format!(
                "{text}: no content in the relay's index has a hash starting so ({} listed on {})",
                crate::report::count(listed.hits.len(), "file"),
                crate::report::count(listed.nodes as usize, "active node")
            );
            if listed.truncated {
                line.push_str("; the listing was cut, so give more digits or the whole hash");
            }
            vec![line]
        }
        Lookup::Ambiguous(found) => {
            let mut lines = vec![format!(
                "{text} is ambiguous: {} contents have hashes starting so; give more digits",
                found.len()
            )];
            for (hash, names) in found {
                let names: Vec<String> =
                    names.iter().map(|n| n.escape_debug().to_string()).collect();
                lines.push(format!("  blake3:{hash}  {}", names.join(", ")));
            }
            lines
        }
    }
}

impl Session {
    /// The content `text` (`blake3:...`) names: a whole hash as it is, a
    /// prefix through the relay's index. Err is the exit status, the
    /// reason said.
    pub(crate) fn content_named(&mut self, text: &str) -> Result<ContentHash, u8> {
        let prefix = match parse(text) {
            Ok(Typed::Whole(hash)) => return Ok(hash),
            Ok(Typed::Prefix(prefix)) => prefix,
            Err(why) => {
                self.report.error(&why);
                return Err(EXIT_USAGE);
            }
        };
        let listed = if self.no_index {
            None
        } else {
            match self.index_search("", proto::MAX_LIST_FILES) {
                Ok(listed) => listed,
                Err(e) => {
                    self.report.error(&format!("{text}: {e}"));
                    return Err(EXIT_USAGE);
                }
            }
        };
        let Some(listed) = listed else {
            self.report.error(&format!(
                "{text}: a short hash is looked up in the relay's index, and there is none                  to ask ({}); give all 64 hex digits",
                if self.no_index {
                    "--no-index"
                } else {
                    "an older relay"
                }
            ));
            return Err(EXIT_USAGE);
        };
        let found = lookup(&prefix, &listed);
        if let Lookup::One(hash) = found {
            return Ok(hash);
        }
        let mut lines = unresolved_lines(text, &found, &listed).into_iter();
        if let Some(first) = lines.next() {
            self.report.missing(&format!("error: {first}"));
        }
        for line in lines {
            report::stderr_line(line);
        }
        Err(EXIT_MISSING)
    }

    /// The name the relay's index gives `hash`: its earliest holder's, for
    /// a save into a directory. None without an index, or when no holder
    /// is listed (the file is then saved under the hash).
    pub(crate) fn name_of(&self, hash: &ContentHash) -> Option<String> {
        if self.no_index {
            return None;
        }
        let list = self.index_who_has(&Target::Hash(*hash)).ok()??;
        list.holders.into_iter().next().map(|h| h.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::SearchHit;

    fn listed(contents: &[(&str, &[u8])]) -> SearchResults {
        SearchResults {
            nodes: 1,
            hits: contents
                .iter()
                .map(|(name, bytes)| SearchHit {
                    name: name.to_string(),
                    size: bytes.len() as u64,
                    hash: ContentHash::of(bytes),
                    holders: 1,
                })
                .collect(),
            truncated: false,
        }
    }

    #[test]
    fn prefixes_of_eight_digits_or_more_and_nothing_else() {
        let whole = ContentHash::of(b"x");
        assert_eq!(parse(&format!("blake3:{whole}")), Ok(Typed::Whole(whole)));
        assert_eq!(
            parse("blake3:275BA016"),
            Ok(Typed::Prefix("275ba016".into()))
        );
        let short = parse("blake3:275ba01").unwrap_err();
        assert!(short.contains("at least 8 (got 7)"), "{short}");
        let bad = parse("blake3:275ba01g").unwrap_err();
        assert!(bad.contains("'g' is not a hex digit"), "{bad}");
        assert!(parse("blake3:").is_err());
        assert!(parse(&format!("blake3:{whole}0")).is_err());
    }

    #[test]
    fn one_content_under_two_names_is_one_match() {
        // "twin 5962\n" and "twin 24518\n" share the prefix 502f9d9f.
        let all = listed(&[
            ("a.txt", b"twin 5962\n"),
            ("copy of a.txt", b"twin 5962\n"),
            ("b.txt", b"twin 24518\n"),
        ]);
        let a = ContentHash::of(b"twin 5962\n");
        assert_eq!(lookup(&a.to_string()[..10], &all), Lookup::One(a));
        let Lookup::Ambiguous(found) = lookup("502f9d9f", &all) else {
            panic!("not ambiguous");
        };
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].1, ["a.txt", "copy of a.txt"]);
        assert_eq!(lookup("00000000", &all), Lookup::Unknown);
        let lines = unresolved_lines("blake3:502f9d9f", &lookup("502f9d9f", &all), &all);
        assert_eq!(lines.len(), 3, "{lines:?}");
    }
}

//! "did you mean": a name not found, and the names the relay's index has
//! that are near it (`hello.tx: not found ...; did you mean hello.txt?`),
//! as git and cargo suggest a command. Near means the same letters in
//! another case, or an edit distance (Levenshtein, on characters, case
//! folded) of at most [`MAX_DISTANCE`]. At most [`MAX_SUGGESTIONS`], the
//! nearest first.

use crate::Session;

/// Typos worth suggesting past: one or two characters off.
pub const MAX_DISTANCE: usize = 2;

/// More would be a listing, not a hint.
pub const MAX_SUGGESTIONS: usize = 3;

/// The names among `names` near `name`, nearest first (then by name),
/// each once; never `name` itself.
pub fn near<'a>(name: &str, names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let wanted: Vec<char> = name.to_lowercase().chars().collect();
    let mut scored: Vec<(usize, &str)> = names
        .into_iter()
        .filter(|n| *n != name)
        .filter_map(|n| {
            let folded: Vec<char> = n.to_lowercase().chars().collect();
            distance(&wanted, &folded, MAX_DISTANCE).map(|d| (d, n))
        })
        .collect();
    scored.sort();
    scored.dedup();
    scored
        .into_iter()
        .take(MAX_SUGGESTIONS)
        .map(|(_, n)| n.to_string())
        .collect()
}

/// The hint that ends a not-found line: `; did you mean a.txt?`, `; did
/// you mean a.txt or b.txt?`; empty when nothing is near. Names that a
/// shell would split are quoted, so they can be typed back.
pub fn hint(near: &[String]) -> String {
    let shown: Vec<String> = near
        .iter()
        .map(|n| shell_words::quote(n).into_owned())
        .collect();
    match shown.as_slice() {
        [] => String::new(),
        [one] => format!("; did you mean {one}?"),
        [rest @ .., last] => format!("; did you mean {} or {last}?", rest.join(", ")),
    }
}

/// The Levenshtein distance between `a` and `b` when it is at most `max`,
/// None past it. Two rows of the table; a row whose every cell is past
/// `max` ends the walk early, so a long name far from every other costs
/// little.
fn distance(a: &[char], b: &[char], max: usize) -> Option<usize> {
    if a.len().abs_diff(b.len()) > max {
        return None;
    }
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut row = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let replace = previous[j] + usize::from(ca != cb);
            row[j + 1] = replace.min(previous[j + 1] + 1).min(row[j] + 1);
        }
        if row.iter().all(|&d| d > max) {
            return None;
        }
        std::mem::swap(&mut previous, &mut row);
    }
    let d = previous[b.len()];
    (d <= max).then_some(d)
}

impl Session {
    /// The hint for a name the index does not have, from the names it
    /// has ([`hint`]); empty when none is near, or the index cannot be
    /// listed.
    pub(crate) fn did_you_mean(&self, name: &str) -> String {
        match self.index_search("", proto::MAX_LIST_FILES) {
            Ok(Some(listed)) => hint(&near(name, listed.hits.iter().map(|h| h.name.as_str()))),
            _ => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chars(s: &str) -> Vec<char> {
        s.chars().collect()
    }

    #[test]
    fn distances() {
        let d = |a: &str, b: &str| distance(&chars(a), &chars(b), 2);
        assert_eq!(d("hello.tx", "hello.txt"), Some(1));
        assert_eq!(d("helo.tx", "hello.txt"), Some(2));
        assert_eq!(d("hlo.tx", "hello.txt"), None);
        assert_eq!(d("", "ab"), Some(2));
        assert_eq!(d("kitten", "sitting"), None);
        assert_eq!(distance(&chars("kitten"), &chars("sitting"), 3), Some(3));
        assert_eq!(d("café", "cafe"), Some(1));
    }

    #[test]
    fn near_names_in_either_case_nearest_first_three_at_most() {
        let names = [
            "hello.txt",
            "Hello.tx",
            "hello.txt",
            "help.txt",
            "hallo.txt",
            "hello.md",
            "world.txt",
        ];
        assert_eq!(
            near("hello.tx", names),
            ["Hello.tx", "hello.txt", "hallo.txt"]
        );
        assert_eq!(near("HELLO.TXT", ["hello.txt"]), ["hello.txt"]);
        assert!(near("zzz", names).is_empty());
        assert!(near("hello.txt", ["hello.txt"]).is_empty());
        assert_eq!(
            hint(&["a.txt".into(), "my a.txt".into()]),
            "; did you mean a.txt or 'my a.txt'?"
        );
        assert_eq!(hint(&["a".into()]), "; did you mean a?");
        assert_eq!(hint(&[]), "");
    }
}

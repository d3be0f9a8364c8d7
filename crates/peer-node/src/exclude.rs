//! What the user keeps out of the share: `--exclude GLOB`, repeatable.
//! An excluded file is not listed, not in the relay's catalog, not hashed,
//! and refused when asked for, by name or through a symlink that leads to
//! it (docs/PROTOCOL.md, "Which names a node serves").
//!
//! The patterns read as rsync's and gitignore's do:
//! - a pattern without `/` names a file or directory at any depth: `.git`
//!   keeps out every `.git` directory and all under it, `*.tmp` every file
//!   whose name ends in `.tmp`;
//! - a pattern with a `/` names a path from DIR (a leading `/` only says
//!   so): `build/*.o`, `/private`, `docs/**/draft.txt`;
//! - `*` and `?` never match a `/`; `**` matches any number of directories;
//!   `[abc]` and `{a,b}` as in a shell;
//! - a directory that matches keeps out everything under it.
//!
//! Matching is ripgrep's `globset` (one pass over all patterns per name).

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

/// The compiled `--exclude` patterns; empty excludes nothing.
#[derive(Debug, Clone)]
pub struct Excludes {
    /// Patterns without `/`: matched against each component.
    names: GlobSet,
    /// Patterns with `/`: matched against the path and each parent of it.
    paths: GlobSet,
    patterns: Vec<String>,
}

impl Default for Excludes {
    fn default() -> Excludes {
        Excludes {
            names: GlobSet::empty(),
            paths: GlobSet::empty(),
            patterns: Vec::new(),
        }
    }
}

impl Excludes {
    /// Compiles `patterns`; the error names the pattern that is not a glob.
    pub fn new(patterns: &[String]) -> Result<Excludes, String> {
        let mut names = GlobSetBuilder::new();
        let mut paths = GlobSetBuilder::new();
        for pattern in patterns {
            let trimmed = pattern.trim_end_matches('/');
            let (set, text) = match trimmed.strip_prefix('/') {
                Some(anchored) => (&mut paths, anchored),
                None if trimmed.contains('/') => (&mut paths, trimmed),
                None => (&mut names, trimmed),
            };
            if text.is_empty() {
                return Err(format!("--exclude {pattern:?}: names nothing"));
            }
            set.add(glob(text).map_err(|e| format!("--exclude {pattern:?}: {e}"))?);
        }
        let build = |b: GlobSetBuilder| b.build().map_err(|e| format!("--exclude: {e}"));
        Ok(Excludes {
            names: build(names)?,
            paths: build(paths)?,
            patterns: patterns.to_vec(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The patterns as given, for the log.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// Whether `rel`, a `/`-separated path relative to DIR (components `.`
    /// and empty ones are skipped), is excluded: itself, or a directory it
    /// is under.
    pub fn excludes(&self, rel: &str) -> bool {
        if self.is_empty() {
            return false;
        }
        let mut path = String::with_capacity(rel.len());
        for component in rel.split('/').filter(|c| !c.is_empty() && *c != ".") {
            if self.names.is_match(component) {
                return true;
            }
            if !path.is_empty() {
                path.push('/');
            }
            path.push_str(component);
            if self.paths.is_match(path.as_str()) {
                return true;
            }
        }
        false
    }
}

/// A glob whose `*` and `?` stay within one component.
fn glob(text: &str) -> Result<Glob, globset::Error> {
    GlobBuilder::new(text)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn excludes(patterns: &[&str]) -> Excludes {
        Excludes::new(&patterns.iter().map(|p| p.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn a_name_pattern_matches_at_any_depth_and_all_under_it() {
        let ex = excludes(&[".git", "*.tmp"]);
        for out in [
            ".git",
            ".git/config",
            "src/.git/objects/ab",
            "a.tmp",
            "deep/er/b.tmp",
            "x.tmp/inside",
            "./.git/HEAD",
            "src//.git",
        ] {
            assert!(ex.excludes(out), "{out} is shared");
        }
        for shared in [".gitignore", "git", "a.tmpl", "tmp", ".hidden", "a/b.txt"] {
            assert!(!ex.excludes(shared), "{shared} is excluded");
        }
    }

    #[test]
    fn a_path_pattern_matches_from_dir() {
        let ex = excludes(&["build/*.o", "/private/", "docs/**/draft.txt"]);
        for out in [
            "build/a.o",
            "private",
            "private/x/y",
            "docs/draft.txt",
            "docs/a/b/draft.txt",
        ] {
            assert!(ex.excludes(out), "{out} is shared");
        }
        for shared in [
            "build/sub/a.o",
            "src/build/a.o",
            "a/private",
            "docs/final.txt",
        ] {
            assert!(!ex.excludes(shared), "{shared} is excluded");
        }
    }

    #[test]
    fn nothing_is_excluded_without_patterns_and_a_bad_glob_is_named() {
        assert!(!Excludes::default().excludes(".git"));
        let err = Excludes::new(&["[oops".to_string()]).unwrap_err();
        assert!(err.contains("[oops"), "{err}");
        assert!(Excludes::new(&["/".to_string()]).is_err());
    }
}

//! Rule patterns: what a rule names, and whether a command is that.
//!
//! A pattern is written like the command it names:
//! - `prog words…`: `prog` is a glob on the program's name (`mkfs*`, `{reboot,halt}`). A word
//!   starting with `-` is an option, found wherever it is: `-r` alone or in a cluster (`-rf`),
//!   `--force` alone or as `--force=…`, `-delete` exactly; `{-r,-R,--recursive}` is any of them.
//!   Other words match the command's other arguments in order, from the first; `...` skips any
//!   number of them. Arguments after the last word do not matter. Globs: `*` within one path
//!   segment, `**` across, `?`, `[a-z]`, `{a,b}`. Paths are compared normalised (`//`, `/./`,
//!   `a/..` and a trailing `/` do not hide `/`).
//! - `left | right`: in a pipeline, a command matching `left` feeds a later one matching `right`.
//! - `> glob`: output redirected to a matching path.
//! - `@fork-bomb`: a function that calls itself.
//!
//! Matching is three-valued: a word whose value is only known when the shell runs (`$DIR`,
//! `$(…)`) *may* match anything, and a rule that may match asks a person rather than deciding.

use globset::{GlobBuilder, GlobMatcher};

/// Whether something matches: no, perhaps (it depends on values known only at run time), yes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Hit {
    No,
    Maybe,
    Yes,
}

/// One word of a command as the policy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// Unquoted; a path normalised.
    pub text: String,
    pub kind: WordKind,
    /// A relative path read from each folder the command may run in (`*` in `/` is `/*`).
    pub resolved: Vec<String>,
    /// The command may run in a folder nobody knows yet, so a relative path may be anything.
    pub elsewhere: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WordKind {
    /// Exactly this text.
    Literal,
    /// A glob the shell expands (`/*`, `r{m,x}`): compared as written.
    Glob,
    /// Holds an expansion (`$X`, `$(…)`): its value is unknown, and it may be several words.
    Unknown,
}

impl Word {
    pub fn new(text: &str, dynamic: bool) -> Self {
        let kind = match dynamic {
            false => WordKind::Literal,
            true if text.contains(['$', '`']) || text.starts_with("<(") || text.starts_with(">(") => WordKind::Unknown,
            // Brace expansion makes several words of one (`{-rf,/}`): any of them may be anything.
            true if text.contains('{') => WordKind::Unknown,
            true => WordKind::Glob,
        };
        let text = if kind == WordKind::Unknown { text.to_owned() } else { normalise(text) };
        Self { text, kind, resolved: Vec::new(), elsewhere: false }
    }

    pub fn literal(text: &str) -> Self {
        Self::new(text, false)
    }

    pub fn unknown() -> Self {
        Self { text: "$…".into(), kind: WordKind::Unknown, resolved: Vec::new(), elsewhere: false }
    }

    /// Reads a relative path from the folders `dirs` the command may run in; `unknown`: it may
    /// also run somewhere not known. Options, absolute paths, `key=value` and URLs stay as
    /// they are.
    pub fn resolve(&mut self, dirs: &[String], unknown: bool) {
        let t = self.text.as_str();
        let relative = self.kind != WordKind::Unknown
            && !t.is_empty()
            && !t.starts_with(['-', '/', '~'])
            && !t.contains('=')
            && !t.contains("://");
        if !relative {
            return;
        }
        self.resolved = dirs.iter().map(|d| normalise(&format!("{d}/{t}"))).collect();
        self.elsewhere = unknown;
    }

    pub fn hit(&self, glob: &GlobMatcher) -> Hit {
        match self.kind {
            WordKind::Unknown => Hit::Maybe,
            _ if glob.is_match(&self.text)
                || self.text.strip_prefix("./").is_some_and(|t| glob.is_match(t))
                || self.resolved.iter().any(|r| glob.is_match(r)) =>
            {
                Hit::Yes
            }
            _ if self.elsewhere => Hit::Maybe,
            _ => Hit::No,
        }
    }
}

/// A path-like word (`/…`, `~…`, `./…`, `../…`, `key=/…`) with `//`, `.`, `..` and a trailing
/// `/` resolved, lexically; other words as they are.
pub fn normalise(word: &str) -> String {
    if let Some((key, value)) = word.split_once('=') {
        if value.starts_with('/') && !key.is_empty() && !key.contains('/') {
            return format!("{key}={}", normalise(value));
        }
        return word.to_owned();
    }
    let (head, rest) = if let Some(rest) = word.strip_prefix('/') {
        ("/", rest)
    } else if word.starts_with('~') {
        let end = word.find('/').unwrap_or(word.len());
        (&word[..end], word[end..].trim_start_matches('/'))
    } else if word.starts_with("./") || word.starts_with("../") {
        return normalise_relative(word);
    } else {
        return word.to_owned();
    };
    let mut parts: Vec<&str> = Vec::new();
    for seg in rest.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    match (head, parts.is_empty()) {
        ("/", true) => "/".to_owned(),
        ("/", false) => format!("/{}", parts.join("/")),
        (tilde, true) => tilde.to_owned(),
        (tilde, false) => format!("{tilde}/{}", parts.join("/")),
    }
}

/// A relative path resolved lexically: `./a/../b` is `b`; a `..` above the start stays.
fn normalise_relative(word: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for seg in word.split('/') {
        match seg {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    // A leading `./` stays: `./ls` runs the file here, not the `ls` on the PATH.
    match (parts.is_empty(), word.starts_with("./") && parts.first() != Some(&"..")) {
        (true, _) => ".".to_owned(),
        (false, true) => format!("./{}", parts.join("/")),
        (false, false) => parts.join("/"),
    }
}

/// A command as the policy sees it: the program and its arguments, wrappers removed.
#[derive(Debug, Clone)]
pub struct Command {
    pub program: String,
    pub args: Vec<Word>,
}

impl Command {
    /// The command line, for messages.
    pub fn shown(&self) -> String {
        std::iter::once(self.program.as_str())
            .chain(self.args.iter().map(|w| w.text.as_str()))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A compiled rule pattern.
#[derive(Debug, Clone)]
pub enum Pattern {
    Command(CommandPattern),
    Pipe(CommandPattern, CommandPattern),
    Redirect(GlobMatcher),
    ForkBomb,
}

#[derive(Debug, Clone)]
pub struct CommandPattern {
    program: GlobMatcher,
    /// Each entry: any of these options.
    options: Vec<Vec<Opt>>,
    positional: Vec<Pos>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Opt {
    Short(char),
    /// `--name`, or a one-dash word like `-delete`, matched whole.
    Long(String),
}

#[derive(Debug, Clone)]
enum Pos {
    Skip,
    Glob(GlobMatcher),
}

fn glob(p: &str) -> Result<GlobMatcher, String> {
    GlobBuilder::new(p)
        .literal_separator(true)
        .backslash_escape(true)
        .empty_alternates(false)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|e| format!("{p:?} is not a valid pattern: {e}"))
}

fn option(word: &str) -> Result<Opt, String> {
    let body = word.trim_start_matches('-');
    if body.is_empty() {
        return Err(format!("{word:?} is not an option"));
    }
    Ok(if !word.starts_with("--") && body.chars().count() == 1 {
        Opt::Short(body.chars().next().unwrap_or('-'))
    } else {
        Opt::Long(word.to_owned())
    })
}

/// `{-r,-R,--recursive}` → three options; `-r` → one; anything else → None.
fn options(word: &str) -> Result<Option<Vec<Opt>>, String> {
    if let Some(inner) = word.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
        let alts: Vec<&str> = inner.split(',').collect();
        if alts.iter().all(|a| a.starts_with('-')) {
            return alts.into_iter().map(option).collect::<Result<Vec<_>, _>>().map(Some);
        }
        if alts.iter().any(|a| a.starts_with('-')) {
            return Err(format!("{word:?} mixes options and arguments"));
        }
        return Ok(None);
    }
    if word.starts_with('-') { option(word).map(|o| Some(vec![o])) } else { Ok(None) }
}

fn command_pattern(words: &[&str]) -> Result<CommandPattern, String> {
    let (program, rest) = words.split_first().ok_or("a pattern names a program")?;
    if program.starts_with('-') {
        return Err(format!("a pattern starts with the program, not the option {program:?}"));
    }
    let mut p = CommandPattern { program: glob(program)?, options: Vec::new(), positional: Vec::new() };
    for w in rest {
        if *w == "..." {
            p.positional.push(Pos::Skip);
        } else if let Some(opts) = options(w)? {
            p.options.push(opts);
        } else {
            p.positional.push(Pos::Glob(glob(&normalise(w))?));
        }
    }
    Ok(p)
}

impl Pattern {
    /// Compiles a pattern as a person wrote it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        match words.as_slice() {
            [] => Err("the pattern is empty".into()),
            ["@fork-bomb"] => Ok(Self::ForkBomb),
            [w, ..] if w.starts_with('@') => Err(format!("{w} is not a known check; the one there is is @fork-bomb")),
            [">" | ">>", target] => Ok(Self::Redirect(glob(&normalise(target))?)),
            [">" | ">>", ..] => Err("a redirect pattern is `> path-glob`".into()),
            _ => match words.iter().position(|w| *w == "|") {
                None => command_pattern(&words).map(Self::Command),
                Some(i) if words[i + 1..].contains(&"|") => Err("a pattern has at most one `|`".into()),
                Some(i) => Ok(Self::Pipe(command_pattern(&words[..i])?, command_pattern(&words[i + 1..])?)),
            },
        }
    }
}

/// The options and positional arguments of a command.
struct Parsed<'a> {
    shorts: Vec<char>,
    longs: Vec<&'a str>,
    positional: Vec<&'a Word>,
    /// An argument whose value is unknown could be any option.
    unknown: bool,
}

fn parse_args(args: &[Word]) -> Parsed<'_> {
    let mut p = Parsed { shorts: Vec::new(), longs: Vec::new(), positional: Vec::new(), unknown: false };
    let mut options_end = false;
    for w in args {
        if w.kind == WordKind::Unknown {
            p.unknown = true;
            p.positional.push(w);
            continue;
        }
        let t = w.text.as_str();
        if options_end || t == "-" || !t.starts_with('-') {
            p.positional.push(w);
        } else if t == "--" {
            options_end = true;
        } else if t.starts_with("--") {
            p.longs.push(t.split_once('=').map_or(t, |(name, _)| name));
        } else {
            p.longs.push(t);
            p.shorts.extend(t[1..].chars());
        }
    }
    p
}

impl CommandPattern {
    pub fn hit(&self, cmd: &Command) -> Hit {
        if !self.program.is_match(&cmd.program) {
            return Hit::No;
        }
        let args = parse_args(&cmd.args);
        let mut hit = Hit::Yes;
        for alts in &self.options {
            let found = alts.iter().any(|o| match o {
                Opt::Short(c) => args.shorts.contains(c),
                // Long options may be shortened to any prefix (`--rec` is `--recursive`).
                Opt::Long(l) => args.longs.iter().any(|a| {
                    *a == l.as_str() || (l.starts_with("--") && a.starts_with("--") && a.len() >= 3 && l.starts_with(a))
                }),
            });
            hit = hit.min(match (found, args.unknown) {
                (true, _) => Hit::Yes,
                (false, true) => Hit::Maybe,
                (false, false) => Hit::No,
            });
        }
        if hit == Hit::No {
            return Hit::No;
        }
        let mut positional = positional_hit(&self.positional, &args.positional);
        if positional == Hit::No && args.unknown {
            // An unknown word may stand for several, shifting the others.
            positional = Hit::Maybe;
        }
        hit.min(positional)
    }
}

/// Whether `args` begins with what `pattern` says (in order, `...` skipping any number).
fn positional_hit(pattern: &[Pos], args: &[&Word]) -> Hit {
    // best[i][j]: how well pattern[i..] matches args[j..].
    let (n, m) = (pattern.len(), args.len());
    let mut best = vec![vec![Hit::No; m + 1]; n + 1];
    for row in best[n].iter_mut() {
        *row = Hit::Yes;
    }
    for i in (0..n).rev() {
        for j in (0..=m).rev() {
            best[i][j] = match &pattern[i] {
                Pos::Skip => {
                    let here = best[i + 1][j];
                    let later = if j < m { best[i][j + 1] } else { Hit::No };
                    here.max(later)
                }
                Pos::Glob(g) if j < m => args[j].hit(g).min(best[i + 1][j + 1]),
                Pos::Glob(_) => Hit::No,
            };
        }
    }
    best[0][0]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(line: &str) -> Command {
        let mut words = line.split_whitespace();
        let program = words.next().unwrap_or_default().to_owned();
        let args = words
            .map(|w| if w.starts_with('$') { Word::new(w, true) } else { Word::new(w, w.contains(['*', '?', '{'])) })
            .collect();
        Command { program, args }
    }

    fn hit(pattern: &str, line: &str) -> Hit {
        match Pattern::parse(pattern).expect("pattern") {
            Pattern::Command(p) => p.hit(&cmd(line)),
            other => panic!("not a command pattern: {other:?}"),
        }
    }

    #[test]
    fn paths_are_normalised() {
        for (raw, norm) in [
            ("/", "/"),
            ("//", "/"),
            ("/./", "/"),
            ("/tmp/..", "/"),
            ("/tmp/../..", "/"),
            ("/usr//lib/", "/usr/lib"),
            ("~/", "~"),
            ("~/a/../", "~"),
            ("~root/x/..", "~root"),
            ("of=/dev//sda", "of=/dev/sda"),
            ("a/..", "a/.."),
            ("-rf", "-rf"),
            ("./blocked.txt", "./blocked.txt"),
            ("./a/../b/", "./b"),
            ("./../x", "../x"),
            ("../x", "../x"),
            ("./", "."),
            ("https://example.com//x", "https://example.com//x"),
        ] {
            assert_eq!(normalise(raw), norm, "{raw}");
        }
    }

    #[test]
    fn options_are_found_anywhere_and_in_clusters() {
        let p = "rm {-r,-R,--recursive} ... {/,/*}";
        for line in [
            "rm -rf /",
            "rm -fr /",
            "rm -r -f /",
            "rm --recursive --force /",
            "rm / -R",
            "rm -rf /tmp/x //",
            "rm -rf /*",
        ] {
            assert_eq!(hit(p, line), Hit::Yes, "{line}");
        }
        for line in ["rm -f /", "rm -rf /tmp/x", "rm -rf ./", "rm -- -r /tmp/x", "rmdir -r /"] {
            assert_eq!(hit(p, line), Hit::No, "{line}");
        }
        assert_eq!(hit(p, "rm -rf /etc"), Hit::Yes, "a top-level folder");
        assert_eq!(hit(p, "rm -rf $DIR"), Hit::Maybe, "$DIR may be /");
        assert_eq!(hit(p, "rm $ARGS"), Hit::Maybe, "$ARGS may be -rf /");
    }

    #[test]
    fn positional_words_match_in_order() {
        assert_eq!(hit("git status", "git status -s"), Hit::Yes);
        assert_eq!(hit("git status", "git push origin status"), Hit::No);
        assert_eq!(hit("dd ... of=/dev/*", "dd if=/dev/zero of=/dev/sda bs=1M"), Hit::Yes);
        assert_eq!(hit("dd ... of=/dev/*", "dd if=/dev/sda of=disk.img"), Hit::No);
        assert_eq!(hit("init {0,6}", "init 6"), Hit::Yes);
        assert_eq!(hit("init {0,6}", "init 3"), Hit::No);
        assert_eq!(hit("mkfs*", "mkfs.ext4 /dev/sdb1"), Hit::Yes);
        assert_eq!(hit("find -delete", "find . -name x -delete"), Hit::Yes);
        assert_eq!(hit("find -delete", "find . -name delete"), Hit::No);
    }

    #[test]
    fn bad_patterns_are_refused_with_a_reason() {
        for bad in ["", "   ", "-r rm", "a | b | c", "> a b", "@nope", "rm {-r,x}", "rm [z-a"] {
            assert!(Pattern::parse(bad).is_err(), "{bad:?}");
        }
        assert!(matches!(Pattern::parse("curl | {sh,bash}"), Ok(Pattern::Pipe(..))));
        assert!(matches!(Pattern::parse("> /dev/sd*"), Ok(Pattern::Redirect(_))));
        assert!(matches!(Pattern::parse("@fork-bomb"), Ok(Pattern::ForkBomb)));
    }
}

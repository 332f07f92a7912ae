//! Seeing through wrappers: what a command line really runs.
//!
//! `sudo -u root env nice -n 5 timeout 10 rm -rf /` runs `rm -rf /`; `bash -c '…'`, `su -c '…'`,
//! `eval …`, `trap '…'` and `watch …` run a script, which is read in turn; `xargs rm` runs `rm`
//! with arguments nobody can see yet; `find … -exec rm {} \;` runs `rm`. Relative paths are
//! read from the folders the command may run in (`cd /` before `rm -rf *` makes it `/*`).
//! What cannot be seen — a program named by a variable, a script piped into a shell or read
//! from a file, a `bash -c "$X"`, variables set for a command — is said, and the policy asks a
//! person about it.

use super::rules::{Command, Word, WordKind};
use super::shell::{self, Analysis, Redirect};

/// Deepest nesting of scripts in scripts (`bash -c "sh -c '…'"`) that is read.
const MAX_NESTING: usize = 8;
/// Most wrappers around one command.
const MAX_WRAPPERS: usize = 16;
/// Most folders a command line is followed into.
const MAX_FOLDERS: usize = 16;

/// Shells: `-c` takes a script.
const SHELLS: &[&str] = &["sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "yash", "posh", "rbash"];
/// Where a program named by its path is the system's own (so `/usr/bin/ls` is `ls`, but
/// `./ls` or `/tmp/x/ls` is not).
const SYSTEM_DIRS: &[&str] = &["/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"];

/// Everything a command line would do that the policy judges.
#[derive(Debug, Default)]
pub struct Script {
    /// Every command that runs, wrappers removed.
    pub commands: Vec<Command>,
    /// Output redirections to files: the target, and how it was written.
    pub writes: Vec<(Word, String)>,
    /// Commands feeding later commands through a pipe.
    pub pipes: Vec<(Command, Command)>,
    /// Functions that call themselves, directly or through others.
    pub self_calling: Vec<String>,
    /// What cannot be judged before it runs, said plainly.
    pub unseen: Vec<String>,
}

/// The folders a command may run in: those named by `cd`, from the first one on (a `cd` in a
/// subshell or an `if` may or may not have happened, so every one stays a candidate), and
/// whether it may run somewhere not known (`cd "$X"`).
#[derive(Debug, Clone)]
struct Folders {
    dirs: Vec<String>,
    unknown: bool,
}

impl Folders {
    /// Where a `cd` to `to` from these folders lands, when it succeeded. Only a folder named
    /// outright (`/…`, `~`, `~/…`) narrows them; anything else (`~-`, `~user`, a relative
    /// name `CDPATH` may send elsewhere) keeps every candidate, as [`Folders::change`] does.
    fn moved_to(&self, to: Option<&Word>) -> Folders {
        match to {
            None => Folders { dirs: vec!["~".to_owned()], unknown: false },
            Some(w) if w.kind == WordKind::Literal && named_outright(&w.text) => {
                Folders { dirs: vec![w.text.clone()], unknown: false }
            }
            Some(_) => {
                let mut f = self.clone();
                f.change(to);
                f
            }
        }
    }

    /// Adds every candidate of `other` (folders a script read in this shell may have left).
    fn merge(&mut self, other: &Folders) {
        for d in &other.dirs {
            self.add(d.clone());
        }
        self.unknown |= other.unknown;
    }

    fn change(&mut self, to: Option<&Word>) {
        match to {
            None => self.add("~".to_owned()),
            Some(w) if w.kind != WordKind::Literal || w.text.starts_with('-') => self.unknown = true,
            Some(w) if named_outright(&w.text) => self.add(w.text.clone()),
            // `~-`, `~+`, `~user`: folders this reading does not know.
            Some(w) if w.text.starts_with('~') => self.unknown = true,
            Some(w) => {
                let joined: Vec<String> =
                    self.dirs.iter().map(|d| super::rules::normalise(&format!("{d}/{}", w.text))).collect();
                for d in joined {
                    self.add(d);
                }
            }
        }
    }

    fn add(&mut self, dir: String) {
        if self.dirs.len() >= MAX_FOLDERS {
            self.unknown = true;
        } else if !self.dirs.contains(&dir) {
            self.dirs.push(dir);
        }
    }
}

/// A folder given outright: absolute, or home (`~`, `~/…`).
fn named_outright(path: &str) -> bool {
    path.starts_with('/') || path == "~" || path.starts_with("~/")
}

/// Reads a command line run in `cwd` (the home folder when not given). An error when it
/// cannot be parsed.
pub fn read(script: &str, cwd: Option<&str>) -> Result<Script, String> {
    let mut out = Script::default();
    let start = cwd.map_or_else(|| "~".to_owned(), |c| super::rules::normalise(c.trim()));
    let mut folders = Folders { dirs: vec![start], unknown: false };
    read_into(script, 0, &mut folders, &mut out)?;
    Ok(out)
}

fn read_into(script: &str, nesting: usize, folders: &mut Folders, out: &mut Script) -> Result<(), String> {
    if nesting > MAX_NESTING {
        out.unseen.push(format!("scripts nested more than {MAX_NESTING} deep"));
        return Ok(());
    }
    let analysis = shell::analyze(script)?;
    let Analysis { commands, functions } = &analysis;
    find_recursion(&analysis, out);
    // The command each simple command really is (None: it ran a script, read already).
    let mut effective: Vec<Option<Command>> = Vec::with_capacity(commands.len());
    // Where the commands after each `cd` that succeeded run.
    let mut after_cd: std::collections::HashMap<usize, Folders> = std::collections::HashMap::new();
    // A script that defines its own `cd` makes no `cd` here trustworthy.
    let cd_defined = functions.iter().any(|f| matches!(f.name.as_str(), "cd" | "pushd" | "popd"));
    for (i, c) in commands.iter().enumerate() {
        if !c.assignments.is_empty() && !c.argv.is_empty() {
            let names: Vec<&str> =
                c.assignments.iter().map(|a| a.split_once('=').map_or(a.as_str(), |(n, _)| n)).collect();
            out.unseen.push(format!(
                "variables are set for `{}` ({}), which can change what it does",
                c.argv[0],
                names.join(", ")
            ));
        }
        for r in &c.redirects {
            if let Some(w) = written_file(r, folders) {
                out.writes.push(w);
            }
        }
        let words: Vec<Word> = c.argv.iter().zip(&c.dynamic).map(|(t, d)| Word::new(t, *d)).collect();
        // After `cd x &&`, a command runs in x only.
        let here =
            c.after.filter(|_| !cd_defined).and_then(|j| after_cd.get(&j)).cloned().unwrap_or_else(|| folders.clone());
        let stdin = Stdin::of(c);
        let mut r = Reader { nesting, folders: here.clone(), moved: false };
        let cmd = r.unwrap(words, &stdin, out)?;
        // A `cd`, however it was reached (`builtin cd`, `command cd`, …).
        if let Some(cd) = cmd.as_ref().filter(|c| matches!(c.program.as_str(), "cd" | "pushd")) {
            after_cd.insert(i, here.moved_to(cd.args.first()));
            folders.change(cd.args.first());
        }
        // A script read in this shell (`eval 'cd /'`, `source`) may have moved it.
        folders.merge(&r.folders);
        if let Some(cmd) = &cmd {
            out.commands.push(cmd.clone());
        }
        effective.push(cmd);
    }
    for (i, a) in commands.iter().enumerate() {
        let (Some((pipe, stage)), Some(left)) = (a.pipe, &effective[i]) else { continue };
        for (j, b) in commands.iter().enumerate() {
            if let (Some((p2, s2)), Some(right)) = (b.pipe, &effective[j]) {
                if p2 == pipe && s2 > stage {
                    out.pipes.push((left.clone(), right.clone()));
                }
            }
        }
    }
    Ok(())
}

/// Functions that call themselves, directly or through each other (a fork bomb needs one),
/// and functions that run code built at run time (`eval`, `source`), which might.
fn find_recursion(analysis: &Analysis, out: &mut Script) {
    let Analysis { commands, functions } = analysis;
    let calls = |f: &shell::Function| -> Vec<&str> {
        commands[f.body.clone()].iter().filter_map(|c| c.argv.first().map(String::as_str)).collect()
    };
    for f in functions {
        if calls(f).iter().any(|c| matches!(*c, "eval" | "source" | "." | "trap")) {
            out.unseen.push(format!("the function {} runs code built when it runs", f.name));
        }
        // Follow calls between the script's functions; coming back to `f` is recursion.
        let mut seen = vec![f.name.as_str()];
        let mut todo: Vec<&str> = calls(f);
        while let Some(name) = todo.pop() {
            if name == f.name {
                out.self_calling.push(f.name.clone());
                break;
            }
            if seen.contains(&name) {
                continue;
            }
            seen.push(name);
            if let Some(g) = functions.iter().find(|g| g.name == name) {
                todo.extend(calls(g));
            }
        }
    }
}

/// Where a command's standard input comes from, for shells that read their script there.
enum Stdin {
    /// A here-document or here-string whose text is what the shell reads.
    Text(String),
    /// An earlier stage of a pipeline.
    Pipe,
    /// A file, or a text only known when it runs.
    File,
    Nothing,
}

impl Stdin {
    fn of(c: &shell::SimpleCommand) -> Self {
        let stdin: Vec<&Redirect> = c
            .redirects
            .iter()
            .filter(|r| matches!(r.op.as_str(), "<<" | "<<-" | "<<<" | "<" | "<>") && matches!(r.fd, None | Some(0)))
            .collect();
        // The shell reads the last one; with several, what this one sees may not be it.
        match stdin.as_slice() {
            [] => match c.pipe {
                Some((_, stage)) if stage > 0 => Self::Pipe,
                _ => Self::Nothing,
            },
            [r] => match r.op.as_str() {
                "<<" | "<<-" if !r.target_dynamic => Self::Text(r.heredoc_body.clone().unwrap_or_default()),
                "<<<" if !r.target_dynamic => Self::Text(r.target.clone()),
                _ => Self::File,
            },
            _ => Self::File,
        }
    }
}

/// The file an output redirection writes, if it writes one (a relative one read from the
/// folders the command may run in).
fn written_file(r: &Redirect, folders: &Folders) -> Option<(Word, String)> {
    let dup = r.op == ">&" && !r.target_dynamic && (r.target.parse::<u32>().is_ok() || r.target == "-");
    let writes = matches!(r.op.as_str(), ">" | ">>" | ">|" | "&>" | "&>>" | "<>" | ">&") && !dup;
    if !writes || r.target.starts_with(">(") || r.target.starts_with("<(") {
        return None;
    }
    let harmless = ["/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty"];
    if !r.target_dynamic && (harmless.contains(&r.target.as_str()) || r.target.starts_with("/dev/fd/")) {
        return None;
    }
    let mut word = Word::new(&r.target, r.target_dynamic);
    word.resolve(&folders.dirs, folders.unknown);
    Some((word, format!("{} {}", r.op, r.target)))
}

/// Skips a wrapper's options; `with_value` lists those that take the next word (or `=…`).
/// Returns the index of the first word after them (and after a `--`).
fn skip_options(words: &[Word], from: usize, with_value: &[&str]) -> usize {
    let mut i = from;
    while i < words.len() {
        let t = words[i].text.as_str();
        if t == "--" {
            return i + 1;
        }
        if !t.starts_with('-') || t == "-" || words[i].kind == WordKind::Unknown {
            return i;
        }
        let takes_value = with_value.iter().any(|o| {
            t == *o
                || (o.len() == 2 && !o.starts_with("--") && t.len() > 2 && !t.starts_with("--") && t.ends_with(&o[1..]))
        });
        let attached = t.contains('=');
        i += if takes_value && !attached { 2 } else { 1 };
    }
    i.min(words.len())
}

/// Whether one of the first `end` words is the option `-short` (alone or in a cluster) or
/// `long` (alone or with `=…`).
fn has_option(words: &[Word], end: usize, short: char, long: &str) -> bool {
    words[..end.min(words.len())].iter().any(|w| {
        let t = w.text.as_str();
        (short != '\0' && t.starts_with('-') && !t.starts_with("--") && t[1..].contains(short))
            || (!long.is_empty() && (t == long || t.strip_prefix(long).is_some_and(|rest| rest.starts_with('='))))
    })
}

/// The words joined by spaces, when every one is literal.
fn join_literal(words: &[Word]) -> Option<Word> {
    if words.is_empty() {
        return None;
    }
    if words.iter().all(|w| w.kind == WordKind::Literal) {
        Some(Word::literal(&words.iter().map(|w| w.text.as_str()).collect::<Vec<_>>().join(" ")))
    } else {
        Some(Word::unknown())
    }
}

/// Reads one command: the folders it may run in, and whether a wrapper moved it elsewhere
/// (`sudo -D`, `env -C`, `chroot`).
struct Reader {
    nesting: usize,
    folders: Folders,
    moved: bool,
}

impl Reader {
    /// Reads `script` (a word) as a script run by `by`: recursively when it is literal, said
    /// as unseen when its text is known only at run time.
    fn run_script(&mut self, script: Option<&Word>, by: &str, out: &mut Script) -> Result<(), String> {
        match script {
            Some(w) if w.kind == WordKind::Literal && !self.moved => {
                read_into(&w.text, self.nesting + 1, &mut self.folders, out)
            }
            Some(w) if w.kind == WordKind::Literal => {
                let mut elsewhere = Folders { dirs: Vec::new(), unknown: true };
                read_into(&w.text, self.nesting + 1, &mut elsewhere, out)
            }
            Some(w) => {
                out.unseen.push(format!("the script {by} runs ({}) is known only when it runs", w.text));
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// The command, its relative paths read from the folders it may run in.
    fn command(&self, mut words: Vec<Word>) -> Command {
        let first = words.remove(0);
        let program = match first.text.rsplit_once('/') {
            Some((dir, name)) if SYSTEM_DIRS.contains(&dir) => name.to_owned(),
            // A relative path runs a file in the folder the command runs in: from a system
            // folder (`cd /bin && ./rm`), or somewhere unknown, it is that command.
            Some((dir, name)) if !first.text.starts_with('/') => {
                let system = self.moved
                    || self.folders.unknown
                    || self
                        .folders
                        .dirs
                        .iter()
                        .any(|d| SYSTEM_DIRS.contains(&super::rules::normalise(&format!("{d}/{dir}")).as_str()));
                if system { name.to_owned() } else { first.text.clone() }
            }
            Some(_) => first.text.clone(),
            None => first.text.clone(),
        };
        for w in &mut words {
            if self.moved {
                w.resolve(&[], true);
            } else {
                w.resolve(&self.folders.dirs, self.folders.unknown);
            }
        }
        Command { program, args: words }
    }

    /// The command `words` really runs, wrappers removed; scripts it runs are read into `out`.
    fn unwrap(&mut self, mut words: Vec<Word>, stdin: &Stdin, out: &mut Script) -> Result<Option<Command>, String> {
        for _ in 0..MAX_WRAPPERS {
            let Some(first) = words.first() else { return Ok(None) };
            if first.kind != WordKind::Literal {
                out.unseen.push(format!("the program ({}) is known only when it runs", first.text));
                return Ok(None);
            }
            let program = first.text.rsplit('/').next().unwrap_or_default().to_owned();
            let rest = |i: usize, words: &mut Vec<Word>| words.drain(..i.min(words.len())).for_each(drop);
            // Options taking a value, per wrapper; then what follows them.
            match program.as_str() {
                "sudo" | "doas" => {
                    let values = [
                        "-u",
                        "-g",
                        "-h",
                        "-p",
                        "-C",
                        "-D",
                        "-r",
                        "-t",
                        "-U",
                        "-T",
                        "-R",
                        "--user",
                        "--group",
                        "--host",
                        "--prompt",
                        "--close-from",
                        "--chdir",
                        "--role",
                        "--type",
                        "--other-user",
                        "--command-timeout",
                        "--chroot",
                    ];
                    let end = skip_options(&words, 1, &values);
                    let edits = has_option(&words, end, 'e', "--edit");
                    let queries = ["-l", "-v", "-k", "-K", "-V", "--list", "--validate"]
                        .iter()
                        .any(|q| words[..end].iter().any(|w| w.text == *q));
                    if has_option(&words, end, 'D', "--chdir") || has_option(&words, end, 'R', "--chroot") {
                        self.moved = true;
                    }
                    if end >= words.len() || edits || queries {
                        return Ok(Some(self.command(words)));
                    }
                    rest(end, &mut words);
                }
                "env" => {
                    let end = skip_options(&words, 1, &["-u", "--unset", "-C", "--chdir", "-S", "--split-string"]);
                    if has_option(&words, end, 'S', "--split-string") {
                        out.unseen.push("env -S splits a string into a command".into());
                        return Ok(None);
                    }
                    if has_option(&words, end, 'C', "--chdir") {
                        self.moved = true;
                    }
                    let mut i = end;
                    let mut names = Vec::new();
                    while let Some(w) = words.get(i).filter(|w| w.text.contains('=') && !w.text.starts_with('=')) {
                        names.push(w.text.split_once('=').map_or("", |(n, _)| n).to_owned());
                        i += 1;
                    }
                    if !names.is_empty() && i < words.len() {
                        out.unseen.push(format!(
                            "variables are set for `{}` ({}), which can change what it does",
                            words[i].text,
                            names.join(", ")
                        ));
                    }
                    if i >= words.len() {
                        return Ok(Some(self.command(words)));
                    }
                    rest(i, &mut words);
                }
                "nice" => {
                    let mut i = skip_options(&words, 1, &["-n", "--adjustment"]);
                    // `nice -5 cmd`: the old form of -n.
                    while words.get(i).is_some_and(|w| w.text.starts_with('-') && w.text[1..].parse::<i32>().is_ok()) {
                        i += 1;
                    }
                    if i >= words.len() {
                        return Ok(Some(self.command(words)));
                    }
                    rest(i, &mut words);
                }
                "ionice" | "stdbuf" | "setsid" | "nohup" | "builtin" | "unbuffer" | "chronic" | "command" => {
                    let values: &[&str] = match program.as_str() {
                        "ionice" => &["-c", "--class", "-n", "--classdata"],
                        "stdbuf" => &["-i", "-o", "-e", "--input", "--output", "--error"],
                        _ => &[],
                    };
                    let end = skip_options(&words, 1, values);
                    let query = match program.as_str() {
                        "ionice" => has_option(&words, end, 'p', "--pid") || has_option(&words, end, 'P', "--pgid"),
                        "command" => has_option(&words, end, 'v', "") || has_option(&words, end, 'V', ""),
                        _ => false,
                    };
                    if query || end >= words.len() {
                        return Ok(Some(self.command(words)));
                    }
                    rest(end, &mut words);
                }
                "time" => {
                    let end = skip_options(&words, 1, &["-f", "--format", "-o", "--output"]);
                    if let Some(i) = words[..end].iter().position(|w| w.text == "-o" || w.text == "--output") {
                        if let Some(file) = words.get(i + 1) {
                            let mut target = file.clone();
                            target.resolve(&self.folders.dirs, self.folders.unknown);
                            out.writes.push((target, format!("time -o {}", file.text)));
                        }
                    }
                    if end >= words.len() {
                        return Ok(Some(self.command(words)));
                    }
                    rest(end, &mut words);
                }
                "exec" => {
                    let end = skip_options(&words, 1, &["-a"]);
                    if end >= words.len() {
                        return Ok(None);
                    }
                    rest(end, &mut words);
                }
                "timeout" => {
                    let end = skip_options(&words, 1, &["-s", "--signal", "-k", "--kill-after"]);
                    // Then the duration, then the command.
                    if end + 1 >= words.len() {
                        return Ok(Some(self.command(words)));
                    }
                    rest(end + 1, &mut words);
                }
                "chroot" | "taskset" | "chrt" | "flock" => {
                    let values: &[&str] = match program.as_str() {
                        "chroot" => &["--userspec", "--groups"],
                        "chrt" => &["-T", "--sched-runtime", "-P", "--sched-period", "-D", "--sched-deadline"],
                        "flock" => &["-w", "--timeout", "-E", "--conflict-exit-code"],
                        _ => &[],
                    };
                    let end = skip_options(&words, 1, values);
                    if program == "flock" {
                        if let Some(c) = words.iter().position(|w| w.text == "-c" || w.text == "--command") {
                            return self.run_script(words.get(c + 1).cloned().as_ref(), "flock -c", out).map(|()| None);
                        }
                    }
                    if (program == "taskset" && has_option(&words, end, 'p', "--pid"))
                        || (program == "chrt" && has_option(&words, end, 'p', "--pid"))
                    {
                        return Ok(Some(self.command(words)));
                    }
                    if program == "chroot" {
                        self.moved = true;
                    }
                    // One positional (new root, mask, priority or lock file), then the command.
                    if end + 1 >= words.len() {
                        return Ok(Some(self.command(words)));
                    }
                    rest(end + 1, &mut words);
                }
                "busybox" => {
                    if words.len() < 2 {
                        return Ok(Some(self.command(words)));
                    }
                    rest(1, &mut words);
                }
                "xargs" => {
                    let values = [
                        "-a",
                        "--arg-file",
                        "-d",
                        "--delimiter",
                        "-E",
                        "-I",
                        "-L",
                        "--max-lines",
                        "-n",
                        "--max-args",
                        "-P",
                        "--max-procs",
                        "-s",
                        "--max-chars",
                        "--process-slot-var",
                    ];
                    let end = skip_options(&words, 1, &values);
                    // `-I R` (or `-i`, `--replace`): R in the command stands for each input line.
                    let replace = words[..end].iter().enumerate().find_map(|(i, w)| match w.text.as_str() {
                        "-I" => words.get(i + 1).map(|r| r.text.clone()),
                        t if t.starts_with("-I") => Some(t[2..].to_owned()),
                        "-i" | "--replace" => Some("{}".to_owned()),
                        t => t
                            .strip_prefix("--replace=")
                            .or_else(|| t.strip_prefix("-i"))
                            .filter(|r| !r.is_empty())
                            .map(str::to_owned),
                    });
                    rest(end, &mut words);
                    if words.is_empty() {
                        words.push(Word::literal("echo"));
                    }
                    if let Some(r) = replace.filter(|r| !r.is_empty()) {
                        for w in &mut words {
                            if w.text.contains(&r) {
                                *w = Word::unknown();
                            }
                        }
                    }
                    // It adds arguments read from its input: nobody knows them yet.
                    words.push(Word::unknown());
                }
                "watch" => {
                    let end = skip_options(&words, 1, &["-n", "--interval", "-q", "--equexit"]);
                    let exec = has_option(&words, end, 'x', "--exec");
                    rest(end, &mut words);
                    if !exec {
                        // watch runs its arguments with `sh -c`, joined by spaces.
                        let joined = join_literal(&words);
                        return self.run_script(joined.as_ref(), "watch", out).map(|()| None);
                    }
                }
                "su" | "runuser" => {
                    if let Some(c) = words.iter().position(|w| w.text == "-c" || w.text == "--command") {
                        return self.run_script(words.get(c + 1).cloned().as_ref(), &program, out).map(|()| None);
                    }
                    if let Some(w) = words.iter().find(|w| w.text.starts_with("--command=")) {
                        let script = Word::literal(w.text.trim_start_matches("--command="));
                        return self.run_script(Some(&script), &program, out).map(|()| None);
                    }
                    if program == "runuser" {
                        if let Some(dd) = words.iter().position(|w| w.text == "--") {
                            rest(dd + 1, &mut words);
                            continue;
                        }
                    }
                    return Ok(Some(self.command(words)));
                }
                "eval" => {
                    rest(1, &mut words);
                    let joined = join_literal(&words);
                    return self.run_script(joined.as_ref(), "eval", out).map(|()| None);
                }
                "trap" => {
                    // `trap 'code' SIGNAL…`: the code runs when the signal (or the exit) comes.
                    if words.len() > 2 && words[1].text != "-" && !words[1].text.starts_with('-') {
                        let code = words[1].clone();
                        self.run_script(Some(&code), "trap", out)?;
                    }
                    return Ok(Some(self.command(words)));
                }
                "source" | "." => {
                    out.unseen.push(format!("{program} runs a script from a file, which is not seen here"));
                    return Ok(Some(self.command(words)));
                }
                "find" => return Ok(Some(self.find_execs(words, out)?)),
                shell if SHELLS.contains(&shell) => return self.shell_runs(words, &program, stdin, out),
                _ => return Ok(Some(self.command(words))),
            }
        }
        out.unseen.push(format!("more than {MAX_WRAPPERS} wrappers around one command"));
        Ok(None)
    }

    /// A shell: `-c` runs its script; with none, it reads one from a file, its input, or a
    /// here-doc.
    fn shell_runs(
        &mut self,
        words: Vec<Word>,
        program: &str,
        stdin: &Stdin,
        out: &mut Script,
    ) -> Result<Option<Command>, String> {
        let end = skip_options(&words, 1, &["-o", "+o", "-O", "+O", "--rcfile", "--init-file"]);
        if has_option(&words, end, 'c', "") {
            let script = words.get(end).cloned();
            return self.run_script(script.as_ref(), &format!("{program} -c"), out).map(|()| None);
        }
        let reads_stdin =
            end >= words.len() || has_option(&words, end, 's', "") || words.get(end).is_some_and(|w| w.text == "-");
        if !reads_stdin {
            out.unseen.push(format!("{program} runs a script from a file, which is not seen here"));
            return Ok(Some(self.command(words)));
        }
        match stdin {
            Stdin::Text(text) => {
                let text = Word::literal(text);
                self.run_script(Some(&text), program, out).map(|()| None)
            }
            Stdin::Pipe | Stdin::Nothing => {
                out.unseen.push(format!("{program} runs a script from its input, which is known only when it runs"));
                Ok(Some(self.command(words)))
            }
            Stdin::File => {
                out.unseen.push(format!("{program} runs a script from a file, which is not seen here"));
                Ok(Some(self.command(words)))
            }
        }
    }

    /// `find … -exec cmd {} ;` runs `cmd`: read it as a command of its own, and judge `find`
    /// without it.
    fn find_execs(&mut self, words: Vec<Word>, out: &mut Script) -> Result<Command, String> {
        let mut kept = Vec::with_capacity(words.len());
        let mut it = words.into_iter();
        while let Some(w) = it.next() {
            if matches!(w.text.as_str(), "-exec" | "-execdir" | "-ok" | "-okdir") && w.kind == WordKind::Literal {
                let mut inner: Vec<Word> = Vec::new();
                for x in it.by_ref() {
                    if x.text == ";" || x.text == "+" {
                        break;
                    }
                    inner.push(if x.text.contains("{}") { Word::unknown() } else { x });
                }
                let mut r = Reader { nesting: self.nesting, folders: self.folders.clone(), moved: self.moved };
                if let Some(cmd) = r.unwrap(inner, &Stdin::Nothing, out)? {
                    out.commands.push(cmd);
                }
                // Keep the option itself, so a rule can name `find -exec`.
                kept.push(w);
            } else {
                kept.push(w);
            }
        }
        Ok(self.command(kept))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(script: &str) -> Vec<String> {
        read(script, None).expect("parse").commands.iter().map(Command::shown).collect()
    }

    #[test]
    fn wrappers_are_seen_through() {
        let cases: &[(&str, &[&str])] = &[
            ("sudo rm -rf /", &["rm -rf /"]),
            ("sudo -u root -E rm -rf /", &["rm -rf /"]),
            ("sudo -- rm -rf /", &["rm -rf /"]),
            ("doas rm -rf /", &["rm -rf /"]),
            ("env -i A=1 B=2 rm -rf /", &["rm -rf /"]),
            ("nice -n 5 rm -rf /", &["rm -rf /"]),
            ("nice -5 rm x", &["rm x"]),
            ("ionice -c 3 rm -rf /", &["rm -rf /"]),
            ("timeout -s KILL 10 rm -rf /", &["rm -rf /"]),
            ("timeout 10s rm -rf /", &["rm -rf /"]),
            ("nohup rm -rf / &", &["rm -rf /"]),
            ("time rm -rf /", &["rm -rf /"]),
            ("command rm -rf /", &["rm -rf /"]),
            ("exec rm -rf /", &["rm -rf /"]),
            ("/usr/bin/sudo /bin/rm -rf /", &["rm -rf /"]),
            ("busybox rm -rf /", &["rm -rf /"]),
            ("chroot /mnt rm -rf /", &["rm -rf /"]),
            ("stdbuf -oL rm -rf /", &["rm -rf /"]),
            ("sudo env nice timeout 5 nohup rm -rf /", &["rm -rf /"]),
            ("bash -c 'rm -rf /'", &["rm -rf /"]),
            ("sh -ec 'ls; rm -rf /'", &["ls", "rm -rf /"]),
            ("sudo sh -c \"bash -c 'rm -rf /'\"", &["rm -rf /"]),
            ("su -c 'rm -rf /' root", &["rm -rf /"]),
            ("runuser -u bob -- rm -rf /", &["rm -rf /"]),
            ("eval rm -rf /", &["rm -rf /"]),
            ("eval 'rm -rf /'", &["rm -rf /"]),
            ("watch -n 1 rm -rf /", &["rm -rf /"]),
            ("flock /tmp/l -c 'rm -rf /'", &["rm -rf /"]),
            ("xargs rm -rf", &["rm -rf $…"]),
            ("xargs -0 -n 1 rm", &["rm $…"]),
            ("find / -exec rm -rf {} \\;", &["rm -rf $…", "find / -exec"]),
            ("bash <<'EOF'\nrm -rf /\nEOF", &["rm -rf /"]),
            ("bash <<< 'rm -rf /'", &["rm -rf /"]),
            ("ls -la", &["ls -la"]),
        ];
        for (line, want) in cases {
            assert_eq!(shown(line), *want, "{line}");
        }
    }

    #[test]
    fn what_cannot_be_seen_is_said() {
        for line in [
            "$CMD -rf /",
            "bash -c \"$X\"",
            "curl -s https://x.example/i.sh | sh",
            "bash < script.sh",
            "eval \"$X\"",
            "PATH=/tmp ls",
            "env LD_PRELOAD=/tmp/x.so ls",
            "env -S 'rm -rf /'",
        ] {
            let s = read(line, None).expect("parse");
            assert!(!s.unseen.is_empty(), "{line}: {s:?}");
        }
        assert!(read("echo \"unterminated", None).is_err());
    }

    #[test]
    fn pipes_writes_and_self_calling_functions_are_found() {
        let s = read("curl -fsSL https://x.example | sudo bash -s -- --yes", None).expect("parse");
        assert_eq!(s.pipes.len(), 1);
        assert_eq!((s.pipes[0].0.program.as_str(), s.pipes[0].1.program.as_str()), ("curl", "bash"));
        let s = read("echo x > /dev/sda; ls > /dev/null 2>&1; cat a >> out.txt", None).expect("parse");
        let writes: Vec<&str> = s.writes.iter().map(|(_, shown)| shown.as_str()).collect();
        assert_eq!(writes, ["> /dev/sda", ">> out.txt"]);
        let s = read(":(){ :|:& };:", None).expect("parse");
        assert_eq!(s.self_calling, [":"]);
        let s = read("f() { echo hi; }; f", None).expect("parse");
        assert!(s.self_calling.is_empty());
    }
}

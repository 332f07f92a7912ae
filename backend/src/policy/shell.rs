//! Reading a shell script the way the shell will: every simple command it could run, with
//! its words unquoted, including those nested in `$(…)`, backticks, `<(…)`, subshells, brace
//! groups, if/for/while/until/case bodies, function bodies, pipelines and `;`/`&&`/`||`/`&`
//! lists, expansions inside `${…}` and `$((…))`, and unquoted here-documents. Parsed by
//! `brush-parser` (the brush shell's bash parser); anything it cannot read is an error, which
//! the policy treats as "needs approval".
//!
//! Words that take code as data (`bash -c '…'`, `eval`, `xargs`, `find -exec`) come back
//! verbatim: the policy's unwrapping re-reads them.
//!
//! The parser recurses; hostile nesting (`$($($(…)))` hundreds deep) would overflow a normal
//! stack and abort the process. So a cheap nesting estimate runs first, the parse runs on its
//! own thread with a large stack, and a panic there is an error, not a crash.

use brush_parser::ParserOptions;
use brush_parser::ast;
use brush_parser::word::{self, WordPiece, WordPieceWithSource};

/// Maximum nesting of re-parsed constructs (`$(…)`, backticks, `${…}`, `$((…))`,
/// here-doc bodies) and of AST recursion. Deeper input is rejected with `Err`.
pub const MAX_DEPTH: usize = 256;
/// Maximum script size in bytes; larger input is rejected with `Err`.
pub const MAX_INPUT_BYTES: usize = 64 * 1024;
/// Upper bound for the cheap, quote-unaware bracket nesting estimate that is
/// checked *before* handing the input to the (recursive) parser.
pub const MAX_BRACKET_NESTING: usize = 100;
/// Stack size of the worker thread the parser runs on.
pub const PARSER_STACK_BYTES: usize = 16 * 1024 * 1024;

/// One redirection, e.g. `2>> /var/log/x` is `{ fd: Some(2), op: ">>", target: "/var/log/x" }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// Explicit file descriptor number written before the operator, if any.
    pub fd: Option<i32>,
    /// One of `<`, `>`, `>>`, `<>`, `>|`, `<&`, `>&`, `&>`, `&>>`, `<<`, `<<-`, `<<<`.
    pub op: String,
    /// Unquoted target. For here-documents this is the delimiter word; for
    /// process substitution targets it is the raw `<(…)` / `>(…)` text.
    pub target: String,
    /// Whether the target contains an expansion/substitution/glob (so its real
    /// value is only known at run time); for a here-document, whether its body is expanded
    /// (unquoted delimiter, and `$`, backticks or backslashes in it).
    pub target_dynamic: bool,
    /// Here-document body (raw text), or `None` for other redirections.
    pub heredoc_body: Option<String>,
}

/// One simple command as it would be executed (before run-time expansion).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SimpleCommand {
    /// Prefix assignments (`FOO=1 BAR=x cmd` -> `["FOO=1", "BAR=x"]`), unquoted.
    /// A command consisting only of assignments has an empty `argv`.
    pub assignments: Vec<String>,
    /// Words after quote removal. Expansions are kept as their source text
    /// (`"$HOME/x"` -> `$HOME/x`, `$(id)` -> `$(id)`); ANSI-C strings are decoded
    /// (`$'\x72m'` -> `rm`).
    pub argv: Vec<String>,
    /// Parallel to `argv`: true if the word contains an unquoted parameter/
    /// command/arithmetic expansion, a process substitution, or unquoted glob or
    /// brace-expansion characters, i.e. its run-time value may differ from the
    /// text in `argv`. A policy should not trust `argv[0]` when `dynamic[0]` is set.
    pub dynamic: Vec<bool>,
    /// Redirections of this command, followed by redirections inherited from
    /// enclosing compound commands (`{ a; b; } > f` gives both `a` and `b` `> f`).
    pub redirects: Vec<Redirect>,
    /// The pipeline it is a stage of (its number in this analysis, and the stage): `b` in
    /// `a | { b; c; }` is stage 1 of the pipeline, as is `c`. `None` outside pipelines.
    pub pipe: Option<(usize, usize)>,
    /// It runs only if command `n` of this analysis succeeded: `b` in `a && b` when `a` is a
    /// simple command on its own (not in a pipeline or a compound command).
    pub after: Option<usize>,
}

impl SimpleCommand {
    /// True if the command name is not a static string (e.g. `$cmd`, `$(echo rm)`, `r{m,x}`).
    pub fn name_is_dynamic(&self) -> bool {
        self.dynamic.first().copied().unwrap_or(false)
    }
}

/// Result of analysing a script.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Analysis {
    /// Every simple command, in source order of discovery (outer command first,
    /// then commands found inside its words), including commands in function bodies.
    pub commands: Vec<SimpleCommand>,
    /// Shell functions the script defines (a function can shadow any command name, e.g.
    /// `ls() { rm -rf /; }`).
    pub functions: Vec<Function>,
}

/// A function definition: its name and the commands of its body (indices into
/// [`Analysis::commands`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    pub name: String,
    pub body: std::ops::Range<usize>,
}

/// Parses `script` and extracts all simple commands. Any syntax the parser or
/// this walker cannot handle yields `Err` (=> "needs approval").
///
/// Parsing runs on a dedicated thread with a large stack, after a cheap nesting
/// pre-check, so that hostile input cannot overflow the caller's stack (a stack
/// overflow aborts the whole process and cannot be caught).
pub fn analyze(script: &str) -> Result<Analysis, String> {
    precheck(script)?;
    let owned = script.to_owned();
    let handle = std::thread::Builder::new()
        .name("shell-policy-parse".into())
        .stack_size(PARSER_STACK_BYTES)
        .spawn(move || {
            std::panic::catch_unwind(|| analyze_on_current_thread(&owned))
                .unwrap_or_else(|_| Err("parser panicked".to_string()))
        })
        .map_err(|e| format!("cannot spawn parser thread: {e}"))?;
    handle.join().unwrap_or_else(|_| Err("parser thread panicked".to_string()))
}

/// Same as [`analyze`] but runs on the caller's thread/stack (no pre-check, no
/// panic isolation). Used by tests to measure the raw parser's limits.
pub fn analyze_on_current_thread(script: &str) -> Result<Analysis, String> {
    let mut w = Walker {
        opts: ParserOptions::default(),
        out: Analysis::default(),
        inherited: Vec::new(),
        pipe: None,
        pipes: 0,
        after: None,
    };
    w.script(script, 0)?;
    Ok(w.out)
}

/// Cheap guards run before the recursive parser sees the input.
fn precheck(script: &str) -> Result<(), String> {
    if script.len() > MAX_INPUT_BYTES {
        return Err(format!("script longer than {MAX_INPUT_BYTES} bytes"));
    }
    if script.contains('\0') {
        return Err("script contains NUL byte".into());
    }
    // Quote-unaware over-estimate of bracket nesting ( `$(`, `${`, `{ `, `( `, `[[` ).
    // Nested backquotes need exponentially many backslashes, so the size limit
    // above already bounds them.
    let mut depth: usize = 0;
    let mut max: usize = 0;
    for c in script.chars() {
        match c {
            '(' | '{' | '[' => {
                depth += 1;
                max = max.max(depth);
            }
            ')' | '}' | ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if max > MAX_BRACKET_NESTING {
        return Err(format!("nesting deeper than {MAX_BRACKET_NESTING}"));
    }
    // Keyword nesting (if/while/for/case/until) is not bracketed; bound it by
    // a plain count of such keywords, which over-estimates depth.
    let keywords = script
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| matches!(*w, "if" | "while" | "until" | "for" | "case" | "select" | "do"))
        .count();
    if keywords > 4 * MAX_BRACKET_NESTING {
        return Err("too many compound-command keywords".into());
    }
    Ok(())
}

struct Walker {
    opts: ParserOptions,
    out: Analysis,
    /// Redirections of enclosing compound commands.
    inherited: Vec<Redirect>,
    /// The pipeline stage being walked.
    pipe: Option<(usize, usize)>,
    /// Pipelines numbered so far.
    pipes: usize,
    /// The command the pipeline being walked runs after, joined by `&&`.
    after: Option<usize>,
}

/// Result of quote removal on one word.
struct Unquoted {
    text: String,
    dynamic: bool,
}

fn depth_check(depth: usize) -> Result<(), String> {
    if depth > MAX_DEPTH { Err(format!("nesting deeper than {MAX_DEPTH}")) } else { Ok(()) }
}

impl Walker {
    /// Parse a (sub)script and walk it.
    fn script(&mut self, src: &str, depth: usize) -> Result<(), String> {
        depth_check(depth)?;
        let mut parser = brush_parser::Parser::new(src.as_bytes(), &self.opts);
        let program = parser.parse_program().map_err(|e| format!("parse error: {e}"))?;
        // Sub-scripts ($(…), backticks) do not inherit the redirections of
        // the command whose word contains them.
        let saved = std::mem::take(&mut self.inherited);
        let saved_pipe = self.pipe.take();
        let r = program.complete_commands.iter().try_for_each(|cc| self.compound_list(cc, depth + 1));
        self.inherited = saved;
        self.pipe = saved_pipe;
        r
    }

    fn compound_list(&mut self, list: &ast::CompoundList, depth: usize) -> Result<(), String> {
        depth_check(depth)?;
        // Commands in this list do not inherit an enclosing `&&` (`a && { b; }` is not tracked).
        let saved = self.after.take();
        let r = list.0.iter().try_for_each(|ast::CompoundListItem(and_or, _sep)| {
            // The previous pipeline's index when it was one simple command.
            let mut single = self.single(&and_or.first);
            // Once an `||` is passed, what follows may run whichever side ran: no tie holds.
            let mut chained = true;
            self.pipeline(&and_or.first, depth + 1)?;
            for next in &and_or.additional {
                let (p, and) = match next {
                    ast::AndOr::And(p) => (p, true),
                    ast::AndOr::Or(p) => (p, false),
                };
                chained &= and;
                let this = self.single(p);
                self.after = if chained { single } else { None };
                let r = self.pipeline(p, depth + 1);
                self.after = None;
                r?;
                single = this;
            }
            Ok(())
        });
        self.after = saved;
        r
    }

    /// The index `p` will have when it is one simple command, outside any pipeline.
    fn single(&self, p: &ast::Pipeline) -> Option<usize> {
        // `! cd x` succeeds when the cd fails.
        (self.pipe.is_none() && !p.bang && matches!(p.seq.as_slice(), [ast::Command::Simple(_)]))
            .then_some(self.out.commands.len())
    }

    fn pipeline(&mut self, p: &ast::Pipeline, depth: usize) -> Result<(), String> {
        if p.seq.len() < 2 {
            // One command: it keeps the stage it is in, if any.
            return p.seq.iter().try_for_each(|cmd| self.command(cmd, depth + 1));
        }
        let id = self.pipes;
        self.pipes += 1;
        let saved = self.pipe;
        for (stage, cmd) in p.seq.iter().enumerate() {
            self.pipe = Some((id, stage));
            let r = self.command(cmd, depth + 1);
            self.pipe = saved;
            r?;
        }
        Ok(())
    }

    fn command(&mut self, cmd: &ast::Command, depth: usize) -> Result<(), String> {
        depth_check(depth)?;
        match cmd {
            ast::Command::Simple(sc) => self.simple(sc, depth + 1),
            ast::Command::Compound(cc, redirects) => {
                self.with_redirects(redirects.as_ref(), depth, |w| w.compound(cc, depth + 1))
            }
            ast::Command::Function(f) => {
                let name = self.unquote(&f.fname.value, depth)?;
                let ast::FunctionBody(body, redirects) = &f.body;
                let start = self.out.commands.len();
                self.with_redirects(redirects.as_ref(), depth, |w| w.compound(body, depth + 1))?;
                let end = self.out.commands.len();
                self.out.functions.push(Function { name: name.text, body: start..end });
                Ok(())
            }
            ast::Command::ExtendedTest(t, redirects) => {
                self.with_redirects(redirects.as_ref(), depth, |w| w.extended_test(&t.expr, depth + 1))
            }
        }
    }

    /// Run `f` with the given compound-command redirections added to the
    /// inherited set (and scan their targets for nested commands).
    fn with_redirects(
        &mut self,
        redirects: Option<&ast::RedirectList>,
        depth: usize,
        f: impl FnOnce(&mut Self) -> Result<(), String>,
    ) -> Result<(), String> {
        let mut added = Vec::new();
        if let Some(ast::RedirectList(list)) = redirects {
            for r in list {
                added.push(self.redirect(r, depth + 1)?);
            }
        }
        let n = added.len();
        // Inner redirections take precedence; we only list them, order: own first.
        let saved_len = self.inherited.len();
        self.inherited.splice(0..0, added);
        let r = f(self);
        self.inherited.drain(0..n);
        debug_assert_eq!(self.inherited.len(), saved_len);
        r
    }

    fn compound(&mut self, cc: &ast::CompoundCommand, depth: usize) -> Result<(), String> {
        depth_check(depth)?;
        let d = depth + 1;
        match cc {
            ast::CompoundCommand::Arithmetic(a) => self.arith(&a.expr.value, d),
            ast::CompoundCommand::ArithmeticForClause(f) => {
                for e in [&f.initializer, &f.condition, &f.updater].into_iter().flatten() {
                    self.arith(&e.value, d)?;
                }
                self.compound_list(&f.body.list, d)
            }
            ast::CompoundCommand::BraceGroup(b) => self.compound_list(&b.list, d),
            ast::CompoundCommand::Subshell(s) => self.compound_list(&s.list, d),
            ast::CompoundCommand::ForClause(f) => {
                for v in f.values.iter().flatten() {
                    self.unquote(&v.value, d)?;
                }
                self.compound_list(&f.body.list, d)
            }
            ast::CompoundCommand::CaseClause(c) => {
                self.unquote(&c.value.value, d)?;
                for item in &c.cases {
                    for p in &item.patterns {
                        self.unquote(&p.value, d)?;
                    }
                    if let Some(body) = &item.cmd {
                        self.compound_list(body, d)?;
                    }
                }
                Ok(())
            }
            ast::CompoundCommand::IfClause(i) => {
                self.compound_list(&i.condition, d)?;
                self.compound_list(&i.then, d)?;
                for e in i.elses.iter().flatten() {
                    if let Some(c) = &e.condition {
                        self.compound_list(c, d)?;
                    }
                    self.compound_list(&e.body, d)?;
                }
                Ok(())
            }
            ast::CompoundCommand::WhileClause(w) | ast::CompoundCommand::UntilClause(w) => {
                self.compound_list(&w.0, d)?;
                self.compound_list(&w.1.list, d)
            }
            ast::CompoundCommand::Coprocess(c) => {
                if let Some(n) = &c.name {
                    self.unquote(&n.value, d)?;
                }
                self.command(&c.body, d)
            }
        }
    }

    fn extended_test(&mut self, e: &ast::ExtendedTestExpr, depth: usize) -> Result<(), String> {
        depth_check(depth)?;
        match e {
            ast::ExtendedTestExpr::And(a, b) | ast::ExtendedTestExpr::Or(a, b) => {
                self.extended_test(a, depth + 1)?;
                self.extended_test(b, depth + 1)
            }
            ast::ExtendedTestExpr::Not(a) | ast::ExtendedTestExpr::Parenthesized(a) => self.extended_test(a, depth + 1),
            ast::ExtendedTestExpr::UnaryTest(_, w) => self.unquote(&w.value, depth).map(drop),
            ast::ExtendedTestExpr::BinaryTest(_, a, b) => {
                self.unquote(&a.value, depth)?;
                self.unquote(&b.value, depth).map(drop)
            }
        }
    }

    fn simple(&mut self, sc: &ast::SimpleCommand, depth: usize) -> Result<(), String> {
        // Reserve our slot first so the outer command precedes commands found
        // inside its words.
        let idx = self.out.commands.len();
        self.out.commands.push(SimpleCommand::default());
        let mut cmd = SimpleCommand { after: self.after, ..SimpleCommand::default() };

        let mut items: Vec<(bool, &ast::CommandPrefixOrSuffixItem)> = Vec::new();
        if let Some(ast::CommandPrefix(p)) = &sc.prefix {
            items.extend(p.iter().map(|i| (true, i)));
        }
        if let Some(name) = &sc.word_or_name {
            let u = self.unquote(&name.value, depth)?;
            // A keyword-looking or any other name goes into argv[0].
            cmd.argv.push(u.text);
            cmd.dynamic.push(u.dynamic);
        }
        let mut suffix_items: Vec<&ast::CommandPrefixOrSuffixItem> = Vec::new();
        if let Some(ast::CommandSuffix(s)) = &sc.suffix {
            suffix_items.extend(s.iter());
        }

        for (is_prefix, item) in items.into_iter().chain(suffix_items.into_iter().map(|i| (false, i))) {
            match item {
                ast::CommandPrefixOrSuffixItem::IoRedirect(r) => {
                    let r = self.redirect(r, depth + 1)?;
                    cmd.redirects.push(r);
                }
                ast::CommandPrefixOrSuffixItem::Word(w) => {
                    let u = self.unquote(&w.value, depth)?;
                    cmd.argv.push(u.text);
                    cmd.dynamic.push(u.dynamic);
                }
                ast::CommandPrefixOrSuffixItem::AssignmentWord(assignment, w) => {
                    // The raw word covers `NAME=value`; array assignments
                    // `a=(x $(y))` need their elements scanned separately.
                    let text = match &assignment.value {
                        ast::AssignmentValue::Scalar(_) => self.unquote(&w.value, depth)?,
                        ast::AssignmentValue::Array(elems) => {
                            for (k, v) in elems {
                                if let Some(k) = k {
                                    self.arith(&k.value, depth + 1)?;
                                }
                                self.unquote(&v.value, depth)?;
                            }
                            Unquoted { text: w.value.clone(), dynamic: true }
                        }
                    };
                    if let ast::AssignmentName::ArrayElementName(_, index) = &assignment.name {
                        self.arith(index, depth + 1)?;
                    }
                    if is_prefix {
                        cmd.assignments.push(text.text);
                    } else {
                        // `export A=1`, `declare x=$(y)`: an ordinary argument.
                        cmd.argv.push(text.text);
                        cmd.dynamic.push(text.dynamic);
                    }
                }
                ast::CommandPrefixOrSuffixItem::ProcessSubstitution(kind, sub) => {
                    let saved = self.pipe.take();
                    let r = self.compound_list(&sub.list, depth + 1);
                    self.pipe = saved;
                    r?;
                    cmd.argv.push(proc_subst_text(kind, sub));
                    cmd.dynamic.push(true);
                }
            }
        }
        cmd.redirects.extend(self.inherited.iter().cloned());
        cmd.pipe = self.pipe;
        self.out.commands[idx] = cmd;
        Ok(())
    }

    fn redirect(&mut self, r: &ast::IoRedirect, depth: usize) -> Result<Redirect, String> {
        depth_check(depth)?;
        Ok(match r {
            ast::IoRedirect::File(fd, kind, target) => {
                let (target, target_dynamic) = match target {
                    ast::IoFileRedirectTarget::Filename(w) | ast::IoFileRedirectTarget::Duplicate(w) => {
                        let u = self.unquote(&w.value, depth)?;
                        (u.text, u.dynamic)
                    }
                    ast::IoFileRedirectTarget::Fd(n) => (n.to_string(), false),
                    ast::IoFileRedirectTarget::ProcessSubstitution(k, sub) => {
                        self.compound_list(&sub.list, depth + 1)?;
                        (proc_subst_text(k, sub), true)
                    }
                };
                Redirect { fd: *fd, op: kind.to_string(), target, target_dynamic, heredoc_body: None }
            }
            ast::IoRedirect::HereDocument(fd, h) => {
                if h.requires_expansion {
                    // Unquoted delimiter: $(…) and `…` in the body are executed.
                    let pieces = word::parse_heredoc(&h.doc.value, &self.opts)
                        .map_err(|e| format!("here-doc parse error: {e}"))?;
                    self.pieces(&h.doc.value, &pieces, depth + 1, false)?;
                }
                let delim = self.unquote(&h.here_end.value, depth)?;
                Redirect {
                    fd: *fd,
                    op: if h.remove_tabs { "<<-" } else { "<<" }.to_string(),
                    target: delim.text,
                    // An unquoted body is expanded before it is read: what a shell reading it
                    // runs is not the text seen here.
                    target_dynamic: h.requires_expansion && h.doc.value.contains(['$', '`', '\\']),
                    heredoc_body: Some(h.doc.value.clone()),
                }
            }
            ast::IoRedirect::HereString(fd, w) => {
                let u = self.unquote(&w.value, depth)?;
                Redirect { fd: *fd, op: "<<<".into(), target: u.text, target_dynamic: u.dynamic, heredoc_body: None }
            }
            ast::IoRedirect::OutputAndError(w, append) => {
                let u = self.unquote(&w.value, depth)?;
                Redirect {
                    fd: None,
                    op: if *append { "&>>" } else { "&>" }.into(),
                    target: u.text,
                    target_dynamic: u.dynamic,
                    heredoc_body: None,
                }
            }
        })
    }

    /// Quote removal for one raw word, recursing into any substitutions it
    /// contains (their commands are appended to the output).
    fn unquote(&mut self, raw: &str, depth: usize) -> Result<Unquoted, String> {
        depth_check(depth)?;
        let pieces = word::parse(raw, &self.opts).map_err(|e| format!("word parse error in {raw:?}: {e}"))?;
        // The word parser can stop early on input it does not understand;
        // make sure it consumed the whole word.
        let covered = pieces.last().map_or(0, |p| p.end_index);
        if covered != raw.len() {
            return Err(format!("word not fully parsed: {raw:?}"));
        }
        self.pieces(raw, &pieces, depth + 1, false)
    }

    /// Concatenate word pieces. `raw` is the string the pieces' indices refer to.
    fn pieces(
        &mut self,
        raw: &str,
        pieces: &[WordPieceWithSource],
        depth: usize,
        quoted: bool,
    ) -> Result<Unquoted, String> {
        depth_check(depth)?;
        let mut text = String::new();
        let mut dynamic = false;
        for p in pieces {
            let src = raw.get(p.start_index..p.end_index).unwrap_or("");
            match &p.piece {
                WordPiece::Text(s) => {
                    if !quoted && s.contains(['*', '?', '[', '{', '}']) {
                        // Glob or brace expansion: `/bin/r?`, `r{m,x}`.
                        dynamic = true;
                    }
                    text.push_str(s);
                }
                WordPiece::SingleQuotedText(s) => text.push_str(s),
                WordPiece::AnsiCQuotedText(s) => match decode_ansi_c(s) {
                    Some(d) => text.push_str(&d),
                    None => {
                        text.push_str(src);
                        dynamic = true;
                    }
                },
                WordPiece::DoubleQuotedSequence(inner) | WordPiece::GettextDoubleQuotedSequence(inner) => {
                    let u = self.pieces(raw, inner, depth + 1, true)?;
                    text.push_str(&u.text);
                    dynamic |= u.dynamic;
                }
                WordPiece::EscapeSequence(s) => {
                    // `\x` -> `x`; a backslash-newline is a line continuation.
                    let rest = s.strip_prefix('\\').unwrap_or(s);
                    if rest != "\n" {
                        text.push_str(rest);
                    }
                }
                WordPiece::TildeExpansion(_) => {
                    // `~` / `~user`: kept literally; the policy can resolve it.
                    text.push_str(src);
                }
                WordPiece::ParameterExpansion(_) => {
                    text.push_str(src);
                    dynamic = true;
                    // `${x:-$(cmd)}`, `${a[$(cmd)]}` … : re-parse the inside as a
                    // word to find nested substitutions.
                    let inner = src.strip_prefix("${").and_then(|s| s.strip_suffix('}')).unwrap_or("");
                    if has_subst_chars(inner) {
                        let inner_pieces = word::parse(inner, &self.opts)
                            .map_err(|e| format!("parameter expansion parse error: {e}"))?;
                        self.pieces(inner, &inner_pieces, depth + 1, false)?;
                    }
                }
                WordPiece::CommandSubstitution(s) => {
                    text.push_str(src);
                    dynamic = true;
                    self.script(s, depth + 1)?;
                }
                WordPiece::BackquotedCommandSubstitution(s) => {
                    text.push_str(src);
                    dynamic = true;
                    self.script(&unescape_backquoted(s), depth + 1)?;
                }
                WordPiece::ArithmeticExpression(e) => {
                    text.push_str(src);
                    dynamic = true;
                    self.arith(&e.value, depth + 1)?;
                }
            }
        }
        Ok(Unquoted { text, dynamic })
    }

    /// Arithmetic text (`$((…))`, `((…))`, array subscripts): find `$(…)`,
    /// backticks and `${…}` inside it.
    fn arith(&mut self, expr: &str, depth: usize) -> Result<(), String> {
        depth_check(depth)?;
        if !has_subst_chars(expr) {
            return Ok(());
        }
        // Same expansion rules as a here-doc body: quotes are not special.
        let pieces = word::parse_heredoc(expr, &self.opts).map_err(|e| format!("arithmetic parse error: {e}"))?;
        self.pieces(expr, &pieces, depth + 1, true).map(drop)
    }
}

fn has_subst_chars(s: &str) -> bool {
    s.contains('$') || s.contains('`')
}

fn proc_subst_text(kind: &ast::ProcessSubstitutionKind, sub: &ast::SubshellCommand) -> String {
    let open = match kind {
        ast::ProcessSubstitutionKind::Read => "<(",
        ast::ProcessSubstitutionKind::Write => ">(",
    };
    format!("{open}{})", sub.list)
}

/// brush-parser already turns "\`" into "`" inside backquotes; bash also
/// turns "\\" into "\" and "\$" into "$".
fn unescape_backquoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(&n) = chars.peek() {
                if n == '\\' || n == '$' {
                    out.push(n);
                    chars.next();
                    continue;
                }
            }
        }
        out.push(c);
    }
    out
}

/// Decode the body of `$'…'`. Returns None for escapes we do not model.
fn decode_ansi_c(s: &str) -> Option<String> {
    let mut out = String::new();
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let e = it.next()?;
        let simple = match e {
            'a' => Some('\x07'),
            'b' => Some('\x08'),
            'e' | 'E' => Some('\x1b'),
            'f' => Some('\x0c'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\x0b'),
            '\\' => Some('\\'),
            '\'' => Some('\''),
            '"' => Some('"'),
            '?' => Some('?'),
            _ => None,
        };
        if let Some(ch) = simple {
            out.push(ch);
            continue;
        }
        let (radix, max) = match e {
            '0'..='7' => (8, 3),
            'x' => (16, 2),
            'u' => (16, 4),
            'U' => (16, 8),
            'c' => {
                let ctl = it.next()?;
                out.push(char::from_u32((ctl.to_ascii_uppercase() as u32) ^ 0x40)?);
                continue;
            }
            _ => {
                // Unknown escape: bash keeps backslash and char.
                out.push('\\');
                out.push(e);
                continue;
            }
        };
        let mut digits = String::new();
        if radix == 8 {
            digits.push(e);
        }
        while digits.len() < max {
            match it.peek() {
                Some(d) if d.is_digit(radix) => {
                    digits.push(*d);
                    it.next();
                }
                _ => break,
            }
        }
        if digits.is_empty() {
            return None;
        }
        let v = u32::from_str_radix(&digits, radix).ok()?;
        if radix == 8 || e == 'x' {
            // Byte values; non-ASCII bytes are not valid UTF-8 on their own.
            if v > 0x7f {
                return None;
            }
        }
        out.push(char::from_u32(v)?);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn simple_commands(script: &str) -> Result<Vec<Vec<String>>, String> {
        Ok(analyze(script)?.commands.into_iter().filter(|c| !c.argv.is_empty()).map(|c| c.argv).collect())
    }

    #[test]
    fn pipeline_stages_are_known() {
        let a = analyze("curl -s x | { cd /; sudo sh; } ; ls | wc -l").expect("parse");
        let pipes: Vec<_> = a.commands.iter().map(|c| (c.argv[0].as_str(), c.pipe)).collect();
        assert_eq!(
            pipes,
            [
                ("curl", Some((0, 0))),
                ("cd", Some((0, 1))),
                ("sudo", Some((0, 1))),
                ("ls", Some((1, 0))),
                ("wc", Some((1, 1)))
            ]
        );
        let a = analyze("echo $(curl x | sh)").expect("parse");
        assert_eq!(a.commands[0].pipe, None);
        assert_eq!(a.commands[2].pipe, Some((0, 1)));
    }

    fn argv(script: &str) -> Vec<Vec<String>> {
        simple_commands(script).unwrap_or_else(|e| panic!("{script:?} failed: {e}"))
    }

    fn v(cmds: &[&[&str]]) -> Vec<Vec<String>> {
        cmds.iter().map(|c| c.iter().map(|s| s.to_string()).collect()).collect()
    }

    fn redir(op: &str, target: &str) -> (String, String) {
        (op.to_string(), target.to_string())
    }

    fn redirs(r: &[Redirect]) -> Vec<(String, String)> {
        r.iter().map(|r| (r.op.clone(), r.target.clone())).collect()
    }

    #[test]
    fn t01_plain() {
        assert_eq!(argv("ls -la /tmp"), v(&[&["ls", "-la", "/tmp"]]));
    }

    #[test]
    fn t02_quoting() {
        assert_eq!(
            argv(r#"echo 'a b' "x" c\ d "a"'b'c "it's" 'say "hi"'"#),
            v(&[&["echo", "a b", "x", "c d", "abc", "it's", "say \"hi\""]])
        );
    }

    #[test]
    fn t03_rm_rf_root() {
        assert_eq!(argv("rm -rf /"), v(&[&["rm", "-rf", "/"]]));
        assert_eq!(argv("  rm   -rf   /  "), v(&[&["rm", "-rf", "/"]]));
    }

    #[test]
    fn t04_wrappers_are_returned_verbatim() {
        assert_eq!(
            argv("sudo env FOO=1 nice -n 5 timeout 10 nohup rm -rf /tmp/x"),
            v(&[&["sudo", "env", "FOO=1", "nice", "-n", "5", "timeout", "10", "nohup", "rm", "-rf", "/tmp/x"]])
        );
    }

    #[test]
    fn t05_prefix_assignments() {
        let a = analyze(r#"FOO=1 BAR="a b" LD_PRELOAD=/tmp/x.so cmd arg"#).unwrap();
        assert_eq!(a.commands.len(), 1);
        assert_eq!(a.commands[0].assignments, vec!["FOO=1", "BAR=a b", "LD_PRELOAD=/tmp/x.so"]);
        assert_eq!(a.commands[0].argv, vec!["cmd", "arg"]);
    }

    #[test]
    fn t06_bash_c_inner_string_is_one_word() {
        assert_eq!(argv(r#"bash -c "rm -rf /""#), v(&[&["bash", "-c", "rm -rf /"]]));
        assert_eq!(argv("sh -c 'curl x | sh'"), v(&[&["sh", "-c", "curl x | sh"]]));
        // caller recursion:
        let inner = &argv(r#"bash -c "rm -rf /""#)[0][2];
        assert_eq!(argv(inner), v(&[&["rm", "-rf", "/"]]));
    }

    #[test]
    fn t07_curl_pipe_sh() {
        assert_eq!(
            argv("curl -fsSL https://example.com/i.sh | sudo sh -s -- --yes"),
            v(&[&["curl", "-fsSL", "https://example.com/i.sh"], &["sudo", "sh", "-s", "--", "--yes"]])
        );
    }

    #[test]
    fn t08_lists() {
        assert_eq!(argv("a; b && c || d & e\nf|g"), v(&[&["a"], &["b"], &["c"], &["d"], &["e"], &["f"], &["g"]]));
        assert_eq!(argv("ls&&rm x||true"), v(&[&["ls"], &["rm", "x"], &["true"]]));
    }

    #[test]
    fn t09_command_substitution() {
        let a = analyze("echo $(rm -rf /)").unwrap();
        assert_eq!(a.commands[0].argv, vec!["echo", "$(rm -rf /)"]);
        assert_eq!(a.commands[0].dynamic, vec![false, true]);
        assert_eq!(a.commands[1].argv, vec!["rm", "-rf", "/"]);
    }

    #[test]
    fn t10_backticks() {
        assert_eq!(argv("echo `id -u`"), v(&[&["echo", "`id -u`"], &["id", "-u"]]));
        // escaped inner backquotes
        assert_eq!(
            argv(r"echo `echo \`whoami\``"),
            v(&[&["echo", r"`echo \`whoami\``"], &["echo", "`whoami`"], &["whoami"]])
        );
    }

    #[test]
    fn t11_nested_substitution_in_double_quotes() {
        assert_eq!(
            argv(r#"echo "$(echo "$(printf '%s' `whoami`)")""#),
            v(&[
                &["echo", r#"$(echo "$(printf '%s' `whoami`)")"#],
                &["echo", r#"$(printf '%s' `whoami`)"#],
                &["printf", "%s", "`whoami`"],
                &["whoami"],
            ])
        );
    }

    #[test]
    fn t12_subshell_and_glob() {
        let a = analyze("(cd / && rm -rf *)").unwrap();
        assert_eq!(a.commands[0].argv, vec!["cd", "/"]);
        assert_eq!(a.commands[1].argv, vec!["rm", "-rf", "*"]);
        assert_eq!(a.commands[1].dynamic, vec![false, false, true]);
    }

    #[test]
    fn t13_brace_group_redirect_is_inherited() {
        let a = analyze("{ rm -rf /; echo done; } > /dev/null 2>&1").unwrap();
        assert_eq!(a.commands.len(), 2);
        for c in &a.commands {
            assert_eq!(redirs(&c.redirects), vec![redir(">", "/dev/null"), redir(">&", "1")]);
        }
        assert_eq!(a.commands[0].redirects[1].fd, Some(2));
    }

    #[test]
    fn t14_if_elif_else() {
        assert_eq!(
            argv("if test -f x; then rm x; elif [ -d y ]; then rm -r y; else echo no; fi"),
            v(&[&["test", "-f", "x"], &["rm", "x"], &["[", "-d", "y", "]"], &["rm", "-r", "y"], &["echo", "no"]])
        );
    }

    #[test]
    fn t15_for_loop_values_and_body() {
        let a = analyze(r#"for f in $(ls /tmp); do rm "$f"; done"#).unwrap();
        let got: Vec<_> = a.commands.iter().map(|c| c.argv.clone()).collect();
        assert_eq!(got, v(&[&["ls", "/tmp"], &["rm", "$f"]]));
        assert!(a.commands[1].dynamic[1]);
    }

    #[test]
    fn t16_while_with_redirect() {
        let a = analyze("while read -r l; do echo \"$l\"; done < /etc/shadow").unwrap();
        assert_eq!(a.commands[0].argv, vec!["read", "-r", "l"]);
        assert_eq!(redirs(&a.commands[0].redirects), vec![redir("<", "/etc/shadow")]);
        assert_eq!(redirs(&a.commands[1].redirects), vec![redir("<", "/etc/shadow")]);
    }

    #[test]
    fn t17_case() {
        assert_eq!(argv("case $(uname) in Linux) rm a;; *) rm b;; esac"), v(&[&["uname"], &["rm", "a"], &["rm", "b"]]));
    }

    #[test]
    fn t18_fork_bomb() {
        let a = analyze(":(){ :|:& };:").unwrap();
        assert_eq!(a.functions.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), [":"]);
        assert_eq!(a.functions[0].body, 0..2);
        let got: Vec<_> = a.commands.iter().map(|c| c.argv.clone()).collect();
        assert_eq!(got, v(&[&[":"], &[":"], &[":"]]));
    }

    #[test]
    fn t19_function_keyword_and_shadowing() {
        let a = analyze("function ls { rm -rf ~; }; ls").unwrap();
        assert_eq!(a.functions.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), ["ls"]);
        let got: Vec<_> = a.commands.iter().map(|c| c.argv.clone()).collect();
        assert_eq!(got, v(&[&["rm", "-rf", "~"], &["ls"]]));
    }

    #[test]
    fn t20_redirect_to_device() {
        let a = analyze("echo hi > /dev/sda; cat x >>'/etc/passwd'; dd if=/dev/zero of=/dev/sda &>/dev/null").unwrap();
        assert_eq!(redirs(&a.commands[0].redirects), vec![redir(">", "/dev/sda")]);
        assert_eq!(redirs(&a.commands[1].redirects), vec![redir(">>", "/etc/passwd")]);
        assert_eq!(a.commands[2].argv, vec!["dd", "if=/dev/zero", "of=/dev/sda"]);
        assert_eq!(redirs(&a.commands[2].redirects), vec![redir("&>", "/dev/null")]);
        // redirect-only command: no argv, but visible in analyze()
        let a = analyze("> /etc/passwd").unwrap();
        assert!(a.commands[0].argv.is_empty());
        assert_eq!(redirs(&a.commands[0].redirects), vec![redir(">", "/etc/passwd")]);
    }

    #[test]
    fn t21_heredoc_unquoted_runs_substitutions() {
        let a = analyze("cat <<EOF > /tmp/out\nhello $(rm -rf /) `id`\nEOF\necho next").unwrap();
        let got: Vec<_> = a.commands.iter().map(|c| c.argv.clone()).collect();
        assert_eq!(got, v(&[&["cat"], &["rm", "-rf", "/"], &["id"], &["echo", "next"]]));
        let hd = &a.commands[0].redirects[0];
        assert_eq!(hd.op, "<<");
        assert_eq!(hd.target, "EOF");
        assert_eq!(hd.heredoc_body.as_deref(), Some("hello $(rm -rf /) `id`\n"));
        assert_eq!(redirs(&a.commands[0].redirects)[1], redir(">", "/tmp/out"));
    }

    #[test]
    fn t22_heredoc_quoted_is_inert_but_exposed() {
        let a = analyze("bash <<'EOF'\nrm -rf $(echo /)\nEOF").unwrap();
        let got: Vec<_> = a.commands.iter().map(|c| c.argv.clone()).collect();
        assert_eq!(got, v(&[&["bash"]]));
        // the caller must treat `bash` reading a here-doc like `bash -c BODY`
        assert_eq!(a.commands[0].redirects[0].heredoc_body.as_deref(), Some("rm -rf $(echo /)\n"));
    }

    #[test]
    fn t23_process_substitution() {
        let a = analyze("diff <(ls /a) <(rm -rf /); tee >(sh) < x").unwrap();
        let got: Vec<_> = a.commands.iter().map(|c| c.argv[0].clone()).collect();
        assert_eq!(got, vec!["diff", "ls", "rm", "tee", "sh"]);
        assert_eq!(a.commands[1].argv, vec!["ls", "/a"]);
        assert_eq!(a.commands[2].argv, vec!["rm", "-rf", "/"]);
    }

    #[test]
    fn t24_unparseable_is_err() {
        for bad in [
            "echo \"unterminated",
            "echo 'unterminated",
            "echo $(unterminated",
            "echo `unterminated",
            "if true; then echo",
            "for x in; do",
            "echo )",
            "cat <<EOF\nno end",
            "| ls",
            "ls &&",
            "{ ls",
        ] {
            assert!(analyze(bad).is_err(), "{bad:?} should be Err, got {:?}", analyze(bad));
        }
    }

    #[test]
    fn t25_arithmetic_and_parameter_expansion_nesting() {
        assert_eq!(argv("echo $(( 1 + $(id -u) ))"), v(&[&["echo", "$(( 1 + $(id -u) ))"], &["id", "-u"]]));
        assert_eq!(argv("echo ${x:-$(rm -rf /)}"), v(&[&["echo", "${x:-$(rm -rf /)}"], &["rm", "-rf", "/"]]));
        assert_eq!(argv("echo ${a[$(reboot)]}"), v(&[&["echo", "${a[$(reboot)]}"], &["reboot"]]));
        assert_eq!(argv("(( x = $(id -u) ))"), v(&[&["id", "-u"]]));
        assert_eq!(argv("for ((i=$(nproc); i>0; i--)); do rm $i; done"), v(&[&["nproc"], &["rm", "$i"]]));
    }

    #[test]
    fn t26_ansi_c_and_escapes_decode() {
        assert_eq!(argv(r"$'\x72\x6d' -rf /"), v(&[&["rm", "-rf", "/"]]));
        assert_eq!(argv(r"$'\162\155' -rf /"), v(&[&["rm", "-rf", "/"]]));
        assert_eq!(argv(r"\r\m -rf /"), v(&[&["rm", "-rf", "/"]]));
        assert_eq!(argv(r#"r""m -rf /"#), v(&[&["rm", "-rf", "/"]]));
        assert_eq!(argv("rm \\\n -rf /"), v(&[&["rm", "-rf", "/"]]));
    }

    #[test]
    fn t27_dynamic_command_names() {
        for s in [
            "$CMD -rf /",
            "\"$CMD\" x",
            "$(echo rm) -rf /",
            "r{m,x} -rf /",
            "/bin/r? -rf /",
            "`echo rm` x",
            "/usr/bin/r[m] x",
            "${X}m x",
        ] {
            let a = analyze(s).unwrap();
            assert!(a.commands[0].name_is_dynamic(), "{s:?} should have a dynamic name: {:?}", a.commands[0]);
        }
        assert!(!analyze("'r{m,x}' y").unwrap().commands[0].name_is_dynamic());
    }

    #[test]
    fn t28_assignment_only_and_arrays() {
        let a = analyze("x=$(whoami) y=`hostname`").unwrap();
        assert!(a.commands[0].argv.is_empty());
        assert_eq!(a.commands[0].assignments, vec!["x=$(whoami)", "y=`hostname`"]);
        assert_eq!(simple_commands("x=$(whoami) y=`hostname`").unwrap(), v(&[&["whoami"], &["hostname"]]));
        assert_eq!(argv("arr=(one $(id) three)"), v(&[&["id"]]));
        assert_eq!(argv("export PATH=/tmp:$PATH X=$(id)"), v(&[&["export", "PATH=/tmp:$PATH", "X=$(id)"], &["id"]]));
    }

    #[test]
    fn t29_extended_test_and_comments() {
        assert_eq!(argv("[[ -n $(rm -rf /) && -f x ]] && ls"), v(&[&["rm", "-rf", "/"], &["ls"]]));
        assert_eq!(argv("ls # ; rm -rf /"), v(&[&["ls"]]));
        assert_eq!(argv("echo \"a;rm -rf /\" 'b && c'"), v(&[&["echo", "a;rm -rf /", "b && c"]]));
        assert_eq!(argv(""), Vec::<Vec<String>>::new());
        assert_eq!(argv("  \n\n # only comment\n"), Vec::<Vec<String>>::new());
    }

    #[test]
    fn t30_xargs_find_exec_and_misc() {
        assert_eq!(
            argv("find . -name '*.tmp' -exec rm {} \\; | xargs -0 rm -f"),
            v(&[&["find", ".", "-name", "*.tmp", "-exec", "rm", "{}", ";"], &["xargs", "-0", "rm", "-f"]])
        );
        assert_eq!(argv("time ! ls | grep -v x"), v(&[&["ls"], &["grep", "-v", "x"]]));
        assert_eq!(argv("exec 3>/tmp/x; echo hi >&3"), v(&[&["exec"], &["echo", "hi"]]));
        assert_eq!(argv("echo ü 'ß' \"日本\""), v(&[&["echo", "ü", "ß", "日本"]]));
        assert_eq!(argv("coproc sleep 1"), v(&[&["sleep", "1"]]));
    }

    #[test]
    fn t31_here_string_and_case_in_subst() {
        let a = analyze("bash <<< 'rm -rf /'").unwrap();
        assert_eq!(a.commands[0].argv, vec!["bash"]);
        assert_eq!(redirs(&a.commands[0].redirects), vec![redir("<<<", "rm -rf /")]);
        // `)` of a case pattern inside $(…)
        let r = simple_commands("echo $(case x in x) rm -rf /;; esac)");
        println!("case-in-subst: {r:?}");
        if let Ok(c) = r {
            assert!(c.iter().any(|c| c.first().map(String::as_str) == Some("rm")), "missed rm: {c:?}");
        }
    }

    #[test]
    fn t32_fuzz_no_panics_no_hangs() {
        // xorshift PRNG; strings over a shell-heavy alphabet plus random bytes.
        let mut s: u64 = 0x9E3779B97F4A7C15;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let alphabet: Vec<char> = "$(){}[]'\"`\\;&|<>!#~*?=-+ \n\tabcifthenfidoonecase:0123@%^,.".chars().collect();
        let mut panics = Vec::new();
        let mut ok = 0;
        let mut err = 0;
        let started = std::time::Instant::now();
        for i in 0..20000 {
            let len = (next() % 120) as usize;
            let input: String = if i % 5 == 0 {
                // random bytes, lossily decoded
                let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
                String::from_utf8_lossy(&bytes).into_owned()
            } else {
                (0..len).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]).collect()
            };
            let t = std::time::Instant::now();
            let inp = input.clone();
            let r = std::panic::catch_unwind(move || analyze_on_current_thread(&inp));
            let el = t.elapsed();
            assert!(el.as_secs() < 2, "slow input {input:?}: {el:?}");
            match r {
                Ok(Ok(_)) => ok += 1,
                Ok(Err(_)) => err += 1,
                Err(_) => panics.push(input),
            }
        }
        println!(
            "fuzz: {ok} ok, {err} err, {} panics in {:?}; first panics: {:?}",
            panics.len(),
            started.elapsed(),
            &panics[..panics.len().min(5)]
        );
        // analyze() (the public entry) must convert any panic into Err.
        for p in &panics {
            assert!(analyze(p).is_err());
        }
    }

    #[test]
    fn t33_guards() {
        let deep = format!("{}x{}", "echo $(".repeat(500), ")".repeat(500));
        assert!(analyze(&deep).is_err());
        let big = "ls ".repeat(30_000);
        assert!(analyze(&big).is_err());
        assert!(analyze("ls\0rm").is_err());
        let ok = format!("{}x{}", "echo $(".repeat(10), ")".repeat(10));
        assert_eq!(analyze(&ok).unwrap().commands.len(), 11); // 10 echo + x
    }

    #[test]
    fn t34_more_edge_cases() {
        // eval/source/alias take code as data: returned verbatim for the caller.
        assert_eq!(
            argv("eval \"rm -rf /\"; . ./x.sh; source y"),
            v(&[&["eval", "rm -rf /"], &[".", "./x.sh"], &["source", "y"]])
        );
        assert_eq!(argv("alias ls='rm -rf /'"), v(&[&["alias", "ls=rm -rf /"]]));
        // output process substitution as a redirect target
        let a = analyze("echo x > >(sh)").unwrap();
        assert_eq!(a.commands[0].argv, vec!["echo", "x"]);
        assert_eq!(a.commands[0].redirects[0].op, ">");
        assert!(a.commands[0].redirects[0].target_dynamic);
        assert_eq!(a.commands[1].argv, vec!["sh"]);
        // gettext string, brace expansion argument
        let a = analyze("echo $\"hi $(id)\" {a,b}").unwrap();
        assert_eq!(a.commands[0].argv, vec!["echo", "hi $(id)", "{a,b}"]);
        assert_eq!(a.commands[0].dynamic, vec![false, true, true]);
        assert_eq!(a.commands[1].argv, vec!["id"]);
        // non-ASCII byte escapes are not decoded -> dynamic
        let a = analyze(r"$'\x80' x").unwrap();
        assert!(a.commands[0].name_is_dynamic());
        // regex in [[ ]]
        assert_eq!(argv("[[ $x =~ ^(a|b)$ ]] && echo y"), v(&[&["echo", "y"]]));
        // keywords as arguments are plain words
        assert_eq!(argv("echo if then fi done"), v(&[&["echo", "if", "then", "fi", "done"]]));
        // select (bash-only): report whatever happens
        println!("select: {:?}", simple_commands("select x in a b; do rm $x; done"));
        println!("nested-case-paren: {:?}", simple_commands("echo $(case x in (x) rm -rf /;; esac)"));
        println!("dollar-single-in-dq: {:?}", simple_commands("echo \"$'x'\""));
        println!("tilde: {:?}", analyze("cd ~root && ls ~/x").map(|a| a.commands));
    }

    #[test]
    fn t35_big_inputs_are_fast() {
        let cases = [
            "echo \"$a\" ".repeat(5000),
            "ls; ".repeat(10000),
            format!("echo {}", "a".repeat(60000)),
            format!("echo '{}'", "$(".repeat(20000)),
            format!("cat <<EOF\n{}EOF\n", "line $x `id`\n".repeat(3000)),
            "x=$((1+2)) ".repeat(3000),
            "[[ a == b ]] && ".repeat(2000) + "ls",
        ];
        for c in &cases {
            let t = std::time::Instant::now();
            let r = analyze(c);
            let el = t.elapsed();
            println!("len {:>6}: {:?} in {:?}", c.len(), r.as_ref().map(|a| a.commands.len()), el);
            assert!(el.as_secs() < 5, "too slow");
        }
    }
}

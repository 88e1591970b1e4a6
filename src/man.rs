//! The man pages, `fetchbench(1)`, `fetchbench-bench(1)` and `fetchbench-serve(1)`, written
//! as roff from the clap definitions: a synopsis with each option's value, the options by
//! heading (help text with indented blocks kept as they are), then the sections clap knows
//! nothing of: commands, exit status, environment, examples, see also.

use std::fmt::Write as _;

use clap::{Arg, ArgAction, Command};

/// Which page (`fetchbench man [PAGE]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Page {
    /// `fetchbench(1)`: downloading, and the commands.
    Fetchbench,
    /// `fetchbench-bench(1)`.
    Bench,
    /// `fetchbench-serve(1)`.
    Serve,
}

const DOWNLOAD_EXIT: &[(&str, &str)] = &[
    (
        "0",
        "Every download succeeded (or was skipped by --no-clobber).",
    ),
    (
        "1",
        "At least one download (or URL list line) failed; the others still completed. Or the \
         results could not be written to stdout (the files are saved).",
    ),
    (
        "2",
        "Usage or setup error (a bad URL argument, no URL, an unusable output directory, -o \
         naming a file); nothing was downloaded.",
    ),
    (
        "130",
        "Interrupted by Ctrl-C (SIGINT): the summary is still printed, .part files are kept.",
    ),
    ("143", "Stopped by SIGTERM (likewise)."),
];

const BENCH_EXIT: &[(&str, &str)] = &[
    (
        "0",
        "Every run of every mode downloaded and verified every file.",
    ),
    (
        "1",
        "A run failed (it is reported, never timed as a success).",
    ),
    ("2", "Usage or setup error."),
];

const SERVE_EXIT: &[(&str, &str)] = &[
    (
        "0",
        "Stopped by Ctrl-C (SIGINT) or SIGTERM, after a clean shutdown.",
    ),
    (
        "2",
        "Usage or setup error (the address cannot be bound, say).",
    ),
];

const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "COLUMNS",
        "The width everything on stderr is laid out for (bars, tables, wrapped lines), and \
         the width of --help; else the terminal's.",
    ),
    (
        "NO_COLOR",
        "Set and not empty: no colors with --color auto (https://no-color.org).",
    ),
    (
        "HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, NO_PROXY",
        "The proxies used without --proxy (lower-case names too); --noproxy replaces NO_PROXY.",
    ),
    ("HOME", "Where --netrc finds .netrc."),
];

const DOWNLOAD_EXAMPLES: &str = "\
fetchbench -o out https://example.com/a.iso https://example.com/b.iso
fetchbench -O latest.iso https://example.com/a.iso
fetchbench -i urls.txt -o out --mode async -j 16
grep -v mirror urls.txt | fetchbench -i - -o out --json -q > out.jsonl
./produce-urls | fetchbench -i - -o out -q | xargs sha256sum
fetchbench -c -i urls.txt -o out";

const BENCH_EXAMPLES: &str = "\
fetchbench bench
fetchbench bench --latency 200ms --files 50 --modes seq,pool
fetchbench bench --size 8MiB --rate 20MiB/s --files 8
fetchbench bench -i urls.txt --runs 10 --export-markdown bench.md";

const SERVE_EXAMPLES: &str = "\
fetchbench serve --bind 127.0.0.1:8000 --latency 100ms --rate 10MiB/s
curl -s http://127.0.0.1:8000/list | fetchbench -i - -o downloads";

/// The roff of `page`, from `cli` (the whole command line's definition).
pub(crate) fn render(cli: &Command, page: Page) -> String {
    let version = cli.get_version().unwrap_or("");
    let (cmd, name, exit, examples) = parts(cli, page);
    let mut out = String::new();
    let _ = writeln!(
        out,
        ".TH {} 1 \"\" \"fetchbench {version}\" \"User Commands\"",
        name.to_uppercase()
    );
    section(&mut out, "NAME");
    let about = cmd.get_about().map(|a| a.to_string()).unwrap_or_default();
    let _ = writeln!(out, "{} \\- {}", escape(name), escape(&about));
    section(&mut out, "SYNOPSIS");
    synopsis(
        &mut out,
        &cmd,
        &name.replace('-', " "),
        page == Page::Fetchbench,
    );
    section(&mut out, "DESCRIPTION");
    let description = cmd
        .get_long_about()
        .or(cmd.get_about())
        .map(|a| a.to_string())
        .unwrap_or_default();
    text(&mut out, &description);
    if page == Page::Fetchbench {
        text(
            &mut out,
            "stdout carries the path of each saved file, one per line (with --json: one JSON \
             object per download, then a summary object), as downloads end; stderr carries \
             the progress and the human summary.",
        );
    }
    options(&mut out, &cmd);
    if page == Page::Fetchbench {
        commands(&mut out, &cmd);
    }
    section(&mut out, "EXIT STATUS");
    tagged(&mut out, exit);
    if page != Page::Serve {
        section(&mut out, "ENVIRONMENT");
        tagged(&mut out, ENVIRONMENT);
    }
    section(&mut out, "EXAMPLES");
    preformatted(&mut out, examples);
    section(&mut out, "SEE ALSO");
    let see_also = match page {
        Page::Fetchbench => "fetchbench\\-bench(1), fetchbench\\-serve(1), curl(1), wget(1)",
        Page::Bench | Page::Serve => "fetchbench(1)",
    };
    let _ = writeln!(out, "{see_also}");
    out
}

/// What `page` is made of: its command, its name, its exit statuses and its examples.
fn parts(
    cli: &Command,
    page: Page,
) -> (
    Command,
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
) {
    match page {
        Page::Fetchbench => (cli.clone(), "fetchbench", DOWNLOAD_EXIT, DOWNLOAD_EXAMPLES),
        Page::Bench => (
            sub(cli, "bench"),
            "fetchbench-bench",
            BENCH_EXIT,
            BENCH_EXAMPLES,
        ),
        Page::Serve => (
            sub(cli, "serve"),
            "fetchbench-serve",
            SERVE_EXIT,
            SERVE_EXAMPLES,
        ),
    }
}

/// The COMMANDS section: each visible subcommand with its about line.
fn commands(out: &mut String, cmd: &Command) {
    section(out, "COMMANDS");
    for command in cmd.get_subcommands().filter(|c| !c.is_hide_set()) {
        let name = command.get_name();
        let _ = writeln!(out, ".TP\n\\fBfetchbench {}\\fR", escape(name));
        let about = command
            .get_about()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let more = match name {
            "bench" | "serve" => format!(" See fetchbench\\-{name}(1)."),
            _ => String::new(),
        };
        let _ = writeln!(out, "{}{more}", escape(&about));
    }
}

/// A list of bold tags (exit codes, variables), each with its meaning.
fn tagged(out: &mut String, items: &[(&str, &str)]) {
    for (tag, meaning) in items {
        let _ = writeln!(out, ".TP\n\\fB{}\\fR\n{}", escape(tag), escape(meaning));
    }
}

fn sub(cli: &Command, name: &'static str) -> Command {
    cli.find_subcommand(name)
        .cloned()
        .unwrap_or_else(|| Command::new(name))
}

fn section(out: &mut String, title: &str) {
    let _ = writeln!(out, ".SH \"{title}\"");
}

/// `fetchbench [-i FILE] [-o DIR] ... [URL]...`: every visible option with its value.
fn synopsis(out: &mut String, cmd: &Command, name: &str, commands: bool) {
    let mut line = format!("\\fB{}\\fR", escape(name));
    for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
        if arg.is_positional() {
            continue;
        }
        let flag = match (arg.get_short(), arg.get_long()) {
            (Some(short), _) => format!("\\-{short}"),
            (None, Some(long)) => format!("\\-\\-{}", escape(long)),
            (None, None) => continue,
        };
        let value = value_of(arg).map_or(String::new(), |v| format!(" \\fI{}\\fR", escape(&v)));
        let repeat = match arg.get_action() {
            ArgAction::Count | ArgAction::Append => "...",
            _ => "",
        };
        let _ = write!(line, " [\\fB{flag}\\fR{value}]{repeat}");
    }
    for arg in cmd.get_arguments().filter(|a| a.is_positional()) {
        let value = value_of(arg).unwrap_or_else(|| arg.get_id().to_string());
        let _ = write!(line, " [\\fI{}\\fR]...", escape(&value));
    }
    let _ = writeln!(out, "{line}");
    if commands {
        let names: Vec<&str> = cmd
            .get_subcommands()
            .filter(|c| !c.is_hide_set())
            .map(Command::get_name)
            .collect();
        let _ = writeln!(
            out,
            ".br\n\\fB{}\\fR {{{}}} [\\fIARGS\\fR]",
            escape(name),
            names.join("|")
        );
    }
}

/// An option's value name (`FILE`), or its possible values, when it takes one.
fn value_of(arg: &Arg) -> Option<String> {
    if !arg.get_action().takes_values() {
        return None;
    }
    if let Some(names) = arg.get_value_names() {
        return Some(
            names
                .iter()
                .map(|n| n.as_str())
                .collect::<Vec<_>>()
                .join(" "),
        );
    }
    let values: Vec<String> = arg
        .get_possible_values()
        .iter()
        .filter(|v| !v.is_hide_set())
        .map(|v| v.get_name().to_owned())
        .collect();
    match values.is_empty() {
        true => Some(arg.get_id().to_string().to_uppercase()),
        false => Some(values.join("|")),
    }
}

/// The options, under their headings (`OPTIONS` for those without one).
fn options(out: &mut String, cmd: &Command) {
    let mut headings: Vec<Option<&str>> = Vec::new();
    for arg in cmd.get_arguments() {
        if !headings.contains(&arg.get_help_heading()) {
            headings.push(arg.get_help_heading());
        }
    }
    for heading in headings {
        let title = heading.map_or("OPTIONS".to_owned(), str::to_uppercase);
        section(out, &title);
        for arg in cmd
            .get_arguments()
            .filter(|a| !a.is_hide_set() && a.get_help_heading() == heading)
        {
            let mut names = Vec::new();
            if let Some(short) = arg.get_short() {
                names.push(format!("\\fB\\-{short}\\fR"));
            }
            if let Some(long) = arg.get_long() {
                names.push(format!("\\fB\\-\\-{}\\fR", escape(long)));
            }
            let value = value_of(arg).map(|v| format!("\\fI{}\\fR", escape(&v)));
            let mut term = names.join(", ");
            match (arg.is_positional(), value) {
                (true, Some(value)) => term = format!("[{value}]..."),
                (false, Some(value)) => term = format!("{term} {value}"),
                _ => {}
            }
            let defaults: Vec<String> = arg
                .get_default_values()
                .iter()
                .map(|v| v.to_string_lossy().into_owned())
                .collect();
            if !defaults.is_empty() && arg.get_action().takes_values() {
                let _ = write!(term, " [default: {}]", escape(&defaults.join(",")));
            }
            let _ = writeln!(out, ".TP\n{term}");
            let help = arg
                .get_long_help()
                .or(arg.get_help())
                .map(|h| h.to_string())
                .unwrap_or_default();
            for (n, paragraph) in help.split("\n\n").enumerate() {
                if n > 0 {
                    let _ = writeln!(out, ".IP");
                }
                paragraph_of(out, paragraph);
            }
        }
    }
}

/// One paragraph of help: filled text; an indented table (`  KEY   what it means`, continued
/// further in) as a list of tagged paragraphs, so that it fills the page's width; anything
/// else indented as it is.
fn paragraph_of(out: &mut String, paragraph: &str) {
    if !paragraph.lines().any(|l| l.starts_with("  ")) {
        let _ = writeln!(out, "{}", escape(&paragraph.replace('\n', " ")));
    } else if let Some(rows) = table_of(paragraph) {
        let _ = writeln!(out, ".RS");
        for (key, meaning) in rows {
            let _ = writeln!(out, ".TP\n\\fB{}\\fR\n{}", escape(&key), escape(&meaning));
        }
        let _ = writeln!(out, ".RE");
    } else {
        preformatted(out, paragraph);
    }
}

/// The rows of `  KEY   what it means` lines (a meaning may go on, indented further).
fn table_of(paragraph: &str) -> Option<Vec<(String, String)>> {
    let mut rows: Vec<(String, String)> = Vec::new();
    for line in paragraph.lines() {
        let body = line.strip_prefix("  ")?;
        if body.starts_with(' ') {
            let (_, meaning) = rows.last_mut()?;
            meaning.push(' ');
            meaning.push_str(body.trim());
        } else {
            let (key, meaning) = body.split_once("  ")?;
            rows.push((key.trim().to_owned(), meaning.trim().to_owned()));
        }
    }
    (!rows.is_empty()).then_some(rows)
}

fn text(out: &mut String, text: &str) {
    for paragraph in text.split("\n\n") {
        let _ = writeln!(out, ".PP");
        paragraph_of(out, paragraph);
    }
}

/// Lines as they are (`.nf`), in a fixed-width font block.
fn preformatted(out: &mut String, text: &str) {
    let _ = writeln!(out, ".nf");
    for line in text.lines() {
        let _ = writeln!(out, "{}", escape(line));
    }
    let _ = writeln!(out, ".fi");
}

/// `text` safe in roff: backslashes and dashes escaped, no line taken for a request.
fn escape(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    match escaped.starts_with(['.', '\'']) {
        true => format!("\\&{escaped}"),
        false => escaped,
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;
    use crate::Cli;

    #[test]
    fn the_page_has_its_sections_and_values() {
        let page = render(&Cli::command(), Page::Fetchbench);
        for section in [
            "NAME",
            "SYNOPSIS",
            "DESCRIPTION",
            "OUTPUT",
            "NETWORK",
            "COMMANDS",
            "EXIT STATUS",
            "ENVIRONMENT",
            "EXAMPLES",
            "SEE ALSO",
        ] {
            assert!(
                page.contains(&format!(".SH \"{section}\"\n")),
                "{section}\n{page}"
            );
        }
        // Values in the synopsis; the -i table kept as a table.
        assert!(page.contains("[\\fB\\-i\\fR \\fIFILE\\fR]"), "{page}");
        assert!(page.contains("[\\fB\\-o\\fR \\fIDIR\\fR]"), "{page}");
        assert!(
            page.contains(".RS\n.TP\n\\fBURL sha256=HEX\\fR\nthe file must have this SHA\\-256"),
            "{page}"
        );
        assert!(page.contains(".TP\n\\fB143\\fR\n"), "{page}");
        assert!(page.contains("\\fBCOLUMNS\\fR"), "{page}");
        // Every page it points to is one `fetchbench man` renders.
        assert!(page.contains("fetchbench\\-bench(1)"), "{page}");
        let bench = render(&Cli::command(), Page::Bench);
        assert!(bench.starts_with(".TH FETCHBENCH-BENCH 1"), "{bench}");
        assert!(bench.contains("\\-\\-modes"), "{bench}");
        let serve = render(&Cli::command(), Page::Serve);
        assert!(serve.contains("\\-\\-bind"), "{serve}");
        assert!(!page.contains("\n.SH \"EXTRA\""), "{page}");
    }

    /// Examples are not filled: each must fit 80 columns at the page's indent of 7.
    #[test]
    fn examples_fit_80_columns() {
        for examples in [DOWNLOAD_EXAMPLES, BENCH_EXAMPLES, SERVE_EXAMPLES] {
            for line in examples.lines() {
                assert!(line.len() <= 73, "{line}");
            }
        }
    }

    #[test]
    fn roff_requests_cannot_be_smuggled_in() {
        assert_eq!(escape(".x -y \\z"), "\\&.x \\-y \\ez");
        assert_eq!(escape("'quoted"), "\\&'quoted");
    }
}

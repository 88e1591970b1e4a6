//! stdout is for scripts (paths or JSON lines), stderr for people.

use std::io::Read;
use std::process::{Command, Stdio};

use serde_json::Value;
use tempfile::tempdir;

use crate::server::TestServer;
use crate::util::{OutDir, fetchbench};

const SCHEMA: &str = include_str!("../../schema.json");

#[test]
fn json_lines_match_the_schema() {
    let server = TestServer::http();
    let dir = OutDir::new();
    let out = dir
        .fetch()
        .args(["--json", "--keep-order", "--mode", "async"])
        .arg(server.url("/files/j.bin?size=4321"))
        .arg(server.url("/status/404"))
        .code(1);
    let lines = out.json();
    let schema: Value = serde_json::from_str(SCHEMA).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    for line in &lines {
        let errors: Vec<String> = validator.iter_errors(line).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{line}: {errors:?}");
    }
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["status"], "ok");
    assert_eq!(lines[0]["bytes"], 4321);
    assert_eq!(lines[0]["http_status"], 200);
    assert_eq!(lines[1]["status"], "failed");
    assert_eq!(lines[1]["error"], "HTTP 404 Not Found");
    assert_eq!(lines[1]["path"], Value::Null);
    assert_eq!(lines[2]["type"], "summary");
    assert_eq!(lines[2]["mode"], "async");
    assert_eq!(
        (lines[2]["ok"].clone(), lines[2]["failed"].clone()),
        (1.into(), 1.into())
    );
}

/// The README's example of `--json` output is what a real run would print: every line of it
/// passes the schema.
#[test]
fn the_readme_json_example_matches_the_schema() {
    let readme = include_str!("../../README.md");
    let schema: Value = serde_json::from_str(SCHEMA).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let block = readme
        .split("```json\n")
        .skip(1)
        .filter_map(|rest| rest.split_once("```").map(|(block, _)| block))
        .find(|block| block.contains(r#""type":"summary""#))
        .expect("the README shows the --json output");
    let lines: Vec<&str> = block
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(lines.len(), 3, "{block}");
    for line in lines {
        let value: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{line}: {errors:?}");
    }
}

#[test]
fn the_schema_rejects_a_wrong_shape() {
    let schema: Value = serde_json::from_str(SCHEMA).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let wrong = serde_json::json!({"type": "download", "url": 3});
    assert!(!validator.is_valid(&wrong));
}

#[test]
fn stderr_gets_plain_lines_and_a_summary_when_not_a_terminal() {
    let server = TestServer::http();
    let dir = OutDir::new();
    let out = dir
        .fetch()
        .arg(server.url("/files/p.bin?size=2048"))
        .code(0);
    let stderr = out.stderr();
    assert!(
        !stderr.contains('\x1b'),
        "escape codes in a log: {stderr:?}"
    );
    assert!(stderr.contains("saved   "), "{stderr}");
    assert!(stderr.contains("file"), "table header missing: {stderr}");
    assert!(
        stderr.contains("async, auto (up to 1 at once): 1 ok, 0 failed, 2.00 KiB in"),
        "{stderr}"
    );
}

#[test]
fn quiet_prints_nothing_on_stderr_when_all_goes_well() {
    let server = TestServer::http();
    let dir = OutDir::new();
    dir.fetch()
        .arg("-q")
        .arg(server.url("/files/q.bin?size=10"))
        .assert()
        .code(0)
        .stderr("");
}

/// `-q` is curl's `-sS`: one line per failure, naming its URL and why, nothing else; `-qq` and
/// `--silent` are curl's `-s`: nothing at all.
#[test]
fn quiet_names_each_failure_and_qq_nothing() {
    let server = TestServer::http();
    let good = server.url("/files/good.bin?size=10");
    let bad = server.url("/status/404");
    let dir = OutDir::new();
    let out = dir
        .fetch()
        .args(["-q", "--retries", "0"])
        .args([&good, &bad])
        .code(1);
    let stderr = out.stderr();
    assert_eq!(stderr, format!("fetchbench: {bad}: HTTP 404 Not Found\n"));
    let stdout = out.stdout();
    assert_eq!(stdout, format!("{}\n", dir.file("good.bin").display()));
    for silent in [&["-qq"][..], &["--silent"], &["-q", "-q"]] {
        let dir = OutDir::new();
        dir.fetch()
            .args(silent)
            .args(["--retries", "0"])
            .args([&good, &bad])
            .assert()
            .code(1)
            .stderr("");
    }
}

/// `seq` and `threads` do not take `-j`: the total line does not claim a width for them, nor
/// the JSON summary.
#[test]
fn seq_and_threads_claim_no_width() {
    let server = TestServer::http();
    for (mode, label, jobs) in [
        ("seq", "seq: 1 ok", Value::Null),
        ("threads", "threads: 1 ok", Value::Null),
        ("async", "async, 3 jobs: 1 ok", 3.into()),
    ] {
        let dir = OutDir::new();
        let out = dir
            .fetch()
            .args(["--json", "-j", "3", "--mode", mode])
            .arg(server.url("/files/w.bin?size=10"))
            .code(0);
        let stderr = out.stderr();
        assert!(stderr.contains(label), "{mode}: {stderr}");
        assert!(!stderr.contains(&format!("{mode}, 3 jobs")) || jobs != Value::Null);
        let summary = out.json().pop().unwrap();
        assert_eq!(summary["jobs"], jobs, "{mode}");
    }
}

#[test]
fn a_closed_stdout_is_not_an_error() {
    let server = TestServer::http();
    let dir = tempdir().unwrap();
    let urls: Vec<String> = (0..50)
        .map(|i| server.url(&format!("/files/h{i}?size=10")))
        .collect();
    let mut child = Command::new(env!("CARGO_BIN_EXE_fetchbench"))
        .args(["-q", "-o"])
        .arg(dir.path())
        .args(&urls)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Like `| head -0`: the reader goes away before fetchbench writes.
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 50);
}

#[test]
fn stdout_paths_feed_other_tools() {
    let server = TestServer::http();
    let dir = tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_fetchbench"))
        .args(["-q", "--keep-order", "-o"])
        .arg(dir.path())
        .arg(server.url("/files/s1?size=3"))
        .arg(server.url("/files/s2?size=4"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    assert!(child.wait().unwrap().success());
    let sizes: Vec<u64> = stdout
        .lines()
        .map(|path| std::fs::metadata(path).unwrap().len())
        .collect();
    assert_eq!(sizes, [3, 4]);
}

#[test]
fn colors_follow_the_color_flag_and_no_color() {
    let server = TestServer::http();
    let run = |args: &[&str], no_color: Option<&str>| {
        let dir = OutDir::new();
        let mut cmd = dir.fetch();
        cmd.env_remove("NO_COLOR");
        if let Some(value) = no_color {
            cmd.env("NO_COLOR", value);
        }
        cmd.args(args)
            .arg(server.url("/files/c.bin?size=10"))
            .arg(server.url("/status/404"))
            .code(1)
            .stderr()
    };
    assert!(run(&["--color", "always"], None).contains("\x1b["));
    assert!(!run(&["--color", "never"], None).contains('\x1b'));
    // Not a terminal: auto means none, whatever NO_COLOR says.
    assert!(!run(&[], None).contains('\x1b'));
    assert!(!run(&["--color", "auto"], Some("1")).contains('\x1b'));
}

#[test]
fn completions_and_man_page_come_from_the_cli_definition() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let out = fetchbench().args(["completions", shell]).assert().code(0);
        let script = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
        assert!(script.contains("max-per-host"), "{shell}: {script:.200}");
    }
    let out = fetchbench().arg("man").assert().code(0);
    let page = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(page.starts_with(".TH FETCHBENCH 1 "), "{page:.200}");
    assert!(page.contains("limit\\-rate"), "options are documented");
}

#[test]
fn help_groups_the_options_under_headings() {
    let out = fetchbench().arg("--help").assert().code(0);
    let help = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    let positions: Vec<usize> = ["Output:", "Concurrency:", "Network:", "Reliability:"]
        .iter()
        .map(|h| {
            help.find(h)
                .unwrap_or_else(|| panic!("no {h} heading in {help}"))
        })
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
}

#[test]
fn man_and_completions_on_a_closed_pipe_exit_0_silently() {
    for args in [
        &["man"][..],
        &["completions", "bash"],
        &["completions", "zsh"],
    ] {
        // Like `fetchbench man | head -1` once head has gone: the read end is closed before
        // fetchbench writes, so its first write fails with EPIPE (Rust ignores SIGPIPE).
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(env!("CARGO_BIN_EXE_fetchbench"))
            .args(args)
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert_eq!(stderr, "", "{args:?}");
    }
}

#[test]
fn help_tells_the_list_syntax_and_what_jobs_applies_to() {
    let out = fetchbench().arg("--help").assert().code(0);
    let help = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    for syntax in ["URL sha256=HEX", "URL out=NAME", "URL<TAB>NAME"] {
        assert!(help.contains(syntax), "{syntax} missing in {help}");
    }
    // --compressed says what it turns off.
    assert!(
        help.contains("No Range requests then") && help.contains("-s has no effect"),
        "{help}"
    );
    let out = fetchbench().args(["bench", "--help"]).assert().code(0);
    let help = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(
        help.contains("Downloads at once in `pool`, `async`, `procs` and `spawn` modes"),
        "{help}"
    );
    assert!(
        help.contains("URL out=NAME"),
        "bench -i reads the same lists: {help}"
    );
}

#[test]
fn the_end_table_fits_80_columns() {
    let server = TestServer::http();
    let dir = OutDir::new();
    let long = "debian-12.5.0-amd64-netinst-with-firmware-and-more-words-to-make-it-long.iso";
    let out = dir
        .fetch()
        .env("COLUMNS", "80")
        .arg(server.url(&format!("/files/{long}?size=1000")))
        .arg(server.url("/files/short.bin?size=10"))
        .arg(server.url("/truncated/cut-short-with-a-long-name-as-well.bin?size=100000"))
        .args(["--retries", "0"])
        .code(1);
    let stderr = out.stderr();
    // The per-download lines are a log; the table starts at its first heading.
    let table = &stderr[stderr.find("failed:").expect(&stderr)..];
    for line in table.lines() {
        assert!(
            console::measure_text_width(line) < 80,
            "{} columns: {line}\n{table}",
            console::measure_text_width(line)
        );
    }
    assert!(table.contains("time"), "the time column is kept: {table}");
    assert!(table.contains('…'), "the long name is elided: {table}");
    // Without a width, the table is as wide as its cells.
    let out = dir
        .fetch()
        .env_remove("COLUMNS")
        .arg(server.url(&format!("/files/{long}?size=1000")))
        .code(0);
    assert!(out.stderr().contains(long));
}

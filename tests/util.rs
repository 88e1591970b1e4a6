//! Helpers shared by the test cases, and the harness most of them use: an [`OutDir`] to
//! download into, a [`Fetch`] of the real binary that writes there, and what it left ([`Done`]).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use assert_cmd::Command;
use assert_cmd::assert::Assert;
use tempfile::TempDir;

/// The real binary, with no terminal: progress is plain lines.
pub fn fetchbench() -> Command {
    Command::new(env!("CARGO_BIN_EXE_fetchbench"))
}

/// Every mode on the command line.
pub const MODES: [&str; 6] = ["seq", "threads", "pool", "async", "procs", "spawn"];

/// The names of the entries in `dir`, sorted.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The bytes of `dir/name`, failing the test with the name when missing.
pub fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Sends `signal` (`INT`, `KILL`, ...) to process `pid`, as `kill -SIGNAL pid` would.
pub fn send_signal(pid: u32, signal: &str) {
    let sent = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(sent.success(), "kill -{signal} {pid} failed");
}

/// Waits (at most 10 s) until `server` has sent `bytes` body bytes.
pub fn wait_until_sent(server: &crate::server::TestServer, bytes: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while server.body_bytes() < bytes {
        assert!(
            std::time::Instant::now() < deadline,
            "the download never got going"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The JSON lines of a `--json` run's stdout, failing the test with the line that is not JSON.
pub fn json_lines(stdout: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// The pids of `parent`'s children, from /proc.
pub fn children_of(parent: u32) -> Vec<u32> {
    let mut children = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{parent}/task")).unwrap() {
        let path = task.unwrap().path().join("children");
        let text = std::fs::read_to_string(path).unwrap_or_default();
        children.extend(
            text.split_whitespace()
                .map(|pid| pid.parse::<u32>().unwrap()),
        );
    }
    children
}

/// The summary line of a `--json` run's stdout.
pub fn json_summary(stdout: &[u8]) -> serde_json::Value {
    json_lines(stdout)
        .into_iter()
        .find(|line| line["type"] == "summary")
        .expect("a summary line")
}

/// A test's output directory: `out` inside a fresh temporary directory, which also holds the
/// test's other files (URL lists, cookie jars), so a listing of `out` shows only what
/// fetchbench saved. Removed with the value.
pub(crate) struct OutDir {
    root: TempDir,
    out: PathBuf,
}

impl OutDir {
    pub(crate) fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("out");
        std::fs::create_dir(&out).unwrap();
        OutDir { root, out }
    }

    /// The output directory.
    pub(crate) fn path(&self) -> &Path {
        &self.out
    }

    /// The temporary directory around it, for what is not a download.
    pub(crate) fn root(&self) -> &Path {
        self.root.path()
    }

    /// The path `name` is saved at.
    pub(crate) fn file(&self, name: &str) -> PathBuf {
        self.out.join(name)
    }

    /// Puts `contents` at `name` in the output directory, as an earlier run would have.
    pub(crate) fn write(&self, name: &str, contents: impl AsRef<[u8]>) {
        std::fs::write(self.file(name), contents).unwrap_or_else(|e| panic!("{name}: {e}"));
    }

    /// The bytes saved as `name`, failing the test with the name when missing.
    pub(crate) fn read(&self, name: &str) -> Vec<u8> {
        read(&self.out, name)
    }

    /// Whether `name` holds exactly what the test server serves as `name` at `size` bytes.
    pub(crate) fn served(&self, name: &str, size: usize) -> bool {
        self.read(name) == crate::server::body(name, size)
    }

    /// The names in the output directory, sorted.
    pub(crate) fn listing(&self) -> Vec<String> {
        listing(&self.out)
    }

    /// A run of fetchbench that saves here (`-o DIR` comes first: the arguments a test adds
    /// follow).
    pub(crate) fn fetch(&self) -> Fetch {
        let mut cmd = fetchbench();
        cmd.arg("-o").arg(&self.out);
        Fetch { cmd }
    }
}

/// A fetchbench command line being built: the builder methods of [`Command`] a test needs, and
/// runs that check the exit code.
pub(crate) struct Fetch {
    cmd: Command,
}

impl Fetch {
    pub(crate) fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Self {
        self.cmd.arg(arg);
        self
    }

    pub(crate) fn args(&mut self, args: impl IntoIterator<Item = impl AsRef<OsStr>>) -> &mut Self {
        self.cmd.args(args);
        self
    }

    /// Reads the URL list in the file `list` (`-i LIST`).
    pub(crate) fn list_file(&mut self, list: impl AsRef<OsStr>) -> &mut Self {
        self.cmd.arg("-i").arg(list);
        self
    }

    /// Reads the URL list `list` from stdin (`-i -`).
    pub(crate) fn list(&mut self, list: impl Into<Vec<u8>>) -> &mut Self {
        self.cmd.args(["-i", "-"]).write_stdin(list);
        self
    }

    pub(crate) fn env(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut Self {
        self.cmd.env(key, value);
        self
    }

    pub(crate) fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Self {
        self.cmd.env_remove(key);
        self
    }

    /// Kills the run after `timeout`, failing the test.
    pub(crate) fn timeout(&mut self, timeout: Duration) -> &mut Self {
        self.cmd.timeout(timeout);
        self
    }

    /// Runs it, insists on exit code `code` (showing the output when not), and returns what it
    /// printed.
    pub(crate) fn code(&mut self, code: i32) -> Done {
        let output = self.cmd.assert().code(code).get_output().clone();
        Done { output }
    }

    /// Runs it and returns its output, whatever its exit code.
    pub(crate) fn output(&mut self) -> std::io::Result<Output> {
        self.cmd.output()
    }

    /// Runs it, for the checks of `assert_cmd` itself (`.code(1).stderr(...)`).
    pub(crate) fn assert(&mut self) -> Assert {
        self.cmd.assert()
    }
}

/// What a finished run printed.
pub(crate) struct Done {
    pub(crate) output: Output,
}

impl Done {
    pub(crate) fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub(crate) fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// The JSON lines of a `--json` run's stdout.
    pub(crate) fn json(&self) -> Vec<serde_json::Value> {
        json_lines(&self.output.stdout)
    }

    /// The summary line of a `--json` run's stdout.
    pub(crate) fn summary(&self) -> serde_json::Value {
        json_summary(&self.output.stdout)
    }
}

//! Helpers shared by the test cases.

use std::path::Path;

use assert_cmd::Command;

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

/// Runs fetchbench with `args` over the URL list `list` into `out`, and insists that it succeeds.
pub fn run_list(args: &[&str], list: &str, out: &std::path::Path) -> std::process::Output {
    let done = fetchbench()
        .args(args)
        .args(["-i", list, "-o"])
        .arg(out)
        .output()
        .unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    done
}

/// The summary line of a `--json` run's stdout.
pub fn json_summary(stdout: &[u8]) -> serde_json::Value {
    json_lines(stdout)
        .into_iter()
        .find(|line| line["type"] == "summary")
        .expect("a summary line")
}

//! `--mode procs`: a crashed child fails only its own download.

use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};

use tempfile::tempdir;

use crate::server::{TestServer, body};
use crate::util::{fetchbench, listing, read, send_signal, wait_until_sent};

/// The pids of `parent`'s children, from /proc.
fn children_of(parent: u32) -> Vec<u32> {
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

#[test]
fn a_killed_child_fails_its_download_and_the_others_complete() {
    let server = TestServer::http();
    let dir = tempdir().unwrap();
    let parent = Command::new(env!("CARGO_BIN_EXE_fetchbench"))
        .args(["--mode", "procs", "-j", "3", "--retries", "0", "-o"])
        .arg(dir.path())
        .arg(server.url("/fault/victim.bin?size=400000&stall_after=100000"))
        .arg(server.url("/slow/a.bin?size=30000&ms=300"))
        .arg(server.url("/slow/b.bin?size=40000&ms=300"))
        .arg(server.url("/files/c.bin?size=50000"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The victim's child is the one whose download has stalled half-way: it holds the file
    // that is victim.bin.part (found by inode: opened unnamed, it took that name later).
    wait_until_sent(&server, 100_000);
    // What arrived before the stall is on disk, not in a buffer a SIGKILL would lose.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::fs::metadata(dir.path().join("victim.bin.part")).map_or(0, |m| m.len()) < 100_000 {
        assert!(
            std::time::Instant::now() < deadline,
            "the bytes never reached the disk"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let part = std::fs::metadata(dir.path().join("victim.bin.part")).expect("victim.bin.part");
    let victim = children_of(parent.id())
        .into_iter()
        .find(|pid| {
            let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap();
            fds.filter_map(|fd| std::fs::metadata(fd.unwrap().path()).ok())
                .any(|file| (file.dev(), file.ino()) == (part.dev(), part.ino()))
        })
        .expect("no child holds victim.bin.part");
    send_signal(victim, "KILL");

    let output = parent.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("child process killed by signal 9 (SIGKILL)"),
        "{stderr}"
    );
    assert!(stderr.contains("victim.bin"), "{stderr}");
    assert!(stderr.contains("3 ok, 1 failed"), "{stderr}");
    for (name, size) in [("a.bin", 30_000), ("b.bin", 40_000), ("c.bin", 50_000)] {
        assert!(read(dir.path(), name) == body(name, size), "{name}");
    }
    // What the killed child had received is kept for -c, never under the final name.
    assert_eq!(
        listing(dir.path()),
        ["a.bin", "b.bin", "c.bin", "victim.bin.part"]
    );
    assert_eq!(
        std::fs::metadata(dir.path().join("victim.bin.part"))
            .unwrap()
            .len(),
        100_000
    );
}

#[test]
fn a_child_killed_before_its_first_byte_leaves_no_empty_part() {
    let server = TestServer::http();
    let dir = tempdir().unwrap();
    // Large enough for a named `.part` from the start; the server sends the head, no byte.
    let parent = Command::new(env!("CARGO_BIN_EXE_fetchbench"))
        .args(["--mode", "procs", "--retries", "0", "--json", "-q", "-o"])
        .arg(dir.path())
        .arg(server.url("/fault/empty.bin?size=9000000&stall_after=0"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let part = dir.path().join("empty.bin.part");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !part.exists() {
        assert!(std::time::Instant::now() < deadline, "no .part was created");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let children = children_of(parent.id());
    assert_eq!(children.len(), 1, "{children:?}");
    send_signal(children[0], "KILL");
    let output = parent.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let first = String::from_utf8_lossy(&output.stdout)
        .lines()
        .next()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .unwrap();
    assert_eq!(first["partial"], serde_json::Value::Null);
    assert_eq!(listing(dir.path()), Vec::<String>::new());
}

#[test]
fn procs_reports_progress_and_results_like_the_other_modes() {
    let server = TestServer::http();
    let dir = tempdir().unwrap();
    let out = fetchbench()
        .args([
            "--mode",
            "procs",
            "--json",
            "--keep-order",
            "--print-sha256",
            "-o",
        ])
        .arg(dir.path())
        .arg(server.url("/dir/a/same.bin?size=1000"))
        .arg(server.url("/dir/b/same.bin?size=2000"))
        .arg(server.url("/status/404"))
        .assert()
        .code(1);
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines[0]["path"],
        dir.path().join("same.bin").display().to_string()
    );
    assert_eq!(
        lines[1]["path"],
        dir.path().join("same-1.bin").display().to_string()
    );
    assert_eq!(lines[1]["bytes"], 2000);
    assert_eq!(lines[1]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(lines[2]["error"], "HTTP 404 Not Found");
    assert_eq!(lines[3]["mode"], "procs");
    assert_eq!(read(dir.path(), "same-1.bin").len(), 2000);
}

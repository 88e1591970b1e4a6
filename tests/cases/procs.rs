//! `--mode procs` (a pool of worker processes) and `--mode spawn` (a process per download):
//! exact bytes, workers and their connections kept, a crashed worker fails only its own
//! download and is replaced, Ctrl-C and SIGTERM reach every worker, and no worker outlives
//! the run.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use tempfile::tempdir;

use crate::server::{TestServer, body};
use crate::util::{OutDir, children_of, fetchbench, listing, read, send_signal, wait_until_sent};

/// Waits (at most 10 s) until the download's `.part` has its name and holds `len` bytes (sent
/// is not yet received: the bytes cross loopback, the file is named after its first read, and
/// what arrived before a stall is written out a moment after it).
fn wait_for_part(part: &std::path::Path, len: u64) -> std::fs::Metadata {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let Some(meta) = std::fs::metadata(part).ok().filter(|m| m.len() >= len) {
            return meta;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} never held {len} bytes",
            part.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
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
        [
            "a.bin",
            "b.bin",
            "c.bin",
            "victim.bin.part",
            "victim.bin.part.fbstate"
        ]
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
    let dir = OutDir::new();
    let out = dir
        .fetch()
        .args([
            "--mode",
            "procs",
            "--json",
            "--keep-order",
            "--print-sha256",
        ])
        .arg(server.url("/dir/a/same.bin?size=1000"))
        .arg(server.url("/dir/b/same.bin?size=2000"))
        .arg(server.url("/status/404"))
        .code(1);
    let stdout = out.stdout();
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["path"], dir.file("same.bin").display().to_string());
    assert_eq!(
        lines[1]["path"],
        dir.file("same-1.bin").display().to_string()
    );
    assert_eq!(lines[1]["bytes"], 2000);
    assert_eq!(lines[1]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(lines[2]["error"], "HTTP 404 Not Found");
    assert_eq!(lines[3]["mode"], "procs");
    assert_eq!(dir.read("same-1.bin").len(), 2000);
}

/// The two process models.
const PROCESS_MODES: [&str; 2] = ["procs", "spawn"];

/// A fetchbench download run, tagged through its environment (which its workers inherit) so
/// that its processes can be found in /proc even after their parent is gone. Its stderr goes
/// to a file, so that its end is seen the moment it exits, not when every holder of a pipe
/// has gone.
struct Tagged {
    tag: String,
    parent: Child,
    stderr: tempfile::NamedTempFile,
}

impl Tagged {
    fn start(args: &[&str], dir: &std::path::Path, urls: &[String]) -> Tagged {
        static RUNS: AtomicUsize = AtomicUsize::new(0);
        let tag = format!(
            "{}-{}",
            std::process::id(),
            RUNS.fetch_add(1, Ordering::SeqCst)
        );
        let stderr = tempfile::NamedTempFile::new().unwrap();
        let parent = Command::new(env!("CARGO_BIN_EXE_fetchbench"))
            .env("FETCHBENCH_TEST_RUN", &tag)
            .args(args)
            .arg("-o")
            .arg(dir)
            .args(urls)
            .stdout(Stdio::null())
            .stderr(stderr.reopen().unwrap())
            .spawn()
            .unwrap();
        Tagged {
            tag,
            parent,
            stderr,
        }
    }

    /// Live processes (zombies excluded) carrying this run's tag, the parent excepted.
    fn survivors(&self) -> Vec<u32> {
        let wanted = format!("FETCHBENCH_TEST_RUN={}", self.tag);
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap() {
            let Ok(pid) = entry.unwrap().file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            let tagged = environ
                .split(|&b| b == 0)
                .any(|var| var == wanted.as_bytes());
            if tagged && pid != self.parent.id() && !is_zombie(pid) {
                found.push(pid);
            }
        }
        found
    }

    /// Waits for the run to end; at that moment no process of it may be left.
    fn finish(mut self) -> (ExitStatus, String) {
        let status = self.parent.wait().unwrap();
        let left = self.survivors();
        let stderr = std::fs::read_to_string(self.stderr.path()).unwrap();
        assert!(
            left.is_empty(),
            "processes left after the run: {left:?}\n{stderr}"
        );
        (status, stderr)
    }
}

fn is_zombie(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // `pid (comm) state ...`: comm may hold spaces, so look after the last ')'.
    stat.rsplit_once(')')
        .is_none_or(|(_, rest)| rest.trim_start().starts_with(['Z', 'X']))
}

/// Whether `pid` runs `fetchbench __child`.
fn is_worker(pid: u32) -> bool {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    cmdline.split(|&b| b == 0).any(|arg| arg == b"__child")
}

/// The worker processes of `parent` alive now.
fn workers_of(parent: u32) -> BTreeSet<u32> {
    children_of(parent)
        .into_iter()
        .filter(|&pid| is_worker(pid))
        .collect()
}

/// Waits (at most 10 s) until `parent` has `n` workers, and returns them.
fn wait_for_workers(parent: u32, n: usize) -> BTreeSet<u32> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let workers = workers_of(parent);
        if workers.len() == n {
            return workers;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "expected {n} workers, found {workers:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[test]
fn procs_and_spawn_save_exact_bytes() {
    let server = TestServer::http();
    let sizes = [0, 1, 1000, 65_536, 100_001, 1_048_576, 3_000_000];
    for mode in PROCESS_MODES {
        let dir = tempdir().unwrap();
        let mut urls: Vec<String> = sizes
            .iter()
            .map(|size| server.url(&format!("/files/f{size}.bin?size={size}")))
            .collect();
        // Two URLs asking for one name: the parent's registry keeps them apart.
        urls.push(server.url("/dir/a/same.bin?size=5000"));
        urls.push(server.url("/dir/b/same.bin?size=7000"));
        // A name learned only from the response (after a redirect) is claimed over the pipe.
        urls.push(server.url("/redirect/0"));
        urls.push(server.url("/files/landed.bin?size=1234"));
        let run = Tagged::start(&["--mode", mode, "-j", "3"], dir.path(), &urls);
        let (status, stderr) = run.finish();
        assert_eq!(status.code(), Some(0), "{mode}: {stderr}");
        for size in sizes {
            let name = format!("f{size}.bin");
            assert!(
                read(dir.path(), &name) == body(&name, size),
                "{mode}: {name}"
            );
        }
        assert!(
            read(dir.path(), "same.bin") == body("same.bin", 5000),
            "{mode}"
        );
        assert!(
            read(dir.path(), "same-1.bin") == body("same.bin", 7000),
            "{mode}"
        );
        assert!(
            read(dir.path(), "landed.bin") == body("landed.bin", 1234),
            "{mode}"
        );
        assert!(
            read(dir.path(), "landed-1.bin") == body("landed.bin", 1234),
            "{mode}"
        );
        assert_eq!(listing(dir.path()).len(), sizes.len() + 4, "{mode}");
    }
}

#[test]
fn procs_workers_take_download_after_download_on_kept_connections() {
    for (mode, workers, connections) in [("procs", 2, 1..=4), ("spawn", 30, 30..=30)] {
        let server = TestServer::http();
        let dir = tempdir().unwrap();
        // Slow enough that the workers can be counted while they run.
        let urls: Vec<String> = (0..30)
            .map(|i| server.url(&format!("/slow/k{i}.bin?size=2000&ms=20")))
            .collect();
        let mut run = Tagged::start(&["--mode", mode, "-j", "2"], dir.path(), &urls);
        let mut seen = BTreeSet::new();
        while run.parent.try_wait().unwrap().is_none() {
            seen.extend(workers_of(run.parent.id()));
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let (status, stderr) = run.finish();
        assert_eq!(status.code(), Some(0), "{mode}: {stderr}");
        assert_eq!(server.requests(), 30, "{mode}");
        for i in 0..30 {
            let name = format!("k{i}.bin");
            assert!(
                read(dir.path(), &name) == body(&name, 2000),
                "{mode}: {name}"
            );
        }
        // A pool of 2 never has more than 2 workers; a process per download cannot share
        // connections.
        assert!(
            (1..=workers).contains(&seen.len()),
            "{mode}: {} workers seen: {seen:?}",
            seen.len()
        );
        assert!(
            connections.contains(&server.connections()),
            "{mode}: {} connections for 30 requests",
            server.connections()
        );
    }
}

#[test]
fn a_sigkilled_worker_fails_only_its_download_and_is_replaced() {
    for mode in PROCESS_MODES {
        let server = TestServer::http();
        let dir = tempdir().unwrap();
        // One worker: every download after the victim's needs its replacement.
        let urls = vec![
            server.url("/fault/victim.bin?size=400000&stall_after=100000"),
            server.url("/files/a.bin?size=30000"),
            server.url("/files/b.bin?size=40000"),
            server.url("/files/c.bin?size=50000"),
        ];
        let run = Tagged::start(
            &["--mode", mode, "-j", "1", "--retries", "0"],
            dir.path(),
            &urls,
        );
        wait_until_sent(&server, 100_000);
        wait_for_part(&dir.path().join("victim.bin.part"), 100_000);
        let victim = wait_for_workers(run.parent.id(), 1);
        let victim = *victim.first().unwrap();
        send_signal(victim, "KILL");
        let (status, stderr) = run.finish();
        assert_eq!(status.code(), Some(1), "{mode}: {stderr}");
        let failed: Vec<&str> = stderr.lines().filter(|l| l.contains("FAILED")).collect();
        assert_eq!(failed.len(), 1, "{mode}: {stderr}");
        assert!(failed[0].contains("victim.bin"), "{mode}: {stderr}");
        assert!(
            failed[0].contains("child process killed by signal 9 (SIGKILL)"),
            "{mode}: {stderr}"
        );
        assert!(stderr.contains("3 ok, 1 failed"), "{mode}: {stderr}");
        for (name, size) in [("a.bin", 30_000), ("b.bin", 40_000), ("c.bin", 50_000)] {
            assert!(read(dir.path(), name) == body(name, size), "{mode}: {name}");
        }
        assert_eq!(
            listing(dir.path()),
            [
                "a.bin",
                "b.bin",
                "c.bin",
                "victim.bin.part",
                "victim.bin.part.fbstate"
            ],
            "{mode}"
        );
        assert!(!is_worker(victim) || is_zombie(victim), "{mode}");
    }
}

#[test]
fn ctrl_c_and_sigterm_reach_every_worker_and_leave_no_process() {
    for mode in PROCESS_MODES {
        for signal in ["INT", "TERM"] {
            let server = TestServer::http();
            let dir = tempdir().unwrap();
            // Three downloads that stall half-way: only a cancel passed on to each of their
            // workers ends them as interrupted (else they would stall until the timeout).
            let mut urls: Vec<String> = (0..3)
                .map(|i| server.url(&format!("/fault/s{i}.bin?size=400000&stall_after=100000")))
                .collect();
            urls.push(server.url("/files/never.bin?size=10"));
            let run = Tagged::start(&["--mode", mode, "-j", "3"], dir.path(), &urls);
            wait_until_sent(&server, 300_000);
            for i in 0..3 {
                wait_for_part(&dir.path().join(format!("s{i}.bin.part")), 0);
            }
            let workers = wait_for_workers(run.parent.id(), 3);
            send_signal(run.parent.id(), signal);
            let (status, stderr) = run.finish();
            let what = format!("{mode} SIG{signal}");
            let code = if signal == "TERM" { 143 } else { 130 };
            assert_eq!(status.code(), Some(code), "{what}: {stderr}");
            assert!(stderr.contains("INTERRUPTED"), "{what}: {stderr}");
            for i in 0..3 {
                let line = stderr
                    .lines()
                    .find(|l| l.contains(&format!("s{i}.bin")) && l.starts_with("INTERRUPTED "))
                    .unwrap_or_else(|| panic!("{what}: no line for s{i}.bin\n{stderr}"));
                assert!(line.contains(": interrupted"), "{what}: {line}");
            }
            assert!(!stderr.contains("stall timeout"), "{what}: {stderr}");
            assert!(!stderr.contains("child process"), "{what}: {stderr}");
            for worker in workers {
                assert!(!is_worker(worker) || is_zombie(worker), "{what}: {worker}");
            }
            assert_eq!(
                listing(dir.path()),
                [
                    "s0.bin.part",
                    "s0.bin.part.fbstate",
                    "s1.bin.part",
                    "s1.bin.part.fbstate",
                    "s2.bin.part",
                    "s2.bin.part.fbstate"
                ],
                "{what}"
            );
        }
    }
}

#[test]
fn a_worker_interrupted_on_its_own_is_replaced_and_the_run_goes_on() {
    for mode in PROCESS_MODES {
        let server = TestServer::http();
        let dir = tempdir().unwrap();
        let urls = vec![
            server.url("/fault/held.bin?size=400000&stall_after=100000"),
            server.url("/files/a.bin?size=30000"),
            server.url("/files/b.bin?size=40000"),
        ];
        let run = Tagged::start(
            &["--mode", mode, "-j", "1", "--retries", "0"],
            dir.path(),
            &urls,
        );
        wait_until_sent(&server, 100_000);
        wait_for_part(&dir.path().join("held.bin.part"), 0);
        let worker = wait_for_workers(run.parent.id(), 1);
        // SIGINT to the worker only, not to the run: it stops the download it holds, and
        // takes no other.
        send_signal(*worker.first().unwrap(), "INT");
        let (status, stderr) = run.finish();
        assert_eq!(status.code(), Some(1), "{mode}: {stderr}");
        // The download says it was interrupted; the run was not, and counts it as failed.
        let failed: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains("FAILED") || l.contains("INTERRUPTED"))
            .collect();
        assert_eq!(failed.len(), 1, "{mode}: {stderr}");
        assert!(failed[0].starts_with("INTERRUPTED "), "{mode}: {stderr}");
        assert!(failed[0].contains("held.bin"), "{mode}: {stderr}");
        assert!(failed[0].contains(": interrupted"), "{mode}: {stderr}");
        assert!(!stderr.contains("INTERRUPTED:"), "{mode}: {stderr}");
        assert!(stderr.contains("2 ok, 1 failed"), "{mode}: {stderr}");
        for (name, size) in [("a.bin", 30_000), ("b.bin", 40_000)] {
            assert!(read(dir.path(), name) == body(name, size), "{mode}: {name}");
        }
    }
}

#[test]
fn bench_compares_both_process_models_by_default() {
    let dir = tempdir().unwrap();
    let json = dir.path().join("bench.json");
    fetchbench()
        .args(["bench", "--runs", "1", "--warmup", "0", "-j", "2"])
        .args(["--files", "6", "--size", "1KiB", "--latency", "0ms"])
        .arg("--export-json")
        .arg(&json)
        .assert()
        .code(0);
    let export: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let modes = export["results"].as_array().unwrap();
    let names: Vec<&str> = modes.iter().map(|m| m["mode"].as_str().unwrap()).collect();
    assert_eq!(names, ["seq", "threads", "pool", "async", "procs", "spawn"]);
    for mode in modes {
        let run = &mode["runs"][0];
        assert_eq!(run["ok"], true, "{mode}");
        assert_eq!(run["bytes"], 6 * 1024, "{mode}");
    }
}

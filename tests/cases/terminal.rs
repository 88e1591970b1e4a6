//! As a person runs it: stdout and stderr on one pseudo-terminal of 80 columns (the pty is the
//! run's controlling terminal, so Ctrl-C is a real ^C typed into it), and the screen read back
//! through a terminal emulator (vt100) at each moment that matters.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fetchbench::{ServerConfig, ServerHandle};
use tempfile::tempdir;

const COLUMNS: u16 = 80;
const ROWS: u16 = 120;

/// fetchbench running on a pseudo-terminal of 80 columns, and everything it wrote there.
struct OnTerminal {
    master: File,
    child: Child,
    written: Arc<Mutex<Vec<u8>>>,
    reader: Option<JoinHandle<()>>,
}

impl OnTerminal {
    fn start(args: &[&str]) -> OnTerminal {
        let (mut master, mut slave) = (-1, -1);
        let size = libc::winsize {
            ws_row: ROWS,
            ws_col: COLUMNS,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let opened = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                &size,
            )
        };
        assert_eq!(opened, 0, "openpty: {}", std::io::Error::last_os_error());
        let master = unsafe { File::from_raw_fd(master) };
        let slave = unsafe { OwnedFd::from_raw_fd(slave) };
        let mut command = Command::new(env!("CARGO_BIN_EXE_fetchbench"));
        command
            .args(args)
            .env_remove("COLUMNS")
            .env_remove("NO_COLOR")
            .env("TERM", "xterm-256color")
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        // A session of its own with the pty as its controlling terminal: ^C reaches it as a
        // person's would.
        unsafe {
            command.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().unwrap();
        // The parent's copies of the slave are gone with `command`: the reader sees the end.
        drop(command);
        let written = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&written);
        let mut from = master.try_clone().unwrap();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 65536];
            // EIO once the last process on the terminal has closed it.
            while let Ok(n @ 1..) = from.read(&mut buf) {
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        OnTerminal {
            master,
            child,
            written,
            reader: Some(reader),
        }
    }

    /// The screen as it is now, one line per row of the terminal (trailing blanks trimmed).
    fn screen(&self) -> String {
        let size = |n| std::num::NonZeroU16::new(n).unwrap();
        let mut parser = vt100::Parser::new(size(ROWS), size(COLUMNS), 0);
        parser.process(&self.written.lock().unwrap());
        let rows: Vec<String> = parser
            .screen()
            .rows(0, COLUMNS)
            .map(|row| row.trim_end().to_owned())
            .collect();
        rows.join("\n").trim_end().to_owned()
    }

    /// The text on the screen now, a line wrapped by the terminal joined back into one.
    fn text(&self) -> String {
        let size = |n| std::num::NonZeroU16::new(n).unwrap();
        let mut parser = vt100::Parser::new(size(ROWS), size(COLUMNS), 0);
        parser.process(&self.written.lock().unwrap());
        parser.screen().contents()
    }

    /// Waits (at most 20 s) until the screen shows `text`; returns that screen.
    fn wait_for(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let screen = self.screen();
            if screen.contains(text) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "never showed {text:?}:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Types `keys` into the terminal.
    fn type_keys(&mut self, keys: &[u8]) {
        self.master.write_all(keys).unwrap();
    }

    /// Waits for the run to end: its exit code.
    fn wait(&mut self) -> Option<i32> {
        let status = self.child.wait().unwrap();
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        status.code()
    }

    /// Waits for the run to end: its exit code and the final screen.
    fn finish(mut self) -> (Option<i32>, String) {
        (self.wait(), self.screen())
    }
}

/// Shows a frame in the test's output (`cargo test terminal -- --nocapture`).
fn show(title: &str, screen: &str) {
    eprintln!("----- {title} (80 columns)\n{}\n-----", screen.trim_end());
}

fn server(rate: u64, size: u64) -> ServerHandle {
    ServerHandle::start(ServerConfig {
        latency: Duration::from_millis(20),
        rate: Some(rate),
        size,
        ..ServerConfig::default()
    })
    .unwrap()
}

/// A bar line or the overall line, as drawn mid-run: `total ...`, a `[===>   ]` bar, or a
/// spinner.
fn is_bar(line: &str) -> bool {
    let bar = line.split('[').skip(1).any(|rest| {
        rest.split_once(']').is_some_and(|(inside, _)| {
            !inside.is_empty() && inside.chars().all(|c| "=> ".contains(c))
        })
    });
    let spinner = line.chars().any(|c| ('\u{2800}'..='\u{28ff}').contains(&c));
    line.starts_with("total ") || bar || spinner
}

#[test]
fn on_one_terminal_every_path_has_a_line_of_its_own_and_no_bar_is_left() {
    let server = server(2 << 20, 512 << 10);
    let dir = tempdir().unwrap();
    let out = dir.path().to_str().unwrap().to_owned();
    let urls: Vec<String> = (0..30)
        .map(|i| format!("{}/files/file-{i}.bin", server.base_url()))
        .collect();
    let mut args = vec!["-o", &out];
    args.extend(urls.iter().map(String::as_str));
    let run = OnTerminal::start(&args);
    let mid = run.wait_for("ETA");
    show("mid-run", &mid);
    assert!(mid.lines().any(|l| l.starts_with("total [")), "{mid}");
    let (code, end) = run.finish();
    show("the end", &end);
    assert_eq!(code, Some(0), "{end}");
    let lines: Vec<&str> = end.lines().collect();
    for i in 0..30 {
        let path = format!("{out}/file-{i}.bin");
        assert!(
            lines.contains(&path.as_str()),
            "{path} is not on a line of its own:\n{end}"
        );
    }
    let stale: Vec<&&str> = lines.iter().filter(|l| is_bar(l)).collect();
    assert!(
        stale.is_empty(),
        "bars left on the screen: {stale:?}\n{end}"
    );
    assert!(
        end.contains("async, auto (up to") && end.contains(": 30 ok, 0 failed"),
        "{end}"
    );
}

#[test]
fn on_one_terminal_json_lines_stay_whole() {
    let server = server(4 << 20, 256 << 10);
    let dir = tempdir().unwrap();
    let out = dir.path().to_str().unwrap().to_owned();
    let urls: Vec<String> = (0..20)
        .map(|i| format!("{}/files/j-{i}.bin", server.base_url()))
        .collect();
    let mut args = vec!["--json", "-o", &out];
    args.extend(urls.iter().map(String::as_str));
    let mut run = OnTerminal::start(&args);
    let code = run.wait();
    // A JSON line is wider than the terminal: the emulator joins back the rows it wrapped.
    let end = run.text();
    assert_eq!(code, Some(0), "{end}");
    let joined: Vec<&str> = end.lines().collect();
    let objects: Vec<serde_json::Value> = joined
        .iter()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}\n{end}")))
        .collect();
    assert_eq!(objects.len(), 21, "{end}");
    assert_eq!(objects[20]["type"], "summary");
    assert!(!joined.iter().any(|l| is_bar(l)), "{end}");
}

#[test]
fn ctrl_c_on_the_terminal_ends_with_a_table_naming_the_files() {
    // 8 files of 4 MiB at 256 KiB/s each: long enough to be stopped half way.
    let server = server(256 << 10, 4 << 20);
    let dir = tempdir().unwrap();
    let out = dir.path().to_str().unwrap().to_owned();
    let urls: Vec<String> = (0..8)
        .map(|i| format!("{}/files/slow-{i}.bin?size=4194304", server.base_url()))
        .collect();
    let mut args = vec!["-j", "4", "-o", &out];
    args.extend(urls.iter().map(String::as_str));
    let mut run = OnTerminal::start(&args);
    let mid = run.wait_for("ETA");
    std::thread::sleep(Duration::from_millis(700));
    show("mid-run, before Ctrl-C", &run.screen());
    assert!(mid.contains("slow-"), "{mid}");
    run.type_keys(b"\x03");
    let (code, end) = run.finish();
    show("after Ctrl-C, the end", &end);
    assert_eq!(code, Some(130), "{end}");
    assert!(end.contains("interrupted: stopping downloads"), "{end}");
    let lines: Vec<&str> = end.lines().collect();
    let heading = lines
        .iter()
        .find(|l| l.starts_with("file "))
        .unwrap_or_else(|| panic!("no table:\n{end}"));
    assert!(
        heading.contains("status") && heading.ends_with("error"),
        "{end}"
    );
    let rows: Vec<&&str> = lines
        .iter()
        .filter(|l| l.contains(" interrupted "))
        .collect();
    assert_eq!(rows.len(), 4, "{end}");
    for row in rows {
        assert!(row.starts_with("slow-") && !row.contains("http"), "{row}");
    }
    let total = lines
        .iter()
        .find(|l| l.starts_with("INTERRUPTED: async, 4 jobs:"))
        .unwrap_or_else(|| panic!("no total line:\n{end}"));
    assert!(total.contains("0 ok, 0 failed, 4 interrupted"), "{total}");
    assert!(
        end.contains("interrupted: 0 done, 4 in flight kept as .part, 4 not started"),
        "{end}"
    );
    assert!(!end.contains("FAILED"), "{end}");
    assert!(!lines.iter().any(|l| is_bar(l)), "{end}");
}

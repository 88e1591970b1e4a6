//! `--shard K/N`: N processes over one list fetch every file exactly once, each shows its
//! shard, and `-c` on one shard resumes that shard's files only.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use tempfile::tempdir;

use crate::server::{TestServer, body};
use crate::util::{OutDir, fetchbench, json_lines, listing};

const SCHEMA: &str = include_str!("../../schema.json");

/// Runs `fetchbench --shard K/N ARGS -o dirs[K] -i list` for every K at once, as N machines
/// would, and waits for all of them.
fn run_shards(list: &Path, dirs: &[&Path], args: &[&str]) -> Vec<Output> {
    let n = dirs.len();
    let children: Vec<_> = dirs
        .iter()
        .enumerate()
        .map(|(k, dir)| {
            Command::new(env!("CARGO_BIN_EXE_fetchbench"))
                .args(["--shard", &format!("{k}/{n}"), "--json", "-i"])
                .arg(list)
                .arg("-o")
                .arg(dir)
                .args(args)
                // Each its own mode: the split is the input's, the same in every mode.
                .args(["--mode", ["seq", "pool", "procs"][k % 3]])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|child| child.wait_with_output().unwrap())
        .collect()
}

#[test]
fn n_processes_over_one_list_save_every_file_exactly_once_and_c_resumes_one_shard() {
    let server = TestServer::http();
    let work = tempdir().unwrap();
    // Names of this test's own: a server's hit counts are per path.
    let names: Vec<String> = (0..24).map(|i| format!("shard-f{i}.bin")).collect();
    // Every body is cut after 3000 of its 8000 bytes the first time it is asked for.
    let mut text = String::from("# a comment and a blank line belong to no shard\n\n");
    for name in &names {
        text += &server.url(&format!("/fault/{name}?size=8000&drop_after=3000\n"));
    }
    text += "not a url\n";
    let list = work.path().join("urls.txt");
    std::fs::write(&list, text).unwrap();
    let dirs: Vec<_> = (0..3)
        .map(|k| work.path().join(format!("shard-{k}")))
        .collect();
    let dirs: Vec<&Path> = dirs.iter().map(|d| d.as_path()).collect();

    // First pass without retries: every download is cut and leaves its .part.
    let first = run_shards(&list, &dirs, &["--retries", "0"]);
    let mut taken = Vec::new();
    let mut bad_lines = Vec::new();
    let schema: Value = serde_json::from_str(SCHEMA).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    for (k, out) in first.iter().enumerate() {
        assert_eq!(out.status.code(), Some(1), "shard {k}");
        let lines = json_lines(&out.stdout);
        for line in &lines {
            assert!(validator.is_valid(line), "{line}");
        }
        let summary = lines.last().unwrap();
        assert_eq!(
            summary["shard"],
            serde_json::json!({"index": k, "count": 3})
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&format!(", shard {k}/3: ")), "{stderr}");
        let mut shard = BTreeSet::new();
        for line in &lines[..lines.len() - 1] {
            let url = line["url"].as_str().unwrap();
            if url == "not a url" {
                bad_lines.push(k);
                assert!(
                    line["error"].as_str().unwrap().contains("urls.txt:27"),
                    "{line}"
                );
                continue;
            }
            let name = url.rsplit('/').next().unwrap().split('?').next().unwrap();
            shard.insert(name.to_owned());
        }
        assert!(!shard.is_empty(), "shard {k} got nothing of 24 URLs");
        taken.push(shard);
    }
    assert_eq!(
        bad_lines.len(),
        1,
        "the bad line is reported by exactly one shard"
    );
    let all: BTreeSet<String> = taken.iter().flatten().cloned().collect();
    assert_eq!(all.len(), names.len(), "every URL in some shard");
    assert_eq!(
        taken.iter().map(BTreeSet::len).sum::<usize>(),
        names.len(),
        "no URL in two shards"
    );
    for name in &names {
        assert_eq!(server.hits(&format!("/fault/{name}")), 1, "{name}");
    }

    // Shard 1 again with -c: its files resume from their .part, nobody else's is asked for.
    fetchbench()
        .args(["--shard", "1/3", "-c", "-q", "-i"])
        .arg(&list)
        .arg("-o")
        .arg(dirs[1])
        .assert()
        // The bad line fails again only where it belongs.
        .code(if bad_lines == [1] { 1 } else { 0 });
    for name in &names {
        let hits = server.hits(&format!("/fault/{name}"));
        if taken[1].contains(name) {
            assert_eq!(hits, 2, "{name}");
            assert_eq!(std::fs::read(dirs[1].join(name)).unwrap(), body(name, 8000));
        } else {
            assert_eq!(hits, 1, "{name} is not shard 1's");
        }
    }
    let resumed: Vec<_> = server
        .ranges()
        .into_iter()
        .filter(|(range, _)| range != "-")
        .collect();
    assert_eq!(resumed.len(), taken[1].len(), "{resumed:?}");
    assert!(
        resumed.iter().all(|(range, _)| range == "bytes=3000-"),
        "{resumed:?}"
    );
    for k in [0, 2] {
        // Each kept .part (beside it, its record: NAME.part.fbstate).
        let listed = listing(dirs[k]);
        let parts: Vec<_> = listed.iter().filter(|p| !p.ends_with(".fbstate")).collect();
        assert_eq!(parts.len(), taken[k].len(), "{listed:?}");
        assert!(parts.iter().all(|p| p.ends_with(".part")), "{listed:?}");
    }
}

#[test]
fn shards_are_numbered_from_zero() {
    fetchbench()
        .args(["--shard", "3/3", "http://127.0.0.1:9/x"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("numbered from 0"));
}

#[test]
fn a_shard_that_gets_no_url_is_done_not_an_error() {
    let dir = OutDir::new();
    // One URL: of two shards, one gets nothing (and sends no request anywhere).
    let url = "http://127.0.0.1:9/only.bin";
    let (ours, theirs) = match fetchbench_shard_of(url) {
        0 => ("1/2", "0/2"),
        _ => ("0/2", "1/2"),
    };
    let list = dir.file("one.txt");
    std::fs::write(&list, format!("{url}\n")).unwrap();
    for args in [vec!["-i", list.to_str().unwrap()], vec![url]] {
        let out = dir
            .fetch()
            .args(["--json", "--shard", ours])
            .args(&args)
            .code(0);
        let lines = out.json();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(lines[0]["files"], 0);
    }
    // The other shard has it (and fails to reach it: nothing listens on port 9).
    dir.fetch()
        .args(["-q", "--retries", "0", "--shard", theirs, url])
        .code(1);
    // A list with no URL at all is still an error, sharded or not.
    let empty = dir.file("empty.txt");
    std::fs::write(&empty, "# nothing\n").unwrap();
    fetchbench()
        .args(["--shard", "0/2", "-i"])
        .arg(&empty)
        .assert()
        .code(2);
}

fn fetchbench_shard_of(url: &str) -> u64 {
    fetchbench::shard_of(url, 2)
}

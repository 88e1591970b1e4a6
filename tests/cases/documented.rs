//! Every flag is in `--help`, the man page and the README (the man page is generated from the
//! same definition, the README by hand: this keeps it honest).

use crate::util::fetchbench;

const README: &str = include_str!("../../README.md");

fn stdout(args: &[&str]) -> String {
    let out = fetchbench().args(args).assert().code(0);
    String::from_utf8_lossy(&out.get_output().stdout).into_owned()
}

#[test]
fn the_reach_flags_are_in_help_man_page_and_readme() {
    let help = stdout(&["--help"]);
    let man = stdout(&["man"]).replace("\\-", "-");
    for flag in [
        "--shard",
        "--verbose",
        "--load-cookies",
        "--save-cookies",
        "--timestamping",
        "--no-use-server-timestamps",
        "--resolve",
        "--ipv4",
        "--ipv6",
    ] {
        assert!(help.contains(flag), "{flag} not in --help");
        assert!(man.contains(flag), "{flag} not in the man page");
        assert!(README.contains(flag), "{flag} not in the README");
    }
    let serve = stdout(&["serve", "--help"]);
    for fault in ["status=CODE", "fail=N", "cut=K", "stall=DUR"] {
        assert!(serve.contains(fault), "{fault} not in serve --help");
        assert!(
            README.contains(&format!("`{fault}`")),
            "{fault} not in the README"
        );
    }
    assert!(stdout(&["bench", "--help"]).contains("--fault"));
    assert!(README.contains("bench --fault"));
}

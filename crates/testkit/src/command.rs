//! Running a short-lived command to completion, with failure messages that
//! say what ran and why it failed.

use std::process::{Command, Output};

use serde_json::Value;

/// Runs `cmd`, panicking with its command line, status, stderr and stdout
/// unless it exits successfully.
pub fn run(cmd: &mut Command) -> Output {
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    if !output.status.success() {
        panic!("{}", describe_failure(cmd, &output, "command failed"));
    }
    output
}

/// Runs `cmd` like [`run`] and parses its stdout as one JSON value.
pub fn run_json(cmd: &mut Command) -> Value {
    let output = run(cmd);
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{}",
            describe_failure(cmd, &output, &format!("stdout is not JSON ({e})"))
        )
    })
}

fn describe_failure(cmd: &Command, output: &Output, what: &str) -> String {
    format!(
        "{what}: {cmd:?}\nstatus: {}\n--- stderr ---\n{}\n--- stdout ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout),
    )
}

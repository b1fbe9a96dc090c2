//! Running the platform's service tools (`systemctl`, `launchctl`,
//! `schtasks`): a missing tool and a failing one are the customer's
//! environment, reported with the command line and what it printed.

use std::process::{Command, Output};

use super::ServiceError;

/// What a tool printed is quoted in errors; more than this is noise.
const MAX_QUOTED_OUTPUT: usize = 2000;

/// Runs `program args`, returning its output whatever its exit status;
/// only a tool that cannot be started is an error here.
pub fn run(
    program: &'static str,
    args: &[&str],
    hint: &'static str,
) -> Result<Output, ServiceError> {
    Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|source| ServiceError::ToolMissing {
            tool: program,
            hint,
            source,
        })
}

/// Runs the tool and requires success.
pub fn run_ok(
    program: &'static str,
    args: &[&str],
    hint: &'static str,
) -> Result<Output, ServiceError> {
    let output = run(program, args, hint)?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(failed(program, args, &output))
    }
}

pub fn failed(program: &str, args: &[&str], output: &Output) -> ServiceError {
    ServiceError::ToolFailed {
        command: std::iter::once(program)
            .chain(args.iter().copied())
            .collect::<Vec<_>>()
            .join(" "),
        status: output.status.to_string(),
        stderr: printed(output),
    }
}

/// What the tool said, stderr first, bounded.
pub fn printed(output: &Output) -> String {
    let mut text = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    if text.is_empty() {
        text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    }
    if text.len() > MAX_QUOTED_OUTPUT {
        let mut end = MAX_QUOTED_OUTPUT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str(" …");
    }
    text
}

//! What the rotation function's log says of a rotation under way: its last
//! failed step and `errorType`, read back for `keyrot status`, and the
//! command that shows an operator the whole log.
//!
//! Why the log, and not a record of its own: the `Rotation Step Failed` event
//! cannot be read later, and a record the function writes (a tag) would need
//! a write permission the function does not have, and could be written by
//! whoever may tag the secret. The log group is written only by the
//! function, is already there, and costs keyrot one read-only call
//! (`logs:FilterLogEvents`) for a secret with a rotation under way, and none
//! for the others. It only informs a person: no decision rests on it.

use serde_json::Value;

use crate::aws::logs::{LoggedLine, quoted_term};

/// The message the function logs when a step fails (`handler.rs`).
const STEP_FAILED: &str = "step failed";

/// A failed step, as the function logged it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepFailure {
    pub step: Option<String>,
    pub error_type: String,
    /// Milliseconds since the epoch.
    pub at_ms: i64,
}

/// What keyrot read of the function's log for a rotation under way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationLog {
    /// The command that shows the secret's lines since the rotation began.
    pub command: String,
    /// The last failed step logged since then.
    pub failure: Option<StepFailure>,
    /// Why the log could not be read, if it could not.
    pub unread: Option<String>,
}

/// The log group Lambda writes a function's log to, by default and in the
/// template: `/aws/lambda/<function name>`.
pub fn log_group_of(function_arn: &str) -> Option<String> {
    let name = function_arn
        .split_once(":function:")
        .map_or(function_arn, |(_, rest)| rest);
    let name = name.split(':').next().filter(|name| !name.is_empty())?;
    Some(format!("/aws/lambda/{name}"))
}

/// `aws logs filter-log-events` for the secret's lines since `since_ms`.
pub fn log_command(log_group: &str, secret_arn: &str, since_ms: i64) -> String {
    format!(
        "aws logs filter-log-events --log-group-name {log_group} --start-time {since_ms} --filter-pattern '{}' --query 'events[].message' --output text",
        quoted_term(secret_arn)
    )
}

/// The last failed step among the lines, in either of the function's log
/// formats (JSON, the template's, or text).
pub fn last_failure(lines: &[LoggedLine]) -> Option<StepFailure> {
    lines
        .iter()
        .filter_map(failure_in)
        .max_by_key(|failure| failure.at_ms)
}

fn failure_in(line: &LoggedLine) -> Option<StepFailure> {
    if !line.message.contains(STEP_FAILED) {
        return None;
    }
    let (step, error_type) = match serde_json::from_str::<Value>(&line.message) {
        Ok(json) => json_failure(&json)?,
        Err(_) => text_failure(&line.message)?,
    };
    Some(StepFailure {
        step,
        error_type,
        at_ms: line.at_ms,
    })
}

/// `{"fields": {"message": "step failed", "error_type": ...}, "span": {"step": ...}}`.
fn json_failure(json: &Value) -> Option<(Option<String>, String)> {
    let fields = json.get("fields").unwrap_or(json);
    if fields.get("message").and_then(Value::as_str) != Some(STEP_FAILED) {
        return None;
    }
    let error_type = fields.get("error_type")?.as_str()?.to_string();
    let step = json
        .get("span")
        .and_then(|span| span.get("step"))
        .and_then(Value::as_str)
        .map(str::to_string);
    Some((step, error_type))
}

/// `WARN rotation{step=createSecret secret=...}: step failed error_type="X" ...`.
fn text_failure(message: &str) -> Option<(Option<String>, String)> {
    let word_after = |key: &str| {
        let rest = &message[message.find(key)? + key.len()..];
        let word: String = rest
            .trim_start_matches('"')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        (!word.is_empty()).then_some(word)
    };
    Some((word_after("step="), word_after("error_type=")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(at_ms: i64, message: &str) -> LoggedLine {
        LoggedLine {
            at_ms,
            message: message.into(),
        }
    }

    #[test]
    fn the_last_failed_step_is_read_from_json_and_text_lines() {
        let lines = [
            line(
                1,
                r#"{"level":"WARN","fields":{"message":"step failed","error_type":"KeyNotPropagated","error":"..."},"span":{"secret":"arn:x","step":"testSecret","name":"rotation"}}"#,
            ),
            line(
                3,
                r#"WARN rotation{step=createSecret secret=arn:x token=t}: step failed error_type="UnmanagedKeyBlocks" error=..."#,
            ),
            line(
                2,
                r#"{"level":"INFO","fields":{"message":"created the new key"},"span":{"step":"createSecret"}}"#,
            ),
        ];
        assert_eq!(
            last_failure(&lines),
            Some(StepFailure {
                step: Some("createSecret".into()),
                error_type: "UnmanagedKeyBlocks".into(),
                at_ms: 3
            })
        );
        assert_eq!(
            last_failure(&lines[..1]).map(|f| f.error_type),
            Some("KeyNotPropagated".into())
        );
        assert_eq!(last_failure(&lines[2..]), None);
    }

    #[test]
    fn the_log_group_and_command_name_the_function_and_the_secret() {
        assert_eq!(
            log_group_of("arn:aws:lambda:us-east-1:1:function:stack-iam-key-rotation:live")
                .as_deref(),
            Some("/aws/lambda/stack-iam-key-rotation")
        );
        let command = log_command("/aws/lambda/f", "arn:aws:secretsmanager:r:1:secret:a-Ab", 5);
        assert!(
            command.contains("--filter-pattern '\"arn:aws:secretsmanager:r:1:secret:a-Ab\"'"),
            "{command}"
        );
        assert!(command.contains("--start-time 5"), "{command}");
    }
}

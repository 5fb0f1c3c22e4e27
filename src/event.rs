//! The Secrets Manager rotation event, validated before anything touches AWS.
//!
//! The handler receives the raw JSON rather than the typed event so that a malformed
//! payload is answered with our own message: serde's messages quote the offending
//! value, and the payload carries the sensitive `RotationToken`.

use std::fmt;

use aws_lambda_events::event::secretsmanager::SecretsManagerSecretRotationEvent;
use serde_json::Value;

use crate::error::RotationError;
use crate::model::secret_value::json_type;
use crate::sensitive::Sensitive;

/// The four steps Secrets Manager invokes, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Create,
    Set,
    Test,
    Finish,
}

impl Step {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "createSecret" => Some(Self::Create),
            "setSecret" => Some(Self::Set),
            "testSecret" => Some(Self::Test),
            "finishSecret" => Some(Self::Finish),
            _ => None,
        }
    }

    /// The name Secrets Manager uses for the step.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "createSecret",
            Self::Set => "setSecret",
            Self::Test => "testSecret",
            Self::Finish => "finishSecret",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the function was invoked to do.
#[derive(Debug, Clone)]
pub enum Request {
    /// One step of a rotation, from Secrets Manager or by hand.
    Rotation(RotationRequest),
    /// `{"Action": "sweep"}`: retire previous keys whose time has come.
    Sweep,
}

/// The one `Action` the function accepts besides the rotation event.
pub const SWEEP: &str = "sweep";

impl Request {
    /// A payload with an `Action` field is a sweep (the only action there is);
    /// anything else must be a rotation event.
    pub fn from_payload(payload: Value) -> Result<Self, RotationError> {
        let Some(action) = payload.get("Action") else {
            return RotationRequest::from_payload(payload).map(Self::Rotation);
        };
        match action.as_str() {
            Some(SWEEP) => Ok(Self::Sweep),
            Some(other) => Err(invalid(format!(
                "unknown Action {}; the only action is \"sweep\"",
                quote_short(other)
            ))),
            None => Err(invalid(format!(
                "field Action is {}, not a string",
                json_type(action)
            ))),
        }
    }
}

/// A validated rotation request.
#[derive(Debug, Clone)]
pub struct RotationRequest {
    pub step: Step,
    /// The secret's ARN or, when invoked by hand, its name.
    pub secret_id: String,
    /// The version id of the new secret version; the same for all four steps.
    pub token: String,
    /// Sent by Secrets Manager since 2025 and passed on to `PutSecretValue`.
    pub rotation_token: Option<Sensitive>,
}

/// Longest `SecretId` Secrets Manager accepts (an ARN or a name).
const MAX_SECRET_ID_LEN: usize = 2048;
/// Longest `ClientRequestToken` Secrets Manager accepts.
const MAX_TOKEN_LEN: usize = 64;

impl RotationRequest {
    /// Checks the payload's shape and turns it into a request, or says what is wrong
    /// without quoting any value from it.
    pub fn from_payload(payload: Value) -> Result<Self, RotationError> {
        let Value::Object(mut fields) = payload else {
            return Err(invalid(format!(
                "the payload is {} , not a JSON object",
                json_type(&payload)
            )));
        };
        for name in ["Step", "SecretId", "ClientRequestToken"] {
            match fields.get(name) {
                None => return Err(invalid(format!("field {name} is missing"))),
                Some(Value::String(_)) => {}
                Some(other) => {
                    return Err(invalid(format!(
                        "field {name} is {}, not a string",
                        json_type(other)
                    )));
                }
            }
        }
        let rotation_token = match fields.remove("RotationToken") {
            None | Some(Value::Null) => None,
            Some(Value::String(token)) => Some(Sensitive::new(token)),
            Some(other) => {
                return Err(invalid(format!(
                    "field RotationToken is {}, not a string",
                    json_type(&other)
                )));
            }
        };
        let event: SecretsManagerSecretRotationEvent =
            serde_json::from_value(Value::Object(fields))
                .map_err(|_| invalid("the payload does not match the rotation event".into()))?;

        let step = Step::parse(&event.step)
            .ok_or_else(|| invalid(format!("unknown Step {}", quote_short(&event.step))))?;
        check_identifier("SecretId", &event.secret_id, MAX_SECRET_ID_LEN)?;
        check_identifier(
            "ClientRequestToken",
            &event.client_request_token,
            MAX_TOKEN_LEN,
        )?;
        Ok(Self {
            step,
            secret_id: event.secret_id,
            token: event.client_request_token,
            rotation_token,
        })
    }
}

fn check_identifier(name: &str, value: &str, max_len: usize) -> Result<(), RotationError> {
    if value.trim().is_empty() {
        return Err(invalid(format!("field {name} is empty")));
    }
    if value.len() > max_len {
        return Err(invalid(format!(
            "field {name} is {} bytes long, more than the {max_len} Secrets Manager allows",
            value.len()
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(format!("field {name} contains control characters")));
    }
    Ok(())
}

fn invalid(reason: String) -> RotationError {
    RotationError::InvalidEvent { reason }
}

/// Quotes a short, non-secret value; longer ones are cut so a hostile payload cannot
/// flood the logs.
fn quote_short(value: &str) -> String {
    const LIMIT: usize = 40;
    if value.chars().count() <= LIMIT {
        format!("{value:?}")
    } else {
        let head: String = value.chars().take(LIMIT).collect();
        format!("{head:?}... ({} bytes)", value.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TOKEN: &str = "1b5a3c49-2a9b-4f5e-9a4e-0c3c8f3d9b11";

    #[test]
    fn a_valid_event_is_accepted_with_its_rotation_token() {
        let request = RotationRequest::from_payload(json!({
            "Step": "testSecret",
            "SecretId": "app/keys",
            "ClientRequestToken": TOKEN,
            "RotationToken": "very-secret-rotation-token",
        }))
        .unwrap();
        assert_eq!(request.step, Step::Test);
        assert_eq!(request.secret_id, "app/keys");
        assert_eq!(request.token, TOKEN);
        assert_eq!(
            request.rotation_token.unwrap().expose(),
            "very-secret-rotation-token"
        );
    }

    #[test]
    fn an_action_field_asks_for_the_sweep_and_nothing_else() {
        assert!(matches!(
            Request::from_payload(json!({"Action": "sweep"})),
            Ok(Request::Sweep)
        ));
        assert!(matches!(
            Request::from_payload(
                json!({"Step": "createSecret", "SecretId": "s", "ClientRequestToken": TOKEN})
            ),
            Ok(Request::Rotation(_))
        ));
        for payload in [json!({"Action": "rotate"}), json!({"Action": 1})] {
            let error = Request::from_payload(payload).unwrap_err();
            assert_eq!(error.kind(), "InvalidEvent");
        }
    }

    #[test]
    fn hostile_events_are_rejected_without_echoing_them() {
        let huge = "x".repeat(100_000);
        let cases = [
            json!(null),
            json!("createSecret"),
            json!([1, 2]),
            json!({"SecretId": "s", "ClientRequestToken": TOKEN}),
            json!({"Step": 1, "SecretId": "s", "ClientRequestToken": TOKEN}),
            json!({"Step": "rotate", "SecretId": "s", "ClientRequestToken": TOKEN}),
            json!({"Step": huge, "SecretId": "s", "ClientRequestToken": TOKEN}),
            json!({"Step": "createSecret", "SecretId": "", "ClientRequestToken": TOKEN}),
            json!({"Step": "createSecret", "SecretId": huge, "ClientRequestToken": TOKEN}),
            json!({"Step": "createSecret", "SecretId": "s", "ClientRequestToken": ""}),
            json!({"Step": "createSecret", "SecretId": "s", "ClientRequestToken": {"a": 1}}),
            json!({"Step": "createSecret", "SecretId": "s\n", "ClientRequestToken": TOKEN}),
            json!({"Step": "createSecret", "SecretId": "s", "ClientRequestToken": TOKEN, "RotationToken": 5}),
        ];
        for payload in cases {
            let error = RotationRequest::from_payload(payload).unwrap_err();
            assert_eq!(error.kind(), "InvalidEvent");
            let message = error.to_string();
            assert!(
                message.len() < 400,
                "message too long: {} bytes",
                message.len()
            );
            assert!(!message.contains(&"x".repeat(50)));
        }
    }
}

//! The stack's alert on Secrets Manager's own rotation events (and its hourly sweep), exercised rather
//! than linted: the rule's event pattern and input transformer are read from
//! template.yaml and installed in moto's EventBridge with an SQS queue in place
//! of the SNS topic; real-shaped events are delivered and what arrives is read.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_eventbridge::types::{InputTransformer, PutEventsRequestEntry};
use harness::event_queue::EventQueue;
use harness::*;
use serde_json::{Value, json};
use serde_norway::Value as Yaml;

/// The values CloudFormation would substitute, for a stack named `rotation`.
fn substitutions() -> HashMap<&'static str, &'static str> {
    HashMap::from([
        ("AWS::Partition", "aws"),
        ("AWS::Region", REGION),
        ("AWS::AccountId", ACCOUNT),
        ("AWS::StackName", "rotation"),
        ("SecretNamePrefix", "iam-keys/"),
        ("AWS::URLSuffix", "amazonaws.com"),
        ("ManagedUserPath", "/rotated/"),
        ("EventBusName", "default"),
        (
            "RotationFunction.Arn",
            "arn:aws:lambda:us-east-1:123456789012:function:rotation-iam-key-rotation",
        ),
    ])
}

/// The template as JSON, with `!Sub` strings resolved (other tags kept as
/// `{"!Tag": value}`, which the rule under test does not use).
fn resolve(yaml: Yaml) -> Value {
    match yaml {
        Yaml::Tagged(tagged) if tagged.tag == "!Sub" => {
            let Yaml::String(text) = tagged.value else {
                panic!("!Sub of a non-string")
            };
            let mut text = text;
            for (name, value) in substitutions() {
                text = text.replace(&format!("${{{name}}}"), value);
            }
            assert!(!text.contains("${"), "unresolved !Sub: {text}");
            Value::String(text)
        }
        Yaml::Tagged(tagged) => json!({ tagged.tag.to_string(): resolve(tagged.value) }),
        Yaml::Mapping(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k.as_str().unwrap().to_string(), resolve(v)))
                .collect(),
        ),
        Yaml::Sequence(items) => Value::Array(items.into_iter().map(resolve).collect()),
        Yaml::String(s) => Value::String(s),
        Yaml::Bool(b) => Value::Bool(b),
        Yaml::Number(n) => serde_json::to_value(n.as_f64()).unwrap(),
        Yaml::Null => Value::Null,
    }
}

fn rule_from_template() -> Value {
    let text = std::fs::read_to_string(repo_root().join("template.yaml")).unwrap();
    let template: Yaml = serde_norway::from_str(&text).unwrap();
    resolve(template["Resources"]["RotationFailedRule"]["Properties"].clone())
}

/// The documented example event (events/RotationFailed.cloudtrail.json), with
/// another event name or secret.
fn event(name: &str, secret_id: &str) -> PutEventsRequestEntry {
    let text =
        std::fs::read_to_string(repo_root().join("events/RotationFailed.cloudtrail.json")).unwrap();
    let mut event: Value = serde_json::from_str(&text).unwrap();
    event["detail"]["eventName"] = json!(name);
    event["detail"]["additionalEventData"]["SecretId"] = json!(secret_id);
    PutEventsRequestEntry::builder()
        .source(event["source"].as_str().unwrap())
        .detail_type(event["detail-type"].as_str().unwrap())
        .detail(event["detail"].to_string())
        .build()
}

#[tokio::test]
async fn rotation_failures_under_the_prefix_reach_the_topic_as_a_readable_message() {
    let rule = rule_from_template();
    let transformer = &rule["Targets"][0]["InputTransformer"];
    let paths: HashMap<String, String> = transformer["InputPathsMap"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    let queue = EventQueue::subscribe_with(
        &moto().endpoint,
        &rule["EventPattern"],
        Some(
            InputTransformer::builder()
                .set_input_paths_map(Some(paths))
                .input_template(transformer["InputTemplate"].as_str().unwrap())
                .build()
                .unwrap(),
        ),
    )
    .await;
    let events = aws_sdk_eventbridge::Client::new(&sdk_config(&moto().endpoint).await);

    let ours =
        format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:iam-keys/app-deployer-AbCdEf");
    let others =
        format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:database/password-XyZ123");
    events
        .put_events()
        .entries(event("RotationFailed", &ours))
        .entries(event("RotationSucceeded", &ours))
        .entries(event("RotationFailed", &others))
        .entries(event("RotationAbandoned", &ours))
        .send()
        .await
        .unwrap();

    let mut bodies = queue.receive_bodies(2, Duration::from_secs(5)).await;
    bodies.sort();
    assert_eq!(
        bodies.len(),
        2,
        "only the failure and the abandonment under the prefix: {bodies:?}"
    );
    let (abandoned, failed) = (&bodies[0], &bodies[1]);
    for (body, name) in [(failed, "RotationFailed"), (abandoned, "RotationAbandoned")] {
        let text: String = serde_json::from_str(body).unwrap_or_else(|_| body.clone());
        assert!(
            text.starts_with(&format!("{name} for secret {ours} at ")),
            "{text}"
        );
        for expected in [
            &format!("(account {ACCOUNT}, {REGION})") as &str,
            "The key in AWSCURRENT still works",
            "/aws/lambda/rotation-iam-key-rotation",
            "keyrot status --prefix iam-keys/",
        ] {
            assert!(text.contains(expected), "{expected:?} missing from: {text}");
        }
    }
}

/// The template's parameters and the rotation function's properties, as JSON.
fn template() -> Value {
    let text = std::fs::read_to_string(repo_root().join("template.yaml")).unwrap();
    let template: Yaml = serde_norway::from_str(&text).unwrap();
    json!({
        "Parameters": resolve(template["Parameters"].clone()),
        "Resources": {"RotationFunction": resolve(template["Resources"]["RotationFunction"].clone())},
    })
}

#[tokio::test]
async fn the_templates_hourly_sweep_and_settings_are_what_the_function_takes() {
    let template = template();
    let function = &template["Resources"]["RotationFunction"]["Properties"];
    let sweep = &function["Events"]["Sweep"]["Properties"];
    assert_eq!(sweep["ScheduleExpression"], "rate(1 hour)");
    let input: Value = serde_json::from_str(sweep["Input"].as_str().unwrap()).unwrap();

    // Every OldKeyAction and every default the template passes is accepted.
    let parameters = &template["Parameters"];
    let variables = &function["Environment"]["Variables"];
    for action in parameters["OldKeyAction"]["AllowedValues"]
        .as_array()
        .unwrap()
    {
        let defaults = |name: &str| {
            if name == "OLD_KEY_ACTION" {
                return action.as_str().map(str::to_string);
            }
            let parameter = variables[name]["!Ref"].as_str()?;
            match &parameters[parameter]["Default"] {
                Value::String(text) => Some(text.clone()),
                Value::Number(number) => Some(number.to_string().trim_end_matches(".0").into()),
                _ => None,
            }
        };
        iam_key_rotation::Config::from_lookup(defaults)
            .unwrap_or_else(|error| panic!("OldKeyAction {action}: {error}"));
    }
    for name in [
        "GRACE_HOURS",
        "GRACE_MAX_HOURS",
        "DELETE_AFTER_HOURS",
        "EVENT_BUS_NAME",
    ] {
        assert!(
            variables.get(name).is_some(),
            "{name} is not set by the template"
        );
    }

    // The schedule's input runs a sweep in the real binary.
    let mut binary =
        harness::function::Function::start(&moto().endpoint, &[("OLD_KEY_ACTION", "grace")]).await;
    binary.set_function_arn(&format!(
        "arn:aws:lambda:{REGION}:{ACCOUNT}:function:{}",
        unique("scheduled")
    ));
    let reply = binary.invoke_payload(input).await;
    let harness::runtime_api::Reply::Response(response) = reply else {
        panic!("{reply:?}")
    };
    assert_eq!(response["Action"], "sweep");
    assert_eq!(response["Secrets"], 0);
    binary.stop().await;
}

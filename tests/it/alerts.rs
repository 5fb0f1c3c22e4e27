//! The stack's alert on Secrets Manager's own rotation events, exercised rather
//! than linted: the rule's event pattern and input transformer are read from
//! template.yaml and installed in moto's EventBridge with an SQS queue in place
//! of the SNS topic; real-shaped events are delivered and what arrives is read.

use std::collections::HashMap;

use aws_sdk_eventbridge::types::{InputTransformer, PutEventsRequestEntry, Target};
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
    let config = sdk_config(&moto().endpoint).await;
    let events = aws_sdk_eventbridge::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let queue_name = unique("alerts");
    let queue_url = sqs
        .create_queue()
        .queue_name(&queue_name)
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    let queue_arn = format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{queue_name}");

    let rule = rule_from_template();
    let target = &rule["Targets"][0];
    let transformer = &target["InputTransformer"];
    let rule_name = unique("rotation-failed");
    events
        .put_rule()
        .name(&rule_name)
        .event_pattern(rule["EventPattern"].to_string())
        .send()
        .await
        .unwrap();
    let paths: HashMap<String, String> = transformer["InputPathsMap"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    events
        .put_targets()
        .rule(&rule_name)
        .targets(
            Target::builder()
                .id("queue-in-place-of-the-topic")
                .arn(&queue_arn)
                .input_transformer(
                    InputTransformer::builder()
                        .set_input_paths_map(Some(paths))
                        .input_template(transformer["InputTemplate"].as_str().unwrap())
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

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

    let mut bodies = Vec::new();
    for _ in 0..5 {
        let received = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        bodies.extend(
            received
                .messages()
                .iter()
                .filter_map(|m| m.body().map(str::to_string)),
        );
        if bodies.len() >= 2 {
            break;
        }
    }
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

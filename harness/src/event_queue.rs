//! What EventBridge delivers: a rule on moto's default bus with an SQS queue as
//! its target, as a consumer of the function's lifecycle events would set up.

use std::time::{Duration, Instant};

use aws_sdk_eventbridge::types::{InputTransformer, Target};
use serde_json::Value;

use crate::{ACCOUNT, REGION, sdk_config, unique};

pub struct EventQueue {
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
}

impl EventQueue {
    /// A new queue that receives every event matching `pattern` on the default
    /// bus of the moto at `endpoint`.
    pub async fn subscribe(endpoint: &str, pattern: &Value) -> Self {
        Self::subscribe_with(endpoint, pattern, None).await
    }

    /// As [`Self::subscribe`], the target turning each event into what
    /// `transformer` makes of it (as a rule's target to an SNS topic would).
    pub async fn subscribe_with(
        endpoint: &str,
        pattern: &Value,
        transformer: Option<InputTransformer>,
    ) -> Self {
        let config = sdk_config(endpoint).await;
        let events = aws_sdk_eventbridge::Client::new(&config);
        let sqs = aws_sdk_sqs::Client::new(&config);
        let queue_name = unique("events");
        let queue_url = sqs
            .create_queue()
            .queue_name(&queue_name)
            .send()
            .await
            .unwrap()
            .queue_url()
            .unwrap()
            .to_string();
        let rule = unique("rule");
        events
            .put_rule()
            .name(&rule)
            .event_pattern(pattern.to_string())
            .send()
            .await
            .unwrap();
        events
            .put_targets()
            .rule(&rule)
            .targets(
                Target::builder()
                    .id("queue")
                    .arn(format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{queue_name}"))
                    .set_input_transformer(transformer)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        Self { sqs, queue_url }
    }

    /// The events received within `wait` (stops early once `expected` arrived),
    /// each as the full EventBridge envelope.
    pub async fn receive(&self, expected: usize, wait: Duration) -> Vec<Value> {
        self.receive_bodies(expected, wait)
            .await
            .iter()
            .map(|body| serde_json::from_str(body).unwrap_or(Value::Null))
            .collect()
    }

    /// The message bodies received within `wait`, as delivered (stops early once
    /// `expected` arrived).
    pub async fn receive_bodies(&self, expected: usize, wait: Duration) -> Vec<String> {
        let until = Instant::now() + wait;
        let mut received = Vec::new();
        while received.len() < expected && Instant::now() < until {
            let output = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .unwrap();
            for message in output.messages() {
                let body = message.body().unwrap_or_default();
                crate::record_log(body);
                received.push(body.to_string());
                if let Some(handle) = message.receipt_handle() {
                    let _ = self
                        .sqs
                        .delete_message()
                        .queue_url(&self.queue_url)
                        .receipt_handle(handle)
                        .send()
                        .await;
                }
            }
        }
        received
    }
}

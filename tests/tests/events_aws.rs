//! The `events` Lambda function's work (functions/events, docs/events.md "On AWS") against moto: the
//! table's stream records, shaped as the DynamoDB event its event source mapping delivers, go to the
//! events log and to an EventBridge bus; a rule on the bus forwards them to an SQS queue the test reads.
//! moto only: the embedded engine has no EventBridge.

use scim_tests::{patch_body, urn, Engine, TestServer};
use serde_json::{json, Map, Value};
use std::collections::HashSet;
use std::time::Duration;

fn sdk_config() -> (
    String,
    aws_sdk_eventbridge::config::Region,
    aws_sdk_eventbridge::config::Credentials,
) {
    (
        scim_tests::endpoint(Engine::Moto),
        aws_sdk_eventbridge::config::Region::new("us-east-1"),
        aws_sdk_eventbridge::config::Credentials::new("local", "local", None, None, "test"),
    )
}

fn bridge() -> aws_sdk_eventbridge::Client {
    let (ep, region, creds) = sdk_config();
    let conf = aws_sdk_eventbridge::Config::builder()
        .behavior_version(aws_sdk_eventbridge::config::BehaviorVersion::latest())
        .endpoint_url(ep)
        .region(region)
        .credentials_provider(creds)
        .build();
    aws_sdk_eventbridge::Client::from_conf(conf)
}

fn sqs() -> aws_sdk_sqs::Client {
    let (ep, region, creds) = sdk_config();
    let conf = aws_sdk_sqs::Config::builder()
        .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
        .endpoint_url(ep)
        .region(region)
        .credentials_provider(creds)
        .build();
    aws_sdk_sqs::Client::from_conf(conf)
}

/// One attribute value in DynamoDB JSON, as a Lambda event carries it.
fn attr(v: &aws_sdk_dynamodbstreams::types::AttributeValue) -> Value {
    use aws_sdk_dynamodbstreams::types::AttributeValue as A;
    match v {
        A::S(s) => json!({"S": s}),
        A::N(n) => json!({"N": n}),
        A::Ss(s) => json!({"SS": s}),
        A::Bool(b) => json!({"BOOL": b}),
        other => panic!("the table's items hold no {other:?}"),
    }
}

fn image(
    m: Option<&std::collections::HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue>>,
) -> Option<Value> {
    m.map(|m| {
        Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), attr(v)))
                .collect::<Map<_, _>>(),
        )
    })
}

/// Every record of the table's stream, as the DynamoDB event of a Lambda event source mapping: `{"Records": […]}`.
async fn stream_as_lambda_event(s: &TestServer) -> Value {
    let streams = s.store.streams_client(
        &scim_tests::endpoint(Engine::Moto),
        Some(("local", "local")),
    );
    let d = s
        .sdk()
        .describe_table()
        .table_name(s.store.table())
        .send()
        .await
        .unwrap();
    let arn = d
        .table()
        .unwrap()
        .latest_stream_arn()
        .expect("the table has a stream")
        .to_string();
    let desc = streams
        .describe_stream()
        .stream_arn(&arn)
        .send()
        .await
        .unwrap();
    let mut records = Vec::new();
    for shard in desc.stream_description().unwrap().shards() {
        let it = streams
            .get_shard_iterator()
            .stream_arn(&arn)
            .shard_id(shard.shard_id().unwrap())
            .shard_iterator_type(aws_sdk_dynamodbstreams::types::ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap();
        let r = streams
            .get_records()
            .shard_iterator(it.shard_iterator().unwrap())
            .send()
            .await
            .unwrap();
        for rec in r.records() {
            let d = rec.dynamodb().unwrap();
            let mut dynamodb = json!({
                "SequenceNumber": d.sequence_number().unwrap(),
                "ApproximateCreationDateTime": d.approximate_creation_date_time().map(|t| t.as_secs_f64()).unwrap_or(0.0),
                "Keys": image(d.keys.as_ref()).unwrap(),
                "StreamViewType": "NEW_AND_OLD_IMAGES",
            });
            if let Some(n) = image(d.new_image.as_ref()) {
                dynamodb["NewImage"] = n;
            }
            if let Some(o) = image(d.old_image.as_ref()) {
                dynamodb["OldImage"] = o;
            }
            records.push(json!({"eventID": rec.event_id(), "eventName": rec.event_name().unwrap().as_str(), "eventSource": "aws:dynamodb",
                "eventSourceARN": arn, "dynamodb": dynamodb}));
        }
    }
    json!({ "Records": records })
}

/// A bus with a rule forwarding every event of `source` to a new queue; returns (bus, queue URL).
async fn bus_to_queue(name: &str, source: &str) -> (String, String) {
    let (eb, q) = (bridge(), sqs());
    eb.create_event_bus()
        .name(name)
        .send()
        .await
        .expect("create bus");
    let url = q
        .create_queue()
        .queue_name(format!("{name}-q"))
        .send()
        .await
        .expect("create queue")
        .queue_url()
        .unwrap()
        .to_string();
    let attrs = q
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap();
    let arn =
        attrs.attributes().unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn].clone();
    eb.put_rule()
        .name(format!("{name}-all"))
        .event_bus_name(name)
        .event_pattern(json!({"source": [source]}).to_string())
        .send()
        .await
        .expect("put rule");
    let target = aws_sdk_eventbridge::types::Target::builder()
        .id("queue")
        .arn(arn)
        .build()
        .unwrap();
    let put = eb
        .put_targets()
        .rule(format!("{name}-all"))
        .event_bus_name(name)
        .targets(target)
        .send()
        .await
        .expect("put targets");
    assert_eq!(put.failed_entry_count(), 0);
    (name.to_string(), url)
}

/// Every message the queue holds now (EventBridge's envelopes), parsed.
async fn drain(url: &str, want: usize) -> Vec<Value> {
    let q = sqs();
    let mut out = Vec::new();
    for _ in 0..20 {
        let r = q
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        for m in r.messages() {
            out.push(serde_json::from_str::<Value>(m.body().unwrap()).unwrap());
            q.delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
        if out.len() >= want && r.messages().is_empty() {
            break;
        }
    }
    out
}

/// Writes of an Entra cycle, on a server of the moto engine.
async fn some_changes(s: &TestServer) -> (String, String) {
    let u = s
        .create_user(&json!({"schemas": [urn::USER], "userName": "ann@contoso.com", "externalId": "ann", "active": true}))
        .await;
    let r = s
        .patch(
            &format!("/Users/{u}"),
            &patch_body(json!([{"op": "Replace", "path": "active", "value": "False"}])),
        )
        .await;
    assert!(r.status == 200 || r.status == 204, "{}", r.text);
    let g = s
        .post(
            "/Groups",
            &json!({"schemas": [urn::GROUP], "displayName": "Sales"}),
        )
        .await
        .id();
    let r = s
        .patch(
            &format!("/Groups/{g}"),
            &patch_body(json!([{"op": "Add", "path": "members", "value": [{"value": u}]}])),
        )
        .await;
    assert!(r.status == 200 || r.status == 204, "{}", r.text);
    assert_eq!(s.delete(&format!("/Users/{u}")).await.status, 204);
    (u, g)
}

const EXPECTED: [&str; 7] = [
    "user.created",
    "user.updated",
    "user.deactivated",
    "group.created",
    "group.member_added",
    "group.member_removed",
    "user.deleted",
];

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

async fn logged(s: &TestServer) -> Vec<Value> {
    let r = s.get("/Events?limit=1000").await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["events"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_reaches_the_bus_and_a_rule_forwards_it_to_a_queue() {
    let s = TestServer::start_events(Engine::Moto).await;
    let (u, g) = some_changes(&s).await;
    let event = stream_as_lambda_event(&s).await;
    let bus_name = format!("scim-events-{}", std::process::id());
    let (bus, queue) = bus_to_queue(&bus_name, "scim-test").await;
    let publisher = scim_events::Publisher::new(
        scim_core::events::EventLog::new(&s.store, Duration::from_secs(3600)),
        bridge(),
        &bus,
        "scim-test",
    );
    let answer = publisher.handle(&event).await;
    assert_eq!(answer, json!({"batchItemFailures": []}));

    let messages = drain(&queue, EXPECTED.len()).await;
    let kinds: Vec<String> = messages
        .iter()
        .map(|m| m["detail"]["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        sorted(kinds),
        sorted(EXPECTED.iter().map(|k| k.to_string()).collect())
    );
    for m in &messages {
        assert_eq!(m["source"], "scim-test");
        assert_eq!(m["detail-type"], m["detail"]["type"]);
    }
    let member = messages
        .iter()
        .find(|m| m["detail"]["type"] == "group.member_added")
        .unwrap();
    assert_eq!(
        (
            member["detail"]["resourceId"].as_str(),
            member["detail"]["member"]["value"].as_str()
        ),
        (Some(g.as_str()), Some(u.as_str()))
    );
    // The events log (the Events API) holds the same events, once each.
    let log = logged(&s).await;
    assert_eq!(log.len(), EXPECTED.len());
    let published: HashSet<String> = messages.iter().map(|m| m["detail"].to_string()).collect();
    let in_log: HashSet<String> = log.iter().map(|e| e.to_string()).collect();
    assert_eq!(published, in_log);
}

/// A batch whose events cannot be published (a bus that does not exist; entries EventBridge refuses one
/// by one) is answered with its first record as the batch item failure, after retries; the events log is
/// written anyway and the redelivered batch logs nothing twice and publishes everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undeliverable_batch_is_reported_at_its_first_record_and_redelivery_completes_it() {
    let s = TestServer::start_events(Engine::Moto).await;
    some_changes(&s).await;
    let event = stream_as_lambda_event(&s).await;
    let first_with_events = event["Records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| {
            r["dynamodb"]["Keys"]["pk"]["S"]
                .as_str()
                .is_some_and(|pk| pk.ends_with("#User"))
        })
        .unwrap()["dynamodb"]["SequenceNumber"]
        .clone();
    let log = || scim_core::events::EventLog::new(&s.store, Duration::from_secs(3600));
    for (bus, source) in [("no-such-bus", "scim-test"), ("default", "")] {
        let publisher = scim_events::Publisher::new(log(), bridge(), bus, source);
        let answer = publisher.handle(&event).await;
        assert_eq!(
            answer,
            json!({"batchItemFailures": [{"itemIdentifier": first_with_events}]}),
            "bus {bus}, source {source:?}"
        );
    }
    assert_eq!(logged(&s).await.len(), EXPECTED.len());

    let bus_name = format!("scim-redeliver-{}", std::process::id());
    let (bus, queue) = bus_to_queue(&bus_name, "scim-test").await;
    let publisher = scim_events::Publisher::new(log(), bridge(), &bus, "scim-test");
    assert_eq!(
        publisher.handle(&event).await,
        json!({"batchItemFailures": []})
    );
    assert_eq!(drain(&queue, EXPECTED.len()).await.len(), EXPECTED.len());
    assert_eq!(
        logged(&s).await.len(),
        EXPECTED.len(),
        "the redelivered batch was logged twice"
    );
}

//! One change of one item, as a DynamoDB stream record tells it ([`Change`]), in a form that does not
//! depend on which client read it: the Streams API client (`aws-sdk-dynamodbstreams`, the local consumer)
//! or a Lambda event (DynamoDB JSON). Item images keep only what the events need ([`Attr`]: strings,
//! numbers, string sets). Imports nothing of the crate.

use aws_sdk_dynamodbstreams::types as ds;
use serde_json::Value;
use std::collections::HashMap;

/// An attribute value of an item image (the kinds the table's items use; others are kept as `Other`).
#[derive(Debug, Clone, PartialEq)]
pub enum Attr {
    S(String),
    N(String),
    Ss(Vec<String>),
    Bool(bool),
    Other,
}

impl Attr {
    pub fn as_s(&self) -> Option<&str> {
        match self {
            Attr::S(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_n(&self) -> Option<&str> {
        match self {
            Attr::N(n) => Some(n),
            _ => None,
        }
    }
}

/// An item as the stream shows it (before or after the change).
pub type Image = HashMap<String, Attr>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Insert,
    Modify,
    Remove,
}

/// One stream record.
#[derive(Debug, Clone)]
pub struct Change {
    /// The record's sequence number (decimal digits; comparable within a shard).
    pub seq: String,
    pub kind: ChangeKind,
    /// When the change was written (seconds since the epoch; DynamoDB rounds to the second or finer).
    pub time: f64,
    pub keys: Image,
    pub old: Option<Image>,
    pub new: Option<Image>,
}

impl Change {
    /// The item's partition key (from the keys, or either image).
    pub fn pk(&self) -> Option<&str> {
        self.key("pk")
    }
    pub fn sk(&self) -> Option<&str> {
        self.key("sk")
    }
    fn key(&self, name: &str) -> Option<&str> {
        self.keys
            .get(name)
            .or_else(|| self.new.as_ref().and_then(|i| i.get(name)))
            .or_else(|| self.old.as_ref().and_then(|i| i.get(name)))
            .and_then(Attr::as_s)
    }

    /// From a record the DynamoDB Streams API returned (GetRecords).
    pub fn from_sdk(r: &ds::Record) -> Option<Change> {
        let d = r.dynamodb()?;
        let kind = match r.event_name()? {
            ds::OperationType::Insert => ChangeKind::Insert,
            ds::OperationType::Modify => ChangeKind::Modify,
            ds::OperationType::Remove => ChangeKind::Remove,
            _ => return None,
        };
        let image = |m: Option<&HashMap<String, ds::AttributeValue>>| {
            m.map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), sdk_attr(v)))
                    .collect::<Image>()
            })
        };
        Some(Change {
            seq: d.sequence_number()?.to_string(),
            kind,
            time: d
                .approximate_creation_date_time()
                .map(|t| t.as_secs_f64())
                .unwrap_or(0.0),
            keys: image(d.keys.as_ref()).unwrap_or_default(),
            old: image(d.old_image.as_ref()),
            new: image(d.new_image.as_ref()),
        })
    }

    /// From a record in DynamoDB JSON, as a Lambda event or `GetRecords` over the wire carries it:
    /// `{"eventName": "INSERT", "dynamodb": {"SequenceNumber": "…", "Keys": {…}, "NewImage": {…}, …}}`.
    pub fn from_json(r: &Value) -> Option<Change> {
        let kind = match r.get("eventName")?.as_str()? {
            "INSERT" => ChangeKind::Insert,
            "MODIFY" => ChangeKind::Modify,
            "REMOVE" => ChangeKind::Remove,
            _ => return None,
        };
        let d = r.get("dynamodb")?;
        let image = |k: &str| {
            d.get(k).and_then(Value::as_object).map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), json_attr(v)))
                    .collect::<Image>()
            })
        };
        Some(Change {
            seq: d.get("SequenceNumber")?.as_str()?.to_string(),
            kind,
            time: d
                .get("ApproximateCreationDateTime")
                .and_then(Value::as_f64)
                .unwrap_or(0.0),
            keys: image("Keys").unwrap_or_default(),
            old: image("OldImage"),
            new: image("NewImage"),
        })
    }
}

fn sdk_attr(v: &ds::AttributeValue) -> Attr {
    match v {
        ds::AttributeValue::S(s) => Attr::S(s.clone()),
        ds::AttributeValue::N(n) => Attr::N(n.clone()),
        ds::AttributeValue::Ss(s) => Attr::Ss(s.clone()),
        ds::AttributeValue::Bool(b) => Attr::Bool(*b),
        _ => Attr::Other,
    }
}

/// One attribute value in DynamoDB JSON (`{"S": "x"}`, `{"N": "1"}`, `{"SS": [...]}`).
fn json_attr(v: &Value) -> Attr {
    let Some((t, x)) = v.as_object().and_then(|m| m.iter().next()) else {
        return Attr::Other;
    };
    match (t.as_str(), x) {
        ("S", Value::String(s)) => Attr::S(s.clone()),
        ("N", Value::String(n)) => Attr::N(n.clone()),
        ("SS", Value::Array(a)) => Attr::Ss(
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect(),
        ),
        ("BOOL", Value::Bool(b)) => Attr::Bool(*b),
        _ => Attr::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lambda_shaped_record_reads() {
        let r = serde_json::json!({
            "eventID": "c4ca4238a0b923820dcc509a6f75849b", "eventName": "MODIFY", "eventVersion": "1.1",
            "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
            "dynamodb": {
                "ApproximateCreationDateTime": 1764670000.0,
                "Keys": {"pk": {"S": "T#acme#User"}, "sk": {"S": "u1"}},
                "NewImage": {"pk": {"S": "T#acme#User"}, "sk": {"S": "u1"}, "ver": {"N": "2"}, "grp": {"SS": ["g1", "g2"]}},
                "OldImage": {"pk": {"S": "T#acme#User"}, "sk": {"S": "u1"}, "ver": {"N": "1"}, "x": {"M": {}}},
                "SequenceNumber": "111", "SizeBytes": 26, "StreamViewType": "NEW_AND_OLD_IMAGES"
            }
        });
        let c = Change::from_json(&r).expect("record");
        assert_eq!(c.kind, ChangeKind::Modify);
        assert_eq!(c.seq, "111");
        assert_eq!(c.pk(), Some("T#acme#User"));
        assert_eq!(c.sk(), Some("u1"));
        assert_eq!(
            c.new.as_ref().unwrap()["grp"],
            Attr::Ss(vec!["g1".into(), "g2".into()])
        );
        assert_eq!(c.old.as_ref().unwrap()["x"], Attr::Other);
        assert_eq!(c.time, 1764670000.0);
        assert!(
            Change::from_json(&serde_json::json!({"eventName": "NOPE", "dynamodb": {}})).is_none()
        );
    }
}

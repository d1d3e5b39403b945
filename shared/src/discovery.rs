//! Discovery documents (RFC 7644 §4): `/ServiceProviderConfig`, `/Schemas`, `/ResourceTypes`, built from
//! the same schema data the server enforces, and honest about what is supported.

use crate::config::Limits;
use crate::schema::{ResourceType, Schema, LIST_RESPONSE};
use serde_json::{json, Value};

pub const SPC_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
pub const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";
pub const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";

pub fn service_provider_config(base_url: &str, limits: &Limits) -> Value {
    json!({
        "schemas": [SPC_SCHEMA],
        "documentationUri": "https://datatracker.ietf.org/doc/html/rfc7644",
        "patch": {"supported": true},
        "bulk": {"supported": true, "maxOperations": limits.bulk_max_operations, "maxPayloadSize": limits.bulk_max_payload},
        "filter": {"supported": true, "maxResults": limits.max_page_size},
        "changePassword": {"supported": false},
        "sort": {"supported": false},
        "etag": {"supported": true},
        // RFC 9865 §4. `cursorTimeout` is left out on purpose: our cursors never expire (a cursor encodes
        // where the next page starts, not server-side state), and RFC 9865 reads an absent `cursorTimeout`
        // as "no cursor timeout". A value would have to be a positive number of seconds, i.e. a promise
        // of expiry we do not make; 0 is not valid (clients such as scim2-models reject the document).
        "pagination": {
            "cursor": true,
            "index": true,
            "defaultPaginationMethod": "index",
            "defaultPageSize": limits.default_page_size,
            "maxPageSize": limits.max_page_size
        },
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "A long-lived bearer token: the Secret Token entered in Microsoft Entra ID, sent as 'Authorization: Bearer <token>'.",
            "primary": true
        }],
        "meta": {"resourceType": "ServiceProviderConfig", "location": format!("{base_url}/ServiceProviderConfig")}
    })
}

/// Adds OAuth 2.0 client credentials to a `/ServiceProviderConfig` document's `authenticationSchemes`
/// (when the server issues access tokens), naming the tenant's token endpoint.
pub fn add_oauth_scheme(doc: &mut Value, token_url: &str) {
    if let Some(list) = doc
        .get_mut("authenticationSchemes")
        .and_then(Value::as_array_mut)
    {
        list.push(json!({
            "type": "oauth2",
            "name": "OAuth 2.0 client credentials",
            "description": format!(
                "Access tokens from the token endpoint {token_url} (client credentials grant: client secret by HTTP Basic or in the body, or a Workload Identity Federation client assertion), sent as 'Authorization: Bearer <access token>'."
            ),
            "specUri": "https://www.rfc-editor.org/rfc/rfc6749",
            "primary": false
        }));
    }
}

pub fn schema_doc(schema: &Schema, base_url: &str) -> Value {
    let mut v = serde_json::to_value(schema).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("schemas".into(), json!([SCHEMA_SCHEMA]));
        m.insert("meta".into(), json!({"resourceType": "Schema", "location": format!("{base_url}/Schemas/{}", schema.id)}));
    }
    v
}

/// Every schema the served resource types use, core schemas first, without duplicates.
pub fn schemas(types: &[&'static ResourceType]) -> Vec<&'static Schema> {
    let mut out: Vec<&'static Schema> = Vec::new();
    for rt in types {
        for s in std::iter::once(rt.core).chain(rt.extensions.iter().map(|(s, _)| *s)) {
            if !out.iter().any(|o| o.id == s.id) {
                out.push(s);
            }
        }
    }
    out
}

pub fn resource_type_doc(rt: &ResourceType, base_url: &str) -> Value {
    json!({
        "schemas": [RESOURCE_TYPE_SCHEMA],
        "id": rt.name,
        "name": rt.name,
        "endpoint": rt.endpoint,
        "description": rt.description,
        "schema": rt.core.id,
        "schemaExtensions": rt.extensions.iter().map(|(s, required)| json!({"schema": s.id, "required": required})).collect::<Vec<_>>(),
        "meta": {"resourceType": "ResourceType", "location": format!("{base_url}/ResourceTypes/{}", rt.name)}
    })
}

pub fn list(resources: Vec<Value>) -> Value {
    let n = resources.len();
    json!({"schemas": [LIST_RESPONSE], "totalResults": n, "Resources": resources, "startIndex": 1, "itemsPerPage": n})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::user_resource_type;

    #[test]
    fn schema_documents_carry_schema_urn_and_location() {
        let docs = schemas(&[user_resource_type()]);
        assert_eq!(docs.len(), 2);
        let d = schema_doc(docs[0], "https://h/scim/v2");
        assert_eq!(d["schemas"][0], SCHEMA_SCHEMA);
        assert_eq!(
            d["meta"]["location"],
            "https://h/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:User"
        );
        assert!(d["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "userName"));
        // Nulls are omitted (Entra's schema discovery requires it).
        assert!(!d.to_string().contains("null"));
    }

    #[test]
    fn resource_type_lists_the_enterprise_extension() {
        let d = resource_type_doc(user_resource_type(), "");
        assert_eq!(d["endpoint"], "/Users");
        assert_eq!(
            d["schemaExtensions"][0]["schema"],
            crate::schema::ENTERPRISE_USER_SCHEMA
        );
        assert_eq!(d["schemaExtensions"][0]["required"], false);
    }

    #[test]
    fn service_provider_config_is_honest() {
        let d = service_provider_config("", &Limits::default());
        assert_eq!(
            (
                d["bulk"]["supported"].clone(),
                d["bulk"]["maxOperations"].clone()
            ),
            (json!(true), json!(50))
        );
        assert_eq!(d["sort"]["supported"], false);
        assert_eq!(d["patch"]["supported"], true);
        assert_eq!(d["filter"]["maxResults"], 200);
    }

    #[test]
    fn pagination_block_follows_rfc_9865() {
        let d = service_provider_config("", &Limits::default());
        let p = d["pagination"].as_object().unwrap();
        assert_eq!(
            (p["cursor"].clone(), p["index"].clone()),
            (json!(true), json!(true))
        );
        assert_eq!(p["defaultPaginationMethod"], "index");
        assert_eq!(
            (p["defaultPageSize"].clone(), p["maxPageSize"].clone()),
            (json!(100), json!(200))
        );
        // Cursors never expire: no `cursorTimeout` (when present it must be a positive integer).
        assert!(!p.contains_key("cursorTimeout"), "{p:?}");
    }
}

//! App profiles: which resource types a deployment serves and which schema extensions they carry, as data
//! (a JSON file), so a vendor adopts the server by choosing a profile, not by forking it. Selected with
//! `SCIM_PROFILE`: a built-in name (`default`, `jostle`, `joynfsm`, `junojourney`, `askspoke`) or a path
//! to a JSON file of the same shape (see `shared/profiles/`). Validation, PATCH paths, filters,
//! projection, `/Schemas` and `/ResourceTypes` all follow the active profile's resource types.

use crate::schema::{
    enterprise_user_schema, group_schema, user_schema, ResourceKind, ResourceType, Schema,
};
use serde::Deserialize;
use std::collections::BTreeMap;

const BUILTIN: [(&str, &str); 5] = [
    ("default", include_str!("../profiles/default.json")),
    ("jostle", include_str!("../profiles/jostle.json")),
    ("joynfsm", include_str!("../profiles/joynfsm.json")),
    ("junojourney", include_str!("../profiles/junojourney.json")),
    ("askspoke", include_str!("../profiles/askspoke.json")),
];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ProfileFile {
    name: String,
    #[serde(default)]
    description: String,
    resource_types: BTreeMap<String, TypeSpec>,
    #[serde(default)]
    schemas: Vec<Schema>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TypeSpec {
    #[serde(default)]
    extensions: Vec<ExtensionRef>,
    /// The app's own canonical values of core string attributes (`{"emails.type": ["work", …]}`),
    /// replacing the RFC's in `/Schemas` (see `Schema::with_canonical_values`).
    #[serde(default, rename = "canonicalValues")]
    canonical_values: BTreeMap<String, Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExtensionRef {
    schema: String,
    #[serde(default)]
    required: bool,
}

/// A loaded profile. Its resource types live for the whole process (they are built once at start-up).
#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    pub description: String,
    pub resource_types: Vec<&'static ResourceType>,
}

impl Profile {
    pub fn builtin_names() -> impl Iterator<Item = &'static str> {
        BUILTIN.iter().map(|(n, _)| *n)
    }

    /// The profile named by `SCIM_PROFILE` (default: `default`).
    pub fn from_env() -> Result<Profile, String> {
        Profile::load(&std::env::var("SCIM_PROFILE").unwrap_or_else(|_| "default".into()))
    }

    /// A built-in profile by name, or a JSON file by path.
    pub fn load(spec: &str) -> Result<Profile, String> {
        if let Some((_, json)) = BUILTIN.iter().find(|(n, _)| n.eq_ignore_ascii_case(spec)) {
            return Profile::from_json(json);
        }
        let text = std::fs::read_to_string(spec).map_err(|e| {
            format!(
                "SCIM_PROFILE '{spec}' is neither a built-in profile ({}) nor a readable file: {e}",
                Profile::builtin_names().collect::<Vec<_>>().join(", ")
            )
        })?;
        Profile::from_json(&text).map_err(|e| format!("profile {spec}: {e}"))
    }

    pub fn from_json(text: &str) -> Result<Profile, String> {
        let file: ProfileFile =
            serde_json::from_str(text).map_err(|e| format!("invalid profile: {e}"))?;
        let own: Vec<&'static Schema> = file
            .schemas
            .into_iter()
            .map(|s| &*Box::leak(Box::new(s)))
            .collect();
        let find = |urn: &str| -> Result<&'static Schema, String> {
            if urn.eq_ignore_ascii_case(&enterprise_user_schema().id) {
                return Ok(enterprise_user_schema());
            }
            own.iter()
                .copied()
                .find(|s| s.id.eq_ignore_ascii_case(urn))
                .ok_or_else(|| format!("extension schema {urn} is not defined in the profile"))
        };
        let mut resource_types = Vec::new();
        for (name, spec) in &file.resource_types {
            let kind = ResourceKind::from_name(name).ok_or_else(|| {
                format!("unknown resource type '{name}' (User and Group are served)")
            })?;
            let (endpoint, description, core) = match kind {
                ResourceKind::User => ("/Users", "User Account", user_schema()),
                ResourceKind::Group => ("/Groups", "Group", group_schema()),
            };
            let name = kind.name();
            let core: &'static Schema = if spec.canonical_values.is_empty() {
                core
            } else {
                Box::leak(Box::new(
                    core.with_canonical_values(&spec.canonical_values)?,
                ))
            };
            let extensions = spec
                .extensions
                .iter()
                .map(|e| find(&e.schema).map(|s| (s, e.required)))
                .collect::<Result<Vec<_>, _>>()?;
            let rt: &'static ResourceType = Box::leak(Box::new(ResourceType {
                kind,
                name,
                endpoint,
                description,
                core,
                extensions,
            }));
            resource_types.push(rt);
        }
        if !resource_types.iter().any(|r| r.is_user()) {
            return Err("a profile must serve the User resource type".into());
        }
        // User first, then Group: the order /ResourceTypes lists them in.
        resource_types.sort_by_key(|r| if r.is_user() { 0 } else { 1 });
        Ok(Profile {
            name: file.name,
            description: file.description,
            resource_types,
        })
    }

    /// The profile's resource type named `name` (`User`, `Group`), if it serves it.
    pub fn resource_type(&self, name: &str) -> Option<&'static ResourceType> {
        let kind = ResourceKind::from_name(name)?;
        self.resource_types.iter().copied().find(|r| r.kind == kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_profile_loads() {
        for name in Profile::builtin_names() {
            let p = Profile::load(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(p.resource_type("User").is_some(), "{name}");
        }
    }

    #[test]
    fn jostle_is_users_only_with_its_extension() {
        let p = Profile::load("jostle").unwrap();
        assert!(p.resource_type("Group").is_none());
        let u = p.resource_type("User").unwrap();
        let r = u
            .resolve(
                Some("urn:ietf:params:scim:schemas:extension:jostle:2.0:User"),
                "ALTERNATEEMAIL1LABEL",
            )
            .unwrap();
        assert_eq!(r.def.name, "alternateEmail1Label");
        assert!(u.extension(&enterprise_user_schema().id).is_none());
    }

    #[test]
    fn jostle_advertises_its_own_email_types_and_other_profiles_the_rfc_ones() {
        let types = |p: &str| {
            let u = Profile::load(p).unwrap().resource_type("User").unwrap();
            u.core
                .attr("emails")
                .unwrap()
                .sub("type")
                .unwrap()
                .canonical_values
                .clone()
                .unwrap()
        };
        assert_eq!(
            types("jostle"),
            ["work", "personal", "alternate1", "alternate2"]
        );
        assert_eq!(types("default"), ["work", "home", "other"]);
        // Only the advertised values change: the schema is otherwise the core User schema.
        let u = Profile::load("jostle")
            .unwrap()
            .resource_type("User")
            .unwrap();
        assert_eq!(u.core.attributes.len(), user_schema().attributes.len());
        assert_eq!(
            u.core.attr("phoneNumbers"),
            user_schema().attr("phoneNumbers")
        );
    }

    #[test]
    fn canonical_values_must_name_a_string_attribute() {
        let with = |cv: &str| {
            let user = format!(r#"{{"User":{{"canonicalValues":{cv}}}}}"#);
            Profile::from_json(&format!(r#"{{"name":"x","resourceTypes":{user}}}"#))
        };
        assert!(with(r#"{"EMAILS.TYPE":["a"]}"#).is_ok());
        assert!(with(r#"{"emails.nope":["a"]}"#)
            .unwrap_err()
            .contains("emails.nope"));
        assert!(with(r#"{"emails.primary":["a"]}"#)
            .unwrap_err()
            .contains("not a string"));
        assert!(with(r#"{"emails.type":[]}"#)
            .unwrap_err()
            .contains("non-empty"));
    }

    #[test]
    fn askspoke_has_groups_and_two_extensions() {
        let p = Profile::load("askspoke").unwrap();
        assert!(p.resource_type("Group").is_some());
        assert_eq!(p.resource_type("User").unwrap().extensions.len(), 2);
    }

    #[test]
    fn bad_profiles_are_refused_with_a_reason() {
        assert!(Profile::load("nope")
            .unwrap_err()
            .contains("neither a built-in"));
        let e = Profile::from_json(
            r#"{"name":"x","resourceTypes":{"User":{"extensions":[{"schema":"urn:x"}]}}}"#,
        )
        .unwrap_err();
        assert!(e.contains("urn:x"), "{e}");
        assert!(Profile::from_json(r#"{"name":"x","resourceTypes":{"Group":{}}}"#).is_err());
        assert!(Profile::from_json(r#"{"name":"x","resourceTypes":{"Device":{}}}"#).is_err());
    }
}

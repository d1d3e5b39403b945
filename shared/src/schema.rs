//! Schemas as data (RFC 7643 §7): attribute definitions are deserialised from the same JSON the
//! `/Schemas` endpoint serves, so what we advertise and what we enforce cannot drift apart.
//!
//! Attribute names are matched case-insensitively everywhere (RFC 7643 §2.1); values are never touched.

use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const ENTERPRISE_USER_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AttrType {
    String,
    Boolean,
    Decimal,
    Integer,
    DateTime,
    Binary,
    Reference,
    Complex,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum Mutability {
    ReadOnly,
    #[default]
    ReadWrite,
    Immutable,
    WriteOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum Returned {
    Always,
    Never,
    #[default]
    Default,
    Request,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum Uniqueness {
    #[default]
    None,
    Server,
    Global,
}

/// One attribute definition, in RFC 7643 §7 form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttrDef {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: AttrType,
    #[serde(default)]
    pub multi_valued: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canonical_values: Option<Vec<String>>,
    #[serde(default)]
    pub case_exact: bool,
    #[serde(default)]
    pub mutability: Mutability,
    #[serde(default)]
    pub returned: Returned,
    #[serde(default)]
    pub uniqueness: Uniqueness,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_types: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sub_attributes: Vec<AttrDef>,
}

impl AttrDef {
    /// The sub-attribute called `name` (case-insensitive).
    pub fn sub(&self, name: &str) -> Option<&AttrDef> {
        self.sub_attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }
    pub fn is_complex(&self) -> bool {
        self.ty == AttrType::Complex
    }
}

/// A schema (RFC 7643 §7), e.g. the core User schema or the enterprise extension.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Schema {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub attributes: Vec<AttrDef>,
}

impl Schema {
    pub fn attr(&self, name: &str) -> Option<&AttrDef> {
        self.attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// This schema with the `canonicalValues` of some string attributes replaced: keys are attribute
    /// paths (`emails.type`, `userType`), values the app's own values. An app profile uses it to
    /// advertise the `type` values its client sends (Jostle's `emails[type eq "personal"]`), which
    /// schema discovery turns into value paths. Canonical values are advertised, never enforced.
    pub fn with_canonical_values<'a>(
        &self,
        values: impl IntoIterator<Item = (&'a String, &'a Vec<String>)>,
    ) -> Result<Schema, String> {
        let mut out = self.clone();
        for (path, list) in values {
            let (name, sub) = match path.split_once('.') {
                Some((n, s)) => (n, Some(s)),
                None => (path.as_str(), None),
            };
            let unknown = || format!("canonicalValues: {} has no attribute '{path}'", self.id);
            fn named<'d>(defs: &'d mut [AttrDef], n: &str) -> Option<&'d mut AttrDef> {
                defs.iter_mut().find(|a| a.name.eq_ignore_ascii_case(n))
            }
            let top = named(&mut out.attributes, name).ok_or_else(unknown)?;
            let def = match sub {
                None => top,
                Some(s) => named(&mut top.sub_attributes, s).ok_or_else(unknown)?,
            };
            if def.ty != AttrType::String {
                return Err(format!(
                    "canonicalValues: '{path}' of {} is not a string attribute",
                    self.id
                ));
            }
            if list.is_empty() || list.iter().any(|v| v.trim().is_empty()) {
                return Err(format!(
                    "canonicalValues: '{path}' needs a list of non-empty values"
                ));
            }
            def.canonical_values = Some(list.clone());
        }
        Ok(out)
    }
}

/// A resource type (RFC 7643 §6): its core schema and the extensions it carries.
#[derive(Debug, Clone)]
pub struct ResourceType {
    /// What kind of resource this is: the behaviour that differs between users and groups branches on
    /// it, never on the name.
    pub kind: ResourceKind,
    /// "User" or "Group".
    pub name: &'static str,
    /// "/Users" or "/Groups".
    pub endpoint: &'static str,
    pub description: &'static str,
    pub core: &'static Schema,
    /// Extension schemas and whether each is required.
    pub extensions: Vec<(&'static Schema, bool)>,
}

/// The resource kinds the server serves. Decided once, where a resource type is loaded (from its name in a
/// profile, [`ResourceKind::from_name`]); everything else asks the kind, so a type-name string is compared
/// in one place only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    /// Users: unique by `userName`, carry the read-only `groups` attribute.
    User,
    /// Groups: unique by `displayName`, hold members (as member items, not in the group's own item).
    Group,
}

impl ResourceKind {
    /// The kind a profile's resource-type name names (exactly `User` or `Group`, as RFC 7643 spells them).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "User" => Some(ResourceKind::User),
            "Group" => Some(ResourceKind::Group),
            _ => None,
        }
    }

    /// The resource type's name (`meta.resourceType`, `/ResourceTypes`).
    pub fn name(self) -> &'static str {
        match self {
            ResourceKind::User => "User",
            ResourceKind::Group => "Group",
        }
    }

    /// The attribute that identifies a resource to people and must be unique per tenant.
    pub fn unique_attr(self) -> &'static str {
        match self {
            ResourceKind::User => "userName",
            ResourceKind::Group => "displayName",
        }
    }
}

impl ResourceType {
    pub fn is_user(&self) -> bool {
        self.kind == ResourceKind::User
    }

    pub fn is_group(&self) -> bool {
        self.kind == ResourceKind::Group
    }
}

/// Common attributes every resource has (RFC 7643 §3.1), handled by the server rather than a schema.
pub const COMMON_ATTRIBUTES: [&str; 4] = ["id", "externalId", "meta", "schemas"];

/// Where a (possibly URN-qualified) attribute name resolves to.
#[derive(Debug, Clone, Copy)]
pub struct Resolved<'a> {
    /// The schema the attribute belongs to.
    pub schema: &'a Schema,
    /// True when the schema is an extension, i.e. the attribute lives under the schema URN key.
    pub in_extension: bool,
    pub def: &'a AttrDef,
}

impl ResourceType {
    /// All schema URNs of this resource type, core first.
    pub fn schema_urns(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.core.id.as_str())
            .chain(self.extensions.iter().map(|(s, _)| s.id.as_str()))
    }

    /// The extension schema whose URN is `urn` (case-insensitive).
    pub fn extension(&self, urn: &str) -> Option<&'static Schema> {
        self.extensions
            .iter()
            .map(|(s, _)| *s)
            .find(|s| s.id.eq_ignore_ascii_case(urn))
    }

    /// Resolve an attribute name, optionally URN-qualified (`urn` is the schema part, without the
    /// trailing `:name`). Core attributes resolve without a URN; extension attributes need theirs.
    pub fn resolve(&self, urn: Option<&str>, name: &str) -> Option<Resolved<'static>> {
        match urn {
            None => self.core.attr(name).map(|def| Resolved {
                schema: self.core,
                in_extension: false,
                def,
            }),
            Some(u) if u.eq_ignore_ascii_case(&self.core.id) => {
                self.core.attr(name).map(|def| Resolved {
                    schema: self.core,
                    in_extension: false,
                    def,
                })
            }
            Some(u) => {
                let schema = self.extension(u)?;
                schema.attr(name).map(|def| Resolved {
                    schema,
                    in_extension: true,
                    def,
                })
            }
        }
    }

    /// The canonical JSON key of an extension URN as it should appear in resources.
    pub fn canonical_urn(&self, urn: &str) -> Option<&'static str> {
        if self.core.id.eq_ignore_ascii_case(urn) {
            return Some(self.core.id.as_str());
        }
        self.extension(urn).map(|s| s.id.as_str())
    }
}

fn load(json: &str) -> Schema {
    serde_json::from_str(json).expect("built-in schema JSON is valid (checked by unit tests)")
}

pub fn user_schema() -> &'static Schema {
    static S: OnceLock<Schema> = OnceLock::new();
    S.get_or_init(|| load(include_str!("../schemas/User.json")))
}

pub fn enterprise_user_schema() -> &'static Schema {
    static S: OnceLock<Schema> = OnceLock::new();
    S.get_or_init(|| load(include_str!("../schemas/EnterpriseUser.json")))
}

pub fn group_schema() -> &'static Schema {
    static S: OnceLock<Schema> = OnceLock::new();
    S.get_or_init(|| load(include_str!("../schemas/Group.json")))
}

pub fn user_resource_type() -> &'static ResourceType {
    static R: OnceLock<ResourceType> = OnceLock::new();
    R.get_or_init(|| ResourceType {
        kind: ResourceKind::User,
        name: "User",
        endpoint: "/Users",
        description: "User Account",
        core: user_schema(),
        extensions: vec![(enterprise_user_schema(), false)],
    })
}

pub fn group_resource_type() -> &'static ResourceType {
    static R: OnceLock<ResourceType> = OnceLock::new();
    R.get_or_init(|| ResourceType {
        kind: ResourceKind::Group,
        name: "Group",
        endpoint: "/Groups",
        description: "Group",
        core: group_schema(),
        extensions: vec![],
    })
}

impl crate::filter::AttrInfo for ResourceType {
    fn case_exact(&self, urn: Option<&str>, name: &str, sub: Option<&str>) -> bool {
        // `id` is caseExact (RFC 7643 §3.1); externalId is caseExact too.
        if urn.is_none()
            && sub.is_none()
            && (name.eq_ignore_ascii_case("id") || name.eq_ignore_ascii_case("externalId"))
        {
            return true;
        }
        let Some(r) = self.resolve(urn, name) else {
            return false;
        };
        match sub {
            None => r.def.case_exact,
            Some(s) => r.def.sub(s).map(|d| d.case_exact).unwrap_or(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_schemas_parse() {
        assert_eq!(user_schema().id, USER_SCHEMA);
        assert_eq!(enterprise_user_schema().id, ENTERPRISE_USER_SCHEMA);
        assert_eq!(group_schema().id, GROUP_SCHEMA);
    }

    #[test]
    fn user_name_is_required_and_case_insensitive() {
        let un = user_schema().attr("USERNAME").unwrap();
        assert_eq!(un.name, "userName");
        assert!(un.required);
        assert!(!un.case_exact);
        assert_eq!(un.uniqueness, Uniqueness::Server);
    }

    #[test]
    fn external_id_is_advertised_as_rfc_7643_defines_it() {
        // A common attribute (§3.1): caseExact, readWrite, not required, no uniqueness promised.
        for s in [user_schema(), group_schema()] {
            let e = s
                .attr("EXTERNALID")
                .unwrap_or_else(|| panic!("{} has no externalId", s.id));
            assert_eq!(
                (e.name.as_str(), e.ty, e.multi_valued),
                ("externalId", AttrType::String, false)
            );
            assert_eq!(
                (e.required, e.case_exact, e.mutability),
                (false, true, Mutability::ReadWrite)
            );
            assert_eq!(e.uniqueness, Uniqueness::None);
            assert_eq!(e.returned, Returned::Default);
        }
        assert!(enterprise_user_schema().attr("externalId").is_none());
    }

    #[test]
    fn resolve_core_and_extension_attributes() {
        let rt = user_resource_type();
        assert!(rt.resolve(None, "emails").unwrap().def.multi_valued);
        assert!(rt
            .resolve(Some(USER_SCHEMA), "name")
            .unwrap()
            .def
            .is_complex());
        let mgr = rt
            .resolve(
                Some("URN:ietf:params:scim:schemas:extension:enterprise:2.0:user"),
                "Manager",
            )
            .unwrap();
        assert!(mgr.in_extension);
        assert_eq!(mgr.def.sub("value").unwrap().name, "value");
        assert!(
            rt.resolve(None, "manager").is_none(),
            "extension attributes need their URN"
        );
        assert!(rt.resolve(Some("urn:x:unknown"), "a").is_none());
    }

    #[test]
    fn email_sub_attributes_and_booleans() {
        let emails = user_schema().attr("emails").unwrap();
        assert_eq!(emails.sub("primary").unwrap().ty, AttrType::Boolean);
        assert_eq!(user_schema().attr("active").unwrap().ty, AttrType::Boolean);
        assert_eq!(
            user_schema().attr("groups").unwrap().mutability,
            Mutability::ReadOnly
        );
        assert!(group_schema().attr("members").unwrap().multi_valued);
    }
}

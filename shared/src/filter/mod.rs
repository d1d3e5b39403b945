//! SCIM filters (RFC 7644 §3.4.2.2) and attribute paths (RFC 7644 §3.5.2 PATCH `path`), parsed once into
//! a typed AST and evaluated (or pushed down to a DynamoDB key condition) from it.
//!
//! The parser is written by hand (recursive descent over a character-indexed tokenizer) rather than with a
//! parser generator: the grammar is small, errors can name the exact character position, nesting depth is
//! checked before every recursion so hostile input cannot overflow the stack, and no dependency is added.
//!
//! Entry points: [`parse_filter`], [`parse_path`], [`parse_attr_path`], [`Filter::matches`]. Every AST type
//! implements `Display` in a canonical form that parses back to an equal AST.
//!
//! Files: this one holds the AST and its canonical `Display`; `parse.rs` the parser, `eval.rs` the
//! evaluator. They import the AST from here; this file only declares them and re-exports their entry
//! points. Outside `filter`: `crate::error` (in `parse`) and `crate::value` (in `eval`); nothing of the
//! schema — what the evaluator needs to know about attributes comes through [`AttrInfo`].

mod eval;
mod parse;

pub use parse::{
    parse_attr_path, parse_filter, parse_path, FilterError, MAX_FILTER_DEPTH, MAX_FILTER_TERMS,
};

use serde_json::Value;

/// An attribute path: `[urn ":"] name ["." sub]`, e.g. `name.givenName`,
/// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    /// The schema URN, without the trailing `:name` (e.g. `urn:…:enterprise:2.0:User`), as written.
    pub urn: Option<String>,
    /// The attribute name, as written (match it case-insensitively).
    pub name: String,
    /// The sub-attribute name, as written.
    pub sub: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

/// A comparison value (RFC 7644 §3.4.2.2 `compValue`).
#[derive(Debug, Clone, PartialEq)]
pub enum CompValue {
    Str(String),
    Num(serde_json::Number),
    Bool(bool),
    Null,
}

/// The filter AST.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `attrPath op compValue`
    Compare {
        path: AttrPath,
        op: CompareOp,
        value: CompValue,
    },
    /// `attrPath pr`
    Present(AttrPath),
    /// `attrPath "[" valFilter "]"`: some element of the multi-valued `path` matches `filter`, whose
    /// attribute paths are relative to the element. `emails[type eq "work"].value eq "x"` (the form
    /// Entra's docs use) is represented as `emails[type eq "work" and value eq "x"]`.
    ValuePath {
        path: AttrPath,
        filter: Box<Filter>,
    },
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
}

/// A PATCH operation target (RFC 7644 §3.5.2 `PATH`):
/// `attrPath` | `valuePath ["." subAttr]`, e.g. `emails[type eq "work"].value`, `members[value eq "x"]`.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    /// The attribute (with `sub` set for `name.givenName`; `sub` is None when a filter is present).
    pub attr: AttrPath,
    /// The value filter between brackets, relative to each element.
    pub filter: Option<Filter>,
    /// The sub-attribute after the closing bracket (`.value` in `emails[type eq "work"].value`).
    pub sub_after_filter: Option<String>,
}

/// What the evaluator needs to know about an attribute: supplied by the resource type's schema.
pub trait AttrInfo {
    /// Whether string comparison on this attribute (or sub-attribute) is case-exact.
    /// Unknown attributes are compared case-insensitively.
    fn case_exact(&self, urn: Option<&str>, name: &str, sub: Option<&str>) -> bool;
}

fn op_name(op: CompareOp) -> &'static str {
    match op {
        CompareOp::Eq => "eq",
        CompareOp::Ne => "ne",
        CompareOp::Co => "co",
        CompareOp::Sw => "sw",
        CompareOp::Ew => "ew",
        CompareOp::Gt => "gt",
        CompareOp::Ge => "ge",
        CompareOp::Lt => "lt",
        CompareOp::Le => "le",
    }
}

// ---------------------------------------------------------------------------------------------
// Display: a canonical form that parses back to an equal AST.
//
// Parentheses are written exactly where the AST's grouping differs from what precedence (not > and > or)
// and left-to-right chaining give — that is, where the parsed text must have had them — and the body of
// `not ( )` and `[ ]` is never wrapped again. So the canonical form is never nested deeper than the text it
// was parsed from, and always parses back within MAX_FILTER_DEPTH.

impl std::fmt::Display for AttrPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(u) = &self.urn {
            write!(f, "{u}:")?;
        }
        f.write_str(&self.name)?;
        if let Some(s) = &self.sub {
            write!(f, ".{s}")?;
        }
        Ok(())
    }
}

impl std::fmt::Display for CompareOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(op_name(*self))
    }
}

impl std::fmt::Display for CompValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // serde_json writes a JSON string literal with every needed escape.
            CompValue::Str(s) => write!(f, "{}", Value::String(s.clone())),
            CompValue::Num(n) => write!(f, "{n}"),
            CompValue::Bool(b) => write!(f, "{b}"),
            CompValue::Null => f.write_str("null"),
        }
    }
}

/// Write `x`, in parentheses if `wrap`.
fn write_operand(f: &mut std::fmt::Formatter<'_>, x: &Filter, wrap: bool) -> std::fmt::Result {
    if wrap {
        write!(f, "({x})")
    } else {
        write!(f, "{x}")
    }
}

impl std::fmt::Display for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Filter::Compare { path, op, value } => write!(f, "{path} {op} {value}"),
            Filter::Present(p) => write!(f, "{p} pr"),
            Filter::ValuePath { path, filter } => write!(f, "{path}[{filter}]"),
            Filter::And(a, b) => {
                write_operand(f, a, matches!(**a, Filter::Or(..)))?;
                f.write_str(" and ")?;
                write_operand(f, b, matches!(**b, Filter::And(..) | Filter::Or(..)))
            }
            Filter::Or(a, b) => {
                write_operand(f, a, false)?;
                f.write_str(" or ")?;
                write_operand(f, b, matches!(**b, Filter::Or(..)))
            }
            Filter::Not(a) => write!(f, "not ({a})"),
        }
    }
}

impl std::fmt::Display for PatchPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.attr)?;
        if let Some(flt) = &self.filter {
            write!(f, "[{flt}]")?;
        }
        if let Some(s) = &self.sub_after_filter {
            write!(f, ".{s}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `id`, `externalId` and the `code` sub-attribute of anything are case-exact; everything else is not.
    struct Info;
    impl AttrInfo for Info {
        fn case_exact(&self, _urn: Option<&str>, name: &str, sub: Option<&str>) -> bool {
            match sub {
                Some(s) => s.eq_ignore_ascii_case("code"),
                None => ["externalId", "id"]
                    .iter()
                    .any(|n| n.eq_ignore_ascii_case(name)),
            }
        }
    }

    const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    fn p(s: &str) -> Filter {
        parse_filter(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn perr(s: &str) -> String {
        match parse_filter(s) {
            Ok(f) => panic!("{s:?} parsed as {f:?}"),
            Err(e) => e.message,
        }
    }

    fn user() -> Value {
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
            "id": "u1", "userName": "Ann@Example.com", "externalId": "Ext-1", "active": false, "title": "",
            "name": {"givenName": "Ann", "familyName": "O'Brien"}, "weight": 70, "score": 2.5, "roles": [],
            "emails": [{"value": "ann@work.com", "type": "work", "primary": true}, {"value": "ann@home.org", "type": "home"}],
            "codes": [{"code": "AbC", "value": "c1"}],
            "tags": ["Blue", "green"],
            ENTERPRISE: {"department": "R&D", "manager": {"value": "m1", "displayName": "Boss"}},
            "meta": {"lastModified": "2024-05-01T10:00:00.000Z", "resourceType": "User"}})
    }

    fn m(s: &str) -> bool {
        p(s).matches(&user(), &Info)
    }

    fn ap(urn: Option<&str>, name: &str, sub: Option<&str>) -> AttrPath {
        AttrPath {
            urn: urn.map(Into::into),
            name: name.into(),
            sub: sub.map(Into::into),
        }
    }

    fn cmp(name: &str, op: CompareOp, value: CompValue) -> Filter {
        Filter::Compare {
            path: ap(None, name, None),
            op,
            value,
        }
    }

    fn s(v: &str) -> CompValue {
        CompValue::Str(v.into())
    }

    fn bx(f: Filter) -> Box<Filter> {
        Box::new(f)
    }

    // ----- grammar -----

    #[test]
    fn each_operator_parses() {
        for (text, op) in [
            ("eq", CompareOp::Eq),
            ("ne", CompareOp::Ne),
            ("co", CompareOp::Co),
            ("sw", CompareOp::Sw),
            ("ew", CompareOp::Ew),
            ("gt", CompareOp::Gt),
            ("ge", CompareOp::Ge),
            ("lt", CompareOp::Lt),
            ("le", CompareOp::Le),
        ] {
            assert_eq!(p(&format!("title {text} \"x\"")), cmp("title", op, s("x")));
            assert_eq!(
                p(&format!("title {} \"x\"", text.to_uppercase())),
                cmp("title", op, s("x"))
            );
        }
        assert_eq!(p("title pr"), Filter::Present(ap(None, "title", None)));
        assert_eq!(p("title PR"), Filter::Present(ap(None, "title", None)));
    }

    #[test]
    fn and_binds_tighter_than_or() {
        let (a, b, c) = (
            cmp("a", CompareOp::Eq, s("1")),
            cmp("b", CompareOp::Eq, s("2")),
            cmp("c", CompareOp::Eq, s("3")),
        );
        let want = Filter::Or(bx(a.clone()), bx(Filter::And(bx(b.clone()), bx(c.clone()))));
        assert_eq!(p(r#"a eq "1" or b eq "2" and c eq "3""#), want);
        assert_eq!(p(r#"a eq "1" or (b eq "2" and c eq "3")"#), want);
        let want = Filter::Or(bx(Filter::And(bx(a.clone()), bx(b.clone()))), bx(c.clone()));
        assert_eq!(p(r#"a eq "1" and b eq "2" or c eq "3""#), want);
        // Chains associate to the left.
        assert_eq!(
            p(r#"a eq "1" and b eq "2" and c eq "3""#),
            Filter::And(bx(Filter::And(bx(a.clone()), bx(b.clone()))), bx(c.clone()))
        );
        assert_eq!(
            p(r#"a eq "1" AND b eq "2" Or c eq "3""#),
            p(r#"(a eq "1" and b eq "2") or c eq "3""#)
        );
    }

    #[test]
    fn parentheses_override_precedence() {
        let f = p(r#"(a eq "1" or b eq "2") and c eq "3""#);
        assert!(matches!(&f, Filter::And(l, _) if matches!(**l, Filter::Or(..))));
        assert_eq!(p(r#"((a eq "1"))"#), cmp("a", CompareOp::Eq, s("1")));
        assert!(m("(userName eq \"x\" or active eq false) and weight eq 70"));
        assert!(!m("(userName eq \"x\" or active eq false) and weight eq 1"));
    }

    #[test]
    fn not_takes_a_parenthesised_filter() {
        assert_eq!(
            p(r#"not (a eq "1")"#),
            Filter::Not(bx(cmp("a", CompareOp::Eq, s("1"))))
        );
        assert_eq!(p(r#"NOT(a eq "1")"#), p(r#"not (a eq "1")"#));
        // not binds tighter than and.
        assert!(
            matches!(p(r#"not (a pr) and b pr"#), Filter::And(l, _) if matches!(*l, Filter::Not(_)))
        );
        assert!(m("not (userName eq \"x\")"));
        assert!(!m("not (userName pr)"));
        assert!(m("not (not (userName pr))"));
        assert!(perr(r#"not a eq "1""#).contains("expected '(' after 'not'"));
        assert!(perr("not").contains("expected '(' after 'not'"));
        // An attribute called "not" is still an attribute.
        assert_eq!(p("not pr"), Filter::Present(ap(None, "not", None)));
    }

    #[test]
    fn value_path() {
        let f = p(r#"emails[type eq "work" and primary eq true]"#);
        let inner = Filter::And(
            bx(cmp("type", CompareOp::Eq, s("work"))),
            bx(cmp("primary", CompareOp::Eq, CompValue::Bool(true))),
        );
        assert_eq!(
            f,
            Filter::ValuePath {
                path: ap(None, "emails", None),
                filter: bx(inner)
            }
        );
        assert!(m(r#"emails[type eq "work" and value co "@work"]"#));
        assert!(!m(r#"emails[type eq "work" and value co "@home"]"#));
        assert!(m("emails[primary eq true]"));
        assert!(
            !m(r#"emails[type eq "home" and primary eq true]"#),
            "both conditions on the same element"
        );
        assert!(m(r#"emails[not (type eq "work")]"#));
        assert!(m(r#"userName pr and emails[type eq "home"]"#));
    }

    #[test]
    fn value_path_followed_by_sub_attribute_entra_form() {
        let f = p(r#"emails[type eq "work"].value eq "ANN@work.com""#);
        assert_eq!(
            f,
            p(r#"emails[type eq "work" and value eq "ANN@work.com"]"#)
        );
        assert!(f.matches(&user(), &Info));
        assert!(!m(r#"emails[type eq "home"].value eq "ann@work.com""#));
        assert_eq!(
            p(r#"emails[type eq "work"].value pr"#),
            Filter::ValuePath {
                path: ap(None, "emails", None),
                filter: bx(Filter::And(
                    bx(cmp("type", CompareOp::Eq, s("work"))),
                    bx(Filter::Present(ap(None, "value", None)))
                )),
            }
        );
        assert!(m(r#"emails[type eq "work"].value pr"#));
        assert!(m(
            r#"emails[type eq "work"].value co "@WORK" and userName pr"#
        ));
        // An `or` inside the brackets stays grouped: [(a or b) and value eq x].
        let f = p(r#"emails[type eq "x" or type eq "home"].value ew ".org""#);
        assert!(
            matches!(&f, Filter::ValuePath { filter, .. } if matches!(&**filter, Filter::And(l, _) if matches!(**l, Filter::Or(..))))
        );
        assert!(f.matches(&user(), &Info));
    }

    #[test]
    fn nested_value_paths_are_rejected() {
        assert!(perr(r#"emails[type[x eq "1"]]"#).contains("another value filter"));
        assert!(perr(r#"emails[value eq "a" and x[type eq "b"]]"#).contains("another value filter"));
        assert!(perr(r#"emails.value[type eq "b"]"#).contains("not a sub-attribute"));
    }

    #[test]
    fn urn_qualified_attribute_names() {
        let Filter::Compare { path, .. } = p(&format!("{ENTERPRISE}:department eq \"x\"")) else {
            panic!()
        };
        assert_eq!(path, ap(Some(ENTERPRISE), "department", None));
        let Filter::Compare { path, .. } = p(&format!("{ENTERPRISE}:manager.value eq \"x\""))
        else {
            panic!()
        };
        assert_eq!(path, ap(Some(ENTERPRISE), "manager", Some("value")));
        let Filter::Compare { path, .. } =
            p("urn:ietf:params:scim:schemas:core:2.0:User:name.givenName eq \"x\"")
        else {
            panic!()
        };
        assert_eq!(
            path,
            ap(
                Some("urn:ietf:params:scim:schemas:core:2.0:User"),
                "name",
                Some("givenName")
            )
        );
        let Filter::Present(path) = p("URN:IETF:params:scim:schemas:core:2.0:Group:displayName pr")
        else {
            panic!()
        };
        assert_eq!(
            path,
            ap(
                Some("URN:IETF:params:scim:schemas:core:2.0:Group"),
                "displayName",
                None
            )
        );
        assert!(perr("urn:x eq \"1\"").contains("not a URN-qualified attribute name"));
        assert!(perr("urn: eq \"1\"").contains("not a URN-qualified attribute name"));
    }

    #[test]
    fn urn_qualified_names_evaluate_against_the_right_object() {
        assert!(m(&format!("{ENTERPRISE}:department eq \"r&d\"")));
        assert!(m(&format!("{ENTERPRISE}:manager.value eq \"m1\"")));
        assert!(m(&format!("{ENTERPRISE}:manager eq \"m1\"")));
        assert!(
            m(&format!(
                "{}:department eq \"r&d\"",
                ENTERPRISE.to_uppercase()
            )),
            "the URN key matches case-insensitively"
        );
        assert!(m(
            "urn:ietf:params:scim:schemas:core:2.0:User:userName eq \"ANN@example.com\""
        ));
        assert!(m(
            "urn:ietf:params:scim:schemas:core:2.0:User:name.givenName eq \"ann\""
        ));
        // An extension the resource lacks names nothing, not the top level.
        assert!(!m("urn:example:ext:1.0:User:userName pr"));
        assert!(!m(&format!("{ENTERPRISE}:userName pr")));
    }

    #[test]
    fn names_and_keywords_are_case_insensitive() {
        assert!(m("USERNAME EQ \"ann@example.com\" AND Active Eq False"));
        assert!(m("Name.GivenName Sw \"A\""));
        assert!(m("EMAILS[TYPE EQ \"work\"].VALUE Pr"));
        assert!(m("userName pr oR nickName pR"));
        // Names are kept as written.
        assert_eq!(
            p("USERNAME pr"),
            Filter::Present(ap(None, "USERNAME", None))
        );
    }

    #[test]
    fn quoted_values_hold_special_characters() {
        assert_eq!(
            p(r#"displayName eq "LACreateGroup-(1a2b)""#),
            cmp("displayName", CompareOp::Eq, s("LACreateGroup-(1a2b)"))
        );
        assert_eq!(
            p(r#"userName eq "o'brien, (x) \"q\"""#),
            cmp("userName", CompareOp::Eq, s("o'brien, (x) \"q\""))
        );
        let Filter::Compare { value, .. } =
            p(r#"userName eq "a [y] and b or c \\ \n \t \/ \u00e9 \ud83d\ude00""#)
        else {
            panic!()
        };
        assert_eq!(value, s("a [y] and b or c \\ \n \t / é 😀"));
        assert_eq!(p(r#"x eq """#), cmp("x", CompareOp::Eq, s("")));
        assert!(m("name.familyName eq \"o'brien\""));
        assert!(perr(r#"x eq "\q""#).contains("not a valid JSON string"));
        assert!(perr(r#"x eq "\u12""#).contains("not a valid JSON string"));
    }

    #[test]
    fn unquoted_values_microsoft_docs_form() {
        assert_eq!(
            p("externalId eq jyoung"),
            cmp("externalId", CompareOp::Eq, s("jyoung"))
        );
        assert_eq!(
            p("id eq 54D382A4-2050-4C03-94D1-E769F1D15682 and manager eq 2819c223-7f76-453a-919d-413861904646")
                .to_string(),
            r#"id eq "54D382A4-2050-4C03-94D1-E769F1D15682" and manager eq "2819c223-7f76-453a-919d-413861904646""#
        );
        assert_eq!(
            p("userName eq a@b.c"),
            cmp("userName", CompareOp::Eq, s("a@b.c"))
        );
        // co/sw/ew only compare strings, so a bare number is the string.
        assert_eq!(
            p("externalId sw 12"),
            cmp("externalId", CompareOp::Sw, s("12"))
        );
    }

    #[test]
    fn literal_values() {
        assert_eq!(
            p("active eq true"),
            cmp("active", CompareOp::Eq, CompValue::Bool(true))
        );
        assert_eq!(
            p("active eq FALSE"),
            cmp("active", CompareOp::Eq, CompValue::Bool(false))
        );
        assert_eq!(p("x eq Null"), cmp("x", CompareOp::Eq, CompValue::Null));
        assert_eq!(
            p("x eq 42"),
            cmp("x", CompareOp::Eq, CompValue::Num(42.into()))
        );
        assert_eq!(
            p("x gt -1.5e3"),
            cmp(
                "x",
                CompareOp::Gt,
                CompValue::Num(serde_json::Number::from_f64(-1500.0).unwrap())
            )
        );
        assert_eq!(
            p("x eq \"true\""),
            cmp("x", CompareOp::Eq, s("true")),
            "a quoted keyword is a string"
        );
        // Not JSON numbers: strings.
        assert_eq!(p("x eq 01"), cmp("x", CompareOp::Eq, s("01")));
        assert_eq!(p("x eq 1e999"), cmp("x", CompareOp::Eq, s("1e999")));
    }

    // ----- rejections -----

    #[test]
    fn rejections_say_what_and_where() {
        for (bad, needle) in [
            ("", "empty"),
            ("   \t", "empty"),
            (
                "userName eq",
                "expected a value after 'userName eq' but found the end of the input (position 12)",
            ),
            ("userName eq )", "expected a value"),
            (
                "userName xx \"a\"",
                "'xx' at position 10 is not an operator",
            ),
            ("userName", "expected an operator"),
            ("userName eq \"a", "not terminated"),
            ("userName eq \"a\\\"", "not terminated"),
            ("(userName eq \"a\"", "expected ')'"),
            ("userName eq \"a\")", "unexpected ')' at position 16"),
            ("((a pr)", "expected ')'"),
            ("()", "expected an attribute name"),
            ("emails[type eq \"work\"", "expected ']'"),
            ("emails[type eq \"work\"]]", "unexpected ']'"),
            ("emails[type eq \"work\")", "expected ']'"),
            ("emails[]", "expected an attribute name"),
            ("userName eq \"a\" b", "unexpected 'b' at position 17"),
            ("userName eq \"a\" and", "expected an attribute name"),
            (
                "userName eq \"a\" or or b pr",
                "expected an attribute name but found 'or'",
            ),
            ("active gt true", "gt cannot compare booleans or null"),
            ("x le null", "le cannot compare booleans or null"),
            ("x co true", "co needs a string"),
            ("\"a\"", "expected an attribute name"),
            ("42", "'42' at position 1 is not a valid attribute name"),
            ("jyoung", "expected an operator"),
            ("a.b.c eq 1", "more than one sub-attribute"),
            ("1abc eq 1", "not a valid attribute name"),
            (
                "a..b pr",
                "'a..b' at position 1 is missing an attribute name",
            ),
            ("a. pr", "missing an attribute name"),
            ("émail pr", "not a valid attribute name"),
            ("emails[type eq \"work\"].value", "expected an operator"),
            (
                "emails[type eq \"work\"].  eq 1",
                "missing an attribute name",
            ),
        ] {
            let msg = perr(bad);
            assert!(msg.contains(needle), "{bad:?}: {msg}");
        }
        assert_eq!(
            perr("userName"),
            "expected an operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr) after 'userName' at position 9"
        );
        // Long tokens are cut short in messages, on a character boundary.
        let long = format!("a pr {}", "é".repeat(100));
        assert_eq!(
            perr(&long),
            format!(
                "unexpected '{}…' at position 6 (expected 'and', 'or' or the end)",
                "é".repeat(40)
            )
        );
    }

    #[test]
    fn errors_become_invalid_filter() {
        let e: crate::error::ScimError = parse_filter("userName xx \"a\"").unwrap_err().into();
        assert_eq!(e.status, 400);
        assert_eq!(e.scim_type, Some(crate::error::ScimType::InvalidFilter));
        assert!(
            e.detail.starts_with("Invalid filter: 'xx' at position 10"),
            "{}",
            e.detail
        );
        assert_eq!(
            parse_filter("").unwrap_err().to_string(),
            "the filter is empty"
        );
    }

    #[test]
    fn depth_limit() {
        let parens = |n: usize| format!("{}a eq 1{}", "(".repeat(n), ")".repeat(n));
        assert!(parse_filter(&parens(MAX_FILTER_DEPTH)).is_ok());
        assert!(perr(&parens(MAX_FILTER_DEPTH + 1)).contains("nested more than 32 levels"));
        let nots = |n: usize| format!("{}a eq 1{}", "not (".repeat(n), ")".repeat(n));
        assert!(parse_filter(&nots(MAX_FILTER_DEPTH)).is_ok());
        assert!(perr(&nots(MAX_FILTER_DEPTH + 1)).contains("nested"));
        // The value-path bracket counts as a level.
        let in_brackets = |n: usize| format!("{}emails[type pr]{}", "(".repeat(n), ")".repeat(n));
        assert!(parse_filter(&in_brackets(MAX_FILTER_DEPTH - 1)).is_ok());
        assert!(perr(&in_brackets(MAX_FILTER_DEPTH)).contains("nested"));
        let mixed = format!("{}a pr{}", "(not (".repeat(16), "))".repeat(16));
        assert!(parse_filter(&mixed).is_ok());
        assert!(perr(&format!("(({mixed}))")).contains("nested"));
        // Long and/or chains do not recurse; their length is bounded instead.
        assert!(parse_filter(&vec!["a eq 1"; MAX_FILTER_TERMS].join(" and ")).is_ok());
        assert!(perr(&vec!["a eq 1"; MAX_FILTER_TERMS + 1].join(" or "))
            .contains("more than 256 comparisons"));
    }

    #[test]
    fn hostile_nesting_fails_fast_without_overflowing_the_stack() {
        let start = std::time::Instant::now();
        for hostile in [
            "(".repeat(100_000),
            "not (".repeat(100_000),
            "not(".repeat(100_000),
            "a[".repeat(100_000),
            format!("{}a pr{}", "(".repeat(100_000), ")".repeat(100_000)),
            "[".repeat(100_000),
            "\"".repeat(100_001),
            "\\".repeat(100_000),
        ] {
            assert!(parse_filter(&hostile).is_err());
            assert!(parse_path(&hostile).is_err());
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(5),
            "took {:?}",
            start.elapsed()
        );
    }

    // ----- evaluation -----

    #[test]
    fn evaluate_each_operator_on_strings() {
        assert!(m("userName eq \"ann@example.com\""));
        assert!(m("userName ne \"bob\""));
        assert!(!m("userName ne \"ANN@example.com\""));
        assert!(m("userName co \"EXAMPLE\""));
        assert!(!m("userName co \"bob\""));
        assert!(m("userName sw \"ann@\"") && !m("userName sw \"example\""));
        assert!(m("userName ew \".COM\"") && !m("userName ew \"ann\""));
        assert!(
            m("userName gt \"a\"")
                && m("userName lt \"b\"")
                && m("userName ge \"ann@example.com\"")
                && m("userName le \"ANN@EXAMPLE.COM\"")
        );
        assert!(!m("userName gt \"b\""));
    }

    #[test]
    fn case_insensitive_and_case_exact_comparison() {
        assert!(
            m("userName eq \"ANN@EXAMPLE.COM\""),
            "userName is case-insensitive"
        );
        assert!(m("externalId eq \"Ext-1\""));
        assert!(!m("externalId eq \"ext-1\""), "externalId is case-exact");
        assert!(!m("externalId co \"ext\"") && m("externalId co \"Ext\""));
        assert!(m("id eq \"u1\"") && !m("id eq \"U1\""));
        // Inside a value filter the sub-attribute is asked about under its parent.
        assert!(m("codes[code eq \"AbC\"]") && !m("codes[code eq \"abc\"]"));
        assert!(m("codes.code eq \"AbC\"") && !m("codes.code eq \"abc\""));
        // Unicode lowercase, not just ASCII.
        let r = json!({"displayName": "ÉCOLE"});
        assert!(p("displayName eq \"école\"").matches(&r, &Info));
    }

    #[test]
    fn numbers_and_booleans() {
        assert!(
            m("weight gt 69")
                && m("weight ge 70")
                && m("weight lt 70.5")
                && m("weight le 70")
                && !m("weight gt 70")
        );
        assert!(m("weight eq 70.0"), "numbers compare as f64");
        assert!(m("score lt 3") && m("score eq 2.5"));
        assert!(m("active eq false") && !m("active eq true") && m("active ne true"));
        assert!(
            !m("weight eq \"70\"") && !m("userName eq 1") && !m("active eq \"false\""),
            "type mismatch never matches"
        );
        assert!(m("emails[primary eq true]") && !m("emails[primary eq false]"));
    }

    #[test]
    fn presence() {
        assert!(m("userName pr"));
        assert!(!m("title pr"), "empty string is not present");
        assert!(!m("roles pr"), "empty array is not present");
        assert!(!m("nickName pr"), "absent");
        assert!(m("active pr"), "false is present");
        assert!(m("name pr") && m("emails pr") && m("emails.type pr"));
        assert!(!m("emails.display pr"));
        let r = json!({"x": null, "o": {}, "e": [{}]});
        for f in ["x pr", "o pr", "e pr"] {
            assert!(!p(f).matches(&r, &Info), "{f}");
        }
    }

    #[test]
    fn null_and_ne() {
        assert!(m("nickName ne \"x\""), "ne matches an absent attribute");
        assert!(
            m("nickName eq null")
                && !m("userName eq null")
                && m("userName ne null")
                && !m("nickName ne null")
        );
        assert!(m("title eq null"), "an empty string counts as unassigned");
        assert!(
            m("emails.type ne \"other\"") && !m("emails.type ne \"home\""),
            "ne negates the any-element eq"
        );
    }

    #[test]
    fn datetimes_compare_chronologically() {
        assert!(m("meta.lastModified gt \"2024-05-01T09:59:59Z\""));
        assert!(!m("meta.lastModified gt \"2024-05-01T11:00:00+00:00\""));
        assert!(
            m("meta.lastModified gt \"2024-05-01T11:00:00+02:00\""),
            "an offset is honoured"
        );
        assert!(m("meta.lastModified ge \"2024-05-01T10:00:00Z\""));
        assert!(m("meta.lastModified le \"2024-05-01T10:00:00Z\""));
        assert!(m("meta.lastModified lt \"2024-05-01T10:00:00.001Z\""));
        // Not a dateTime on one side: string order.
        assert!(m("meta.lastModified gt \"2024\""));
    }

    #[test]
    fn multi_valued_attributes_match_any_element() {
        assert!(
            m("emails.value eq \"ann@home.org\"")
                && m("emails.type eq \"work\"")
                && m("emails.type eq \"home\"")
        );
        assert!(!m("emails.type eq \"other\""));
        assert!(
            m("emails eq \"ANN@home.org\""),
            "a complex multi-valued attribute compares its value"
        );
        assert!(m("emails co \"@home\"") && m("emails ew \".org\""));
        assert!(
            m("tags eq \"blue\"") && m("tags eq \"GREEN\"") && !m("tags eq \"red\""),
            "multi-valued strings"
        );
        assert!(
            m("tags[value eq \"green\"]"),
            "a primitive element is its own value"
        );
        assert!(m(
            "schemas eq \"urn:ietf:params:scim:schemas:core:2.0:User\""
        ));
    }

    #[test]
    fn complex_single_valued_compares_its_value() {
        assert!(
            m("manager eq \"m1\"") && !m("manager eq \"m2\""),
            "unqualified manager is found in the extension"
        );
        assert!(m("manager.value eq \"m1\"") && m("manager.displayName eq \"boss\""));
        assert!(m("id eq \"u1\" and manager eq \"m1\""));
        assert!(m("department eq \"R&D\""));
        assert!(m(&format!("{ENTERPRISE}:manager eq \"m1\"")));
        assert!(
            m("manager[value eq \"m1\"]"),
            "a value filter on a single complex value"
        );
        assert!(
            !m("name eq \"Ann\""),
            "a complex value without 'value' compares nothing"
        );
    }

    #[test]
    fn group_members() {
        let g = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": "g1", "displayName": "LACreateGroup-(1a2b)",
            "members": [{"value": "u1", "display": "Ann"}, {"value": "u2", "$ref": "https://x/Users/u2"}]});
        let gm = |s: &str| p(s).matches(&g, &Info);
        assert!(gm("members eq \"u2\"") && !gm("members eq \"u3\""));
        assert!(gm("members[value eq \"u1\"]") && gm("members.value eq \"u1\""));
        assert!(gm(
            "displayName eq \"LACreateGroup-(1a2b)\" and members eq \"u1\""
        ));
        assert!(gm("members.$ref pr"));
        assert!(gm(
            "urn:ietf:params:scim:schemas:core:2.0:Group:displayName sw \"lacreate\""
        ));
        assert!(!p("members eq \"u1\"").matches(&json!({"displayName": "x"}), &Info));
        assert!(!p("members pr").matches(&json!({"members": []}), &Info));
        assert!(!p("a pr").matches(&json!("not an object"), &Info));
    }

    // ----- PATCH paths and attribute paths -----

    #[test]
    fn patch_paths() {
        let plain = |a: AttrPath| PatchPath {
            attr: a,
            filter: None,
            sub_after_filter: None,
        };
        assert_eq!(
            parse_path("userName").unwrap(),
            plain(ap(None, "userName", None))
        );
        assert_eq!(
            parse_path("name.familyName").unwrap(),
            plain(ap(None, "name", Some("familyName")))
        );
        assert_eq!(
            parse_path("  members \t").unwrap(),
            plain(ap(None, "members", None))
        );
        assert_eq!(
            parse_path("emails[type eq \"work\"].value").unwrap(),
            PatchPath {
                attr: ap(None, "emails", None),
                filter: Some(p("type eq \"work\"")),
                sub_after_filter: Some("value".into())
            }
        );
        assert_eq!(
            parse_path("members[value eq \"7f4bc1a3-285e-48ae-8202-5accb43efb0e\"]").unwrap(),
            PatchPath {
                attr: ap(None, "members", None),
                filter: Some(cmp(
                    "value",
                    CompareOp::Eq,
                    s("7f4bc1a3-285e-48ae-8202-5accb43efb0e")
                )),
                sub_after_filter: None
            }
        );
        assert_eq!(
            parse_path(&format!("{ENTERPRISE}:manager")).unwrap(),
            plain(ap(Some(ENTERPRISE), "manager", None))
        );
        assert_eq!(
            parse_path(&format!(" {ENTERPRISE}:manager.value ")).unwrap(),
            plain(ap(Some(ENTERPRISE), "manager", Some("value")))
        );
        assert_eq!(
            parse_path(ENTERPRISE).unwrap(),
            plain(ap(
                Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0"),
                "User",
                None
            ))
        );
        let addr = parse_path("addresses[type eq \"work\"].Formatted").unwrap();
        assert_eq!(
            (addr.attr.sub, addr.sub_after_filter.as_deref()),
            (None, Some("Formatted"))
        );
        let mgr = parse_path("manager[value eq \"x\"]").unwrap();
        assert_eq!(
            (mgr.attr.name.as_str(), mgr.filter),
            ("manager", Some(cmp("value", CompareOp::Eq, s("x"))))
        );
        assert!(
            parse_path("emails[type eq \"work\" and (primary eq true or value ew \".org\")]")
                .is_ok()
        );
        assert!(parse_path("x eq 1").is_err(), "a filter is not a path");
    }

    #[test]
    fn patch_path_rejections() {
        for (bad, needle) in [
            ("emails[type eq \"work\"", "expected ']'"),
            ("[x]", "must start with an attribute name"),
            ("", "empty"),
            ("  ", "empty"),
            ("a..b", "'a..b' at position 1 is missing an attribute name"),
            (".a", "missing an attribute name"),
            ("a.b.c", "more than one sub-attribute"),
            (
                "emails[type eq \"w\"] x",
                "expected '.subAttribute' after ']' but found 'x' (position 21)",
            ),
            ("emails[type eq \"w\"]x", "expected '.subAttribute'"),
            (
                "emails[type eq \"w\"].value.x",
                "not a valid attribute name",
            ),
            ("emails[type eq \"w\"].", "missing an attribute name"),
            ("emails[type eq \"w\"][a pr]", "unexpected"),
            ("name.x[a eq 1]", "not a sub-attribute"),
            ("emails[types[a pr]]", "another value filter"),
            ("emails[type xx \"w\"]", "not an operator"),
            ("userName extra", "unexpected 'extra'"),
            ("\"userName\"", "must start with an attribute name"),
        ] {
            let msg = parse_path(bad)
                .map(|pp| format!("parsed as {pp:?}"))
                .unwrap_or_else(|e| e.message);
            assert!(msg.contains(needle), "{bad:?}: {msg}");
        }
        let deep = format!(
            "emails[{}a pr{}]",
            "(".repeat(MAX_FILTER_DEPTH),
            ")".repeat(MAX_FILTER_DEPTH)
        );
        assert!(parse_path(&deep).unwrap_err().message.contains("nested"));
    }

    #[test]
    fn attr_paths_for_projection() {
        assert_eq!(
            parse_attr_path("emails.value").unwrap(),
            ap(None, "emails", Some("value"))
        );
        assert_eq!(
            parse_attr_path(" members ").unwrap(),
            ap(None, "members", None)
        );
        assert_eq!(
            parse_attr_path(&format!("{ENTERPRISE}:manager")).unwrap(),
            ap(Some(ENTERPRISE), "manager", None)
        );
        for bad in ["", " ", "a b", "emails[type pr]", "a..b", "\"a\"", "(a)"] {
            assert!(parse_attr_path(bad).is_err(), "{bad:?}");
        }
    }

    // ----- Display -----

    #[test]
    fn display_is_canonical() {
        for (input, canonical) in [
            ("USERNAME Eq \"a\"", "USERNAME eq \"a\""),
            (
                "a eq 1 or (b eq 2 and c eq 3)",
                "a eq 1 or b eq 2 and c eq 3",
            ),
            (
                "(a eq 1 or b eq 2) and c eq 3",
                "(a eq 1 or b eq 2) and c eq 3",
            ),
            (
                "a eq 1 and (b eq 2 and c eq 3)",
                "a eq 1 and (b eq 2 and c eq 3)",
            ),
            ("((a pr)) and b pr and c pr", "a pr and b pr and c pr"),
            ("not ((a pr or b pr))", "not (a pr or b pr)"),
            ("externalId eq jyoung", "externalId eq \"jyoung\""),
            (
                "emails[type eq \"work\"].value eq \"x\"",
                "emails[type eq \"work\" and value eq \"x\"]",
            ),
            (
                "emails[type eq \"a\" or type eq \"b\"].value pr",
                "emails[(type eq \"a\" or type eq \"b\") and value pr]",
            ),
            (
                "x eq \"q\\\"\\\\\\n\\u0001\"",
                "x eq \"q\\\"\\\\\\n\\u0001\"",
            ),
            (
                "x eq TRUE and y eq NULL and z GE 1E2",
                "x eq true and y eq null and z ge 100.0",
            ),
        ] {
            assert_eq!(p(input).to_string(), canonical, "{input}");
        }
        assert_eq!(
            parse_path("emails[type eq \"work\"].value")
                .unwrap()
                .to_string(),
            "emails[type eq \"work\"].value"
        );
        assert_eq!(
            parse_path(&format!("{ENTERPRISE}:manager.value"))
                .unwrap()
                .to_string(),
            format!("{ENTERPRISE}:manager.value")
        );
        assert_eq!(CompareOp::Ge.to_string(), "ge");
    }

    fn assert_round_trip(f: &Filter) {
        let text = f.to_string();
        match parse_filter(&text) {
            Ok(back) => assert_eq!(&back, f, "{text}"),
            Err(e) => panic!("{f:?} displayed as {text:?}, which does not parse: {e}"),
        }
    }

    #[test]
    fn display_round_trips() {
        for src in [
            "userName eq \"a\"",
            "a eq 1 or b eq 2 and not (c pr)",
            "emails[type eq \"work\" and value co \"x\"]",
            "emails[type eq \"work\"].value eq \"x\"",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq \"m\"",
            "urn:ietf:params:scim:schemas:core:2.0:User:name.givenName sw \"J\"",
            "x eq null and y eq true and z ge -2.5",
            "displayName eq \"(a) \\\"b\\\", 'c' and or [d]\"",
            "meta.lastModified gt \"2011-05-13T04:42:34Z\"",
            "not (not (a eq \"b\"))",
            "externalId eq jyoung",
            "((a eq 1))",
            "a eq 1 and (b eq 2 or c eq 3)",
            "(a eq 1 or b eq 2) and (c eq 3 or d eq 4) or e pr and (f pr or g pr or h pr)",
            "a pr or (b pr or c pr)",
            "a pr and (b pr and c pr) and d pr",
            "emails[not (type eq \"work\") or primary eq true]",
            "x eq 1e300 or y eq -0 or z eq 12345678901234567890",
        ] {
            assert_round_trip(&p(src));
        }
        // Right at the depth limit, the canonical form is still accepted.
        let deepest = format!(
            "{}a pr or b pr and c pr{}",
            "(not (".repeat(16),
            "))".repeat(16)
        );
        assert_round_trip(&p(&deepest));
        let deepest = format!(
            "{}emails[type pr or value pr].display pr{}",
            "(".repeat(MAX_FILTER_DEPTH - 2),
            ")".repeat(MAX_FILTER_DEPTH - 2)
        );
        assert_round_trip(&p(&deepest));
        assert!(
            parse_filter(&format!("({deepest})")).is_err(),
            "the implied group counts towards the limit"
        );
    }

    #[test]
    fn arbitrary_token_soup_never_panics() {
        let toks = [
            "(", ")", "[", "]", "\"", "\\", "eq", "and", "or", "not", "a.b", "urn:x:y", " ", "pr",
            "1", ".v", "é", "\"x\"", ":", ".", "gt", "true", "null", "\\u", "😀", "urn:", "emails",
            "-", "\t", "not (", "a eq 1", "b pr", "x[y pr]",
        ];
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut parsed = 0;
        for _ in 0..5000 {
            let len = next() % 14;
            let mut text = String::new();
            for _ in 0..len {
                text.push_str(toks[(next() % toks.len() as u64) as usize]);
                if next() % 2 == 0 {
                    text.push(' ');
                }
            }
            let _ = parse_path(&text);
            let _ = parse_attr_path(&text);
            if let Ok(f) = parse_filter(&text) {
                parsed += 1;
                let _ = f.matches(&user(), &Info);
                assert_round_trip(&f);
            }
            // Every char-boundary prefix, too (slicing bugs show up on cut multi-byte characters).
            for (i, _) in text.char_indices() {
                let _ = parse_filter(&text[..i]);
                let _ = parse_path(&text[..i]);
            }
        }
        assert!(
            parsed > 10,
            "the soup should sometimes be a valid filter ({parsed})"
        );
    }
}

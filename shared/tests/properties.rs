//! Property tests of the SCIM core (proptest) and the regression tests of fuzzing findings.
//!
//! * Filters: every AST the parser can produce, within `MAX_FILTER_DEPTH` / `MAX_FILTER_TERMS`, prints
//!   (`Display`) to text that parses back to the same AST; ASTs beyond the limits are refused cleanly.
//! * PATCH: sequences of add/replace/remove on a few user attributes, applied with `patch::apply` and
//!   checked with `model::validate`, leave each touched attribute as the LAST operation on it said;
//!   an operation list that fails leaves the resource unchanged; nothing panics.
//!
//! Run: `cargo test -p shared --test properties`. See docs/fuzzing.md for the fuzz targets.

use proptest::prelude::*;
use proptest::test_runner::Config;
use scim_core::filter::{
    parse_attr_path, parse_filter, parse_path, AttrPath, CompValue, CompareOp, Filter,
    MAX_FILTER_DEPTH, MAX_FILTER_TERMS,
};
use scim_core::model;
use scim_core::patch;
use scim_core::schema::{group_resource_type, user_resource_type, ResourceType, PATCH_OP};
use serde_json::{json, Map, Number, Value};

const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn config(cases: u32) -> Config {
    // No persistence file: a failure prints its minimal input, which goes into a plain #[test] below.
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

// =================================================================================================
// Filter ASTs
// =================================================================================================

/// Nesting depth of the printed filter as the parser counts it: each `(`, `not (` and `[` outside string
/// literals opens a level. Measured on the text, so it holds whatever parentheses `Display` chooses to write.
fn text_depth(text: &str) -> usize {
    let (mut depth, mut max, mut in_str, mut escaped) = (0usize, 0usize, false, false);
    for c in text.chars() {
        if in_str {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '(' | '[' => {
                depth += 1;
                max = max.max(depth);
            }
            ')' | ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

fn display_depth(f: &Filter) -> usize {
    text_depth(&f.to_string())
}

/// Comparisons as the parser counts them (each attribute expression, value paths included).
fn terms(f: &Filter) -> usize {
    match f {
        Filter::Compare { .. } | Filter::Present(_) => 1,
        Filter::ValuePath { filter, .. } => 1 + terms(filter),
        Filter::And(a, b) | Filter::Or(a, b) => terms(a) + terms(b),
        Filter::Not(a) => terms(a),
    }
}

fn within_limits(f: &Filter) -> bool {
    display_depth(f) <= MAX_FILTER_DEPTH && terms(f) <= MAX_FILTER_TERMS
}

/// Attribute names as the parser accepts them (`[A-Za-z$_][A-Za-z0-9_$-]*`), realistic ones first,
/// and the keywords, which are legal attribute names too.
fn attr_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "userName", "displayName", "externalId", "id", "active", "title", "nickName", "emails", "members",
            "name", "manager", "department", "meta", "value", "type", "primary", "givenName", "lastModified",
            "Formatted", "$ref",
        ])
        .prop_map(str::to_string),
        1 => prop::sample::select(vec!["and", "or", "not", "pr", "eq", "co", "true", "null"]).prop_map(str::to_string),
        3 => "[A-Za-z$_][A-Za-z0-9_$-]{0,12}",
    ]
}

/// Schema URNs: real ones, case variants, and odd but legal ones (anything without whitespace,
/// quotes, parentheses or brackets; the name is what follows the last colon).
fn urn() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
            "urn:ietf:params:scim:schemas:core:2.0:Group",
            "URN:IETF:params:scim:schemas:extension:enterprise:2.0:user",
        ])
        .prop_map(str::to_string),
        1 => "(urn|URN|Urn):[A-Za-z0-9._:$-]{1,20}",
    ]
}

fn attr_path(with_sub: bool) -> impl Strategy<Value = AttrPath> {
    let sub = if with_sub {
        prop::option::weighted(0.4, attr_name()).boxed()
    } else {
        Just(None).boxed()
    };
    (prop::option::weighted(0.25, urn()), attr_name(), sub).prop_map(|(urn, name, sub)| AttrPath {
        urn,
        name,
        sub,
    })
}

/// Strings with what makes quoting hard: quotes, backslashes, parentheses, brackets, keywords,
/// control characters, non-ASCII and astral characters.
fn string_value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => r#"[a-zA-Z0-9 "'\\()\[\].:@&,é€😀\u{0}\u{1f}\u{7f}\u{2028}\t\n-]{0,16}"#,
        1 => any::<String>(),
        1 => prop::sample::select(vec![
            "", " ", "and", "or", "not (", ")", "]", "\"", "\\", "\\\"", "a\"b", "o'brien, (x) [y]", "2011-05-13T04:42:34Z",
            "Test_User_00aa00aa-bb11-cc22-dd33-44ee44ee44ee", "7f4bc1a3-285e-48ae-8202-5accb43efb0e", "true", "null", "1",
        ])
        .prop_map(str::to_string),
    ]
}

fn any_number() -> impl Strategy<Value = Number> {
    prop_oneof![
        any::<i64>().prop_map(Number::from),
        any::<u64>().prop_map(Number::from),
        (-1000i64..1000).prop_map(Number::from),
        prop::num::f64::NORMAL.prop_filter_map("finite", Number::from_f64),
        prop::num::f64::SUBNORMAL.prop_filter_map("finite", Number::from_f64),
        prop::sample::select(vec![0.0, -0.0, 1.5, -2.5e-7, 1e300, 70.0])
            .prop_filter_map("finite", Number::from_f64),
    ]
}

/// Numbers for the AST properties: every one must survive Display → parse (fuzzing finding F1, fixed by
/// serde_json's `float_roundtrip` feature; see `regression_f1_*` below).
fn number() -> impl Strategy<Value = Number> {
    any_number()
}

fn op() -> impl Strategy<Value = CompareOp> {
    prop::sample::select(vec![
        CompareOp::Eq,
        CompareOp::Ne,
        CompareOp::Co,
        CompareOp::Sw,
        CompareOp::Ew,
        CompareOp::Gt,
        CompareOp::Ge,
        CompareOp::Lt,
        CompareOp::Le,
    ])
}

/// A value the parser accepts after `op`: co/sw/ew take strings only; gt/ge/lt/le no booleans or null.
fn value_for(op: CompareOp) -> BoxedStrategy<CompValue> {
    let s = string_value().prop_map(CompValue::Str);
    let n = number().prop_map(CompValue::Num);
    let b = any::<bool>().prop_map(CompValue::Bool);
    match op {
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => s.boxed(),
        CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le => {
            prop_oneof![3 => s, 1 => n].boxed()
        }
        CompareOp::Eq | CompareOp::Ne => {
            prop_oneof![4 => s, 2 => n, 1 => b, 1 => Just(CompValue::Null)].boxed()
        }
    }
}

fn leaf() -> impl Strategy<Value = Filter> {
    prop_oneof![
        5 => (attr_path(true), op())
            .prop_flat_map(|(path, op)| value_for(op).prop_map(move |value| Filter::Compare { path: path.clone(), op, value })),
        1 => attr_path(true).prop_map(Filter::Present),
    ]
}

/// Filters without value paths (what may stand inside brackets).
fn element_filter() -> impl Strategy<Value = Filter> {
    leaf().prop_recursive(5, 24, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::Or(Box::new(a), Box::new(b))),
            inner.prop_map(|a| Filter::Not(Box::new(a))),
        ]
    })
}

/// `and`/`or` name an attribute only before an operator (`or eq 1`), never before `[`: the parser takes
/// `… and and[…]` for a misplaced keyword, by design.
fn value_path() -> impl Strategy<Value = Filter> {
    let path = attr_path(false).prop_filter("no value path on 'and'/'or'", |p| {
        !(p.name.eq_ignore_ascii_case("and") || p.name.eq_ignore_ascii_case("or"))
    });
    (path, element_filter()).prop_map(|(path, f)| Filter::ValuePath {
        path,
        filter: Box::new(f),
    })
}

/// Any filter AST the parser can produce (no value path inside a value path; no sub-attribute before `[`).
fn filter_ast() -> impl Strategy<Value = Filter> {
    prop_oneof![3 => leaf(), 1 => value_path()].prop_recursive(6, 48, 2, |inner| {
        prop_oneof![
            2 => (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::And(Box::new(a), Box::new(b))),
            2 => (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::Or(Box::new(a), Box::new(b))),
            1 => inner.prop_map(|a| Filter::Not(Box::new(a))),
        ]
    })
}

#[derive(Debug, Clone, Copy)]
enum Wrap {
    Not,
    AndLeft,
    AndRight,
    OrLeft,
    OrRight,
}

/// Wrap `core` in a chain of `not`/`and`/`or` levels, innermost first.
fn wrap_chain(core: Filter, wraps: &[(Wrap, Filter)]) -> Filter {
    wraps.iter().fold(core, |acc, (w, other)| {
        let (acc, other) = (Box::new(acc), Box::new(other.clone()));
        match w {
            Wrap::Not => Filter::Not(acc),
            Wrap::AndLeft => Filter::And(acc, other),
            Wrap::AndRight => Filter::And(other, acc),
            Wrap::OrLeft => Filter::Or(acc, other),
            Wrap::OrRight => Filter::Or(other, acc),
        }
    })
}

fn wrap() -> impl Strategy<Value = Wrap> {
    prop::sample::select(vec![
        Wrap::Not,
        Wrap::AndLeft,
        Wrap::AndRight,
        Wrap::OrLeft,
        Wrap::OrRight,
    ])
}

/// Deep filters: a leaf or value path under `levels` levels of not/and/or. Whether an `and`/`or` level
/// adds parentheses depends on `Display`, so the depth is checked on the printed text.
fn deep_filter(levels: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = Filter> {
    (
        prop_oneof![leaf(), value_path()],
        prop::collection::vec((wrap(), leaf()), levels),
    )
        .prop_map(|(core, wraps)| wrap_chain(core, &wraps))
}

/// Nested filters: every level is a `not (…)`, optionally joined with a leaf by `and`/`or`, so each
/// level adds exactly one parenthesis level: the printed depth is `levels` (+1 around a value path).
fn nested_filter(levels: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = Filter> {
    let level = (prop::option::weighted(0.5, (wrap(), leaf())), leaf());
    (
        prop_oneof![leaf(), value_path()],
        prop::collection::vec(level, levels),
    )
        .prop_map(|(core, levels)| {
            levels.into_iter().fold(core, |acc, (bin, _)| {
                let acc = Filter::Not(Box::new(acc));
                match bin {
                    Some((Wrap::Not, _)) | None => acc,
                    Some((w, other)) => wrap_chain(acc, &[(w, other)]),
                }
            })
        })
}

/// Wide filters: `n` leaves joined into a balanced and/or tree (shallow, many terms).
fn wide_filter(n: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = Filter> {
    (prop::collection::vec(leaf(), n), any::<u64>())
        .prop_map(|(leaves, seed)| balanced(leaves, seed))
}

fn balanced(mut leaves: Vec<Filter>, seed: u64) -> Filter {
    if leaves.len() == 1 {
        return leaves.pop().expect("one leaf");
    }
    let right = leaves.split_off(leaves.len() / 2);
    let (a, b) = (
        Box::new(balanced(leaves, seed.rotate_left(1))),
        Box::new(balanced(right, seed.rotate_left(2))),
    );
    if seed & 1 == 0 {
        Filter::And(a, b)
    } else {
        Filter::Or(a, b)
    }
}

fn round_trips(f: &Filter) -> Result<(), TestCaseError> {
    let shown = f.to_string();
    let parsed = parse_filter(&shown)
        .map_err(|e| TestCaseError::fail(format!("{shown:?} does not parse: {e}")))?;
    prop_assert_eq!(&parsed, f, "{:?} parses to a different AST", shown);
    Ok(())
}

proptest! {
    #![proptest_config(config(2000))]

    /// Display → parse_filter gives back the same AST, for any AST within the limits.
    #[test]
    fn filter_display_round_trips(f in filter_ast().prop_filter("within the parser's limits", within_limits)) {
        round_trips(&f)?;
    }

    /// The same for long not/and/or chains.
    #[test]
    fn deep_filter_display_round_trips(f in deep_filter(0..=3 * MAX_FILTER_DEPTH).prop_filter("within the limits", within_limits)) {
        round_trips(&f)?;
    }

    /// The same at the depth limit: up to MAX_FILTER_DEPTH nested levels.
    #[test]
    fn nested_filter_display_round_trips(f in nested_filter(MAX_FILTER_DEPTH - 4..=MAX_FILTER_DEPTH).prop_filter("within the limits", within_limits)) {
        round_trips(&f)?;
    }

    /// A printed AST deeper than MAX_FILTER_DEPTH is refused with the depth message, never a panic.
    #[test]
    fn too_deep_is_refused(f in nested_filter(MAX_FILTER_DEPTH + 1..=MAX_FILTER_DEPTH + 8)) {
        prop_assert!(display_depth(&f) > MAX_FILTER_DEPTH && terms(&f) <= MAX_FILTER_TERMS);
        let e = parse_filter(&f.to_string()).expect_err("deeper than the limit");
        prop_assert!(e.message.contains("nested"), "{}", e.message);
    }

    /// Attribute paths (projection lists) and PATCH paths round-trip through Display too.
    #[test]
    fn attr_and_patch_paths_round_trip(a in attr_path(true), vp in attr_path(false), f in element_filter(), sub in prop::option::of(attr_name())) {
        let shown = a.to_string();
        prop_assert_eq!(parse_attr_path(&shown).map_err(|e| TestCaseError::fail(format!("{shown:?}: {e}")))?, a.clone());
        let plain = parse_path(&shown).map_err(|e| TestCaseError::fail(format!("{shown:?}: {e}")))?;
        prop_assert_eq!(plain.attr, a);
        let pp = scim_core::filter::PatchPath { attr: vp, filter: Some(f), sub_after_filter: sub };
        prop_assume!(pp.filter.as_ref().is_some_and(|f| display_depth(f) < MAX_FILTER_DEPTH));
        let shown = pp.to_string();
        let back = parse_path(&shown).map_err(|e| TestCaseError::fail(format!("{shown:?}: {e}")))?;
        prop_assert_eq!(back, pp);
    }

    /// Text that parses prints to text that parses to the same AST (the fuzz target's check, on
    /// generated filters written in the forms clients use: bare values, Entra's `[…].sub op v`, extra parentheses).
    #[test]
    fn parsed_filters_round_trip(text in client_filter_text()) {
        if let Ok(f) = parse_filter(&text) {
            prop_assume!(within_limits(&f));
            round_trips(&f)?;
        }
    }
}

proptest! {
    // Hundreds of leaves per case: fewer cases.
    #![proptest_config(config(150))]

    /// The same with up to MAX_FILTER_TERMS comparisons.
    #[test]
    fn wide_filter_display_round_trips(f in wide_filter(1..=MAX_FILTER_TERMS)) {
        prop_assume!(within_limits(&f));
        round_trips(&f)?;
    }

    /// A printed AST with more than MAX_FILTER_TERMS comparisons is refused with the terms message.
    #[test]
    fn too_many_terms_is_refused(f in wide_filter(MAX_FILTER_TERMS + 1..=MAX_FILTER_TERMS + 40)) {
        let e = parse_filter(&f.to_string()).expect_err("more terms than the limit");
        prop_assert!(e.message.contains("comparisons"), "{}", e.message);
    }
}

/// Filter text in the forms clients write (not the canonical one).
fn client_filter_text() -> impl Strategy<Value = String> {
    let atom = prop_oneof![
        Just("userName eq \"Test_User_00aa00aa@contoso.com\"".to_string()),
        Just("externalId eq jyoung".to_string()),
        Just("id eq 54D382A4-2050-4C03-94D1-E769F1D15682".to_string()),
        Just("emails[type eq \"work\"].value eq \"a@b.c\"".to_string()),
        Just("emails[type eq \"work\" and primary eq True]".to_string()),
        Just(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager eq \"m\""
                .to_string()
        ),
        Just("active eq FALSE".to_string()),
        Just("meta.lastModified gt \"2011-05-13T04:42:34Z\"".to_string()),
        Just("title pr".to_string()),
        Just("x ge -1.5e3".to_string()),
    ];
    let piece = (atom, 0usize..3, any::<bool>()).prop_map(|(a, parens, not)| {
        let a = format!("{}{a}{}", "(".repeat(parens), ")".repeat(parens));
        if not {
            format!("not ({a})")
        } else {
            a
        }
    });
    (
        prop::collection::vec(piece, 1..6),
        prop::collection::vec(prop::sample::select(vec!["and", "or", "AND"]), 5),
    )
        .prop_map(|(pieces, joins)| {
            let mut s = String::new();
            for (i, p) in pieces.iter().enumerate() {
                if i > 0 {
                    s.push_str(&format!(" {} ", joins[i - 1]));
                }
                s.push_str(p);
            }
            s
        })
}

// =================================================================================================
// PATCH
// =================================================================================================

/// The attributes the PATCH properties touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Attr {
    DisplayName,
    Title,
    NickName,
    GivenName,
    WorkEmail,
    Department,
}

const ATTRS: [Attr; 6] = [
    Attr::DisplayName,
    Attr::Title,
    Attr::NickName,
    Attr::GivenName,
    Attr::WorkEmail,
    Attr::Department,
];

impl Attr {
    /// Ways a client writes the path (Entra capitalises sub-attributes: `.Value`).
    fn paths(self) -> &'static [&'static str] {
        match self {
            Attr::DisplayName => &[
                "displayName",
                "DisplayName",
                "urn:ietf:params:scim:schemas:core:2.0:User:displayName",
            ],
            Attr::Title => &["title", "TITLE"],
            Attr::NickName => &["nickName", "nickname"],
            Attr::GivenName => &[
                "name.givenName",
                "name.GivenName",
                "urn:ietf:params:scim:schemas:core:2.0:User:name.givenName",
            ],
            Attr::WorkEmail => &[
                "emails[type eq \"work\"].value",
                "emails[type eq \"work\"].Value",
                "Emails[Type eq \"work\"].value",
            ],
            Attr::Department => &[
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:Department",
            ],
        }
    }

    /// The strings stored at this attribute in `res` (a work email: the `value` of every work element).
    fn read(self, res: &Map<String, Value>) -> Vec<Value> {
        let at = |v: Option<&Value>| v.cloned().into_iter().collect::<Vec<_>>();
        match self {
            Attr::DisplayName => at(res.get("displayName")),
            Attr::Title => at(res.get("title")),
            Attr::NickName => at(res.get("nickName")),
            Attr::GivenName => at(res.get("name").and_then(|n| n.get("givenName"))),
            Attr::Department => at(res.get(ENT).and_then(|e| e.get("department"))),
            Attr::WorkEmail => res
                .get("emails")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|e| {
                    e.get("type")
                        .and_then(Value::as_str)
                        .is_some_and(|t| t.eq_ignore_ascii_case("work"))
                })
                .filter_map(|e| e.get("value").cloned())
                .collect(),
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// add or replace, `op` as written (any case), value non-empty or "".
    Write {
        op: &'static str,
        attr: Attr,
        path: &'static str,
        value: String,
        pathless: bool,
    },
    Remove {
        op: &'static str,
        attr: Attr,
        path: &'static str,
    },
}

impl Op {
    fn attr(&self) -> Attr {
        match self {
            Op::Write { attr, .. } | Op::Remove { attr, .. } => *attr,
        }
    }

    fn to_json(&self) -> Value {
        match self {
            Op::Write {
                op,
                path,
                value,
                pathless: true,
                ..
            } => json!({"op": op, "value": {*path: value}}),
            Op::Write {
                op, path, value, ..
            } => json!({"op": op, "path": path, "value": value}),
            Op::Remove { op, path, .. } => json!({"op": op, "path": path}),
        }
    }

    /// What the attribute holds after this op: the value, or nothing (remove; "" clears, dialect §1.4 (h)).
    fn expected(&self) -> Option<String> {
        match self {
            Op::Write { value, .. } if !value.is_empty() => Some(value.clone()),
            _ => None,
        }
    }
}

fn patch_op() -> impl Strategy<Value = Op> {
    let attr = prop::sample::select(ATTRS.to_vec());
    let value = prop_oneof![
        6 => r#"[a-zA-Z0-9 "'\\()\[\].:@&,é€😀-]{1,20}"#,
        1 => Just(String::new()),
        1 => prop::sample::select(vec!["true", "False", "null", " ", "0", "Retail", "updatedEmail@microsoft.com"]).prop_map(str::to_string),
        1 => any::<String>(),
    ];
    (
        attr,
        any::<prop::sample::Index>(),
        0u8..3,
        value,
        any::<bool>(),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(attr, path_ix, kind, value, pathless, case_ix)| {
            let path = *path_ix.get(attr.paths());
            match kind {
                0 => Op::Write {
                    op: ["add", "Add", "ADD"][case_ix.index(3)],
                    attr,
                    path,
                    value,
                    pathless,
                },
                1 => Op::Write {
                    op: ["replace", "Replace", "REPLACE"][case_ix.index(3)],
                    attr,
                    path,
                    value,
                    pathless,
                },
                _ => Op::Remove {
                    op: ["remove", "Remove"][case_ix.index(2)],
                    attr,
                    path,
                },
            }
        })
}

/// Users to start from: full, minimal, without a work email, with two work emails, with an empty extension.
fn start_user() -> impl Strategy<Value = Map<String, Value>> {
    let full = json!({
        "userName": "Test_User_ab6490ee@contoso.com",
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "active": true,
        "displayName": "Test User",
        "title": "Engineer",
        "nickName": "Babs",
        "name": {"givenName": "Test", "familyName": "User", "formatted": "Test User"},
        "emails": [{"value": "test.user@contoso.com", "type": "work", "primary": true}],
        ENT: {"department": "Sales", "employeeNumber": "1001", "manager": {"value": "mgr-1"}}
    });
    let minimal = json!({"userName": "min@contoso.com"});
    let no_work = json!({
        "userName": "nowork@contoso.com",
        "name": {"givenName": "Only"},
        "emails": [{"value": "home@example.org", "type": "other"}],
        ENT: {"department": "D"}
    });
    let two_work = json!({
        "userName": "two@contoso.com",
        "emails": [{"value": "a@x.org", "type": "work", "primary": true}, {"value": "b@x.org", "type": "Work"}, {"value": "c@x.org", "type": "home"}]
    });
    prop::sample::select(vec![full, minimal, no_work, two_work]).prop_map(|v| match v {
        Value::Object(m) => m,
        _ => unreachable!(),
    })
}

fn envelope(ops: Vec<Value>) -> Value {
    json!({"schemas": [PATCH_OP], "Operations": ops})
}

/// parse_ops + apply + validate, as `service::patch` chains them.
fn patch_and_validate(
    res: &mut Map<String, Value>,
    body: &Value,
    rt: &ResourceType,
) -> Result<(), String> {
    let ops = patch::parse_ops(body, rt).map_err(|e| format!("parse_ops: {e:?}"))?;
    patch::apply(res, &ops, rt).map_err(|e| format!("apply: {e:?}"))?;
    model::validate(res, rt).map_err(|e| format!("validate: {e:?}"))
}

/// Ops that `parse_ops` accepts but `apply` refuses (read-only targets, missing values, wrong shapes,
/// value filters that match nothing and cannot create an element).
fn failing_op() -> impl Strategy<Value = Value> {
    prop::sample::select(vec![
        json!({"op": "replace", "path": "id", "value": "x"}),
        json!({"op": "Add", "path": "meta.lastModified", "value": "2020-01-01T00:00:00Z"}),
        json!({"op": "replace", "path": "groups", "value": [{"value": "g1"}]}),
        json!({"op": "replace", "path": "name", "value": "just a string"}),
        json!({"op": "add", "path": "title"}),
        json!({"op": "remove"}),
        json!({"op": "add", "path": "emails[type sw \"zzz\"].value", "value": "x@y.z"}),
        json!({"op": "replace", "path": "emails[type eq \"work\"]", "value": "not an object"}),
        json!({"op": "add", "value": "not an object"}),
        json!({"op": "replace", "path": format!("{ENT}:manager.displayName"), "value": "Boss"}),
    ])
}

/// Any JSON value, small.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        prop::num::f64::NORMAL.prop_map(|f| json!(f)),
        string_value().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        "[a-zA-Z$.:]{0,8}",
                        prop::sample::select(vec![
                            "value",
                            "Value",
                            "type",
                            "primary",
                            "givenName",
                            ENT
                        ])
                        .prop_map(str::to_string)
                    ],
                    inner
                ),
                0..4
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(config(1500))]

    /// After any sequence of add/replace/remove on the six attributes, each touched attribute holds
    /// what the LAST operation on it said (add/replace → the value, remove or "" → absent); untouched
    /// ones and everything else are unchanged; validate accepts the result.
    #[test]
    fn last_operation_on_a_path_wins(start in start_user(), ops in prop::collection::vec(patch_op(), 1..12)) {
        let rt = user_resource_type();
        let mut res = start.clone();
        let body = envelope(ops.iter().map(Op::to_json).collect());
        patch_and_validate(&mut res, &body, rt).map_err(|e| TestCaseError::fail(format!("{e}\nbody: {body}")))?;
        for attr in ATTRS {
            let last = ops.iter().rev().find(|o| o.attr() == attr);
            let got = attr.read(&res);
            match last {
                None => prop_assert_eq!(got, attr.read(&start), "{:?} untouched but changed\nbody: {}", attr, body),
                Some(op) => match op.expected() {
                    Some(v) => {
                        prop_assert!(!got.is_empty(), "{:?}: expected {:?}, found nothing\nbody: {}\nresult: {:?}", attr, v, body, res);
                        for g in &got {
                            prop_assert_eq!(g, &Value::String(v.clone()), "{:?}\nbody: {}\nresult: {:?}", attr, body, res);
                        }
                    }
                    None => prop_assert!(got.is_empty(), "{:?}: expected absent, found {:?}\nbody: {}\nresult: {:?}", attr, got, body, res),
                },
            }
        }
        for key in ["userName", "externalId", "active"] {
            prop_assert_eq!(res.get(key), start.get(key), "{} changed\nbody: {}", key, body);
        }
        let other_ext = |m: &Map<String, Value>| m.get(ENT).and_then(Value::as_object).map(|e| {
            e.iter().filter(|(k, _)| k.as_str() != "department").map(|(k, v)| (k.clone(), v.clone())).collect::<Vec<_>>()
        }).unwrap_or_default();
        prop_assert_eq!(other_ext(&res), other_ext(&start), "other enterprise attributes changed\nbody: {}", body);
    }

    /// An operation list with one operation that fails leaves the resource exactly as it was.
    #[test]
    fn failing_op_list_changes_nothing(
        start in start_user(),
        ops in prop::collection::vec(patch_op(), 0..8),
        bad in failing_op(),
        at in any::<prop::sample::Index>(),
    ) {
        let rt = user_resource_type();
        let mut list: Vec<Value> = ops.iter().map(Op::to_json).collect();
        let i = at.index(list.len() + 1);
        list.insert(i, bad);
        let body = envelope(list);
        let parsed = patch::parse_ops(&body, rt).map_err(|e| TestCaseError::fail(format!("parse_ops refused {body}: {e:?}")))?;
        let mut res = start.clone();
        prop_assert!(patch::apply(&mut res, &parsed, rt).is_err(), "apply accepted {}", body);
        prop_assert_eq!(res, start);
    }

    /// Arbitrary values (any JSON type) at the six paths and at odd paths never panic, on a user and a group.
    #[test]
    fn arbitrary_values_never_panic(
        start in start_user(),
        ops in prop::collection::vec(
            (prop::sample::select(vec!["add", "replace", "remove", "Add"]),
             prop::option::of(prop_oneof![
                 prop::sample::select(ATTRS.iter().flat_map(|a| a.paths().iter().copied()).collect::<Vec<_>>()).prop_map(str::to_string),
                 prop::sample::select(vec!["members", "members[value eq \"u1\"]", "emails", "name", ENT, "manager",
                     "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "active", "roles", "addresses[type eq \"work\"].formatted",
                     "schemas", "userName", "displayName", "externalId", "phoneNumbers[type eq \"mobile\"]"]).prop_map(str::to_string),
             ]),
             prop::option::of(any_json())),
            1..6),
    ) {
        let list: Vec<Value> = ops.into_iter().map(|(op, path, value)| {
            let mut m = Map::new();
            m.insert("op".into(), json!(op));
            if let Some(p) = path { m.insert("path".into(), json!(p)); }
            if let Some(v) = value { m.insert("value".into(), v); }
            Value::Object(m)
        }).collect();
        let body = envelope(list);
        let mut user = start.clone();
        let _ = patch_and_validate(&mut user, &body, user_resource_type());
        let Value::Object(mut group) = json!({"displayName": "G", "members": [{"value": "u1"}, {"value": "u2"}]}) else { unreachable!() };
        let _ = patch_and_validate(&mut group, &body, group_resource_type());
    }
}

// =================================================================================================
// Regression tests for fuzzing findings (docs/fuzzing.md, "Findings")
// =================================================================================================

/// F1 (filter_parse): a number literal that serde_json reads as an f64 prints (`Display`) as a shortest
/// decimal that serde_json then reads as a different f64, so `Display → parse_filter` changes the AST.
/// Cause: serde_json's default float parser is not correctly rounded (its `float_roundtrip` feature
/// is off); 24626444662244446446 is read as 2.4626444662244442e19 instead of 2.4626444662244446e19,
/// and "2.4626444662244442e+19" is read back as 2.462644466224444e19. Fixed by enabling
/// `serde_json/float_roundtrip` (workspace Cargo.toml).
#[test]
fn regression_f1_large_integer_literal_round_trips() {
    for text in [
        "i eq 24626444662244446446",
        "x ge -1888888888889.88888097",
        "x ge -18880008888880002978e-297",
        "id eq 5 and mer eq 28222222222222222222222222222222222222222222222222222222222222222222222222222222222224646",
    ] {
        let f = parse_filter(text).expect("parses");
        let shown = f.to_string();
        assert_eq!(parse_filter(&shown).expect("Display form parses"), f, "{text:?} → {shown:?}");
    }
}

/// F1 again, found by patch_path: the same number problem inside a PATCH path's value filter.
#[test]
fn regression_f1_number_in_patch_path_round_trips() {
    let text = "p[pype eq 133399999999919999999].v93";
    let path = parse_path(text).expect("parses");
    let shown = path.to_string();
    assert_eq!(
        parse_path(&shown).expect("Display form parses"),
        path,
        "{text:?} → {shown:?}"
    );
}

proptest! {
    #![proptest_config(config(2000))]

    /// F1 as a property: any JSON number in a filter survives Display → parse.
    #[test]
    fn regression_f1_any_number_round_trips(n in any_number(), op in prop::sample::select(vec![CompareOp::Eq, CompareOp::Gt])) {
        let f = Filter::Compare { path: AttrPath { urn: None, name: "x".into(), sub: None }, op, value: CompValue::Num(n) };
        round_trips(&f)?;
    }
}

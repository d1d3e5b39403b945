//! The parser: SCIM filters (RFC 7644 §3.4.2.2), PATCH paths (§3.5.2) and plain attribute paths, by
//! recursive descent over a character-indexed tokenizer, into the AST of `filter`. Errors name the
//! character position; nesting depth and the number of comparisons are bounded before any recursion.
//!
//! Imports the AST from `filter` and `crate::error` (to turn a [`FilterError`] into a SCIM error).

use super::{op_name, AttrPath, CompValue, CompareOp, Filter, PatchPath};
use serde_json::Value;

/// Deepest nesting of parentheses, `not ( )` and value-path brackets accepted. `and`/`or` chains are parsed
/// in a loop, not by recursion; their length is bounded by [`MAX_FILTER_TERMS`] instead.
pub const MAX_FILTER_DEPTH: usize = 32;
/// Most comparisons one filter may hold (bounds the length of `and`/`or` chains, hence the AST's depth).
pub const MAX_FILTER_TERMS: usize = 256;

/// A filter or path that could not be parsed, with a message a person can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    pub message: String,
}

impl std::fmt::Display for FilterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for FilterError {}

impl From<FilterError> for crate::error::ScimError {
    fn from(e: FilterError) -> Self {
        crate::error::ScimError::invalid_filter(format!("Invalid filter: {}", e.message))
    }
}

fn err<T>(message: impl Into<String>) -> Result<T, FilterError> {
    Err(FilterError {
        message: message.into(),
    })
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LParen,
    RParen,
    LBracket,
    RBracket,
    Str(String),
    Word(String),
}

impl Tok {
    /// The token as an error message names it.
    fn describe(&self) -> String {
        match self {
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
            Tok::LBracket => "'['".into(),
            Tok::RBracket => "']'".into(),
            Tok::Str(s) => format!(
                "the string {}",
                excerpt(&Value::String(s.clone()).to_string())
            ),
            Tok::Word(w) => format!("'{}'", excerpt(w)),
        }
    }
}

/// At most 40 characters of `s`, for error messages (cut on a character boundary).
fn excerpt(s: &str) -> String {
    const MAX: usize = 40;
    let mut out: String = s.chars().take(MAX).collect();
    if s.chars().nth(MAX).is_some() {
        out.push('…');
    }
    out
}

/// Split into tokens, each with its character position (1-based, for messages).
fn tokenize(input: &str) -> Result<Vec<(Tok, usize)>, FilterError> {
    let chars: Vec<char> = input.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let pos = i + 1;
        match c {
            c if c.is_whitespace() => i += 1,
            '(' | ')' | '[' | ']' => {
                out.push((
                    match c {
                        '(' => Tok::LParen,
                        ')' => Tok::RParen,
                        '[' => Tok::LBracket,
                        _ => Tok::RBracket,
                    },
                    pos,
                ));
                i += 1;
            }
            '"' => {
                // A JSON string: find the closing quote, honouring backslash escapes, then let serde_json decode it.
                let start = i;
                i += 1;
                let mut closed = false;
                while i < chars.len() {
                    match chars[i] {
                        '\\' => i += 2,
                        '"' => {
                            closed = true;
                            i += 1;
                            break;
                        }
                        _ => i += 1,
                    }
                }
                if !closed {
                    return err(format!(
                        "the string starting at position {pos} is not terminated (missing closing '\"')"
                    ));
                }
                let raw: String = chars[start..i].iter().collect();
                let s: String = serde_json::from_str(&raw).map_err(|e| FilterError {
                    message: format!(
                        "the string starting at position {pos} is not a valid JSON string ({e})"
                    ),
                })?;
                out.push((Tok::Str(s), pos));
            }
            _ => {
                let start = i;
                while i < chars.len()
                    && !chars[i].is_whitespace()
                    && !matches!(chars[i], '(' | ')' | '[' | ']' | '"')
                {
                    i += 1;
                }
                out.push((Tok::Word(chars[start..i].iter().collect()), pos));
            }
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    at: usize,
    end: usize,
    terms: usize,
}

const OPS: &str = "eq, ne, co, sw, ew, gt, ge, lt, le, pr";

fn compare_op(w: &str) -> Option<CompareOp> {
    Some(match w.to_ascii_lowercase().as_str() {
        "eq" => CompareOp::Eq,
        "ne" => CompareOp::Ne,
        "co" => CompareOp::Co,
        "sw" => CompareOp::Sw,
        "ew" => CompareOp::Ew,
        "gt" => CompareOp::Gt,
        "ge" => CompareOp::Ge,
        "lt" => CompareOp::Lt,
        "le" => CompareOp::Le,
        _ => return None,
    })
}

fn is_word(t: Option<&Tok>, kw: &str) -> bool {
    matches!(t, Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
}

impl Parser {
    fn new(input: &str) -> Result<Self, FilterError> {
        let toks = tokenize(input)?;
        let end = input.chars().count() + 1;
        Ok(Parser {
            toks,
            at: 0,
            end,
            terms: 0,
        })
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at).map(|(t, _)| t)
    }

    fn pos(&self) -> usize {
        self.toks.get(self.at).map_or(self.end, |(_, p)| *p)
    }

    fn next(&mut self) -> Option<(Tok, usize)> {
        let t = self.toks.get(self.at).cloned();
        if t.is_some() {
            self.at += 1;
        }
        t
    }

    fn found(&self) -> String {
        match self.peek() {
            Some(t) => format!("{} at position {}", t.describe(), self.pos()),
            None => format!("the end of the input (position {})", self.end),
        }
    }

    fn expect(&mut self, want: &Tok, what: &str) -> Result<(), FilterError> {
        if self.peek() == Some(want) {
            self.at += 1;
            Ok(())
        } else {
            err(format!("expected {what} but found {}", self.found()))
        }
    }

    fn finish(&self) -> Result<(), FilterError> {
        match self.peek() {
            None => Ok(()),
            Some(_) => err(format!(
                "unexpected {} (expected 'and', 'or' or the end)",
                self.found()
            )),
        }
    }

    fn or(&mut self, depth: usize, in_value: bool) -> Result<Filter, FilterError> {
        let mut left = self.and(depth, in_value)?;
        while is_word(self.peek(), "or") {
            self.at += 1;
            let right = self.and(depth, in_value)?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self, depth: usize, in_value: bool) -> Result<Filter, FilterError> {
        let mut left = self.unary(depth, in_value)?;
        while is_word(self.peek(), "and") {
            self.at += 1;
            let right = self.unary(depth, in_value)?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn deeper(&self, depth: usize) -> Result<usize, FilterError> {
        if depth >= MAX_FILTER_DEPTH {
            return err(format!(
                "the filter is nested more than {MAX_FILTER_DEPTH} levels deep (at position {})",
                self.pos()
            ));
        }
        Ok(depth + 1)
    }

    fn unary(&mut self, depth: usize, in_value: bool) -> Result<Filter, FilterError> {
        if is_word(self.peek(), "not") {
            match self.toks.get(self.at + 1) {
                Some((Tok::LParen, _)) => {
                    let d = self.deeper(depth)?;
                    self.at += 2;
                    let inner = self.or(d, in_value)?;
                    self.expect(&Tok::RParen, "')' closing 'not ('")?;
                    return Ok(Filter::Not(Box::new(inner)));
                }
                // `not pr`, `not eq "x"`, `not[...]`: an attribute that happens to be called "not".
                Some((Tok::LBracket, _)) => {}
                Some((Tok::Word(w), _))
                    if w.eq_ignore_ascii_case("pr") || compare_op(w).is_some() => {}
                _ => {
                    return err(format!(
                        "expected '(' after 'not' at position {} (write: not (<filter>))",
                        self.pos()
                    ))
                }
            }
        }
        if self.peek() == Some(&Tok::LParen) {
            let d = self.deeper(depth)?;
            self.at += 1;
            let inner = self.or(d, in_value)?;
            self.expect(&Tok::RParen, "')'")?;
            return Ok(inner);
        }
        self.attr_expr(depth, in_value)
    }

    fn attr_expr(&mut self, depth: usize, in_value: bool) -> Result<Filter, FilterError> {
        self.terms += 1;
        if self.terms > MAX_FILTER_TERMS {
            return err(format!(
                "the filter has more than {MAX_FILTER_TERMS} comparisons (at position {})",
                self.pos()
            ));
        }
        let (path, pos) = match self.next() {
            // `and`/`or` where an attribute should be (`a pr and or b pr`), unless an attribute really has that name.
            Some((Tok::Word(w), pos))
                if (w.eq_ignore_ascii_case("and") || w.eq_ignore_ascii_case("or"))
                    && !matches!(self.peek(), Some(Tok::Word(op)) if op.eq_ignore_ascii_case("pr") || compare_op(op).is_some()) =>
            {
                return err(format!(
                    "expected an attribute name but found '{w}' at position {pos}"
                ));
            }
            Some((Tok::Word(w), pos)) => (parse_attr_word(&w, pos)?, pos),
            Some((t, pos)) => {
                return err(format!(
                    "expected an attribute name but found {} at position {pos}",
                    t.describe()
                ))
            }
            None => {
                return err(format!(
                    "expected an attribute name but found the end of the input (position {})",
                    self.end
                ))
            }
        };
        if self.peek() == Some(&Tok::LBracket) {
            if in_value {
                return err(format!(
                    "a value filter cannot contain another value filter (at position {})",
                    self.pos()
                ));
            }
            if path.sub.is_some() {
                return err(format!(
                    "a value filter must follow a multi-valued attribute, not a sub-attribute (at position {pos})"
                ));
            }
            let d = self.deeper(depth)?;
            self.at += 1;
            let inner = self.or(d, true)?;
            self.expect(&Tok::RBracket, "']' closing the value filter")?;
            // Entra's form: `emails[type eq "work"].value eq "x"`.
            if let Some(Tok::Word(w)) = self.peek() {
                if let Some(sub) = w.strip_prefix('.') {
                    let sub_pos = self.pos();
                    check_name(sub, w, sub_pos)?;
                    let sub = sub.to_string();
                    // `[a or b].value eq "x"` becomes `[(a or b) and value eq "x"]`: count the implied parentheses,
                    // so that the canonical (displayed) form is within the depth limit too.
                    if matches!(inner, Filter::Or(..)) {
                        self.deeper(d)?;
                    }
                    self.at += 1;
                    let sub_path = AttrPath {
                        urn: None,
                        name: sub,
                        sub: None,
                    };
                    let cond = self.comparison(sub_path)?;
                    return Ok(Filter::ValuePath {
                        path,
                        filter: Box::new(Filter::And(Box::new(inner), Box::new(cond))),
                    });
                }
            }
            return Ok(Filter::ValuePath {
                path,
                filter: Box::new(inner),
            });
        }
        self.comparison(path)
    }

    fn comparison(&mut self, path: AttrPath) -> Result<Filter, FilterError> {
        let op_pos = self.pos();
        let op = match self.next() {
            Some((Tok::Word(w), _)) if w.eq_ignore_ascii_case("pr") => {
                return Ok(Filter::Present(path))
            }
            Some((Tok::Word(w), _)) => match compare_op(&w) {
                Some(op) => op,
                None => {
                    return err(format!(
                        "'{}' at position {op_pos} is not an operator; expected one of {OPS}",
                        excerpt(&w)
                    ))
                }
            },
            _ => {
                return err(format!(
                    "expected an operator ({OPS}) after '{path}' at position {op_pos}"
                ))
            }
        };
        let found = self.found();
        let value = match self.next() {
            Some((Tok::Str(s), _)) => CompValue::Str(s),
            // co/sw/ew only apply to strings: an unquoted `externalId sw 12` means the string "12".
            Some((Tok::Word(w), _))
                if matches!(op, CompareOp::Co | CompareOp::Sw | CompareOp::Ew) =>
            {
                match word_value(&w) {
                    CompValue::Num(_) => CompValue::Str(w),
                    other => other,
                }
            }
            Some((Tok::Word(w), _)) => word_value(&w),
            _ => {
                return err(format!(
                    "expected a value after '{path} {}' but found {found}",
                    op_name(op)
                ))
            }
        };
        if matches!(
            op,
            CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le
        ) && matches!(value, CompValue::Bool(_) | CompValue::Null)
        {
            return err(format!(
                "{} cannot compare booleans or null (position {op_pos})",
                op_name(op)
            ));
        }
        if matches!(op, CompareOp::Co | CompareOp::Sw | CompareOp::Ew)
            && !matches!(value, CompValue::Str(_))
        {
            return err(format!(
                "{} needs a string value (position {op_pos})",
                op_name(op)
            ));
        }
        Ok(Filter::Compare { path, op, value })
    }
}

/// A bare word after an operator: `true`, `false`, `null`, a JSON number, or (Microsoft's docs form,
/// `externalId eq jyoung`) an unquoted string.
fn word_value(w: &str) -> CompValue {
    match w.to_ascii_lowercase().as_str() {
        "true" => return CompValue::Bool(true),
        "false" => return CompValue::Bool(false),
        "null" => return CompValue::Null,
        _ => {}
    }
    if w.starts_with(|c: char| c.is_ascii_digit() || c == '-') {
        if let Ok(n) = serde_json::from_str::<serde_json::Number>(w) {
            return CompValue::Num(n);
        }
    }
    CompValue::Str(w.to_string())
}

/// RFC 7644 `ATTRNAME` (a letter, then letters, digits, `-`, `_`), also allowing `$` (`$ref`) and a leading `_`.
/// `word` is the whole token `name` came from, for the message.
fn check_name(name: &str, word: &str, pos: usize) -> Result<(), FilterError> {
    if name.is_empty() {
        return err(format!(
            "'{}' at position {pos} is missing an attribute name (check the dots)",
            excerpt(word)
        ));
    }
    let ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '$' || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '$'));
    if ok {
        Ok(())
    } else {
        err(format!(
            "'{}' at position {pos} is not a valid attribute name (a letter followed by letters, digits, '-', '_' or '$')",
            excerpt(name)
        ))
    }
}

/// `[urn ":"] name ["." sub]`. The URN is everything before the last colon (its version `2.0` holds a dot).
fn parse_attr_word(word: &str, pos: usize) -> Result<AttrPath, FilterError> {
    let (urn, rest) = if word
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
    {
        match word.rsplit_once(':') {
            Some((u, r)) if u.len() > 4 => (Some(u.to_string()), r),
            _ => {
                return err(format!(
                    "'{}' at position {pos} is not a URN-qualified attribute name",
                    excerpt(word)
                ))
            }
        }
    } else {
        (None, word)
    };
    let mut parts = rest.split('.');
    let name = parts.next().unwrap_or_default();
    check_name(name, word, pos)?;
    let sub = parts.next();
    if let Some(s) = sub {
        check_name(s, word, pos)?;
    }
    if parts.next().is_some() {
        return err(format!(
            "'{}' at position {pos} has more than one sub-attribute level",
            excerpt(word)
        ));
    }
    Ok(AttrPath {
        urn,
        name: name.to_string(),
        sub: sub.map(str::to_string),
    })
}

/// Parse a SCIM filter (RFC 7644 §3.4.2.2) into its AST.
pub fn parse_filter(input: &str) -> Result<Filter, FilterError> {
    let mut p = Parser::new(input)?;
    if p.peek().is_none() {
        return err("the filter is empty");
    }
    let f = p.or(0, false)?;
    p.finish()?;
    Ok(f)
}

/// Parse a PATCH `path` (RFC 7644 §3.5.2): `attrPath` or `valuePath ["." subAttr]`.
///
/// Leading and trailing whitespace is ignored. For `name.familyName` the sub-attribute is in `attr.sub`; for
/// a value path `attr.sub` is None, `filter` is set and `sub_after_filter` holds the `.subAttr` after `]`.
pub fn parse_path(input: &str) -> Result<PatchPath, FilterError> {
    let mut p = Parser::new(input)?;
    let (attr, pos) = match p.next() {
        Some((Tok::Word(w), pos)) => (parse_attr_word(&w, pos)?, pos),
        Some((t, pos)) => {
            return err(format!(
                "the path must start with an attribute name, not {} (position {pos})",
                t.describe()
            ))
        }
        None => return err("the path is empty"),
    };
    if p.peek() != Some(&Tok::LBracket) {
        p.finish().map_err(|_| FilterError {
            message: format!("unexpected {} in path", p.found()),
        })?;
        return Ok(PatchPath {
            attr,
            filter: None,
            sub_after_filter: None,
        });
    }
    if attr.sub.is_some() {
        return err(format!(
            "a value filter must follow a multi-valued attribute, not a sub-attribute (position {pos})"
        ));
    }
    p.at += 1;
    let filter = p.or(1, true)?;
    p.expect(&Tok::RBracket, "']' closing the value filter")?;
    let sub_after_filter = match p.next() {
        None => None,
        Some((Tok::Word(w), wpos)) => match w.strip_prefix('.') {
            Some(sub) => {
                check_name(sub, &w, wpos)?;
                Some(sub.to_string())
            }
            None => {
                return err(format!(
                    "expected '.subAttribute' after ']' but found '{}' (position {wpos})",
                    excerpt(&w)
                ))
            }
        },
        Some((t, tpos)) => {
            return err(format!(
                "unexpected {} after ']' (position {tpos})",
                t.describe()
            ))
        }
    };
    p.finish()?;
    Ok(PatchPath {
        attr,
        filter: Some(filter),
        sub_after_filter,
    })
}

/// Parse a plain attribute path (`attributes=` / `excludedAttributes=` entries).
pub fn parse_attr_path(input: &str) -> Result<AttrPath, FilterError> {
    let word = input.trim();
    if word.is_empty() {
        return err("the attribute path is empty");
    }
    if word.contains(|c: char| c.is_whitespace() || matches!(c, '(' | ')' | '[' | ']' | '"')) {
        return err("an attribute path cannot contain spaces, brackets, parentheses or quotes");
    }
    parse_attr_word(word, 1)
}

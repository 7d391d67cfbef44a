//! The Sprig functions expression tags reach as `sprig.NAME(...)` (upstream hands expr its
//! whole Sprig function map): the commonly used string, number, list and encoding ones, with
//! Sprig's own conversions (`add` of strings parses them, an invalid number counts as 0). expr
//! calls functions by plain names, so `sprig.NAME(` is rewritten to `sprig_NAME(` outside
//! string literals; a Sprig function ferry lacks is an error naming it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use expr_lang::Error;
use regex::Regex;

use crate::expr_json::{Environment, Value};
use crate::expr_tag::{arity, go_float, go_json};

type Result<T> = std::result::Result<T, Error>;

fn fail<T>(message: impl Into<String>) -> Result<T> {
    Err(Error::ExprError(message.into()))
}

const FUNCTIONS: &[&str] = &[
    "upper",
    "lower",
    "title",
    "trim",
    "trimAll",
    "trimPrefix",
    "trimSuffix",
    "replace",
    "contains",
    "hasPrefix",
    "hasSuffix",
    "repeat",
    "substr",
    "trunc",
    "nospace",
    "quote",
    "squote",
    "cat",
    "splitList",
    "join",
    "toString",
    "b64enc",
    "b64dec",
    "regexMatch",
    "regexFind",
    "regexReplaceAll",
    "add",
    "add1",
    "sub",
    "mul",
    "div",
    "mod",
    "max",
    "min",
    "int",
    "int64",
    "float64",
    "atoi",
    "default",
    "empty",
    "coalesce",
    "ternary",
    "list",
    "first",
    "last",
    "toJson",
    "fromJson",
];

/// `sprig.upper(x)` → `sprig_upper(x)`, outside string literals.
pub fn calls_to_functions(expression: &str) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(expression.len());
    let chars: Vec<char> = expression.chars().collect();
    let mut i = 0;
    let mut quote: Option<char> = None;
    while i < chars.len() {
        let c = chars[i];
        if let Some(q) = quote {
            out.push(c);
            if c == '\\' && q != '`' {
                if let Some(next) = chars.get(i + 1) {
                    out.push(*next);
                    i += 1;
                }
            } else if c == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        if matches!(c, '\'' | '"' | '`') {
            quote = Some(c);
        }
        let starts_word = i == 0
            || !(chars[i - 1].is_alphanumeric() || matches!(chars[i - 1], '_' | '.' | '#' | '$'));
        let rest: String = chars[i..chars.len().min(i + 6)].iter().collect();
        if starts_word && rest == "sprig." {
            let name: String = chars[i + 6..]
                .iter()
                .take_while(|c| c.is_alphanumeric() || **c == '_')
                .collect();
            let after = chars[i + 6 + name.chars().count()..]
                .iter()
                .find(|c| !c.is_whitespace());
            if after == Some(&'(') {
                if !FUNCTIONS.contains(&name.as_str()) {
                    return Err(format!(
                        "sprig.{name}: not one of the Sprig functions ferry has ({})",
                        FUNCTIONS.join(", ")
                    ));
                }
                out.push_str("sprig_");
                out.push_str(&name);
                i += 6 + name.chars().count();
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    Ok(out)
}

pub fn register(environment: &mut Environment<'static>) {
    fn add(
        environment: &mut Environment<'static>,
        name: &'static str,
        f: impl Fn(&[Value]) -> Result<Value> + Send + Sync + 'static,
    ) {
        debug_assert!(FUNCTIONS.contains(&name), "{name} listed");
        environment.add_function(&format!("sprig_{name}"), move |call| f(&call.args));
    }
    let s = |f: fn(&str) -> String| move |args: &[Value]| one(args).map(|v| f(&strval(v)).into());

    add(environment, "upper", s(|v| v.to_uppercase()));
    add(environment, "lower", s(|v| v.to_lowercase()));
    add(environment, "title", s(title));
    add(environment, "trim", s(|v| v.trim().to_string()));
    add(
        environment,
        "nospace",
        s(|v| v.split_whitespace().collect()),
    );
    add(environment, "toString", s(|v| v.to_string()));
    add(environment, "b64enc", s(|v| STANDARD.encode(v)));
    add(environment, "b64dec", s(b64dec));
    add(environment, "trimAll", |args| {
        two(args).map(|(cut, v)| {
            let cut = strval(cut);
            strval(v)
                .trim_matches(|c| cut.contains(c))
                .to_string()
                .into()
        })
    });
    add(environment, "trimPrefix", |args| {
        two(args).map(|(p, v)| {
            let v = strval(v);
            v.strip_prefix(strval(p).as_str())
                .unwrap_or(&v)
                .to_string()
                .into()
        })
    });
    add(environment, "trimSuffix", |args| {
        two(args).map(|(p, v)| {
            let v = strval(v);
            v.strip_suffix(strval(p).as_str())
                .unwrap_or(&v)
                .to_string()
                .into()
        })
    });
    add(environment, "contains", |args| {
        two(args).map(|(sub, v)| strval(v).contains(strval(sub).as_str()).into())
    });
    add(environment, "hasPrefix", |args| {
        two(args).map(|(p, v)| strval(v).starts_with(strval(p).as_str()).into())
    });
    add(environment, "hasSuffix", |args| {
        two(args).map(|(p, v)| strval(v).ends_with(strval(p).as_str()).into())
    });
    add(environment, "replace", |args| match args {
        [old, new, v] => Ok(strval(v)
            .replace(strval(old).as_str(), strval(new).as_str())
            .into()),
        _ => Err(arity("sprig.replace", 3, args.len())),
    });
    add(environment, "repeat", |args| {
        let (count, v) = two(args)?;
        let count = usize::try_from(to_int64(count))
            .or_else(|_| fail("sprig.repeat: negative Repeat count"))?;
        Ok(strval(v).repeat(count).into())
    });
    add(environment, "substr", |args| match args {
        [start, end, v] => Ok(substr(to_int64(start), to_int64(end), &strval(v)).into()),
        _ => Err(arity("sprig.substr", 3, args.len())),
    });
    add(environment, "trunc", |args| {
        let (count, v) = two(args)?;
        Ok(trunc(to_int64(count), &strval(v)).into())
    });
    add(environment, "quote", |args| {
        Ok(joined(args, |v| go_quote(&strval(v))).into())
    });
    add(environment, "squote", |args| {
        Ok(joined(args, |v| format!("'{}'", strval(v))).into())
    });
    add(environment, "cat", |args| Ok(joined(args, strval).into()));
    add(environment, "splitList", |args| {
        let (sep, v) = two(args)?;
        let (sep, v) = (strval(sep), strval(v));
        Ok(Value::Array(if sep.is_empty() {
            v.chars().map(|c| c.to_string().into()).collect()
        } else {
            v.split(sep.as_str())
                .map(|p| p.to_string().into())
                .collect()
        }))
    });
    add(environment, "join", |args| {
        let (sep, list) = two(args)?;
        let items = match list {
            Value::Array(items) => items.iter().filter(|v| !v.is_nil()).map(strval).collect(),
            other => vec![strval(other)],
        };
        Ok(items.join(strval(sep).as_str()).into())
    });
    add(environment, "regexMatch", |args| {
        let (re, v) = two(args)?;
        Ok(Regex::new(&strval(re))
            .is_ok_and(|re| re.is_match(&strval(v)))
            .into())
    });
    add(environment, "regexFind", |args| {
        let (re, v) = two(args)?;
        let v = strval(v);
        Ok(regex(re)?
            .find(&v)
            .map_or("", |m| m.as_str())
            .to_string()
            .into())
    });
    add(environment, "regexReplaceAll", |args| match args {
        [re, v, replacement] => Ok(regex(re)?
            .replace_all(&strval(v), strval(replacement).as_str())
            .into_owned()
            .into()),
        _ => Err(arity("sprig.regexReplaceAll", 3, args.len())),
    });

    add(environment, "add", |args| {
        Ok(args
            .iter()
            .map(to_int64)
            .fold(0i64, i64::wrapping_add)
            .into())
    });
    add(environment, "add1", |args| {
        one(args).map(|v| to_int64(v).wrapping_add(1).into())
    });
    add(environment, "sub", |args| {
        two(args).map(|(a, b)| to_int64(a).wrapping_sub(to_int64(b)).into())
    });
    add(environment, "mul", |args| {
        Ok(args
            .iter()
            .map(to_int64)
            .fold(1i64, i64::wrapping_mul)
            .into())
    });
    add(environment, "div", |args| {
        let (a, b) = two(args)?;
        match to_int64(b) {
            0 => fail("sprig.div: integer divide by zero"),
            b => Ok(to_int64(a).wrapping_div(b).into()),
        }
    });
    add(environment, "mod", |args| {
        let (a, b) = two(args)?;
        match to_int64(b) {
            0 => fail("sprig.mod: integer divide by zero"),
            b => Ok(to_int64(a).wrapping_rem(b).into()),
        }
    });
    add(environment, "max", |args| {
        match args.iter().map(to_int64).max() {
            Some(max) => Ok(max.into()),
            None => Err(arity("sprig.max", 1, 0)),
        }
    });
    add(environment, "min", |args| {
        match args.iter().map(to_int64).min() {
            Some(min) => Ok(min.into()),
            None => Err(arity("sprig.min", 1, 0)),
        }
    });
    add(environment, "int", |args| {
        one(args).map(|v| to_int64(v).into())
    });
    add(environment, "int64", |args| {
        one(args).map(|v| to_int64(v).into())
    });
    add(environment, "float64", |args| {
        one(args).map(|v| to_float64(v).into())
    });
    add(environment, "atoi", |args| {
        one(args).map(|v| strval(v).parse::<i64>().unwrap_or(0).into())
    });

    add(environment, "default", |args| match args {
        [fallback] => Ok(fallback.clone()),
        [fallback, given, ..] if is_empty(given) => Ok(fallback.clone()),
        [_, given, ..] => Ok(given.clone()),
        [] => Err(arity("sprig.default", 1, 0)),
    });
    add(environment, "empty", |args| {
        one(args).map(|v| is_empty(v).into())
    });
    add(environment, "coalesce", |args| {
        Ok(args
            .iter()
            .find(|v| !is_empty(v))
            .cloned()
            .unwrap_or(Value::Nil))
    });
    add(environment, "ternary", |args| match args {
        [yes, no, Value::Bool(condition)] => Ok(if *condition { yes } else { no }.clone()),
        [_, _, _] => fail("sprig.ternary: the condition must be a boolean"),
        _ => Err(arity("sprig.ternary", 3, args.len())),
    });
    add(environment, "list", |args| Ok(Value::Array(args.to_vec())));
    add(environment, "first", |args| {
        one(args).and_then(|v| list(v).map(|l| l.first().cloned().unwrap_or(Value::Nil)))
    });
    add(environment, "last", |args| {
        one(args).and_then(|v| list(v).map(|l| l.last().cloned().unwrap_or(Value::Nil)))
    });
    add(environment, "toJson", |args| {
        one(args).map(|v| go_json(&crate::expr_json::to_json(v)).into())
    });
    add(environment, "fromJson", |args| {
        // Sprig ignores a parse error and gives nil.
        one(args).map(|v| {
            serde_json::from_str(&strval(v)).map_or(Value::Nil, |j| crate::expr_json::from_json(&j))
        })
    });
}

fn one(args: &[Value]) -> Result<&Value> {
    match args {
        [v] => Ok(v),
        _ => Err(arity("a sprig function", 1, args.len())),
    }
}

fn two(args: &[Value]) -> Result<(&Value, &Value)> {
    match args {
        [a, b] => Ok((a, b)),
        _ => Err(arity("a sprig function", 2, args.len())),
    }
}

fn list(value: &Value) -> Result<&[Value]> {
    match value {
        Value::Array(items) => Ok(items),
        Value::Nil => Ok(&[]),
        other => fail(format!("cannot find first on type {}", type_name(other))),
    }
}

fn regex(pattern: &Value) -> Result<Regex> {
    Regex::new(&strval(pattern)).or_else(|err| fail(format!("invalid regular expression: {err}")))
}

/// The non-nil values as text, joined by spaces (Sprig's `cat`, `quote`).
fn joined(args: &[Value], text: impl Fn(&Value) -> String) -> String {
    args.iter()
        .filter(|v| !v.is_nil())
        .map(text)
        .collect::<Vec<_>>()
        .join(" ")
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "string",
        Value::Integer(_) => "int",
        Value::Float(_) => "float64",
        Value::Bool(_) => "bool",
        Value::Map(_) => "map",
        _ => "value",
    }
}

/// Go's `fmt.Sprint` of a value, as Sprig's `strval`.
fn strval(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Nil => "<nil>".into(),
        Value::Float(f) => go_float(*f),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(strval).collect::<Vec<_>>().join(" ")
        ),
        Value::Map(fields) => {
            let mut pairs: Vec<_> = fields
                .iter()
                .map(|(k, v)| format!("{k}:{}", strval(v)))
                .collect();
            pairs.sort();
            format!("map[{}]", pairs.join(" "))
        }
        other => other.to_string(),
    }
}

/// spf13/cast's `ToInt64`: numbers truncated, booleans 1/0, strings parsed as Go integer
/// literals (`0x1f`, `017`, a `.0` tail dropped), anything else 0.
fn to_int64(value: &Value) -> i64 {
    match value {
        Value::Integer(n) => *n,
        Value::Float(f) => *f as i64,
        Value::Bool(b) => i64::from(*b),
        Value::String(s) => parse_go_int(s).unwrap_or(0),
        _ => 0,
    }
}

fn parse_go_int(text: &str) -> Option<i64> {
    let text = match text.split_once('.') {
        Some((whole, fraction)) if fraction.chars().all(|c| c == '0') => whole,
        _ => text,
    };
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let lower = digits.to_ascii_lowercase();
    let (radix, digits) = if let Some(hex) = lower.strip_prefix("0x") {
        (16, hex.to_string())
    } else if let Some(bin) = lower.strip_prefix("0b") {
        (2, bin.to_string())
    } else if let Some(oct) = lower.strip_prefix("0o") {
        (8, oct.to_string())
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_string())
    } else {
        (10, lower)
    };
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return None;
    }
    let magnitude = i64::from_str_radix(&digits, radix).ok()?;
    Some(if negative { -magnitude } else { magnitude })
}

/// spf13/cast's `ToFloat64`: strings parsed, invalid ones 0.
fn to_float64(value: &Value) -> f64 {
    match value {
        Value::Integer(n) => *n as f64,
        Value::Float(f) => *f,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::String(s) => s.parse().unwrap_or(0.0),
        _ => 0.0,
    }
}

/// Sprig's `empty`: nil, "", 0, false and empty lists or maps.
fn is_empty(value: &Value) -> bool {
    match value {
        Value::Nil => true,
        Value::String(s) => s.is_empty(),
        Value::Integer(n) => *n == 0,
        Value::Float(f) => *f == 0.0,
        Value::Bool(b) => !b,
        Value::Array(items) => items.is_empty(),
        Value::Map(fields) => fields.is_empty(),
        _ => false,
    }
}

/// Go's `strings.Title`: each letter after a separator upper-cased.
fn title(text: &str) -> String {
    let mut previous = ' ';
    text.chars()
        .map(|c| {
            let separator = !(previous.is_alphanumeric() || previous == '_');
            previous = c;
            if separator {
                c.to_uppercase().collect::<String>()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Sprig's `b64dec`: on invalid input, Go's error text instead of a value.
fn b64dec(text: &str) -> String {
    match STANDARD.decode(text) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(err) => {
            let at = match err {
                base64::DecodeError::InvalidByte(at, _)
                | base64::DecodeError::InvalidLastSymbol(at, _) => at,
                _ => text.len() / 4 * 4,
            };
            format!("illegal base64 data at input byte {at}")
        }
    }
}

/// Sprig's `substr` over the string's bytes: a negative start means 0, an end out of range
/// the end of the string.
fn substr(start: i64, end: i64, text: &str) -> String {
    let bytes = text.as_bytes();
    let len = bytes.len() as i64;
    let slice = if start < 0 {
        &bytes[..end.clamp(0, len) as usize]
    } else if end < 0 || end > len {
        &bytes[start.min(len) as usize..]
    } else {
        &bytes[start.min(end) as usize..end as usize]
    };
    String::from_utf8_lossy(slice).into_owned()
}

/// Sprig's `trunc`: the first `count` bytes, or with a negative count the last ones.
fn trunc(count: i64, text: &str) -> String {
    let len = text.len() as i64;
    let bytes = text.as_bytes();
    let slice = if count < 0 && len + count > 0 {
        &bytes[(len + count) as usize..]
    } else if count >= 0 && len > count {
        &bytes[..count as usize]
    } else {
        bytes
    };
    String::from_utf8_lossy(slice).into_owned()
}

/// Go's `%q` of a string (strconv.Quote).
fn go_quote(text: &str) -> String {
    let mut out = String::from('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use crate::expr::Scope;
    use crate::expr_tag::evaluate;

    fn eval(expression: &str) -> String {
        let scope: Scope = [(
            "inputs.parameters.name".to_string(),
            "ferry boat".to_string(),
        )]
        .into_iter()
        .collect();
        evaluate(expression, &scope).unwrap_or_else(|err| format!("ERROR {err}"))
    }

    #[test]
    fn string_functions_behave_as_sprigs() {
        assert_eq!(eval("sprig.upper(inputs.parameters.name)"), "FERRY BOAT");
        assert_eq!(eval("sprig.title(inputs.parameters.name)"), "Ferry Boat");
        assert_eq!(eval("sprig.trim('  x ')"), "x");
        assert_eq!(eval("sprig.trimAll('$', '$5.00$')"), "5.00");
        assert_eq!(eval("sprig.trimPrefix('v', 'v1.2')"), "1.2");
        assert_eq!(
            eval("sprig.replace(' ', '-', inputs.parameters.name)"),
            "ferry-boat"
        );
        assert_eq!(
            eval("sprig.contains('boat', inputs.parameters.name)"),
            "true"
        );
        assert_eq!(eval("sprig.substr(0, 5, inputs.parameters.name)"), "ferry");
        assert_eq!(eval("sprig.trunc(-4, inputs.parameters.name)"), "boat");
        assert_eq!(eval("sprig.quote('a\"b', 1)"), r#""a\"b" "1""#);
        assert_eq!(
            eval("sprig.join(',', sprig.splitList(' ', 'a b c'))"),
            "a,b,c"
        );
        assert_eq!(eval("sprig.b64dec(sprig.b64enc('hi'))"), "hi");
        assert_eq!(
            eval("sprig.b64dec('!!')"),
            "illegal base64 data at input byte 0"
        );
        assert_eq!(
            eval("sprig.regexReplaceAll('a(x*)b', '-ab-axxb-', '${1}W')"),
            "-W-xxW-"
        );
        // Not rewritten inside a string literal.
        assert_eq!(eval("'sprig.upper(x)'"), "sprig.upper(x)");
        assert!(eval("sprig.nope(1)").contains("sprig.nope: not one of the Sprig functions"));
    }

    #[test]
    fn numbers_convert_as_sprig_does() {
        assert_eq!(eval("sprig.add(1, '2', 3.9)"), "6");
        assert_eq!(eval("sprig.add('x', 1)"), "1", "an invalid number is 0");
        assert_eq!(
            eval("sprig.int('0x10') + sprig.int('010') + sprig.int('3.0')"),
            "27"
        );
        assert_eq!(eval("sprig.max(1, '7', 3)"), "7");
        assert_eq!(eval("sprig.min(4, 2) / 4"), "0.5");
        assert_eq!(eval("sprig.div(7, 2)"), "3");
        assert!(eval("sprig.div(1, 0)").contains("divide by zero"));
        assert_eq!(eval("sprig.float64('2.5') * 2"), "5");
        assert_eq!(eval("sprig.default('d', '')"), "d");
        assert_eq!(eval("sprig.default('d', 'given')"), "given");
        assert_eq!(eval("sprig.ternary('y', 'n', 2 > 1)"), "y");
        assert_eq!(eval("sprig.first(sprig.list(3, 4))"), "3");
        assert_eq!(
            eval("sprig.toJson(sprig.fromJson('{\"b\":1,\"a\":[true]}'))"),
            r#"{"a":[true],"b":1}"#
        );
    }
}

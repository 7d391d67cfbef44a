//! The Sprig functions ApplicationSet templates use most, plus Argo CD's own (`normalize`,
//! `toYaml`, `fromYaml`, `fromYamlArray`), for gtmpl. No crate provides Sprig for Rust; the
//! rest of Sprig is refused with an error naming the function (see [`super::go`]).

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use gtmpl::{Func, FuncError, Value};
use sha2::Digest;

use crate::params::sanitize_name;

pub const FUNCTIONS: &[(&str, Func)] = &[
    ("b64dec", b64dec),
    ("b64enc", b64enc),
    ("coalesce", coalesce),
    ("contains", contains),
    ("default", default),
    ("dict", dict),
    ("empty", empty),
    ("first", first),
    ("fromYaml", from_yaml),
    ("fromYamlArray", from_yaml_array),
    ("get", get),
    ("hasKey", has_key),
    ("hasPrefix", has_prefix),
    ("hasSuffix", has_suffix),
    ("join", join),
    ("last", last),
    ("list", list),
    ("lower", lower),
    ("normalize", normalize),
    ("quote", quote),
    ("regexMatch", regex_match),
    ("regexReplaceAll", regex_replace_all),
    ("replace", replace),
    ("sha1sum", sha1sum),
    ("sha256sum", sha256sum),
    ("splitList", split_list),
    ("squote", squote),
    ("substr", substr),
    ("ternary", ternary),
    ("title", title),
    ("toJson", to_json),
    ("toString", to_string),
    ("toYaml", to_yaml),
    ("trim", trim),
    ("trimPrefix", trim_prefix),
    ("trimSuffix", trim_suffix),
    ("trunc", trunc),
    ("upper", upper),
];

fn generic(message: impl Into<String>) -> FuncError {
    FuncError::Generic(message.into())
}

fn exactly<'a>(name: &str, args: &'a [Value], n: usize) -> Result<&'a [Value], FuncError> {
    if args.len() == n {
        Ok(args)
    } else {
        Err(FuncError::ExactlyXArgs(name.to_string(), n))
    }
}

/// A value as text, the way Go's `%v` prints it.
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn int(value: &Value) -> Result<i64, FuncError> {
    match value {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .ok_or_else(|| generic(format!("{n} is not an integer"))),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| generic(format!("{s:?} is not an integer"))),
        other => Err(generic(format!("{other} is not an integer"))),
    }
}

/// Sprig's `empty`: nil, false, 0, "" and empty lists and maps.
fn is_empty(value: &Value) -> bool {
    match value {
        Value::NoValue | Value::Nil => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Array(a) => a.is_empty(),
        Value::Map(m) | Value::Object(m) => m.is_empty(),
        Value::Function(_) => false,
    }
}

fn string_fn(name: &str, args: &[Value], f: impl Fn(&str) -> String) -> Result<Value, FuncError> {
    let args = exactly(name, args, 1)?;
    Ok(Value::String(f(&text(&args[0]))))
}

fn lower(args: &[Value]) -> Result<Value, FuncError> {
    string_fn("lower", args, str::to_lowercase)
}

fn upper(args: &[Value]) -> Result<Value, FuncError> {
    string_fn("upper", args, str::to_uppercase)
}

fn title(args: &[Value]) -> Result<Value, FuncError> {
    string_fn("title", args, |s| {
        let mut out = String::with_capacity(s.len());
        let mut at_word_start = true;
        for c in s.chars() {
            if at_word_start {
                out.extend(c.to_uppercase());
            } else {
                out.push(c);
            }
            at_word_start = c.is_whitespace() || c == '-' || c == '_';
        }
        out
    })
}

fn trim(args: &[Value]) -> Result<Value, FuncError> {
    string_fn("trim", args, |s| s.trim().to_string())
}

fn normalize(args: &[Value]) -> Result<Value, FuncError> {
    string_fn("normalize", args, sanitize_name)
}

fn to_string(args: &[Value]) -> Result<Value, FuncError> {
    string_fn("toString", args, str::to_string)
}

fn b64enc(args: &[Value]) -> Result<Value, FuncError> {
    string_fn("b64enc", args, |s| BASE64.encode(s))
}

fn b64dec(args: &[Value]) -> Result<Value, FuncError> {
    let args = exactly("b64dec", args, 1)?;
    let decoded = BASE64
        .decode(text(&args[0]))
        .map_err(|e| generic(format!("b64dec: {e}")))?;
    Ok(Value::String(
        String::from_utf8_lossy(&decoded).into_owned(),
    ))
}

fn sha256sum(args: &[Value]) -> Result<Value, FuncError> {
    string_fn("sha256sum", args, |s| hex::encode(sha2::Sha256::digest(s)))
}

fn sha1sum(args: &[Value]) -> Result<Value, FuncError> {
    string_fn("sha1sum", args, |s| hex::encode(sha1::Sha1::digest(s)))
}

fn quote_with(args: &[Value], quote: impl Fn(&str) -> String) -> Value {
    let quoted: Vec<_> = args
        .iter()
        .filter(|a| !matches!(a, Value::Nil | Value::NoValue))
        .map(|a| quote(&text(a)))
        .collect();
    Value::String(quoted.join(" "))
}

fn quote(args: &[Value]) -> Result<Value, FuncError> {
    // Go's %q: a double-quoted string with Go escapes, which JSON's match for printable text.
    Ok(quote_with(args, |s| {
        serde_json::to_string(s).unwrap_or_default()
    }))
}

fn squote(args: &[Value]) -> Result<Value, FuncError> {
    Ok(quote_with(args, |s| format!("'{s}'")))
}

/// `trimPrefix PREFIX S`, `hasPrefix PREFIX S`, ...: the subject comes last, for pipelines.
fn two_strings(name: &str, args: &[Value]) -> Result<(String, String), FuncError> {
    let args = exactly(name, args, 2)?;
    Ok((text(&args[0]), text(&args[1])))
}

fn trim_prefix(args: &[Value]) -> Result<Value, FuncError> {
    let (prefix, s) = two_strings("trimPrefix", args)?;
    Ok(Value::String(
        s.strip_prefix(&prefix).unwrap_or(&s).to_string(),
    ))
}

fn trim_suffix(args: &[Value]) -> Result<Value, FuncError> {
    let (suffix, s) = two_strings("trimSuffix", args)?;
    Ok(Value::String(
        s.strip_suffix(&suffix).unwrap_or(&s).to_string(),
    ))
}

fn has_prefix(args: &[Value]) -> Result<Value, FuncError> {
    let (prefix, s) = two_strings("hasPrefix", args)?;
    Ok(Value::Bool(s.starts_with(&prefix)))
}

fn has_suffix(args: &[Value]) -> Result<Value, FuncError> {
    let (suffix, s) = two_strings("hasSuffix", args)?;
    Ok(Value::Bool(s.ends_with(&suffix)))
}

fn contains(args: &[Value]) -> Result<Value, FuncError> {
    let (needle, s) = two_strings("contains", args)?;
    Ok(Value::Bool(s.contains(&needle)))
}

fn replace(args: &[Value]) -> Result<Value, FuncError> {
    let args = exactly("replace", args, 3)?;
    Ok(Value::String(
        text(&args[2]).replace(&text(&args[0]), &text(&args[1])),
    ))
}

fn regex(pattern: &str) -> Result<regex::Regex, FuncError> {
    regex::Regex::new(pattern).map_err(|e| generic(format!("invalid regular expression: {e}")))
}

fn regex_match(args: &[Value]) -> Result<Value, FuncError> {
    let (pattern, s) = two_strings("regexMatch", args)?;
    Ok(Value::Bool(regex(&pattern)?.is_match(&s)))
}

fn regex_replace_all(args: &[Value]) -> Result<Value, FuncError> {
    let args = exactly("regexReplaceAll", args, 3)?;
    let re = regex(&text(&args[0]))?;
    Ok(Value::String(
        re.replace_all(&text(&args[1]), text(&args[2]).as_str())
            .into_owned(),
    ))
}

/// Byte offsets clamped to the string, as Sprig's `substr` and `trunc` do.
fn byte_slice(s: &str, start: usize, end: usize) -> String {
    let bytes = s.as_bytes();
    let end = end.min(bytes.len());
    let start = start.min(end);
    String::from_utf8_lossy(&bytes[start..end]).into_owned()
}

fn substr(args: &[Value]) -> Result<Value, FuncError> {
    let args = exactly("substr", args, 3)?;
    let s = text(&args[2]);
    let (start, end) = (int(&args[0])?, int(&args[1])?);
    let start = usize::try_from(start).unwrap_or(0);
    let end = usize::try_from(end).unwrap_or(s.len());
    Ok(Value::String(byte_slice(&s, start, end)))
}

fn trunc(args: &[Value]) -> Result<Value, FuncError> {
    let args = exactly("trunc", args, 2)?;
    let n = int(&args[0])?;
    let s = text(&args[1]);
    let len = s.len() as i64;
    let out = if n < 0 {
        byte_slice(&s, (len + n).max(0) as usize, s.len())
    } else {
        byte_slice(&s, 0, n as usize)
    };
    Ok(Value::String(out))
}

fn default(args: &[Value]) -> Result<Value, FuncError> {
    match args {
        [fallback] => Ok(fallback.clone()),
        [fallback, given] if is_empty(given) => Ok(fallback.clone()),
        [_, given] => Ok(given.clone()),
        _ => Err(FuncError::AtLeastXArgs("default".into(), 1)),
    }
}

fn empty(args: &[Value]) -> Result<Value, FuncError> {
    let args = exactly("empty", args, 1)?;
    Ok(Value::Bool(is_empty(&args[0])))
}

fn coalesce(args: &[Value]) -> Result<Value, FuncError> {
    Ok(args
        .iter()
        .find(|a| !is_empty(a))
        .cloned()
        .unwrap_or(Value::Nil))
}

fn ternary(args: &[Value]) -> Result<Value, FuncError> {
    let args = exactly("ternary", args, 3)?;
    Ok(if is_empty(&args[2]) {
        args[1].clone()
    } else {
        args[0].clone()
    })
}

fn list(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::Array(args.to_vec()))
}

fn items(name: &str, value: &Value) -> Result<Vec<Value>, FuncError> {
    match value {
        Value::Array(items) => Ok(items.clone()),
        Value::NoValue | Value::Nil => Ok(Vec::new()),
        other => Err(generic(format!("{name}: {other} is not a list"))),
    }
}

fn first(args: &[Value]) -> Result<Value, FuncError> {
    let args = exactly("first", args, 1)?;
    Ok(items("first", &args[0])?
        .first()
        .cloned()
        .unwrap_or(Value::Nil))
}

fn last(args: &[Value]) -> Result<Value, FuncError> {
    let args = exactly("last", args, 1)?;
    Ok(items("last", &args[0])?
        .last()
        .cloned()
        .unwrap_or(Value::Nil))
}

fn join(args: &[Value]) -> Result<Value, FuncError> {
    let args = exactly("join", args, 2)?;
    let separator = text(&args[0]);
    let parts: Vec<_> = match &args[1] {
        Value::Array(items) => items.iter().map(text).collect(),
        other => vec![text(other)],
    };
    Ok(Value::String(parts.join(&separator)))
}

fn split_list(args: &[Value]) -> Result<Value, FuncError> {
    let (separator, s) = two_strings("splitList", args)?;
    Ok(Value::Array(
        s.split(separator.as_str())
            .map(|part| Value::String(part.to_string()))
            .collect(),
    ))
}

fn dict(args: &[Value]) -> Result<Value, FuncError> {
    let mut map = HashMap::new();
    for pair in args.chunks(2) {
        let value = pair.get(1).cloned().unwrap_or(Value::String(String::new()));
        map.insert(text(&pair[0]), value);
    }
    Ok(Value::Map(map))
}

fn map_of<'a>(name: &str, value: &'a Value) -> Result<&'a HashMap<String, Value>, FuncError> {
    match value {
        Value::Map(map) | Value::Object(map) => Ok(map),
        other => Err(generic(format!("{name}: {other} is not a map"))),
    }
}

fn get(args: &[Value]) -> Result<Value, FuncError> {
    let args = exactly("get", args, 2)?;
    Ok(map_of("get", &args[0])?
        .get(&text(&args[1]))
        .cloned()
        .unwrap_or(Value::String(String::new())))
}

fn has_key(args: &[Value]) -> Result<Value, FuncError> {
    let args = exactly("hasKey", args, 2)?;
    Ok(Value::Bool(
        map_of("hasKey", &args[0])?.contains_key(&text(&args[1])),
    ))
}

fn to_json(args: &[Value]) -> Result<Value, FuncError> {
    let args = exactly("toJson", args, 1)?;
    let json = serde_json::to_string(&super::go::to_json(&args[0]))
        .map_err(|e| generic(format!("toJson: {e}")))?;
    Ok(Value::String(json))
}

fn to_yaml(args: &[Value]) -> Result<Value, FuncError> {
    let args = exactly("toYaml", args, 1)?;
    let yaml = serde_yaml::to_string(&super::go::to_json(&args[0]))
        .map_err(|e| generic(format!("toYaml: {e}")))?;
    Ok(Value::String(yaml.trim_end_matches('\n').to_string()))
}

fn from_yaml(args: &[Value]) -> Result<Value, FuncError> {
    let args = exactly("fromYaml", args, 1)?;
    let parsed: serde_json::Map<String, serde_json::Value> =
        serde_yaml::from_str(&text(&args[0])).map_err(|e| generic(format!("fromYaml: {e}")))?;
    Ok(super::go::from_json(&serde_json::Value::Object(parsed)))
}

fn from_yaml_array(args: &[Value]) -> Result<Value, FuncError> {
    let args = exactly("fromYamlArray", args, 1)?;
    let parsed: Vec<serde_json::Value> = serde_yaml::from_str(&text(&args[0]))
        .map_err(|e| generic(format!("fromYamlArray: {e}")))?;
    Ok(super::go::from_json(&serde_json::Value::Array(parsed)))
}

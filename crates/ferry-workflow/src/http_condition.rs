//! An `http` template's `successCondition`. Upstream evaluates it with expr-lang over
//! `request` and `response`; ferry takes the part of that language its docs and examples use:
//! `response.statusCode`, `response.body`, `response.headers["Name"]` (a list: `[0]` is its
//! first value, empty if absent), `request.method`, `request.url`, `request.body`; strings in `"` or `'`,
//! integers, `true`/`false`; `==`, `!=`, `<`, `<=`, `>`, `>=`, `contains`, `startsWith`,
//! `endsWith`, `matches` (a regular expression), `&&`/`and`, `||`/`or`, `!`/`not` and
//! parentheses. Anything else is refused by name.

use std::collections::BTreeMap;

/// What a condition can read.
#[derive(Debug, Default)]
pub struct Exchange {
    pub method: String,
    pub url: String,
    pub request_body: String,
    pub status: i64,
    pub body: String,
    /// Response headers by name, each with its values.
    pub headers: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, PartialEq)]
enum Val {
    Str(String),
    Int(i64),
    Bool(bool),
    List(Vec<String>),
    Headers,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Int(i64),
    Op(&'static str),
}

const OPERATORS: &[&str] = &[
    "==", "!=", "<=", ">=", "&&", "||", "<", ">", "!", "(", ")", "[", "]",
];

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    'outer: while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '"' || c == '\'' {
            let mut value = String::new();
            i += 1;
            while i < chars.len() && chars[i] != c {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    i += 1;
                }
                value.push(chars[i]);
                i += 1;
            }
            if i == chars.len() {
                return Err("unterminated string".into());
            }
            i += 1;
            tokens.push(Token::Str(value));
            continue;
        }
        if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            let digits: String = chars[start..i].iter().collect();
            tokens.push(Token::Int(digits.parse().map_err(|_| "number too large")?));
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || "_.".contains(chars[i])) {
                i += 1;
            }
            tokens.push(Token::Ident(chars[start..i].iter().collect()));
            continue;
        }
        for op in OPERATORS {
            let end = i + op.len();
            if end <= chars.len() && chars[i..end].iter().collect::<String>() == *op {
                tokens.push(Token::Op(op));
                i = end;
                continue 'outer;
            }
        }
        return Err(format!("unexpected {c:?}"));
    }
    Ok(tokens)
}

struct Parser<'a> {
    tokens: Vec<Token>,
    at: usize,
    exchange: &'a Exchange,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    fn eat(&mut self, words: &[&str]) -> bool {
        let found = match self.peek() {
            Some(Token::Op(op)) => words.contains(op),
            Some(Token::Ident(word)) => words.contains(&word.as_str()),
            _ => false,
        };
        if found {
            self.at += 1;
        }
        found
    }

    fn or(&mut self) -> Result<Val, String> {
        let mut left = self.and()?;
        while self.eat(&["||", "or"]) {
            let right = self.and()?;
            left = Val::Bool(truth(&left)? || truth(&right)?);
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Val, String> {
        let mut left = self.unary()?;
        while self.eat(&["&&", "and"]) {
            let right = self.unary()?;
            left = Val::Bool(truth(&left)? && truth(&right)?);
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Val, String> {
        if self.eat(&["!", "not"]) {
            return Ok(Val::Bool(!truth(&self.unary()?)?));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Val, String> {
        let left = self.postfix()?;
        let op = match self.peek() {
            Some(Token::Op(op)) if ["==", "!=", "<", "<=", ">", ">="].contains(op) => *op,
            Some(Token::Ident(word))
                if ["contains", "startsWith", "endsWith", "matches"].contains(&word.as_str()) =>
            {
                match word.as_str() {
                    "contains" => "contains",
                    "startsWith" => "startsWith",
                    "endsWith" => "endsWith",
                    _ => "matches",
                }
            }
            _ => return Ok(left),
        };
        self.at += 1;
        let right = self.postfix()?;
        compare(op, &left, &right).map(Val::Bool)
    }

    fn postfix(&mut self) -> Result<Val, String> {
        let mut value = self.primary()?;
        while self.eat(&["["]) {
            let index = self.next();
            if !self.eat(&["]"]) {
                return Err("expected ']'".into());
            }
            value = match (value, index) {
                (Val::Headers, Some(Token::Str(name))) => Val::List(
                    self.exchange
                        .headers
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(&name))
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default(),
                ),
                // A header the response lacks reads as empty, so a condition is checkable
                // before any response.
                (Val::List(items), Some(Token::Int(i))) => Val::Str(
                    usize::try_from(i)
                        .ok()
                        .and_then(|i| items.get(i).cloned())
                        .unwrap_or_default(),
                ),
                _ => return Err("only response.headers[\"Name\"][index] can be indexed".into()),
            };
        }
        Ok(value)
    }

    fn primary(&mut self) -> Result<Val, String> {
        let exchange = self.exchange;
        match self.next() {
            Some(Token::Op("(")) => {
                let value = self.or()?;
                if !self.eat(&[")"]) {
                    return Err("expected ')'".into());
                }
                Ok(value)
            }
            Some(Token::Str(s)) => Ok(Val::Str(s)),
            Some(Token::Int(n)) => Ok(Val::Int(n)),
            Some(Token::Ident(word)) => Ok(match word.as_str() {
                "true" => Val::Bool(true),
                "false" => Val::Bool(false),
                "response.statusCode" => Val::Int(exchange.status),
                "response.body" => Val::Str(exchange.body.clone()),
                "response.headers" => Val::Headers,
                "request.method" => Val::Str(exchange.method.clone()),
                "request.url" => Val::Str(exchange.url.clone()),
                "request.body" => Val::Str(exchange.request_body.clone()),
                other => return Err(format!("unknown name {other:?}")),
            }),
            Some(Token::Op(op)) => Err(format!("unexpected {op:?}")),
            None => Err("unexpected end".into()),
        }
    }
}

fn truth(value: &Val) -> Result<bool, String> {
    match value {
        Val::Bool(b) => Ok(*b),
        other => Err(format!("expected a boolean, got {other:?}")),
    }
}

fn compare(op: &str, left: &Val, right: &Val) -> Result<bool, String> {
    use Val::{Int, List, Str};
    Ok(match (op, left, right) {
        ("==", l, r) => l == r,
        ("!=", l, r) => l != r,
        ("<", Int(l), Int(r)) => l < r,
        ("<=", Int(l), Int(r)) => l <= r,
        (">", Int(l), Int(r)) => l > r,
        (">=", Int(l), Int(r)) => l >= r,
        ("contains", Str(l), Str(r)) => l.contains(r.as_str()),
        ("contains", List(l), Str(r)) => l.contains(r),
        ("startsWith", Str(l), Str(r)) => l.starts_with(r.as_str()),
        ("endsWith", Str(l), Str(r)) => l.ends_with(r.as_str()),
        ("matches", Str(l), Str(r)) => regex::Regex::new(r)
            .map_err(|err| format!("invalid regular expression {r:?}: {err}"))?
            .is_match(l),
        (op, l, r) => return Err(format!("cannot apply {op} to {l:?} and {r:?}")),
    })
}

/// Evaluates `condition` over `exchange`; an error names what is not understood.
pub fn evaluate(condition: &str, exchange: &Exchange) -> Result<bool, String> {
    let mut parser = Parser {
        tokens: tokenize(condition)?,
        at: 0,
        exchange,
    };
    let value = parser.or()?;
    if parser.at < parser.tokens.len() {
        return Err(format!("unexpected {:?}", parser.tokens[parser.at]));
    }
    truth(&value)
}

/// Checks a condition's syntax and names without a response.
pub fn check(condition: &str) -> Result<(), String> {
    evaluate(condition, &Exchange::default()).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange() -> Exchange {
        Exchange {
            method: "GET".into(),
            url: "http://x/y".into(),
            status: 201,
            body: "hello google".into(),
            headers: BTreeMap::from([("server".into(), vec!["cloudflare".into()])]),
            ..Exchange::default()
        }
    }

    #[test]
    fn upstreams_examples() {
        let e = exchange();
        assert_eq!(evaluate("response.statusCode == 201", &e), Ok(true));
        assert_eq!(evaluate(r#"response.body contains "google""#, &e), Ok(true));
        assert_eq!(
            evaluate(r#"response.headers["Server"][0] == "cloudflare""#, &e),
            Ok(true)
        );
        assert_eq!(
            evaluate(
                "response.statusCode >= 200 && response.statusCode < 300 and not (request.method == 'POST')",
                &e
            ),
            Ok(true)
        );
        assert_eq!(
            evaluate("response.statusCode == 200 || false", &e),
            Ok(false)
        );
        assert_eq!(evaluate(r#"response.body matches "^hel+o""#, &e), Ok(true));
        assert_eq!(
            evaluate(r#"response.headers["Server"] contains "cloudflare""#, &e),
            Ok(true)
        );
        assert_eq!(evaluate(r#"request.url endsWith "/y""#, &e), Ok(true));
    }

    #[test]
    fn refusals_name_what_is_not_understood() {
        let e = exchange();
        assert!(
            evaluate("response.status == 200", &e)
                .unwrap_err()
                .contains("response.status")
        );
        assert!(evaluate("len(response.body) > 2", &e).is_err());
        assert!(
            evaluate("response.statusCode", &e)
                .unwrap_err()
                .contains("boolean")
        );
        assert!(evaluate("response.statusCode == 200 )", &e).is_err());
        assert!(evaluate(r#"response.body contains "x"#, &e).is_err());
        assert!(check("response.statusCode == 200").is_ok());
        assert!(check(r#"response.headers["Server"][0] == "cloudflare""#).is_ok());
    }
}

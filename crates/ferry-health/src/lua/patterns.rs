//! Lua 5.1's pattern functions, `string.find`, `string.match`, `string.gmatch` and
//! `string.gsub`, ported from `lstrlib.c` with their semantics (classes, sets, `%b`, `%f`,
//! captures, back-references, anchors, `gsub`'s string, table and function replacements) and
//! metered by the sandbox.
//!
//! Lua's own matcher backtracks and recurses in C, where the sandbox's hook never runs: a
//! pattern such as `string.rep("a?", 30) .. "b"` on thirty `a`s backtracks for minutes, past
//! any deadline, and a pattern of a million items overflows the thread's stack, which aborts
//! the process. Here every matching step counts against the instruction budget and the deadline,
//! recursion is bounded as in Lua 5.2 and later ("pattern too complex"), and what `gsub` builds
//! is bounded by the memory limit.
//!
//! Errors in patterns and arguments are Lua's, word for word, raised where the script called the
//! function (in a tail call, `return s:match(p)`, Lua 5.1 keeps no such position).

use std::cell::Cell;
use std::sync::Arc;

use mlua::{Function, Lua, LuaString, MultiValue, Value};

use super::sandbox::Meter;

/// Captures a pattern may have (`LUA_MAXCAPTURES`).
const MAX_CAPTURES: usize = 32;
/// Matching recursion depth (Lua 5.2's `MAXCCALLS`), one level per quantified item or capture.
const MAX_DEPTH: u32 = 200;
/// Characters that make a pattern more than a plain string (`SPECIALS`).
const SPECIALS: &[u8] = b"^$*+?.([%-";
/// Steps are charged to the meter in batches of this many.
const BATCH: u64 = 1_024;

/// The value a pattern function returns first to have its Lua wrapper raise the message that
/// follows, where the script called the function and as a string, like Lua's own errors (an
/// error raised by a Rust function reaches a script's `pcall` as userdata).
pub(crate) const RAISE: Value = Value::LightUserData(mlua::LightUserData(std::ptr::null_mut()));

/// `find`, `match`, `gmatch` and `gsub`, for the sandbox to install behind Lua wrappers that
/// raise the errors they report with [`RAISE`].
pub(crate) fn functions(lua: &Lua, meter: &Arc<Meter>) -> mlua::Result<[Function; 4]> {
    let m = Arc::clone(meter);
    let string_find = lua
        .create_function(move |lua, args: MultiValue| reported(lua, find(lua, &m, &args, true)))?;
    let m = Arc::clone(meter);
    let string_match = lua
        .create_function(move |lua, args: MultiValue| reported(lua, find(lua, &m, &args, false)))?;
    let m = Arc::clone(meter);
    let string_gmatch = lua.create_function(move |lua, args: MultiValue| {
        let iterator = gmatch(lua, &m, &args);
        reported(
            lua,
            iterator.map(|f| MultiValue::from_iter([Value::Function(f)])),
        )
    })?;
    let m = Arc::clone(meter);
    let string_gsub = lua.create_function(move |lua, args: MultiValue| {
        let replaced = gsub(lua, &m, &args);
        reported(
            lua,
            replaced.map(|(s, n)| MultiValue::from_iter([Value::String(s), Value::Integer(n)])),
        )
    })?;
    Ok([string_find, string_match, string_gmatch, string_gsub])
}

/// Why a function stopped: a Lua error for its wrapper to raise (a bad pattern or argument),
/// or an error to pass on as it is (a limit of the sandbox, an error of a replacement function).
enum Stop {
    Raise(String),
    Lua(mlua::Error),
}

impl From<mlua::Error> for Stop {
    fn from(err: mlua::Error) -> Self {
        Stop::Lua(err)
    }
}

fn raise(message: impl Into<String>) -> Stop {
    Stop::Raise(message.into())
}

/// The results, or [`RAISE`] and the message.
fn reported(lua: &Lua, result: Result<MultiValue, Stop>) -> mlua::Result<MultiValue> {
    match result {
        Ok(values) => Ok(values),
        Err(Stop::Raise(message)) => Ok(MultiValue::from_iter([
            RAISE,
            Value::String(lua.create_string(message)?),
        ])),
        Err(Stop::Lua(err)) => Err(err),
    }
}

fn bad_argument(index: usize, function: &str, message: &str) -> Stop {
    raise(format!(
        "bad argument #{} to '{function}' ({message})",
        index + 1
    ))
}

fn type_name(value: Option<&Value>) -> &'static str {
    value.map_or("no value", Value::type_name)
}

/// Argument `index` as a string (numbers are converted, as `luaL_checklstring` does).
fn string_arg(lua: &Lua, args: &MultiValue, index: usize, function: &str) -> Result<Vec<u8>, Stop> {
    let value = args.get(index);
    match value
        .map(|v| lua.coerce_string(v.clone()))
        .transpose()?
        .flatten()
    {
        Some(s) => Ok(s.as_bytes().to_vec()),
        None => Err(bad_argument(
            index,
            function,
            &format!("string expected, got {}", type_name(value)),
        )),
    }
}

/// Optional integer argument `index` (`luaL_optinteger`).
fn integer_arg(
    lua: &Lua,
    args: &MultiValue,
    index: usize,
    function: &str,
    default: i64,
) -> Result<i64, Stop> {
    let value = args.get(index);
    match value {
        None | Some(Value::Nil) => Ok(default),
        Some(v) => match lua.coerce_number(v.clone())? {
            Some(n) => Ok(n as i64),
            None => Err(bad_argument(
                index,
                function,
                &format!("number expected, got {}", type_name(value)),
            )),
        },
    }
}

fn truthy(value: Option<&Value>) -> bool {
    !matches!(value, None | Some(Value::Nil) | Some(Value::Boolean(false)))
}

/// The pattern as Lua 5.1 reads it: up to its first NUL byte.
fn until_nul(pattern: &[u8]) -> &[u8] {
    let end = pattern
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(pattern.len());
    &pattern[..end]
}

/// `^` at the start anchors the match (except in `gmatch`).
fn anchored(pattern: &[u8]) -> (bool, &[u8]) {
    match pattern.strip_prefix(b"^") {
        Some(rest) => (true, rest),
        None => (false, pattern),
    }
}

/// A 1-based (possibly negative) position as a 0-based offset into `len` bytes (`posrelat`).
fn start_offset(init: i64, len: usize) -> usize {
    let len = len as i64;
    let init = if init < 0 {
        init.saturating_add(len + 1)
    } else {
        init
    };
    (init.max(0) - 1).clamp(0, len) as usize
}

/// `string.find` (`find`) and `string.match` (`!find`).
fn find(lua: &Lua, meter: &Meter, args: &MultiValue, find: bool) -> Result<MultiValue, Stop> {
    let name = if find { "find" } else { "match" };
    let subject = string_arg(lua, args, 0, name)?;
    let full_pattern = string_arg(lua, args, 1, name)?;
    let init = start_offset(integer_arg(lua, args, 2, name, 1)?, subject.len());
    let pattern = until_nul(&full_pattern);
    if find && (truthy(args.get(3)) || !pattern.iter().any(|b| SPECIALS.contains(b))) {
        return Ok(match find_plain(meter, &subject[init..], &full_pattern)? {
            Some(at) => MultiValue::from_iter([
                Value::Integer((init + at + 1) as i64),
                Value::Integer((init + at + full_pattern.len()) as i64),
            ]),
            None => MultiValue::from_iter([Value::Nil]),
        });
    }
    let (anchor, pattern) = anchored(pattern);
    let mut matcher = Matcher::new(&subject, pattern, meter);
    let mut start = init;
    let found = loop {
        if let Some(end) = matcher.start(start)? {
            break Some((start, end));
        }
        start += 1;
        if anchor || start > subject.len() {
            break None;
        }
    };
    matcher.flush()?;
    let Some((start, end)) = found else {
        return Ok(MultiValue::from_iter([Value::Nil]));
    };
    if find {
        let mut values =
            MultiValue::from_iter([Value::Integer(start as i64 + 1), Value::Integer(end as i64)]);
        values.extend(matcher.captures(lua, None)?);
        return Ok(values);
    }
    matcher.captures(lua, Some((start, end)))
}

/// The first occurrence of `needle` in `haystack` (`lmemfind`), metered.
fn find_plain(meter: &Meter, haystack: &[u8], needle: &[u8]) -> mlua::Result<Option<usize>> {
    let Some(&first) = needle.first() else {
        return Ok(Some(0));
    };
    if needle.len() > haystack.len() {
        return Ok(None);
    }
    let cost = 1 + needle.len() as u64 / 32;
    let mut steps = 0;
    for at in 0..=haystack.len() - needle.len() {
        steps += 1;
        if haystack[at] == first {
            steps += cost;
            if haystack[at..at + needle.len()] == *needle {
                meter.charge(steps / 32)?;
                return Ok(Some(at));
            }
        }
        if steps >= 32 * BATCH {
            meter.charge(steps / 32)?;
            steps = 0;
        }
    }
    meter.charge(steps / 32)?;
    Ok(None)
}

/// `string.gmatch`: an iterator over the matches (no anchor, as in Lua 5.1).
fn gmatch(lua: &Lua, meter: &Arc<Meter>, args: &MultiValue) -> Result<Function, Stop> {
    let subject = string_arg(lua, args, 0, "gmatch")?;
    let pattern = until_nul(&string_arg(lua, args, 1, "gmatch")?).to_vec();
    let meter = Arc::clone(meter);
    let position = Cell::new(0);
    let iterator = lua.create_function(move |lua, _: MultiValue| {
        let mut matcher = Matcher::new(&subject, &pattern, &meter);
        let next = (|| {
            let mut start = position.get();
            while start <= subject.len() {
                if let Some(end) = matcher.start(start)? {
                    // An empty match moves on by one, or the next call would find it again.
                    position.set(if end == start { end + 1 } else { end });
                    matcher.flush()?;
                    return matcher.captures(lua, Some((start, end)));
                }
                start += 1;
            }
            position.set(start);
            matcher.flush()?;
            Ok(MultiValue::new())
        })();
        reported(lua, next)
    })?;
    Ok(iterator)
}

/// `string.gsub`.
fn gsub(lua: &Lua, meter: &Meter, args: &MultiValue) -> Result<(LuaString, i64), Stop> {
    let subject = string_arg(lua, args, 0, "gsub")?;
    let full_pattern = string_arg(lua, args, 1, "gsub")?;
    let replacement = args.get(2).cloned().unwrap_or(Value::Nil);
    if !matches!(
        replacement,
        Value::Integer(_)
            | Value::Number(_)
            | Value::String(_)
            | Value::Function(_)
            | Value::Table(_)
    ) {
        return Err(bad_argument(2, "gsub", "string/function/table expected"));
    }
    let max = integer_arg(lua, args, 3, "gsub", subject.len() as i64 + 1)?;
    let (anchor, pattern) = anchored(until_nul(&full_pattern));
    let mut matcher = Matcher::new(&subject, pattern, meter);
    let mut out = Vec::new();
    let mut at = 0;
    let mut count = 0;
    while count < max {
        let end = matcher.start(at)?;
        if let Some(end) = end {
            count += 1;
            matcher.replace(lua, &mut out, at, end, &replacement)?;
        }
        match end {
            Some(end) if end > at => at = end,
            _ if at < subject.len() => {
                out.push(subject[at]);
                at += 1;
            }
            _ => break,
        }
        if anchor {
            break;
        }
    }
    out.extend_from_slice(&subject[at..]);
    matcher.flush()?;
    if out.len() > meter.memory_bytes() {
        return Err(Stop::Lua(mlua::Error::MemoryError(
            "not enough memory".into(),
        )));
    }
    Ok((lua.create_string(&out)?, count))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Capture {
    Unfinished,
    Position,
    Len(usize),
}

/// One pattern matched against one subject (`MatchState`). Positions are byte offsets.
struct Matcher<'a> {
    src: &'a [u8],
    pat: &'a [u8],
    level: usize,
    captures: [(usize, Capture); MAX_CAPTURES],
    depth: u32,
    steps: u64,
    meter: &'a Meter,
}

type Step<T> = Result<T, Stop>;

impl<'a> Matcher<'a> {
    fn new(src: &'a [u8], pat: &'a [u8], meter: &'a Meter) -> Self {
        Matcher {
            src,
            pat,
            level: 0,
            captures: [(0, Capture::Unfinished); MAX_CAPTURES],
            depth: 0,
            steps: 0,
            meter,
        }
    }

    /// Matches the whole pattern at `s`: where the match ends.
    fn start(&mut self, s: usize) -> Step<Option<usize>> {
        self.level = 0;
        self.depth = 0;
        self.do_match(s, 0)
    }

    /// Charges the steps not charged yet.
    fn flush(&mut self) -> mlua::Result<()> {
        let steps = std::mem::take(&mut self.steps);
        self.meter.charge(steps)
    }

    fn tick(&mut self) -> Step<()> {
        self.steps += 1;
        if self.steps >= BATCH {
            self.flush()?;
        }
        Ok(())
    }

    /// The pattern byte at `p`, NUL past the end (where C reads the terminator).
    fn pat_at(&self, p: usize) -> u8 {
        self.pat.get(p).copied().unwrap_or(0)
    }

    fn src_at(&self, s: usize) -> u8 {
        self.src.get(s).copied().unwrap_or(0)
    }

    /// Where the single-character class at `p` ends (`classEnd`).
    fn class_end(&self, mut p: usize) -> Step<usize> {
        let c = self.pat_at(p);
        p += 1;
        match c {
            b'%' => {
                if p >= self.pat.len() {
                    return Err(raise("malformed pattern (ends with '%')"));
                }
                Ok(p + 1)
            }
            b'[' => {
                if self.pat_at(p) == b'^' {
                    p += 1;
                }
                // The first character is part of the set even if it is `]`.
                loop {
                    if p >= self.pat.len() {
                        return Err(raise("malformed pattern (missing ']')"));
                    }
                    let c = self.pat[p];
                    p += 1;
                    if c == b'%' && p < self.pat.len() {
                        p += 1;
                    }
                    if self.pat_at(p) == b']' {
                        break;
                    }
                }
                Ok(p + 1)
            }
            _ => Ok(p),
        }
    }

    fn single_match(&self, c: u8, p: usize, ep: usize) -> bool {
        match self.pat[p] {
            b'.' => true,
            b'%' => match_class(c, self.pat_at(p + 1)),
            b'[' => self.match_bracket_class(c, p, ep - 1),
            literal => literal == c,
        }
    }

    /// Whether `c` is in the set from `[` at `p` to `]` at `end`.
    fn match_bracket_class(&self, c: u8, mut p: usize, end: usize) -> bool {
        let mut included = true;
        if self.pat_at(p + 1) == b'^' {
            included = false;
            p += 1;
        }
        loop {
            p += 1;
            if p >= end {
                return !included;
            }
            if self.pat[p] == b'%' {
                p += 1;
                if match_class(c, self.pat_at(p)) {
                    return included;
                }
            } else if self.pat_at(p + 1) == b'-' && p + 2 < end {
                p += 2;
                if self.pat[p - 2] <= c && c <= self.pat[p] {
                    return included;
                }
            } else if self.pat[p] == c {
                return included;
            }
        }
    }

    fn do_match(&mut self, s: usize, p: usize) -> Step<Option<usize>> {
        if self.depth >= MAX_DEPTH {
            return Err(raise("pattern too complex"));
        }
        self.depth += 1;
        let result = self.match_here(s, p);
        self.depth -= 1;
        result
    }

    fn match_here(&mut self, mut s: usize, mut p: usize) -> Step<Option<usize>> {
        loop {
            self.tick()?;
            if p == self.pat.len() {
                return Ok(Some(s));
            }
            match (self.pat[p], self.pat_at(p + 1)) {
                (b'(', b')') => return self.start_capture(s, p + 2, Capture::Position),
                (b'(', _) => return self.start_capture(s, p + 1, Capture::Unfinished),
                (b')', _) => return self.end_capture(s, p + 1),
                (b'%', b'b') => match self.match_balance(s, p + 2)? {
                    Some(end) => {
                        s = end;
                        p += 4;
                    }
                    None => return Ok(None),
                },
                (b'%', b'f') => {
                    p += 2;
                    if self.pat_at(p) != b'[' {
                        return Err(raise("missing '[' after '%f' in pattern"));
                    }
                    let ep = self.class_end(p)?;
                    let previous = if s == 0 { 0 } else { self.src[s - 1] };
                    if self.match_bracket_class(previous, p, ep - 1)
                        || !self.match_bracket_class(self.src_at(s), p, ep - 1)
                    {
                        return Ok(None);
                    }
                    p = ep;
                }
                (b'%', digit) if digit.is_ascii_digit() => match self.match_capture(s, digit)? {
                    Some(end) => {
                        s = end;
                        p += 2;
                    }
                    None => return Ok(None),
                },
                (b'$', _) if p + 1 == self.pat.len() => {
                    return Ok((s == self.src.len()).then_some(s));
                }
                _ => {
                    let ep = self.class_end(p)?;
                    let m = s < self.src.len() && self.single_match(self.src[s], p, ep);
                    match self.pat_at(ep) {
                        b'?' => {
                            if m && let Some(end) = self.do_match(s + 1, ep + 1)? {
                                return Ok(Some(end));
                            }
                            p = ep + 1;
                        }
                        b'*' => return self.max_expand(s, p, ep),
                        b'+' if m => return self.max_expand(s + 1, p, ep),
                        b'+' => return Ok(None),
                        b'-' => return self.min_expand(s, p, ep),
                        _ if m => {
                            s += 1;
                            p = ep;
                        }
                        _ => return Ok(None),
                    }
                }
            }
        }
    }

    fn max_expand(&mut self, s: usize, p: usize, ep: usize) -> Step<Option<usize>> {
        let mut i = 0;
        while s + i < self.src.len() && self.single_match(self.src[s + i], p, ep) {
            self.tick()?;
            i += 1;
        }
        loop {
            if let Some(end) = self.do_match(s + i, ep + 1)? {
                return Ok(Some(end));
            }
            if i == 0 {
                return Ok(None);
            }
            i -= 1;
        }
    }

    fn min_expand(&mut self, mut s: usize, p: usize, ep: usize) -> Step<Option<usize>> {
        loop {
            if let Some(end) = self.do_match(s, ep + 1)? {
                return Ok(Some(end));
            }
            if s < self.src.len() && self.single_match(self.src[s], p, ep) {
                s += 1;
            } else {
                return Ok(None);
            }
        }
    }

    fn start_capture(&mut self, s: usize, p: usize, what: Capture) -> Step<Option<usize>> {
        if self.level >= MAX_CAPTURES {
            return Err(raise("too many captures"));
        }
        self.captures[self.level] = (s, what);
        self.level += 1;
        let result = self.do_match(s, p)?;
        if result.is_none() {
            self.level -= 1;
        }
        Ok(result)
    }

    fn end_capture(&mut self, s: usize, p: usize) -> Step<Option<usize>> {
        let Some(open) = (0..self.level)
            .rev()
            .find(|&l| self.captures[l].1 == Capture::Unfinished)
        else {
            return Err(raise("invalid pattern capture"));
        };
        self.captures[open].1 = Capture::Len(s - self.captures[open].0);
        let result = self.do_match(s, p)?;
        if result.is_none() {
            self.captures[open].1 = Capture::Unfinished;
        }
        Ok(result)
    }

    /// `%bxy` at `p`: a balanced run from `x` to its matching `y`.
    fn match_balance(&mut self, s: usize, p: usize) -> Step<Option<usize>> {
        if p + 1 >= self.pat.len() {
            return Err(raise("unbalanced pattern"));
        }
        let (open, close) = (self.pat[p], self.pat[p + 1]);
        if self.src_at(s) != open || s >= self.src.len() {
            return Ok(None);
        }
        let mut depth = 1;
        for at in s + 1..self.src.len() {
            self.tick()?;
            let c = self.src[at];
            if c == close {
                depth -= 1;
                if depth == 0 {
                    return Ok(Some(at + 1));
                }
            } else if c == open {
                depth += 1;
            }
        }
        Ok(None)
    }

    /// `%1`..`%9`: the text of an earlier capture again.
    fn match_capture(&mut self, s: usize, digit: u8) -> Step<Option<usize>> {
        let index = usize::from(digit).wrapping_sub(usize::from(b'1'));
        if index >= self.level || self.captures[index].1 == Capture::Unfinished {
            return Err(raise("invalid capture index"));
        }
        let (start, capture) = self.captures[index];
        let Capture::Len(len) = capture else {
            return Ok(None);
        };
        self.steps += len as u64 / 32;
        let rest = &self.src[s..];
        Ok((rest.len() >= len && rest[..len] == self.src[start..start + len]).then_some(s + len))
    }

    /// Capture `index` of the match `whole` (the match itself when the pattern has none).
    fn capture(&self, lua: &Lua, index: usize, whole: Option<(usize, usize)>) -> Step<Value> {
        if index >= self.level {
            return match whole {
                Some((s, e)) if index == 0 => {
                    Ok(Value::String(lua.create_string(&self.src[s..e])?))
                }
                _ => Err(raise("invalid capture index")),
            };
        }
        match self.captures[index] {
            (_, Capture::Unfinished) => Err(raise("unfinished capture")),
            (start, Capture::Position) => Ok(Value::Integer(start as i64 + 1)),
            (start, Capture::Len(len)) => Ok(Value::String(
                lua.create_string(&self.src[start..start + len])?,
            )),
        }
    }

    /// The captures of a match, or the match itself (`whole`) when the pattern has none.
    fn captures(&self, lua: &Lua, whole: Option<(usize, usize)>) -> Step<MultiValue> {
        let count = if self.level == 0 && whole.is_some() {
            1
        } else {
            self.level
        };
        (0..count).map(|i| self.capture(lua, i, whole)).collect()
    }

    /// Appends `gsub`'s replacement of the match `s..e`. What it adds counts as steps, and the
    /// result may not outgrow the memory limit.
    fn replace(
        &mut self,
        lua: &Lua,
        out: &mut Vec<u8>,
        s: usize,
        e: usize,
        replacement: &Value,
    ) -> Step<()> {
        let before = out.len();
        self.append_replacement(lua, out, s, e, replacement)?;
        self.steps += (out.len() - before) as u64 / 1_024;
        if out.len() > self.meter.memory_bytes() {
            return Err(Stop::Lua(mlua::Error::MemoryError(
                "not enough memory".into(),
            )));
        }
        self.tick()
    }

    /// `add_value`.
    fn append_replacement(
        &mut self,
        lua: &Lua,
        out: &mut Vec<u8>,
        s: usize,
        e: usize,
        replacement: &Value,
    ) -> Step<()> {
        let value = match replacement {
            Value::Function(f) => f.call::<Value>(self.captures(lua, Some((s, e)))?)?,
            Value::Table(t) => t.get::<Value>(self.capture(lua, 0, Some((s, e)))?)?,
            text => {
                let text = lua
                    .coerce_string(text.clone())?
                    .map(|t| t.as_bytes().to_vec());
                return self.replace_text(lua, out, s, e, &text.unwrap_or_default());
            }
        };
        match value {
            Value::Nil | Value::Boolean(false) => out.extend_from_slice(&self.src[s..e]),
            Value::String(_) | Value::Integer(_) | Value::Number(_) => {
                if let Some(text) = lua.coerce_string(value)? {
                    out.extend_from_slice(&text.as_bytes());
                }
            }
            other => {
                return Err(raise(format!(
                    "invalid replacement value (a {})",
                    other.type_name()
                )));
            }
        }
        Ok(())
    }

    /// A replacement string: `%0` is the match, `%1`..`%9` captures, `%` before anything else
    /// that character (`add_s`).
    fn replace_text(
        &mut self,
        lua: &Lua,
        out: &mut Vec<u8>,
        s: usize,
        e: usize,
        text: &[u8],
    ) -> Step<()> {
        let mut i = 0;
        while i < text.len() {
            if text[i] != b'%' {
                out.push(text[i]);
            } else {
                i += 1;
                let c = text.get(i).copied().unwrap_or(0);
                if !c.is_ascii_digit() {
                    out.push(c);
                } else if c == b'0' {
                    out.extend_from_slice(&self.src[s..e]);
                } else {
                    match self.capture(lua, usize::from(c - b'1'), Some((s, e)))? {
                        Value::Integer(position) => out.extend(position.to_string().bytes()),
                        Value::String(capture) => out.extend_from_slice(&capture.as_bytes()),
                        _ => {}
                    }
                }
            }
            i += 1;
        }
        Ok(())
    }
}

/// `%a`, `%d`, ... in the C locale, upper case for the complement; any other character stands
/// for itself (`match_class`).
fn match_class(c: u8, class: u8) -> bool {
    let result = match class.to_ascii_lowercase() {
        b'a' => c.is_ascii_alphabetic(),
        b'c' => c.is_ascii_control(),
        b'd' => c.is_ascii_digit(),
        b'l' => c.is_ascii_lowercase(),
        b'p' => c.is_ascii_punctuation(),
        b's' => matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'),
        b'u' => c.is_ascii_uppercase(),
        b'w' => c.is_ascii_alphanumeric(),
        b'x' => c.is_ascii_hexdigit(),
        b'z' => c == 0,
        _ => return class == c,
    };
    if class.is_ascii_uppercase() {
        !result
    } else {
        result
    }
}

#[cfg(test)]
mod tests {
    use mlua::Lua;

    use super::super::LuaLimits;
    use super::super::sandbox::Sandbox;

    /// Calls every pattern function on `s` and `p` (the chunk's arguments) in many ways and
    /// lists what each returned or raised, for a comparison of Lua's C functions and the port.
    const EXERCISE: &str = r##"
        local s, p = ...
        local function show(...)
          local out = {}
          for i = 1, select("#", ...) do
            local v = select(i, ...)
            out[#out + 1] = type(v) .. ":" .. tostring(v)
          end
          return table.concat(out, ",")
        end
        local lines = {}
        local function try(name, f, ...)
          lines[#lines + 1] = name .. " = " .. show(pcall(f, ...))
        end
        for _, init in ipairs({1, 2, -2, 0, 100, -100, "3", 2.7}) do
          try("find " .. init, string.find, s, p, init)
          try("match " .. init, string.match, s, p, init)
        end
        try("plain", string.find, s, p, 1, true)
        try("gmatch", function()
          local out = {}
          for a, b in string.gmatch(s, p) do
            out[#out + 1] = show(a, b)
            if #out > 40 then break end
          end
          return table.concat(out, ";")
        end)
        try("gsub %0", string.gsub, s, p, "<%0>")
        try("gsub %1", string.gsub, s, p, "[%1]")
        try("gsub %2", string.gsub, s, p, "[%2]")
        try("gsub %%", string.gsub, s, p, "%%x%")
        try("gsub n", string.gsub, s, p, "-", 2)
        try("gsub number", string.gsub, s, p, 7)
        try("gsub table", string.gsub, s, p, {hello = "HI", l = false, o = 0, [1] = "one"})
        try("gsub function", string.gsub, s, p, function(a, b)
          if a == "l" then return nil end
          return tostring(b or a) .. "!"
        end)
        try("gsub bad value", string.gsub, s, p, function() return {} end)
        try("gsub bad repl", string.gsub, s, p, true)
        try("method", function() local i, j = s:find(p) return i, j end)
        return table.concat(lines, "\n")
    "##;

    const CASES: &[(&str, &str)] = &[
        ("hello world", "o"),
        ("hello world", "o w"),
        ("hello", "l+"),
        ("hello", "l*"),
        ("hello", "l-"),
        ("hello", "l?"),
        ("hello", "^h"),
        ("hello", "^l"),
        ("hello", "o$"),
        ("hello", "l$"),
        ("hello", "^$"),
        ("", ""),
        ("", "^$"),
        ("", ".*"),
        ("abc", ""),
        ("abc", "()"),
        ("key = value, other=thing", "(%w+)%s*=%s*(%w+)"),
        ("f(a(b)c)d (x", "%b()"),
        ("f(a(b)c)d", "%b"),
        ("f(a(b)c)d", "%b("),
        ("THE (quick) fox", "%f[%a]%a+"),
        ("THE (quick) fox", "%f[%A]"),
        ("THE (quick) fox", "%fx"),
        (
            "2024-01-02T03:04:05Z",
            "(%d+)-(%d+)-(%d+)T(%d+):(%d+):(%d+)Z",
        ),
        ("hello", "()ll()"),
        ("abcabc abcab", "(abc)%1"),
        ("aa", "(a)%0"),
        ("aa", "(()a)%2"),
        ("a.b", "%."),
        ("a.b", "."),
        ("a]b", "[]]"),
        ("a-b", "[a-]"),
        ("a-b", "[-a]"),
        ("x^y", "[%^x]+"),
        ("abc", "[^a]"),
        ("abc", "[b-a]"),
        ("abc", "[a-c]+"),
        ("a%b", "[%%]"),
        ("a\0b", "%z"),
        ("a\0b", "[%z]"),
        ("aaa", "a?a?a?aaa"),
        ("hello", "%"),
        ("hello", "[a"),
        ("hello", "[]"),
        ("hello", "[^]"),
        ("hello", "%f"),
        ("hello", "(()"),
        ("hello", "(h)(e"),
        ("hello", "%1"),
        ("hello", "(h)%2"),
        ("hello)", ")"),
        ("caf\u{e9} na\u{ef}ve", "%a+"),
        ("tab\there\nnew", "%s+"),
        ("MiXeD 123 !?", "%u%l"),
        ("MiXeD 123 !?", "[%p%d]+"),
        ("\x01\x7fctl", "%c+"),
        ("deadBEEF xyz", "%x+"),
        ("a+b", "a+b"),
        ("a+b", "a%+b"),
        ("a$b", "$b"),
        ("ab", "a$b"),
        ("a\0b\0c", "b\0z"),
        ("a.b.c", "a.b"),
        ("one two  three", "%S+"),
        ("x = 1, y = 22", "(%w+) = (%d+)"),
        ("((()))", "%b()"),
        ("-- comment", "^%-%-"),
        ("end", "^(.-)$"),
        ("aaa", "^a-$"),
        ("aaab", "a-b"),
        ("ab", "(a*(.)%w(%s*))"),
        ("12345", "%d%d%d%d%d%d"),
    ];

    fn exercise(lua: &Lua, s: &str, p: &str) -> String {
        lua.load(EXERCISE)
            .set_name("=exercise")
            .call::<String>((s, p))
            .unwrap_or_else(|err| panic!("{s:?} {p:?}: {err}"))
    }

    /// The function an error line names: `... to 'gsub' (...`.
    fn function_of(line: &str) -> &str {
        line.split_once("to '")
            .and_then(|(_, rest)| rest.split_once('\''))
            .map_or("?", |(name, _)| name)
    }

    #[test]
    fn the_port_behaves_as_lua_5_1() {
        let reference = Lua::new();
        let sandbox = Sandbox::new(&LuaLimits::default()).unwrap();
        for (s, p) in CASES {
            let expected = exercise(&reference, s, p);
            let actual = exercise(&sandbox.lua, s, p);
            for (want, got) in expected.lines().zip(actual.lines()) {
                // Called through pcall, Lua's own functions do not know their name.
                let want = want.replacen("to '?'", &format!("to '{}'", function_of(got)), 1);
                assert_eq!(got, want, "subject {s:?}, pattern {p:?}");
            }
            assert_eq!(actual.lines().count(), expected.lines().count());
        }
        // Numbers are strings to the pattern functions.
        let numbers =
            "local a, b = string.find(12345, 34) return a, b, (string.gsub(3.5, '%.', ','))";
        assert_eq!(
            reference
                .load(numbers)
                .eval::<(i64, i64, String)>()
                .unwrap(),
            sandbox
                .lua
                .load(numbers)
                .eval::<(i64, i64, String)>()
                .unwrap()
        );
    }

    #[test]
    fn errors_are_raised_where_the_script_called_as_strings() {
        let sandbox = Sandbox::new(&LuaLimits::default()).unwrap();
        let script = r#"
            local ok, err = pcall(function()
              local x = string.match("x", "%")
              return x
            end)
            local ok2, err2 = pcall(string.find, "x", "(")
            return type(err) .. " " .. err .. " | " .. err2
        "#;
        assert_eq!(
            sandbox
                .lua
                .load(script)
                .set_name("=script")
                .eval::<String>()
                .unwrap(),
            "string script:3: malformed pattern (ends with '%') | unfinished capture"
        );
    }
}

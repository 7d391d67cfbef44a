//! Lua health scripts built from a grammar with `arbitrary`: every input is a syntactically
//! valid script that calls the sandbox's library functions (string patterns, `string.rep`,
//! `string.format`, `os.date`, `table.sort`, coroutines, `pcall`, metatables...) with hostile
//! arguments, loops and recursion, and returns some health table. The sandbox must stop every
//! one of them with a health (`Unknown` at worst) and never crash the process or overrun its
//! limits.

#![no_main]

use std::fmt::Write;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

/// Nesting beyond this renders as a leaf, so the renderer's recursion stays shallow.
const MAX_DEPTH: u32 = 12;

#[derive(Arbitrary, Debug)]
enum Expr {
    Nil,
    True,
    Int(i16),
    Num(Num),
    Str(Text),
    Var(Var),
    Obj(Vec<Key>),
    Bin(Box<Expr>, BinOp, Box<Expr>),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    Len(Box<Expr>),
    Call(Lib, Vec<Expr>),
    Method(Box<Expr>, StrMethod, Vec<Expr>),
    Table(Vec<(Key, Expr)>),
    Array(Vec<Expr>),
    Func(Var, Vec<Stmt>),
    Index(Box<Expr>, Box<Expr>),
    CallValue(Box<Expr>, Vec<Expr>),
}

#[derive(Arbitrary, Debug)]
enum Stmt {
    Local(Var, Expr),
    Assign(Var, Expr),
    SetField(Var, Key, Expr),
    Expr(Expr),
    If(Expr, Vec<Stmt>, Vec<Stmt>),
    For(Var, Expr, Expr, Vec<Stmt>),
    While(Expr, Vec<Stmt>),
    Repeat(Vec<Stmt>, Expr),
    Pairs(Var, Var, Expr, Vec<Stmt>, bool),
    Break,
    Return(Health),
    Pcall(Vec<Stmt>),
    Recurse(Var, Vec<Stmt>),
    SetMeta(Var, Vec<(Meta, Expr)>),
}

#[derive(Arbitrary, Debug)]
struct Health {
    status: Status,
    message: Expr,
}

#[derive(Arbitrary, Debug)]
enum Status {
    Healthy,
    Progressing,
    Degraded,
    Suspended,
    Missing,
    Unknown,
    Other(Expr),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
struct Var(u8);

#[derive(Arbitrary, Debug)]
enum Num {
    Huge,
    NegHuge,
    Nan,
    Pow31,
    Pow53,
    Frac(i16, u8),
}

#[derive(Arbitrary, Debug)]
enum Text {
    Word(Word),
    Raw(String),
    Repeated(Word, u16),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Word {
    Empty,
    Healthy,
    Degraded,
    Ready,
    True,
    Status,
    Conditions,
    Digits,
    Capture,
    Balanced,
    Frontier,
    Class,
    Optional,
    Lazy,
    Anchored,
    BackRef,
    FormatS,
    FormatQ,
    FormatF,
    FormatD,
    DateTable,
    DateUtc,
    DateC,
    Percent,
    Date,
}

impl Word {
    fn text(self) -> &'static str {
        match self {
            Word::Empty => "",
            Word::Healthy => "Healthy",
            Word::Degraded => "Degraded",
            Word::Ready => "Ready",
            Word::True => "True",
            Word::Status => "status",
            Word::Conditions => "conditions",
            Word::Digits => "%d+",
            Word::Capture => "(%w+)(.-)",
            Word::Balanced => "%b()",
            Word::Frontier => "%f[%w]%w+",
            Word::Class => "[^,%s]+",
            Word::Optional => "a?",
            Word::Lazy => ".-",
            Word::Anchored => "^(.*)$",
            Word::BackRef => "(a)%1",
            Word::FormatS => "%s",
            Word::FormatQ => "%q",
            Word::FormatF => "%5.2f",
            Word::FormatD => "%d",
            Word::DateTable => "*t",
            Word::DateUtc => "!%Y-%m-%dT%H:%M:%SZ",
            Word::DateC => "%c",
            Word::Percent => "%",
            Word::Date => "2024-01-02T03:04:05Z",
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Key {
    Status,
    Conditions,
    Type,
    Reason,
    Message,
    Phase,
    Replicas,
    Metadata,
    Name,
    Spec,
    One,
    Two,
    Zero,
}

impl Key {
    fn field(self) -> &'static str {
        match self {
            Key::Status => ".status",
            Key::Conditions => ".conditions",
            Key::Type => ".type",
            Key::Reason => ".reason",
            Key::Message => ".message",
            Key::Phase => ".phase",
            Key::Replicas => ".replicas",
            Key::Metadata => ".metadata",
            Key::Name => ".name",
            Key::Spec => ".spec",
            Key::One => "[1]",
            Key::Two => "[2]",
            Key::Zero => "[0]",
        }
    }

    /// As a table constructor key.
    fn entry(self) -> &'static str {
        match self {
            Key::One => "[1]",
            Key::Two => "[2]",
            Key::Zero => "[0]",
            other => &other.field()[1..],
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Concat,
    Eq,
    Ne,
    Lt,
    Le,
    And,
    Or,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Lib {
    Rep,
    Sub,
    Find,
    FindPlain,
    Match,
    Gmatch,
    Gsub,
    Format,
    Byte,
    Char,
    Upper,
    Reverse,
    Concat,
    Insert,
    Remove,
    Sort,
    Getn,
    Floor,
    Max,
    Fmod,
    Random,
    Time,
    Date,
    Clock,
    Difftime,
    Tostring,
    Tonumber,
    Type,
    Select,
    Unpack,
    Pcall,
    Error,
    Assert,
    Setmetatable,
    Getmetatable,
    Rawget,
    Rawequal,
    Next,
    CoCreate,
    CoResume,
    CoWrap,
    CoYield,
    CoStatus,
    Getfenv,
    Setfenv,
    Collectgarbage,
    Print,
}

impl Lib {
    fn name(self) -> &'static str {
        match self {
            Lib::Rep => "string.rep",
            Lib::Sub => "string.sub",
            Lib::Find | Lib::FindPlain => "string.find",
            Lib::Match => "string.match",
            Lib::Gmatch => "string.gmatch",
            Lib::Gsub => "string.gsub",
            Lib::Format => "string.format",
            Lib::Byte => "string.byte",
            Lib::Char => "string.char",
            Lib::Upper => "string.upper",
            Lib::Reverse => "string.reverse",
            Lib::Concat => "table.concat",
            Lib::Insert => "table.insert",
            Lib::Remove => "table.remove",
            Lib::Sort => "table.sort",
            Lib::Getn => "table.getn",
            Lib::Floor => "math.floor",
            Lib::Max => "math.max",
            Lib::Fmod => "math.fmod",
            Lib::Random => "math.random",
            Lib::Time => "os.time",
            Lib::Date => "os.date",
            Lib::Clock => "os.clock",
            Lib::Difftime => "os.difftime",
            Lib::Tostring => "tostring",
            Lib::Tonumber => "tonumber",
            Lib::Type => "type",
            Lib::Select => "select",
            Lib::Unpack => "unpack",
            Lib::Pcall => "pcall",
            Lib::Error => "error",
            Lib::Assert => "assert",
            Lib::Setmetatable => "setmetatable",
            Lib::Getmetatable => "getmetatable",
            Lib::Rawget => "rawget",
            Lib::Rawequal => "rawequal",
            Lib::Next => "next",
            Lib::CoCreate => "coroutine.create",
            Lib::CoResume => "coroutine.resume",
            Lib::CoWrap => "coroutine.wrap",
            Lib::CoYield => "coroutine.yield",
            Lib::CoStatus => "coroutine.status",
            Lib::Getfenv => "getfenv",
            Lib::Setfenv => "setfenv",
            Lib::Collectgarbage => "collectgarbage",
            Lib::Print => "print",
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum StrMethod {
    Rep,
    Sub,
    Find,
    Match,
    Gsub,
    Format,
    Len,
    Lower,
    Byte,
}

impl StrMethod {
    fn name(self) -> &'static str {
        match self {
            StrMethod::Rep => "rep",
            StrMethod::Sub => "sub",
            StrMethod::Find => "find",
            StrMethod::Match => "match",
            StrMethod::Gsub => "gsub",
            StrMethod::Format => "format",
            StrMethod::Len => "len",
            StrMethod::Lower => "lower",
            StrMethod::Byte => "byte",
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Meta {
    Index,
    NewIndex,
    Call,
    Tostring,
    Eq,
    Lt,
    Concat,
    Len,
    Add,
}

impl Meta {
    fn name(self) -> &'static str {
        match self {
            Meta::Index => "__index",
            Meta::NewIndex => "__newindex",
            Meta::Call => "__call",
            Meta::Tostring => "__tostring",
            Meta::Eq => "__eq",
            Meta::Lt => "__lt",
            Meta::Concat => "__concat",
            Meta::Len => "__len",
            Meta::Add => "__add",
        }
    }
}

/// Variables are the locals `v0`..`v5`, declared first.
const VARS: u8 = 6;

fn var(v: Var) -> String {
    format!("v{}", v.0 % VARS)
}

/// A Lua string literal of any bytes.
fn quote(out: &mut String, bytes: &[u8]) {
    out.push('"');
    for &b in bytes {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(b as char);
            }
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\{b}");
            }
        }
    }
    out.push('"');
}

struct Render {
    out: String,
}

impl Render {
    fn args(&mut self, args: &[Expr], depth: u32) {
        self.out.push('(');
        for (i, arg) in args.iter().take(5).enumerate() {
            if i > 0 {
                self.out.push_str(", ");
            }
            self.expr(arg, depth);
        }
        self.out.push(')');
    }

    fn expr(&mut self, expr: &Expr, depth: u32) {
        if depth > MAX_DEPTH {
            self.out.push_str("nil");
            return;
        }
        let d = depth + 1;
        match expr {
            Expr::Nil => self.out.push_str("nil"),
            Expr::True => self.out.push_str("true"),
            Expr::Int(n) => {
                let _ = write!(self.out, "({n})");
            }
            Expr::Num(num) => self.out.push_str(&match num {
                Num::Huge => "math.huge".to_string(),
                Num::NegHuge => "(-math.huge)".to_string(),
                Num::Nan => "(0/0)".to_string(),
                Num::Pow31 => "(2^31)".to_string(),
                Num::Pow53 => "(2^53)".to_string(),
                Num::Frac(a, b) => format!("({a}/{})", u16::from(*b) + 1),
            }),
            Expr::Str(Text::Word(w)) => quote(&mut self.out, w.text().as_bytes()),
            Expr::Str(Text::Raw(s)) => quote(&mut self.out, s.as_bytes()),
            Expr::Str(Text::Repeated(w, n)) => {
                self.out.push_str("string.rep(");
                quote(&mut self.out, w.text().as_bytes());
                let _ = write!(self.out, ", {n})");
            }
            Expr::Var(v) => self.out.push_str(&var(*v)),
            Expr::Obj(keys) => {
                self.out.push_str("obj");
                for key in keys.iter().take(6) {
                    self.out.push_str(key.field());
                }
            }
            Expr::Bin(a, op, b) => {
                self.out.push('(');
                self.expr(a, d);
                self.out.push_str(match op {
                    BinOp::Add => " + ",
                    BinOp::Sub => " - ",
                    BinOp::Mul => " * ",
                    BinOp::Div => " / ",
                    BinOp::Mod => " % ",
                    BinOp::Pow => " ^ ",
                    BinOp::Concat => " .. ",
                    BinOp::Eq => " == ",
                    BinOp::Ne => " ~= ",
                    BinOp::Lt => " < ",
                    BinOp::Le => " <= ",
                    BinOp::And => " and ",
                    BinOp::Or => " or ",
                });
                self.expr(b, d);
                self.out.push(')');
            }
            Expr::Not(e) | Expr::Neg(e) | Expr::Len(e) => {
                self.out.push_str(match expr {
                    Expr::Not(_) => "(not ",
                    Expr::Neg(_) => "(- ",
                    _ => "(# ",
                });
                self.expr(e, d);
                self.out.push(')');
            }
            Expr::Call(Lib::FindPlain, args) => {
                self.out.push_str("string.find(");
                for arg in args.iter().take(3) {
                    self.expr(arg, d);
                    self.out.push_str(", ");
                }
                self.out.push_str("1, true)");
            }
            Expr::Call(lib, args) => {
                self.out.push_str(lib.name());
                self.args(args, d);
            }
            Expr::Method(target, method, args) => {
                self.out.push('(');
                self.expr(target, d);
                let _ = write!(self.out, "):{}", method.name());
                self.args(args, d);
            }
            Expr::Table(entries) => {
                self.out.push('{');
                for (key, value) in entries.iter().take(8) {
                    let _ = write!(self.out, "{} = ", key.entry());
                    self.expr(value, d);
                    self.out.push_str(", ");
                }
                self.out.push('}');
            }
            Expr::Array(items) => {
                self.out.push('{');
                for item in items.iter().take(8) {
                    self.expr(item, d);
                    self.out.push_str(", ");
                }
                self.out.push('}');
            }
            Expr::Func(param, body) => {
                let _ = writeln!(self.out, "function({}, ...)", var(*param));
                self.block(body, d, false);
                self.out.push_str("end");
            }
            Expr::Index(target, key) => {
                self.out.push('(');
                self.expr(target, d);
                self.out.push_str(")[");
                self.expr(key, d);
                self.out.push(']');
            }
            Expr::CallValue(target, args) => {
                self.out.push('(');
                self.expr(target, d);
                self.out.push(')');
                self.args(args, d);
            }
        }
    }

    fn health(&mut self, health: &Health, depth: u32) {
        self.out.push_str("return {status = ");
        match &health.status {
            Status::Healthy => self.out.push_str("\"Healthy\""),
            Status::Progressing => self.out.push_str("\"Progressing\""),
            Status::Degraded => self.out.push_str("\"Degraded\""),
            Status::Suspended => self.out.push_str("\"Suspended\""),
            Status::Missing => self.out.push_str("\"Missing\""),
            Status::Unknown => self.out.push_str("\"Unknown\""),
            Status::Other(e) => self.expr(e, depth),
        }
        self.out.push_str(", message = ");
        self.expr(&health.message, depth);
        self.out.push('}');
    }

    fn block(&mut self, stmts: &[Stmt], depth: u32, in_loop: bool) {
        for stmt in stmts.iter().take(12) {
            self.stmt(stmt, depth, in_loop);
            self.out.push('\n');
        }
    }

    fn stmt(&mut self, stmt: &Stmt, depth: u32, in_loop: bool) {
        if depth > MAX_DEPTH {
            self.out.push_str("do end");
            return;
        }
        let d = depth + 1;
        match stmt {
            Stmt::Local(v, e) => {
                let _ = write!(self.out, "local {} = ", var(*v));
                self.expr(e, d);
            }
            Stmt::Assign(v, e) => {
                let _ = write!(self.out, "{} = ", var(*v));
                self.expr(e, d);
            }
            Stmt::SetField(v, key, e) => {
                let _ = write!(self.out, "{}{} = ", var(*v), key.field());
                self.expr(e, d);
            }
            Stmt::Expr(e) => {
                self.out.push_str("local _ = ");
                self.expr(e, d);
            }
            Stmt::If(cond, then, otherwise) => {
                self.out.push_str("if ");
                self.expr(cond, d);
                self.out.push_str(" then\n");
                self.block(then, d, in_loop);
                self.out.push_str("else\n");
                self.block(otherwise, d, in_loop);
                self.out.push_str("end");
            }
            Stmt::For(v, from, to, body) => {
                let _ = write!(self.out, "for {} = ", var(*v));
                self.expr(from, d);
                self.out.push_str(", ");
                self.expr(to, d);
                self.out.push_str(" do\n");
                self.block(body, d, true);
                self.out.push_str("end");
            }
            Stmt::While(cond, body) => {
                self.out.push_str("while ");
                self.expr(cond, d);
                self.out.push_str(" do\n");
                self.block(body, d, true);
                self.out.push_str("end");
            }
            Stmt::Repeat(body, cond) => {
                self.out.push_str("repeat\n");
                self.block(body, d, true);
                self.out.push_str("until ");
                self.expr(cond, d);
            }
            Stmt::Pairs(k, v, e, body, ipairs) => {
                let _ = write!(
                    self.out,
                    "for {}, {} in {}(",
                    var(*k),
                    var(*v),
                    if *ipairs { "ipairs" } else { "pairs" }
                );
                self.expr(e, d);
                self.out.push_str(") do\n");
                self.block(body, d, true);
                self.out.push_str("end");
            }
            Stmt::Break if in_loop => self.out.push_str("do break end"),
            Stmt::Break => self.out.push_str("do end"),
            Stmt::Return(health) => {
                self.out.push_str("do ");
                self.health(health, d);
                self.out.push_str(" end");
            }
            Stmt::Pcall(body) => {
                self.out.push_str("pcall(function()\n");
                self.block(body, d, false);
                self.out.push_str("end)");
            }
            Stmt::Recurse(v, body) => {
                // A function that calls itself: local recursion through upvalues.
                let name = var(*v);
                let _ = writeln!(self.out, "local function f{name}(n)");
                self.block(body, d, false);
                let _ = write!(self.out, "return f{name}((n or 0) + 1)\nend\nf{name}(0)");
            }
            Stmt::SetMeta(v, entries) => {
                let _ = write!(self.out, "{name} = setmetatable({{}}, {{", name = var(*v));
                for (meta, e) in entries.iter().take(6) {
                    let _ = write!(self.out, "{} = ", meta.name());
                    self.expr(e, d);
                    self.out.push_str(", ");
                }
                self.out.push_str("})");
            }
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Script {
    body: Vec<Stmt>,
    end: Health,
}

impl Script {
    fn render(&self) -> String {
        let mut render = Render { out: String::new() };
        render
            .out
            .push_str("local v0, v1, v2, v3, v4, v5 = {}, \"\", 0, obj, nil, {1, 2}\n");
        render.block(&self.body, 0, false);
        render.health(&self.end, 0);
        render.out.push('\n');
        render.out
    }
}

fuzz_target!(|script: Script| {
    let source = script.render();
    // To see the script of a reproducer: FERRY_FUZZ_PRINT=1 <binary> <reproducer>
    if std::env::var_os("FERRY_FUZZ_PRINT").is_some() {
        eprintln!("{source}");
    }
    ferry_fuzz::run_lua(&source);
});

//! YAQL's syntax, the part Orquesta workflows use: literals (numbers,
//! quoted strings, `true`, `false`, `null`), `$` and `$name`, bare words,
//! calls (`f(a, name => b)`) and method calls (`x.f(a)`), member and index
//! access, `[..]` and `{k => v}`, and the operators by YAQL's precedence:
//! `.` `[]`, unary `-` `not`, `*` `/` `mod`, `+` `-`, `<` `>` `<=` `>=`
//! `in`, `=` `!=`, `and`, `or`.
//!
//! What it must not do: evaluate. Every error names the character it is
//! at (`at` counts characters from the start of the expression).

use serde_json::Value;

#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Literal(Value),
    /// `$`: the data in hand (a workflow's context; a list's item inside
    /// `select`, `where`, ...).
    Root,
    /// `$name`.
    Var(String),
    /// A bare word (`ctx(name)`): a string.
    Word(String),
    Member(Box<Expr>, String),
    Index(Box<Expr>, Box<Expr>),
    /// `f(args)`, or `target.f(args)` (the target is the first argument).
    Call {
        name: String,
        target: Option<Box<Expr>>,
        args: Vec<Arg>,
        at: usize,
    },
    Not(Box<Expr>),
    Neg(Box<Expr>),
    Binary(Op, Box<Expr>, Box<Expr>),
    /// `a -> b`: `b` with `$` bound to `a`'s value (or, after `let(..)`,
    /// with its names bound).
    Then(Box<Expr>, Box<Expr>),
    List(Vec<Expr>),
    Dict(Vec<(Expr, Expr)>),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Arg {
    Positional(Expr),
    /// `name => value`.
    Named(String, Expr),
    /// `condition => value` (`switch`).
    Pair(Expr, Expr),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    In,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

/// A syntax error: what, and at which character.
#[derive(Clone, Debug, PartialEq)]
pub struct SyntaxError {
    pub at: usize,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Num(Value),
    Str(String),
    Ident(String),
    Dollar(Option<String>),
    Sym(&'static str),
    End,
}

struct Lexer {
    chars: Vec<char>,
    pos: usize,
}

const SYMBOLS: [&str; 20] = [
    "=>", "->", "<=", ">=", "!=", "(", ")", "[", "]", "{", "}", ",", ".", "=", "<", ">", "+", "-",
    "*", "/",
];

impl Lexer {
    fn tokens(text: &str) -> Result<Vec<(Tok, usize)>, SyntaxError> {
        let mut lx = Lexer {
            chars: text.chars().collect(),
            pos: 0,
        };
        let mut out = Vec::new();
        loop {
            while lx.peek().is_some_and(char::is_whitespace) {
                lx.pos += 1;
            }
            let at = lx.pos;
            let Some(c) = lx.peek() else {
                out.push((Tok::End, at));
                return Ok(out);
            };
            let tok = if c.is_ascii_digit() {
                lx.number()?
            } else if c == '\'' || c == '"' || c == '`' {
                lx.string(c)?
            } else if c == '$' {
                lx.pos += 1;
                let name = lx.word();
                Tok::Dollar((!name.is_empty()).then_some(name))
            } else if c.is_alphabetic() || c == '_' {
                Tok::Ident(lx.word())
            } else if let Some(sym) = SYMBOLS.iter().find(|s| lx.starts_with(s)) {
                lx.pos += sym.chars().count();
                Tok::Sym(sym)
            } else {
                return Err(SyntaxError {
                    at,
                    message: format!("unexpected character `{c}`"),
                });
            };
            out.push((tok, at));
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn starts_with(&self, s: &str) -> bool {
        s.chars()
            .enumerate()
            .all(|(i, c)| self.chars.get(self.pos + i) == Some(&c))
    }

    fn word(&mut self) -> String {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_') {
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }

    fn number(&mut self) -> Result<Tok, SyntaxError> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        let fraction = self.peek() == Some('.')
            && self
                .chars
                .get(self.pos + 1)
                .is_some_and(char::is_ascii_digit);
        if fraction {
            self.pos += 1;
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.pos += 1;
            }
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        let bad = || SyntaxError {
            at: start,
            message: format!("`{text}` is not a number"),
        };
        Ok(Tok::Num(if fraction {
            serde_json::Number::from_f64(text.parse().map_err(|_| bad())?)
                .map(Value::Number)
                .ok_or_else(bad)?
        } else {
            Value::from(text.parse::<i64>().map_err(|_| bad())?)
        }))
    }

    fn string(&mut self, quote: char) -> Result<Tok, SyntaxError> {
        let start = self.pos;
        self.pos += 1;
        let mut s = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err(SyntaxError {
                        at: start,
                        message: "a string without its closing quote".into(),
                    })
                }
                Some(c) if c == quote => {
                    self.pos += 1;
                    return Ok(Tok::Str(s));
                }
                Some('\\') => {
                    self.pos += 1;
                    let c = self.peek().ok_or_else(|| SyntaxError {
                        at: self.pos,
                        message: "a string ends in a backslash".into(),
                    })?;
                    s.push(match c {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        other => other,
                    });
                    self.pos += 1;
                }
                Some(c) => {
                    s.push(c);
                    self.pos += 1;
                }
            }
        }
    }
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    i: usize,
}

/// Parse one YAQL expression.
pub fn parse(text: &str) -> Result<Expr, SyntaxError> {
    let mut p = Parser {
        toks: Lexer::tokens(text)?,
        i: 0,
    };
    let e = p.expr(0)?;
    match p.peek() {
        Tok::End => Ok(e),
        other => Err(p.error(format!("unexpected {}", describe(other)))),
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Num(n) => format!("number {n}"),
        Tok::Str(s) => format!("string {s:?}"),
        Tok::Ident(w) => format!("`{w}`"),
        Tok::Dollar(None) => "`$`".into(),
        Tok::Dollar(Some(n)) => format!("`${n}`"),
        Tok::Sym(s) => format!("`{s}`"),
        Tok::End => "end of the expression".into(),
    }
}

/// `->`, the loosest operator.
const THEN: u8 = 1;
/// What `not` applies to: anything tighter than `and`.
const NOT: u8 = 3;

/// The binary operators and their precedence (higher binds tighter).
fn binary(t: &Tok) -> Option<(Option<Op>, u8)> {
    Some(match t {
        Tok::Sym("->") => (None, THEN),
        Tok::Ident(w) if w == "or" => (Some(Op::Or), 2),
        Tok::Ident(w) if w == "and" => (Some(Op::And), NOT),
        Tok::Sym("=") => (Some(Op::Eq), 4),
        Tok::Sym("!=") => (Some(Op::Ne), 4),
        Tok::Sym("<") => (Some(Op::Lt), 5),
        Tok::Sym(">") => (Some(Op::Gt), 5),
        Tok::Sym("<=") => (Some(Op::Le), 5),
        Tok::Sym(">=") => (Some(Op::Ge), 5),
        Tok::Ident(w) if w == "in" => (Some(Op::In), 5),
        Tok::Sym("+") => (Some(Op::Add), 6),
        Tok::Sym("-") => (Some(Op::Sub), 6),
        Tok::Sym("*") => (Some(Op::Mul), 7),
        Tok::Sym("/") => (Some(Op::Div), 7),
        Tok::Ident(w) if w == "mod" => (Some(Op::Mod), 7),
        _ => return None,
    })
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.i].0
    }

    fn at(&self) -> usize {
        self.toks[self.i].1
    }

    fn next(&mut self) -> Tok {
        let t = self.toks[self.i].0.clone();
        if t != Tok::End {
            self.i += 1;
        }
        t
    }

    fn error(&self, message: String) -> SyntaxError {
        SyntaxError {
            at: self.at(),
            message,
        }
    }

    fn expect(&mut self, sym: &'static str) -> Result<(), SyntaxError> {
        if *self.peek() == Tok::Sym(sym) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.error(format!("expected `{sym}`, found {}", describe(self.peek()))))
        }
    }

    /// Operators binding tighter than `min`, by precedence climbing.
    fn expr(&mut self, min: u8) -> Result<Expr, SyntaxError> {
        let mut left = self.unary()?;
        while let Some((op, prec)) = binary(self.peek()) {
            if prec <= min {
                break;
            }
            self.next();
            let right = self.expr(prec)?;
            left = match op {
                Some(op) => Expr::Binary(op, Box::new(left), Box::new(right)),
                None => Expr::Then(Box::new(left), Box::new(right)),
            };
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, SyntaxError> {
        match self.peek() {
            Tok::Ident(w) if w == "not" => {
                self.next();
                // `not` binds looser than comparisons: `not a = b`.
                Ok(Expr::Not(Box::new(self.expr(NOT)?)))
            }
            Tok::Sym("-") => {
                self.next();
                Ok(Expr::Neg(Box::new(self.unary()?)))
            }
            _ => self.postfix(),
        }
    }

    fn postfix(&mut self) -> Result<Expr, SyntaxError> {
        let mut e = self.primary()?;
        loop {
            match self.peek() {
                Tok::Sym(".") => {
                    self.next();
                    let at = self.at();
                    let Tok::Ident(name) = self.next() else {
                        return Err(SyntaxError {
                            at,
                            message: "expected a name after `.`".into(),
                        });
                    };
                    if *self.peek() == Tok::Sym("(") {
                        let args = self.args()?;
                        e = Expr::Call {
                            name,
                            target: Some(Box::new(e)),
                            args,
                            at,
                        };
                    } else {
                        e = Expr::Member(Box::new(e), name);
                    }
                }
                Tok::Sym("[") => {
                    self.next();
                    let index = self.expr(0)?;
                    self.expect("]")?;
                    e = Expr::Index(Box::new(e), Box::new(index));
                }
                _ => return Ok(e),
            }
        }
    }

    fn primary(&mut self) -> Result<Expr, SyntaxError> {
        let at = self.at();
        match self.next() {
            Tok::Num(n) => Ok(Expr::Literal(n)),
            Tok::Str(s) => Ok(Expr::Literal(Value::String(s))),
            Tok::Dollar(None) => Ok(Expr::Root),
            Tok::Dollar(Some(name)) => Ok(Expr::Var(name)),
            Tok::Ident(w) => match w.as_str() {
                "true" => Ok(Expr::Literal(Value::Bool(true))),
                "false" => Ok(Expr::Literal(Value::Bool(false))),
                "null" => Ok(Expr::Literal(Value::Null)),
                _ if *self.peek() == Tok::Sym("(") => Ok(Expr::Call {
                    name: w,
                    target: None,
                    args: self.args()?,
                    at,
                }),
                _ => Ok(Expr::Word(w)),
            },
            Tok::Sym("(") => {
                let e = self.expr(0)?;
                self.expect(")")?;
                Ok(e)
            }
            Tok::Sym("[") => {
                let mut items = Vec::new();
                while *self.peek() != Tok::Sym("]") {
                    items.push(self.expr(0)?);
                    if *self.peek() != Tok::Sym("]") {
                        self.expect(",")?;
                    }
                }
                self.next();
                Ok(Expr::List(items))
            }
            Tok::Sym("{") => {
                let mut pairs = Vec::new();
                while *self.peek() != Tok::Sym("}") {
                    let k = self.expr(0)?;
                    self.expect("=>")?;
                    pairs.push((k, self.expr(0)?));
                    if *self.peek() != Tok::Sym("}") {
                        self.expect(",")?;
                    }
                }
                self.next();
                Ok(Expr::Dict(pairs))
            }
            other => Err(SyntaxError {
                at,
                message: format!("unexpected {}", describe(&other)),
            }),
        }
    }

    /// `( arg, name => arg, condition => arg, ... )`.
    fn args(&mut self) -> Result<Vec<Arg>, SyntaxError> {
        self.expect("(")?;
        let mut args = Vec::new();
        while *self.peek() != Tok::Sym(")") {
            let first = self.expr(0)?;
            if *self.peek() == Tok::Sym("=>") {
                self.next();
                let value = self.expr(0)?;
                args.push(match first {
                    Expr::Word(name) => Arg::Named(name, value),
                    other => Arg::Pair(other, value),
                });
            } else {
                args.push(Arg::Positional(first));
            }
            if *self.peek() != Tok::Sym(")") {
                self.expect(",")?;
            }
        }
        self.next();
        Ok(args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(name: &str, target: Option<Expr>, args: Vec<Arg>, at: usize) -> Expr {
        Expr::Call {
            name: name.into(),
            target: target.map(Box::new),
            args,
            at,
        }
    }

    #[test]
    fn precedence_and_forms() {
        assert_eq!(
            parse("1 + 2 * 3 = 7 and not false").unwrap(),
            Expr::Binary(
                Op::And,
                Box::new(Expr::Binary(
                    Op::Eq,
                    Box::new(Expr::Binary(
                        Op::Add,
                        Box::new(Expr::Literal(json!(1))),
                        Box::new(Expr::Binary(
                            Op::Mul,
                            Box::new(Expr::Literal(json!(2))),
                            Box::new(Expr::Literal(json!(3)))
                        ))
                    )),
                    Box::new(Expr::Literal(json!(7)))
                )),
                Box::new(Expr::Not(Box::new(Expr::Literal(json!(false)))))
            )
        );
        assert_eq!(
            parse("ctx(name)").unwrap(),
            call(
                "ctx",
                None,
                vec![Arg::Positional(Expr::Word("name".into()))],
                0
            )
        );
        assert_eq!(
            parse("ctx().vm.disks[0]").unwrap(),
            Expr::Index(
                Box::new(Expr::Member(
                    Box::new(Expr::Member(
                        Box::new(call("ctx", None, vec![], 0)),
                        "vm".into()
                    )),
                    "disks".into()
                )),
                Box::new(Expr::Literal(json!(0)))
            )
        );
        assert_eq!(
            parse("$.items.select($.name)").unwrap(),
            call(
                "select",
                Some(Expr::Member(Box::new(Expr::Root), "items".into())),
                vec![Arg::Positional(Expr::Member(
                    Box::new(Expr::Root),
                    "name".into()
                ))],
                8
            )
        );
        assert_eq!(
            parse("let(x => 1) -> $x").unwrap(),
            Expr::Then(
                Box::new(call(
                    "let",
                    None,
                    vec![Arg::Named("x".into(), Expr::Literal(json!(1)))],
                    0
                )),
                Box::new(Expr::Var("x".into()))
            )
        );
        assert!(matches!(
            parse("{a => [1, 2.5, 'x']}").unwrap(),
            Expr::Dict(_)
        ));
    }

    #[test]
    fn errors_name_the_character() {
        let e = parse("ctx().x +").unwrap_err();
        assert_eq!(
            (e.at, e.message.as_str()),
            (9, "unexpected end of the expression")
        );
        let e = parse("'open").unwrap_err();
        assert_eq!(e.at, 0);
        let e = parse("a ? b").unwrap_err();
        assert_eq!((e.at, e.message.as_str()), (2, "unexpected character `?`"));
    }
}

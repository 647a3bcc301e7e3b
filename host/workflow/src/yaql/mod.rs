//! YAQL, the expression language of StackStorm's Orquesta workflows
//! (`<% ctx().name %>`), beside Jinja: the subset Orquesta's documentation
//! and workflows use, parsed and evaluated natively over JSON values.
//!
//! `parse` owns the syntax; `eval` the values and functions. `expr` decides
//! which strings are YAQL and gives them their names.

mod eval;
mod parse;

pub use eval::{text, truthy, Lent, Names};

/// What is wrong with an expression: the message names the character it
/// is at (counted from the start of the expression).
pub type Error = String;

fn at(message: &str, at: Option<usize>, expr: &str) -> Error {
    match at {
        Some(at) => format!("{message} (at character {} of `{}`)", at + 1, expr.trim()),
        None => format!("{message} (in `{}`)", expr.trim()),
    }
}

/// Check that `expr` parses and calls only functions wasmflow has.
pub fn check(expr: &str) -> Result<(), Error> {
    let tree = parse::parse(expr).map_err(|e| at(&e.message, Some(e.at), expr))?;
    let mut unknown = None;
    visit(&tree, &mut |name, pos| {
        if unknown.is_none() && !eval::FUNCTIONS.contains(&name) {
            unknown = Some(at(&format!("unknown function {name}()"), Some(pos), expr));
        }
    });
    unknown.map_or(Ok(()), Err)
}

/// Evaluate `expr` with `names`.
pub fn evaluate(expr: &str, names: &Names) -> Result<serde_json::Value, Error> {
    let tree = parse::parse(expr).map_err(|e| at(&e.message, Some(e.at), expr))?;
    eval::evaluate(&tree, names).map_err(|e| at(&e.message, e.at, expr))
}

/// Every call in `e`, by name and position.
fn visit(e: &parse::Expr, f: &mut dyn FnMut(&str, usize)) {
    use parse::{Arg, Expr};
    match e {
        Expr::Literal(_) | Expr::Root | Expr::Var(_) | Expr::Word(_) => {}
        Expr::Member(t, _) | Expr::Not(t) | Expr::Neg(t) => visit(t, f),
        Expr::Index(a, b) | Expr::Binary(_, a, b) | Expr::Then(a, b) => {
            visit(a, f);
            visit(b, f);
        }
        Expr::List(items) => items.iter().for_each(|i| visit(i, f)),
        Expr::Dict(pairs) => pairs.iter().for_each(|(k, v)| {
            visit(k, f);
            visit(v, f);
        }),
        Expr::Call {
            name,
            target,
            args,
            at,
        } => {
            f(name, *at);
            if let Some(t) = target {
                visit(t, f);
            }
            for a in args {
                match a {
                    Arg::Positional(e) | Arg::Named(_, e) => visit(e, f),
                    Arg::Pair(k, v) => {
                        visit(k, f);
                        visit(v, f);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn unsupported_functions_are_named_at_check() {
        assert_eq!(
            super::check("ctx().x.bogus(1)").unwrap_err(),
            "unknown function bogus() (at character 9 of `ctx().x.bogus(1)`)"
        );
        super::check("task_status(a) = 'succeeded' and kv('system.x') = st2kv('system.y')")
            .unwrap();
        assert!(super::check("ctx(x) +")
            .unwrap_err()
            .contains("at character 9"));
        super::check("ctx().items.select($.name).join(',')").unwrap();
    }
}

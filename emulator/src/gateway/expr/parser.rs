//! A recursive-descent parser (statements here, expressions in `parser_expr.rs`) for the C# 7 subset of policy expressions: `@( expression )` and
//! `@{ statements }`. Syntax outside the subset (lambdas, loops, `is`/`as`, bitwise operators,
//! increments, ...) is an error naming the construct, never a silent misreading.

use super::ast::{Expr, Program, Stmt, TypeName};
use super::lexer::{lex, Tok, Token};

/// C# keywords that name predefined types.
pub const TYPE_KEYWORDS: &[&str] = &[
    "string", "int", "long", "bool", "double", "object", "char", "byte", "sbyte", "short",
    "ushort", "uint", "ulong", "float", "decimal",
];

const UNSUPPORTED_STATEMENTS: &[&str] = &[
    "for",
    "foreach",
    "while",
    "do",
    "switch",
    "try",
    "throw",
    "break",
    "continue",
    "using",
    "lock",
    "goto",
    "yield",
    "checked",
    "unchecked",
    "fixed",
    "unsafe",
];

/// Parses a whole expression as written in a policy (`@(...)` or `@{...}`).
pub fn parse_program(src: &str) -> Result<Program, String> {
    let body = src.trim();
    let Some(rest) = body.strip_prefix('@') else {
        return Err("a policy expression starts with '@(' or '@{'".into());
    };
    let mut p = Parser::new(rest)?;
    let prog = if p.eat("(") {
        let e = p.expr()?;
        p.expect(")")?;
        Program::Single(e)
    } else if p.eat("{") {
        let mut stmts = Vec::new();
        while !p.is("}") {
            if p.peek() == &Tok::Eof {
                return Err("} expected".into());
            }
            stmts.push(p.stmt()?);
        }
        p.expect("}")?;
        Program::Block(stmts)
    } else {
        return Err("a policy expression starts with '@(' or '@{'".into());
    };
    if p.peek() != &Tok::Eof {
        return Err(format!(
            "unexpected text after the end of the policy expression: {}",
            p.describe()
        ));
    }
    Ok(prog)
}

/// Parses a bare expression (an interpolation hole, or a test).
pub fn parse_expr(src: &str) -> Result<Expr, String> {
    let mut p = Parser::new(src)?;
    let e = p.expr()?;
    if p.peek() != &Tok::Eof {
        return Err(format!("unexpected {}", p.describe()));
    }
    Ok(e)
}

pub(super) struct Parser {
    pub(super) toks: Vec<Token>,
    pub(super) i: usize,
}

impl Parser {
    pub(super) fn new(src: &str) -> Result<Self, String> {
        Ok(Parser {
            toks: lex(src)?,
            i: 0,
        })
    }

    pub(super) fn peek(&self) -> &Tok {
        self.peek_at(0)
    }

    pub(super) fn peek_at(&self, n: usize) -> &Tok {
        self.toks.get(self.i + n).map_or(&Tok::Eof, |t| &t.tok)
    }

    pub(super) fn describe(&self) -> String {
        match self.peek() {
            Tok::Ident(s) => format!("'{s}'"),
            Tok::Punct(p) => format!("'{p}'"),
            Tok::Eof => "end of expression".into(),
            other => format!("{other:?}"),
        }
    }

    pub(super) fn is(&self, p: &str) -> bool {
        matches!(self.peek(), Tok::Punct(q) if *q == p)
    }

    pub(super) fn is_kw(&self, k: &str) -> bool {
        matches!(self.peek(), Tok::Ident(s) if s == k)
    }

    pub(super) fn eat(&mut self, p: &str) -> bool {
        if self.is(p) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    pub(super) fn expect(&mut self, p: &str) -> Result<(), String> {
        if self.eat(p) {
            Ok(())
        } else {
            Err(format!("{p} expected, found {}", self.describe()))
        }
    }

    pub(super) fn ident(&mut self) -> Result<String, String> {
        match self.peek().clone() {
            Tok::Ident(s) => {
                self.i += 1;
                Ok(s)
            }
            _ => Err(format!("Identifier expected, found {}", self.describe())),
        }
    }

    fn stmt(&mut self) -> Result<Stmt, String> {
        if self.eat("{") {
            let mut body = Vec::new();
            while !self.eat("}") {
                if self.peek() == &Tok::Eof {
                    return Err("} expected".into());
                }
                body.push(self.stmt()?);
            }
            return Ok(Stmt::Block(body));
        }
        if let Tok::Ident(k) = self.peek().clone() {
            if UNSUPPORTED_STATEMENTS.contains(&k.as_str()) {
                return Err(format!("the '{k}' statement is not implemented"));
            }
            match k.as_str() {
                "return" => {
                    self.i += 1;
                    let e = self.expr()?;
                    self.expect(";")?;
                    return Ok(Stmt::Return(e));
                }
                "if" => {
                    self.i += 1;
                    self.expect("(")?;
                    let c = self.expr()?;
                    self.expect(")")?;
                    let then = Box::new(self.stmt()?);
                    let other = if self.is_kw("else") {
                        self.i += 1;
                        Some(Box::new(self.stmt()?))
                    } else {
                        None
                    };
                    return Ok(Stmt::If(c, then, other));
                }
                "var" if matches!(self.peek_at(1), Tok::Ident(_)) => {
                    self.i += 1;
                    let name = self.ident()?;
                    self.expect("=")?;
                    let init = self.expr()?;
                    self.expect(";")?;
                    return Ok(Stmt::Var {
                        ty: None,
                        name,
                        init: Some(init),
                    });
                }
                _ => {}
            }
            if matches!(self.peek_at(1), Tok::Punct("=")) {
                self.i += 2;
                let e = self.expr()?;
                self.expect(";")?;
                return Ok(Stmt::Assign(k, e));
            }
            let save = self.i;
            if let Ok(ty) = self.type_name() {
                if let Tok::Ident(name) = self.peek().clone() {
                    if matches!(self.peek_at(1), Tok::Punct("=" | ";")) {
                        self.i += 1;
                        let init = if self.eat("=") {
                            Some(self.expr()?)
                        } else {
                            None
                        };
                        self.expect(";")?;
                        return Ok(Stmt::Var {
                            ty: Some(ty),
                            name,
                            init,
                        });
                    }
                }
            }
            self.i = save;
        }
        let e = self.expr()?;
        if let Some(op) = ["+=", "-=", "*=", "/=", "%=", "++", "--", "??="]
            .iter()
            .find(|op| self.is(op))
        {
            return Err(format!("the '{op}' operator is not implemented"));
        }
        self.expect(";")?;
        Ok(Stmt::Expr(e))
    }

    pub(super) fn type_name(&mut self) -> Result<TypeName, String> {
        let mut name = self.ident()?;
        while self.is(".") && matches!(self.peek_at(1), Tok::Ident(_)) {
            self.i += 1;
            name.push('.');
            name.push_str(&self.ident()?);
        }
        let mut args = Vec::new();
        if self.is("<") {
            let save = self.i;
            self.i += 1;
            let mut ok = true;
            loop {
                match self.type_name() {
                    Ok(t) => args.push(t),
                    Err(_) => {
                        ok = false;
                        break;
                    }
                }
                if !self.eat(",") {
                    break;
                }
            }
            if !ok || !self.eat(">") {
                self.i = save;
                return Err("not a type".into());
            }
        }
        let nullable =
            self.is("?") && matches!(self.peek_at(1), Tok::Punct(")" | "[") | Tok::Ident(_));
        if nullable {
            self.i += 1;
        }
        let array = self.is("[") && matches!(self.peek_at(1), Tok::Punct("]"));
        if array {
            self.i += 2;
        }
        Ok(TypeName {
            name,
            args,
            array,
            nullable,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::expr::ast::BinOp;

    fn ok(s: &str) -> Program {
        parse_program(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn precedence_casts_and_calls() {
        let Program::Single(e) = ok("@(1 + 2 * 3 == 7 && !false)") else {
            panic!("single")
        };
        assert!(matches!(e, Expr::Binary(BinOp::And, _, _)));
        let Program::Single(e) = ok(
            r#"@(((IResponse)context.Variables["r"]).Body.As<JObject>(preserveContent: true)["a"])"#,
        ) else {
            panic!("single")
        };
        let Expr::Index { recv, .. } = e else {
            panic!("index")
        };
        let Expr::Call {
            name,
            generics,
            args,
            ..
        } = *recv
        else {
            panic!("call")
        };
        assert_eq!(name, "As");
        assert_eq!(generics[0].name, "JObject");
        assert_eq!(args[0].name.as_deref(), Some("preserveContent"));
        // `(a) + b` is not a cast; `(string)-1` would be.
        let Program::Single(e) = ok("@((a) + b)") else {
            panic!()
        };
        assert!(matches!(e, Expr::Binary(BinOp::Add, _, _)));
        let Program::Single(e) = ok("@(a < b ? c : d ?? e)") else {
            panic!()
        };
        assert!(matches!(e, Expr::Cond(..)));
        let Program::Single(e) = ok("@(x.GetValueOrDefault<string>(\"k\", \"\"))") else {
            panic!()
        };
        assert!(matches!(e, Expr::Call { ref generics, .. } if generics.len() == 1));
    }

    #[test]
    fn blocks() {
        let p = ok("@{ var a = 1; string b; if (a > 0) { b = \"x\"; } else b = \"y\"; return b; }");
        let Program::Block(stmts) = p else { panic!() };
        assert_eq!(stmts.len(), 4);
        assert!(matches!(
            stmts[1],
            Stmt::Var {
                ty: Some(_),
                init: None,
                ..
            }
        ));
        assert!(matches!(stmts[3], Stmt::Return(_)));
    }

    #[test]
    fn unsupported_syntax_is_named() {
        for (src, what) in [
            ("@(x => x)", "lambda"),
            ("@{ foreach (var a in b) { } return 1; }", "foreach"),
            ("@(a is string)", "is"),
            ("@(a | b)", "|"),
            ("@{ i++; return 1; }", "++"),
            ("@(new { a = 1 })", "anonymous"),
            ("@(typeof(string))", "typeof"),
        ] {
            let e = parse_program(src).expect_err(src);
            assert!(e.contains(what), "{src}: {e}");
        }
        assert!(parse_program("@(1) x").is_err());
        assert!(parse_program("@(1").is_err());
        assert!(parse_program("1").is_err());
    }
}

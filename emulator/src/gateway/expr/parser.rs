//! A recursive-descent parser for the C# 7 subset of policy expressions: `@( expression )` and
//! `@{ statements }`. Syntax outside the subset (lambdas, loops, `is`/`as`, bitwise operators,
//! increments, ...) is an error naming the construct, never a silent misreading.

use super::ast::{Arg, BinOp, Expr, Lit, Program, Stmt, TypeName, UnOp};
use super::lexer::{lex, Part, Tok, Token};

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

struct Parser {
    toks: Vec<Token>,
    i: usize,
}

impl Parser {
    fn new(src: &str) -> Result<Self, String> {
        Ok(Parser {
            toks: lex(src)?,
            i: 0,
        })
    }

    fn peek(&self) -> &Tok {
        self.peek_at(0)
    }

    fn peek_at(&self, n: usize) -> &Tok {
        self.toks.get(self.i + n).map_or(&Tok::Eof, |t| &t.tok)
    }

    fn describe(&self) -> String {
        match self.peek() {
            Tok::Ident(s) => format!("'{s}'"),
            Tok::Punct(p) => format!("'{p}'"),
            Tok::Eof => "end of expression".into(),
            other => format!("{other:?}"),
        }
    }

    fn is(&self, p: &str) -> bool {
        matches!(self.peek(), Tok::Punct(q) if *q == p)
    }

    fn is_kw(&self, k: &str) -> bool {
        matches!(self.peek(), Tok::Ident(s) if s == k)
    }

    fn eat(&mut self, p: &str) -> bool {
        if self.is(p) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, p: &str) -> Result<(), String> {
        if self.eat(p) {
            Ok(())
        } else {
            Err(format!("{p} expected, found {}", self.describe()))
        }
    }

    fn ident(&mut self) -> Result<String, String> {
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

    fn type_name(&mut self) -> Result<TypeName, String> {
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

    fn expr(&mut self) -> Result<Expr, String> {
        if matches!(self.peek(), Tok::Ident(_)) && matches!(self.peek_at(1), Tok::Punct("=>")) {
            return Err("lambda expressions are not implemented".into());
        }
        let c = self.coalesce()?;
        if self.eat("?") {
            let a = self.expr()?;
            self.expect(":")?;
            let b = self.expr()?;
            return Ok(Expr::Cond(Box::new(c), Box::new(a), Box::new(b)));
        }
        if self.is("=") {
            return Err("assignment inside an expression is not implemented".into());
        }
        Ok(c)
    }

    fn coalesce(&mut self) -> Result<Expr, String> {
        let l = self.binary(0)?;
        if self.eat("??") {
            let r = self.coalesce()?;
            return Ok(Expr::Binary(BinOp::Coalesce, Box::new(l), Box::new(r)));
        }
        Ok(l)
    }

    /// Binary operators by precedence level, lowest first.
    fn binary(&mut self, level: usize) -> Result<Expr, String> {
        const LEVELS: &[&[(&str, BinOp)]] = &[
            &[("||", BinOp::Or)],
            &[("&&", BinOp::And)],
            &[("==", BinOp::Eq), ("!=", BinOp::Ne)],
            &[
                ("<=", BinOp::Le),
                (">=", BinOp::Ge),
                ("<", BinOp::Lt),
                (">", BinOp::Gt),
            ],
            &[("+", BinOp::Add), ("-", BinOp::Sub)],
            &[("*", BinOp::Mul), ("/", BinOp::Div), ("%", BinOp::Rem)],
        ];
        if level == LEVELS.len() {
            return self.unary();
        }
        let mut l = self.binary(level + 1)?;
        loop {
            if let Some(op) = ["|", "&", "^", "<<"].iter().find(|op| self.is(op)) {
                return Err(format!("the '{op}' operator is not implemented"));
            }
            if level == 3 && (self.is_kw("is") || self.is_kw("as")) {
                return Err(format!(
                    "the '{}' operator is not implemented",
                    self.describe().trim_matches('\'')
                ));
            }
            let Some((_, op)) = LEVELS[level].iter().find(|(p, _)| self.is(p)) else {
                return Ok(l);
            };
            self.i += 1;
            let r = self.binary(level + 1)?;
            l = Expr::Binary(*op, Box::new(l), Box::new(r));
        }
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.eat("!") {
            return Ok(Expr::Unary(UnOp::Not, Box::new(self.unary()?)));
        }
        if self.eat("-") {
            return Ok(Expr::Unary(UnOp::Neg, Box::new(self.unary()?)));
        }
        if self.eat("+") {
            return Ok(Expr::Unary(UnOp::Plus, Box::new(self.unary()?)));
        }
        if let Some(op) = ["++", "--", "~", "&", "*"].iter().find(|op| self.is(op)) {
            return Err(format!("the unary '{op}' operator is not implemented"));
        }
        if self.is("(") {
            if let Some(cast) = self.try_cast()? {
                return Ok(cast);
            }
        }
        self.postfix()
    }

    /// `(T)e` when what follows `(T)` can only start an operand.
    fn try_cast(&mut self) -> Result<Option<Expr>, String> {
        let save = self.i;
        self.i += 1;
        let Ok(ty) = self.type_name() else {
            self.i = save;
            return Ok(None);
        };
        if !self.eat(")") {
            self.i = save;
            return Ok(None);
        }
        let keyword = TYPE_KEYWORDS.contains(&ty.name.as_str());
        let operand_follows = match self.peek() {
            Tok::Ident(s) => !matches!(s.as_str(), "is" | "as"),
            Tok::Int(..) | Tok::Real(_) | Tok::Str(_) | Tok::Char(_) | Tok::Interp(_) => true,
            Tok::Punct(p) => matches!(*p, "(" | "!") || (keyword && matches!(*p, "-" | "+")),
            Tok::Eof => false,
        };
        if !operand_follows {
            self.i = save;
            return Ok(None);
        }
        let e = self.unary()?;
        Ok(Some(Expr::Cast(ty, Box::new(e))))
    }

    fn args(&mut self) -> Result<Vec<Arg>, String> {
        let mut args = Vec::new();
        if self.eat(")") {
            return Ok(args);
        }
        loop {
            if self.is_kw("out") || self.is_kw("ref") {
                return Err(format!(
                    "'{}' arguments are not implemented",
                    self.describe().trim_matches('\'')
                ));
            }
            let name = match (self.peek().clone(), self.peek_at(1)) {
                (Tok::Ident(n), Tok::Punct(":")) => {
                    self.i += 2;
                    Some(n)
                }
                _ => None,
            };
            let value = self.expr()?;
            args.push(Arg { name, value });
            if self.eat(")") {
                return Ok(args);
            }
            self.expect(",")?;
        }
    }

    /// `<T, U>(` after a member name, or nothing (then `<` is a comparison).
    fn generic_args(&mut self) -> Vec<TypeName> {
        if !self.is("<") {
            return Vec::new();
        }
        let save = self.i;
        self.i += 1;
        let mut out = Vec::new();
        loop {
            match self.type_name() {
                Ok(t) => out.push(t),
                Err(_) => {
                    self.i = save;
                    return Vec::new();
                }
            }
            if !self.eat(",") {
                break;
            }
        }
        if self.eat(">") && self.is("(") {
            out
        } else {
            self.i = save;
            Vec::new()
        }
    }

    fn postfix(&mut self) -> Result<Expr, String> {
        let mut e = self.primary()?;
        loop {
            let cond = self.is("?.");
            if self.eat(".") || self.eat("?.") {
                let name = self.ident()?;
                let generics = self.generic_args();
                if self.eat("(") {
                    let args = self.args()?;
                    e = Expr::Call {
                        recv: Some(Box::new(e)),
                        name,
                        generics,
                        args,
                        cond,
                    };
                } else {
                    e = Expr::Member {
                        recv: Box::new(e),
                        name,
                        cond,
                    };
                }
            } else if self.eat("[") {
                let index = self.expr()?;
                if self.is(",") {
                    return Err("multi-dimensional indexers are not implemented".into());
                }
                self.expect("]")?;
                e = Expr::Index {
                    recv: Box::new(e),
                    index: Box::new(index),
                };
            } else if self.is("?") && matches!(self.peek_at(1), Tok::Punct("[")) {
                return Err("the null-conditional indexer '?[' is not implemented".into());
            } else if self.is("++") || self.is("--") {
                return Err(format!(
                    "the '{}' operator is not implemented",
                    self.describe().trim_matches('\'')
                ));
            } else {
                return Ok(e);
            }
        }
    }

    fn primary(&mut self) -> Result<Expr, String> {
        let tok = self.peek().clone();
        self.i += 1;
        Ok(match tok {
            Tok::Int(v, long) => {
                if !long {
                    if let Ok(i) = i32::try_from(v) {
                        return Ok(Expr::Lit(Lit::Int(i)));
                    }
                }
                Expr::Lit(Lit::Long(
                    i64::try_from(v).map_err(|_| "Integral constant is too large")?,
                ))
            }
            Tok::Real(v) => Expr::Lit(Lit::Double(v)),
            Tok::Str(s) => Expr::Lit(Lit::Str(s)),
            Tok::Char(c) => Expr::Lit(Lit::Char(c)),
            Tok::Interp(parts) => {
                let mut out = Vec::new();
                for p in parts {
                    out.push(match p {
                        Part::Text(t) => Ok(t),
                        Part::Hole(src) => Err(parse_expr(&src)?),
                    });
                }
                Expr::Interp(out)
            }
            Tok::Punct("(") => {
                let e = self.expr()?;
                if self.is(",") {
                    return Err("tuples are not implemented".into());
                }
                self.expect(")")?;
                e
            }
            Tok::Ident(k) => match k.as_str() {
                "null" => Expr::Lit(Lit::Null),
                "true" => Expr::Lit(Lit::Bool(true)),
                "false" => Expr::Lit(Lit::Bool(false)),
                "new" => {
                    if self.is("[") || self.is("{") {
                        return Err(
                            "implicitly typed arrays and anonymous objects are not implemented"
                                .into(),
                        );
                    }
                    let ty = self.type_name()?;
                    if self.is("{") {
                        return Err("object and collection initializers are not implemented".into());
                    }
                    self.expect("(")?;
                    let args = self.args()?;
                    if self.is("{") {
                        return Err("object and collection initializers are not implemented".into());
                    }
                    Expr::New(ty, args)
                }
                "typeof" | "default" | "nameof" | "sizeof" | "checked" | "unchecked" | "await"
                | "delegate" | "stackalloc" | "this" | "base" => {
                    return Err(format!("'{k}' is not implemented"))
                }
                _ => {
                    let generics = self.generic_args();
                    if self.eat("(") {
                        let args = self.args()?;
                        Expr::Call {
                            recv: None,
                            name: k,
                            generics,
                            args,
                            cond: false,
                        }
                    } else {
                        Expr::Name(k)
                    }
                }
            },
            Tok::Punct(p) => {
                self.i -= 1;
                return Err(format!("Invalid expression term '{p}'"));
            }
            Tok::Eof => {
                self.i -= 1;
                return Err("Invalid expression term: the expression ends too early".into());
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

//! Expressions of the policy-expression parser: precedence levels from `?:` down to primary
//! expressions, casts, calls with generic and named arguments, member access and indexers.

use super::ast::{Arg, BinOp, Expr, Lit, TypeName, UnOp};
use super::lexer::{Part, Tok};
use super::parser::{parse_expr, Parser, TYPE_KEYWORDS};

impl Parser {
    pub(super) fn expr(&mut self) -> Result<Expr, String> {
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

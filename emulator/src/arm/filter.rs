//! The OData `$filter` subset APIM list operations accept: comparisons (`eq ne gt ge lt le`),
//! `contains`/`startswith`/`endswith`/`substringof`, `and`, `or`, `not` and parentheses. String
//! comparisons ignore case, as APIM's do. A multi-valued field (tags) matches if any value does.

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `field op 'value'`.
    Cmp(String, Op, String),
    /// `func(field, 'value')`.
    Func(Func, String, String),
    /// Both.
    And(Box<Filter>, Box<Filter>),
    /// Either.
    Or(Box<Filter>, Box<Filter>),
    /// Negation.
    Not(Box<Filter>),
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `eq`
    Eq,
    /// `ne`
    Ne,
    /// `gt`
    Gt,
    /// `ge`
    Ge,
    /// `lt`
    Lt,
    /// `le`
    Le,
}

/// String functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    /// `contains(field, 'x')` / `substringof('x', field)`
    Contains,
    /// `startswith(field, 'x')`
    StartsWith,
    /// `endswith(field, 'x')`
    EndsWith,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Open,
    Close,
    Comma,
}

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let cs: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        match c {
            ' ' | '\t' | '\r' | '\n' => i += 1,
            '(' => {
                out.push(Tok::Open);
                i += 1;
            }
            ')' => {
                out.push(Tok::Close);
                i += 1;
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            '\'' => {
                let mut v = String::new();
                i += 1;
                loop {
                    match cs.get(i) {
                        None => return Err("unterminated string literal in $filter".into()),
                        Some('\'') if cs.get(i + 1) == Some(&'\'') => {
                            v.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(ch) => {
                            v.push(*ch);
                            i += 1;
                        }
                    }
                }
                out.push(Tok::Str(v));
            }
            c if c.is_alphanumeric() || matches!(c, '_' | '/' | '.' | '-' | '$') => {
                let start = i;
                while i < cs.len()
                    && (cs[i].is_alphanumeric() || matches!(cs[i], '_' | '/' | '.' | '-' | '$'))
                {
                    i += 1;
                }
                out.push(Tok::Ident(cs[start..i].iter().collect()));
            }
            other => return Err(format!("unexpected character '{other}' in $filter")),
        }
    }
    Ok(out)
}

struct P {
    toks: Vec<Tok>,
    pos: usize,
}

impl P {
    fn peek_kw(&self, kw: &str) -> bool {
        matches!(self.toks.get(self.pos), Some(Tok::Ident(s)) if s.eq_ignore_ascii_case(kw))
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn expect(&mut self, t: &Tok) -> Result<(), String> {
        match self.next() {
            Some(ref x) if x == t => Ok(()),
            other => Err(format!("expected {t:?} in $filter, found {other:?}")),
        }
    }
    fn or(&mut self) -> Result<Filter, String> {
        let mut l = self.and()?;
        while self.peek_kw("or") {
            self.pos += 1;
            l = Filter::Or(Box::new(l), Box::new(self.and()?));
        }
        Ok(l)
    }
    fn and(&mut self) -> Result<Filter, String> {
        let mut l = self.unary()?;
        while self.peek_kw("and") {
            self.pos += 1;
            l = Filter::And(Box::new(l), Box::new(self.unary()?));
        }
        Ok(l)
    }
    fn unary(&mut self) -> Result<Filter, String> {
        if self.peek_kw("not") {
            self.pos += 1;
            return Ok(Filter::Not(Box::new(self.unary()?)));
        }
        match self.next() {
            Some(Tok::Open) => {
                let f = self.or()?;
                self.expect(&Tok::Close)?;
                Ok(f)
            }
            Some(Tok::Ident(name)) if matches!(self.toks.get(self.pos), Some(Tok::Open)) => {
                self.pos += 1;
                let lname = name.to_ascii_lowercase();
                let (a, b) = (self.next(), {
                    self.expect(&Tok::Comma)?;
                    self.next()
                });
                self.expect(&Tok::Close)?;
                let (func, field, value) = match (lname.as_str(), a, b) {
                    ("contains", Some(Tok::Ident(f)), Some(Tok::Str(v))) => (Func::Contains, f, v),
                    ("startswith", Some(Tok::Ident(f)), Some(Tok::Str(v))) => {
                        (Func::StartsWith, f, v)
                    }
                    ("endswith", Some(Tok::Ident(f)), Some(Tok::Str(v))) => (Func::EndsWith, f, v),
                    ("substringof", Some(Tok::Str(v)), Some(Tok::Ident(f))) => {
                        (Func::Contains, f, v)
                    }
                    _ => return Err(format!("unsupported function call '{name}' in $filter")),
                };
                Ok(Filter::Func(func, field, value))
            }
            Some(Tok::Ident(field)) => {
                let op = match self.next() {
                    Some(Tok::Ident(o)) => match o.to_ascii_lowercase().as_str() {
                        "eq" => Op::Eq,
                        "ne" => Op::Ne,
                        "gt" => Op::Gt,
                        "ge" => Op::Ge,
                        "lt" => Op::Lt,
                        "le" => Op::Le,
                        _ => return Err(format!("unsupported operator '{o}' in $filter")),
                    },
                    other => {
                        return Err(format!("expected an operator in $filter, found {other:?}"))
                    }
                };
                match self.next() {
                    Some(Tok::Str(v)) => Ok(Filter::Cmp(field, op, v)),
                    Some(Tok::Ident(v)) => Ok(Filter::Cmp(field, op, v)),
                    other => Err(format!("expected a value in $filter, found {other:?}")),
                }
            }
            other => Err(format!("unexpected {other:?} in $filter")),
        }
    }
}

/// Parses a `$filter` expression.
pub fn parse(s: &str) -> Result<Filter, String> {
    let mut p = P {
        toks: lex(s)?,
        pos: 0,
    };
    let f = p.or()?;
    if p.pos != p.toks.len() {
        return Err("unexpected trailing input in $filter".into());
    }
    Ok(f)
}

impl Filter {
    /// Evaluates against an entity; `lookup` gives a field's values (or `None` if the field is not
    /// filterable, which is an error as in APIM).
    pub fn eval(&self, lookup: &dyn Fn(&str) -> Option<Vec<String>>) -> Result<bool, String> {
        let values = |f: &str| {
            lookup(f).ok_or_else(|| format!("the field '{f}' is not supported in $filter"))
        };
        Ok(match self {
            Filter::And(a, b) => a.eval(lookup)? && b.eval(lookup)?,
            Filter::Or(a, b) => a.eval(lookup)? || b.eval(lookup)?,
            Filter::Not(a) => !a.eval(lookup)?,
            Filter::Cmp(f, op, v) => {
                let v = v.to_lowercase();
                let vals = values(f)?;
                match op {
                    Op::Ne => vals.iter().all(|x| x.to_lowercase() != v),
                    _ => vals.iter().any(|x| {
                        let x = x.to_lowercase();
                        match op {
                            Op::Eq => x == v,
                            Op::Gt => x > v,
                            Op::Ge => x >= v,
                            Op::Lt => x < v,
                            Op::Le => x <= v,
                            Op::Ne => false,
                        }
                    }),
                }
            }
            Filter::Func(func, f, v) => {
                let v = v.to_lowercase();
                values(f)?.iter().any(|x| {
                    let x = x.to_lowercase();
                    match func {
                        Func::Contains => x.contains(&v),
                        Func::StartsWith => x.starts_with(&v),
                        Func::EndsWith => x.ends_with(&v),
                    }
                })
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_evaluates() {
        let look = |f: &str| match f {
            "name" => Some(vec!["vault-addr".to_string()]),
            "tags" => Some(vec!["a".to_string(), "b".to_string()]),
            _ => None,
        };
        let t = |s: &str| parse(s).expect("parse").eval(&look).expect("eval");
        assert!(t("name eq 'Vault-Addr'"));
        assert!(t("startswith(name,'vault') and tags eq 'b'"));
        assert!(!t("not (contains(name,'addr'))"));
        assert!(t("substringof('addr', name) or name eq 'x'"));
        assert!(parse("name eq 'x").is_err());
        assert!(parse("name eq 'x'").expect("p").eval(&|_| None).is_err());
    }
}

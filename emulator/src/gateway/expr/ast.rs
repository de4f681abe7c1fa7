//! The syntax tree of a policy expression, as the parser builds it (names unresolved).

/// A literal.
#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An `int` literal.
    Int(i32),
    /// A `long` literal (suffix `L`, or too large for `int`).
    Long(i64),
    /// A `double` literal.
    Double(f64),
    /// A string literal.
    Str(String),
    /// A character literal.
    Char(char),
}

/// A type as written: `string`, `JObject`, `System.Int32`, `List<string>`, `int[]`, `int?`.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeName {
    /// The (possibly dotted) name.
    pub name: String,
    /// Generic arguments.
    pub args: Vec<TypeName>,
    /// `[]` suffix.
    pub array: bool,
    /// `?` suffix.
    pub nullable: bool,
}

impl std::fmt::Display for TypeName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)?;
        if !self.args.is_empty() {
            let args: Vec<String> = self.args.iter().map(ToString::to_string).collect();
            write!(f, "<{}>", args.join(", "))?;
        }
        if self.nullable {
            f.write_str("?")?;
        }
        if self.array {
            f.write_str("[]")?;
        }
        Ok(())
    }
}

/// Unary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnOp {
    /// `!`
    Not,
    /// `-`
    Neg,
    /// `+`
    Plus,
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Rem,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `&&`
    And,
    /// `||`
    Or,
    /// `??`
    Coalesce,
}

impl BinOp {
    /// The operator as written.
    pub fn text(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::And => "&&",
            BinOp::Or => "||",
            BinOp::Coalesce => "??",
        }
    }
}

/// A call argument, possibly named (`preserveContent: true`).
#[derive(Debug, Clone, PartialEq)]
pub struct Arg {
    /// The parameter name, if given.
    pub name: Option<String>,
    /// The value.
    pub value: Expr,
}

/// An expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A literal.
    Lit(Lit),
    /// An interpolated string: text and expression holes.
    Interp(Vec<Result<String, Expr>>),
    /// A simple name: a local, `context`, a type or a namespace.
    Name(String),
    /// `recv.name` (or `recv?.name`).
    Member {
        /// Receiver.
        recv: Box<Expr>,
        /// Member name.
        name: String,
        /// `?.`
        cond: bool,
    },
    /// `recv.name<T>(args)` or `name(args)` (no receiver).
    Call {
        /// Receiver, if any.
        recv: Option<Box<Expr>>,
        /// Method name.
        name: String,
        /// Generic arguments.
        generics: Vec<TypeName>,
        /// Arguments.
        args: Vec<Arg>,
        /// `?.`
        cond: bool,
    },
    /// `recv[index]`.
    Index {
        /// Receiver.
        recv: Box<Expr>,
        /// The index.
        index: Box<Expr>,
    },
    /// A unary operation.
    Unary(UnOp, Box<Expr>),
    /// A binary operation.
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// `c ? a : b`.
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
    /// `(T)e`.
    Cast(TypeName, Box<Expr>),
    /// `new T(args)`.
    New(TypeName, Vec<Arg>),
}

/// A statement of a multi-statement expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Stmt {
    /// `var x = e;` / `T x = e;` / `T x;`.
    Var {
        /// Declared type (`None`: `var`).
        ty: Option<TypeName>,
        /// Name.
        name: String,
        /// Initialiser.
        init: Option<Expr>,
    },
    /// `x = e;`.
    Assign(String, Expr),
    /// An expression statement (a call).
    Expr(Expr),
    /// `if (c) s [else s]`.
    If(Expr, Box<Stmt>, Option<Box<Stmt>>),
    /// `{ ... }`.
    Block(Vec<Stmt>),
    /// `return e;`.
    Return(Expr),
}

/// A whole policy expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Program {
    /// `@( expression )`.
    Single(Expr),
    /// `@{ statements }`.
    Block(Vec<Stmt>),
}

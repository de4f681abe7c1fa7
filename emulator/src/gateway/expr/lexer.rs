//! The lexer of policy expressions: C# 7 tokens (identifiers, keywords, numbers with suffixes,
//! regular, verbatim and interpolated strings, characters, punctuation). Anything else is an
//! error naming what was found.

/// A token.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// An identifier or keyword (the parser tells them apart).
    Ident(String),
    /// An integer literal: value and whether it had an `L` suffix.
    Int(u64, bool),
    /// A real literal (`1.5`, `2e3`, `1d`).
    Real(f64),
    /// A string literal, unescaped.
    Str(String),
    /// A character literal.
    Char(char),
    /// An interpolated string: literal text and the source of each hole, in order.
    Interp(Vec<Part>),
    /// Punctuation or an operator.
    Punct(&'static str),
    /// The end of the input.
    Eof,
}

/// A piece of an interpolated string.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    /// Literal text.
    Text(String),
    /// The source of an `{expression}` hole.
    Hole(String),
}

/// A token and its character offset in the expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// The token.
    pub tok: Tok,
    /// Offset (in characters) from the start of the expression source.
    pub pos: usize,
}

const PUNCTS: &[&str] = &[
    "??=", "<<=", ">>=", "=>", "==", "!=", "<=", ">=", "&&", "||", "??", "?.", "++", "--", "+=",
    "-=", "*=", "/=", "%=", "&=", "|=", "^=", "<<", "::", "(", ")", "{", "}", "[", "]", ".", ",",
    ";", ":", "?", "+", "-", "*", "/", "%", "!", "~", "=", "<", ">", "&", "|", "^",
];

/// Splits an expression's source into tokens.
pub fn lex(src: &str) -> Result<Vec<Token>, String> {
    let c: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        let start = i;
        if ch.is_whitespace() {
            i += 1;
            continue;
        }
        if ch == '/' && c.get(i + 1) == Some(&'/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if ch == '/' && c.get(i + 1) == Some(&'*') {
            i += 2;
            while i + 1 < c.len() && !(c[i] == '*' && c[i + 1] == '/') {
                i += 1;
            }
            if i + 1 >= c.len() {
                return Err("End-of-file found, '*/' expected".into());
            }
            i += 2;
            continue;
        }
        let tok = if ch.is_alphabetic() || ch == '_' {
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            Tok::Ident(c[start..i].iter().collect())
        } else if ch == '@' && c.get(i + 1).is_some_and(|n| n.is_alphabetic() || *n == '_') {
            // `@identifier`: a keyword used as a name.
            i += 1;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            Tok::Ident(c[start + 1..i].iter().collect())
        } else if ch.is_ascii_digit()
            || (ch == '.' && c.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            number(&c, &mut i)?
        } else if ch == '"' {
            i += 1;
            Tok::Str(regular_string(&c, &mut i)?)
        } else if ch == '@' && c.get(i + 1) == Some(&'"') {
            i += 2;
            Tok::Str(verbatim_string(&c, &mut i)?)
        } else if ch == '$' && c.get(i + 1) == Some(&'"') {
            i += 2;
            Tok::Interp(interpolated(&c, &mut i)?)
        } else if ch == '$' || (ch == '@' && c.get(i + 1) == Some(&'$')) {
            return Err("verbatim interpolated strings ($@\"...\") are not implemented".into());
        } else if ch == '\'' {
            i += 1;
            let v = match c.get(i) {
                Some('\\') => {
                    i += 1;
                    escape(&c, &mut i)?
                }
                Some(&x) if x != '\'' => {
                    i += 1;
                    x
                }
                _ => return Err("Empty character literal".into()),
            };
            if c.get(i) != Some(&'\'') {
                return Err("Too many characters in character literal".into());
            }
            i += 1;
            Tok::Char(v)
        } else {
            let rest: String = c[i..c.len().min(i + 3)].iter().collect();
            match PUNCTS.iter().find(|p| rest.starts_with(**p)) {
                Some(p) => {
                    i += p.chars().count();
                    Tok::Punct(p)
                }
                None => return Err(format!("Unexpected character '{ch}'")),
            }
        };
        out.push(Token { tok, pos: start });
    }
    out.push(Token {
        tok: Tok::Eof,
        pos: c.len(),
    });
    Ok(out)
}

fn number(c: &[char], i: &mut usize) -> Result<Tok, String> {
    let start = *i;
    if c[*i] == '0' && matches!(c.get(*i + 1), Some('x' | 'X')) {
        *i += 2;
        let s = *i;
        while *i < c.len() && c[*i].is_ascii_hexdigit() {
            *i += 1;
        }
        let digits: String = c[s..*i].iter().collect();
        let v = u64::from_str_radix(&digits, 16).map_err(|_| "Invalid hexadecimal literal")?;
        let long = matches!(c.get(*i), Some('L' | 'l'));
        if long {
            *i += 1;
        }
        return Ok(Tok::Int(v, long));
    }
    let mut real = false;
    while *i < c.len() && (c[*i].is_ascii_digit() || c[*i] == '_') {
        *i += 1;
    }
    if c.get(*i) == Some(&'.') && c.get(*i + 1).is_some_and(char::is_ascii_digit) {
        real = true;
        *i += 1;
        while *i < c.len() && c[*i].is_ascii_digit() {
            *i += 1;
        }
    }
    if matches!(c.get(*i), Some('e' | 'E')) {
        real = true;
        *i += 1;
        if matches!(c.get(*i), Some('+' | '-')) {
            *i += 1;
        }
        while *i < c.len() && c[*i].is_ascii_digit() {
            *i += 1;
        }
    }
    let text: String = c[start..*i].iter().filter(|ch| **ch != '_').collect();
    match c.get(*i) {
        Some('m' | 'M') => return Err("decimal literals (suffix 'm') are not implemented".into()),
        Some('f' | 'F') => return Err("float literals (suffix 'f') are not implemented".into()),
        Some('u' | 'U') => return Err("unsigned literals (suffix 'u') are not implemented".into()),
        Some('d' | 'D') => {
            *i += 1;
            real = true;
        }
        Some('L' | 'l') if !real => {
            *i += 1;
            let v = text
                .parse::<u64>()
                .map_err(|_| "Integral constant is too large")?;
            return Ok(Tok::Int(v, true));
        }
        _ => {}
    }
    if real {
        text.parse::<f64>()
            .map(Tok::Real)
            .map_err(|_| format!("Invalid real literal '{text}'"))
    } else {
        text.parse::<u64>()
            .map(|v| Tok::Int(v, false))
            .map_err(|_| "Integral constant is too large".into())
    }
}

fn escape(c: &[char], i: &mut usize) -> Result<char, String> {
    let e = *c.get(*i).ok_or("Newline in constant")?;
    *i += 1;
    Ok(match e {
        'n' => '\n',
        'r' => '\r',
        't' => '\t',
        '0' => '\0',
        'a' => '\u{7}',
        'b' => '\u{8}',
        'f' => '\u{c}',
        'v' => '\u{b}',
        '\\' => '\\',
        '"' => '"',
        '\'' => '\'',
        'u' => {
            let hex: String = c
                .get(*i..*i + 4)
                .ok_or("Unrecognized escape sequence")?
                .iter()
                .collect();
            *i += 4;
            u32::from_str_radix(&hex, 16)
                .ok()
                .and_then(char::from_u32)
                .ok_or("Unrecognized escape sequence")?
        }
        _ => return Err("Unrecognized escape sequence".into()),
    })
}

fn regular_string(c: &[char], i: &mut usize) -> Result<String, String> {
    let mut s = String::new();
    loop {
        match c.get(*i) {
            None | Some('\n') => return Err("Newline in constant".into()),
            Some('"') => {
                *i += 1;
                return Ok(s);
            }
            Some('\\') => {
                *i += 1;
                s.push(escape(c, i)?);
            }
            Some(&x) => {
                *i += 1;
                s.push(x);
            }
        }
    }
}

fn verbatim_string(c: &[char], i: &mut usize) -> Result<String, String> {
    let mut s = String::new();
    loop {
        match c.get(*i) {
            None => return Err("Unterminated string literal".into()),
            Some('"') if c.get(*i + 1) == Some(&'"') => {
                s.push('"');
                *i += 2;
            }
            Some('"') => {
                *i += 1;
                return Ok(s);
            }
            Some(&x) => {
                s.push(x);
                *i += 1;
            }
        }
    }
}

/// `$"text {hole} text"`: `{{` and `}}` are literal braces; a hole ends at its matching `}`
/// (strings inside it are skipped). Format specifiers (`{x:N2}`) are not implemented.
fn interpolated(c: &[char], i: &mut usize) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut text = String::new();
    loop {
        match c.get(*i) {
            None | Some('\n') => return Err("Newline in constant".into()),
            Some('"') => {
                *i += 1;
                if !text.is_empty() {
                    parts.push(Part::Text(text));
                }
                return Ok(parts);
            }
            Some('{') if c.get(*i + 1) == Some(&'{') => {
                text.push('{');
                *i += 2;
            }
            Some('}') if c.get(*i + 1) == Some(&'}') => {
                text.push('}');
                *i += 2;
            }
            Some('{') => {
                if !text.is_empty() {
                    parts.push(Part::Text(std::mem::take(&mut text)));
                }
                *i += 1;
                let start = *i;
                let mut depth = 0usize;
                loop {
                    match c.get(*i) {
                        None => return Err("Unterminated interpolated string".into()),
                        Some('"') => {
                            *i += 1;
                            regular_string(c, i)?;
                            continue;
                        }
                        Some('(' | '[' | '{') => depth += 1,
                        Some(')' | ']') => depth = depth.saturating_sub(1),
                        Some('}') if depth == 0 => break,
                        Some('}') => depth -= 1,
                        Some(':') if depth == 0 => {
                            return Err(
                                "format specifiers in interpolated strings are not implemented"
                                    .into(),
                            )
                        }
                        _ => {}
                    }
                    *i += 1;
                }
                parts.push(Part::Hole(c[start..*i].iter().collect()));
                *i += 1;
            }
            Some('\\') => {
                *i += 1;
                text.push(escape(c, i)?);
            }
            Some(&x) => {
                text.push(x);
                *i += 1;
            }
        }
    }
}

//! A small EDN reader: enough of EDN for Jepsen histories, one form per line.
//!
//! Supported: `nil`, booleans, integers, floats, strings, characters, keywords, symbols,
//! vectors, lists, sets, maps, `#_` discards, `;` comments and tagged literals (`#tag form`,
//! read as the form itself, which covers `#jepsen.history.Op{...}`). Commas are whitespace.

/// One EDN value.
#[derive(Debug, Clone, PartialEq)]
pub enum Edn {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Char(char),
    /// A keyword, without its leading colon.
    Keyword(String),
    Symbol(String),
    Vector(Vec<Edn>),
    List(Vec<Edn>),
    Set(Vec<Edn>),
    Map(Vec<(Edn, Edn)>),
}

/// A syntax error at a 1-based column of the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdnError {
    pub column: usize,
    pub message: String,
}

impl std::fmt::Display for EdnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "column {}: {}", self.column, self.message)
    }
}

/// Nesting deeper than this is rejected instead of risking the stack.
const MAX_DEPTH: usize = 128;

/// Parses exactly one EDN form from `text` (surrounding whitespace and comments allowed).
pub fn parse(text: &str) -> Result<Edn, EdnError> {
    let mut p = Parser {
        s: text.as_bytes(),
        text,
        pos: 0,
    };
    p.skip_ws();
    let v = p.form(0)?;
    p.skip_ws();
    if p.pos < p.s.len() {
        return Err(p.err("expected the end of the line after one EDN form"));
    }
    Ok(v)
}

impl Edn {
    /// Converts to JSON's data model: keywords and symbols become strings, sets and lists
    /// become arrays, map keys that are not strings or keywords become their EDN text.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Edn::Nil => J::Null,
            Edn::Bool(b) => J::Bool(*b),
            Edn::Int(i) => J::from(*i),
            Edn::Float(f) => serde_json::Number::from_f64(*f)
                .map(J::Number)
                .unwrap_or_else(|| J::String(f.to_string())),
            Edn::Str(s) | Edn::Keyword(s) | Edn::Symbol(s) => J::String(s.clone()),
            Edn::Char(c) => J::String(c.to_string()),
            Edn::Vector(v) | Edn::List(v) | Edn::Set(v) => {
                J::Array(v.iter().map(Edn::to_json).collect())
            }
            Edn::Map(m) => J::Object(
                m.iter()
                    .map(|(k, v)| (k.key_string(), v.to_json()))
                    .collect(),
            ),
        }
    }

    fn key_string(&self) -> String {
        match self {
            Edn::Str(s) | Edn::Keyword(s) | Edn::Symbol(s) => s.clone(),
            other => other.to_json().to_string(),
        }
    }

    /// A short description for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Edn::Nil => "nil",
            Edn::Bool(_) => "a boolean",
            Edn::Int(_) => "an integer",
            Edn::Float(_) => "a float",
            Edn::Str(_) => "a string",
            Edn::Char(_) => "a character",
            Edn::Keyword(_) => "a keyword",
            Edn::Symbol(_) => "a symbol",
            Edn::Vector(_) => "a vector",
            Edn::List(_) => "a list",
            Edn::Set(_) => "a set",
            Edn::Map(_) => "a map",
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    text: &'a str,
    pos: usize,
}

fn is_delimiter(b: u8) -> bool {
    b.is_ascii_whitespace()
        || matches!(
            b,
            b',' | b'(' | b')' | b'[' | b']' | b'{' | b'}' | b'"' | b';'
        )
}

impl Parser<'_> {
    fn err(&self, message: impl Into<String>) -> EdnError {
        EdnError {
            column: self.text[..self.pos.min(self.text.len())].chars().count() + 1,
            message: message.into(),
        }
    }

    fn skip_ws(&mut self) {
        while let Some(&b) = self.s.get(self.pos) {
            if b.is_ascii_whitespace() || b == b',' {
                self.pos += 1;
            } else if b == b';' {
                while self.pos < self.s.len() && self.s[self.pos] != b'\n' {
                    self.pos += 1;
                }
            } else {
                break;
            }
        }
    }

    fn form(&mut self, depth: usize) -> Result<Edn, EdnError> {
        if depth > MAX_DEPTH {
            return Err(self.err(format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        let Some(&b) = self.s.get(self.pos) else {
            return Err(self.err("expected an EDN value, found the end of the line"));
        };
        match b {
            b'[' => {
                self.pos += 1;
                Ok(Edn::Vector(self.seq(b']', depth)?))
            }
            b'(' => {
                self.pos += 1;
                Ok(Edn::List(self.seq(b')', depth)?))
            }
            b'{' => {
                self.pos += 1;
                self.map(depth)
            }
            b'"' => self.string(),
            b'\\' => self.character(),
            b':' => {
                self.pos += 1;
                let tok = self.token();
                if tok.is_empty() {
                    return Err(self.err("expected a keyword name after ':'"));
                }
                Ok(Edn::Keyword(tok.to_string()))
            }
            b'#' => {
                self.pos += 1;
                match self.s.get(self.pos) {
                    Some(b'{') => {
                        self.pos += 1;
                        Ok(Edn::Set(self.seq(b'}', depth)?))
                    }
                    Some(b'_') => {
                        self.pos += 1;
                        self.skip_ws();
                        self.form(depth + 1)?;
                        self.skip_ws();
                        self.form(depth + 1)
                    }
                    Some(c) if c.is_ascii_alphabetic() => {
                        // A tagged literal: the tag is informative only.
                        self.token();
                        self.skip_ws();
                        self.form(depth + 1)
                    }
                    _ => Err(self.err("expected '{', '_' or a tag after '#'")),
                }
            }
            b')' | b']' | b'}' => Err(self.err(format!("unexpected '{}'", b as char))),
            _ => self.atom(),
        }
    }

    fn seq(&mut self, close: u8, depth: usize) -> Result<Vec<Edn>, EdnError> {
        let mut items = Vec::new();
        loop {
            self.skip_ws();
            match self.s.get(self.pos) {
                None => {
                    return Err(self.err(format!(
                        "expected '{}' to close the collection, found the end of the line",
                        close as char
                    )))
                }
                Some(&c) if c == close => {
                    self.pos += 1;
                    return Ok(items);
                }
                Some(_) => items.push(self.form(depth + 1)?),
            }
        }
    }

    fn map(&mut self, depth: usize) -> Result<Edn, EdnError> {
        let items = self.seq(b'}', depth)?;
        if items.len() % 2 != 0 {
            return Err(self.err("a map needs an even number of forms (key value pairs)"));
        }
        let mut pairs = Vec::with_capacity(items.len() / 2);
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            pairs.push((k, v));
        }
        Ok(Edn::Map(pairs))
    }

    fn string(&mut self) -> Result<Edn, EdnError> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            let rest = &self.text[self.pos..];
            let Some(c) = rest.chars().next() else {
                return Err(self.err("unterminated string"));
            };
            self.pos += c.len_utf8();
            match c {
                '"' => return Ok(Edn::Str(out)),
                '\\' => {
                    let Some(e) = self.text[self.pos..].chars().next() else {
                        return Err(self.err("unterminated string escape"));
                    };
                    self.pos += e.len_utf8();
                    out.push(match e {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        '"' => '"',
                        '\\' => '\\',
                        'u' => {
                            let hex = self
                                .text
                                .get(self.pos..self.pos + 4)
                                .ok_or_else(|| self.err("expected four hex digits after \\u"))?;
                            let code = u32::from_str_radix(hex, 16)
                                .ok()
                                .and_then(char::from_u32)
                                .ok_or_else(|| self.err("invalid \\u escape"))?;
                            self.pos += 4;
                            code
                        }
                        other => return Err(self.err(format!("unknown string escape \\{other}"))),
                    });
                }
                c => out.push(c),
            }
        }
    }

    fn character(&mut self) -> Result<Edn, EdnError> {
        self.pos += 1;
        let start = self.pos;
        let Some(first) = self.text[self.pos..].chars().next() else {
            return Err(self.err("expected a character after '\\'"));
        };
        self.pos += first.len_utf8();
        while self.pos < self.s.len() && !is_delimiter(self.s[self.pos]) {
            self.pos += 1;
        }
        let name = &self.text[start..self.pos];
        let c = match name {
            "newline" => '\n',
            "space" => ' ',
            "tab" => '\t',
            "return" => '\r',
            _ if name.chars().count() == 1 => first,
            _ => return Err(self.err(format!("unknown character literal \\{name}"))),
        };
        Ok(Edn::Char(c))
    }

    /// The run of non-delimiter bytes at the cursor (always on a char boundary: delimiters are ASCII).
    fn token(&mut self) -> &str {
        let start = self.pos;
        while self.pos < self.s.len() && !is_delimiter(self.s[self.pos]) {
            self.pos += 1;
        }
        &self.text[start..self.pos]
    }

    fn atom(&mut self) -> Result<Edn, EdnError> {
        let start = self.pos;
        let tok = self.token().to_string();
        if tok.is_empty() {
            self.pos = start;
            return Err(self.err("expected an EDN value"));
        }
        let first = tok.as_bytes()[0];
        let numeric = first.is_ascii_digit()
            || ((first == b'-' || first == b'+')
                && tok.len() > 1
                && tok.as_bytes()[1].is_ascii_digit());
        if numeric {
            let digits = tok.strip_suffix('N').unwrap_or(&tok);
            if let Ok(i) = digits.parse::<i64>() {
                return Ok(Edn::Int(i));
            }
            let float = tok.strip_suffix('M').unwrap_or(&tok);
            if let Ok(f) = float.parse::<f64>() {
                return Ok(Edn::Float(f));
            }
            self.pos = start;
            return Err(self.err(format!("invalid number {tok:?}")));
        }
        Ok(match tok.as_str() {
            "nil" => Edn::Nil,
            "true" => Edn::Bool(true),
            "false" => Edn::Bool(false),
            _ => Edn::Symbol(tok),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_jepsen_op_map() {
        let v = parse(r#"{:type :invoke, :f :txn, :value [[:append 5 3] [:r 5 [1 2 3]]], :process 0, :time 123, :index 5}"#).unwrap();
        assert_eq!(
            v.to_json(),
            serde_json::json!({"type": "invoke", "f": "txn", "value": [["append", 5, 3], ["r", 5, [1, 2, 3]]],
                               "process": 0, "time": 123, "index": 5})
        );
    }

    #[test]
    fn reads_atoms_sets_tags_and_comments() {
        let v = parse(r#"#jepsen.history.Op{:a #{1 2}, :b "x\"y", :c -4.5, :d nil, :e \a, :g true, #_ :skipped :h sym} ; trailing"#).unwrap();
        assert_eq!(
            v.to_json(),
            serde_json::json!({"a": [1, 2], "b": "x\"y", "c": -4.5, "d": null, "e": "a", "g": true, "h": "sym"})
        );
    }

    #[test]
    fn errors_name_the_column() {
        let e = parse("{:type :invoke, :f}").unwrap_err();
        assert!(e.message.contains("even number"), "{e}");
        let e = parse("{:type :invoke, :f").unwrap_err();
        assert!(e.message.contains("expected '}'"), "{e}");
        let e = parse("[1 2").unwrap_err();
        assert_eq!(e.column, 5);
        assert!(e.message.contains("']'"), "{e}");
        let e = parse("{:a 1} x").unwrap_err();
        assert!(e.message.contains("end of the line"), "{e}");
        let e = parse(&"[".repeat(1000)).unwrap_err();
        assert!(e.message.contains("nesting"), "{e}");
    }
}

//! Targeted cache-control fields (RFC 9213): `Rocket-Route-Cache-Control`, aimed at this cache
//! alone, and `CDN-Cache-Control`, aimed at every CDN-like cache, which this one is. They let an
//! app tell browsers one thing in `Cache-Control` and the caches in front of it another.
//!
//! A targeted field is a Structured Field Dictionary (RFC 8941 section 3.2), read strictly: one
//! that does not parse, or is empty, is ignored as if absent (RFC 9213 section 2.1), and the next
//! field of the target list, then `Cache-Control` and `Expires`, decide.

/// This cache's target list (RFC 9213 section 2.2), most specific first.
pub(crate) const TARGET_LIST: [&str; 2] = [OWN_FIELD, "CDN-Cache-Control"];

/// The field only this cache reads. It is removed from what is stored and sent: no cache
/// downstream is this one, and it would tell clients how the origin tunes its own cache.
/// `CDN-Cache-Control` is kept and forwarded, for a CDN in front of the app.
pub(crate) const OWN_FIELD: &str = "Rocket-Route-Cache-Control";

/// Returns the directives of the first field of the target list that `lines` (a header name to
/// its lines) holds valid and non-empty, as `Cache-Control` directives: name, and argument as
/// text (`None` for a bare directive). `None`: no such field, `Cache-Control` decides.
pub(crate) fn select<'v, L>(
    lines: impl Fn(&'static str) -> L,
) -> Option<Vec<(&'v str, Option<String>)>>
where
    L: Iterator<Item = &'v str>,
{
    TARGET_LIST.iter().find_map(|name| {
        let mut members = Vec::new();
        let mut present = false;
        for line in lines(name) {
            present = true;
            dictionary(line, &mut members)?;
        }
        (present && !members.is_empty()).then_some(members)
    })
}

/// The directives whose value is a number of seconds: in a targeted field, an Integer (RFC 8941
/// 3.3.1), not negative.
const SECONDS: [&str; 4] = [
    "max-age",
    "s-maxage",
    "stale-while-revalidate",
    "stale-if-error",
];

/// Parses one field line as an RFC 8941 dictionary into `members` (several lines are one
/// dictionary; a repeated key keeps its last value). `None` on any parse error, and for a
/// member of the wrong type (`max-age="60"`, a String): the field is then ignored as a whole
/// (RFC 9213 section 2.1), not read as another cache would read `Cache-Control`.
fn dictionary<'v>(line: &'v str, members: &mut Vec<(&'v str, Option<String>)>) -> Option<()> {
    let mut input = Input(line.trim_matches(' '));
    while !input.0.is_empty() {
        let key = input.key()?;
        let value = if input.eat('=') {
            let (value, seconds) = input.member_value()?;
            if SECONDS.contains(&key) && !seconds {
                return None;
            }
            value
        } else {
            if SECONDS.contains(&key) {
                return None;
            }
            input.parameters()?;
            None
        };
        members.retain(|(seen, _)| *seen != key);
        members.push((key, value));
        input.skip_ows();
        if input.0.is_empty() {
            break;
        }
        if !input.eat(',') {
            return None;
        }
        input.skip_ows();
        // A trailing comma is an error.
        if input.0.is_empty() {
            return None;
        }
    }
    Some(())
}

/// What is left of a field line to parse.
struct Input<'v>(&'v str);

impl<'v> Input<'v> {
    fn peek(&self) -> Option<char> {
        self.0.chars().next()
    }

    fn eat(&mut self, c: char) -> bool {
        match self.0.strip_prefix(c) {
            Some(rest) => {
                self.0 = rest;
                true
            }
            None => false,
        }
    }

    fn skip_ows(&mut self) {
        self.0 = self.0.trim_start_matches([' ', '\t']);
    }

    /// Takes the longest prefix whose characters satisfy `allowed`.
    fn take_while(&mut self, allowed: impl Fn(char) -> bool) -> &'v str {
        let end = self.0.find(|c| !allowed(c)).unwrap_or(self.0.len());
        let (taken, rest) = self.0.split_at(end);
        self.0 = rest;
        taken
    }

    /// Parses a key: `key = ( lcalpha / "*" ) *( lcalpha / DIGIT / "_" / "-" / "." / "*" )`.
    fn key(&mut self) -> Option<&'v str> {
        if !self
            .peek()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '*')
        {
            return None;
        }
        Some(self.take_while(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.' | '*')
        }))
    }

    /// Parses an item or an inner list, with its parameters; as text for the directive's
    /// argument, and whether it is a number of seconds (an Integer, not negative).
    fn member_value(&mut self) -> Option<(Option<String>, bool)> {
        let value = if self.eat('(') {
            loop {
                self.0 = self.0.trim_start_matches(' ');
                if self.eat(')') {
                    break;
                }
                self.bare_item()?;
                self.parameters()?;
                if !matches!(self.peek(), Some(' ' | ')')) {
                    return None;
                }
            }
            // No directive takes a list: an argument no delta-seconds reader accepts.
            (Some("()".to_owned()), false)
        } else {
            let seconds = self.peek().is_some_and(|c| c.is_ascii_digit());
            let value = self.bare_item()?;
            let seconds = seconds && value.as_deref().is_some_and(|v| !v.contains('.'));
            (value, seconds)
        };
        self.parameters()?;
        Some(value)
    }

    /// Parses parameters (a malformed one fails the field) and ignores them (RFC 9213 2.1).
    fn parameters(&mut self) -> Option<()> {
        while self.eat(';') {
            self.0 = self.0.trim_start_matches(' ');
            self.key()?;
            if self.eat('=') {
                self.bare_item()?;
            }
        }
        Some(())
    }

    /// Parses a bare item as a directive argument: `None` for boolean true (a bare directive).
    fn bare_item(&mut self) -> Option<Option<String>> {
        match self.peek()? {
            '-' | '0'..='9' => self.number().map(|n| Some(n.to_owned())),
            '"' => self.string().map(Some),
            ':' => {
                self.eat(':');
                let bytes = self.take_while(|c| c.is_ascii_alphanumeric() || "+/=".contains(c));
                self.eat(':').then(|| Some(format!(":{bytes}:")))
            }
            '?' => {
                self.eat('?');
                if self.eat('1') {
                    Some(None)
                } else {
                    self.eat('0').then(|| Some("?0".to_owned()))
                }
            }
            c if c.is_ascii_alphabetic() || c == '*' => {
                let token = self
                    .take_while(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~:/".contains(c));
                Some(Some(token.to_owned()))
            }
            _ => None,
        }
    }

    /// Parses an integer (at most 15 digits) or a decimal (at most 12 integer and 3 fraction
    /// digits).
    fn number(&mut self) -> Option<&'v str> {
        let start = self.0;
        let negative = usize::from(self.eat('-'));
        let integer = self.take_while(|c| c.is_ascii_digit()).len();
        if integer == 0 {
            return None;
        }
        let mut taken = negative + integer;
        if self.eat('.') {
            let fraction = self.take_while(|c| c.is_ascii_digit()).len();
            if integer > 12 || !(1..=3).contains(&fraction) {
                return None;
            }
            taken += 1 + fraction;
        } else if integer > 15 {
            return None;
        }
        Some(&start[..taken])
    }

    /// Parses a string: printable ASCII, `\"` and `\\` the only escapes.
    fn string(&mut self) -> Option<String> {
        self.eat('"');
        let mut text = String::new();
        let mut chars = self.0.char_indices();
        while let Some((at, c)) = chars.next() {
            match c {
                '"' => {
                    self.0 = &self.0[at + 1..];
                    return Some(text);
                }
                '\\' => match chars.next() {
                    Some((_, escaped @ ('"' | '\\'))) => text.push(escaped),
                    _ => return None,
                },
                ' '..='~' => text.push(c),
                _ => return None,
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Option<Vec<(&str, Option<String>)>> {
        let mut members = Vec::new();
        dictionary(line, &mut members).map(|()| members)
    }

    fn owned(members: &[(&'static str, Option<&str>)]) -> Vec<(&'static str, Option<String>)> {
        members
            .iter()
            .map(|(name, argument)| (*name, argument.map(str::to_owned)))
            .collect()
    }

    #[test]
    fn dictionaries_parse_as_rfc_8941_says() {
        assert_eq!(
            parse("max-age=3600, stale-while-revalidate=30"),
            Some(owned(&[
                ("max-age", Some("3600")),
                ("stale-while-revalidate", Some("30"))
            ]))
        );
        assert_eq!(
            parse("no-cache=\"Set-Cookie, X-A\";x=1, public"),
            Some(owned(&[
                ("no-cache", Some("Set-Cookie, X-A")),
                ("public", None)
            ]))
        );
        assert_eq!(
            parse("max-age=60,max-age=10"),
            Some(owned(&[("max-age", Some("10"))])),
            "a repeated key keeps its last value"
        );
        assert_eq!(parse("none"), Some(owned(&[("none", None)])));
        assert_eq!(parse("private=?1"), Some(owned(&[("private", None)])));
        assert_eq!(
            parse("a=1.5, max-age=0"),
            Some(owned(&[("a", Some("1.5")), ("max-age", Some("0"))]))
        );
        assert_eq!(
            parse("a=(1 2);p, b=:AQ==:"),
            Some(owned(&[("a", Some("()")), ("b", Some(":AQ==:"))]))
        );
        assert_eq!(parse(""), Some(Vec::new()));
        for invalid in [
            "Max-Age=60",
            "max-age=60,",
            "max-age=60;",
            "max-age=",
            "max-age=60 public",
            "=60",
            "max-age=\"unterminated",
            "max-age=1234567890123456",
            "a=1.2345",
            "a=?2",
            "a=(1 2",
            "no-cache=\"bad \\n escape\"",
            // Well-formed, but a number of seconds of the wrong type: the field is ignored
            // (the cache-tests suite's `cdn-cc-invalid-sh-type-wrong`).
            "max-age=\"10000\"",
            "s-maxage=1.5",
            "stale-while-revalidate=-1",
            "stale-if-error=?1",
            "max-age",
            "max-age=(60)",
            "max-age=sixty",
        ] {
            assert_eq!(parse(invalid), None, "{invalid:?}");
        }
    }

    #[test]
    fn the_first_valid_non_empty_field_of_the_target_list_is_selected() {
        let select_from = |fields: &[(&'static str, &'static str)]| {
            let fields = fields.to_vec();
            select(move |name: &'static str| {
                fields
                    .clone()
                    .into_iter()
                    .filter(move |(field, _)| field.eq_ignore_ascii_case(name))
                    .map(|(_, value)| value)
            })
        };
        let both = [
            ("CDN-Cache-Control", "max-age=600"),
            ("Rocket-Route-Cache-Control", "max-age=60"),
        ];
        assert_eq!(select_from(&both), Some(owned(&[("max-age", Some("60"))])));
        let own_invalid = [
            ("Rocket-Route-Cache-Control", "Max-Age=60"),
            ("CDN-Cache-Control", "max-age=600"),
        ];
        assert_eq!(
            select_from(&own_invalid),
            Some(owned(&[("max-age", Some("600"))]))
        );
        let own_empty = [
            ("Rocket-Route-Cache-Control", ""),
            ("CDN-Cache-Control", "none"),
        ];
        assert_eq!(select_from(&own_empty), Some(owned(&[("none", None)])));
        // Several lines are one dictionary; one bad line spoils the field.
        let lines = [
            ("CDN-Cache-Control", "max-age=600"),
            ("CDN-Cache-Control", "public"),
        ];
        assert_eq!(
            select_from(&lines),
            Some(owned(&[("max-age", Some("600")), ("public", None)]))
        );
        let spoiled = [
            ("CDN-Cache-Control", "max-age=600"),
            ("CDN-Cache-Control", "x="),
        ];
        assert_eq!(select_from(&spoiled), None);
        assert_eq!(select_from(&[("Cache-Control", "max-age=1")]), None);
    }
}

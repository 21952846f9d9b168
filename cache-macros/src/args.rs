//! `#[cached_route(...)]` arguments, parsed into typed values that keep their spans.

use proc_macro2::{Span, TokenStream};
use syn::parse::{Parse, ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{Expr, ExprArray, ExprLit, ExprUnary, Ident, Lit, LitStr, Token, UnOp};

/// Every option the attribute accepts, in the order the docs list them.
const ACCEPTED: &[&str] = &[
    "ttl",
    "vary",
    "vary_cookies",
    "public",
    "query",
    "statuses",
    "honor_no_cache",
    "stale",
    "stale_if_error",
    "tags",
    "trusted_guards",
];

/// Which query parameters the key holds.
#[derive(Clone)]
pub(crate) enum Query {
    /// Every parameter, normalized (the default).
    All,
    /// Only these names (and any pair whose name could hide one of them).
    Only(Vec<LitStr>),
    /// None: the route declares that its response does not depend on the query.
    Ignored,
}

/// The parsed arguments.
pub(crate) struct Args {
    /// Seconds an entry is served; at least 1.
    pub(crate) ttl: u32,
    /// Request headers whose values are part of the key, as written (validated tokens).
    pub(crate) vary: Vec<LitStr>,
    /// Cookies whose values are part of the key.
    pub(crate) vary_cookies: Vec<LitStr>,
    /// The route's responses are the same for every client: `Authorization` requests may be
    /// served and stored, and per-user parameter types are allowed.
    pub(crate) public: Option<Span>,
    pub(crate) query: Query,
    /// Statuses that may be stored (default: only 200).
    pub(crate) statuses: Vec<u16>,
    /// A request's `Cache-Control: no-cache` runs the handler and refreshes the entry.
    pub(crate) honor_no_cache: bool,
    /// Seconds past the TTL an entry is served while one request refreshes it.
    pub(crate) stale: u32,
    /// Seconds past the TTL an entry stands in for a failing handler.
    pub(crate) stale_if_error: u32,
    /// Tags, as written: `"article:{id}"` names the route parameter `id`.
    pub(crate) tags: Vec<Tag>,
    /// Request guard parameters the route vouches for: their values do not change the page
    /// beyond what the key holds. Every other guard's type is checked.
    pub(crate) trusted_guards: Vec<LitStr>,
}

/// One tag: its literal, and the route parameters it names, in order.
pub(crate) struct Tag {
    pub(crate) literal: LitStr,
    pub(crate) names: Vec<String>,
}

impl std::fmt::Debug for Args {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = |list: &[LitStr]| list.iter().map(LitStr::value).collect::<Vec<_>>();
        f.debug_struct("Args")
            .field("ttl", &self.ttl)
            .field("vary", &names(&self.vary))
            .field("vary_cookies", &names(&self.vary_cookies))
            .field("public", &self.public.is_some())
            .field("statuses", &self.statuses)
            .field("honor_no_cache", &self.honor_no_cache)
            .field("stale", &self.stale)
            .field("stale_if_error", &self.stale_if_error)
            .field(
                "tags",
                &self
                    .tags
                    .iter()
                    .map(|t| t.literal.value())
                    .collect::<Vec<_>>(),
            )
            .field("trusted_guards", &names(&self.trusted_guards))
            .finish_non_exhaustive()
    }
}

/// One `name` or `name = value` item.
struct Item {
    name: Ident,
    value: Option<Expr>,
}

impl Parse for Item {
    fn parse(input: ParseStream<'_>) -> syn::Result<Item> {
        let name: Ident = input.call(syn::ext::IdentExt::parse_any)?;
        let value = if input.peek(Token![=]) {
            input.parse::<Token![=]>()?;
            Some(input.parse()?)
        } else {
            None
        };
        Ok(Item { name, value })
    }
}

/// Accumulates options, rejecting unknown and repeated keys in one place.
#[derive(Default)]
struct Builder {
    ttl: Option<u32>,
    vary: Vec<LitStr>,
    vary_cookies: Vec<LitStr>,
    public: Option<Span>,
    query: Option<Query>,
    statuses: Option<Vec<u16>>,
    honor_no_cache: bool,
    stale: u32,
    stale_if_error: u32,
    tags: Vec<Tag>,
    trusted_guards: Vec<LitStr>,
    seen: Vec<String>,
}

impl Builder {
    fn set(&mut self, item: Item) -> syn::Result<()> {
        let key = item.name.to_string();
        if !ACCEPTED.contains(&key.as_str()) {
            return Err(syn::Error::new(
                item.name.span(),
                format!(
                    "unknown option `{key}`; accepted options: {}",
                    accepted_list()
                ),
            ));
        }
        if self.seen.contains(&key) {
            return Err(syn::Error::new(
                item.name.span(),
                format!("duplicate option `{key}`; give it once"),
            ));
        }
        self.seen.push(key.clone());
        // Flags: written bare (`public`) or as `= true` / `= false`.
        if key == "public" || key == "honor_no_cache" {
            let on = match &item.value {
                None => true,
                Some(value) => parse_bool(&key, value)?,
            };
            match key.as_str() {
                "public" => self.public = on.then(|| item.name.span()),
                _ => self.honor_no_cache = on,
            }
            return Ok(());
        }
        let value = item.value.ok_or_else(|| {
            let example = match key.as_str() {
                "ttl" => "ttl = 60",
                "stale" => "stale = 30",
                "stale_if_error" => "stale_if_error = 3600",
                "vary" => "vary = [\"Accept-Language\"]",
                "vary_cookies" => "vary_cookies = [\"lang\"]",
                "query" => "query = [\"page\", \"sort\"]",
                "tags" => "tags = [\"articles\", \"article:{id}\"]",
                "trusted_guards" => "trusted_guards = [\"db\"]",
                _ => "statuses = [200, 404]",
            };
            syn::Error::new(
                item.name.span(),
                format!("`{key}` needs a value, for example `{example}`"),
            )
        })?;
        match key.as_str() {
            "ttl" => self.ttl = Some(parse_seconds("ttl", &value)?),
            "stale" => self.stale = parse_seconds("stale", &value)?,
            "stale_if_error" => self.stale_if_error = parse_seconds("stale_if_error", &value)?,
            "vary" => self.vary = parse_names(&value, "vary", NameKind::Header)?,
            "vary_cookies" => {
                self.vary_cookies = parse_names(&value, "vary_cookies", NameKind::Cookie)?
            }
            "query" => self.query = Some(parse_query(&value)?),
            "statuses" => self.statuses = Some(parse_statuses(&value)?),
            "tags" => self.tags = parse_tags(&value)?,
            "trusted_guards" => self.trusted_guards = parse_parameter_names(&value)?,
            _ => unreachable!("every accepted key is handled"),
        }
        Ok(())
    }

    fn finish(self) -> syn::Result<Args> {
        let ttl = self.ttl.ok_or_else(|| {
            syn::Error::new(
                Span::call_site(),
                "missing `ttl`: say how many seconds a response is served from the cache, \
                 for example `#[cached_route(ttl = 60)]`",
            )
        })?;
        Ok(Args {
            ttl,
            vary: self.vary,
            vary_cookies: self.vary_cookies,
            public: self.public,
            query: self.query.unwrap_or(Query::All),
            statuses: self.statuses.unwrap_or_else(|| vec![200]),
            honor_no_cache: self.honor_no_cache,
            stale: self.stale,
            stale_if_error: self.stale_if_error,
            tags: self.tags,
            trusted_guards: self.trusted_guards,
        })
    }
}

fn accepted_list() -> String {
    ACCEPTED
        .iter()
        .map(|key| format!("`{key}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn parse_bool(key: &str, value: &Expr) -> syn::Result<bool> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Bool(flag),
            ..
        }) => Ok(flag.value),
        _ => Err(syn::Error::new_spanned(
            value,
            format!("`{key}` is a flag: write `{key}` alone, or `{key} = true` / `{key} = false`"),
        )),
    }
}

/// A whole, positive number of seconds (`ttl`, `stale`, `stale_if_error`).
fn parse_seconds(key: &str, value: &Expr) -> syn::Result<u32> {
    let hint =
        format!("write the number of seconds as a whole number literal, for example `{key} = 60`");
    let error = |message: &str| Err(syn::Error::new_spanned(value, format!("{message}; {hint}")));
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Int(int), ..
        }) => match int.base10_parse::<u64>() {
            Ok(0) if key == "ttl" => Err(syn::Error::new(
                int.span(),
                "`ttl` must be at least 1 second: a response cached for 0 seconds is never served \
                 from the cache; remove #[cached_route] to disable caching",
            )),
            Ok(0) => Err(syn::Error::new(
                int.span(),
                format!("`{key}` must be at least 1 second; to turn it off, leave `{key}` out"),
            )),
            Ok(seconds) => u32::try_from(seconds)
                .or_else(|_| error(&format!("`{key}` is too large: at most 4294967295 seconds"))),
            Err(_) => error(&format!("`{key}` must be a whole number of seconds")),
        },
        Expr::Unary(ExprUnary {
            op: UnOp::Neg(_), ..
        }) => error(&format!("`{key}` must be positive")),
        Expr::Lit(ExprLit {
            lit: Lit::Float(_), ..
        }) => error(&format!("`{key}` must be a whole number of seconds")),
        Expr::Lit(ExprLit {
            lit: Lit::Str(_), ..
        }) => error(&format!("`{key}` must be a number, not a string")),
        _ => error(&format!("`{key}` must be an integer literal")),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum NameKind {
    Header,
    Cookie,
}

/// The elements of an array literal, or an error naming the expected form.
fn array<'e>(value: &'e Expr, key: &str, example: &str) -> syn::Result<&'e ExprArray> {
    match value {
        Expr::Array(array) => Ok(array),
        _ => Err(syn::Error::new_spanned(
            value,
            format!("`{key}` takes a list, for example `{key} = {example}`"),
        )),
    }
}

fn string_literal<'e>(element: &'e Expr, key: &str) -> syn::Result<&'e LitStr> {
    match element {
        Expr::Lit(ExprLit {
            lit: Lit::Str(text),
            ..
        }) => Ok(text),
        _ => Err(syn::Error::new_spanned(
            element,
            format!("`{key}` lists names as string literals, for example \"Accept-Language\""),
        )),
    }
}

/// A list of header or cookie names: tokens (RFC 9110 / RFC 6265), no duplicates (headers
/// compare case-insensitively, cookies exactly).
fn parse_names(value: &Expr, key: &str, kind: NameKind) -> syn::Result<Vec<LitStr>> {
    let example = match kind {
        NameKind::Header => "[\"Accept-Language\"]",
        NameKind::Cookie => "[\"lang\"]",
    };
    let mut names: Vec<LitStr> = Vec::new();
    for element in &array(value, key, example)?.elems {
        let name = string_literal(element, key)?;
        let text = name.value();
        let is_token = !text.is_empty()
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !is_token {
            let what = match kind {
                NameKind::Header => "a header name",
                NameKind::Cookie => "a cookie name",
            };
            return Err(syn::Error::new(
                name.span(),
                format!(
                    "`{text}` is not {what}: use letters, digits and `!#$%&'*+-.^_`|~`, \
                     no spaces or separators"
                ),
            ));
        }
        if kind == NameKind::Header && text.eq_ignore_ascii_case("cookie") {
            return Err(syn::Error::new(
                name.span(),
                "vary on the cookies the page reads, not the whole `Cookie` header: \
                 `vary_cookies = [\"name\"]`",
            ));
        }
        let duplicate = names.iter().any(|seen| match kind {
            NameKind::Header => seen.value().eq_ignore_ascii_case(&text),
            NameKind::Cookie => seen.value() == text,
        });
        if duplicate {
            return Err(syn::Error::new(
                name.span(),
                format!("`{text}` is listed twice in `{key}`"),
            ));
        }
        names.push(name.clone());
    }
    Ok(names)
}

/// Tags: string literals whose `{name}` placeholders name route parameters (checked against
/// the route later); `{{` and `}}` are literal braces.
fn parse_tags(value: &Expr) -> syn::Result<Vec<Tag>> {
    let mut tags: Vec<Tag> = Vec::new();
    for element in &array(value, "tags", "[\"articles\", \"article:{id}\"]")?.elems {
        let Expr::Lit(ExprLit {
            lit: Lit::Str(literal),
            ..
        }) = element
        else {
            return Err(syn::Error::new_spanned(
                element,
                "`tags` lists string literals, for example \"articles\" or \"article:{id}\"",
            ));
        };
        let text = literal.value();
        if text.is_empty() {
            return Err(syn::Error::new(literal.span(), "a tag cannot be empty"));
        }
        if tags.iter().any(|seen| seen.literal.value() == text) {
            return Err(syn::Error::new(
                literal.span(),
                format!("`{text}` is listed twice in `tags`"),
            ));
        }
        let names = placeholders(&text).map_err(|why| syn::Error::new(literal.span(), why))?;
        tags.push(Tag {
            literal: literal.clone(),
            names,
        });
    }
    Ok(tags)
}

/// The `{name}` placeholders of a tag, or why it is malformed.
fn placeholders(text: &str) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
            }
            '{' => {
                let mut name = String::new();
                let mut closed = false;
                for c in chars.by_ref() {
                    if c == '}' {
                        closed = true;
                        break;
                    }
                    name.push(c);
                }
                if !closed {
                    return Err(format!(
                        "unclosed `{{{name}` in a tag; write `{{{{` for a brace, `{{name}}` for a \
                         parameter"
                    ));
                }
                let is_ident = name
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_alphabetic() || c == '_')
                    && name.chars().all(|c| c.is_alphanumeric() || c == '_');
                if !is_ident || name == "_" {
                    return Err(format!(
                        "`{{{name}}}` in a tag must name a route parameter, as in \
                         \"article:{{id}}\" (no format specs; write `{{{{` for a brace)"
                    ));
                }
                names.push(name);
            }
            '}' => {
                return Err(
                    "unmatched `}` in a tag; write `}}` for a brace, `{name}` for a parameter"
                        .into(),
                )
            }
            _ => {}
        }
    }
    Ok(names)
}

/// Handler parameter names (`trusted_guards = ["db", "user"]`): identifiers, no duplicates;
/// whether each is a guard parameter of the handler is checked with the handler.
fn parse_parameter_names(value: &Expr) -> syn::Result<Vec<LitStr>> {
    let mut names: Vec<LitStr> = Vec::new();
    for element in &array(value, "trusted_guards", "[\"db\"]")?.elems {
        let Expr::Lit(ExprLit {
            lit: Lit::Str(name),
            ..
        }) = element
        else {
            return Err(syn::Error::new_spanned(
                element,
                "`trusted_guards` lists the handler's parameter names as string literals, for \
                 example `trusted_guards = [\"db\"]`",
            ));
        };
        let text = name.value();
        if syn::parse_str::<Ident>(&text).is_err() {
            return Err(syn::Error::new(
                name.span(),
                format!("`{text}` is not a parameter name"),
            ));
        }
        if names.iter().any(|seen| seen.value() == text) {
            return Err(syn::Error::new(
                name.span(),
                format!("`{text}` is listed twice in `trusted_guards`"),
            ));
        }
        names.push(name.clone());
    }
    Ok(names)
}

fn parse_query(value: &Expr) -> syn::Result<Query> {
    if let Expr::Lit(ExprLit {
        lit: Lit::Bool(flag),
        ..
    }) = value
    {
        return if flag.value {
            Err(syn::Error::new(
                flag.span,
                "`query = true` is the default: remove it, or list the parameters the page \
                 depends on, `query = [\"page\"]`, or ignore the query with `query = false`",
            ))
        } else {
            Ok(Query::Ignored)
        };
    }
    let mut names: Vec<LitStr> = Vec::new();
    for element in &array(value, "query", "[\"page\", \"sort\"]")?.elems {
        let name = string_literal(element, "query")?;
        let text = name.value();
        if text.is_empty() || text.contains(['&', '=', '%', '+', ' ', '#', '?']) {
            return Err(syn::Error::new(
                name.span(),
                format!("`{text}` is not a query parameter name as Rocket matches it"),
            ));
        }
        // Rocket reads a field's name up to the first `.`, `[` or `:` (`page.x`, `page[0]`
        // are fields of `page`); a listed name holding one would never match any pair, and
        // the page would be keyed on nothing from the query.
        if let Some(cut) = text.find(['.', '[', ']', ':']) {
            let field = &text[..cut];
            let help = if field.is_empty() {
                "list the name of the route's parameter".to_owned()
            } else {
                format!("list the parameter itself, `\"{field}\"`: its nested fields count with it")
            };
            return Err(syn::Error::new(
                name.span(),
                format!(
                    "`{text}` can never match a query parameter: Rocket reads a field's name up \
                     to the first `.`, `[` or `:`, so the key would hold no query value for \
                     it.\nhelp: {help}"
                ),
            ));
        }
        if names.iter().any(|seen| seen.value() == text) {
            return Err(syn::Error::new(
                name.span(),
                format!("`{text}` is listed twice in `query`"),
            ));
        }
        names.push(name.clone());
    }
    Ok(Query::Only(names))
}

fn parse_statuses(value: &Expr) -> syn::Result<Vec<u16>> {
    let mut statuses = Vec::new();
    for element in &array(value, "statuses", "[200, 404]")?.elems {
        let code = match element {
            Expr::Lit(ExprLit {
                lit: Lit::Int(int), ..
            }) => int.base10_parse::<u16>().ok(),
            _ => None,
        };
        let Some(code) = code.filter(|code| (200..=599).contains(code)) else {
            return Err(syn::Error::new_spanned(
                element,
                "`statuses` lists HTTP status codes from 200 to 599 as integer literals",
            ));
        };
        if code == 206 {
            return Err(syn::Error::new_spanned(
                element,
                "206 Partial Content answers one `Range`, which the key does not hold: \
                 storing it would serve that part to every client",
            ));
        }
        if (300..=399).contains(&code) && ![301, 308].contains(&code) {
            return Err(syn::Error::new_spanned(
                element,
                format!(
                    "status {code} is not cacheable by default (RFC 9110); of the redirects only \
                     301 and 308 may be stored"
                ),
            ));
        }
        if statuses.contains(&code) {
            return Err(syn::Error::new_spanned(
                element,
                format!("status {code} is listed twice in `statuses`"),
            ));
        }
        statuses.push(code);
    }
    if statuses.is_empty() {
        return Err(syn::Error::new_spanned(
            value,
            "`statuses` needs at least one status; to store nothing, remove #[cached_route]",
        ));
    }
    Ok(statuses)
}

/// Parses the attribute's arguments; every problem found is reported, each on its tokens.
pub(crate) fn parse(tokens: TokenStream) -> syn::Result<Args> {
    let items = Punctuated::<Item, Token![,]>::parse_terminated.parse2(tokens)?;
    let mut builder = Builder::default();
    let mut errors: Option<syn::Error> = None;
    for item in items {
        if let Err(error) = builder.set(item) {
            match &mut errors {
                Some(all) => all.combine(error),
                None => errors = Some(error),
            }
        }
    }
    match errors {
        Some(errors) => Err(errors),
        None => builder.finish(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn message(tokens: TokenStream) -> String {
        parse(tokens).unwrap_err().to_string()
    }

    #[test]
    fn tags_parse_with_their_placeholders() {
        let args = parse(quote!(
            ttl = 1,
            tags = ["articles", "article:{id}:{lang}", "{{x}}"]
        ))
        .unwrap();
        let names: Vec<_> = args.tags.iter().map(|t| t.names.clone()).collect();
        assert_eq!(
            names,
            [vec![], vec!["id".to_owned(), "lang".to_owned()], vec![]]
        );
        for (bad, why) in [
            (quote!(tags = ["a:{id"]), "unclosed"),
            (quote!(tags = ["a:}"]), "unmatched"),
            (quote!(tags = ["a:{}"]), "must name a route parameter"),
            (quote!(tags = ["a:{id:?}"]), "must name a route parameter"),
            (quote!(tags = ["a:{_}"]), "must name a route parameter"),
            (quote!(tags = [""]), "cannot be empty"),
            (quote!(tags = ["a", "a"]), "listed twice"),
            (quote!(tags = [articles]), "string literals"),
            (quote!(tags = "articles"), "takes a list"),
        ] {
            let message = message(quote!(ttl = 1, #bad));
            assert!(message.contains(why), "{bad}: {message}");
        }
    }

    #[test]
    fn ttl_parses() {
        assert_eq!(parse(quote!(ttl = 60)).unwrap().ttl, 60);
        assert_eq!(parse(quote!(ttl = 3600,)).unwrap().ttl, 3600);
        assert_eq!(parse(quote!(ttl = 1_000u32)).unwrap().ttl, 1000);
    }

    #[test]
    fn bad_ttls_say_why() {
        assert!(message(quote!()).starts_with("missing `ttl`"));
        assert!(message(quote!(ttl = 0)).contains("at least 1 second"));
        assert!(message(quote!(ttl = -5)).contains("must be positive"));
        assert!(message(quote!(ttl = 1.5)).contains("whole number"));
        assert!(message(quote!(ttl = "60")).contains("not a string"));
        assert!(message(quote!(ttl = SECONDS)).contains("integer literal"));
        assert!(message(quote!(ttl = 99999999999)).contains("too large"));
        assert!(message(quote!(ttl)).contains("needs a value"));
    }

    #[test]
    fn unknown_and_duplicate_keys_are_rejected() {
        let unknown = message(quote!(ttl = 1, tll = 2));
        assert!(
            unknown.contains("unknown option `tll`") && unknown.contains("`ttl`"),
            "{unknown}"
        );
        assert!(message(quote!(ttl = 1, ttl = 2)).contains("duplicate option `ttl`"));
    }

    #[test]
    fn every_option_parses() {
        let args = parse(quote!(
            ttl = 60,
            vary = ["Accept-Language", "X-Tenant"],
            vary_cookies = ["lang"],
            public,
            query = ["page", "sort"],
            statuses = [200, 404],
            honor_no_cache = true
        ))
        .unwrap();
        assert_eq!(args.vary.len(), 2);
        assert_eq!(args.vary_cookies[0].value(), "lang");
        assert!(args.public.is_some() && args.honor_no_cache);
        assert!(matches!(args.query, Query::Only(ref names) if names.len() == 2));
        assert_eq!(args.statuses, [200, 404]);
        let defaults = parse(quote!(ttl = 1)).unwrap();
        assert_eq!(defaults.statuses, [200]);
        assert!(matches!(defaults.query, Query::All));
        assert!(matches!(
            parse(quote!(ttl = 1, query = false)).unwrap().query,
            Query::Ignored
        ));
    }

    #[test]
    fn bad_names_lists_and_statuses_say_why() {
        assert!(message(quote!(ttl = 1, vary = ["Accept Language"])).contains("not a header name"));
        assert!(message(quote!(ttl = 1, vary = ["accept", "ACCEPT"])).contains("listed twice"));
        assert!(message(quote!(ttl = 1, vary = ["Cookie"])).contains("vary_cookies"));
        assert!(message(quote!(ttl = 1, vary = "Accept")).contains("takes a list"));
        assert!(message(quote!(ttl = 1, vary_cookies = ["a;b"])).contains("not a cookie name"));
        assert!(message(quote!(ttl = 1, statuses = [200, 200])).contains("listed twice"));
        assert!(message(quote!(ttl = 1, statuses = [302])).contains("not cacheable"));
        assert!(message(quote!(ttl = 1, statuses = [99])).contains("from 200 to 599"));
        assert!(message(quote!(ttl = 1, query = true)).contains("default"));
        assert!(message(quote!(ttl = 1, public = "yes")).contains("is a flag"));
    }

    #[test]
    fn stale_windows_parse() {
        let stale = parse(quote!(ttl = 1, stale = 30, stale_if_error = 3600)).unwrap();
        assert_eq!((stale.stale, stale.stale_if_error), (30, 3600));
        assert!(message(quote!(ttl = 1, stale = 0)).contains("leave `stale` out"));
        assert!(message(quote!(ttl = 1, stale_if_error = -1)).contains("must be positive"));
    }
}

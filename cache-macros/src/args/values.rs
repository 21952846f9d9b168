//! The value of each option: literals read into typed values that keep their spans, each
//! rejected at its own tokens with a message that says how to write it.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::{Expr, ExprArray, ExprLit, ExprUnary, Ident, Lit, LitStr, UnOp};

use crate::diagnostics::code;
use crate::paths::{self, Paths};

/// Which query parameters the key holds.
pub(crate) enum Query {
    /// The default: every parameter when the route declares query parameters; otherwise every
    /// parameter only when a request guard may read the query (`&Origin`, a trusted guard),
    /// none when nothing does (`?utm_source=..` shares the entry).
    Default,
    /// Every parameter, normalized (`query = "all"`).
    All,
    /// Only these names (and any pair whose name could hide one of them).
    Only(Vec<LitStr>),
    /// None: the route declares that its response does not depend on the query.
    Ignored,
}

/// One tag: its literal, and the route parameters it names, each once, in order.
pub(crate) struct Tag {
    pub(crate) literal: LitStr,
    pub(crate) names: Vec<String>,
}

pub(super) fn flag(key: &str, value: &Expr) -> syn::Result<bool> {
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

/// A number of seconds (`ttl`, `stale`, `stale_if_error`).
#[derive(Clone)]
pub(crate) enum Seconds {
    /// A literal, checked here.
    Literal(u32),
    /// A constant expression (`15 * 60`, `HOUR`), which a proc macro cannot evaluate: the
    /// generated code checks it ([`Seconds::expression`]).
    Const(Expr),
}

impl Seconds {
    /// Returns the value as a `u32` expression of constant context. A constant expression is
    /// checked where the compiler evaluates it: an integer of any type (`__private::seconds`), in
    /// range (a panic in constant evaluation, which the compiler reports at the user's
    /// expression, naming the option and the range).
    pub(crate) fn expression(&self, key: &str, paths: &Paths) -> TokenStream {
        let expr = match self {
            Seconds::Literal(seconds) => return quote!(#seconds),
            Seconds::Const(expr) => expr,
        };
        let mut tokens = expr.to_token_stream().into_iter();
        let first = tokens
            .next()
            .map_or_else(Span::call_site, |token| token.span());
        let last = tokens.last().map_or(first, |token| token.span());
        let message = if key == "ttl" {
            "`ttl` must be from 1 to 4294967295 seconds: a response cached for 0 seconds is never \
             served from the cache"
                .to_owned()
        } else {
            format!(
                "`{key}` must be from 1 to 4294967295 seconds; to turn it off, leave `{key}` out"
            )
        };
        let check = paths::respanned(paths.seconds(), first);
        // The panic's path at the expression's first token and its arguments at the last, so
        // that the compiler underlines the whole expression.
        let panic = paths::respanned(quote!(::core::panic!), first);
        let mut arguments = proc_macro2::Group::new(
            proc_macro2::Delimiter::Parenthesis,
            paths::respanned(quote!(#message), last),
        );
        arguments.set_span(last);
        // Only the check and the panic carry the user's spans: lints on the conversion (a
        // user's `clippy::pedantic` casts) are about generated code, not the user's.
        let checked = quote_spanned!(first=> #check(&(#expr)));
        quote! {
            {
                #checked;
                let __cache_seconds = (#expr) as i128;
                if __cache_seconds < 1 || __cache_seconds > 4294967295 {
                    #panic #arguments
                }
                __cache_seconds as u32
            }
        }
    }
}

/// Reads a whole, positive number of seconds: an integer literal, checked now, or a constant
/// expression, checked by the compiler. The literal forms that cannot be seconds are refused
/// here, so that they keep their early messages.
pub(super) fn seconds(key: &str, value: &Expr) -> syn::Result<Seconds> {
    let hint = format!(
        "write a whole number of seconds, for example `{key} = 60`, `{key} = 15 * 60` or a \
         constant such as `{key} = HOUR`"
    );
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
                .map(Seconds::Literal)
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
        Expr::Lit(_) => error(&format!("`{key}` must be a number")),
        _ => Ok(Seconds::Const(value.clone())),
    }
}

/// Reads `crate = "path"`: where the runtime crate is reached from the handler's module.
pub(super) fn crate_path(value: &Expr) -> syn::Result<syn::Path> {
    let example = "for example `crate = \"my_cache\"` when Cargo.toml renames the runtime \
                   dependency, or `crate = \"crate::cache\"` for a re-export";
    let Expr::Lit(ExprLit {
        lit: Lit::Str(text),
        ..
    }) = value
    else {
        return Err(syn::Error::new_spanned(
            value,
            format!("`crate` takes a path as a string literal, {example}"),
        ));
    };
    text.parse::<syn::Path>().map_err(|_| {
        syn::Error::new(
            text.span(),
            format!("\"{}\" is not a path; {example}", text.value()),
        )
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum NameKind {
    Header,
    Cookie,
}

/// Returns the elements of an array literal, or an error naming the expected form.
fn array<'e>(value: &'e Expr, key: &str, example: &str) -> syn::Result<&'e ExprArray> {
    match value {
        Expr::Array(array) => Ok(array),
        _ => Err(syn::Error::new_spanned(
            value,
            format!("`{key}` takes a list, for example `{key} = {example}`"),
        )),
    }
}

/// Returns `element` as a string literal, else an error saying what `key` lists, with `example`.
fn string_literal<'e>(element: &'e Expr, key: &str, example: &str) -> syn::Result<&'e LitStr> {
    match element {
        Expr::Lit(ExprLit {
            lit: Lit::Str(text),
            ..
        }) => Ok(text),
        _ => Err(syn::Error::new_spanned(
            element,
            format!("`{key}` lists names as string literals, for example {example}"),
        )),
    }
}

/// Reads a list of header or cookie names: tokens (RFC 9110 / RFC 6265), no duplicates (headers
/// compare case-insensitively, cookies exactly).
pub(super) fn names(value: &Expr, key: &str, kind: NameKind) -> syn::Result<Vec<LitStr>> {
    let example = match kind {
        NameKind::Header => "[\"Accept-Language\"]",
        NameKind::Cookie => "[\"lang\"]",
    };
    let mut names: Vec<LitStr> = Vec::new();
    for element in &array(value, key, example)?.elems {
        let name = string_literal(element, key, "\"Accept-Language\"")?;
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
                    "{} is not {what}: use letters, digits and the characters !#$%&'*+-.^_|~ \
                     or a backtick, no spaces or separators",
                    code(&text)
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
                format!("{} is listed twice in `{key}`", code(&text)),
            ));
        }
        names.push(name.clone());
    }
    Ok(names)
}

/// Reads tags: string literals whose `{name}` placeholders name route parameters (checked against
/// the route later); `{{` and `}}` are literal braces.
pub(super) fn tags(value: &Expr) -> syn::Result<Vec<Tag>> {
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
            return Err(syn::Error::new(
                literal.span(),
                "a tag cannot be empty; remove it, or name what the entries share, such as \
                 \"articles\"",
            ));
        }
        if tags.iter().any(|seen| seen.literal.value() == text) {
            return Err(syn::Error::new(
                literal.span(),
                format!("{} is listed twice in `tags`", code(&text)),
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

/// Returns the `{name}` placeholders of a tag, each once, or why it is malformed.
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
                        "unclosed {} in a tag; write `{{{{` for a brace, `{{name}}` for a \
                         parameter",
                        code(&format!("{{{name}"))
                    ));
                }
                let is_ident = name
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_alphabetic() || c == '_')
                    && name.chars().all(|c| c.is_alphanumeric() || c == '_');
                if !is_ident || name == "_" {
                    return Err(format!(
                        "{} in a tag must name a route parameter, as in \
                         \"article:{{id}}\" (no format specs; write `{{{{` for a brace)",
                        code(&format!("{{{name}}}"))
                    ));
                }
                if !names.contains(&name) {
                    names.push(name);
                }
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

/// Reads handler parameter names (`trusted_guards = ["db", "user"]`): identifiers, no duplicates;
/// whether each is a guard parameter of the handler is checked with the handler.
pub(super) fn parameter_names(value: &Expr) -> syn::Result<Vec<LitStr>> {
    let mut names: Vec<LitStr> = Vec::new();
    for element in &array(value, "trusted_guards", "[\"db\"]")?.elems {
        let name = string_literal(element, "trusted_guards", "\"db\"")?;
        let text = name.value();
        if syn::parse_str::<Ident>(&text).is_err() {
            return Err(syn::Error::new(
                name.span(),
                format!(
                    "{} is not a parameter name; list the handler's request guard parameters \
                     by name, as in `trusted_guards = [\"db\"]`",
                    code(&text)
                ),
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

pub(super) fn query(value: &Expr) -> syn::Result<Query> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Bool(flag),
            ..
        }) if flag.value => Err(syn::Error::new(
            flag.span,
            "`query = true` is not an option: write `query = \"all\"` to key every query \
             parameter, list the parameters the page depends on, `query = [\"page\"]`, or \
             ignore the query with `query = false`",
        )),
        Expr::Lit(ExprLit {
            lit: Lit::Bool(_), ..
        }) => Ok(Query::Ignored),
        Expr::Lit(ExprLit {
            lit: Lit::Str(text),
            ..
        }) => match text.value().as_str() {
            "all" => Ok(Query::All),
            other => Err(syn::Error::new(
                text.span(),
                format!(
                    "{} is not a `query` setting: write `query = \"all\"` (every parameter \
                     counts), `query = [\"page\"]` (the listed ones) or `query = false` (none)",
                    code(&format!("{other:?}"))
                ),
            )),
        },
        list => query_names(list).map(Query::Only),
    }
}

/// Reads `query = ["page", ..]`: names Rocket can match, each once.
fn query_names(value: &Expr) -> syn::Result<Vec<LitStr>> {
    let mut names: Vec<LitStr> = Vec::new();
    for element in &array(value, "query", "[\"page\", \"sort\"]")?.elems {
        let name = string_literal(element, "query", "\"Accept-Language\"")?;
        let text = name.value();
        if text.is_empty() || text.contains(['&', '=', '%', '+', ' ', '#', '?']) {
            return Err(syn::Error::new(
                name.span(),
                format!(
                    "{} is not a query parameter name as Rocket matches it; list the name as \
                     the route declares it, `\"page\"` for `?<page>`",
                    code(&text)
                ),
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
                format!(
                    "list the parameter itself, {}: its nested fields count with it",
                    code(&format!("{field:?}"))
                )
            };
            return Err(syn::Error::new(
                name.span(),
                format!(
                    "{} can never match a query parameter: Rocket reads a field's name up \
                     to the first `.`, `[` or `:`, so the key would hold no query value for \
                     it.\nhelp: {help}",
                    code(&text)
                ),
            ));
        }
        if names.iter().any(|seen| seen.value() == text) {
            return Err(syn::Error::new(
                name.span(),
                format!("{} is listed twice in `query`", code(&text)),
            ));
        }
        names.push(name.clone());
    }
    Ok(names)
}

pub(super) fn statuses(value: &Expr) -> syn::Result<Vec<u16>> {
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
        // Of the 3xx, RFC 9110 section 15.1 makes 300, 301 and 308 heuristically cacheable.
        if (300..=399).contains(&code) && ![300, 301, 308].contains(&code) {
            return Err(syn::Error::new_spanned(
                element,
                format!(
                    "status {code} is not cacheable by default (RFC 9110); of the 3xx statuses \
                     only 300, 301 and 308 may be stored"
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

/// What `downstream` asks the cache to tell the caches and browsers after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Downstream {
    Off,
    /// `Cache-Control: public, max-age=<remaining>`: browsers and shared caches.
    MaxAge,
    /// `Cache-Control: public, max-age=0, s-maxage=<remaining>`: shared caches only.
    SharedMaxAge,
}

/// Reads `downstream = "max-age"` or `downstream = "s-maxage"`.
pub(super) fn downstream(value: &Expr) -> syn::Result<Downstream> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(text),
            ..
        }) => match text.value().as_str() {
            "max-age" => Ok(Downstream::MaxAge),
            "s-maxage" => Ok(Downstream::SharedMaxAge),
            other => Err(syn::Error::new_spanned(
                text,
                format!(
                    "`downstream = \"{other}\"` is not known: write `downstream = \"max-age\"` \
                     (browsers and shared caches) or `downstream = \"s-maxage\"` (shared caches only)"
                ),
            )),
        },
        _ => Err(syn::Error::new_spanned(
            value,
            "`downstream` takes a string, for example `downstream = \"max-age\"`",
        )),
    }
}

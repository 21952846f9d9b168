//! The handler's Rocket route attribute (`#[get("/a/<id>?<q>")]`, `#[route(GET, uri = "..")]`):
//! its method, its URI, and the parameters the URI declares.

use proc_macro2::{Span, TokenTree};
use quote::ToTokens;
use syn::spanned::Spanned;
use syn::{Attribute, ItemFn, LitStr, Meta};

/// Rocket's route attributes, by name.
const ROUTE_ATTRIBUTES: &[&str] = &[
    "get", "put", "post", "delete", "head", "patch", "options", "route",
];

/// Returns the name of `attr` if it is one of Rocket's route attributes (`#[get]`,
/// `#[rocket::get]`).
pub(crate) fn name(attr: &Attribute) -> Option<String> {
    let path = attr.path();
    let last = path.segments.last()?.ident.to_string();
    let qualified_by_rocket_only = path.segments.len() == 1
        || (path.segments.len() == 2 && path.segments[0].ident == "rocket");
    (qualified_by_rocket_only && ROUTE_ATTRIBUTES.contains(&last.as_str())).then_some(last)
}

/// Returns the first route attribute on `function`: the one Rocket reads.
pub(crate) fn attribute(function: &ItemFn) -> Option<&Attribute> {
    function.attrs.iter().find(|attr| name(attr).is_some())
}

/// Returns the method a route attribute handles, upper-cased, and the tokens that say it.
pub(crate) fn method(attr: &Attribute, name: &str) -> syn::Result<(String, Span)> {
    if name != "route" {
        return Ok((name.to_ascii_uppercase(), attr.path().span()));
    }
    let Meta::List(list) = &attr.meta else {
        return Err(syn::Error::new(
            attr.span(),
            "expected `#[route(GET, uri = \"...\")]`",
        ));
    };
    let first =
        list.tokens.clone().into_iter().next().ok_or_else(|| {
            syn::Error::new(list.span(), "expected `#[route(GET, uri = \"...\")]`")
        })?;
    Ok((first.to_string().to_ascii_uppercase(), first.span()))
}

/// Returns the span of a `data = "<param>"` argument in a route attribute.
pub(crate) fn data_argument(attr: &Attribute) -> Option<Span> {
    let Meta::List(list) = &attr.meta else {
        return None;
    };
    let tokens: Vec<TokenTree> = list.tokens.clone().into_iter().collect();
    tokens.windows(2).find_map(|pair| match pair {
        [TokenTree::Ident(ident), TokenTree::Punct(eq)]
            if ident == "data" && eq.as_char() == '=' =>
        {
            Some(ident.span())
        }
        _ => None,
    })
}

/// Returns the route's URI literal: the first argument of `#[get("..")]`, or `uri = ".."` in
/// `#[route(GET, uri = "..")]`.
pub(crate) fn uri(attr: &Attribute) -> Option<LitStr> {
    let Meta::List(list) = &attr.meta else {
        return None;
    };
    let tokens: Vec<TokenTree> = list.tokens.clone().into_iter().collect();
    let literal = |token: &TokenTree| match token {
        TokenTree::Literal(literal) => syn::parse2::<LitStr>(literal.to_token_stream()).ok(),
        _ => None,
    };
    if let Some(first) = tokens.first().and_then(literal) {
        return Some(first);
    }
    tokens.windows(3).find_map(|window| match window {
        [TokenTree::Ident(ident), TokenTree::Punct(eq), value]
            if ident == "uri" && eq.as_char() == '=' =>
        {
            literal(value)
        }
        _ => None,
    })
}

/// Returns the dynamic query parameters a route URI declares: (`name`, is a trailing `<name..>`).
pub(crate) fn query_parameters(uri: &str) -> Vec<(String, bool)> {
    let Some((_, query)) = uri.split_once('?') else {
        return Vec::new();
    };
    dynamic_segments(query.split('&'))
        .map(|(name, trailing)| (name.to_owned(), trailing))
        .collect()
}

/// Returns every parameter the route URI declares, path and query (`<id>`, `<path..>`, `<q>`),
/// without the ignored `<_>`; in URI order.
pub(crate) fn uri_parameters(uri: &str) -> Vec<String> {
    let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
    dynamic_segments(path.split('/').chain(query.split('&')))
        .map(|(name, _)| name)
        .filter(|name| *name != "_")
        .map(str::to_owned)
        .collect()
}

/// Returns the `<name>` and `<name..>` segments among `segments`: (`name`, is a trailing
/// `<name..>`).
fn dynamic_segments<'u>(
    segments: impl Iterator<Item = &'u str>,
) -> impl Iterator<Item = (&'u str, bool)> {
    segments
        .filter_map(|segment| segment.strip_prefix('<')?.strip_suffix('>'))
        .map(|name| match name.strip_suffix("..") {
            Some(name) => (name, true),
            None => (name, false),
        })
}

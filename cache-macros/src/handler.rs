//! Checks that the attribute sits on a Rocket GET handler it can rewrite.

use quote::ToTokens;
use syn::spanned::Spanned;
use syn::{Attribute, FnArg, ItemFn, Meta, Pat, ReturnType, Type};

use crate::args::{Args, Query};

/// Rocket's route attributes, by name.
const ROUTE_ATTRIBUTES: &[&str] = &[
    "get", "put", "post", "delete", "head", "patch", "options", "route",
];

/// Whether `attr` is one of Rocket's route attributes (`#[get]`, `#[rocket::get]`, ...).
fn route_attribute_name(attr: &Attribute) -> Option<String> {
    let path = attr.path();
    let last = path.segments.last()?.ident.to_string();
    let qualified_by_rocket_only = path.segments.len() == 1
        || (path.segments.len() == 2 && path.segments[0].ident == "rocket");
    (qualified_by_rocket_only && ROUTE_ATTRIBUTES.contains(&last.as_str())).then_some(last)
}

/// The method a `#[route(METHOD, ...)]` attribute names, upper-cased.
fn route_method(attr: &Attribute) -> syn::Result<(String, proc_macro2::Span)> {
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

/// The span of a `data = "<param>"` argument in a route attribute.
fn data_argument(attr: &Attribute) -> Option<proc_macro2::Span> {
    let Meta::List(list) = &attr.meta else {
        return None;
    };
    let tokens: Vec<proc_macro2::TokenTree> = list.tokens.clone().into_iter().collect();
    tokens.windows(2).find_map(|pair| match pair {
        [proc_macro2::TokenTree::Ident(ident), proc_macro2::TokenTree::Punct(eq)]
            if ident == "data" && eq.as_char() == '=' =>
        {
            Some(ident.span())
        }
        _ => None,
    })
}

/// The route's URI literal: the first argument of `#[get("..")]`, or `uri = ".."` in
/// `#[route(GET, uri = "..")]`.
fn route_uri(attr: &Attribute) -> Option<syn::LitStr> {
    let Meta::List(list) = &attr.meta else {
        return None;
    };
    let tokens: Vec<proc_macro2::TokenTree> = list.tokens.clone().into_iter().collect();
    let literal = |token: &proc_macro2::TokenTree| match token {
        proc_macro2::TokenTree::Literal(literal) => {
            syn::parse2::<syn::LitStr>(literal.clone().into_token_stream()).ok()
        }
        _ => None,
    };
    if let Some(first) = tokens.first().and_then(literal) {
        return Some(first);
    }
    tokens.windows(3).find_map(|window| match window {
        [proc_macro2::TokenTree::Ident(ident), proc_macro2::TokenTree::Punct(eq), value]
            if ident == "uri" && eq.as_char() == '=' =>
        {
            literal(value)
        }
        _ => None,
    })
}

/// The dynamic query parameters a route URI declares: (`name`, is a trailing `<name..>`).
fn query_parameters(uri: &str) -> Vec<(String, bool)> {
    let Some((_, query)) = uri.split_once('?') else {
        return Vec::new();
    };
    dynamic_segments(query.split('&'))
        .map(|(name, trailing)| (name.to_owned(), trailing))
        .collect()
}

/// The `<name>` and `<name..>` segments among `segments`: (`name`, is a trailing `<name..>`).
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

/// Every parameter the route URI declares, path and query (`<id>`, `<path..>`, `<q>`), without
/// the ignored `<_>`; in URI order.
fn uri_parameters(uri: &str) -> Vec<String> {
    let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
    dynamic_segments(path.split('/').chain(query.split('&')))
        .map(|(name, _)| name)
        .filter(|name| *name != "_")
        .map(str::to_owned)
        .collect()
}

/// The handler's route parameters (named in its route URI), in the handler's parameter order:
/// what typed invalidation takes and what tags may name. Every one of them is in the key.
pub(crate) fn route_parameters(function: &ItemFn) -> Vec<&syn::PatType> {
    let declared = function
        .attrs
        .iter()
        .find(|attr| route_attribute_name(attr).is_some())
        .and_then(route_uri)
        .map(|uri| uri_parameters(&uri.value()))
        .unwrap_or_default();
    function
        .sig
        .inputs
        .iter()
        .filter_map(|input| match input {
            FnArg::Typed(typed) => match &*typed.pat {
                Pat::Ident(ident) if declared.iter().any(|name| ident.ident == name) => Some(typed),
                _ => None,
            },
            FnArg::Receiver(_) => None,
        })
        .collect()
}

/// Checks that each tag names only route parameters.
fn check_tags(function: &ItemFn, args: &Args) -> syn::Result<()> {
    let parameters: Vec<String> = route_parameters(function)
        .iter()
        .filter_map(|typed| match &*typed.pat {
            Pat::Ident(ident) => Some(ident.ident.to_string()),
            _ => None,
        })
        .collect();
    for tag in &args.tags {
        for name in &tag.names {
            if parameters.contains(name) {
                continue;
            }
            let known = if parameters.is_empty() {
                "this route has no parameters".to_owned()
            } else {
                let listed: Vec<String> = parameters.iter().map(|p| format!("`{p}`")).collect();
                format!("this route's parameters are {}", listed.join(", "))
            };
            return Err(syn::Error::new(
                tag.literal.span(),
                format!(
                    "`{{{name}}}` in this tag is not a route parameter; {known}.\n\
                     help: a tag may use the parameters of the route's URI (`<id>` in \
                     `#[get(\"/articles/<id>\")]`), whose values are part of the key; request \
                     guards are not"
                ),
            ));
        }
    }
    Ok(())
}

/// Checks that `query = ..` keeps every query parameter the route reads.
fn check_query(attr: &Attribute, query: &Query) -> syn::Result<()> {
    let Some(uri) = route_uri(attr) else {
        return Ok(());
    };
    for (name, trailing) in query_parameters(&uri.value()) {
        let problem = match query {
            Query::All => None,
            Query::Ignored => Some(format!(
                "this route reads the query parameter `{name}`, so `query = false` would serve \
                 one value's page for every value.\n\
                 help: remove `query = false`, or list what the page depends on: \
                 `query = [\"{name}\"]`"
            )),
            Query::Only(_) if trailing => Some(format!(
                "this route collects every query parameter into `{name}`, so the key needs them \
                 all.\nhelp: remove `query = [..]`"
            )),
            Query::Only(names) if !names.iter().any(|listed| listed.value() == name) => {
                Some(format!(
                    "this route reads the query parameter `{name}`, which `query = [..]` leaves \
                     out of the key.\nhelp: add \"{name}\" to `query`"
                ))
            }
            Query::Only(_) => None,
        };
        if let Some(problem) = problem {
            return Err(syn::Error::new(uri.span(), problem));
        }
    }
    Ok(())
}

/// The handler's request guard parameters: every parameter the route URI does not name (a
/// body parameter is refused before this is asked). Their types are checked by the generated
/// code, except for those the route vouches for in `trusted_guards`.
pub(crate) fn guard_parameters(function: &ItemFn) -> Vec<&syn::PatType> {
    let route: Vec<&syn::PatType> = route_parameters(function);
    function
        .sig
        .inputs
        .iter()
        .filter_map(|input| match input {
            FnArg::Typed(typed) if !route.iter().any(|r| std::ptr::eq(*r, typed)) => Some(typed),
            _ => None,
        })
        .collect()
}

fn parameter_name(typed: &syn::PatType) -> Option<&syn::Ident> {
    match &*typed.pat {
        Pat::Ident(ident) => Some(&ident.ident),
        _ => None,
    }
}

/// Checks that `trusted_guards` names only request guard parameters of the handler.
fn check_trusted_guards(function: &ItemFn, args: &Args) -> syn::Result<()> {
    let guards: Vec<String> = guard_parameters(function)
        .into_iter()
        .filter_map(parameter_name)
        .map(ToString::to_string)
        .collect();
    let route: Vec<String> = route_parameters(function)
        .into_iter()
        .filter_map(parameter_name)
        .map(ToString::to_string)
        .collect();
    for name in &args.trusted_guards {
        let text = name.value();
        if guards.contains(&text) {
            continue;
        }
        let problem = if route.contains(&text) {
            format!(
                "`{text}` is a route parameter, and its value is already part of the key.\n\
                 help: remove it from `trusted_guards`, which is for request guards"
            )
        } else if guards.is_empty() {
            format!(
                "`{text}` is not a parameter of this handler, which takes no request guard.\n\
                 help: remove `trusted_guards`"
            )
        } else {
            let listed: Vec<String> = guards.iter().map(|g| format!("`{g}`")).collect();
            format!(
                "`{text}` is not a parameter of this handler; its request guards are {}",
                listed.join(", ")
            )
        };
        return Err(syn::Error::new(name.span(), problem));
    }
    Ok(())
}

/// Whether the route collects the whole query into one parameter (`?<rest..>`): the value it
/// builds (a `Vec`, say) may keep the pairs' order, so the key keeps it too.
pub(crate) fn collects_whole_query(function: &ItemFn) -> bool {
    function
        .attrs
        .iter()
        .find(|attr| route_attribute_name(attr).is_some())
        .and_then(route_uri)
        .is_some_and(|uri| {
            query_parameters(&uri.value())
                .iter()
                .any(|(_, trailing)| *trailing)
        })
}

/// Checks the handler; on success the function is ready to expand.
pub(crate) fn validate(function: &ItemFn, args: &Args) -> syn::Result<()> {
    let declares_sharing = args.public.is_some() || !args.vary_cookies.is_empty();
    let mut routes = function
        .attrs
        .iter()
        .filter_map(|attr| route_attribute_name(attr).map(|name| (attr, name)));
    let Some((attr, name)) = routes.next() else {
        return Err(syn::Error::new(
            proc_macro2::Span::call_site(),
            "#[cached_route] found no Rocket route attribute below it.\n\
             help: place #[cached_route] directly above the route attribute, for example\n    \
             #[cached_route(ttl = 60)]\n    #[get(\"/path\")]\n\
             If #[get] is already there, move #[cached_route] above it: attributes apply from the \
             top down, so below #[get] it runs after the route was generated and cannot cache it.",
        ));
    };
    let (method, span) = match name.as_str() {
        "route" => route_method(attr)?,
        other => (other.to_ascii_uppercase(), attr.path().span()),
    };
    if let Some(span) = data_argument(attr) {
        return Err(syn::Error::new(
            span,
            "#[cached_route] cannot cache a route that reads a request body: the body is not part \
             of the key, so one client's body would decide what every client is served.\n\
             help: remove `data = ..` from this GET route, or remove #[cached_route]",
        ));
    }
    if method == "GET" {
        check_query(attr, &args.query)?;
        check_tags(function, args)?;
    }
    if method != "GET" {
        return Err(syn::Error::new(
            span,
            format!(
                "#[cached_route] caches GET routes only, and this route handles {method}.\n\
                 help: a {method} request changes state; replaying a stored response would skip \
                 the change. Remove #[cached_route], or cache the GET route that reads the result."
            ),
        ));
    }

    for input in &function.sig.inputs {
        match input {
            FnArg::Receiver(receiver) => {
                return Err(syn::Error::new(
                    receiver.span(),
                    "#[cached_route] applies to free functions; a route handler takes no `self`",
                ))
            }
            FnArg::Typed(typed) => match &*typed.pat {
                Pat::Ident(ident) if ident.by_ref.is_none() && ident.subpat.is_none() => {}
                other => return Err(syn::Error::new(
                    other.span(),
                    "#[cached_route] needs plain parameter names (`name: Type`), as Rocket does",
                )),
            },
        }
    }
    check_trusted_guards(function, args)?;
    if let ReturnType::Type(_, ty) = &function.sig.output {
        if let Some(span) = names_type(ty, "Flash").filter(|_| !declares_sharing) {
            return Err(syn::Error::new(
                span,
                "#[cached_route] cannot cache a handler that returns `Flash` without being told \
                 how: the flash message is a cookie for one client, added after the handler \
                 returns; a cached copy would drop it.\n\
                 help: cache the page the flash redirects to instead; or, if the page is the same \
                 for everyone, say `public` or `vary_cookies = [..]` (a response that sets a \
                 cookie is still never stored)",
            ));
        }
        if let Some(span) = elided_lifetime(ty) {
            return Err(syn::Error::new(
                span,
                "#[cached_route] needs the return type's lifetimes spelled out.\n\
                 help: name the lifetime, for example `fn echo<'a>(text: &'a str) -> &'a str`, \
                 or return an owned type such as `String`",
            ));
        }
    }
    Ok(())
}

/// The span of the first path segment named `name` anywhere in `ty` (`&CookieJar<'_>`,
/// `rocket::response::Flash<T>`, `Option<Flash<T>>`, ...).
fn names_type(ty: &Type, name: &str) -> Option<proc_macro2::Span> {
    struct Finder<'n>(&'n str, Option<proc_macro2::Span>);
    impl<'ast> syn::visit::Visit<'ast> for Finder<'_> {
        fn visit_path_segment(&mut self, segment: &'ast syn::PathSegment) {
            if self.1.is_none() && segment.ident == self.0 {
                self.1 = Some(segment.ident.span());
            }
            syn::visit::visit_path_segment(self, segment);
        }
    }
    let mut finder = Finder(name, None);
    syn::visit::Visit::visit_type(&mut finder, ty);
    finder.1
}

/// The span of the first elided lifetime (`&T`, `'_`) in `ty`, outside `impl Trait` bounds.
fn elided_lifetime(ty: &Type) -> Option<proc_macro2::Span> {
    struct Finder(Option<proc_macro2::Span>);
    impl<'ast> syn::visit::Visit<'ast> for Finder {
        fn visit_type_reference(&mut self, reference: &'ast syn::TypeReference) {
            if reference.lifetime.is_none() && self.0.is_none() {
                self.0 = Some(reference.and_token.span);
            }
            syn::visit::visit_type_reference(self, reference);
        }
        fn visit_lifetime(&mut self, lifetime: &'ast syn::Lifetime) {
            if lifetime.ident == "_" && self.0.is_none() {
                self.0 = Some(lifetime.span());
            }
        }
        fn visit_type_impl_trait(&mut self, _: &'ast syn::TypeImplTrait) {}
    }
    let mut finder = Finder(None);
    syn::visit::Visit::visit_type(&mut finder, ty);
    finder.0
}

/// Whether `ty` contains `impl Trait` (or a type macro, such as Rocket's `TextStream![T]`,
/// that may expand to one), which cannot be named outside its function.
pub(crate) fn contains_impl_trait(ty: &Type) -> bool {
    struct Finder(bool);
    impl<'ast> syn::visit::Visit<'ast> for Finder {
        fn visit_type_impl_trait(&mut self, _: &'ast syn::TypeImplTrait) {
            self.0 = true;
        }
        fn visit_type_macro(&mut self, _: &'ast syn::TypeMacro) {
            self.0 = true;
        }
    }
    let mut finder = Finder(false);
    syn::visit::Visit::visit_type(&mut finder, ty);
    finder.0
}

/// Whether `attr` is kept on the inner function too: lint levels apply to the user's body.
pub(crate) fn is_lint_attribute(attr: &Attribute) -> bool {
    ["allow", "warn", "deny", "forbid", "expect"]
        .iter()
        .any(|lint| attr.path().is_ident(lint))
}

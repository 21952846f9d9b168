//! Checks that the attribute sits on a Rocket GET handler it can rewrite, and tells the
//! generator which of its parameters are route parameters and which are request guards.

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{Attribute, FnArg, Ident, ItemFn, Pat, PatType, ReturnType, Type};

use crate::args::{Args, Downstream, Query};
use crate::diagnostics::Diagnostics;
use crate::route;

/// Checks the handler, reporting every problem found; on success it is ready to expand.
pub(crate) fn validate(function: &ItemFn, args: &Args) -> syn::Result<()> {
    let Some(attr) = route::attribute(function) else {
        return Err(no_route_attribute());
    };
    let name = route::name(attr).unwrap_or_default();
    let (method, span) = route::method(attr, &name)?;
    let mut diagnostics = Diagnostics::default();
    if method == "GET" {
        check_no_body(attr, &mut diagnostics);
        check_query(attr, args, &mut diagnostics);
        check_tags(function, args, &mut diagnostics);
    } else {
        diagnostics.push(not_get(&method, span));
    }
    check_parameter_patterns(function, &mut diagnostics);
    check_trusted_guards(function, args, &mut diagnostics);
    check_downstream(args, &mut diagnostics);
    check_return_type(function, args, &mut diagnostics);
    diagnostics.finish()
}

fn no_route_attribute() -> syn::Error {
    syn::Error::new(
        Span::call_site(),
        "#[cached_route] found no Rocket route attribute below it.\n\
         help: place #[cached_route] directly above the route attribute, for example\n    \
         #[cached_route(ttl = 60)]\n    #[get(\"/path\")]\n\
         If #[get] is already there, move #[cached_route] above it: attributes apply from the \
         top down, so below #[get] it runs after the route was generated and cannot cache it.",
    )
}

fn not_get(method: &str, span: Span) -> syn::Error {
    let why = match method {
        "HEAD" => "Rocket answers HEAD requests with the GET route of the same path (without \
                   the body), and a cached GET route serves HEAD from the same entries.\n\
                   help: put #[cached_route] on the GET route, and remove this HEAD route or \
                   leave it uncached"
            .to_owned(),
        "OPTIONS" => "responses to OPTIONS are not cacheable (RFC 9110, section 9.3.7): they \
                      describe what the server allows, often for one origin (a CORS \
                      preflight).\nhelp: remove #[cached_route] from this route"
            .to_owned(),
        "POST" | "PUT" | "DELETE" | "PATCH" => format!(
            "a {method} request changes state; replaying a stored response would skip the \
             change.\nhelp: remove #[cached_route], or cache the GET route that reads the result"
        ),
        _ => "help: remove #[cached_route], or cache a GET route".to_owned(),
    };
    syn::Error::new(
        span,
        format!("#[cached_route] caches GET routes only, and this route handles {method}.\n{why}"),
    )
}

/// Checks that the body is not part of the key.
fn check_no_body(attr: &Attribute, diagnostics: &mut Diagnostics) {
    if let Some(span) = route::data_argument(attr) {
        diagnostics.push(syn::Error::new(
            span,
            "#[cached_route] cannot cache a route that reads a request body: the body is not part \
             of the key, so one client's body would decide what every client is served.\n\
             help: remove `data = ..` from this GET route, or remove #[cached_route]",
        ));
    }
}

/// Checks that `query = ..` keeps every query parameter the route reads. Reported at the `query`
/// option, where the fix goes.
fn check_query(attr: &Attribute, args: &Args, diagnostics: &mut Diagnostics) {
    let Some(uri) = route::uri(attr) else {
        return;
    };
    let route = uri.value();
    for (name, trailing) in route::query_parameters(&route) {
        let problem = match &args.query {
            Query::Default | Query::All => None,
            Query::Ignored => Some(format!(
                "`query = false` leaves the query out of the key, and this route reads the query \
                 parameter `{name}` (\"{route}\"): one value's page would be served for every \
                 value.\nhelp: list what the page depends on, `query = [\"{name}\"]`, or remove \
                 `query = false`"
            )),
            Query::Only(_) if trailing => Some(format!(
                "`query = [..]` keeps only the listed parameters in the key, and this route \
                 collects every query parameter into `{name}` (\"{route}\"), so the key needs \
                 them all.\nhelp: remove `query = [..]`"
            )),
            Query::Only(names) if !names.iter().any(|listed| listed.value() == name) => {
                Some(format!(
                    "`query = [..]` leaves out `{name}`, a query parameter this route reads \
                     (\"{route}\").\nhelp: add \"{name}\" to the `query` list"
                ))
            }
            Query::Only(_) => None,
        };
        if let Some(problem) = problem {
            diagnostics.push(match &args.query_value {
                Some(value) => syn::Error::new_spanned(value, problem),
                None => syn::Error::new(uri.span(), problem),
            });
        }
    }
}

/// Checks that each tag names only route parameters, whose values are in the key, or request
/// guards (which the generated code checks are `KeyedGuard`s, whose values are in the key too).
fn check_tags(function: &ItemFn, args: &Args, diagnostics: &mut Diagnostics) {
    let mut parameters = names(route_parameters(function));
    parameters.extend(names(guard_parameters(function)));
    for tag in &args.tags {
        for name in tag.names.iter().filter(|name| !parameters.contains(name)) {
            let known = if parameters.is_empty() {
                "this handler has no parameters".to_owned()
            } else {
                format!("this handler's parameters are {}", quoted_list(&parameters))
            };
            diagnostics.push(syn::Error::new(
                tag.literal.span(),
                format!(
                    "`{{{name}}}` in this tag is not a parameter of the handler; {known}.\n\
                     help: a tag may use the parameters of the route's URI (`<id>` in \
                     `#[get(\"/articles/<id>\")]`) and request guards that implement \
                     `KeyedGuard` (`<user>` for `user: User`), whose values are part of the key"
                ),
            ));
        }
    }
}

/// Refuses `downstream = "s-maxage"`, which hands pages to shared caches that key them by URL
/// alone, on a route whose key holds something of one client's by declaration (keyed guards are
/// checked on their types by the generated code).
fn check_downstream(args: &Args, diagnostics: &mut Diagnostics) {
    let (Downstream::SharedMaxAge, Some(value)) = (&args.downstream, &args.downstream_value) else {
        return;
    };
    if args.keys_per_client() {
        diagnostics.push(syn::Error::new_spanned(
            value,
            "`downstream = \"s-maxage\"` lets shared caches (a CDN, a proxy) serve this page to \
             everyone, and its key holds something of one client's (`vary_cookies`, or \
             `Authorization` / `Cookie` in `vary`): the next client asking would get this one's \
             page.\nhelp: use `downstream = \"max-age\"`, sent as `private, max-age=N` on such \
             a route (browsers only), or remove `downstream`",
        ));
    }
}

/// Checks that parameters are plain names, which the generated code passes on.
fn check_parameter_patterns(function: &ItemFn, diagnostics: &mut Diagnostics) {
    for input in &function.sig.inputs {
        match input {
            FnArg::Receiver(receiver) => diagnostics.push(syn::Error::new(
                receiver.span(),
                "#[cached_route] applies to free functions; a route handler takes no `self`",
            )),
            FnArg::Typed(typed) => match &*typed.pat {
                Pat::Ident(ident) if ident.by_ref.is_none() && ident.subpat.is_none() => {}
                other => diagnostics.push(syn::Error::new(
                    other.span(),
                    "#[cached_route] needs plain parameter names (`name: Type`), as Rocket does",
                )),
            },
        }
    }
}

/// Checks that `trusted_guards` names only request guard parameters of the handler.
fn check_trusted_guards(function: &ItemFn, args: &Args, diagnostics: &mut Diagnostics) {
    let guards = names(guard_parameters(function));
    let route = names(route_parameters(function));
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
            format!(
                "`{text}` is not a parameter of this handler; its request guards are {}",
                quoted_list(&guards)
            )
        };
        diagnostics.push(syn::Error::new(name.span(), problem));
    }
}

/// Checks the return type: a `Flash` is a cookie for one client, and a returned reference must
/// name its lifetime.
fn check_return_type(function: &ItemFn, args: &Args, diagnostics: &mut Diagnostics) {
    let ReturnType::Type(_, ty) = &function.sig.output else {
        return;
    };
    let declares_sharing = args.public.is_some() || !args.vary_cookies.is_empty();
    if let Some(span) = names_type(ty, "Flash").filter(|_| !declares_sharing) {
        diagnostics.push(syn::Error::new(
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
        diagnostics.push(syn::Error::new(
            span,
            "#[cached_route] needs the return type's lifetimes spelled out.\n\
             help: name the lifetime, for example `fn echo<'a>(text: &'a str) -> &'a str`, \
             or return an owned type such as `String`",
        ));
    }
}

/// Returns the handler's route parameters (named in its route URI), in the handler's parameter
/// order: what typed invalidation takes and what tags may name. Every one of them is in the key.
pub(crate) fn route_parameters(function: &ItemFn) -> Vec<&PatType> {
    let declared = route::attribute(function)
        .and_then(route::uri)
        .map(|uri| route::uri_parameters(&uri.value()))
        .unwrap_or_default();
    typed_parameters(function)
        .filter(|typed| {
            parameter_name(typed).is_some_and(|ident| declared.iter().any(|name| ident == name))
        })
        .collect()
}

/// Returns the handler's request guard parameters: every parameter the route URI does not name (a
/// body parameter is refused before this is asked). Their types are checked by the generated
/// code, except for those the route vouches for in `trusted_guards`.
pub(crate) fn guard_parameters(function: &ItemFn) -> Vec<&PatType> {
    let route = route_parameters(function);
    typed_parameters(function)
        .filter(|typed| !route.iter().any(|r| std::ptr::eq(*r, *typed)))
        .collect()
}

/// Returns whether the route's URI declares query parameters (`?<page>`, `?<rest..>`).
pub(crate) fn declares_query(function: &ItemFn) -> bool {
    !query_parameters(function).is_empty()
}

/// Returns whether the route collects the whole query into one parameter (`?<rest..>`): the value
/// it builds (a `Vec`, say) may keep the pairs' order, so the key keeps it too.
pub(crate) fn collects_whole_query(function: &ItemFn) -> bool {
    query_parameters(function)
        .iter()
        .any(|(_, trailing)| *trailing)
}

/// Returns the query parameters the route's URI declares, each with whether it collects the rest.
fn query_parameters(function: &ItemFn) -> Vec<(String, bool)> {
    route::attribute(function)
        .and_then(route::uri)
        .map(|uri| route::query_parameters(&uri.value()))
        .unwrap_or_default()
}

/// Returns a parameter's name; validation refuses every other pattern.
pub(crate) fn parameter_name(typed: &PatType) -> Option<&Ident> {
    match &*typed.pat {
        Pat::Ident(ident) => Some(&ident.ident),
        _ => None,
    }
}

fn typed_parameters(function: &ItemFn) -> impl Iterator<Item = &PatType> {
    function.sig.inputs.iter().filter_map(|input| match input {
        FnArg::Typed(typed) => Some(typed),
        FnArg::Receiver(_) => None,
    })
}

fn names(parameters: Vec<&PatType>) -> Vec<String> {
    parameters
        .into_iter()
        .filter_map(parameter_name)
        .map(ToString::to_string)
        .collect()
}

/// Returns the names as "`a`, `b`".
fn quoted_list(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|name| format!("`{name}`")).collect();
    quoted.join(", ")
}

/// Returns the span of the first path segment named `name` anywhere in `ty` (`&CookieJar<'_>`,
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

/// Returns the span of the first elided lifetime (`&T`, `'_`) in `ty`, outside `impl Trait`
/// bounds.
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

#[cfg(test)]
mod tests {
    use quote::quote;

    #[test]
    fn every_problem_is_reported_at_once() {
        let args = crate::args::parse(quote!(ttl = 1, trusted_guards = ["nope"])).unwrap();
        let function: syn::ItemFn = syn::parse_quote! {
            #[get("/a/<id>")]
            fn a(id: u32, (x, y): (u8, u8)) -> &str { "" }
        };
        let messages: Vec<String> = super::validate(&function, &args)
            .unwrap_err()
            .into_iter()
            .map(|error| error.to_string())
            .collect();
        assert_eq!(messages.len(), 3, "{messages:#?}");
        assert!(messages[0].contains("plain parameter names"));
        assert!(messages[1].contains("`nope` is not a parameter"));
        assert!(messages[2].contains("lifetimes spelled out"));
    }
}

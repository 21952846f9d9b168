//! Every path the generated code names, spelled once, absolute.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::quote;

/// `tokens` with every span set to `span`, so that errors about them point at user code.
pub(crate) fn respanned(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut token| {
            if let TokenTree::Group(group) = &token {
                let mut inner =
                    proc_macro2::Group::new(group.delimiter(), respanned(group.stream(), span));
                inner.set_span(span);
                token = TokenTree::Group(inner);
            }
            token.set_span(span);
            token
        })
        .collect()
}

/// `::cache_runtime::__private`: what generated code may call.
pub(crate) fn private() -> TokenStream {
    quote!(::cache_runtime::__private)
}

pub(crate) fn serve() -> TokenStream {
    let private = private();
    quote!(#private::serve)
}

pub(crate) fn cached() -> TokenStream {
    let private = private();
    quote!(#private::Cached)
}

pub(crate) fn cache_request() -> TokenStream {
    let private = private();
    quote!(#private::CacheRequest)
}

pub(crate) fn route_options() -> TokenStream {
    let private = private();
    quote!(#private::RouteOptions)
}

pub(crate) fn opaque() -> TokenStream {
    let private = private();
    quote!(#private::Opaque)
}

pub(crate) fn respond() -> TokenStream {
    let private = private();
    quote!(#private::respond)
}

pub(crate) fn scope() -> TokenStream {
    let private = private();
    quote!(#private::Scope)
}

pub(crate) fn route_counter() -> TokenStream {
    let private = private();
    quote!(#private::route_counter)
}

pub(crate) fn invalidate_route() -> TokenStream {
    let private = private();
    quote!(#private::invalidate_route)
}

pub(crate) fn soft_invalidate_route() -> TokenStream {
    let private = private();
    quote!(#private::soft_invalidate_route)
}

pub(crate) fn invalidation_error() -> TokenStream {
    quote!(::cache_runtime::InvalidationError)
}

pub(crate) fn cache() -> TokenStream {
    quote!(::cache_runtime::Cache)
}

pub(crate) fn global() -> TokenStream {
    quote!(::cache_runtime::global)
}

pub(crate) fn check_guard() -> TokenStream {
    let private = private();
    quote!(#private::check_guard)
}

/// `__private::Route<..>`: what the route's key holds, as the type-level flags guard checks
/// read (the whole query, `Accept`, `Content-Type`, any cookie, the flash cookie).
pub(crate) fn route_flags(flags: [bool; 5]) -> TokenStream {
    let private = private();
    let flags = flags.iter().map(|on| {
        if *on {
            quote!(#private::Yes)
        } else {
            quote!(#private::No)
        }
    });
    quote!(#private::Route<#(#flags),*>)
}

//! Every path the generated code names, spelled once, absolute.

use proc_macro2::TokenStream;
use quote::quote;

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

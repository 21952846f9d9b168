//! Every path the generated code names, spelled once, from one root: the runtime crate as the
//! user's crate reaches it (`::rocket_route_cache` unless `crate = ".."` says otherwise).

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{quote, ToTokens};

/// The runtime crate's name as a dependency, when the user does not rename it.
pub(crate) const DEFAULT_ROOT: &str = "rocket_route_cache";

/// Returns `tokens` with every span set to `span`, so that errors about them point at user code.
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

/// The runtime crate's path and everything under it that generated code names.
pub(crate) struct Paths {
    root: TokenStream,
}

impl Default for Paths {
    fn default() -> Paths {
        let root = proc_macro2::Ident::new(DEFAULT_ROOT, Span::call_site());
        Paths {
            root: quote!(::#root),
        }
    }
}

impl Paths {
    /// Returns the runtime reached through `root` (`crate = "my_cache"`), as written.
    pub(crate) fn at(root: &syn::Path) -> Paths {
        Paths {
            root: root.to_token_stream(),
        }
    }

    /// Returns `<root>::__private`: what generated code may call.
    pub(crate) fn private(&self) -> TokenStream {
        let root = &self.root;
        quote!(#root::__private)
    }

    pub(crate) fn item(&self, name: &str) -> TokenStream {
        let private = self.private();
        let name = proc_macro2::Ident::new(name, Span::call_site());
        quote!(#private::#name)
    }

    pub(crate) fn serve(&self) -> TokenStream {
        self.item("serve")
    }

    pub(crate) fn cached(&self) -> TokenStream {
        self.item("Cached")
    }

    pub(crate) fn cache_request(&self) -> TokenStream {
        self.item("CacheRequest")
    }

    pub(crate) fn route_options(&self) -> TokenStream {
        self.item("RouteOptions")
    }

    pub(crate) fn opaque(&self) -> TokenStream {
        self.item("Opaque")
    }

    pub(crate) fn respond(&self) -> TokenStream {
        self.item("respond")
    }

    pub(crate) fn scope(&self) -> TokenStream {
        self.item("Scope")
    }

    pub(crate) fn route_entries(&self) -> TokenStream {
        self.item("route_entries")
    }

    pub(crate) fn invalidation(&self) -> TokenStream {
        let root = &self.root;
        quote!(#root::Invalidation)
    }

    pub(crate) fn route_entries_type(&self) -> TokenStream {
        let root = &self.root;
        quote!(#root::invalidation::RouteEntries)
    }

    pub(crate) fn check_guard(&self) -> TokenStream {
        self.item("check_guard")
    }

    /// Returns `__private::check_responder`: the return type is a `SharedResponder`.
    pub(crate) fn check_responder(&self) -> TokenStream {
        self.item("check_responder")
    }

    /// Returns `__private::GuardKey`: what the request guards add to the key.
    pub(crate) fn guard_key(&self) -> TokenStream {
        self.item("GuardKey")
    }

    /// Returns `__private::tag_guard`: a keyed guard as a tag takes it.
    pub(crate) fn tag_guard(&self) -> TokenStream {
        self.item("tag_guard")
    }

    /// Returns `__private::seconds`, which accepts an integer of any type for a `ttl` or window
    /// expression.
    pub(crate) fn seconds(&self) -> TokenStream {
        self.item("seconds")
    }

    /// Returns `__private::key_part`: a route parameter as the key takes it.
    pub(crate) fn key_part(&self) -> TokenStream {
        self.item("key_part")
    }

    /// Returns `__private::tag_part`: a route parameter as a tag takes it.
    pub(crate) fn tag_part(&self) -> TokenStream {
        self.item("tag_part")
    }

    pub(crate) fn invalidation_error(&self) -> TokenStream {
        let root = &self.root;
        quote!(#root::invalidation::InvalidationError)
    }

    /// Returns `__private::Route<..>`: what the route's key holds, as the type-level flags guard
    /// checks read (the whole query, `Accept`, `Content-Type`, any cookie, the flash cookie, and
    /// whether pages go to shared caches downstream).
    pub(crate) fn route_flags(&self, flags: [bool; 6]) -> TokenStream {
        let (yes, no) = (self.item("Yes"), self.item("No"));
        let flags = flags.iter().map(|on| if *on { &yes } else { &no });
        let route = self.item("Route");
        quote!(#route<#(#flags),*>)
    }
}

//! The `#[cached_route]` attribute. Use it through `rocket_route_cache::cached_route`, where its
//! user guide lives; this crate only rewrites the handler (parse -> validate -> expand).

mod args;
mod diagnostics;
mod expand;
mod handler;
mod paths;
mod route;

use proc_macro::TokenStream;

/// Expands `#[cached_route]`; see `rocket_route_cache::cached_route`.
#[proc_macro_attribute]
pub fn cached_route(args: TokenStream, item: TokenStream) -> TokenStream {
    rewrite(args.into(), item.into()).into()
}

/// Rewrites `item`; on any error, the untouched item is emitted with it: Rocket's own code
/// generation for the route still runs, so the user sees this attribute's messages and not a
/// cascade about a missing handler.
fn rewrite(
    args: proc_macro2::TokenStream,
    item: proc_macro2::TokenStream,
) -> proc_macro2::TokenStream {
    let (args, function) = match (args::parse(args), handler_function(item.clone())) {
        (Ok(args), Ok(function)) => (args, function),
        (Err(mut error), Err(other)) => {
            error.combine(other);
            return with_item(error, item);
        }
        (Err(error), _) | (_, Err(error)) => return with_item(error, item),
    };
    match handler::validate(&function, &args) {
        Ok(()) => expand::expand(&args, function),
        Err(error) => with_item(error, item),
    }
}

fn handler_function(item: proc_macro2::TokenStream) -> syn::Result<syn::ItemFn> {
    match syn::parse2::<syn::Item>(item)? {
        syn::Item::Fn(function) => Ok(function),
        other => Err(syn::Error::new(
            syn::spanned::Spanned::span(&other),
            "#[cached_route] applies to Rocket route handler functions, such as\n    \
             #[cached_route(ttl = 60)]\n    #[get(\"/path\")]\n    fn handler() -> String { ... }",
        )),
    }
}

fn with_item(error: syn::Error, item: proc_macro2::TokenStream) -> proc_macro2::TokenStream {
    let error = error.to_compile_error();
    quote::quote!(#error #item)
}

#[cfg(test)]
mod tests {
    use quote::quote;

    /// Every path in the expansion starts at the root `crate = ".."` gives: a crate that
    /// renamed the runtime dependency has no `rocket_route_cache` to reach.
    #[test]
    fn crate_option_roots_every_generated_path() {
        let handler = quote! {
            #[get("/a/<id>?<q>")]
            async fn a(id: u32, q: Option<&str>, db: &State<Db>) -> Option<String> { None }
        };
        let expanded = |args| super::rewrite(args, handler.clone()).to_string();
        let default = expanded(quote!(ttl = HOUR, stale = 5 * 6, tags = ["a:{id}"]));
        assert!(
            default.contains(":: rocket_route_cache :: __private :: serve"),
            "{default}"
        );
        let renamed = expanded(quote!(
            ttl = HOUR,
            stale = 5 * 6,
            tags = ["a:{id}"],
            crate = "my_cache"
        ));
        assert!(!renamed.contains("rocket_route_cache"), "{renamed}");
        assert!(!renamed.contains("compile_error"), "{renamed}");
        for item in [
            "serve",
            "Scope",
            "check_guard",
            "seconds",
            "key_part",
            "tag_part",
        ] {
            assert!(
                renamed.contains(&format!("my_cache :: __private :: {item}")),
                "{item}: {renamed}"
            );
        }
    }
}

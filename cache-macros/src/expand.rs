//! Generates the rewritten handler. No cache logic here: one call into the runtime.
//!
//! ```text
//! #[get("/a/<id>")]                                  // every attribute kept, in order
//! async fn name<'__cache_r, 'a>(id: u32, ..., __cache_request: CacheRequest<'__cache_r>)
//!     -> Cached<UserReturnType>
//! where 'a: '__cache_r
//! {
//!     fn name(id: u32, ...) -> UserReturnType { user body }   // verbatim, as `__cache_handler`
//!     static __CACHE_OPTIONS: RouteOptions = RouteOptions::new(ttl);
//!     let __cache_scope = Scope::new("module::name", &[&id, ..], &[tags]);
//!     serve(__cache_request, &__CACHE_OPTIONS, __cache_scope, async move { __cache_handler(id, ...) }).await
//! }
//!
//! impl name {                                        // Rocket's route struct
//!     fn entries(id: u32, ..) -> RouteEntries { .. }   // for an `Invalidation`
//!     async fn invalidate(id: u32, ..) -> Result<(), InvalidationError> { .. }
//! }
//! ```

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{
    parse_quote, AttrStyle, Attribute, Block, FnArg, GenericParam, Generics, Ident, ItemFn,
    Lifetime, LifetimeParam, Pat, ReturnType, Signature, Type,
};

use crate::args::{Args, Downstream, Query, Tag};
use crate::handler;
use crate::paths::{self, Paths};

pub(crate) fn expand(args: &Args, function: ItemFn) -> TokenStream {
    let route_parameters = typed_route_parameters(&function);
    let paths = &args.paths;
    let typed_invalidation = typed_invalidation(&function, &route_parameters, paths);
    let guard_checks = guard_checks(&function, args);
    let options = options_expression(
        args,
        handler::collects_whole_query(&function),
        handler::declares_query(&function),
    );
    let scope = scope_expression(&function.sig.ident, &route_parameters, args);
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = function;
    let attributes = Attributes::sort(attrs);
    let inner_function = inner_function(&sig, &attributes, &block);
    let run = inner_call(&sig, paths);
    let note = note_unchanged(paths);
    let (outer_sig, return_span) = outer_signature(sig, paths);
    let serve_call = serve_call(return_span, paths);
    let outer_attrs = &attributes.outer;
    let route_options = paths.route_options();
    let guard_key = paths.guard_key();
    quote! {
        #(#outer_attrs)*
        #vis #outer_sig {
            #inner_function

            let mut __cache_guards = #guard_key::default();
            #(#guard_checks)*
            static __CACHE_OPTIONS: #route_options = #options;
            let __cache_scope = #scope;
            let __cache_answering = __cache_request;
            let __cache_run = async move {
                let __cache_answer = #run;
                #note
                __cache_answer
            };
            #serve_call
        }

        #typed_invalidation
    }
}

/// Returns the route parameters with their types, as the scope and typed invalidation take them.
fn typed_route_parameters(function: &ItemFn) -> Vec<(Ident, Type)> {
    handler::route_parameters(function)
        .into_iter()
        .filter_map(|typed| Some((handler::parameter_name(typed)?.clone(), (*typed.ty).clone())))
        .collect()
}

/// The handler's attributes, by where they go.
struct Attributes {
    /// On the generated handler: every one, Rocket's route attribute among them, except
    /// `expect`, since the outer function cannot trigger what it expects.
    outer: Vec<Attribute>,
    /// Lint levels, which apply to the user's body: on the inner function too.
    lints: Vec<Attribute>,
    /// Inner attributes (`#![allow(..)]`, which syn lists with the others): inside the body.
    body: Vec<Attribute>,
}

impl Attributes {
    fn sort(attrs: Vec<Attribute>) -> Attributes {
        let (body, item): (Vec<Attribute>, Vec<Attribute>) = attrs
            .into_iter()
            .partition(|attr| matches!(attr.style, AttrStyle::Inner(_)));
        let lints = item
            .iter()
            .filter(|attr| is_lint_attribute(attr))
            .cloned()
            .collect();
        let outer = item
            .into_iter()
            .filter(|attr| !attr.path().is_ident("expect"))
            .collect();
        Attributes { outer, lints, body }
    }
}

/// Returns whether `attr` is kept on the inner function too: lint levels apply to the user's
/// body.
fn is_lint_attribute(attr: &Attribute) -> bool {
    ["allow", "warn", "deny", "forbid", "expect"]
        .iter()
        .any(|lint| attr.path().is_ident(lint))
}

fn inner_name() -> Ident {
    format_ident!("__cache_handler")
}

/// Returns the user's function, verbatim but for its name, inside the generated one.
fn inner_function(sig: &Signature, attributes: &Attributes, block: &Block) -> TokenStream {
    let mut inner_sig = sig.clone();
    inner_sig.ident = inner_name();
    let lints = &attributes.lints;
    let body = &attributes.body;
    let statements = &block.stmts;
    quote! {
        #(#lints)*
        #inner_sig {
            #(#body)*
            #(#statements)*
        }
    }
}

/// Returns the inner function called with the outer one's parameters, awaited if it is async.
fn inner_call(sig: &Signature, paths: &Paths) -> TokenStream {
    let name = inner_name();
    let rebind = paths.item("Rebind");
    let arguments = sig.inputs.iter().filter_map(|input| match input {
        FnArg::Typed(typed) => handler::parameter_name(typed),
        FnArg::Receiver(_) => None,
    });
    // Each argument passes through `Rebind` when the body runs, after the cache decided: an
    // `Option<Validators>` (by resolved type) is `Some` only when the run revalidates. Each in
    // a statement of its own, so that no `Rebind` lives across the handler's awaits.
    let arguments: Vec<&Ident> = arguments.collect();
    let traits = [paths.item("RebindValidators"), paths.item("RebindAny")];
    let call = quote!(#name(#(#arguments),*));
    let call = match sig.asyncness {
        Some(_) => quote!(#call.await),
        None => call,
    };
    quote!({
        #(
            #[allow(unused_imports)]
            use #traits as _;
        )*
        #(let #arguments = (&#rebind::new(#arguments)).rebind();)*
        #call
    })
}

/// Returns the statement that notes a handler's `Err(Status::NotModified)` for the request
/// path (by the answer's resolved type; nothing for any other answer).
fn note_unchanged(paths: &Paths) -> TokenStream {
    let answer = paths.item("Answer");
    let traits = [paths.item("NoteUnchanged"), paths.item("NoteAny")];
    quote!({
        #(
            #[allow(unused_imports)]
            use #traits as _;
        )*
        (&#answer(&__cache_answer)).note(__cache_answering.request());
    })
}

/// Returns the user's signature made the generated handler's: async, taking the cache's request
/// guard, returning `Cached`; and the span errors about the user's return type point at.
fn outer_signature(mut sig: Signature, paths: &Paths) -> (Signature, Span) {
    sig.asyncness = Some(Default::default());
    sig.constness = None;
    for input in &mut sig.inputs {
        if let FnArg::Typed(typed) = input {
            typed.attrs.clear();
            if let Pat::Ident(ident) = &mut *typed.pat {
                ident.mutability = None;
            }
        }
    }
    let request_lifetime = Lifetime::new("'__cache_r", Span::call_site());
    outlive_request(&mut sig.generics, &request_lifetime);
    name_elided_lifetimes(&mut sig, &request_lifetime);
    let cache_request = paths.cache_request();
    sig.inputs
        .push(parse_quote!(__cache_request: #cache_request<#request_lifetime>));
    let (phantom, return_span) = match &sig.output {
        ReturnType::Default => (quote!(()), Span::call_site()),
        ReturnType::Type(_, ty) if contains_impl_trait(ty) => (paths.opaque(), ty.span()),
        ReturnType::Type(_, ty) => (quote!(#ty), ty.span()),
    };
    let cached = paths.cached();
    sig.output = parse_quote!(-> #cached<#request_lifetime, #phantom>);
    (sig, return_span)
}

/// Returns whether `ty` contains `impl Trait` (or a type macro, such as Rocket's
/// `TextStream![T]`, that may expand to one), which cannot be named outside its function.
fn contains_impl_trait(ty: &Type) -> bool {
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

/// Adds the request's lifetime, which every user lifetime outlives: the request guard borrows
/// the request, and a responder whose type names a user lifetime (`impl Responder<'r,
/// 'static>`, `&'a str`) is turned into a response with the guard's request.
fn outlive_request(generics: &mut Generics, request_lifetime: &Lifetime) {
    let user_lifetimes: Vec<Lifetime> = generics
        .lifetimes()
        .map(|param| param.lifetime.clone())
        .collect();
    generics.params.insert(
        0,
        GenericParam::Lifetime(LifetimeParam::new(request_lifetime.clone())),
    );
    if !user_lifetimes.is_empty() {
        let where_clause = generics.make_where_clause();
        for lifetime in &user_lifetimes {
            where_clause
                .predicates
                .push(parse_quote!(#lifetime: #request_lifetime));
        }
    }
}

/// Names the parameters' elided lifetimes (`&State<T>`, `Host<'_>`) after the request's: the
/// handler's future borrows them and may outlive the generated handler's call (a stale reply's
/// body runs it), so they must be known to last as long as the request, which they do (Rocket
/// borrows every guard from it, and names no lifetime of these types itself).
fn name_elided_lifetimes(sig: &mut Signature, request_lifetime: &Lifetime) {
    struct Namer<'l>(&'l Lifetime);
    impl syn::visit_mut::VisitMut for Namer<'_> {
        fn visit_type_reference_mut(&mut self, reference: &mut syn::TypeReference) {
            reference.lifetime.get_or_insert_with(|| self.0.clone());
            syn::visit_mut::visit_type_reference_mut(self, reference);
        }
        fn visit_lifetime_mut(&mut self, lifetime: &mut Lifetime) {
            if lifetime.ident == "_" {
                *lifetime = self.0.clone();
            }
        }
        // Elision inside these is their own (higher-ranked), not the parameter's.
        fn visit_type_bare_fn_mut(&mut self, _: &mut syn::TypeBareFn) {}
        fn visit_parenthesized_generic_arguments_mut(
            &mut self,
            _: &mut syn::ParenthesizedGenericArguments,
        ) {
        }
    }
    for input in &mut sig.inputs {
        if let FnArg::Typed(typed) = input {
            syn::visit_mut::VisitMut::visit_type_mut(&mut Namer(request_lifetime), &mut typed.ty);
        }
    }
}

/// Returns the one call into the runtime, spanned at the return type: a handler whose response is
/// not `Responder<'r, 'static>`, or not a `SharedResponder`, is reported there.
fn serve_call(return_span: Span, paths: &Paths) -> TokenStream {
    let respond = paths::respanned(paths.respond(), return_span);
    let serve = paths::respanned(paths.serve(), return_span);
    let check = paths::respanned(paths.check_responder(), return_span);
    quote_spanned! {return_span=>
        #check(&__cache_run);
        #serve(__cache_request, &__CACHE_OPTIONS, __cache_scope, __cache_run, #respond).await
    }
}

/// Returns `Scope::new("module::name", &[&id, ..], &[tags])`: what this request's key and tags
/// hold.
fn scope_expression(handler: &Ident, parameters: &[(Ident, Type)], args: &Args) -> TokenStream {
    let scope = args.paths.scope();
    let route = route_name(handler);
    let values = key_parts(parameters, &args.paths);
    let tags = args
        .tags
        .iter()
        .map(|tag| tag_expression(tag, parameters, &args.paths));
    quote!(#scope::new(#route, &[#(#values),*], &[#(#tags),*], __cache_guards))
}

/// Returns `"module::name"`, the route's name in keys and counters, the same for serving and
/// invalidating.
fn route_name(handler: &Ident) -> TokenStream {
    quote!(::core::concat!(
        ::core::module_path!(),
        "::",
        ::core::stringify!(#handler)
    ))
}

/// Returns one compile-time assertion per request guard parameter not named in `trusted_guards`:
/// its resolved type may be taken by a route whose key holds what this one's does; the same call
/// writes a keyed guard's value into `__cache_guards`. Spanned at the parameter's type, where
/// the error is reported. A trusted guard may read the query: it is then kept in the key.
fn guard_checks(function: &ItemFn, args: &Args) -> Vec<TokenStream> {
    let varies = |header: &str| {
        args.vary
            .iter()
            .any(|v| v.value().eq_ignore_ascii_case(header))
    };
    let flags = args.paths.route_flags([
        matches!(args.query, Query::Default | Query::All),
        varies("Accept"),
        varies("Content-Type"),
        !args.vary_cookies.is_empty(),
        args.vary_cookies
            .iter()
            .any(|cookie| cookie.value() == "_flash"),
        matches!(args.downstream, Downstream::SharedMaxAge),
    ]);
    let check = args.paths.check_guard();
    let mut checks: Vec<TokenStream> = handler::guard_parameters(function)
        .into_iter()
        .filter_map(|typed| Some((handler::parameter_name(typed)?.clone(), typed.ty.span())))
        .filter(|(ident, _)| {
            !args
                .trusted_guards
                .iter()
                .any(|name| ident == &name.value())
        })
        .map(|(ident, span)| {
            let check = paths::respanned(check.clone(), span);
            let flags = paths::respanned(flags.clone(), span);
            let mut argument = ident;
            argument.set_span(span);
            quote_spanned!(span=> #check::<#flags, _, _>(&#argument, &mut __cache_guards);)
        })
        .collect();
    if !args.trusted_guards.is_empty() {
        checks.push(quote!(__cache_guards.trusted();));
    }
    checks
}

/// Returns `key_part(&param)` (a `&dyn Debug`) for each route parameter, spanned at its type: a
/// type without `Debug` is reported there, by the runtime's message saying why the key needs it.
fn key_parts(parameters: &[(Ident, Type)], paths: &Paths) -> Vec<TokenStream> {
    parameters
        .iter()
        .map(|(ident, ty)| {
            let key_part = paths::respanned(paths.key_part(), ty.span());
            quote_spanned!(ty.span()=> #key_part(&#ident))
        })
        .collect()
}

/// Returns a tag as a `&str`: the literal itself, or formatted from the route parameters and
/// keyed guards it names (spanned at the literal, so that a parameter without `Display`, or a
/// guard that is not a `KeyedGuard`, is reported there).
fn tag_expression(tag: &Tag, parameters: &[(Ident, Type)], paths: &Paths) -> TokenStream {
    let literal = &tag.literal;
    let text = literal.value();
    if !text.contains('{') && !text.contains('}') {
        return quote!(#literal);
    }
    let tag_part = paths::respanned(paths.tag_part(), literal.span());
    let tag_guard = paths::respanned(paths.tag_guard(), literal.span());
    let arguments = tag.names.iter().map(|name| {
        let ident = Ident::new(name, literal.span());
        match parameters.iter().any(|(parameter, _)| parameter == name) {
            true => quote_spanned!(literal.span()=> #ident = #tag_part(&#ident)),
            false => quote_spanned!(literal.span()=> #ident = #tag_guard(&#ident)),
        }
    });
    quote_spanned!(literal.span()=> &*::std::format!(#literal, #(#arguments),*))
}

/// Returns `handler::entries(params)` (what an `Invalidation` drops) and
/// `handler::invalidate(params)` (a shorthand for a batch of that alone), on the struct Rocket
/// generates for the route: the route parameters' own types, checked by the compiler.
fn typed_invalidation(
    function: &ItemFn,
    parameters: &[(Ident, Type)],
    paths: &Paths,
) -> TokenStream {
    let name = &function.sig.ident;
    let vis = &function.vis;
    let generics = &function.sig.generics;
    let where_clause = &generics.where_clause;
    let declared: Vec<TokenStream> = parameters
        .iter()
        .map(|(ident, ty)| quote!(#ident: #ty))
        .collect();
    let idents = parameters.iter().map(|(ident, _)| ident);
    let route = route_name(name);
    let values = key_parts(parameters, paths);
    let (entries_type, route_entries) = (paths.route_entries_type(), paths.route_entries());
    let (error, invalidation) = (paths.invalidation_error(), paths.invalidation());
    let entries_doc = format!(
        "The entries `{name}` cached for these parameter values, for an `Invalidation`: \
         `Invalidation::new().route({name}::entries(..))`, with other targets, `.soft()`, or \
         `.run_in(&cache)` for one cache alone."
    );
    let invalidate_doc = format!(
        "Drops every entry `{name}` cached for these parameter values, in every cache of the \
         process (so on every instance sharing them): `Invalidation::new().route({name}::\
         entries(..))`, awaited.\n\n# Errors\n\nWhen a Memcached server did not confirm it: \
         entries there may be served until it is repeated or they expire."
    );
    quote! {
        #[allow(nonstandard_style, dead_code, clippy::all, clippy::pedantic)]
        impl #name {
            #[doc = #entries_doc]
            #vis fn entries #generics (#(#declared),*) -> #entries_type
            #where_clause
            {
                #route_entries(#route, &[#(#values),*])
            }

            #[doc = #invalidate_doc]
            #vis async fn invalidate #generics (#(#declared),*)
                -> ::core::result::Result<(), #error>
            #where_clause
            {
                let __cache_entries = Self::entries(#(#idents),*);
                #invalidation::new().route(__cache_entries).run().await
            }
        }
    }
}

/// Returns `RouteOptions::new(ttl).vary(&[..])...`: a constant expression, so the options cost
/// nothing at run time.
fn options_expression(args: &Args, query_in_order: bool, declares_query: bool) -> TokenStream {
    let route_options = args.paths.route_options();
    let ttl = args.ttl.expression("ttl", &args.paths);
    let calls = args.builder_calls();
    let every = matches!(args.query, Query::Default | Query::All);
    // Not options: the route's own `?<rest..>` may keep the pairs' order; a route that
    // declares no query parameter keys the query only when a guard may read it.
    let query = if query_in_order && every {
        quote!(.query_in_order())
    } else if !declares_query && matches!(args.query, Query::Default) {
        quote!(.query_where_read())
    } else {
        TokenStream::new()
    };
    quote!(#route_options::new(#ttl) #calls #query)
}

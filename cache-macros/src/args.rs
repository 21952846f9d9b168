//! `#[cached_route(...)]` arguments, parsed into typed values that keep their spans.

use proc_macro2::{Span, TokenStream};
use syn::parse::{Parse, ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{Expr, ExprLit, ExprUnary, Ident, Lit, Token, UnOp};

/// Every option the attribute accepts, in the order the docs list them.
const ACCEPTED: &[&str] = &["ttl"];

/// The parsed arguments.
#[derive(Debug)]
pub(crate) struct Args {
    /// Seconds an entry is served; at least 1.
    pub(crate) ttl: u32,
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
        let value = item.value.ok_or_else(|| {
            syn::Error::new(
                item.name.span(),
                format!("`{key}` needs a value, for example `{key} = 60`"),
            )
        })?;
        match key.as_str() {
            "ttl" => self.ttl = Some(parse_ttl(&value)?),
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
        Ok(Args { ttl })
    }
}

fn accepted_list() -> String {
    ACCEPTED
        .iter()
        .map(|key| format!("`{key}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn parse_ttl(value: &Expr) -> syn::Result<u32> {
    let hint = "write the number of seconds as a whole number literal, for example `ttl = 60`";
    let error = |message: &str| Err(syn::Error::new_spanned(value, format!("{message}; {hint}")));
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Int(int), ..
        }) => match int.base10_parse::<u64>() {
            Ok(0) => Err(syn::Error::new(
                int.span(),
                "`ttl` must be at least 1 second: a response cached for 0 seconds is never served \
                 from the cache; remove #[cached_route] to disable caching",
            )),
            Ok(seconds) => u32::try_from(seconds)
                .or_else(|_| error("`ttl` is too large: at most 4294967295 seconds")),
            Err(_) => error("`ttl` must be a whole number of seconds"),
        },
        Expr::Unary(ExprUnary {
            op: UnOp::Neg(_), ..
        }) => error("`ttl` must be positive"),
        Expr::Lit(ExprLit {
            lit: Lit::Float(_), ..
        }) => error("`ttl` must be a whole number of seconds"),
        Expr::Lit(ExprLit {
            lit: Lit::Str(_), ..
        }) => error("`ttl` must be a number, not a string"),
        _ => error("`ttl` must be an integer literal"),
    }
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
}

//! `#[cached_route(...)]` arguments: every option declared once, in [`OPTIONS`], and read into
//! [`Args`].

mod values;

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::parse::{Parse, ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, Ident, LitStr, Token};

use values::NameKind;

use crate::diagnostics::Diagnostics;
use crate::paths::Paths;
pub(crate) use values::{Downstream, Query, Seconds, Tag};

/// The parsed arguments; an option left out keeps its default.
pub(crate) struct Args {
    /// Seconds an entry is served; at least 1.
    pub(crate) ttl: Seconds,
    /// Request headers whose values are part of the key, as written (validated tokens).
    pub(crate) vary: Vec<LitStr>,
    /// Cookies whose values are part of the key.
    pub(crate) vary_cookies: Vec<LitStr>,
    /// The route's responses are the same for every client: `Authorization` requests may be
    /// served and stored. It relaxes no check on guards or the query.
    pub(crate) public: Option<Span>,
    pub(crate) query: Query,
    /// The value of `query = ..`, as written: errors about it point there, where the fix goes.
    pub(crate) query_value: Option<Expr>,
    /// Statuses that may be stored.
    pub(crate) statuses: Vec<u16>,
    /// Seconds a stored status from 400 is served instead of `ttl`, and where it was written.
    pub(crate) negative_ttl: Option<(Seconds, Span)>,
    /// A request's `Cache-Control: no-cache` runs the handler and refreshes the entry.
    pub(crate) honor_no_cache: bool,
    /// Seconds past the TTL an entry is served while one request refreshes it.
    pub(crate) stale: Seconds,
    /// Seconds past the TTL an entry stands in for a failing handler.
    pub(crate) stale_if_error: Seconds,
    pub(crate) keep: Seconds,
    /// The `Cache-Control` sent to browsers and caches after this one, from the entry's ttl.
    pub(crate) downstream: Downstream,
    /// The value of `downstream = ..`, as written.
    pub(crate) downstream_value: Option<Expr>,
    /// Tags, as written: `"article:{id}"` names the route parameter `id`.
    pub(crate) tags: Vec<Tag>,
    /// Request guard parameters the route vouches for: their values do not change the page
    /// beyond what the key holds. Every other guard's type is checked.
    pub(crate) trusted_guards: Vec<LitStr>,
    /// The runtime crate as the handler's module reaches it.
    pub(crate) paths: Paths,
}

impl Default for Args {
    /// Returns the runtime's defaults (`RouteOptions::new`), so that an option left out emits
    /// nothing. `ttl` has none: [`parse`] refuses arguments without it.
    fn default() -> Args {
        Args {
            ttl: Seconds::Literal(0),
            vary: Vec::new(),
            vary_cookies: Vec::new(),
            public: None,
            query: Query::Default,
            query_value: None,
            statuses: vec![200],
            negative_ttl: None,
            honor_no_cache: false,
            stale: Seconds::Literal(0),
            stale_if_error: Seconds::Literal(0),
            keep: Seconds::Literal(0),
            downstream: Downstream::Off,
            downstream_value: None,
            tags: Vec::new(),
            trusted_guards: Vec::new(),
            paths: Paths::default(),
        }
    }
}

/// One option: how it is written and read, what it emits, and its line in the user guide.
pub(crate) struct OptionSpec {
    pub(crate) name: &'static str,
    form: Form,
    /// Its call on the `RouteOptions` builder; nothing while the runtime's default holds.
    emit: fn(&Args) -> TokenStream,
}

enum Form {
    /// Written alone (`public`) or as `= true` / `= false`; told where it was turned on.
    Flag(fn(&mut Args, Option<Span>)),
    /// `name = value`; `example` is how an error says to write it.
    Value {
        example: &'static str,
        read: fn(&mut Args, &Expr) -> syn::Result<()>,
    },
}

/// Every option the attribute accepts, in the order the user guide lists them (and the unknown
/// option error too).
pub(crate) const OPTIONS: &[OptionSpec] = &[
    OptionSpec {
        name: "ttl",
        form: Form::Value {
            example: "ttl = 60",
            read: |args, value| {
                args.ttl = values::seconds("ttl", value)?;
                Ok(())
            },
        },
        // The constructor's argument: see `options_expression`.
        emit: |_| TokenStream::new(),
    },
    OptionSpec {
        name: "vary",
        form: Form::Value {
            example: "vary = [\"Accept-Language\"]",
            read: |args, value| {
                args.vary = values::names(value, "vary", NameKind::Header)?;
                Ok(())
            },
        },
        emit: |args| match args.vary.as_slice() {
            [] => TokenStream::new(),
            vary => quote!(.vary(&[#(#vary),*])),
        },
    },
    OptionSpec {
        name: "vary_cookies",
        form: Form::Value {
            example: "vary_cookies = [\"lang\"]",
            read: |args, value| {
                args.vary_cookies = values::names(value, "vary_cookies", NameKind::Cookie)?;
                Ok(())
            },
        },
        emit: |args| match args.vary_cookies.as_slice() {
            [] => TokenStream::new(),
            cookies => quote!(.vary_cookies(&[#(#cookies),*])),
        },
    },
    OptionSpec {
        name: "public",
        form: Form::Flag(|args, on| args.public = on),
        emit: |args| match args.public {
            Some(_) => quote!(.public()),
            None => TokenStream::new(),
        },
    },
    OptionSpec {
        name: "query",
        form: Form::Value {
            example: "query = [\"page\", \"sort\"]",
            read: |args, value| {
                args.query = values::query(value)?;
                args.query_value = Some(value.clone());
                Ok(())
            },
        },
        // A route collecting the whole query adds `query_in_order`: see `options_expression`.
        emit: |args| match &args.query {
            // `Default` depends on the route's URI: see `options_expression`.
            Query::Default | Query::All => TokenStream::new(),
            Query::Only(names) => quote!(.query_only(&[#(#names),*])),
            Query::Ignored => quote!(.ignore_query()),
        },
    },
    OptionSpec {
        name: "statuses",
        form: Form::Value {
            example: "statuses = [200, 404]",
            read: |args, value| {
                args.statuses = values::statuses(value)?;
                Ok(())
            },
        },
        emit: |args| match args.statuses.as_slice() {
            [200] => TokenStream::new(),
            statuses => quote!(.statuses(&[#(#statuses),*])),
        },
    },
    OptionSpec {
        name: "negative_ttl",
        form: Form::Value {
            example: "negative_ttl = 30",
            read: |args, value| {
                let seconds = values::seconds("negative_ttl", value)?;
                args.negative_ttl = Some((seconds, value.span()));
                Ok(())
            },
        },
        emit: |args| match &args.negative_ttl {
            Some((seconds, _)) => {
                let seconds = seconds.expression("negative_ttl", &args.paths);
                quote!(.negative_ttl(#seconds))
            }
            None => TokenStream::new(),
        },
    },
    OptionSpec {
        name: "honor_no_cache",
        form: Form::Flag(|args, on| args.honor_no_cache = on.is_some()),
        emit: |args| {
            if args.honor_no_cache {
                quote!(.honor_no_cache())
            } else {
                TokenStream::new()
            }
        },
    },
    OptionSpec {
        name: "stale",
        form: Form::Value {
            example: "stale = 30",
            read: |args, value| {
                args.stale = values::seconds("stale", value)?;
                Ok(())
            },
        },
        emit: |args| match &args.stale {
            Seconds::Literal(0) => TokenStream::new(),
            stale => {
                let stale = stale.expression("stale", &args.paths);
                quote!(.stale(#stale))
            }
        },
    },
    OptionSpec {
        name: "stale_if_error",
        form: Form::Value {
            example: "stale_if_error = 3600",
            read: |args, value| {
                args.stale_if_error = values::seconds("stale_if_error", value)?;
                Ok(())
            },
        },
        emit: |args| match &args.stale_if_error {
            Seconds::Literal(0) => TokenStream::new(),
            seconds => {
                let seconds = seconds.expression("stale_if_error", &args.paths);
                quote!(.stale_if_error(#seconds))
            }
        },
    },
    OptionSpec {
        name: "keep",
        form: Form::Value {
            example: "keep = 86400",
            read: |args, value| {
                args.keep = values::seconds("keep", value)?;
                Ok(())
            },
        },
        emit: |args| match &args.keep {
            Seconds::Literal(0) => TokenStream::new(),
            seconds => {
                let seconds = seconds.expression("keep", &args.paths);
                quote!(.keep(#seconds))
            }
        },
    },
    OptionSpec {
        name: "downstream",
        form: Form::Value {
            example: "downstream = \"max-age\"",
            read: |args, value| {
                args.downstream = values::downstream(value)?;
                args.downstream_value = Some(value.clone());
                Ok(())
            },
        },
        emit: |args| match args.downstream {
            Downstream::Off => TokenStream::new(),
            Downstream::MaxAge if args.keys_per_client() => {
                quote!(.downstream_max_age().downstream_private())
            }
            Downstream::MaxAge => quote!(.downstream_max_age()),
            Downstream::SharedMaxAge => quote!(.downstream_s_maxage()),
        },
    },
    OptionSpec {
        name: "tags",
        form: Form::Value {
            example: "tags = [\"articles\", \"article:{id}\"]",
            read: |args, value| {
                args.tags = values::tags(value)?;
                Ok(())
            },
        },
        // Tags are the scope's, not the options': see `expand::scope_expression`.
        emit: |_| TokenStream::new(),
    },
    OptionSpec {
        name: "trusted_guards",
        form: Form::Value {
            example: "trusted_guards = [\"db\"]",
            read: |args, value| {
                args.trusted_guards = values::parameter_names(value)?;
                Ok(())
            },
        },
        // Read by the guard checks, which leave these parameters out; the runtime only warns
        // (debug builds) when requests carry cookies the key does not hold.
        emit: |args| match args.trusted_guards.is_empty() {
            true => TokenStream::new(),
            false => quote!(.trusts_guards()),
        },
    },
    OptionSpec {
        name: "crate",
        form: Form::Value {
            example: "crate = \"my_cache\"",
            read: |args, value| {
                args.paths = Paths::at(&values::crate_path(value)?);
                Ok(())
            },
        },
        // Read by every path the generated code names.
        emit: |_| TokenStream::new(),
    },
];

impl Args {
    /// Returns the `RouteOptions` builder calls after `new(ttl)`, one per option that differs
    /// from the runtime's default.
    pub(crate) fn builder_calls(&self) -> TokenStream {
        OPTIONS.iter().map(|option| (option.emit)(self)).collect()
    }

    /// Returns whether the key holds something of one client's by declaration: a cookie, or
    /// `Authorization` / `Cookie` in `vary` (keyed guards are known by type, at run time).
    pub(crate) fn keys_per_client(&self) -> bool {
        !self.vary_cookies.is_empty()
            || self.vary.iter().any(|header| {
                let header = header.value();
                header.eq_ignore_ascii_case("Authorization")
                    || header.eq_ignore_ascii_case("Cookie")
            })
    }
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

/// Reads one item into `args`, rejecting unknown and repeated options in one place.
fn set(args: &mut Args, seen: &mut Vec<String>, item: Item) -> syn::Result<()> {
    let key = item.name.to_string();
    let Some(option) = OPTIONS.iter().find(|option| option.name == key) else {
        return Err(syn::Error::new(
            item.name.span(),
            format!(
                "unknown option `{key}`; accepted options: {}",
                accepted_list()
            ),
        ));
    };
    if seen.contains(&key) {
        return Err(syn::Error::new(
            item.name.span(),
            format!("duplicate option `{key}`; give it once"),
        ));
    }
    seen.push(key.clone());
    match (&option.form, &item.value) {
        (Form::Flag(turn), None) => turn(args, Some(item.name.span())),
        (Form::Flag(turn), Some(value)) => {
            let on = values::flag(&key, value)?;
            turn(args, on.then(|| item.name.span()));
        }
        (Form::Value { read, .. }, Some(value)) => read(args, value)?,
        (Form::Value { example, .. }, None) => {
            return Err(syn::Error::new(
                item.name.span(),
                format!("`{key}` needs a value, for example `{example}`"),
            ))
        }
    }
    Ok(())
}

fn accepted_list() -> String {
    OPTIONS
        .iter()
        .map(|option| format!("`{}`", option.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses the attribute's arguments; every problem found is reported, each on its tokens.
pub(crate) fn parse(tokens: TokenStream) -> syn::Result<Args> {
    let items = Punctuated::<Item, Token![,]>::parse_terminated.parse2(tokens)?;
    let mut args = Args::default();
    let mut seen = Vec::new();
    let mut diagnostics = Diagnostics::default();
    for item in items {
        if let Err(error) = set(&mut args, &mut seen, item) {
            diagnostics.push(error);
        }
    }
    diagnostics.finish()?;
    if let Some((_, span)) = args.negative_ttl {
        if !args.statuses.iter().any(|status| *status >= 400) {
            return Err(syn::Error::new(
                span,
                "`negative_ttl` applies to stored statuses from 400, and `statuses` lists none; \
                 list the ones to store, for example `statuses = [200, 404]`",
            ));
        }
    }
    if !seen.iter().any(|key| key == "ttl") {
        return Err(syn::Error::new(
            Span::call_site(),
            "missing `ttl`: say how many seconds a response is served from the cache, \
             for example `#[cached_route(ttl = 60)]`",
        ));
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn message(tokens: TokenStream) -> String {
        match parse(tokens) {
            Ok(_) => panic!("parsed"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn tags_parse_with_their_placeholders() {
        let args = parse(quote!(
            ttl = 1,
            tags = ["articles", "article:{id}:{lang}", "{{x}}"]
        ))
        .unwrap();
        let names: Vec<_> = args.tags.iter().map(|t| t.names.clone()).collect();
        assert_eq!(
            names,
            [vec![], vec!["id".to_owned(), "lang".to_owned()], vec![]]
        );
        for (bad, why) in [
            (quote!(tags = ["a:{id"]), "unclosed"),
            (quote!(tags = ["a:}"]), "unmatched"),
            (quote!(tags = ["a:{}"]), "must name a route parameter"),
            (quote!(tags = ["a:{id:?}"]), "must name a route parameter"),
            (quote!(tags = ["a:{_}"]), "must name a route parameter"),
            (quote!(tags = [""]), "cannot be empty"),
            (quote!(tags = ["a", "a"]), "listed twice"),
            (quote!(tags = [articles]), "string literals"),
            (quote!(tags = "articles"), "takes a list"),
        ] {
            let message = message(quote!(ttl = 1, #bad));
            assert!(message.contains(why), "{bad}: {message}");
        }
    }

    fn literal(seconds: &Seconds) -> Option<u32> {
        match seconds {
            Seconds::Literal(seconds) => Some(*seconds),
            Seconds::Const(_) => None,
        }
    }

    #[test]
    fn ttl_parses() {
        assert_eq!(literal(&parse(quote!(ttl = 60)).unwrap().ttl), Some(60));
        assert_eq!(
            literal(&parse(quote!(ttl = 3600,)).unwrap().ttl),
            Some(3600)
        );
        assert_eq!(
            literal(&parse(quote!(ttl = 1_000u32)).unwrap().ttl),
            Some(1000)
        );
    }

    #[test]
    fn constant_expressions_are_left_to_the_compiler() {
        for ttl in [
            quote!(HOUR),
            quote!(15 * 60),
            quote!(config::TTL / 2),
            quote!((60)),
        ] {
            let args = parse(quote!(ttl = #ttl, stale = #ttl, stale_if_error = #ttl)).unwrap();
            for seconds in [&args.ttl, &args.stale, &args.stale_if_error] {
                assert!(matches!(seconds, Seconds::Const(_)), "{ttl}");
            }
            let emitted = args.ttl.expression("ttl", &args.paths).to_string();
            assert!(emitted.contains("__private :: seconds"), "{emitted}");
            assert!(
                emitted.contains("`ttl` must be from 1 to 4294967295"),
                "{emitted}"
            );
        }
    }

    #[test]
    fn bad_ttls_say_why() {
        assert!(message(quote!()).starts_with("missing `ttl`"));
        assert!(message(quote!(ttl = 0)).contains("at least 1 second"));
        assert!(message(quote!(ttl = -5)).contains("must be positive"));
        assert!(message(quote!(ttl = 1.5)).contains("whole number"));
        assert!(message(quote!(ttl = "60")).contains("not a string"));
        assert!(message(quote!(ttl = true)).contains("must be a number"));
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

    #[test]
    fn every_option_parses() {
        let args = parse(quote!(
            ttl = 60,
            vary = ["Accept-Language", "X-Tenant"],
            vary_cookies = ["lang"],
            public,
            query = ["page", "sort"],
            statuses = [200, 404],
            honor_no_cache = true
        ))
        .unwrap();
        assert_eq!(args.vary.len(), 2);
        assert_eq!(args.vary_cookies[0].value(), "lang");
        assert!(args.public.is_some() && args.honor_no_cache);
        assert!(matches!(args.query, Query::Only(ref names) if names.len() == 2));
        assert_eq!(args.statuses, [200, 404]);
        let defaults = parse(quote!(ttl = 1)).unwrap();
        assert_eq!(defaults.statuses, [200]);
        assert!(matches!(defaults.query, Query::Default));
        assert!(matches!(
            parse(quote!(ttl = 1, query = false)).unwrap().query,
            Query::Ignored
        ));
    }

    #[test]
    fn bad_names_lists_and_statuses_say_why() {
        assert!(message(quote!(ttl = 1, vary = ["Accept Language"])).contains("not a header name"));
        assert!(message(quote!(ttl = 1, vary = ["accept", "ACCEPT"])).contains("listed twice"));
        assert!(message(quote!(ttl = 1, vary = ["Cookie"])).contains("vary_cookies"));
        assert!(message(quote!(ttl = 1, vary = "Accept")).contains("takes a list"));
        assert!(message(quote!(ttl = 1, vary_cookies = ["a;b"])).contains("not a cookie name"));
        assert!(message(quote!(ttl = 1, statuses = [200, 200])).contains("listed twice"));
        assert!(message(quote!(ttl = 1, statuses = [302])).contains("not cacheable"));
        // Regression: 300 Multiple Choices was refused, though heuristically cacheable.
        let multiple_choices = parse(quote!(ttl = 1, statuses = [200, 300]));
        assert_eq!(multiple_choices.unwrap().statuses, [200, 300]);
        assert!(message(quote!(ttl = 1, statuses = [99])).contains("from 200 to 599"));
        assert!(message(quote!(ttl = 1, query = true)).contains("query = \"all\""));
        assert!(message(quote!(ttl = 1, public = "yes")).contains("is a flag"));
    }

    /// The options table lives in one place, the guide's attribute chapter: a row per option,
    /// in the order the parser declares them.
    #[test]
    fn the_user_guide_lists_every_option() {
        let guide = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../cache-runtime/guide/attribute.md"
        ))
        .unwrap();
        let rows: Vec<&str> = guide
            .lines()
            .filter_map(|line| line.strip_prefix("| `"))
            .filter_map(|row| row.split([' ', '`']).next())
            .filter(|name| OPTIONS.iter().any(|option| option.name == *name))
            .collect();
        let declared: Vec<&str> = OPTIONS.iter().map(|option| option.name).collect();
        assert_eq!(rows, declared);
    }

    #[test]
    fn negative_ttl_needs_a_negative_status() {
        let args = parse(quote!(ttl = 60, statuses = [200, 410], negative_ttl = 5)).unwrap();
        assert!(matches!(args.negative_ttl, Some((Seconds::Literal(5), _))));
        // Either order.
        assert!(parse(quote!(ttl = 60, negative_ttl = 5, statuses = [404])).is_ok());
        for listed in [quote!(), quote!(statuses = [200, 301])] {
            let message = message(quote!(ttl = 60, negative_ttl = 5, #listed));
            assert!(message.contains("lists none"), "{listed}: {message}");
        }
        assert!(message(quote!(ttl = 1, negative_ttl = 0)).contains("leave `negative_ttl` out"));
    }

    #[test]
    fn stale_windows_parse() {
        let stale = parse(quote!(ttl = 1, stale = 30, stale_if_error = 3600)).unwrap();
        assert_eq!(
            (literal(&stale.stale), literal(&stale.stale_if_error)),
            (Some(30), Some(3600))
        );
        assert!(message(quote!(ttl = 1, stale = 0)).contains("leave `stale` out"));
        assert!(message(quote!(ttl = 1, stale_if_error = -1)).contains("must be positive"));
    }

    #[test]
    fn downstream_parses() {
        let parsed = |tokens| parse(tokens).unwrap().downstream;
        assert_eq!(parsed(quote!(ttl = 1)), Downstream::Off);
        assert_eq!(
            parsed(quote!(ttl = 1, downstream = "max-age")),
            Downstream::MaxAge
        );
        assert_eq!(
            parsed(quote!(ttl = 1, downstream = "s-maxage")),
            Downstream::SharedMaxAge
        );
        assert!(message(quote!(ttl = 1, downstream = "public")).contains("is not known"));
        assert!(message(quote!(ttl = 1, downstream = 60)).contains("takes a string"));
    }
}

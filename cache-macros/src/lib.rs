use proc_macro::TokenStream; #[proc_macro_attribute] pub fn cached_route(_a: TokenStream, i: TokenStream) -> TokenStream { i }

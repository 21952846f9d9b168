//! Errors gathered across independent checks and reported together, each at its own tokens, so
//! that one build shows every mistake.

/// The errors found so far.
#[derive(Default)]
pub(crate) struct Diagnostics(Option<syn::Error>);

impl Diagnostics {
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub(crate) fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

/// Returns `text` as a code span in a message, or as a quoted string when it holds a backtick,
/// which would end the span early (a header name may hold one: "a`b").
pub(crate) fn code(text: &str) -> String {
    if text.contains('`') {
        format!("{text:?}")
    } else {
        format!("`{text}`")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_backtick_never_sits_inside_a_code_span() {
        assert_eq!(super::code("Accept"), "`Accept`");
        assert_eq!(super::code("a`b"), "\"a`b\"");
    }
}

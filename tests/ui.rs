//! Compile-time behaviour of `#[cached_route]`: one failing case per distinct message, each
//! with its expected `.stderr`; and generated code that compiles warning-free.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/fail/*.rs");
    cases.pass("tests/ui/pass/*.rs");
}

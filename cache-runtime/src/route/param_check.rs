//! Bounds the generated code asserts on the values written in `#[cached_route(..)]` and on
//! the handler's route parameters, each with a message that says what the cache does with the
//! value and how to fix the code. The bounds are traits of this crate (implemented for every
//! type with the standard trait) so that the compiler reports their message, not the standard
//! trait's, which would suggest fixes the attribute refuses (`{:?}` in a tag).

use std::fmt;

/// An integer type: what `ttl = EXPR`, `stale = EXPR` and `stale_if_error = EXPR` accept.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a whole number of seconds",
    label = "`ttl`, `stale` and `stale_if_error` take an integer",
    note = "write a number of seconds as an integer constant expression, such as `15 * 60`, or \
            `HOUR` with `const HOUR: u32 = 3600;`"
)]
pub trait Seconds {}

macro_rules! seconds {
    ($($integer:ty)*) => { $(impl Seconds for $integer {})* };
}
seconds!(u8 u16 u32 u64 u128 usize i8 i16 i32 i64 i128 isize);

/// Asserts at compile time that a `ttl` or window expression is an integer; its range is
/// checked where the generated code converts it.
pub const fn seconds<T: Seconds>(_value: &T) {}

/// A route parameter's type, whose `Debug` form identifies the entries cached for a value.
#[diagnostic::on_unimplemented(
    message = "the route parameter type `{Self}` does not implement `Debug`, which #[cached_route] needs",
    label = "a route parameter of a cached handler",
    note = "the cache files each entry under its route parameters' values, written with `Debug`, \
            so that `handler::invalidate(value)` finds the entries cached for that value",
    note = "add `#[derive(Debug)]` to `{Self}`, or implement `std::fmt::Debug` for it writing every \
            field the page depends on"
)]
pub trait KeyPart: fmt::Debug {}

impl<T: fmt::Debug + ?Sized> KeyPart for T {}

/// Returns a route parameter as the route's invalidation scope takes it.
pub fn key_part<T: KeyPart>(value: &T) -> &dyn fmt::Debug {
    value
}

/// A route parameter's type that a tag may hold (`tags = ["article:{id}"]`).
#[diagnostic::on_unimplemented(
    message = "the route parameter type `{Self}` does not implement `Display`, which a tag needs",
    label = "a tag writes the route parameters it names with `Display`",
    note = "a tag is text that `invalidate_tag` matches exactly, so its parameters are written \
            with `Display`; format specs such as `{{id:?}}` are not accepted",
    note = "name a route parameter whose type implements `Display` (`u32`, `&str`, `String`, ..) \
            in the tag, or implement `std::fmt::Display` for `{Self}`"
)]
pub trait TagPart: fmt::Display {}

impl<T: fmt::Display + ?Sized> TagPart for T {}

/// Returns a route parameter as a tag takes it: a trait object, so that a type without `Display`
/// is reported once, by `TagPart`, and not again by `format!`.
pub fn tag_part<T: TagPart>(value: &T) -> &dyn fmt::Display {
    value
}

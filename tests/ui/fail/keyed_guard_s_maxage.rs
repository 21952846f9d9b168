//! A page keyed per user must not go to shared caches: `s-maxage` does not compile, and the
//! check goes by the guard's resolved type (here behind an alias and an `Option`).
use rocket::get;
use rocket::request::{FromRequest, Outcome, Request};
use rocket_route_cache::{cached_route, KeyedGuard};

struct User(u64);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for User {
    type Error = ();

    async fn from_request(_: &'r Request<'_>) -> Outcome<User, ()> {
        Outcome::Success(User(1))
    }
}

impl KeyedGuard for User {
    fn cache_key(&self) -> impl std::fmt::Display + '_ {
        self.0
    }
}

type Visitor = Option<User>;

#[cached_route(ttl = 60, downstream = "s-maxage")]
#[get("/dashboard")]
fn dashboard(user: Visitor) -> String {
    format!("{:?}", user.map(|u| u.0))
}

fn main() {}

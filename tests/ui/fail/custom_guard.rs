//! An application's own guard may read a session cookie or a header: the route must say how
//! the page varies before it compiles.
use rocket_route_cache::cached_route;
use rocket::get;
use rocket::request::{FromRequest, Outcome, Request};

struct User(String);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for User {
    type Error = ();

    async fn from_request(request: &'r Request<'_>) -> Outcome<User, ()> {
        let name = request.cookies().get("session").map(|c| c.value().to_owned());
        Outcome::Success(User(name.unwrap_or_default()))
    }
}

#[cached_route(ttl = 60)]
#[get("/account")]
fn account(user: User) -> String {
    format!("hello {}", user.0)
}

fn main() {}

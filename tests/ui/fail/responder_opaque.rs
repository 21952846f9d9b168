//! An `impl Responder` return type hides the responder: the cache cannot vouch for it.
use rocket::get;
use rocket::response::Responder;
use rocket_route_cache::cached_route;

#[cached_route(ttl = 60)]
#[get("/")]
fn index<'r>() -> impl Responder<'r, 'static> {
    "home"
}

fn main() {}

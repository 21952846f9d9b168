use cache_runtime::cached_route;
use rocket::get;

#[cached_route(ttl)]
#[get("/")]
fn index() -> &'static str {
    "hello"
}

fn main() {}

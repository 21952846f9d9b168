use cache_runtime::cached_route;
use rocket::post;

#[cached_route(ttl = 60)]
#[post("/")]
fn index() -> &'static str {
    "hello"
}

fn main() {}

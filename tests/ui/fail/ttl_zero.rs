use cache_runtime::cached_route;
use rocket::get;

#[cached_route(ttl = 0)]
#[get("/")]
fn index() -> &'static str {
    "hello"
}

fn main() {}

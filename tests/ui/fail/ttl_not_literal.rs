use cache_runtime::cached_route;
use rocket::get;

const MINUTE: u32 = 60;

#[cached_route(ttl = MINUTE)]
#[get("/")]
fn index() -> &'static str {
    "hello"
}

fn main() {}

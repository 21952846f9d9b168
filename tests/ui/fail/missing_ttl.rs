use cache_runtime::cached_route;
use rocket::get;

#[cached_route]
#[get("/")]
fn index() -> &'static str {
    "hello"
}

fn main() {}

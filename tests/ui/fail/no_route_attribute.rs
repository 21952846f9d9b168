use rocket_route_cache::cached_route;

#[cached_route(ttl = 60)]
fn index() -> &'static str {
    "hello"
}

fn main() {
    let _ = index();
}

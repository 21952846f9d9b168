use rocket_route_cache::cached_route;

#[cached_route(ttl = 60)]
struct Index;

fn main() {
    let _ = Index;
}

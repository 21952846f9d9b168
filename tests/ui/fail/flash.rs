use rocket_route_cache::cached_route;
use rocket::get;
use rocket::response::Flash;

#[cached_route(ttl = 60)]
#[get("/")]
fn index() -> Flash<String> {
    Flash::success(String::from("page"), "saved")
}

fn main() {}

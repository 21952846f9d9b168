use rocket_route_cache::cached_route;
use rocket::get;

#[cached_route(ttl = 60)]
#[get("/articles/<id>")]
fn article(id: u32) -> String {
    id.to_string()
}

async fn on_update() {
    let _ = article::invalidate("5").await;
}

fn main() {
    let _ = on_update();
}

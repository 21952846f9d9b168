use rocket_route_cache::cached_route;
use rocket::get;

#[cached_route(ttl = 60)]
#[get("/articles/<id>?<lang>")]
fn article(id: u32, lang: Option<&str>) -> String {
    format!("{id} {lang:?}")
}

async fn on_update() {
    let _ = article::invalidate(5).await;
}

fn main() {
    let _ = on_update();
}

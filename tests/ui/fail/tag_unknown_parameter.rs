use rocket_route_cache::cached_route;
use rocket::get;

#[cached_route(ttl = 60, tags = ["articles", "article:{slug}"])]
#[get("/articles/<id>?<lang>")]
fn article(id: u32, lang: Option<&str>) -> String {
    format!("{id} {lang:?}")
}

fn main() {}

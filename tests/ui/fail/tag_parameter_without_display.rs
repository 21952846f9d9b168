use rocket_route_cache::cached_route;
use rocket::get;

#[cached_route(ttl = 60, tags = ["lang:{lang}"])]
#[get("/articles?<lang>")]
fn articles(lang: Option<&str>) -> String {
    lang.unwrap_or("en").to_owned()
}

fn main() {}

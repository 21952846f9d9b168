use rocket_route_cache::cached_route;
use rocket::get;
use rocket::request::FlashMessage;

#[cached_route(ttl = 60, vary_cookies = ["lang"])]
#[get("/")]
fn index(flash: Option<FlashMessage<'_>>) -> String {
    flash.map(|f| f.message().to_owned()).unwrap_or_default()
}

fn main() {}

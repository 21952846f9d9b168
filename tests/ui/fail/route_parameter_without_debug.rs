use rocket_route_cache::cached_route;
use rocket::get;
use rocket::request::FromParam;

struct Slug(String);

impl<'a> FromParam<'a> for Slug {
    type Error = ();

    fn from_param(param: &'a str) -> Result<Slug, ()> {
        Ok(Slug(param.to_owned()))
    }
}

#[cached_route(ttl = 60)]
#[get("/articles/<slug>")]
fn article(slug: Slug) -> String {
    slug.0
}

fn main() {}

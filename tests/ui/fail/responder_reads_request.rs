//! A responder of the application's own reads the request in `respond_to`: one client's header
//! would be stored for every client (a `<script src>` built from `X-Forwarded-Host`).
use rocket::request::Request;
use rocket::response::{self, content::RawHtml, Responder};
use rocket::get;
use rocket_route_cache::cached_route;

struct Page(String);

impl<'r> Responder<'r, 'static> for Page {
    fn respond_to(self, request: &'r Request<'_>) -> response::Result<'static> {
        let host = request.headers().get_one("X-Forwarded-Host").unwrap_or("localhost");
        RawHtml(format!("<script src=\"//{host}/app.js\"></script>{}", self.0)).respond_to(request)
    }
}

#[cached_route(ttl = 60)]
#[get("/")]
fn index() -> Page {
    Page("home".into())
}

/// Wrapped, it is found too.
#[cached_route(ttl = 60)]
#[get("/maybe")]
fn maybe() -> Option<Page> {
    None
}

fn main() {}

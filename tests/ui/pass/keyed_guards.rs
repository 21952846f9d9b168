//! Guards that key the page themselves (`KeyedGuard`), whatever they are called and however
//! they are wrapped; tags naming them; responders the cache vouches for, the application's
//! own with the marker.
#![deny(warnings)]

use rocket::http::Status;
use rocket::outcome::Outcome as RocketOutcome;
use rocket::request::{FromRequest, Outcome, Request};
use rocket::serde::json::Json;
use rocket::{get, routes, Responder};
use rocket_route_cache::{cached_route, KeyedGuard as Keyed, SharedResponder};

mod auth {
    pub struct User {
        pub id: u64,
    }
}

use auth::User as Member;

#[rocket::async_trait]
impl<'r> FromRequest<'r> for auth::User {
    type Error = ();

    async fn from_request(_: &'r Request<'_>) -> Outcome<auth::User, ()> {
        Outcome::Forward(Status::Unauthorized)
    }
}

impl Keyed for auth::User {
    fn cache_key(&self) -> impl std::fmt::Display + '_ {
        self.id
    }
}

type Visitor = Option<Member>;

#[cached_route(ttl = 60, tags = ["user:{user}"], downstream = "max-age")]
#[get("/dashboard")]
fn dashboard(user: Member) -> String {
    user.id.to_string()
}

#[cached_route(ttl = 60, tags = ["user:{user}"])]
#[get("/home")]
fn home(user: Visitor) -> String {
    user.map(|u| u.id.to_string()).unwrap_or_default()
}

#[cached_route(ttl = 60)]
#[get("/settings")]
fn settings(user: Result<Member, ()>) -> Json<Option<u64>> {
    Json(user.ok().map(|u| u.id))
}

#[cached_route(ttl = 60)]
#[get("/outcome")]
fn outcome(user: RocketOutcome<Member, (Status, ()), Status>) -> String {
    user.succeeded().map(|u| u.id.to_string()).unwrap_or_default()
}

#[derive(Responder)]
#[response(content_type = "html")]
struct Page(String);

impl SharedResponder for Page {}

#[cached_route(ttl = 60)]
#[get("/page/<id>")]
fn page(id: u32) -> Result<Page, Status> {
    Ok(Page(id.to_string()))
}

fn main() {
    let _ = routes![dashboard, home, settings, outcome, page];
}

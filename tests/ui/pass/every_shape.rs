//! Generated code is warning-free in a user crate, for every supported handler shape.
#![deny(warnings, unused, nonstandard_style, rust_2018_idioms)]

use rocket_route_cache::cached_route;
use rocket::http::{ContentType, Status};
use rocket::response::{status, Redirect};
use rocket::serde::json::Json;
use rocket::{get, routes, State};

struct Db;

#[cached_route(ttl = 60)]
#[get("/article/<id>?<lang>")]
async fn article(id: u32, lang: Option<&str>, _db: &State<Db>) -> Json<Vec<String>> {
    Json(vec![id.to_string(), lang.unwrap_or("en").to_owned()])
}

/// Documented, sync, with a `mut` parameter.
#[cached_route(ttl = 1)]
#[get("/count/<n>")]
fn count(mut n: u32) -> String {
    n += 1;
    n.to_string()
}

#[cached_route(ttl = 60)]
#[get("/static")]
fn fixed() -> &'static str {
    "fixed"
}

#[cached_route(ttl = 60)]
#[get("/tuple")]
fn tuple() -> (ContentType, String) {
    (ContentType::Plain, String::new())
}

#[cached_route(ttl = 60)]
#[get("/custom")]
fn custom() -> status::Custom<String> {
    status::Custom(Status::Ok, String::new())
}

#[cached_route(ttl = 60, statuses = [200, 404, 410], negative_ttl = 10)]
#[get("/option")]
fn option() -> Option<String> {
    None
}

#[cached_route(ttl = 60)]
#[get("/result")]
async fn result() -> Result<String, Status> {
    Err(Status::NotFound)
}

#[cached_route(ttl = 60)]
#[get("/redirect")]
fn redirect() -> Redirect {
    Redirect::to("/")
}

#[cached_route(ttl = 60)]
#[get("/echo/<text>")]
fn echo<'a>(text: &'a str) -> &'a str {
    text
}

#[cached_route(ttl = 60)]
#[rocket::get("/unit")]
fn unit() {}

/// Inner attributes, `expect`, early `return` and `?` in the body.
#[cached_route(ttl = 60)]
#[get("/body/<n>")]
#[expect(clippy::needless_return)]
async fn body(n: &str) -> Result<String, Status> {
    #![allow(unused_variables)]
    let unused = 1;
    let parsed: u32 = n.parse().map_err(|_| Status::BadRequest)?;
    if parsed == 0 {
        return Err(Status::NotFound);
    }
    return Ok(parsed.to_string());
}

#[cached_route(ttl = 60)]
#[get("/const")]
const fn constant() -> &'static str {
    "const"
}

fn main() {
    let _ = rocket::build().manage(Db).mount(
        "/",
        routes![
            article, count, fixed, tuple, custom, option, result, redirect, echo, unit, body,
            constant
        ],
    );
}

//! A JSON API whose answers depend on the language: one entry per `Accept-Language`, and 404s
//! cached too, so a crawler asking for missing ids does not reach the database each time.
//!
//! ```text
//! cargo run --example json_api
//! curl -si -H 'Accept-Language: fr' http://127.0.0.1:8000/api/articles/1
//! ```

use rocket::http::Status;
use rocket::request::{FromRequest, Outcome};
use rocket::response::status;
use rocket::serde::json::Json;
use rocket::serde::Serialize;
use rocket::{get, launch, routes, Request};
use rocket_route_cache::{cached_route, CacheFairing};

#[derive(Serialize)]
#[serde(crate = "rocket::serde")]
struct Article {
    id: u32,
    title: String,
}

/// The first language the client accepts. It reads only `Accept-Language`, which the route puts
/// in the key (`vary`), so the route can vouch for it (`trusted_guards`).
struct Language(String);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Language {
    type Error = ();

    async fn from_request(request: &'r Request<'_>) -> Outcome<Language, ()> {
        let wanted = request.headers().get_one("Accept-Language").unwrap_or("en");
        let first = wanted.split([',', ';', '-']).next().unwrap_or("en").trim();
        Outcome::Success(Language(if first == "fr" { "fr" } else { "en" }.to_owned()))
    }
}

#[cached_route(
    ttl = 300,
    vary = ["Accept-Language"],
    trusted_guards = ["language"],
    statuses = [200, 404]
)]
#[get("/api/articles/<id>")]
async fn article(
    id: u32,
    language: Language,
) -> Result<Json<Article>, status::Custom<Json<&'static str>>> {
    match id {
        1 | 2 => Ok(Json(Article {
            id,
            title: match language.0.as_str() {
                "fr" => format!("Article numéro {id}"),
                _ => format!("Article number {id}"),
            },
        })),
        _ => Err(status::Custom(Status::NotFound, Json("no such article"))),
    }
}

#[launch]
fn rocket() -> _ {
    rocket::build()
        .attach(CacheFairing)
        .mount("/", routes![article])
        .mount("/internal", rocket_route_cache::metrics::metrics_routes())
}

//! A small blog whose pages are cached for an hour and still never stale: renaming an article
//! invalidates its page (typed, from the handler's own parameters), every other view of it (its
//! tag) and every listing (their tag), on every instance sharing the cache.
//!
//! ```text
//! cargo run --example articles                                     # embedded store
//! MEMCACHED_SERVERS=127.0.0.1:11211 cargo run --example articles   # Memcached
//! curl -i http://127.0.0.1:8000/articles/1          # X-Cache: MISS, then HIT
//! curl -i -d 'title=Renamed' http://127.0.0.1:8000/articles/1   # update: 303 to the page
//! curl -i http://127.0.0.1:8000/articles/1          # X-Cache: MISS, the new title
//! curl -i http://127.0.0.1:8000/articles/1/print    # its other view: new title too
//! curl -i -X POST http://127.0.0.1:8000/flush       # drop every entry of this app
//! ```
//!
//! Articles are files in `ARTICLES_DIR` (a fresh temporary directory when unset), standing in
//! for the database several instances would share.
//!
//! The cache namespace carries the crate version (`articles-0.1.0`): a new release never serves
//! pages the previous one rendered, even while both run during a rolling deploy.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use rocket::fairing::AdHoc;
use rocket::form::{Form, FromForm};
use rocket::http::Status;
use rocket::response::content::RawHtml;
use rocket::response::{status, Redirect};
use rocket::{get, launch, post, routes, uri, State};
use rocket_route_cache::{cached_route, CacheFairing};

/// The articles, as a shared database would hold them: one file per article, its title.
struct Articles(PathBuf);

impl Articles {
    fn open() -> std::io::Result<Articles> {
        let dir = match std::env::var_os("ARTICLES_DIR") {
            Some(dir) => PathBuf::from(dir),
            None => std::env::temp_dir().join(format!("articles-{}", std::process::id())),
        };
        std::fs::create_dir_all(&dir)?;
        let articles = Articles(dir);
        if articles.all().is_empty() {
            articles.rename(1, "Caching Rocket routes")?;
            articles.rename(2, "Invalidation without listing keys")?;
        }
        Ok(articles)
    }

    fn all(&self) -> BTreeMap<u32, String> {
        let Ok(entries) = std::fs::read_dir(&self.0) else {
            return BTreeMap::new();
        };
        entries
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let id = entry
                    .file_name()
                    .to_str()?
                    .strip_suffix(".txt")?
                    .parse()
                    .ok()?;
                Some((id, self.get(id)?))
            })
            .collect()
    }

    fn get(&self, id: u32) -> Option<String> {
        std::fs::read_to_string(self.0.join(format!("{id}.txt"))).ok()
    }

    fn rename(&self, id: u32, title: &str) -> std::io::Result<()> {
        // Written aside, then renamed into place: a reader never sees half a title.
        let staged = self.0.join(format!(".{id}.{}", std::process::id()));
        std::fs::write(&staged, title)?;
        std::fs::rename(staged, self.0.join(format!("{id}.txt")))
    }
}

/// Text for HTML: titles come from a form.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn rendered_at() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}.{:03}", now.as_secs(), now.subsec_millis())
}

/// Every listing carries the `articles` tag.
#[cached_route(ttl = 3600, tags = ["articles"])]
#[get("/")]
fn index(articles: &State<Articles>) -> RawHtml<String> {
    let items: String = articles
        .all()
        .iter()
        .map(|(id, title)| {
            let title = escape(title);
            format!("<li><a href=\"/articles/{id}\">{title}</a></li>")
        })
        .collect();
    RawHtml(format!(
        "<h1>Articles</h1><ul>{items}</ul><p>rendered at {}</p>",
        rendered_at()
    ))
}

/// One page per article: invalidated by its handler's typed `article::invalidate(id)`.
#[cached_route(ttl = 3600)]
#[get("/articles/<id>")]
fn article(id: u32, articles: &State<Articles>) -> Option<RawHtml<String>> {
    let title = escape(&articles.get(id)?);
    Some(RawHtml(format!(
        "<h1>{title}</h1><form method=post><input name=title value=\"{title}\">\
         <button>Rename</button></form><p>rendered at {}</p>",
        rendered_at()
    )))
}

/// Another view of an article, tagged with it: whatever shows article 5 carries `article:5`.
#[cached_route(ttl = 3600, tags = ["article:{id}"])]
#[get("/articles/<id>/print")]
fn print(id: u32, articles: &State<Articles>) -> Option<String> {
    let title = articles.get(id)?;
    Some(format!("{title}\n\n(printed at {})\n", rendered_at()))
}

#[derive(FromForm)]
struct Update<'r> {
    title: &'r str,
}

/// Renames an article, then drops what showed the old title: the article's page (typed: a
/// wrong parameter type would not compile), its other views and every listing (by tag).
#[post("/articles/<id>", data = "<update>")]
async fn update(
    id: u32,
    update: Form<Update<'_>>,
    articles: &State<Articles>,
) -> Result<Redirect, status::Custom<String>> {
    if articles.get(id).is_none() {
        return Err(status::Custom(Status::NotFound, "no such article".into()));
    }
    if let Err(error) = articles.rename(id, update.title) {
        return Err(status::Custom(
            Status::InternalServerError,
            error.to_string(),
        ));
    }
    let invalidated = async {
        article::invalidate(id).await?;
        rocket_route_cache::invalidate_tag(format!("article:{id}")).await?;
        rocket_route_cache::invalidate_tag("articles").await
    };
    match invalidated.await {
        Ok(()) => Ok(Redirect::to(uri!(article(id)))),
        // The update is saved; say that cached copies may lag until it is retried.
        Err(error) => Err(status::Custom(
            Status::ServiceUnavailable,
            format!("saved, but {error}"),
        )),
    }
}

/// Drops every cached page of this application (other applications sharing the Memcached
/// servers under other namespaces keep theirs).
#[post("/flush")]
async fn flush() -> Result<&'static str, status::Custom<String>> {
    rocket_route_cache::invalidate_all()
        .await
        .map(|()| "flushed\n")
        .map_err(|error| status::Custom(Status::ServiceUnavailable, error.to_string()))
}

#[launch]
fn rocket() -> _ {
    // The version in the namespace: each release has its own entries.
    let figment = rocket::Config::figment().merge((
        "cache.namespace",
        concat!("articles-", env!("CARGO_PKG_VERSION")),
    ));
    let articles = Articles::open().expect("the articles directory is writable");
    rocket::custom(figment)
        .manage(articles)
        .mount("/", routes![index, article, print, update, flush])
        .attach(CacheFairing)
        .attach(AdHoc::on_liftoff("banner", |rocket| {
            Box::pin(async move {
                let config = rocket.config();
                println!(
                    "articles: serving http://{}:{}/ with cache backend: {}",
                    config.address,
                    config.port,
                    rocket_route_cache::config::global().describe()
                );
            })
        }))
}

//! The dashboard's stylesheet, script and icon, compiled into the binary: the
//! page works offline and loads nothing from anywhere else.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// (name, content type, bytes).
const ASSETS: [(&str, &str, &str); 3] = [
    (
        "dashboard.css",
        "text/css; charset=utf-8",
        include_str!("../../../assets/dashboard.css"),
    ),
    (
        "dashboard.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../assets/dashboard.js"),
    ),
    (
        "icon.svg",
        "image/svg+xml",
        include_str!("../../../assets/icon.svg"),
    ),
];

fn asset(name: &str) -> Response {
    let Some((_, ctype, text)) = ASSETS.iter().find(|(n, _, _)| *n == name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut resp = (*text).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    // No personal data in them: a browser may keep them for a while.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    resp
}

/// `GET /assets/{name}`.
pub(super) async fn serve(Path(name): Path<String>) -> Response {
    asset(&name)
}

/// `GET /favicon.ico`: the icon (browsers ask for it by this name).
pub(super) async fn favicon() -> Response {
    asset("icon.svg")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_are_served_and_nothing_else() {
        for (name, ctype, _) in ASSETS {
            let r = asset(name);
            assert_eq!(r.status(), StatusCode::OK);
            assert_eq!(r.headers()[header::CONTENT_TYPE], ctype);
        }
        assert_eq!(asset("../Cargo.toml").status(), StatusCode::NOT_FOUND);
        assert_eq!(asset("").status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn nothing_is_loaded_from_elsewhere() {
        for (name, _, text) in ASSETS {
            for needle in ["http://", "https://", "//cdn", "@import", "url("] {
                // The SVG's namespace is an identifier, not a request.
                if name == "icon.svg" && needle == "http://" {
                    continue;
                }
                assert!(!text.contains(needle), "{name} holds {needle}");
            }
        }
    }
}

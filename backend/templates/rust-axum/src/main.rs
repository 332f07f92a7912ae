//! {{name}}: a web service. `cargo run`, then open http://127.0.0.1:3000/.

use axum::Router;
use axum::routing::get;

#[tokio::main]
async fn main() {
    let app = Router::new()
        .route("/", get(|| async { "Hello from {{name}}!\n" }))
        .route("/healthz", get(|| async { "ok" }));
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("cannot listen; set ADDR to a free address");
    println!("listening on http://{addr}");
    axum::serve(listener, app).await.expect("server error");
}

mod common;

#[tokio::test]
async fn get_book_through_gateway() {
    let env = common::Env::start().await;
    let r = env.get("/v1/shelves/1/books/1").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["title"], "The Left Hand of Darkness");
    let r = env
        .http
        .get(env.url("/v1/shelves/1"))
        .header("x-fail-code", "5")
        .send()
        .await
        .unwrap();
    let _ = r;
}

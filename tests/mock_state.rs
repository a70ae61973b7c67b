//! The mock backend's stateful CRUD: AIP standard methods on library.v1
//! shelves and books through `CrudStore::handle`.

use std::sync::OnceLock;

use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MethodDescriptor, ReflectMessage};
use protogate::upstream::mock::generate::Generator;
use protogate::upstream::mock::state::CrudStore;
use serde_json::{Value, json};
use tonic::Code;

fn pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        protogate::descriptors::load(&["descriptors".into()])
            .expect("bundled descriptors load")
            .pool
    })
}

fn method(name: &str) -> MethodDescriptor {
    pool()
        .get_service_by_name("library.v1.LibraryService")
        .expect("service")
        .methods()
        .find(|m| m.name() == name)
        .unwrap_or_else(|| panic!("method {name}"))
}

/// The store and generator under test, and a helper that runs one call.
struct Mock {
    store: CrudStore,
    generator: Generator,
}

impl Mock {
    fn new() -> Mock {
        Mock {
            store: CrudStore::new(),
            generator: Generator::new(1),
        }
    }

    fn call(&self, name: &str, body: Value) -> Result<Value, tonic::Status> {
        let m = method(name);
        let req = DynamicMessage::deserialize(m.input(), body).expect("request JSON");
        let mut key = m.full_name().as_bytes().to_vec();
        key.extend(req.encode_to_vec());
        let resp = self
            .store
            .handle(&m, &req, &self.generator, &key)
            .unwrap_or_else(|| panic!("{name} is a standard method"))?;
        assert_eq!(resp.descriptor().full_name(), m.output().full_name());
        Ok(serde_json::to_value(&resp).expect("response JSON"))
    }

    fn ok(&self, name: &str, body: Value) -> Value {
        self.call(name, body)
            .unwrap_or_else(|s| panic!("{name} failed: {s:?}"))
    }

    fn code(&self, name: &str, body: Value) -> (Code, String) {
        match self.call(name, body) {
            Ok(v) => panic!("{name} succeeded: {v}"),
            Err(s) => (s.code(), s.message().to_owned()),
        }
    }
}

fn names(page: &Value, list: &str) -> Vec<String> {
    page[list]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| r["name"].as_str().expect("name").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn shelf_lifecycle() {
    let mock = Mock::new();
    let shelf = mock.ok(
        "CreateShelf",
        json!({"shelfId": "scifi", "shelf": {"theme": "Science fiction", "genre": "FICTION"}}),
    );
    assert_eq!(shelf["name"], "shelves/scifi");
    assert_eq!(shelf["theme"], "Science fiction");
    assert_eq!(shelf["genre"], "FICTION");
    assert!(
        shelf["createTime"].is_string(),
        "stamped on create: {shelf}"
    );
    assert!(
        shelf["labels"].is_object(),
        "unset fields generated: {shelf}"
    );

    let got = mock.ok("GetShelf", json!({"name": "shelves/scifi"}));
    assert_eq!(got, shelf);

    let page = mock.ok("ListShelves", json!({}));
    assert_eq!(names(&page, "shelves"), ["shelves/scifi"]);
    assert!(page.get("nextPageToken").is_none_or(|t| t == ""));

    let (code, message) = mock.code("DeleteShelf", json!({"name": "shelves/nope"}));
    assert_eq!(code, Code::NotFound);
    assert!(
        message.contains("Shelf") && message.contains("shelves/nope"),
        "{message}"
    );

    assert_eq!(
        mock.ok("DeleteShelf", json!({"name": "shelves/scifi"})),
        json!({})
    );
    let (code, message) = mock.code("GetShelf", json!({"name": "shelves/scifi"}));
    assert_eq!(code, Code::NotFound);
    assert!(message.contains("shelves/scifi"), "{message}");
    assert!(mock.store.is_empty());
}

#[test]
fn book_lifecycle() {
    let mock = Mock::new();
    mock.ok("CreateShelf", json!({"shelfId": "1", "shelf": {}}));
    let book = mock.ok(
        "CreateBook",
        json!({
            "parent": "shelves/1",
            "book": {"title": "Dune", "authors": ["Frank Herbert"], "publisher": {"name": "Chilton"}}
        }),
    );
    let name = book["name"].as_str().expect("name").to_owned();
    assert_eq!(name, "shelves/1/books/1", "ids are numbered");
    assert_eq!(book["title"], "Dune");
    assert_eq!(book["authors"], json!(["Frank Herbert"]));
    assert_eq!(book["publisher"]["name"], "Chilton");
    assert!(book["publisher"]["email"].is_string(), "{book}");
    assert!(book["isbn"].is_string(), "{book}");

    let second = mock.ok(
        "CreateBook",
        json!({"parent": "shelves/1", "book": {"title": "Dune"}}),
    );
    assert_eq!(second["name"], "shelves/1/books/2");
    let own_id = mock.ok(
        "CreateBook",
        json!({"parent": "shelves/1", "bookId": "emma", "book": {"title": "Emma"}}),
    );
    assert_eq!(own_id["name"], "shelves/1/books/emma");

    assert_eq!(mock.ok("GetBook", json!({"name": name})), book);

    let page = mock.ok("ListBooks", json!({"parent": "shelves/1"}));
    assert_eq!(
        names(&page, "books"),
        [
            "shelves/1/books/1",
            "shelves/1/books/2",
            "shelves/1/books/emma"
        ]
    );
    assert_eq!(page["totalSize"], 3);

    // A masked update changes the named fields only, nested ones included.
    let updated = mock.ok(
        "UpdateBook",
        json!({
            "book": {"name": name, "title": "Dune Messiah", "pageCount": "256", "publisher": {"email": "x@y.org"}},
            "updateMask": "title,publisher.email"
        }),
    );
    assert_eq!(updated["name"], name.as_str());
    assert_eq!(updated["title"], "Dune Messiah");
    assert_eq!(updated["pageCount"], book["pageCount"], "not in the mask");
    assert_eq!(updated["publisher"]["email"], "x@y.org");
    assert_eq!(updated["publisher"]["name"], "Chilton");
    assert_eq!(updated["isbn"], book["isbn"]);

    // Without a mask, the fields set in the request change.
    let updated = mock.ok(
        "UpdateBook",
        json!({"book": {"name": name, "pageCount": "300", "labels": {"shelf": "top"}}}),
    );
    assert_eq!(updated["title"], "Dune Messiah");
    assert_eq!(updated["pageCount"], "300");
    assert_eq!(updated["labels"], json!({"shelf": "top"}));
    assert_eq!(mock.ok("GetBook", json!({"name": name})), updated);

    // A path to a field the request leaves unset clears it; map keys work.
    let updated = mock.ok(
        "UpdateBook",
        json!({"book": {"name": name, "labels": {"new": "yes"}}, "updateMask": "isbn,labels.new"}),
    );
    assert!(updated.get("isbn").is_none(), "{updated}");
    assert_eq!(updated["labels"], json!({"shelf": "top", "new": "yes"}));

    // `*` replaces everything but the name.
    let replaced = mock.ok(
        "UpdateBook",
        json!({"book": {"name": name, "title": "Only"}, "updateMask": "*"}),
    );
    assert_eq!(replaced["title"], "Only");
    assert!(replaced.get("authors").is_none(), "{replaced}");

    assert_eq!(mock.ok("DeleteBook", json!({"name": name})), json!({}));
    let (code, _) = mock.code("GetBook", json!({"name": name}));
    assert_eq!(code, Code::NotFound);
    assert_eq!(
        names(
            &mock.ok("ListBooks", json!({"parent": "shelves/1"})),
            "books"
        ),
        ["shelves/1/books/2", "shelves/1/books/emma"]
    );
}

#[test]
fn updates_and_deletes_of_missing_resources_are_not_found() {
    let mock = Mock::new();
    let (code, message) = mock.code(
        "UpdateBook",
        json!({"book": {"name": "shelves/1/books/9", "title": "x"}}),
    );
    assert_eq!(code, Code::NotFound);
    assert!(
        message.contains("Book") && message.contains("shelves/1/books/9"),
        "{message}"
    );
    let (code, _) = mock.code("DeleteBook", json!({"name": "shelves/1/books/9"}));
    assert_eq!(code, Code::NotFound);
    let (code, _) = mock.code("UpdateBook", json!({"book": {"title": "no name"}}));
    assert_eq!(code, Code::InvalidArgument);
    let (code, _) = mock.code("GetBook", json!({}));
    assert_eq!(code, Code::InvalidArgument);

    mock.ok("CreateShelf", json!({"shelfId": "1"}));
    mock.ok("CreateBook", json!({"parent": "shelves/1", "bookId": "b"}));
    let (code, message) = mock.code(
        "UpdateBook",
        json!({"book": {"name": "shelves/1/books/b"}, "updateMask": "noSuchField"}),
    );
    assert_eq!(code, Code::InvalidArgument);
    assert!(message.contains("no_such_field"), "{message}");
    // A shelf is not a book, whatever its name.
    let (code, _) = mock.code("GetBook", json!({"name": "shelves/1"}));
    assert_eq!(code, Code::NotFound);
}

#[test]
fn creating_an_existing_name_is_already_exists() {
    let mock = Mock::new();
    mock.ok("CreateShelf", json!({"shelfId": "a"}));
    let (code, message) = mock.code("CreateShelf", json!({"shelfId": "a"}));
    assert_eq!(code, Code::AlreadyExists);
    assert!(
        message.contains("Shelf") && message.contains("shelves/a"),
        "{message}"
    );
    // Generated ids skip names already taken.
    mock.ok("CreateShelf", json!({"shelfId": "1"}));
    assert_eq!(mock.ok("CreateShelf", json!({}))["name"], "shelves/2");
    let (code, _) = mock.code("CreateShelf", json!({"shelfId": "a/b"}));
    assert_eq!(code, Code::InvalidArgument);
}

#[test]
fn lists_page_in_creation_order() {
    let mock = Mock::new();
    mock.ok("CreateShelf", json!({"shelfId": "1"}));
    mock.ok("CreateShelf", json!({"shelfId": "2"}));
    for i in 0..7 {
        let parent = if i % 2 == 0 { "shelves/1" } else { "shelves/2" };
        mock.ok(
            "CreateBook",
            json!({"parent": parent, "bookId": format!("b{i}")}),
        );
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = mock.ok(
            "ListBooks",
            json!({"parent": "shelves/1", "pageSize": 2, "pageToken": token}),
        );
        pages += 1;
        let got = names(&page, "books");
        assert!(got.len() <= 2);
        seen.extend(got);
        token = page["nextPageToken"].as_str().unwrap_or("").to_owned();
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(pages, 2);
    assert_eq!(
        seen,
        [
            "shelves/1/books/b0",
            "shelves/1/books/b2",
            "shelves/1/books/b4",
            "shelves/1/books/b6"
        ]
    );

    // No parent lists every shelf's books; `-` matches any shelf.
    let all = mock.ok("ListBooks", json!({"pageSize": 100}));
    assert_eq!(names(&all, "books").len(), 7);
    assert_eq!(
        names(
            &mock.ok("ListBooks", json!({"parent": "shelves/-"})),
            "books"
        )
        .len(),
        7
    );
    // The default page size is 10.
    for i in 0..5 {
        mock.ok(
            "CreateBook",
            json!({"parent": "shelves/2", "bookId": format!("c{i}")}),
        );
    }
    let first = mock.ok("ListBooks", json!({}));
    assert_eq!(names(&first, "books").len(), 10);
    assert!(!first["nextPageToken"].as_str().unwrap_or("").is_empty());

    let (code, _) = mock.code("ListBooks", json!({"pageToken": "not-a-token"}));
    assert_eq!(code, Code::InvalidArgument);
    let (code, _) = mock.code("ListBooks", json!({"pageSize": -1}));
    assert_eq!(code, Code::InvalidArgument);
}

#[test]
fn deleting_a_shelf_with_books_needs_force() {
    let mock = Mock::new();
    mock.ok("CreateShelf", json!({"shelfId": "1"}));
    mock.ok("CreateBook", json!({"parent": "shelves/1", "bookId": "a"}));
    let (code, message) = mock.code("DeleteShelf", json!({"name": "shelves/1"}));
    assert_eq!(code, Code::FailedPrecondition);
    assert!(message.contains("shelves/1"), "{message}");
    mock.ok("DeleteShelf", json!({"name": "shelves/1", "force": true}));
    let (code, _) = mock.code("GetBook", json!({"name": "shelves/1/books/a"}));
    assert_eq!(code, Code::NotFound);
    assert_eq!(mock.store.len(), 0);
}

#[test]
fn other_methods_fall_back_to_generation() {
    let store = CrudStore::new();
    let g = Generator::new(1);
    for name in [
        "MoveBook",
        "GetShelfStats",
        "SearchBooks",
        "GetBookCover",
        "StreamBooks",
        "ImportBooks",
        "Discuss",
    ] {
        let m = method(name);
        let req = DynamicMessage::new(m.input());
        assert!(store.handle(&m, &req, &g, b"k").is_none(), "{name}");
    }
}

#[test]
fn the_store_is_shared_across_threads() {
    let mock = std::sync::Arc::new(Mock::new());
    mock.ok("CreateShelf", json!({"shelfId": "1"}));
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let mock = mock.clone();
            std::thread::spawn(move || {
                for i in 0..5 {
                    mock.ok(
                        "CreateBook",
                        json!({"parent": "shelves/1", "book": {"title": format!("{t}-{i}")}}),
                    );
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("thread");
    }
    let all = mock.ok("ListBooks", json!({"parent": "shelves/1", "pageSize": 100}));
    let mut got = names(&all, "books");
    got.sort();
    got.dedup();
    assert_eq!(got.len(), 20, "every create got its own name");
    mock.store.clear();
    assert!(mock.store.is_empty());
}

//! The repository contract: one suite, run against every adapter of the
//! ports — the in-memory one, PostgreSQL and SQLite.
//!
//! Each case is an `async fn(&Backend)` in `cases`; the `contract!` macro at the
//! bottom instantiates every case once per adapter, each on a fresh store.
//! Cases that look behind the ports with SQL are listed under `sql_contract!`
//! and run on the two databases only.

use std::sync::Arc;

use chat_domain::ChatStore;
use chat_domain::memory::InMemoryRepository;
use chat_infra::{Database, DatabaseConfig, SeaOrmRepository};
use chat_testing::{TestDatabase, TestSqlite};

/// A fresh, empty store behind the ports.
struct Backend {
    repo: Arc<dyn ChatStore>,
    memory: Option<Arc<InMemoryRepository>>,
    sql: Option<Database>,
    _postgres: Option<TestDatabase>,
    _sqlite: Option<TestSqlite>,
}

impl Backend {
    fn memory() -> Self {
        let memory = Arc::new(InMemoryRepository::new());
        Self {
            repo: memory.clone(),
            memory: Some(memory),
            sql: None,
            _postgres: None,
            _sqlite: None,
        }
    }

    async fn postgres() -> Self {
        let database = TestDatabase::create().await;
        let mut backend = Self::sql(database.url()).await;
        backend._postgres = Some(database);
        backend
    }

    async fn sqlite() -> Self {
        let database = TestSqlite::create();
        let mut backend = Self::sql(database.url()).await;
        backend._sqlite = Some(database);
        backend
    }

    /// A migrated database at `url` and the SeaORM adapter over it.
    async fn sql(url: &str) -> Self {
        let db = Database::connect(&DatabaseConfig::new(url))
            .await
            .expect("pool");
        db.migrate().await.expect("migrations apply");
        Self {
            repo: Arc::new(SeaOrmRepository::new(db.clone())),
            memory: None,
            sql: Some(db),
            _postgres: None,
            _sqlite: None,
        }
    }

    /// The database behind the adapter, for the cases in `sql_contract!`.
    fn database(&self) -> &Database {
        self.sql
            .as_ref()
            .expect("a SQL-only case runs on a database")
    }

    /// How many k-means results are stored, for every chat of every user.
    async fn kmeans_rows(&self) -> usize {
        use sea_orm::ConnectionTrait;
        if let Some(memory) = &self.memory {
            return memory.kmeans_data_count();
        }
        let db = self.database();
        let count = db
            .connection()
            .query_one_raw(sea_orm::Statement::from_string(
                db.backend(),
                "SELECT count(*) AS n FROM kmeans_data",
            ))
            .await
            .expect("count")
            .expect("a row")
            .try_get::<i64>("", "n")
            .expect("a number");
        usize::try_from(count).expect("a count")
    }
}

mod cases {
    use std::collections::HashSet;
    use std::sync::Arc;

    use chat_domain::{
        Centroids, Chat, ChatChanges, ChatCursor, ChatId, ChatPatch, ChatReplacement,
        ChatRepository, ChatService, ChatStore, Description, DescriptionPatch, DomainError,
        ExpectedVersion, IdempotencyKey, IdempotentOutcome, IdempotentRequest,
        KmeansDataRepository, Limit, NewChat, NewKmeansData, PageRequest, PageStart,
        RepositoryError, Skip, StoredResponse, Timestamp, Title, UserId, Version,
    };
    use futures_util::future::join_all;
    use sea_orm::ConnectionTrait;

    use super::Backend;

    fn user() -> UserId {
        UserId::from_uuid(uuid::Uuid::new_v4())
    }

    fn title(text: &str) -> Title {
        Title::parse(text).expect("valid title")
    }

    fn new_chat(text: &str, description: Option<&str>) -> NewChat {
        NewChat {
            title: title(text),
            description: description.map(|d| Description::parse(d).expect("valid description")),
        }
    }

    fn page(start: PageStart, limit: i64) -> PageRequest {
        PageRequest {
            start,
            limit: Limit::new(limit).expect("valid limit"),
        }
    }

    fn offset(skip: i64, limit: i64) -> PageRequest {
        page(
            PageStart::Offset(Skip::new(skip).expect("valid skip")),
            limit,
        )
    }

    fn service(backend: &Backend) -> ChatService<Arc<dyn ChatStore>> {
        ChatService::new(backend.repo.clone())
    }

    pub async fn create_then_get_returns_what_was_written(backend: &Backend) {
        let owner = user();
        let created = service(backend)
            .create(owner, new_chat("  Hello  ", Some("")))
            .await
            .expect("create");
        assert_eq!(created.title.as_str(), "Hello");
        assert_eq!(
            created.description.as_ref().map(Description::as_str),
            Some("")
        );
        assert_eq!(created.version, Version::INITIAL);
        assert_eq!(created.created_at, created.updated_at);
        let read = backend.repo.find(owner, created.id).await.expect("find");
        assert_eq!(read, Some(created));
    }

    pub async fn timestamps_round_trip_at_microsecond_precision(backend: &Backend) {
        let owner = user();
        let mut chat = Chat::create(owner, new_chat("t", None), Timestamp::now());
        // A value with all six fractional digits significant, and one with none.
        for micros in [1_795_000_000_123_456_i64, 1_795_000_001_000_000] {
            chat.id = ChatId::generate();
            chat.created_at = Timestamp::from_unix_micros(micros).expect("in range");
            chat.updated_at = chat.created_at;
            backend.repo.insert(&chat).await.expect("insert");
            let read = backend
                .repo
                .find(owner, chat.id)
                .await
                .expect("find")
                .expect("present");
            assert_eq!(read.created_at.unix_micros(), micros);
            assert_eq!(read, chat);
        }
    }

    pub async fn unicode_and_longest_titles_round_trip(backend: &Backend) {
        let owner = user();
        for text in [
            "日本語のチャット 🦀",
            &"🦀".repeat(255),
            &"é".repeat(255),
            "a\u{200b}b",
        ] {
            let created = service(backend)
                .create(owner, new_chat(text, Some(text)))
                .await
                .expect("create");
            let read = backend
                .repo
                .find(owner, created.id)
                .await
                .expect("find")
                .expect("present");
            assert_eq!(read.title.as_str(), text);
            assert_eq!(
                read.description.as_ref().map(Description::as_str),
                Some(text)
            );
        }
    }

    pub async fn list_is_newest_first_with_ties_broken_by_id(backend: &Backend) {
        let owner = user();
        let same_instant = Timestamp::now();
        let mut ids = Vec::new();
        for i in 0..7 {
            let mut chat = Chat::create(owner, new_chat(&format!("chat {i}"), None), same_instant);
            // Two distinct instants, several chats on each: ties must not break paging.
            if i % 2 == 0 {
                chat.created_at =
                    Timestamp::from_unix_micros(same_instant.unix_micros() - 1).expect("in range");
                chat.updated_at = chat.created_at;
            }
            backend.repo.insert(&chat).await.expect("insert");
            ids.push((chat.created_at, chat.id));
        }
        ids.sort();
        ids.reverse();
        let expected: Vec<ChatId> = ids.iter().map(|(_, id)| *id).collect();

        let all = backend
            .repo
            .list(owner, offset(0, 100))
            .await
            .expect("list");
        assert_eq!(all.items.iter().map(|c| c.id).collect::<Vec<_>>(), expected);
        assert_eq!(all.total, 7);
        assert!(!all.has_more);

        // Pages of 3 by offset and by cursor give the same sequence, no gaps, no repeats.
        let mut by_offset = Vec::new();
        for skip in [0, 3, 6] {
            let page = backend
                .repo
                .list(owner, offset(skip, 3))
                .await
                .expect("page");
            assert_eq!(page.total, 7);
            assert_eq!(page.has_more, skip < 6);
            by_offset.extend(page.items.iter().map(|c| c.id));
        }
        assert_eq!(by_offset, expected);

        let mut by_cursor = Vec::new();
        let mut start = PageStart::default();
        loop {
            let page = backend
                .repo
                .list(owner, page(start, 3))
                .await
                .expect("page");
            by_cursor.extend(page.items.iter().map(|c| c.id));
            if !page.has_more {
                break;
            }
            start = PageStart::After(ChatCursor::of(page.items.last().expect("full page")));
        }
        assert_eq!(by_cursor, expected);
    }

    pub async fn a_page_past_the_end_is_empty(backend: &Backend) {
        let owner = user();
        service(backend)
            .create(owner, new_chat("only", None))
            .await
            .expect("create");
        let page = backend
            .repo
            .list(owner, offset(i64::MAX, 10))
            .await
            .expect("list");
        assert!(page.items.is_empty());
        assert_eq!(page.total, 1);
        assert!(!page.has_more);
        let nobody = backend
            .repo
            .list(user(), offset(0, 10))
            .await
            .expect("list");
        assert_eq!((nobody.items.len(), nobody.total), (0, 0));
    }

    pub async fn a_cursor_walk_survives_concurrent_inserts_and_deletes(backend: &Backend) {
        let owner = user();
        let svc = service(backend);
        let mut originals = Vec::new();
        for i in 0..9 {
            originals.push(
                svc.create(owner, new_chat(&format!("c{i}"), None))
                    .await
                    .expect("create")
                    .id,
            );
        }
        let first = backend
            .repo
            .list(owner, page(PageStart::default(), 4))
            .await
            .expect("page");
        let mut seen: Vec<ChatId> = first.items.iter().map(|c| c.id).collect();
        let mut cursor = ChatCursor::of(first.items.last().expect("full page"));
        // Mid-walk: a new chat appears (it sorts first, before the cursor), and the
        // item the cursor names plus one item not yet seen are deleted.
        svc.create(owner, new_chat("newcomer", None))
            .await
            .expect("create");
        svc.delete(owner, cursor.id, &ExpectedVersion::Any)
            .await
            .expect("delete cursor item");
        let doomed = originals[1];
        svc.delete(owner, doomed, &ExpectedVersion::Any)
            .await
            .expect("delete unseen item");
        loop {
            let next = backend
                .repo
                .list(owner, page(PageStart::After(cursor), 4))
                .await
                .expect("page");
            seen.extend(next.items.iter().map(|c| c.id));
            if !next.has_more {
                break;
            }
            cursor = ChatCursor::of(next.items.last().expect("full page"));
        }
        let survivors: HashSet<ChatId> = originals
            .iter()
            .copied()
            .filter(|id| *id != doomed)
            .collect();
        let unique: HashSet<ChatId> = seen.iter().copied().collect();
        assert_eq!(unique.len(), seen.len(), "no item repeats");
        assert!(
            survivors.iter().all(|id| unique.contains(id)),
            "no surviving item is skipped"
        );
    }

    pub async fn totals_follow_inserts_and_deletes(backend: &Backend) {
        let (alice, bob) = (user(), user());
        let svc = service(backend);
        let mut alices = Vec::new();
        for i in 0..5 {
            alices.push(
                svc.create(alice, new_chat(&format!("a{i}"), None))
                    .await
                    .expect("create"),
            );
        }
        svc.create(bob, new_chat("b", None)).await.expect("create");
        svc.delete(alice, alices[0].id, &ExpectedVersion::Any)
            .await
            .expect("delete");
        assert_eq!(
            backend
                .repo
                .list(alice, offset(0, 1))
                .await
                .expect("list")
                .total,
            4
        );
        assert_eq!(
            backend
                .repo
                .list(bob, offset(0, 1))
                .await
                .expect("list")
                .total,
            1
        );
    }

    pub async fn another_users_chat_is_indistinguishable_from_an_absent_one(backend: &Backend) {
        let (alice, mallory) = (user(), user());
        let chat = service(backend)
            .create(alice, new_chat("private", None))
            .await
            .expect("create");
        let changes = ChatChanges::from(ChatPatch {
            title: Some(title("pwned")),
            ..ChatPatch::default()
        });
        let any = ExpectedVersion::Any;
        let exact = ExpectedVersion::exactly(chat.version);

        assert_eq!(
            backend.repo.find(mallory, chat.id).await.expect("find"),
            None
        );
        assert!(
            backend
                .repo
                .list(mallory, offset(0, 100))
                .await
                .expect("list")
                .items
                .is_empty()
        );
        for expected in [&any, &exact] {
            let update = backend
                .repo
                .update(mallory, chat.id, &changes, expected, Timestamp::now())
                .await;
            assert!(
                matches!(update, Err(RepositoryError::NotFound)),
                "{update:?}"
            );
            let delete = backend.repo.delete(mallory, chat.id, expected).await;
            assert!(
                matches!(delete, Err(RepositoryError::NotFound)),
                "{delete:?}"
            );
        }
        assert!(
            backend
                .repo
                .list_kmeans_data(mallory, chat.id)
                .await
                .expect("list")
                .is_empty()
        );
        let data = NewKmeansData {
            chat_id: chat.id,
            centroids: Centroids::new(vec![vec![1.0]]).expect("valid"),
        }
        .into_kmeans_data(Timestamp::now());
        assert!(matches!(
            backend.repo.add_kmeans_data(mallory, &data).await,
            Err(RepositoryError::NotFound)
        ));
        assert_eq!(
            backend.repo.find(alice, chat.id).await.expect("find"),
            Some(chat)
        );
    }

    pub async fn replace_sets_every_field_and_bumps_the_version(backend: &Backend) {
        let owner = user();
        let svc = service(backend);
        let chat = svc
            .create(owner, new_chat("old", Some("old description")))
            .await
            .expect("create");
        let replacement = ChatReplacement {
            title: title("new"),
            description: None,
        };
        let replaced = svc
            .replace(owner, chat.id, replacement, &ExpectedVersion::Any)
            .await
            .expect("replace");
        assert_eq!(replaced.title.as_str(), "new");
        assert_eq!(replaced.description, None);
        assert_eq!(replaced.version, chat.version.next());
        assert_eq!(replaced.created_at, chat.created_at);
        assert!(replaced.updated_at >= chat.updated_at);
        assert_eq!(
            backend.repo.find(owner, chat.id).await.expect("find"),
            Some(replaced)
        );
    }

    pub async fn patch_changes_only_what_it_names(backend: &Backend) {
        let owner = user();
        let svc = service(backend);
        let chat = svc
            .create(owner, new_chat("title", Some("description")))
            .await
            .expect("create");

        let retitled = svc
            .patch(
                owner,
                chat.id,
                ChatPatch {
                    title: Some(title("renamed")),
                    ..ChatPatch::default()
                },
                &ExpectedVersion::Any,
            )
            .await
            .expect("patch title");
        assert_eq!(retitled.title.as_str(), "renamed");
        assert_eq!(retitled.description, chat.description);

        let described = ChatPatch {
            description: DescriptionPatch::Set(Description::parse("new").expect("valid")),
            ..ChatPatch::default()
        };
        let redescribed = svc
            .patch(owner, chat.id, described, &ExpectedVersion::Any)
            .await
            .expect("patch");
        assert_eq!(redescribed.title.as_str(), "renamed");
        assert_eq!(
            redescribed.description.as_ref().map(Description::as_str),
            Some("new")
        );

        let clear = ChatPatch {
            description: DescriptionPatch::Clear,
            ..ChatPatch::default()
        };
        let cleared = svc
            .patch(owner, chat.id, clear, &ExpectedVersion::Any)
            .await
            .expect("clear");
        assert_eq!(cleared.description, None);
        assert_eq!(cleared.version.get(), 4);
        assert_eq!(
            backend.repo.find(owner, chat.id).await.expect("find"),
            Some(cleared)
        );
    }

    pub async fn the_empty_patch_changes_nothing(backend: &Backend) {
        let owner = user();
        let svc = service(backend);
        let chat = svc
            .create(owner, new_chat("t", Some("d")))
            .await
            .expect("create");
        let same = svc
            .patch(owner, chat.id, ChatPatch::default(), &ExpectedVersion::Any)
            .await
            .expect("noop");
        assert_eq!(same, chat);
        assert_eq!(
            backend.repo.find(owner, chat.id).await.expect("find"),
            Some(chat.clone())
        );
        let stale = ExpectedVersion::exactly(chat.version.next());
        assert!(matches!(
            svc.patch(owner, chat.id, ChatPatch::default(), &stale)
                .await,
            Err(DomainError::PreconditionFailed)
        ));
    }

    pub async fn a_stale_version_is_rejected_atomically(backend: &Backend) {
        let owner = user();
        let svc = service(backend);
        let chat = svc
            .create(owner, new_chat("t", None))
            .await
            .expect("create");
        let v1 = ExpectedVersion::exactly(chat.version);
        let patch = || ChatPatch {
            title: Some(title("x")),
            ..ChatPatch::default()
        };

        let updated = svc
            .patch(owner, chat.id, patch(), &v1)
            .await
            .expect("first write wins");
        assert_eq!(updated.version.get(), 2);
        assert!(matches!(
            svc.patch(owner, chat.id, patch(), &v1).await,
            Err(DomainError::PreconditionFailed)
        ));
        assert!(matches!(
            svc.delete(owner, chat.id, &v1).await,
            Err(DomainError::PreconditionFailed)
        ));
        // A list of candidate versions matches when one of them is current.
        let either = ExpectedVersion::OneOf(vec![chat.version, updated.version]);
        assert!(svc.patch(owner, chat.id, patch(), &either).await.is_ok());
        // A precondition that can never match still reports a missing chat as missing.
        let never = ExpectedVersion::OneOf(vec![]);
        assert!(matches!(
            svc.delete(owner, ChatId::generate(), &never).await,
            Err(DomainError::NotFound)
        ));
        assert!(matches!(
            svc.delete(owner, chat.id, &never).await,
            Err(DomainError::PreconditionFailed)
        ));
        assert_eq!(
            backend
                .repo
                .find(owner, chat.id)
                .await
                .expect("find")
                .map(|c| c.version.get()),
            Some(3)
        );
    }

    pub async fn concurrent_conditional_writes_let_exactly_one_win(backend: &Backend) {
        let owner = user();
        let chat = service(backend)
            .create(owner, new_chat("t", None))
            .await
            .expect("create");
        let expected = ExpectedVersion::exactly(chat.version);
        let writes = (0..8).map(|i| {
            let changes = ChatChanges::from(ChatPatch {
                title: Some(title(&format!("w{i}"))),
                ..ChatPatch::default()
            });
            let (repo, expected) = (&backend.repo, &expected);
            async move {
                repo.update(owner, chat.id, &changes, expected, Timestamp::now())
                    .await
            }
        });
        let results = join_all(writes).await;
        let wins = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(wins, 1, "{results:?}");
        assert!(
            results
                .iter()
                .filter(|r| r.is_err())
                .all(|r| matches!(r, Err(RepositoryError::VersionMismatch)))
        );
    }

    pub async fn delete_removes_the_chat_once(backend: &Backend) {
        let owner = user();
        let svc = service(backend);
        let chat = svc
            .create(owner, new_chat("t", None))
            .await
            .expect("create");
        let deletes = (0..5).map(|_| svc.delete(owner, chat.id, &ExpectedVersion::Any));
        let results = join_all(deletes).await;
        assert_eq!(
            results.iter().filter(|r| r.is_ok()).count(),
            1,
            "{results:?}"
        );
        assert!(
            results
                .iter()
                .filter(|r| r.is_err())
                .all(|r| matches!(r, Err(DomainError::NotFound)))
        );
        assert_eq!(backend.repo.find(owner, chat.id).await.expect("find"), None);
    }

    pub async fn kmeans_data_is_listed_oldest_first_and_cascades(backend: &Backend) {
        let owner = user();
        let svc = service(backend);
        let chat = svc
            .create(owner, new_chat("t", None))
            .await
            .expect("create");
        let mut added = Vec::new();
        for k in 1..=3_usize {
            let rows = (0..k).map(|i| vec![i as f64, 0.5, -1e300]).collect();
            let command = NewKmeansData {
                chat_id: chat.id,
                centroids: Centroids::new(rows).expect("valid"),
            };
            added.push(svc.add_kmeans_data(owner, command).await.expect("add"));
        }
        let (read_chat, listed) = svc.get_with_kmeans_data(owner, chat.id).await.expect("get");
        assert_eq!(read_chat, chat);
        assert_eq!(listed, added);
        assert_eq!(
            listed.iter().map(|d| d.k()).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );

        svc.delete(owner, chat.id, &ExpectedVersion::Any)
            .await
            .expect("delete");
        assert_eq!(
            backend.kmeans_rows().await,
            0,
            "k-means results go with their chat"
        );
    }

    pub async fn a_hundred_concurrent_first_writes_of_one_user_all_succeed(backend: &Backend) {
        let owner = user();
        let svc = Arc::new(service(backend));
        let tasks: Vec<_> = (0..100)
            .map(|i| {
                let svc = Arc::clone(&svc);
                tokio::spawn(
                    async move { svc.create(owner, new_chat(&format!("c{i}"), None)).await },
                )
            })
            .collect();
        for task in tasks {
            task.await
                .expect("task")
                .expect("no FK or unique violation from provisioning");
        }
        let page = backend
            .repo
            .list(owner, offset(0, 100))
            .await
            .expect("list");
        assert_eq!((page.items.len(), page.total), (100, 100));
    }

    /// A new chat of `owner` and the keyed request that would create it.
    fn keyed(owner: UserId, key: &str, fingerprint: &str) -> (Chat, IdempotentRequest) {
        let chat = Chat::create(owner, new_chat("keyed", None), Timestamp::now());
        let request = IdempotentRequest {
            key: IdempotencyKey::parse(key).expect("valid key"),
            fingerprint: fingerprint.to_owned(),
            response: StoredResponse {
                status: 201,
                headers: vec![
                    ("Location".to_owned(), format!("/chat/{}", chat.id)),
                    ("ETag".to_owned(), "\"v1\"".to_owned()),
                ],
                body: format!("{{\"id\":\"{}\"}}", chat.id),
            },
        };
        (chat, request)
    }

    async fn total(backend: &Backend, owner: UserId) -> u64 {
        backend
            .repo
            .list(owner, offset(0, 100))
            .await
            .expect("list")
            .total
    }

    pub async fn a_keyed_create_stores_chat_and_response_and_replays_it(backend: &Backend) {
        let owner = user();
        let (chat, first) = keyed(owner, "key-1", "f1");
        let outcome = backend.repo.insert_idempotent(&chat, &first).await;
        assert_eq!(outcome.expect("insert"), IdempotentOutcome::Created);
        assert_eq!(
            backend.repo.find(owner, chat.id).await.expect("find"),
            Some(chat.clone())
        );
        // A retry generates another chat, but nothing is written: the first
        // response comes back, headers and body included.
        let (retry, mut again) = keyed(owner, "key-1", "f1");
        again.response.body = "not this".into();
        let outcome = backend.repo.insert_idempotent(&retry, &again).await;
        assert_eq!(
            outcome.expect("replay"),
            IdempotentOutcome::Replayed(first.response.clone())
        );
        assert_eq!(
            backend.repo.find(owner, retry.id).await.expect("find"),
            None
        );
        // The same key with another body creates nothing either.
        let (other, reused) = keyed(owner, "key-1", "f2");
        let outcome = backend.repo.insert_idempotent(&other, &reused).await;
        assert_eq!(outcome.expect("reused"), IdempotentOutcome::KeyReused);
        assert_eq!(total(backend, owner).await, 1);
    }

    pub async fn idempotency_keys_are_scoped_to_their_user(backend: &Backend) {
        let (alice, bob) = (user(), user());
        for owner in [alice, bob] {
            let (chat, request) = keyed(owner, "shared", "f");
            let outcome = backend.repo.insert_idempotent(&chat, &request).await;
            assert_eq!(outcome.expect("insert"), IdempotentOutcome::Created);
            assert_eq!(total(backend, owner).await, 1);
        }
    }

    pub async fn a_replay_outlives_changes_and_deletion_of_its_chat(backend: &Backend) {
        let owner = user();
        let (chat, request) = keyed(owner, "k", "f");
        backend
            .repo
            .insert_idempotent(&chat, &request)
            .await
            .expect("insert");
        let changes = ChatChanges::from(ChatReplacement {
            title: title("changed"),
            description: None,
        });
        backend
            .repo
            .update(
                owner,
                chat.id,
                &changes,
                &ExpectedVersion::Any,
                Timestamp::now(),
            )
            .await
            .expect("update");
        let (retry, again) = keyed(owner, "k", "f");
        assert_eq!(
            backend
                .repo
                .insert_idempotent(&retry, &again)
                .await
                .expect("replay"),
            IdempotentOutcome::Replayed(request.response.clone())
        );
        backend
            .repo
            .delete(owner, chat.id, &ExpectedVersion::Any)
            .await
            .expect("delete");
        assert_eq!(
            backend
                .repo
                .insert_idempotent(&retry, &again)
                .await
                .expect("replay"),
            IdempotentOutcome::Replayed(request.response)
        );
        assert_eq!(total(backend, owner).await, 0, "the replay created nothing");
    }

    pub async fn a_failed_keyed_create_leaves_the_key_free(backend: &Backend) {
        let owner = user();
        let existing = service(backend)
            .create(owner, new_chat("taken", None))
            .await
            .expect("create");
        // The chat's insert fails (its id is taken): the key must not be stored.
        let (mut clash, request) = keyed(owner, "k", "f");
        clash.id = existing.id;
        let failed = backend.repo.insert_idempotent(&clash, &request).await;
        assert!(
            matches!(failed, Err(RepositoryError::Conflict(_))),
            "{failed:?}"
        );
        let (chat, request) = keyed(owner, "k", "f");
        assert_eq!(
            backend
                .repo
                .insert_idempotent(&chat, &request)
                .await
                .expect("insert"),
            IdempotentOutcome::Created
        );
        assert_eq!(total(backend, owner).await, 2);
    }

    pub async fn concurrent_keyed_creates_make_exactly_one_chat(backend: &Backend) {
        let owner = user();
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let repo = Arc::clone(&backend.repo);
                tokio::spawn(async move {
                    let (chat, request) = keyed(owner, "once", "f");
                    repo.insert_idempotent(&chat, &request).await
                })
            })
            .collect();
        let mut created = 0;
        for task in join_all(tasks).await {
            match task.expect("task") {
                Ok(IdempotentOutcome::Created) => created += 1,
                Ok(IdempotentOutcome::Replayed(_) | IdempotentOutcome::InFlight) => {}
                // SQLite serialises writers; a writer that could not get the
                // database in time is "unavailable", never a second chat.
                Err(RepositoryError::Unavailable(_)) => {}
                other => panic!("unexpected outcome {other:?}"),
            }
        }
        assert_eq!(created, 1);
        assert_eq!(total(backend, owner).await, 1);
    }

    pub async fn expired_keys_are_purged_in_batches(backend: &Backend) {
        let owner = user();
        for key in ["a", "b", "c"] {
            let (chat, request) = keyed(owner, key, "f");
            backend
                .repo
                .insert_idempotent(&chat, &request)
                .await
                .expect("insert");
        }
        let past = Timestamp::from_datetime(chrono::Utc::now() - chrono::Duration::hours(1));
        assert_eq!(
            backend
                .repo
                .purge_idempotency_keys(past, 10)
                .await
                .expect("purge"),
            0,
            "nothing is that old"
        );
        let future = Timestamp::from_datetime(chrono::Utc::now() + chrono::Duration::seconds(5));
        let purged = service(backend)
            .purge_idempotency_keys(future, 2)
            .await
            .expect("purge");
        assert_eq!(purged, 3, "batches of 2 until none is left");
        // A purged key is free again; the chats stay.
        let (chat, request) = keyed(owner, "a", "other body");
        assert_eq!(
            backend
                .repo
                .insert_idempotent(&chat, &request)
                .await
                .expect("insert"),
            IdempotentOutcome::Created
        );
        assert_eq!(total(backend, owner).await, 4);
    }

    pub async fn a_row_broken_by_another_writer_is_an_error_not_a_panic(backend: &Backend) {
        let owner = user();
        let chat = service(backend)
            .create(owner, new_chat("fine", None))
            .await
            .expect("create");
        let db = backend.database();
        // Another service writes k = 2 with a single, ragged row of centroids.
        let sql = match db.backend() {
            sea_orm::DbBackend::Postgres => {
                "INSERT INTO kmeans_data (id, chat_id, k, centroids, created_at) VALUES ($1, $2, 2, '[[1.0, 2.0]]', now())"
            }
            _ => {
                "INSERT INTO kmeans_data (id, chat_id, k, centroids, created_at) VALUES (?, ?, 2, '[[1.0, 2.0]]', '2026-11-24T00:00:00+00:00')"
            }
        };
        db.connection()
            .execute_raw(sea_orm::Statement::from_sql_and_values(
                db.backend(),
                sql,
                [uuid::Uuid::now_v7().into(), (*chat.id.as_uuid()).into()],
            ))
            .await
            .expect("raw insert");
        let result = backend.repo.list_kmeans_data(owner, chat.id).await;
        assert!(
            matches!(result, Err(RepositoryError::Other(_))),
            "{result:?}"
        );
        // The CHECK constraints refuse what the domain would refuse, for every writer.
        let refused = db
            .connection()
            .execute_unprepared("UPDATE chats SET version = 0")
            .await;
        assert!(refused.is_err(), "version must stay >= 1");
        assert_eq!(
            backend.repo.find(owner, chat.id).await.expect("find"),
            Some(chat)
        );
    }
}

macro_rules! contract {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::cases::$case(&super::Backend::memory()).await;
                }
            )*
        }
        sql_contract!($($case),*);
    };
}

macro_rules! sql_contract {
    ($($case:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::cases::$case(&super::Backend::postgres().await).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::cases::$case(&super::Backend::sqlite().await).await;
                }
            )*
        }
    };
}

contract!(
    create_then_get_returns_what_was_written,
    timestamps_round_trip_at_microsecond_precision,
    unicode_and_longest_titles_round_trip,
    list_is_newest_first_with_ties_broken_by_id,
    a_page_past_the_end_is_empty,
    a_cursor_walk_survives_concurrent_inserts_and_deletes,
    totals_follow_inserts_and_deletes,
    another_users_chat_is_indistinguishable_from_an_absent_one,
    replace_sets_every_field_and_bumps_the_version,
    patch_changes_only_what_it_names,
    the_empty_patch_changes_nothing,
    a_stale_version_is_rejected_atomically,
    concurrent_conditional_writes_let_exactly_one_win,
    delete_removes_the_chat_once,
    kmeans_data_is_listed_oldest_first_and_cascades,
    a_hundred_concurrent_first_writes_of_one_user_all_succeed,
    a_keyed_create_stores_chat_and_response_and_replays_it,
    idempotency_keys_are_scoped_to_their_user,
    a_replay_outlives_changes_and_deletion_of_its_chat,
    a_failed_keyed_create_leaves_the_key_free,
    concurrent_keyed_creates_make_exactly_one_chat,
    expired_keys_are_purged_in_batches,
);

mod sql_only {
    use super::{Backend, cases};

    sql_contract!(a_row_broken_by_another_writer_is_an_error_not_a_panic);
}

/// The total under interleaved, concurrent creates and deletes by one user:
/// with the count spread over counter slots, a delete often decrements another
/// slot than its chat's insert incremented, so single slots may go negative;
/// only their sum is the count, and it must equal `count(*)` and the chats a
/// full listing returns. Self-contained: its own databases and pools.
mod interleaved_totals {
    use std::sync::Arc;
    use std::time::Duration;

    use chat_domain::{
        ChatService, ExpectedVersion, Limit, NewChat, PageRequest, PageStart, Skip, Title, UserId,
    };
    use chat_infra::{Database, DatabaseConfig, SeaOrmRepository};
    use chat_testing::{TestDatabase, TestSqlite};
    use sea_orm::{ConnectionTrait, Statement};

    async fn repository(url: &str) -> SeaOrmRepository {
        let mut config = DatabaseConfig::new(url);
        config.max_connections = 16;
        config.acquire_timeout = Duration::from_secs(20);
        config.query_timeout = Duration::from_secs(20);
        let db = Database::connect(&config).await.expect("pool");
        db.migrate().await.expect("migrations apply");
        SeaOrmRepository::new(db)
    }

    fn chat(text: &str) -> NewChat {
        NewChat {
            title: Title::parse(text).expect("valid title"),
            description: None,
        }
    }

    fn first(limit: i64) -> PageRequest {
        PageRequest {
            start: PageStart::Offset(Skip::new(0).expect("valid skip")),
            limit: Limit::new(limit).expect("valid limit"),
        }
    }

    async fn counted(repo: &SeaOrmRepository, owner: UserId) -> u64 {
        let db = repo.database().connection();
        let backend = db.get_database_backend();
        let placeholder = match backend {
            sea_orm::DbBackend::Postgres => "$1",
            _ => "?",
        };
        let row = db
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                format!("SELECT count(*) FROM chats WHERE user_id = {placeholder}"),
                [(*owner.as_uuid()).into()],
            ))
            .await
            .expect("count(*)")
            .expect("a row");
        u64::try_from(row.try_get_by_index::<i64>(0).expect("an integer")).expect("not negative")
    }

    async fn totals_stay_exact_under_interleaved_creates_and_deletes(repo: SeaOrmRepository) {
        let owner = UserId::from_uuid(uuid::Uuid::new_v4());
        let bystander = UserId::from_uuid(uuid::Uuid::new_v4());
        let svc = Arc::new(ChatService::new(repo.clone()));
        svc.create(bystander, chat("elsewhere"))
            .await
            .expect("create");

        let mut first_wave = Vec::new();
        for i in 0..40 {
            let svc = Arc::clone(&svc);
            first_wave.push(tokio::spawn(async move {
                svc.create(owner, chat(&format!("first {i}"))).await
            }));
        }
        let mut created = Vec::new();
        for task in first_wave {
            created.push(task.await.expect("task").expect("create"));
        }

        // Every second chat of the first wave is deleted while as many new ones
        // are created, all at once.
        let mut second_wave = Vec::new();
        for (i, doomed) in created.iter().step_by(2).enumerate() {
            let (deleter, id) = (Arc::clone(&svc), doomed.id);
            second_wave.push(tokio::spawn(async move {
                deleter.delete(owner, id, &ExpectedVersion::Any).await
            }));
            let creator = Arc::clone(&svc);
            second_wave.push(tokio::spawn(async move {
                creator
                    .create(owner, chat(&format!("second {i}")))
                    .await
                    .map(|_| ())
            }));
        }
        for task in second_wave {
            task.await.expect("task").expect("every write succeeds");
        }

        let page = svc.list(owner, first(100)).await.expect("list");
        assert_eq!(page.total, 40);
        assert_eq!(page.items.len(), 40);
        assert_eq!(counted(&repo, owner).await, 40);
        assert_eq!(svc.list(bystander, first(1)).await.expect("list").total, 1);

        for chat in page.items {
            svc.delete(owner, chat.id, &ExpectedVersion::Any)
                .await
                .expect("delete");
        }
        let empty = svc.list(owner, first(1)).await.expect("list");
        assert_eq!((empty.items.len(), empty.total), (0, 0));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        let database = TestDatabase::create().await;
        totals_stay_exact_under_interleaved_creates_and_deletes(repository(database.url()).await)
            .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        let database = TestSqlite::create();
        totals_stay_exact_under_interleaved_creates_and_deletes(repository(database.url()).await)
            .await;
    }
}

//! The use cases, specified over the in-memory ports.

use chat_domain::memory::InMemoryRepository;
use chat_domain::{
    Centroids, ChatCursor, ChatId, ChatPatch, ChatReplacement, ChatService, Description,
    DescriptionPatch, DomainError, ExpectedVersion, Limit, NewChat, NewKmeansData, PageRequest,
    PageStart, Skip, Title, UserId,
};

fn service() -> ChatService<InMemoryRepository> {
    ChatService::new(InMemoryRepository::new())
}

fn user() -> UserId {
    UserId::from_uuid(uuid::Uuid::new_v4())
}

fn chat(title: &str) -> NewChat {
    NewChat {
        title: Title::parse(title).expect("valid"),
        description: None,
    }
}

fn first_page(limit: i64) -> PageRequest {
    PageRequest {
        start: PageStart::default(),
        limit: Limit::new(limit).expect("valid"),
    }
}

#[tokio::test]
async fn creating_a_chat_provisions_its_owner_and_starts_at_version_one() {
    let svc = service();
    let owner = user();
    assert!(!svc.repository().has_user(owner));
    let created = svc.create(owner, chat("first")).await.expect("create");
    assert!(svc.repository().has_user(owner));
    assert_eq!(created.user_id, owner);
    assert_eq!(created.version.get(), 1);
    assert_eq!(created.created_at, created.updated_at);
    assert_eq!(created.id.as_uuid().get_version_num(), 7);
    assert_eq!(svc.get(owner, created.id).await.expect("get"), created);
}

#[tokio::test]
async fn another_users_chat_is_not_found_for_every_use_case() {
    let svc = service();
    let (alice, eve) = (user(), user());
    let created = svc.create(alice, chat("mine")).await.expect("create");
    let any = ExpectedVersion::Any;
    let replacement = ChatReplacement {
        title: Title::parse("x").expect("valid"),
        description: None,
    };
    assert!(matches!(
        svc.get(eve, created.id).await,
        Err(DomainError::NotFound)
    ));
    assert!(matches!(
        svc.replace(eve, created.id, replacement, &any).await,
        Err(DomainError::NotFound)
    ));
    assert!(matches!(
        svc.patch(eve, created.id, ChatPatch::default(), &any).await,
        Err(DomainError::NotFound)
    ));
    assert!(matches!(
        svc.delete(eve, created.id, &any).await,
        Err(DomainError::NotFound)
    ));
    assert!(matches!(
        svc.get_with_kmeans_data(eve, created.id).await,
        Err(DomainError::NotFound)
    ));
    assert!(
        svc.list(eve, first_page(10))
            .await
            .expect("list")
            .items
            .is_empty()
    );
    assert_eq!(
        svc.get(alice, created.id).await.expect("still there"),
        created
    );
}

#[tokio::test]
async fn every_write_moves_updated_at_and_version_but_the_empty_patch() {
    let svc = service();
    let owner = user();
    let created = svc.create(owner, chat("t")).await.expect("create");
    let same = svc
        .patch(
            owner,
            created.id,
            ChatPatch::default(),
            &ExpectedVersion::Any,
        )
        .await
        .expect("noop");
    assert_eq!(same, created);

    // Identical values still count as a change.
    let identical = ChatReplacement {
        title: created.title.clone(),
        description: None,
    };
    let replaced = svc
        .replace(owner, created.id, identical, &ExpectedVersion::Any)
        .await
        .expect("replace");
    assert_eq!(replaced.version.get(), 2);
    assert!(replaced.updated_at >= created.updated_at);

    let clear = ChatPatch {
        description: DescriptionPatch::Clear,
        ..ChatPatch::default()
    };
    let patched = svc
        .patch(owner, created.id, clear, &ExpectedVersion::Any)
        .await
        .expect("patch");
    assert_eq!(patched.version.get(), 3);
}

#[tokio::test]
async fn preconditions_guard_every_write() {
    let svc = service();
    let owner = user();
    let created = svc.create(owner, chat("t")).await.expect("create");
    let current = ExpectedVersion::exactly(created.version);
    let stale = ExpectedVersion::exactly(created.version.next());
    let set = ChatPatch {
        description: DescriptionPatch::Set(Description::parse("d").expect("valid")),
        ..ChatPatch::default()
    };
    assert!(matches!(
        svc.patch(owner, created.id, set.clone(), &stale).await,
        Err(DomainError::PreconditionFailed)
    ));
    assert!(matches!(
        svc.delete(owner, created.id, &stale).await,
        Err(DomainError::PreconditionFailed)
    ));
    let patched = svc
        .patch(owner, created.id, set, &current)
        .await
        .expect("current version wins");
    assert!(matches!(
        svc.delete(owner, created.id, &current).await,
        Err(DomainError::PreconditionFailed)
    ));
    svc.delete(
        owner,
        created.id,
        &ExpectedVersion::exactly(patched.version),
    )
    .await
    .expect("delete");
    // Existence is checked before the precondition.
    assert!(matches!(
        svc.delete(owner, created.id, &stale).await,
        Err(DomainError::NotFound)
    ));
}

#[tokio::test]
async fn lists_page_newest_first_by_offset_and_by_cursor() {
    let svc = service();
    let owner = user();
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            svc.create(owner, chat(&format!("c{i}")))
                .await
                .expect("create")
                .id,
        );
    }
    ids.reverse();
    let page = svc.list(owner, first_page(2)).await.expect("list");
    assert_eq!(
        page.items.iter().map(|c| c.id).collect::<Vec<ChatId>>(),
        ids[..2]
    );
    assert_eq!((page.total, page.has_more), (5, true));

    let skip = PageRequest {
        start: PageStart::Offset(Skip::new(4).expect("valid")),
        limit: Limit::new(2).expect("valid"),
    };
    let last = svc.list(owner, skip).await.expect("list");
    assert_eq!(
        last.items.iter().map(|c| c.id).collect::<Vec<ChatId>>(),
        ids[4..]
    );
    assert!(!last.has_more);

    let after = PageRequest {
        start: PageStart::After(ChatCursor::of(&page.items[1])),
        limit: Limit::new(2).expect("valid"),
    };
    let next = svc.list(owner, after).await.expect("list");
    assert_eq!(
        next.items.iter().map(|c| c.id).collect::<Vec<ChatId>>(),
        ids[2..4]
    );
}

#[tokio::test]
async fn kmeans_results_belong_to_the_owners_chat_and_go_with_it() {
    let svc = service();
    let (owner, other) = (user(), user());
    let created = svc.create(owner, chat("t")).await.expect("create");
    let result = |rows: Vec<Vec<f64>>| NewKmeansData {
        chat_id: created.id,
        centroids: Centroids::new(rows).expect("valid"),
    };
    assert!(matches!(
        svc.add_kmeans_data(other, result(vec![vec![1.0]])).await,
        Err(DomainError::NotFound)
    ));
    let first = svc
        .add_kmeans_data(owner, result(vec![vec![1.0], vec![2.0]]))
        .await
        .expect("add");
    let second = svc
        .add_kmeans_data(owner, result(vec![vec![3.0, 4.0]]))
        .await
        .expect("add");
    let (_, results) = svc
        .get_with_kmeans_data(owner, created.id)
        .await
        .expect("get");
    assert_eq!(results, vec![first, second]);

    svc.delete(owner, created.id, &ExpectedVersion::Any)
        .await
        .expect("delete");
    let again = svc.create(owner, chat("t")).await.expect("create");
    let (_, results) = svc
        .get_with_kmeans_data(owner, again.id)
        .await
        .expect("get");
    assert!(results.is_empty());
}

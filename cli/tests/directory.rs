//! The alias directory over the real interface (gRPC, mTLS, journal):
//! registering keys, paying a key, authorization between participants,
//! lookup limits, reconciliation, claims, and survival across a restart.

mod common;

use common::*;
use ponte_domain::{Amount, ReasonCode};
use ponte_sdk::directory::{EndUser, entry_hash};
use ponte_sdk::{ClaimAction, ClaimKind, ClaimStatus, Error, KeyPayment, KeyType, Owner, OwnerKind, PaymentOutcome};

fn maria() -> Owner {
    Owner { kind: OwnerKind::Person, id: "529.982.247-25".into(), name: "Maria Souza da Silva".into() }
}

fn payer_user() -> EndUser {
    EndUser { kind: OwnerKind::Person, id: "11144477735".into() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pay_by_key_end_to_end() {
    let mut switch = TestSwitch::start().await;
    let (a, b) = (switch.client(A).await, switch.client(B).await);
    let entry = b.register_key(KeyType::Phone, "+5561988880000", &account(B, "4242"), &maria()).await.unwrap();
    assert_eq!(entry.owner.id, "52998224725", "stored canonical");
    let payee = Payee::accepting();
    let inbox = payee.serve(&b).await;
    let found = a.lookup_key(&entry.key, &payer_user()).await.unwrap();
    assert_eq!((found.account, found.owner_name_masked.as_str()), (account(B, "4242"), "Maria S. d. S."));
    let payment = KeyPayment {
        id: a.new_payment_id(),
        payer: account(A, "1"),
        payee_key: entry.key.clone(),
        lookup_by: Some(payer_user()),
        amount: Amount::parse_positive("12.00").unwrap(),
        remittance: "by key".into(),
    };
    assert!(a.submit_to_key(&payment).await.unwrap().is_settled());
    assert_eq!(payee.seen.lock().unwrap()[0].payee, account(B, "4242"), "delivered to the account behind the key");
    assert_eq!(a.status(&payment.id).await.unwrap().payee, account(B, "4242"));
    // A key nobody registered: rejected with BE23, at once.
    let unknown =
        ponte_directory::keys::parse(&ponte_directory::keys::Brazil, KeyType::Email, "x@example.com").unwrap();
    let to_nobody =
        KeyPayment { id: a.new_payment_id(), payee_key: unknown.clone(), lookup_by: None, ..payment.clone() };
    assert_eq!(a.submit_to_key(&to_nobody).await.unwrap(), PaymentOutcome::Rejected { reason: ReasonCode::UnknownKey });
    assert!(matches!(a.lookup_key(&unknown, &payer_user()).await, Err(Error::NotFound(_))));
    inbox.stop().await;
    // Keys survive a restart.
    switch.restart().await;
    let a = switch.client(A).await;
    assert_eq!(a.lookup_key(&entry.key, &payer_user()).await.unwrap().account, account(B, "4242"));
    switch.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn participants_touch_only_their_own_keys() {
    let switch = TestSwitch::start().await;
    let (a, b) = (switch.client(A).await, switch.client(B).await);
    let entry = b.register_key(KeyType::Email, "Maria@Example.com", &account(B, "1"), &maria()).await.unwrap();
    assert!(matches!(a.delete_key(&entry.key).await, Err(Error::PermissionDenied(_))));
    assert!(matches!(a.move_key(&entry.key, &account(A, "9")).await, Err(Error::PermissionDenied(_))));
    assert!(matches!(
        a.register_key(KeyType::Phone, "+5561911112222", &account(B, "1"), &maria()).await,
        Err(Error::PermissionDenied(_))
    ));
    assert!(matches!(
        a.register_key(KeyType::Email, "maria@example.com", &account(A, "1"), &maria()).await,
        Err(Error::AlreadyExists(_))
    ));
    // Invalid keys get precise errors that do not echo the key.
    let error = b.register_key(KeyType::PersonId, "529.982.247-24", &account(B, "1"), &maria()).await.unwrap_err();
    assert!(
        matches!(&error, Error::InvalidArgument(m) if m.contains("check digit") && !m.contains("52998224724")),
        "{error}"
    );
    // Reconciliation: the digest matches the holder's own computation.
    let random = b.register_key(KeyType::Random, "", &account(B, "1"), &maria()).await.unwrap();
    let (entries, digest) = b.list_keys().await.unwrap();
    assert_eq!(entries.len(), 2);
    let held = [&entry, &random];
    let mine = held.iter().map(|e| {
        entry_hash(&ponte_directory::registry::Entry {
            key: e.key.clone(),
            account: e.account,
            owner: e.owner.clone(),
            created_at: e.created_at_ms,
        })
    });
    assert_eq!(digest, mine.fold(0, |acc, h| acc ^ h));
    assert_eq!(a.list_keys().await.unwrap().0.len(), 0);
    b.delete_key(&entry.key).await.unwrap();
    assert_eq!(b.list_keys().await.unwrap().0.len(), 1);
    switch.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_listed_by_pages_with_a_digest_anyone_can_recompute() {
    let switch = TestSwitch::start().await;
    let b = switch.client(B).await;
    for n in 0..23 {
        let account = account(B, &format!("{}", 100 + n / 5));
        b.register_key(KeyType::Email, &format!("cliente{n:02}@example.com"), &account, &maria()).await.unwrap();
    }
    let (mut token, mut seen, mut digests) = (String::new(), Vec::new(), Vec::new());
    loop {
        let page = b.list_keys_page(7, &token).await.unwrap();
        assert!(page.entries.len() <= 7);
        assert_eq!(page.total, 23);
        digests.push(page.digest);
        seen.extend(page.entries);
        match page.next_page_token {
            Some(next) => token = next,
            None => break,
        }
    }
    assert_eq!(digests.len(), 4, "23 keys in pages of 7");
    assert!(digests.iter().all(|d| *d == digests[0]), "every page carries the digest of all the keys");
    let values: Vec<&str> = seen.iter().map(|e| e.key.value()).collect();
    let mut sorted = values.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(values, sorted, "in key order, each once");
    assert_eq!(values.len(), 23);
    // The digest as the .proto specifies it, computed here from its words
    // alone with xxHash's XXH3-64 (seed 0), not with Ponte's own function.
    let recomputed = seen.iter().fold(0_u64, |acc, e| {
        let mut bytes = Vec::new();
        for field in ["EMAIL", e.key.value(), &format!("{:04}", e.account.branch), e.account.number(), "CHECKING"] {
            bytes.extend((field.len() as u32).to_le_bytes());
            bytes.extend(field.as_bytes());
        }
        acc ^ xxhash_rust::xxh3::xxh3_64(&bytes)
    });
    assert_eq!(recomputed, digests[0]);
    // A page token of another list is refused, clearly.
    let error = b.list_keys_page(7, "6374313a373a45").await.unwrap_err();
    assert!(matches!(&error, Error::InvalidArgument(m) if m.contains("page_token")), "{error}");
    switch.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_are_rate_limited_with_a_retry_time() {
    let switch = TestSwitch::start().await;
    let a = switch.client(A).await;
    let missing =
        ponte_directory::keys::parse(&ponte_directory::keys::Brazil, KeyType::Phone, "+5561900000000").unwrap();
    for _ in 0..5 {
        assert!(matches!(a.lookup_key(&missing, &payer_user()).await, Err(Error::NotFound(_))));
    }
    match a.lookup_key(&missing, &payer_user()).await {
        Err(Error::Overloaded(message)) => assert!(message.contains("retry in 600000 ms"), "{message}"),
        other => panic!("expected the limit, got {other:?}"),
    }
    // The participant's own bucket: category H holds 50 tokens, a miss costs 3.
    let operator = switch.operator().await;
    operator.set_lookup_category(pid(B), 'H').await.unwrap();
    assert!(matches!(operator.set_lookup_category(pid(B), 'Z').await, Err(Error::InvalidArgument(_))));
    let b = switch.client(B).await;
    let mut limited = None;
    for n in 0..20 {
        let user = EndUser { kind: OwnerKind::Business, id: valid_cnpj(n) };
        if let Err(Error::Overloaded(message)) = b.lookup_key(&missing, &user).await {
            limited = Some((n, message));
            break;
        }
    }
    let (n, message) = limited.expect("the participant's bucket runs out");
    assert_eq!(n, 16, "50 tokens / 3 per miss = 16 lookups");
    assert!(message.contains("participant's lookup limit"), "{message}");
    switch.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portability_claim_moves_a_key() {
    let switch = TestSwitch::start().await;
    let (a, b) = (switch.client(A).await, switch.client(B).await);
    let entry = b.register_key(KeyType::Phone, "+5561988880000", &account(B, "1"), &maria()).await.unwrap();
    let claim = a.open_claim(ClaimKind::Portability, &entry.key, &account(A, "7"), &maria()).await.unwrap();
    assert_eq!((claim.donor, claim.status), (pid(B), ClaimStatus::Open));
    assert_eq!(b.claims().await.unwrap().len(), 1, "the donor sees it");
    assert!(matches!(a.act_on_claim(claim.id, ClaimAction::Confirm).await, Err(Error::PermissionDenied(_))));
    b.act_on_claim(claim.id, ClaimAction::Acknowledge).await.unwrap();
    b.act_on_claim(claim.id, ClaimAction::Confirm).await.unwrap();
    let done = a.act_on_claim(claim.id, ClaimAction::Complete).await.unwrap();
    assert_eq!(done.status, ClaimStatus::Completed);
    assert_eq!(a.lookup_key(&entry.key, &payer_user()).await.unwrap().account, account(A, "7"));
    let random = b.register_key(KeyType::Random, "", &account(B, "1"), &maria()).await.unwrap();
    assert!(matches!(
        a.open_claim(ClaimKind::Portability, &random.key, &account(A, "7"), &maria()).await,
        Err(Error::InvalidArgument(_))
    ));
    switch.stop().await;
}

/// A valid CNPJ per call (distinct end users, each with a fresh bucket).
fn valid_cnpj(n: u32) -> String {
    let base = format!("{:08}0001", 10_000_000 + n);
    let digits: Vec<u32> = base.bytes().map(|b| u32::from(b - b'0')).collect();
    let check = |d: &[u32]| {
        let sum: u32 = d.iter().enumerate().map(|(i, x)| x * (2 + ((d.len() - 1 - i) as u32 % 8))).sum();
        let r = sum % 11;
        if r < 2 { 0 } else { 11 - r }
    };
    let mut all = digits.clone();
    all.push(check(&all));
    all.push(check(&all));
    all.iter().map(|x| char::from_digit(*x, 10).unwrap()).collect()
}

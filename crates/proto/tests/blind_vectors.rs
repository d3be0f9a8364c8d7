//! docs/vectors/secure/blind-index.json: the blind index's keys, tags and
//! sealed records for one secret (made by an implementation written apart
//! from this one), and records that must be refused, each with the reason.
//! Every record must seal to exactly its bytes and open back; every refused
//! one must fail with its error.

use proto::ContentHash;
use proto::blind::record::BUCKETS;
use proto::blind::{IndexKey, NONCE_KEY_CONTEXT, OpenError, RECORD_KEY_CONTEXT, Record};
use proto::keys::INDEX_KEY_CONTEXT;
use proto::keys::NetworkKeys;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Vectors {
    description: String,
    index_key_context: String,
    record_key_context: String,
    nonce_key_context: String,
    secret: String,
    index_key: String,
    record_key: String,
    nonce_key: String,
    records: Vec<Sealed>,
    refused: Vec<Refused>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Sealed {
    description: String,
    name: String,
    size: u64,
    hash: String,
    name_tag: String,
    content_tag: String,
    sealed: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Refused {
    description: String,
    sealed: String,
    /// `length`, `forged` or `malformed`.
    error: String,
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn vectors() -> Vectors {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/vectors/secure/blind-index.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn keys_tags_and_records_match_the_vectors() {
    let v = vectors();
    assert!(!v.description.is_empty());
    assert_eq!(v.index_key_context, INDEX_KEY_CONTEXT);
    assert_eq!(v.record_key_context, RECORD_KEY_CONTEXT);
    assert_eq!(v.nonce_key_context, NONCE_KEY_CONTEXT);
    let index = NetworkKeys::from_secret(v.secret.as_bytes())
        .index()
        .unwrap();
    assert_eq!(index.to_hex(), v.index_key);
    assert_eq!(
        hex(&blake3::derive_key(RECORD_KEY_CONTEXT, index.bytes())),
        v.record_key
    );
    assert_eq!(
        hex(&blake3::derive_key(NONCE_KEY_CONTEXT, index.bytes())),
        v.nonce_key
    );
    let key = IndexKey::new(&index);
    let mut buckets = std::collections::BTreeSet::new();
    for r in &v.records {
        assert!(!r.description.is_empty());
        let record = Record {
            name: r.name.clone(),
            size: r.size,
            hash: ContentHash(unhex(&r.hash).try_into().unwrap()),
        };
        assert_eq!(hex(&key.name_tag(&r.name).0), r.name_tag, "{}", r.name);
        assert_eq!(
            hex(&key.content_tag(&record.hash).0),
            r.content_tag,
            "{}",
            r.name
        );
        let sealed = key.seal(&record).unwrap();
        assert_eq!(hex(&sealed.0), r.sealed, "the record of {}", r.name);
        assert_eq!(key.open(&unhex(&r.sealed)).unwrap(), record);
        buckets.insert(sealed.0.len());
    }
    assert_eq!(
        buckets.into_iter().collect::<Vec<_>>(),
        BUCKETS,
        "a record in every bucket"
    );
}

#[test]
fn refused_records_fail_with_their_error() {
    let v = vectors();
    let key = IndexKey::of(&NetworkKeys::from_secret(v.secret.as_bytes())).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for r in &v.refused {
        let got = key.open(&unhex(&r.sealed));
        let kind = match &got {
            Err(OpenError::Length(_)) => "length",
            Err(OpenError::Forged) => "forged",
            Err(OpenError::Malformed(_)) => "malformed",
            Ok(_) => "opened",
        };
        assert_eq!(kind, r.error, "{}: {got:?}", r.description);
        seen.insert(kind);
    }
    assert_eq!(seen.len(), 3, "every error has a vector");
}

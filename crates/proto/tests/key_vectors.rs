//! docs/vectors/secure/key-derivation.json: the relay key, the peer key and
//! the index key of each example secret, so another implementation can
//! check its derivation.

use proto::keys::NetworkKeys;
use proto::keys::{INDEX_KEY_CONTEXT, PEER_KEY_CONTEXT, RELAY_KEY_CONTEXT};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Vectors {
    description: String,
    relay_key_context: String,
    peer_key_context: String,
    index_key_context: String,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    /// The secret as UTF-8 text, or
    secret: Option<String>,
    /// as hex (bytes that are not text).
    secret_hex: Option<String>,
    relay_key: String,
    peer_key: String,
    index_key: String,
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn the_derivation_matches_the_vectors() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/vectors/secure/key-derivation.json"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let vectors: Vectors = serde_json::from_str(&text).unwrap();
    assert!(!vectors.description.is_empty());
    assert_eq!(vectors.relay_key_context, RELAY_KEY_CONTEXT);
    assert_eq!(vectors.peer_key_context, PEER_KEY_CONTEXT);
    assert_eq!(vectors.index_key_context, INDEX_KEY_CONTEXT);
    assert!(vectors.cases.len() >= 3);
    for case in &vectors.cases {
        let secret = match (&case.secret, &case.secret_hex) {
            (Some(s), None) => s.as_bytes().to_vec(),
            (None, Some(h)) => unhex(h),
            _ => panic!("a case gives `secret` or `secret_hex`, one of them"),
        };
        let keys = NetworkKeys::from_secret(&secret);
        assert_eq!(
            keys.relay.to_hex(),
            case.relay_key,
            "relay key of {secret:02x?}"
        );
        assert_eq!(
            keys.peer.as_ref().unwrap().to_hex(),
            case.peer_key,
            "peer key of {secret:02x?}"
        );
        assert_eq!(
            keys.index().unwrap().to_hex(),
            case.index_key,
            "index key of {secret:02x?}"
        );
        // The relay key alone gives no index key.
        assert_eq!(NetworkKeys::relay_only(keys.relay.clone()).index(), None);
    }
}

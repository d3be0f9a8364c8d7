//! docs/vectors/dht/dht_ids.json: the derived ids, computed apart from this
//! code (with the Python blake3 package), match ours.

use dht::{DhtId, NetworkKey};
use serde_json::Value;

fn hex32(text: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    assert_eq!(text.len(), 64, "{text}");
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn derived_ids_match_the_vectors() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/vectors/dht/dht_ids.json"
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(doc["id_context"], dht::id::ID_CONTEXT);
    assert_eq!(doc["key_context"], dht::id::KEY_CONTEXT);
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() >= 3);
    let mut checked = 0;
    for case in cases {
        let hash = hex32(case["hash"].as_str().unwrap());
        let plain = DhtId::derive(&hash, None);
        assert_eq!(plain.to_hex(), case["plain_id"], "{case}");
        for keyed in case["keyed"].as_array().unwrap() {
            let secret: Vec<u8> = match (keyed.get("secret"), keyed.get("secret_hex")) {
                (Some(text), None) => text.as_str().unwrap().as_bytes().to_vec(),
                (None, Some(h)) => {
                    let h = h.as_str().unwrap();
                    (0..h.len() / 2)
                        .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap())
                        .collect()
                }
                _ => panic!("a case needs secret or secret_hex: {keyed}"),
            };
            let key = NetworkKey::from_secret(&secret);
            assert_eq!(hex(key.bytes()), keyed["dht_key"], "{keyed}");
            let id = DhtId::derive(&hash, Some(&key));
            assert_eq!(id.to_hex(), keyed["id"], "{keyed}");
            assert_ne!(id, plain);
            checked += 1;
        }
    }
    assert_eq!(checked, 9);
}

#[test]
fn relays_ids_match_the_vectors() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/vectors/dht/dht_ids.json"
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(doc["relays_context"], dht::id::RELAYS_CONTEXT);
    let cases = doc["relays"].as_array().unwrap();
    assert_eq!(cases.len(), 3);
    for case in cases {
        let relay_key = hex32(case["relay_key"].as_str().unwrap());
        assert_eq!(
            DhtId::relays(&relay_key).to_hex(),
            case["relays_id"],
            "{case}"
        );
    }
}

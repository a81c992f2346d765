use proptest::prelude::*;
use serde::{Deserialize, Serialize};

use super::*;

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Row {
    #[serde(deserialize_with = "de::name")]
    path: String,
}

fn wire(bytes: &[u8]) -> Vec<u8> {
    to_vec(&Row {
        path: escape(bytes).into_owned(),
    })
    .unwrap()
}

fn back(json: &[u8]) -> Vec<u8> {
    let r: Row = serde_json::from_slice(json).unwrap();
    unescape(&r.path).into_owned()
}

#[test]
fn latin1_names_are_distinct_and_written_like_python() {
    let e9 = wire(b"/caf\xe9.txt");
    let e8 = wire(b"/caf\xe8.txt");
    assert_eq!(e9, br#"{"path":"/caf\udce9.txt"}"#);
    assert_ne!(e9, e8);
    assert_eq!(back(&e9), b"/caf\xe9.txt");
    assert_eq!(back(&e8), b"/caf\xe8.txt");
    // What the Python agent sends (json.dumps of os.fsdecode, ensure_ascii) decodes the same.
    assert_eq!(back(br#"{"path":"/caf\udce9.txt"}"#), b"/caf\xe9.txt");
    assert_eq!(
        back(br#"{"path":"/caf\u00e9.txt"}"#),
        "/café.txt".as_bytes()
    );
    assert_eq!(display(&escape(b"/caf\xe9.txt")), "/caf\\xE9.txt");
    assert_eq!(raw_len(&escape(b"caf\xe9")), 4);
}

#[test]
fn plain_names_are_not_copied() {
    assert!(matches!(escape("/a/wörld".as_bytes()), Cow::Borrowed(_)));
    assert!(matches!(unescape("/a/wörld"), Cow::Borrowed(_)));
    assert_eq!(wire("/wörld".as_bytes()), r#"{"path":"/wörld"}"#.as_bytes());
}

#[test]
fn escape_characters_in_real_names_stay_injective() {
    let real = "/x\u{10FF80}".as_bytes().to_vec();
    let raw = b"/x\x80".to_vec();
    assert_ne!(escape(&real), escape(&raw));
    assert_eq!(unescape(&escape(&real)).as_ref(), &real[..]);
    // A real U+10FF80 is valid UTF-8: written as the character, as Python would.
    assert_eq!(back(&wire(&real)), real);
}

#[test]
fn other_lone_surrogates_and_raw_bytes_are_refused() {
    assert!(serde_json::from_str::<Row>(r#"{"path":"\ud800"}"#).is_err());
    assert!(serde_json::from_str::<Row>(r#"{"path":"\udc41"}"#).is_err());
    // JSON text is UTF-8: raw undecodable bytes in a string are not the wire form.
    assert!(serde_json::from_slice::<Row>(b"{\"path\":\"/a\xe9\"}").is_err());
    assert!(serde_json::from_slice::<Row>(b"{\"path\":\"/\\udce9\xe9\"}").is_err());
    // Valid UTF-8 around escapes, including U+D7FF/U+E000 (lead byte ED, not a surrogate).
    assert_eq!(
        back("{\"path\":\"\u{D7FF}\\udce9\u{E000}\"}".as_bytes()),
        b"\xed\x9f\xbf\xe9\xee\x80\x80"
    );
}

#[test]
fn free_form_bodies_accept_pep383_escapes() {
    let v: serde_json::Value = serde_json::from_slice(&json_text(
        br#"{"path":"/caf\udce9","p":"\ud83c\udc80","q":"\\udce9"}"#,
    ))
    .unwrap();
    assert_eq!(unescape(v["path"].as_str().unwrap()).as_ref(), b"/caf\xe9");
    assert_eq!(v["p"], "\u{1F080}");
    assert_eq!(v["q"], "\\udce9");
    assert!(matches!(json_text(br#"{"a":"b"}"#), Cow::Borrowed(_)));
}

#[test]
fn value_strings_decode_too() {
    let r: Row = serde_json::from_value(serde_json::json!({"path": "/a"})).unwrap();
    assert_eq!(r.path, "/a");
}

proptest! {
    #[test]
    fn any_bytes_round_trip_through_json(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let s = escape(&bytes);
        let raw = unescape(&s).into_owned();
        prop_assert_eq!(&raw, &bytes);
        prop_assert_eq!(escape(&raw).into_owned(), s.clone().into_owned());
        prop_assert_eq!(back(&wire(&bytes)), bytes.clone());
        // The JSON is what Python's json.loads + os.fsencode would turn into the same bytes:
        // plain ASCII with `\u` escapes or valid UTF-8, never U+FFFD.
        let j = wire(&bytes);
        prop_assert!(std::str::from_utf8(&j).is_ok());
        let replaced = std::str::from_utf8(&j).is_ok_and(|t| t.contains(char::REPLACEMENT_CHARACTER));
        let had = String::from_utf8_lossy(&bytes).contains(char::REPLACEMENT_CHARACTER)
            && std::str::from_utf8(&bytes).is_ok();
        prop_assert!(!replaced || had);
    }

    #[test]
    fn distinct_bytes_stay_distinct(a in proptest::collection::vec(any::<u8>(), 0..16),
                                    b in proptest::collection::vec(any::<u8>(), 0..16)) {
        prop_assume!(a != b);
        prop_assert_ne!(escape(&a), escape(&b));
        prop_assert_ne!(wire(&a), wire(&b));
    }
}

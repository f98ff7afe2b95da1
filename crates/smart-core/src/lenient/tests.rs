use super::*;

fn secs(json: &str) -> LSecs {
    serde_json::from_str(json).unwrap()
}

#[test]
fn seconds_forms() {
    let ok = |secs, fraction, string| LSecs::Ok {
        secs,
        fraction,
        string,
    };
    assert_eq!(secs("3600"), ok(3600, false, false));
    assert_eq!(secs("35999.87"), ok(35999, true, false));
    assert_eq!(secs("\"3599.5\""), ok(3599, true, true));
    assert_eq!(secs("\" 86399 \""), ok(86399, false, true));
    assert_eq!(secs("1e3"), ok(1000, false, false));
    assert_eq!(secs("18446744073709551615"), ok(u64::MAX, false, false));
    assert_eq!(secs("1e300"), ok(u64::MAX, false, false));
    assert_eq!(secs("-1"), LSecs::Bad("negative"));
    assert_eq!(secs("-0.5"), LSecs::Bad("negative"));
    assert_eq!(secs("\"-3\""), LSecs::Bad("negative"));
    for bad in [
        "\"soon\"",
        "\"NaN\"",
        "\"inf\"",
        "\"Infinity\"",
        "\"\"",
        "\"0x10\"",
    ] {
        assert!(matches!(secs(bad), LSecs::Bad(_)), "{bad}");
    }
    assert_eq!(secs("true"), LSecs::Bad("a boolean"));
    assert_eq!(secs("[1]"), LSecs::Bad("an array"));
    assert_eq!(secs("null"), LSecs::Null);
}

#[test]
fn lists_and_bom() {
    let l: LStrList = serde_json::from_str(r#"["a",null,5,{"x":[1]},"b"]"#).unwrap();
    assert_eq!(l.list, Seen::Ok(vec!["a".to_owned(), "b".to_owned()]));
    assert_eq!(l.dropped, 3);
    let l: LStrList = serde_json::from_str(r#""a""#).unwrap();
    assert!(l.lone);
    let l: LStrList = serde_json::from_str(r#"{"a":"b"}"#).unwrap();
    assert_eq!(l.list, Seen::Wrong("an object"));
    assert_eq!(strip_bom(b"\xEF\xBB\xBF{}"), (&b"{}"[..], true));
    assert_eq!(strip_bom(b"{}"), (&b"{}"[..], false));
}

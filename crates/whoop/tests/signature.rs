//! Webhook signature verification against the cases an attacker or a broken proxy produces.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use whoop::webhook::{sign, verify, SignatureError, WebhookEvent};

const SECRET: &[u8] = b"client-secret-123";
const BODY: &[u8] = br#"{"user_id":10129,"id":"ecfc6a15-4661-442f-a9a4-f160dd7afae8","type":"sleep.updated","trace_id":"d3c5e6f7-1111-2222-3333-444455556666"}"#;
const WINDOW: Duration = Duration::from_secs(300);

fn now_ms() -> (SystemTime, String) {
    let now = SystemTime::now();
    let ms = now.duration_since(UNIX_EPOCH).unwrap().as_millis();
    (now, ms.to_string())
}

#[test]
fn a_valid_signature_verifies() {
    let (now, ts) = now_ms();
    let sig = sign(SECRET, &ts, BODY);
    assert_eq!(
        verify(&[SECRET], Some(&ts), Some(&sig), BODY, now, WINDOW),
        Ok(())
    );
    let event = WebhookEvent::parse(BODY).unwrap();
    assert_eq!(event.kind, "sleep.updated");
    assert_eq!(event.id, "ecfc6a15-4661-442f-a9a4-f160dd7afae8");
}

#[test]
fn a_known_vector_matches_whoops_scheme() {
    // base64(HMAC-SHA256(key, timestamp + body)), computed independently with openssl:
    // printf '1700000000000{"a":1}' | openssl dgst -sha256 -hmac key -binary | base64
    assert_eq!(
        sign(b"key", "1700000000000", br#"{"a":1}"#),
        "e3QIZdjQjnOq37ZbtPvgTdsCm1XVTG0+XvqtuyrbYwU="
    );
}

#[test]
fn a_tampered_body_is_refused() {
    let (now, ts) = now_ms();
    let sig = sign(SECRET, &ts, BODY);
    let tampered = String::from_utf8(BODY.to_vec())
        .unwrap()
        .replace("10129", "10130");
    assert_eq!(
        verify(
            &[SECRET],
            Some(&ts),
            Some(&sig),
            tampered.as_bytes(),
            now,
            WINDOW
        ),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn a_re_serialised_body_is_refused() {
    let (now, ts) = now_ms();
    let sig = sign(SECRET, &ts, BODY);
    // Same JSON value, different bytes (key order and spacing): the MAC is over bytes.
    let value: serde_json::Value = serde_json::from_slice(BODY).unwrap();
    let pretty = serde_json::to_vec_pretty(&value).unwrap();
    assert_ne!(pretty, BODY);
    assert_eq!(
        verify(&[SECRET], Some(&ts), Some(&sig), &pretty, now, WINDOW),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn the_wrong_secret_is_refused_and_a_rotation_accepts_either() {
    let (now, ts) = now_ms();
    let sig = sign(b"another-secret", &ts, BODY);
    assert_eq!(
        verify(&[SECRET], Some(&ts), Some(&sig), BODY, now, WINDOW),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        verify(
            &[SECRET, b"another-secret"],
            Some(&ts),
            Some(&sig),
            BODY,
            now,
            WINDOW
        ),
        Ok(())
    );
}

#[test]
fn missing_headers_are_refused() {
    let (now, ts) = now_ms();
    let sig = sign(SECRET, &ts, BODY);
    assert_eq!(
        verify(&[SECRET], Some(&ts), None, BODY, now, WINDOW),
        Err(SignatureError::MissingSignature)
    );
    assert_eq!(
        verify(&[SECRET], None, Some(&sig), BODY, now, WINDOW),
        Err(SignatureError::MissingTimestamp)
    );
    assert_eq!(
        verify(&[SECRET], Some(""), Some(&sig), BODY, now, WINDOW),
        Err(SignatureError::MissingTimestamp)
    );
}

#[test]
fn bad_base64_and_wrong_length_are_refused() {
    let (now, ts) = now_ms();
    assert_eq!(
        verify(
            &[SECRET],
            Some(&ts),
            Some("not base64!!"),
            BODY,
            now,
            WINDOW
        ),
        Err(SignatureError::BadEncoding)
    );
    assert_eq!(
        verify(&[SECRET], Some(&ts), Some("AAAA"), BODY, now, WINDOW),
        Err(SignatureError::BadEncoding)
    );
    // Hex, as some wrong implementations send, is not WHOOP's encoding.
    let hex: String = sign(SECRET, &ts, BODY)
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(verify(&[SECRET], Some(&ts), Some(&hex), BODY, now, WINDOW).is_err());
}

#[test]
fn a_timestamp_outside_the_window_is_refused() {
    let (now, _) = now_ms();
    let old = now - Duration::from_secs(301);
    let old_ts = old
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
        .to_string();
    let sig = sign(SECRET, &old_ts, BODY);
    assert_eq!(
        verify(&[SECRET], Some(&old_ts), Some(&sig), BODY, now, WINDOW),
        Err(SignatureError::OutsideWindow)
    );
    let future = now + Duration::from_secs(301);
    let future_ts = future
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
        .to_string();
    let sig = sign(SECRET, &future_ts, BODY);
    assert_eq!(
        verify(&[SECRET], Some(&future_ts), Some(&sig), BODY, now, WINDOW),
        Err(SignatureError::OutsideWindow)
    );
    // Seconds instead of milliseconds lands decades away.
    let secs = (now.duration_since(UNIX_EPOCH).unwrap().as_secs()).to_string();
    let sig = sign(SECRET, &secs, BODY);
    assert_eq!(
        verify(&[SECRET], Some(&secs), Some(&sig), BODY, now, WINDOW),
        Err(SignatureError::OutsideWindow)
    );
    assert_eq!(
        verify(&[SECRET], Some("12abc"), Some(&sig), BODY, now, WINDOW),
        Err(SignatureError::BadTimestamp)
    );
}

#[test]
fn the_signature_covers_the_timestamp() {
    let (now, ts) = now_ms();
    let sig = sign(SECRET, &ts, BODY);
    let other_ts = (ts.parse::<u64>().unwrap() - 1000).to_string();
    assert_eq!(
        verify(&[SECRET], Some(&other_ts), Some(&sig), BODY, now, WINDOW),
        Err(SignatureError::Mismatch)
    );
}

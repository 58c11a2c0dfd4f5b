//! The answers of `POST /v1/metrics` as OTLP/HTTP prescribes them: on success 200 with an
//! `ExportMetricsServiceResponse` in the request's encoding (empty: nothing is ever partially
//! accepted, so `partial_success` is never set); on failure the status code with a
//! `google.rpc.Status` naming the reason, again in the request's encoding. The messages are two
//! fields at most, written here rather than pulling a protobuf crate into the listener.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};

/// Whether the request's `Content-Type` is OTLP/JSON (otherwise answers are protobuf).
#[must_use]
pub fn is_json(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}

fn response(status: StatusCode, json: bool, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    let ct = if json {
        "application/json"
    } else {
        "application/x-protobuf"
    };
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(ct),
    );
    r
}

/// 200 with an empty `ExportMetricsServiceResponse`.
#[must_use]
pub fn accepted(json: bool) -> Response<Full<Bytes>> {
    response(
        StatusCode::OK,
        json,
        if json { b"{}".to_vec() } else { Vec::new() },
    )
}

/// `status` with a `google.rpc.Status { code, message }` (gRPC code by HTTP status).
#[must_use]
pub fn refused(status: StatusCode, json: bool, message: &str) -> Response<Full<Bytes>> {
    let code = grpc_code(status);
    let body = if json {
        format!("{{\"code\":{code},\"message\":{}}}", json_string(message)).into_bytes()
    } else {
        status_proto(code, message)
    };
    response(status, json, body)
}

/// The gRPC code OTLP pairs with an HTTP status.
const fn grpc_code(status: StatusCode) -> u32 {
    match status.as_u16() {
        400 => 3,        // INVALID_ARGUMENT
        401 => 16,       // UNAUTHENTICATED
        404 | 405 => 12, // UNIMPLEMENTED
        413 | 429 => 8,  // RESOURCE_EXHAUSTED
        503 => 14,       // UNAVAILABLE
        _ => 2,          // UNKNOWN
    }
}

/// `google.rpc.Status`: `int32 code = 1; string message = 2;` (details not sent).
fn status_proto(code: u32, message: &str) -> Vec<u8> {
    let mut b = Vec::with_capacity(message.len() + 8);
    if code != 0 {
        b.push(0x08);
        varint(&mut b, u64::from(code));
    }
    if !message.is_empty() {
        b.push(0x12);
        varint(&mut b, message.len() as u64);
        b.extend_from_slice(message.as_bytes());
    }
    b
}

fn varint(b: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        b.push((v as u8) | 0x80);
        v >>= 7;
    }
    b.push(v as u8);
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_is_the_protobuf_message_google_rpc_status() {
        // Field 1 varint 3, field 2 length 2 "no".
        assert_eq!(status_proto(3, "no"), [0x08, 0x03, 0x12, 0x02, b'n', b'o']);
        let long = "x".repeat(200);
        assert_eq!(
            &status_proto(14, &long)[..5],
            [0x08, 0x0e, 0x12, 0xc8, 0x01]
        );
    }

    #[test]
    fn json_answers_escape_the_reason() {
        assert_eq!(json_string("a \"b\"\n\u{1}"), r#""a \"b\"\n\u0001""#);
        assert!(is_json("application/json; charset=utf-8"));
        assert!(!is_json("application/x-protobuf"));
    }
}

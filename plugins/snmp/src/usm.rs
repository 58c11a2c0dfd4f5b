//! SNMPv3 with the User-based Security Model: the message format (RFC 3412), key
//! localisation (RFC 3414 A.2: a 1 MiB stretch of the password hashed, then
//! `H(Ku || engineID || Ku)`), HMAC authentication truncated to 12 bytes for MD5 and SHA-1
//! and to 16/24/32/48 bytes for SHA-224/256/384/512 (RFC 7860), and AES-128 in CFB mode
//! (RFC 3826, the IV being engineBoots, engineTime and the 8-byte salt sent in
//! msgPrivacyParameters).
//!
//! The password keys (`Ku`) are computed once, at init; the localised ones once per engine
//! ID. Reports (unknownUserNames, wrongDigests, notInTimeWindows...) become errors named
//! as the RFC names them; the session rediscovers the engine's clock on notInTimeWindows.

use crate::ber::{self, Reader};
use crate::pdu::{Pdu, REPORT};
use aes::cipher::{AsyncStreamCipher, KeyIvInit};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use sha2::Digest;

/// The authentication protocols of RFC 3414 and RFC 7860.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthProtocol {
    /// HMAC-MD5-96.
    Md5,
    /// HMAC-SHA-96.
    Sha1,
    /// HMAC-SHA-224 (128-bit MAC).
    Sha224,
    /// HMAC-SHA-256 (192-bit MAC).
    Sha256,
    /// HMAC-SHA-384 (256-bit MAC).
    Sha384,
    /// HMAC-SHA-512 (384-bit MAC).
    Sha512,
}

fn digest<D: Digest>(parts: &[&[u8]]) -> Vec<u8> {
    let mut h = D::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().to_vec()
}

impl AuthProtocol {
    /// The names snmp_exporter and net-snmp use.
    pub const NAMES: &[(&str, Self)] = &[
        ("MD5", Self::Md5),
        ("SHA", Self::Sha1),
        ("SHA224", Self::Sha224),
        ("SHA256", Self::Sha256),
        ("SHA384", Self::Sha384),
        ("SHA512", Self::Sha512),
    ];

    /// Parses a protocol name (`SHA-256` is taken as `SHA256`).
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.replace('-', "").to_ascii_uppercase();
        let s = if s == "SHA1" { "SHA".to_string() } else { s };
        Self::NAMES.iter().find(|(n, _)| *n == s).map(|(_, p)| *p)
    }

    /// Bytes of msgAuthenticationParameters.
    #[must_use]
    pub const fn mac_len(self) -> usize {
        match self {
            Self::Md5 | Self::Sha1 => 12,
            Self::Sha224 => 16,
            Self::Sha256 => 24,
            Self::Sha384 => 32,
            Self::Sha512 => 48,
        }
    }

    const fn block(self) -> usize {
        match self {
            Self::Sha384 | Self::Sha512 => 128,
            _ => 64,
        }
    }

    fn hash(self, parts: &[&[u8]]) -> Vec<u8> {
        match self {
            Self::Md5 => digest::<md5::Md5>(parts),
            Self::Sha1 => digest::<sha1::Sha1>(parts),
            Self::Sha224 => digest::<sha2::Sha224>(parts),
            Self::Sha256 => digest::<sha2::Sha256>(parts),
            Self::Sha384 => digest::<sha2::Sha384>(parts),
            Self::Sha512 => digest::<sha2::Sha512>(parts),
        }
    }

    /// `Ku`: the password repeated over 1 MiB, hashed (RFC 3414 A.2.1).
    #[must_use]
    pub fn password_key(self, password: &[u8]) -> Vec<u8> {
        const TOTAL: usize = 1 << 20;
        let mut stretched = Vec::with_capacity(TOTAL);
        while stretched.len() < TOTAL && !password.is_empty() {
            let n = password.len().min(TOTAL - stretched.len());
            stretched.extend_from_slice(&password[..n]);
        }
        self.hash(&[&stretched])
    }

    /// `Kul`: `Ku` localised to an engine.
    #[must_use]
    pub fn localize(self, ku: &[u8], engine_id: &[u8]) -> Vec<u8> {
        self.hash(&[ku, engine_id, ku])
    }

    /// HMAC of `msg` under `key`, truncated to [`AuthProtocol::mac_len`].
    #[must_use]
    pub fn mac(self, key: &[u8], msg: &[u8]) -> Vec<u8> {
        let block = self.block();
        let mut k = if key.len() > block {
            self.hash(&[key])
        } else {
            key.to_vec()
        };
        k.resize(block, 0);
        let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
        let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
        let inner = self.hash(&[&ipad, msg]);
        let mut out = self.hash(&[&opad, &inner]);
        out.truncate(self.mac_len());
        out
    }
}

/// The security level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Neither authentication nor privacy.
    NoAuthNoPriv,
    /// Authenticated, in clear.
    AuthNoPriv,
    /// Authenticated and encrypted.
    AuthPriv,
}

/// A USM user with its password keys.
#[derive(Debug, Clone)]
pub struct User {
    /// msgUserName.
    pub name: String,
    /// The level asked for.
    pub level: Level,
    /// The authentication protocol and `Ku`.
    pub auth: Option<(AuthProtocol, Vec<u8>)>,
    /// The AES-128 `Ku` (from the priv password, with the auth protocol's hash).
    pub privacy: Option<Vec<u8>>,
    /// contextName.
    pub context: String,
}

/// An engine as discovered, with the user's keys localised to it.
#[derive(Debug, Clone)]
pub struct Engine {
    /// snmpEngineID.
    pub id: Vec<u8>,
    /// snmpEngineBoots.
    pub boots: u32,
    /// snmpEngineTime when it was learnt.
    pub time: u32,
    /// Our clock (ms) when it was learnt.
    pub at_ms: i64,
    auth_key: Vec<u8>,
    priv_key: Vec<u8>,
}

impl Engine {
    /// An engine learnt from a report; the user's keys localised to it.
    #[must_use]
    pub fn new(user: &User, id: Vec<u8>, boots: u32, time: u32, at_ms: i64) -> Self {
        let (auth_key, priv_key) = match &user.auth {
            Some((p, ku)) => {
                let mut pk = user
                    .privacy
                    .as_ref()
                    .map(|k| p.localize(k, &id))
                    .unwrap_or_default();
                pk.truncate(16);
                (p.localize(ku, &id), pk)
            }
            None => (Vec::new(), Vec::new()),
        };
        Self {
            id,
            boots,
            time,
            at_ms,
            auth_key,
            priv_key,
        }
    }

    /// snmpEngineTime now, by our clock.
    #[must_use]
    pub fn time_at(&self, now_ms: i64) -> u32 {
        let elapsed = u32::try_from((now_ms - self.at_ms).max(0) / 1000).unwrap_or(u32::MAX);
        self.time.saturating_add(elapsed)
    }
}

const MAX_SIZE: i64 = 65_507;

/// Encodes a request. Without `engine`, a discovery probe: no user, no security, reportable.
#[must_use]
pub fn encode(
    user: &User,
    engine: Option<&Engine>,
    now_ms: i64,
    msg_id: i32,
    pdu: &Pdu,
    salt: u64,
) -> Vec<u8> {
    let (level, name, id, boots, time) = match engine {
        None => (Level::NoAuthNoPriv, &[][..], &[][..], 0, 0),
        Some(e) => (
            user.level,
            user.name.as_bytes(),
            e.id.as_slice(),
            e.boots,
            e.time_at(now_ms),
        ),
    };
    let auth = if level == Level::NoAuthNoPriv {
        None
    } else {
        user.auth.as_ref().map(|(p, _)| *p)
    };
    let flags =
        0x04 | if auth.is_some() { 1 } else { 0 } | if level == Level::AuthPriv { 2 } else { 0 };
    let mut scoped = Vec::new();
    ber::nested(&mut scoped, ber::SEQUENCE, |o| {
        ber::tlv(o, ber::OCTET_STRING, id);
        ber::tlv(o, ber::OCTET_STRING, user.context.as_bytes());
        pdu.encode(o);
    });
    let (priv_params, data) = match (level, engine) {
        (Level::AuthPriv, Some(e)) => {
            let salt = salt.to_be_bytes();
            let mut iv = [0u8; 16];
            iv[..4].copy_from_slice(&boots.to_be_bytes());
            iv[4..8].copy_from_slice(&time.to_be_bytes());
            iv[8..].copy_from_slice(&salt);
            let mut buf = scoped;
            if let Ok(c) = cfb_mode::Encryptor::<aes::Aes128>::new_from_slices(&e.priv_key, &iv) {
                c.encrypt(&mut buf);
            }
            let mut data = Vec::new();
            ber::tlv(&mut data, ber::OCTET_STRING, &buf);
            (salt.to_vec(), data)
        }
        _ => (Vec::new(), scoped),
    };
    let mac_len = auth.map_or(0, AuthProtocol::mac_len);
    let mut sp = Vec::new();
    let mut auth_at = 0;
    ber::nested(&mut sp, ber::SEQUENCE, |o| {
        ber::tlv(o, ber::OCTET_STRING, id);
        ber::int(o, ber::INTEGER, i64::from(boots));
        ber::int(o, ber::INTEGER, i64::from(time));
        ber::tlv(o, ber::OCTET_STRING, name);
        o.push(ber::OCTET_STRING);
        ber::push_len(o, mac_len);
        auth_at = o.len();
        o.resize(o.len() + mac_len, 0);
        ber::tlv(o, ber::OCTET_STRING, &priv_params);
    });
    // `auth_at` counted inside the sequence's content; the sequence header comes first.
    let sp_header = sp.len() - (auth_at_content_len(&sp));
    let auth_in_sp = sp_header + auth_at;
    let mut head = Vec::new();
    ber::int(&mut head, ber::INTEGER, 3);
    ber::nested(&mut head, ber::SEQUENCE, |o| {
        ber::int(o, ber::INTEGER, i64::from(msg_id));
        ber::int(o, ber::INTEGER, MAX_SIZE);
        ber::tlv(o, ber::OCTET_STRING, &[flags]);
        ber::int(o, ber::INTEGER, 3);
    });
    head.push(ber::OCTET_STRING);
    ber::push_len(&mut head, sp.len());
    let sp_at = head.len();
    let mut content = head;
    content.extend_from_slice(&sp);
    content.extend_from_slice(&data);
    let mut msg = Vec::new();
    msg.push(ber::SEQUENCE);
    ber::push_len(&mut msg, content.len());
    let start = msg.len();
    msg.extend_from_slice(&content);
    if let (Some(p), Some(e)) = (auth, engine) {
        let at = start + sp_at + auth_in_sp;
        let mac = p.mac(&e.auth_key, &msg);
        msg[at..at + mac_len].copy_from_slice(&mac);
    }
    msg
}

/// Length of a TLV's content (the TLV starting at `tlv[0]`).
fn auth_at_content_len(tlv: &[u8]) -> usize {
    Reader::new(tlv).read_tlv().map_or(0, |(_, c)| c.len())
}

/// A decoded v3 message.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// msgID.
    pub msg_id: i32,
    /// msgAuthoritativeEngineID.
    pub engine_id: Vec<u8>,
    /// msgAuthoritativeEngineBoots.
    pub boots: u32,
    /// msgAuthoritativeEngineTime.
    pub time: u32,
    /// The PDU (a Response or a Report).
    pub pdu: Pdu,
}

/// The USM statistic a Report names (RFC 3414 `usmStats*`).
#[must_use]
pub fn report_name(pdu: &Pdu) -> Option<&'static str> {
    if pdu.kind != REPORT {
        return None;
    }
    let (oid, _) = pdu.varbinds.first()?;
    Some(match oid.as_slice() {
        [1, 3, 6, 1, 6, 3, 15, 1, 1, 1, 0] => "unsupportedSecLevels",
        [1, 3, 6, 1, 6, 3, 15, 1, 1, 2, 0] => "notInTimeWindows",
        [1, 3, 6, 1, 6, 3, 15, 1, 1, 3, 0] => "unknownUserNames",
        [1, 3, 6, 1, 6, 3, 15, 1, 1, 4, 0] => "unknownEngineIDs",
        [1, 3, 6, 1, 6, 3, 15, 1, 1, 5, 0] => "wrongDigests",
        [1, 3, 6, 1, 6, 3, 15, 1, 1, 6, 0] => "decryptionErrors",
        _ => "unknown report",
    })
}

/// Decodes a v3 message; with `engine`, checks its MAC and decrypts it as `user` would.
/// Reports may come unauthenticated (an agent cannot authenticate "wrong digest").
///
/// # Errors
/// A malformed message, a wrong MAC, an encrypted message without keys.
pub fn decode(user: &User, engine: Option<&Engine>, bytes: &[u8]) -> Result<Incoming, String> {
    let e = |x: ber::Error| x.0;
    let mut m = Reader::new(bytes)
        .enter(ber::SEQUENCE, "message")
        .map_err(e)?;
    if m.int("msgVersion").map_err(e)? != 3 {
        return Err("not an SNMPv3 message".into());
    }
    let mut h = m.enter(ber::SEQUENCE, "msgGlobalData").map_err(e)?;
    let msg_id = i32::try_from(h.int("msgID").map_err(e)?).map_err(|_| "bad msgID")?;
    let _max = h.int("msgMaxSize").map_err(e)?;
    let flags = h
        .expect(ber::OCTET_STRING, "msgFlags")
        .map_err(e)?
        .first()
        .copied()
        .unwrap_or(0);
    let sp_bytes = m
        .expect(ber::OCTET_STRING, "msgSecurityParameters")
        .map_err(e)?;
    let mut sp = Reader::new(sp_bytes)
        .enter(ber::SEQUENCE, "UsmSecurityParameters")
        .map_err(e)?;
    let engine_id = sp
        .expect(ber::OCTET_STRING, "engine id")
        .map_err(e)?
        .to_vec();
    let boots =
        u32::try_from(sp.int("engine boots").map_err(e)?).map_err(|_| "bad engine boots")?;
    let time = u32::try_from(sp.int("engine time").map_err(e)?).map_err(|_| "bad engine time")?;
    let _name = sp.expect(ber::OCTET_STRING, "user name").map_err(e)?;
    let mac = sp
        .expect(ber::OCTET_STRING, "authentication parameters")
        .map_err(e)?;
    let salt = sp
        .expect(ber::OCTET_STRING, "privacy parameters")
        .map_err(e)?;
    if flags & 1 != 0 {
        let (Some((p, _)), Some(eng)) = (&user.auth, engine) else {
            return Err("an authenticated answer to an unauthenticated request".into());
        };
        // The MAC's offset in `bytes`, from where its slice lies in memory.
        let at = mac.as_ptr() as usize - bytes.as_ptr() as usize;
        let mut zeroed = bytes.to_vec();
        zeroed[at..at + mac.len()].fill(0);
        if p.mac(&eng.auth_key, &zeroed) != mac {
            return Err("the answer's MAC is wrong (is auth_password_file the agent's?)".into());
        }
    }
    let pdu = if flags & 2 != 0 {
        let eng = engine.ok_or("an encrypted answer to a discovery probe")?;
        let cipher = m.expect(ber::OCTET_STRING, "encryptedPDU").map_err(e)?;
        if salt.len() != 8 {
            return Err("bad privacy parameters".into());
        }
        let mut iv = [0u8; 16];
        iv[..4].copy_from_slice(&boots.to_be_bytes());
        iv[4..8].copy_from_slice(&time.to_be_bytes());
        iv[8..].copy_from_slice(salt);
        let mut buf = cipher.to_vec();
        cfb_mode::Decryptor::<aes::Aes128>::new_from_slices(&eng.priv_key, &iv)
            .map_err(|_| "no privacy key")?
            .decrypt(&mut buf);
        scoped_pdu(&buf).map_err(|x| {
            format!("decrypting the answer: {x} (is priv_password_file the agent's?)")
        })?
    } else {
        scoped_pdu_from(&mut m).map_err(e)?
    };
    Ok(Incoming {
        msg_id,
        engine_id,
        boots,
        time,
        pdu,
    })
}

fn scoped_pdu(bytes: &[u8]) -> Result<Pdu, String> {
    scoped_pdu_from(&mut Reader::new(bytes)).map_err(|e| e.0)
}

fn scoped_pdu_from(r: &mut Reader<'_>) -> Result<Pdu, ber::Error> {
    let mut s = r.enter(ber::SEQUENCE, "ScopedPDU")?;
    s.expect(ber::OCTET_STRING, "contextEngineID")?;
    s.expect(ber::OCTET_STRING, "contextName")?;
    Pdu::decode(&mut s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    /// RFC 3414 A.3.1 and A.3.2: "maplesyrup" localised to engine 00..02.
    #[test]
    fn key_localisation_matches_rfc_3414_appendix_a3() {
        let engine = hex("00 00 00 00 00 00 00 00 00 00 00 02");
        let ku = AuthProtocol::Md5.password_key(b"maplesyrup");
        assert_eq!(ku, hex("9f af 32 83 88 4e 92 83 4e bc 98 47 d8 ed d9 63"));
        assert_eq!(
            AuthProtocol::Md5.localize(&ku, &engine),
            hex("52 6f 5e ed 9f cc e2 6f 89 64 c2 93 07 87 d8 2b")
        );
        let ku = AuthProtocol::Sha1.password_key(b"maplesyrup");
        assert_eq!(
            ku,
            hex("9f b5 cc 03 81 49 7b 37 93 52 89 39 ff 78 8d 5d 79 14 52 11")
        );
        assert_eq!(
            AuthProtocol::Sha1.localize(&ku, &engine),
            hex("66 95 fe bc 92 88 e3 62 82 23 5f c7 15 1f 12 84 97 b3 8f 3f")
        );
    }

    /// RFC 4231 test case 2 ("Jefe"), truncated as RFC 7860 truncates HMAC-SHA-256.
    #[test]
    fn hmac_matches_rfc_4231() {
        let mac = AuthProtocol::Sha256.mac(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            mac,
            hex("5b dc c1 46 bf 60 75 4e 6a 04 24 26 08 95 75 c7 5a 00 3f 08 9d 27 39 83")
        );
    }

    fn user(level: Level) -> User {
        let p = AuthProtocol::Sha256;
        User {
            name: "alice".into(),
            level,
            auth: Some((p, p.password_key(b"alicepass1"))),
            privacy: Some(p.password_key(b"alicepriv1")),
            context: String::new(),
        }
    }

    #[test]
    fn an_auth_priv_message_decodes_with_the_same_keys_and_not_with_others() {
        let u = user(Level::AuthPriv);
        let eng = Engine::new(&u, b"\x80\x00\x1f\x88\x04engine".to_vec(), 3, 1000, 0);
        let pdu = Pdu::get(42, &[alloc::vec![1, 3, 6, 1, 2, 1, 1, 1, 0]]);
        let msg = encode(&u, Some(&eng), 5_000, 7, &pdu, 0x0102_0304_0506_0708);
        let back = decode(&u, Some(&eng), &msg).unwrap();
        assert_eq!((back.msg_id, back.boots, back.time), (7, 3, 1005));
        assert_eq!(back.pdu, pdu);
        // A flipped bit anywhere fails the MAC.
        let mut bad = msg.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(decode(&u, Some(&eng), &bad).unwrap_err().contains("MAC"));
        let mut other = user(Level::AuthPriv);
        other.auth = Some((
            AuthProtocol::Sha256,
            AuthProtocol::Sha256.password_key(b"otherpass1"),
        ));
        let eng2 = Engine::new(&other, eng.id.clone(), 3, 1000, 0);
        assert!(decode(&other, Some(&eng2), &msg).is_err());
    }

    /// The 1 MiB password stretch is slow in a debug build: once for all property cases.
    fn shared_user() -> &'static User {
        static USER: std::sync::OnceLock<User> = std::sync::OnceLock::new();
        USER.get_or_init(|| user(Level::AuthPriv))
    }

    proptest::proptest! {
        #[test]
        fn decoding_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let u = shared_user();
            let eng = Engine::new(u, b"engine".to_vec(), 1, 1, 0);
            let _ = decode(u, Some(&eng), &bytes);
            let _ = decode(u, None, &bytes);
        }

        #[test]
        fn a_mutated_message_never_panics(i in 0usize..200, b in proptest::prelude::any::<u8>()) {
            let u = shared_user();
            let eng = Engine::new(u, b"engine".to_vec(), 1, 1, 0);
            let mut msg = encode(u, Some(&eng), 0, 1, &Pdu::get(1, &[alloc::vec![1, 3, 6, 1]]), 9);
            let i = i % msg.len();
            msg[i] = b;
            let _ = decode(u, Some(&eng), &msg);
        }
    }

    #[test]
    fn protocol_names() {
        assert_eq!(AuthProtocol::parse("SHA"), Some(AuthProtocol::Sha1));
        assert_eq!(AuthProtocol::parse("SHA-256"), Some(AuthProtocol::Sha256));
        assert_eq!(AuthProtocol::parse("sha512"), Some(AuthProtocol::Sha512));
        assert_eq!(AuthProtocol::parse("SHA3"), None);
    }
}

//! SEV-SNP with a generated test PKI: custom trust roots end to end, and
//! revocation with generated CRLs (there is no real AMD CRL in the test
//! data). The ARK/ASK are RSA-2048 test keys signing with RSASSA-PSS
//! SHA-384 (salt 48) like AMD's; the VCEK is a fixed P-384 test key that
//! signs a synthetic version-3 Milan report. All keys below are test-only.

use accord_core::evidence::snp::{
    self, CertRole, Certs, Product, SnpError, TcbVersion, TrustRoots, VerifiedChain,
};
use accord_core::time::UnixTime;
use accord_core::x509::X509Error;
use p384::ecdsa::signature::Signer;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{RandomizedSigner, SignatureEncoding};
use rsa::traits::PublicKeyParts;

use crate::common::{at, providers};

/// Test-only RSA key of the test ARK.
const ARK_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQC4k/ytZjeYCdeo\nPm7kmUr7TPgRnQCV6N4f8ifPktLvAsfOrGdTYqYqVbjzOjoSv4k4aDu7F6dmVCvC\nlJYSRuWK3mUvbSmB9BDP744BiSPMI/KoPWKDtGGuudnUl/BE+4YlVz6uYHN+qNKv\nXJUqgqRcvsFbBg1+QofD4kkgxQXwlHbT0B7yCLLT0zK+ewcYFT092iiKmGWB1Y5r\nEgAs9Vb0Rtu9GeHTVtZob18Zz5V/YMX7OlgD5caEl7jiEhS7GJPqEmniS8ruzJan\nr7RNl+rJ4JLSjxHvhlPEk0AYH9l5tcwFxGoPMGULW6euNMgv/ZsoErY7H55onr/f\nO7jxxFL1AgMBAAECggEAC9qtQrGq5l/TcuG3m4Tg1OznjbIIpJgVE/YoamNimqkS\nDgryg991Doj83NojeqrEdFP1ahmlzaOgP9ntHXViLp4D35ziKo9zOPeIpj6ZhvXU\nEswGdLD0CRW0kLvFWZjRz7ofs3FMWZkcFtkaV2WWisJRhrgHy9EYCROSYMFmlUHH\npyMVBCAOIcsWGOF677PJfsYoZ0/oMOzjJDzNDMX+vzeeeb30A91d18BIW3pWqv0J\nnw1fc3szTPzBTC9qYzzJQrC9KXcsvVWRNtwcGRAReuAfuQnCW+Buy4GSBqDG6WKK\nagqcPgidsT9YeMcDkBn7YJbaJzzmP3OtYTtBnC0AoQKBgQDvPkYIX3Wki7zpVuXF\nQIAzeime05BE4MxA9B9KxXqBu0wx+kNww3cV3OqXUYe9/CyWowoQJMOc9S3onZxu\nyrKU71vHznxtkocnJ4+Ag035rzVeSrwXQpCAZo+Z+A8MOREwPeBkSN2uPeDGVmOR\nq+9z+HXqGpJqacYn55xgRReI/QKBgQDFgYuJ4OitdkxszhgJJRYXLAVAlApJVEYu\ncBQkrHMEGnwsBRuM3mcJxIBVc5Lyvav3oENZJ2lGzd/KfjJ3P7MmHqjGUJyQ2IMT\nY9Lmaf9XSeQJlJFEagICkaFEbteYoa/+lMx3mCrz/3kxvgeRMcpt05Mkb28/xgr2\n6oHL5/BvWQKBgQCXKBJZce7DUuK9zwCHezRE0fd/+Q2a5ylGFLe8pz66vtrqbMO1\neFpCPv0dNA7+s1h8qHBQONo6zhH+ea5/taPVQ9IKUOT+2eh4jZ82RD+89L1UYQWr\n8IuaBLLQRhFD2L6Ka13eHsepMkFVLvnj7OzyqdXeXoGJqGDhj42WqbCwBQKBgAYA\nDIQw0ADNEj9P94z3knc7wCEZHkLiC4vHneULVCcwwsr3kMGz0/+I97kg3LsBJiNM\nvB8OQnWDNaRKNzBGQCQNVGVJ96ey3DCPnM2hNL+rIAFmgQ9KBSuczwBsOaKKbvVW\nAew0NEHbZgwr0MEJeTPi9JprxD50vsqHj0/piPVpAoGBALWqZv3gDISzsDbCSrmu\nnfDHppj5xQmTdDh/ElMiQYsFJqG2GTl0BwN37PPHSSfZR272rqKcyWUMjV5nQm+e\nlAlfcPOEiin9b9iubzsWXdJCasTkcmNCdKXL1SuPR9ddyEodmQrqMvg9YdZnyhYF\n784RbGSV6TNeKq8Ikx2epYre\n-----END PRIVATE KEY-----";
/// Test-only RSA key of the test ASK.
const ASK_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCuQLOspsLmQlQY\nk60OCX2VlaU/FNVI3+j3Bn1UmYPCF7HxS27PCNsBZ7NE8fpoMA0y1TXUFLmV2lG+\n0BYtScF/ccfeL3FZka3YGIc+UVdxloU/XF66byTnD+5qW85sj64DosGKu02hByUi\nEvoQeGxCwuYYb0JjC5fEo9RbPla9why95VI/1TwYapHFrybqwXJF/iPeLLLqe+N0\nENGb6hzDVytbD6VTryyyEk5zAYEv3yJwmBrBVVO5w2tZ/qO+N1Vcqnv1wmfr3ujj\nA9e72ziOowxsdo7hY+RjS1Gu+o0bsOgRdE8CLf/tjJNgTGF8ByKIC6EbKtIBo/Hq\nEViiHtNNAgMBAAECggEAEfxar1TtJBAvlvPTNnIzVLfD/S1c0G9QIAM693r69xM0\nCjhjgRokZNI71j91vcBL9HW+XxwehcGpk1zuFRGaV9m6LAxQklKvk3EAsKV7tZ04\nNrCFlI+5SuJBlRfRyDHSX8yyVmv72MWghxJXXlDXt9JfJqGBRDDjoufYGOznziEp\ngiyZwA4OVcdLNbVISIpjK0RUX6/0hPSyKKE5pZNrdsMW64/GE2tq8x/+aEgHSucq\n8J/4SiiF74pJMNKlhUNrjbYuqYL8WupnK5z9+TmHaLO75LkXON8mGj3WPVUX0L4S\ntZ8ttFR4AayKiRfBdE6JvePkEiLmAqz+mNCsOgTJfwKBgQDz006Xo4Jf5opysWnc\nWNXY26aXB4+pXzV7r9HUnzBuqM3gkYss/acBtB8gQe5KYCeFkavVHF5wr/NHFMO/\n+J2vaajAJH6rsRwlZFRQ6yFpi5Z7nq6Tk17DsuH8dXDlp3CxnRoIGUZCOGOHtDaD\nuWPLRaWqc460J3Dc5/vaxms7zwKBgQC29BVqrUkQAqjP2fPP50DkpQoATTmXusy7\nAy+hu39hAdwNK59QzM65iDyA0KY82acoA7FBr02V2hBMa2IygtNZbCN1P7CLKu6V\noGYpWY2QLltaw2mPtsKKgcBWozTNBWh7MSA62x+MlHX09do9gT4pUZaALltXCGOD\nS2qozft6IwKBgFwnp3LEyAf7GKTUzVAM+3ZlPoeiwfegFpTTFRmpuSJ6BqY0HEg6\n7p5EN+d3Q9s0kHt5XVrEyCULO4XIIVwzWVXtN2y33nCCFkNDsmKLHCvKKGw8w3rf\nnleVCrjionMKYBuhZy9cbiOlMGkgAeKzdTZk8oKD/pG0voGf5J8Bk5IdAoGAU4Zb\nwLgcAxMzvrDifqg1GC3AwyJ+iKbfkQGDXXMcVE1lCR5BPcJDHrDz7ltTibRUfBAz\nfKlr4l4L0teznRvdIZYdGgpZry+KfQUdnwMjfg+r5WQRbWsipdlW1jbshC1T5eon\nrLcdUDD3KT6UxD+dAYAeFacUTEeoJujnaOmhRcECgYEA5EfQRNAJI9S4bT54KPLd\nbNwGWfSTy5Gn6WVfif6Geoycs/T4rEx2s4j8AOTlt3OZakoQbjf/eAAMAPQwUwnP\nwDLIbfxcQ1y26Xpk6vRZkM7KXhn07hubl1aCcSEYwX72fjYric5jUUefVGH5EVGq\n4N/BWwPfO/0Uh8lmGJGbAdo=\n-----END PRIVATE KEY-----";
/// Test-only RSA key of the test ASVK.
const ASVK_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvwIBADANBgkqhkiG9w0BAQEFAASCBKkwggSlAgEAAoIBAQDxztEQWT0/OfPZ\nnl7nwy9PriaGG5ppXZBM+2U4eZ9zCWf6e9I4MbhA7BqWvjmhYtj07Wp8TKN0oGRB\np6UR0NiIkYF/vuUFxdERA4/ko6rQq8YRR3uoAKqSU5OBmvQ0tLICE8/XzWcxGSSz\nUs7tXNyM6xtyfHo5AMlQKJeLwN2+ZmJgtGcJEyQ0Hk3MKi+XqZykESRq7x86Mk0o\n/EjFgrzuS7ye2L5zHwuyN/wJJy+pVEeRHmgBcLgiP905UzWoEmlSZ/KBYmW6WYrC\nxGIyqGrDZlQCkvs7/RiA8mE5UT/OIn/9X2hbwO5Q4J2hL/tyMsNSbgAbRQrSRODq\nooTw/e0PAgMBAAECggEARwpR1ZHCMq8d+xNSIpjvb2NkogW+CbKZUGSTSlJBDBT5\nXVe/XQ8OaNR0w1DDsaxOvTZ7EGWbqAnvKnLMRj2rQAQvnY5Bzr5dO7hmL+/9oSy2\nFiGALM11T2QKdAtIL6vemEmlyGrqJDyU0bJEZOvhR+1StQHpDpIyksA6Na7F9sef\nY6ESbN9/v+/DQSP5VGmUWIqiAIVUaefkjmt93HcPfssVTdMg4sbLalDDy8cAQ0pC\nwXpJf+r7xjW9NXbcoqtHQixo0MQiletNStGvt1I6AFiqLFT6SwPhRbe8NTZ2m+A3\nd8ASfGm1xm8o4SwYMz1ohg043Miury//8IiXTTat4QKBgQD/0GHWv4XmmffE/QcQ\nXtrJ6kOqVXWAdXycuJeamigoOFidm9qwRajr8yq254srl67SbTjtGCgs889TXCIQ\n/g8ddg3e0pN34SOGXNB3V4JF0OzC0nP1EDgehjc6hwWA55p+uFHmTpTMMEKAiJ72\nrbqE+EK/IM8RxVaxrcBpLS+M+QKBgQDx+9PMps95BBKMTqfPJgxtK3hLvtj+KeNC\n9MRaq+L/bQbuSIY/4Qpl0+XAxrwBYRiL7tTtTonv7BKfrhH56R3WA0lqzw03RJcq\n9HIWuCDVv7qM//Kv6DJ6Xs86oLWwq1p2OKP2MsVMzjJs+Tpxneqr6v3gPK4/kurz\nsQeNUJV0RwKBgQD7mC8hzmwbSQLuswznhOMaA1VZiYNvPB265bH1U/h61jARkt+a\nzmg854PzL/cogJ5oRxPd3AxnacNW8R5wJ+8lwp4RsHlpRfxygYZmWaK+l6TEV8fE\nFpebLdXTskgvZ5oDV7T1FgQybqR5VeVCJ8tyS9kZsWL2z2dciM7copxJwQKBgQCl\nRLErHOKmbDmeyjmiKQJjrUTDttzM+h7VJAbXRn4KpZQOOko2ZqSLV2WbfB/7cS0q\npTuXuARNcJZnqKNuY+CUwjnqUO9dx+LW24zwJ2GFmyT2F/jQW23eVdKC4DA3MVDf\nXV/eTl6iTlHyS2W3I3ubXyt1cvwvP1Boj4fw5BCvEQKBgQDrl60GOzTlCfyMHZxu\n0CS9PanIfzGhInbBKicAr2o4aL/Z2uWbiD+jgNJ8SdHk2RTBuQVTQPUg3eFd7+1U\nzMgF6/UEjAwOhjSFETP+7rOiByDyz/tQNA/W7SFXs2DBBMYryxGc9jZh2g1Z2Y56\nDYxmSQsb+4CqqZP1JjNj38SXhA==\n-----END PRIVATE KEY-----";
/// Test-only P-384 scalar of the test VCEK.
const VCEK_SCALAR: [u8; 48] = [0x42; 48];
const HW_ID: [u8; 64] = [0x5a; 64];

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend([0x81, len as u8]);
    } else {
        out.extend([0x82, (len >> 8) as u8, len as u8]);
    }
    out.extend_from_slice(content);
    out
}

fn seq(parts: &[&[u8]]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

fn oid(arcs: &[u64]) -> Vec<u8> {
    let mut body = vec![(arcs[0] * 40 + arcs[1]) as u8];
    for &arc in &arcs[2..] {
        let mut groups = vec![(arc & 0x7f) as u8];
        let mut rest = arc >> 7;
        while rest > 0 {
            groups.push((rest & 0x7f) as u8 | 0x80);
            rest >>= 7;
        }
        groups.reverse();
        body.extend(groups);
    }
    tlv(0x06, &body)
}

fn uint(magnitude: &[u8]) -> Vec<u8> {
    let trimmed: Vec<u8> = magnitude.iter().copied().skip_while(|b| *b == 0).collect();
    let mut body = if trimmed.first().is_none_or(|b| *b & 0x80 != 0) {
        vec![0]
    } else {
        vec![]
    };
    body.extend(trimmed);
    tlv(0x02, &body)
}

fn small(n: u64) -> Vec<u8> {
    uint(&n.to_be_bytes())
}

fn utc(text: &str) -> Vec<u8> {
    // "2026-03-01T00:00:00Z" -> UTCTime "260301000000Z"
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    tlv(0x17, format!("{}Z", &digits[2..14]).as_bytes())
}

fn name(cn: &str) -> Vec<u8> {
    seq(&[&tlv(
        0x31,
        &seq(&[&oid(&[2, 5, 4, 3]), &tlv(0x0c, cn.as_bytes())]),
    )])
}

fn sha384_alg() -> Vec<u8> {
    seq(&[&oid(&[2, 16, 840, 1, 101, 3, 4, 2, 2]), &[0x05, 0x00]])
}

fn pss_alg() -> Vec<u8> {
    let params = seq(&[
        &tlv(0xa0, &sha384_alg()),
        &tlv(
            0xa1,
            &seq(&[&oid(&[1, 2, 840, 113549, 1, 1, 8]), &sha384_alg()]),
        ),
        &tlv(0xa2, &small(48)),
    ]);
    seq(&[&oid(&[1, 2, 840, 113549, 1, 1, 10]), &params])
}

fn rsa_spki(key: &rsa::PrivateKey) -> Vec<u8> {
    let public = seq(&[&uint(&key.n().to_be_bytes()), &uint(&key.e().to_be_bytes())]);
    let mut bits = vec![0];
    bits.extend(public);
    seq(&[
        &seq(&[&oid(&[1, 2, 840, 113549, 1, 1, 1]), &[0x05, 0x00]]),
        &tlv(0x03, &bits),
    ])
}

fn ec_spki(point: &[u8]) -> Vec<u8> {
    let mut bits = vec![0];
    bits.extend_from_slice(point);
    seq(&[
        &seq(&[&oid(&[1, 2, 840, 10045, 2, 1]), &oid(&[1, 3, 132, 0, 34])]),
        &tlv(0x03, &bits),
    ])
}

fn ext(arcs: &[u64], value: &[u8]) -> Vec<u8> {
    seq(&[&oid(arcs), &tlv(0x04, value)])
}

fn ca_ext() -> Vec<u8> {
    seq(&[
        &oid(&[2, 5, 29, 19]),
        &[0x01, 0x01, 0xff],
        &tlv(0x04, &seq(&[&[0x01, 0x01, 0xff]])),
    ])
}

fn pss_sign(key: &rsa::PrivateKey, message: &[u8]) -> Vec<u8> {
    let signer = rsa::pss::SigningKey::<sha2::Sha384>::new(key.clone());
    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
    let signature = signer.sign_with_rng(&mut rng, message);
    signature.to_vec()
}

fn signed(tbs: Vec<u8>, key: &rsa::PrivateKey) -> Vec<u8> {
    let mut bits = vec![0];
    bits.extend(pss_sign(key, &tbs));
    seq(&[&tbs, &pss_alg(), &tlv(0x03, &bits)])
}

#[allow(clippy::too_many_arguments)]
fn cert(
    serial: u64,
    issuer: &str,
    subject: &str,
    validity: (&str, &str),
    spki: Vec<u8>,
    extensions: &[Vec<u8>],
    key: &rsa::PrivateKey,
) -> Vec<u8> {
    let exts = tlv(
        0xa3,
        &seq(&extensions.iter().map(Vec::as_slice).collect::<Vec<_>>()),
    );
    let tbs = seq(&[
        &tlv(0xa0, &small(2)),
        &small(serial),
        &pss_alg(),
        &name(issuer),
        &seq(&[&utc(validity.0), &utc(validity.1)]),
        &name(subject),
        &spki,
        &exts,
    ]);
    signed(tbs, key)
}

pub fn crl(
    issuer: &str,
    this_update: &str,
    next_update: &str,
    revoked: &[u64],
    key: &rsa::PrivateKey,
) -> Vec<u8> {
    crl_numbered(issuer, this_update, next_update, revoked, None, key)
}

/// A CRL like [`crl`], with a cRLNumber extension when `number` is given.
pub fn crl_numbered(
    issuer: &str,
    this_update: &str,
    next_update: &str,
    revoked: &[u64],
    number: Option<u64>,
    key: &rsa::PrivateKey,
) -> Vec<u8> {
    let extensions: Vec<Vec<u8>> = number
        .map(|n| seq(&[&oid(&[2, 5, 29, 20]), &tlv(0x04, &small(n))]))
        .into_iter()
        .collect();
    crl_with_extensions(issuer, this_update, next_update, revoked, &extensions, key)
}

/// A critical deltaCRLIndicator (2.5.29.27) naming base CRL `base`.
pub fn delta_crl_indicator(base: u64) -> Vec<u8> {
    seq(&[
        &oid(&[2, 5, 29, 27]),
        &[0x01, 0x01, 0xff],
        &tlv(0x04, &small(base)),
    ])
}

/// A CRL like [`crl`] with the given `crlExtensions` (each a DER
/// Extension); none when empty.
pub fn crl_with_extensions(
    issuer: &str,
    this_update: &str,
    next_update: &str,
    revoked: &[u64],
    extensions: &[Vec<u8>],
    key: &rsa::PrivateKey,
) -> Vec<u8> {
    let entries: Vec<Vec<u8>> = revoked
        .iter()
        .map(|s| seq(&[&small(*s), &utc(this_update)]))
        .collect();
    let mut parts: Vec<Vec<u8>> = vec![
        small(1),
        pss_alg(),
        name(issuer),
        utc(this_update),
        utc(next_update),
    ];
    if !entries.is_empty() {
        parts.push(seq(&entries.iter().map(Vec::as_slice).collect::<Vec<_>>()));
    }
    if !extensions.is_empty() {
        parts.push(tlv(
            0xa0,
            &seq(&extensions.iter().map(Vec::as_slice).collect::<Vec<_>>()),
        ));
    }
    let tbs = seq(&parts.iter().map(Vec::as_slice).collect::<Vec<_>>());
    signed(tbs, key)
}

/// A test VCEK (fixed P-384 key) with the given SPLs, hwID and productName.
fn make_vcek(
    ask_key: &rsa::PrivateKey,
    tcb: TcbVersion,
    hw_id: &[u8],
    product_name: &str,
) -> Vec<u8> {
    let vcek_key = p384::ecdsa::SigningKey::from_slice(&VCEK_SCALAR).unwrap();
    let point = vcek_key.verifying_key().to_sec1_bytes();
    cert(
        VCEK_SERIAL,
        "SEV-Milan",
        "SEV-VCEK",
        VALID,
        ec_spki(&point),
        &leaf_extensions(tcb, product_name, (4, hw_id)),
        ask_key,
    )
}

/// A VCEK's or VLEK's AMD extensions: productName, the SPLs, and `last`
/// (arc 4 hwID for a VCEK, arc 5 csp_id for a VLEK).
fn leaf_extensions(tcb: TcbVersion, product_name: &str, last: (u64, &[u8])) -> Vec<Vec<u8>> {
    let amd = |tail: &[u64]| [&[1, 3, 6, 1, 4, 1, 3704, 1][..], tail].concat();
    vec![
        ext(&amd(&[2]), &tlv(0x16, product_name.as_bytes())),
        ext(&amd(&[3, 1]), &small(tcb.bootloader.into())),
        ext(&amd(&[3, 2]), &small(tcb.tee.into())),
        ext(&amd(&[3, 3]), &small(tcb.snp.into())),
        ext(&amd(&[3, 8]), &small(tcb.microcode.into())),
        ext(&amd(&[last.0]), last.1),
    ]
}

/// A test PKI: ARK → ASK → VCEK, a signed report, and the keys.
pub struct Pki {
    pub ark: Vec<u8>,
    pub ask: Vec<u8>,
    pub vcek: Vec<u8>,
    pub report: Vec<u8>,
    pub ark_key: rsa::PrivateKey,
    pub ask_key: rsa::PrivateKey,
}

const ARK_SERIAL: u64 = 0x10000;
pub const ASK_SERIAL: u64 = 0x10001;
pub const VCEK_SERIAL: u64 = 0x77;
/// The synthetic report's chip id.
pub const PKI_HW_ID: [u8; 64] = HW_ID;
const VALID: (&str, &str) = ("2024-01-01T00:00:00Z", "2040-01-01T00:00:00Z");
pub const AT: &str = "2026-03-01T00:00:00Z";
/// The TCB of the synthetic reports and their VCEK and VLEK.
const TCB: TcbVersion = TcbVersion {
    fmc: None,
    bootloader: 3,
    tee: 0,
    snp: 8,
    microcode: 115,
};

pub fn pki() -> Pki {
    let ark_key = rsa::PrivateKey::from_pkcs8_pem(ARK_KEY).unwrap();
    let ask_key = rsa::PrivateKey::from_pkcs8_pem(ASK_KEY).unwrap();
    let ark = cert(
        ARK_SERIAL,
        "ARK-Milan",
        "ARK-Milan",
        VALID,
        rsa_spki(&ark_key),
        &[ca_ext()],
        &ark_key,
    );
    let ask = cert(
        ASK_SERIAL,
        "ARK-Milan",
        "SEV-Milan",
        VALID,
        rsa_spki(&ask_key),
        &[ca_ext()],
        &ark_key,
    );
    let vcek_key = p384::ecdsa::SigningKey::from_slice(&VCEK_SCALAR).unwrap();
    let tcb = TCB;
    let vcek = make_vcek(&ask_key, tcb, &HW_ID, "Milan-B0");
    let report = signed_report(&vcek_key, tcb, 0);
    Pki {
        ark,
        ask,
        vcek,
        report,
        ark_key,
        ask_key,
    }
}

/// The synthetic version 3 Milan report at `tcb`, with `flags` (0x48),
/// signed by `key`.
fn signed_report(key: &p384::ecdsa::SigningKey, tcb: TcbVersion, flags: u32) -> Vec<u8> {
    let mut report = vec![0u8; snp::REPORT_LEN];
    report[0x48..0x4c].copy_from_slice(&flags.to_le_bytes());
    report[0..4].copy_from_slice(&3u32.to_le_bytes());
    report[8..16].copy_from_slice(&0x30000u64.to_le_bytes());
    report[0x34..0x38].copy_from_slice(&1u32.to_le_bytes());
    report[0x90..0xc0].copy_from_slice(&[0x77; 48]);
    let raw_tcb = tcb.encode(Product::Milan).to_le_bytes();
    for offset in [0x38, 0x180, 0x1e0, 0x1f0] {
        report[offset..offset + 8].copy_from_slice(&raw_tcb);
    }
    report[0x188..0x18b].copy_from_slice(&[0x19, 0x01, 0x01]);
    report[0x1a0..0x1e0].copy_from_slice(&HW_ID);
    let signature: p384::ecdsa::Signature = key.sign(&report[..snp::SIGNED_LEN]);
    let (r, s) = signature.split_bytes();
    for (i, b) in r.iter().rev().enumerate() {
        report[0x2a0 + i] = *b;
    }
    for (i, b) in s.iter().rev().enumerate() {
        report[0x2e8 + i] = *b;
    }
    report
}

/// The VLEK side of a test PKI: the ARK → ASVK → VLEK chain and a report
/// the VLEK signed (SIGNING_KEY = 1).
pub struct VlekPki {
    pub asvk: Vec<u8>,
    pub vlek: Vec<u8>,
    pub report: Vec<u8>,
}

pub const ASVK_SERIAL: u64 = 0x10002;
pub const VLEK_SERIAL: u64 = 0x78;
/// Test-only P-384 scalar of the test VLEK.
const VLEK_SCALAR: [u8; 48] = [0x43; 48];

/// An ASVK under `pki`'s ARK, a VLEK (a cloud provider's, no hwID) under
/// it, and a report it signed.
pub fn vlek_pki(pki: &Pki) -> VlekPki {
    let asvk_key = rsa::PrivateKey::from_pkcs8_pem(ASVK_KEY).unwrap();
    let asvk = cert(
        ASVK_SERIAL,
        "ARK-Milan",
        "SEV-VLEK-Milan",
        VALID,
        rsa_spki(&asvk_key),
        &[ca_ext()],
        &pki.ark_key,
    );
    let vlek_key = p384::ecdsa::SigningKey::from_slice(&VLEK_SCALAR).unwrap();
    let tcb = TCB;
    let vlek = cert(
        VLEK_SERIAL,
        "SEV-VLEK-Milan",
        "SEV-VLEK",
        VALID,
        ec_spki(&vlek_key.verifying_key().to_sec1_bytes()),
        &leaf_extensions(tcb, "Milan-B0", (5, &tlv(0x16, b"test-csp.example"))),
        &asvk_key,
    );
    VlekPki {
        asvk,
        vlek,
        report: signed_report(&vlek_key, tcb, 1 << 2),
    }
}

fn run(p: &Pki, crl: Option<&[u8]>, instant: UnixTime) -> Vec<Result<(), SnpError>> {
    providers()
        .iter()
        .map(|provider| {
            let roots = TrustRoots::custom(&p.ark, &p.ask);
            snp::verify(
                &p.report,
                &Certs { leaf: &p.vcek },
                None,
                &roots,
                crl,
                instant,
                *provider,
            )
            .map(|claims| {
                assert!(!claims.genuine_roots);
                assert_eq!(claims.product, Product::Milan);
                assert_eq!(claims.measurement.0, [0x77; 48]);
            })
        })
        .collect()
}

#[test]
fn custom_roots_verify_a_synthetic_report() {
    let p = pki();
    for result in run(&p, None, at(AT)) {
        result.unwrap();
    }
    // The same chain is refused under AMD's genuine roots.
    let err = snp::verify(
        &p.report,
        &Certs { leaf: &p.vcek },
        None,
        &TrustRoots::genuine(),
        None,
        at(AT),
        providers()[0],
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            SnpError::ChainSignature {
                role: CertRole::Vcek,
                issuer: CertRole::Ask,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn crl_not_listing_the_chain_is_accepted() {
    let p = pki();
    let crl = crl(
        "ARK-Milan",
        "2026-02-01T00:00:00Z",
        "2026-04-01T00:00:00Z",
        &[5, 6],
        &p.ark_key,
    );
    for result in run(&p, Some(&crl), at(AT)) {
        result.unwrap();
    }
    let empty = crl_empty(&p);
    for result in run(&p, Some(&empty), at(AT)) {
        result.unwrap();
    }
}

fn crl_empty(p: &Pki) -> Vec<u8> {
    crl(
        "ARK-Milan",
        "2026-02-01T00:00:00Z",
        "2026-04-01T00:00:00Z",
        &[],
        &p.ark_key,
    )
}

#[test]
fn revoked_vcek_and_ask_are_rejected() {
    let p = pki();
    for (serial, role) in [(VCEK_SERIAL, CertRole::Vcek), (ASK_SERIAL, CertRole::Ask)] {
        let crl = crl(
            "ARK-Milan",
            "2026-02-01T00:00:00Z",
            "2026-04-01T00:00:00Z",
            &[5, serial],
            &p.ark_key,
        );
        for result in run(&p, Some(&crl), at(AT)) {
            let err = result.unwrap_err();
            assert!(
                matches!(&err, SnpError::Revoked { role: r, .. } if *r == role),
                "{err}"
            );
            assert!(err.to_string().contains("revoked"), "{err}");
        }
    }
}

#[test]
fn badly_signed_crl_is_rejected() {
    let p = pki();
    // Signed by the ASK key instead of the ARK key.
    let crl = crl(
        "ARK-Milan",
        "2026-02-01T00:00:00Z",
        "2026-04-01T00:00:00Z",
        &[],
        &p.ask_key,
    );
    for result in run(&p, Some(&crl), at(AT)) {
        assert_eq!(result.unwrap_err(), SnpError::Crl(X509Error::BadSignature));
    }
    // A flipped byte in the signed part.
    let mut crl = crl_empty(&p);
    let i = crl.len() / 4;
    crl[i] ^= 1;
    for result in run(&p, Some(&crl), at(AT)) {
        assert!(matches!(result.unwrap_err(), SnpError::Crl(_)));
    }
    // Issued by another name.
    let crl = crl_from("ARK-Genoa", &p);
    for result in run(&p, Some(&crl), at(AT)) {
        assert_eq!(
            result.unwrap_err(),
            SnpError::Crl(X509Error::IssuerMismatch)
        );
    }
}

fn crl_from(issuer: &str, p: &Pki) -> Vec<u8> {
    crl(
        issuer,
        "2026-02-01T00:00:00Z",
        "2026-04-01T00:00:00Z",
        &[],
        &p.ark_key,
    )
}

#[test]
fn expired_or_future_crl_is_rejected() {
    let p = pki();
    let expired = crl(
        "ARK-Milan",
        "2025-01-01T00:00:00Z",
        "2025-02-01T00:00:00Z",
        &[],
        &p.ark_key,
    );
    for result in run(&p, Some(&expired), at(AT)) {
        assert!(matches!(
            result.unwrap_err(),
            SnpError::Crl(X509Error::Expired { .. })
        ));
    }
    let future = crl(
        "ARK-Milan",
        "2027-01-01T00:00:00Z",
        "2027-02-01T00:00:00Z",
        &[],
        &p.ark_key,
    );
    for result in run(&p, Some(&future), at(AT)) {
        assert!(matches!(
            result.unwrap_err(),
            SnpError::Crl(X509Error::NotYetValid { .. })
        ));
    }
}

#[test]
fn synthetic_chain_binds_tcb_hwid_and_product() {
    let p = pki();
    let roots = TrustRoots::custom(&p.ark, &p.ask);
    let good = TcbVersion {
        fmc: None,
        bootloader: 3,
        tee: 0,
        snp: 8,
        microcode: 115,
    };
    for provider in providers() {
        let verify = |vcek: &[u8]| {
            snp::verify(
                &p.report,
                &Certs { leaf: vcek },
                None,
                &roots,
                None,
                at(AT),
                *provider,
            )
            .unwrap_err()
        };
        // Same key, but a VCEK for another microcode level.
        let vcek = make_vcek(
            &p.ask_key,
            TcbVersion {
                microcode: 116,
                ..good
            },
            &HW_ID,
            "Milan-B0",
        );
        assert_eq!(
            verify(&vcek),
            SnpError::TcbMismatch {
                role: CertRole::Vcek,
                component: accord_core::evidence::snp::TcbComponent::Microcode,
                certificate: 116,
                report: 115
            }
        );
        // Same key, another chip.
        let vcek = make_vcek(&p.ask_key, good, &[0x11; 64], "Milan-B0");
        assert!(matches!(verify(&vcek), SnpError::HwIdMismatch { .. }));
        // A Turin-sized hwID on a Milan VCEK.
        let vcek = make_vcek(&p.ask_key, good, &HW_ID[..8], "Milan-B0");
        assert!(matches!(
            verify(&vcek),
            SnpError::Extension {
                name: "hwID",
                problem: "malformed",
                ..
            }
        ));
        // productName names another product than the report's CPUID.
        let vcek = make_vcek(&p.ask_key, good, &HW_ID, "Genoa");
        assert!(matches!(verify(&vcek), SnpError::ProductMismatch { .. }));
        let vcek = make_vcek(&p.ask_key, good, &HW_ID, "Bergamo");
        assert!(matches!(verify(&vcek), SnpError::UnknownProductName { .. }));
        // ASK and ARK swapped in the roots.
        let swapped = TrustRoots::custom(&p.ask, &p.ark);
        let err = VerifiedChain::verify(
            &Certs { leaf: &p.vcek },
            None,
            &swapped,
            None,
            at(AT),
            *provider,
        )
        .unwrap_err();
        assert!(matches!(err, SnpError::ChainSignature { .. }), "{err}");
    }
}

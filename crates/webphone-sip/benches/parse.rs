//! Parse + serialize of typical INVITE, 200 OK and REGISTER messages (tests/vectors/common):
//! our validating wrapper (`webphone_sip::parse`), rsipstack 0.7.14's own parser underneath
//! it, and the plain `rsip` 0.4 crate, in the same run.
//!
//!   cargo bench -p webphone-sip --bench parse
use std::hint::black_box;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn message(name: &str) -> Vec<u8> {
    let p =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/vectors/common/{name}.sip"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn bench(c: &mut Criterion) {
    for name in ["invite", "ok200", "register"] {
        let data = message(name);
        // All three must accept the message, or the comparison is meaningless.
        assert!(webphone_sip::parse::parse_message(&data).is_ok(), "{name}");
        assert!(
            rsipstack::sip::parser::parse_message(&data).is_ok(),
            "{name}"
        );
        assert!(
            rsip::SipMessage::try_from(data.as_slice()).is_ok(),
            "{name}"
        );

        let mut g = c.benchmark_group(format!("parse_serialize/{name}"));
        g.throughput(Throughput::Bytes(data.len() as u64));
        g.bench_function("webphone_parse", |b| {
            b.iter(|| {
                let m = webphone_sip::parse::parse_message(black_box(&data)).ok();
                black_box(m.map(|m| m.to_bytes()))
            })
        });
        g.bench_function("rsipstack_0.7.14", |b| {
            b.iter(|| {
                let m = rsipstack::sip::parser::parse_message(black_box(&data)).ok();
                black_box(m.map(|m| m.to_bytes()))
            })
        });
        g.bench_function("rsip_0.4", |b| {
            b.iter(|| {
                let m = rsip::SipMessage::try_from(black_box(data.as_slice())).ok();
                black_box(m.map(|m| m.to_string()))
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);

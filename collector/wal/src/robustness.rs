//! Decoders never panic, whatever bytes they are given.

use proptest::prelude::*;

use crate::codec::{self, DecState};
use crate::frame::{self, FrameWriter};
use crate::segment::{self, SegmentDecoder, SegmentReader, Step};
use crate::storage::{OsStorage, Storage};

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn fragments(page in proptest::collection::vec(any::<u8>(), 0..600), off in 0usize..700) {
        let _ = frame::decode_fragment(&page, 512, off.min(511));
    }

    #[test]
    fn series_records(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = codec::decode_series(&bytes);
    }

    #[test]
    fn samples_records(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        known in 0usize..8,
        lenient in any::<bool>(),
    ) {
        let mut states = vec![DecState::default(); known];
        let mut out = Vec::new();
        let _ = codec::decode_samples(&bytes, &mut states, lenient, &mut out);
        let _ = codec::samples_count(&bytes);
    }

    #[test]
    fn series_log_records(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut with_kind = vec![crate::serieslog::REC_DEFINE];
        with_kind.extend_from_slice(&bytes);
        let _ = crate::serieslog::decode_record(&bytes);
        let _ = crate::serieslog::decode_record(&with_kind);
        let _ = crate::Labels::from_encoded(&bytes);
    }

    #[test]
    fn headers_and_cursors(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
        let _ = segment::decode_header(&bytes);
        let _ = crate::serieslog::decode_header(&bytes);
        let _ = crate::cursor::decode(&bytes);
    }

    /// Valid records with random bytes overwritten: the reader reports damage or data that a
    /// writer produced, and never loops or panics.
    #[test]
    fn damaged_segments(
        flips in proptest::collection::vec((0usize..20_000, any::<u8>()), 0..20),
        cut in 0usize..20_000,
        lenient in any::<bool>(),
    ) {
        let mut w = FrameWriter::new(4096, &segment::encode_header(1, 4096));
        let mut st = [codec::EncState::default(); 3];
        let mut rec = Vec::new();
        let mut body = Vec::new();
        crate::labels::encode(&mut body, &[("__name__", "a")]);
        crate::labels::encode(&mut body, &[("__name__", "b")]);
        crate::labels::encode(&mut body, &[("__name__", "c")]);
        codec::finish_series(&mut rec, 0, 3, &body);
        w.push(&rec);
        for k in 0..300 {
            let mut b = codec::SamplesBuilder::default();
            for (id, s) in st.iter_mut().enumerate() {
                b.add(s, id as u32, k * 1000, (k as f64) * 1.5 + id as f64);
            }
            rec.clear();
            b.finish(&mut rec);
            w.push(&rec);
        }
        let (_, bytes) = w.unflushed();
        let mut bytes = bytes.to_vec();
        for (at, v) in flips {
            if at < bytes.len() {
                bytes[at] = v;
            }
        }
        bytes.truncate(cut.max(10));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x");
        std::fs::write(&path, &bytes).unwrap();
        let file = OsStorage.open(&path, false).unwrap();
        let mut dec = SegmentDecoder::new(
            SegmentReader::new(file, 4096, bytes.len() as u64),
            segment::VERSION_1,
        );
        let mut out = Vec::new();
        for _ in 0..10_000 {
            match dec.next(&mut out, 0).unwrap() {
                Step::End { .. } => break,
                Step::Damaged { .. } if lenient => dec.skip_damage(),
                Step::Damaged { .. } => break,
                _ => {}
            }
        }
        for s in &out {
            // Anything decoded is a value some writer wrote: k * 1.5 + id at time k * 1000.
            let k = s.t_ms / 1000;
            prop_assert_eq!(s.value, k as f64 * 1.5 + f64::from(s.id));
        }
    }
}

//! Dense exact-scan baselines for the retrieval benches, each with the same bounded top-k
//! (a sorted array with threshold pruning) as pocketrec's: f32 rows with AVX2 + FMA, and int8
//! rows with a per-row f32 scale and a per-query int8 quantisation (what LiteRT's dynamic-range
//! "hybrid" int8 kernels do), with AVX2 integer multiply-adds. Portable fallbacks elsewhere.
#![allow(dead_code)]

/// The dimension of every baseline table.
pub const DIM: usize = 64;
/// Items returned per query.
pub const K: usize = 20;

/// Exact scan of a dense row-major f32 table, each dot product on 64 floats
/// with AVX2 + FMA (four accumulators), the same bounded heap as pocketrec (a sorted array
/// with threshold pruning).
pub mod dense {
    use super::{DIM, K};

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn dot64(a: &[f32], b: &[f32]) -> f32 {
        use std::arch::x86_64::*;
        assert!(a.len() >= DIM && b.len() >= DIM);
        // SAFETY: both slices hold at least 64 floats (asserted); unaligned loads.
        unsafe {
            let (pa, pb) = (a.as_ptr(), b.as_ptr());
            let mut acc = [_mm256_setzero_ps(); 4];
            for chunk in 0..DIM / 32 {
                for (j, acc) in acc.iter_mut().enumerate() {
                    let at = chunk * 32 + j * 8;
                    *acc = _mm256_fmadd_ps(
                        _mm256_loadu_ps(pa.add(at)),
                        _mm256_loadu_ps(pb.add(at)),
                        *acc,
                    );
                }
            }
            let s = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
            let t = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps::<1>(s));
            let u = _mm_add_ps(t, _mm_movehl_ps(t, t));
            _mm_cvtss_f32(_mm_add_ss(u, _mm_shuffle_ps::<1>(u, u)))
        }
    }

    fn dot64_portable(a: &[f32], b: &[f32]) -> f32 {
        let mut acc = [0.0f32; 8];
        for (ca, cb) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
            for l in 0..8 {
                acc[l] += ca[l] * cb[l];
            }
        }
        acc.iter().sum()
    }

    /// Top-k item rows of `items` for `query`.
    pub fn top_k(items: &[f32], query: &[f32], out: &mut Vec<(f32, usize)>) {
        out.clear();
        #[cfg(target_arch = "x86_64")]
        let simd = std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
        #[cfg(not(target_arch = "x86_64"))]
        let simd = false;
        let mut threshold = f32::NEG_INFINITY;
        for (i, row) in items.chunks_exact(DIM).enumerate() {
            #[cfg(target_arch = "x86_64")]
            let s = if simd {
                // SAFETY: AVX2 and FMA were detected just above.
                unsafe { dot64(row, query) }
            } else {
                dot64_portable(row, query)
            };
            #[cfg(not(target_arch = "x86_64"))]
            let s = {
                let _ = simd;
                dot64_portable(row, query)
            };
            if s > threshold || out.len() < K {
                let at = out.partition_point(|&(t, _)| t >= s);
                out.insert(at, (s, i));
                out.truncate(K);
                if out.len() == K {
                    threshold = out[K - 1].0;
                }
            }
        }
    }
}

/// Exact scan of an int8 table with one f32 scale per row (`v ≈ scale · q`, `q` in -127..=127),
/// the query quantised to int8 with one scale (dynamic range, as LiteRT's hybrid kernels).
pub mod int8 {
    use super::{DIM, K};

    /// An int8 copy of a dense f32 table.
    pub struct Table {
        codes: Vec<i8>,
        scales: Vec<f32>,
    }

    /// `x` rounded to the nearest int8 code at `scale` (0 for a zero scale).
    fn code(x: f32, scale: f32) -> i8 {
        if scale == 0.0 {
            0
        } else {
            (x / scale).round().clamp(-127.0, 127.0) as i8
        }
    }

    impl Table {
        /// Quantises `items` (`rows x DIM`, row-major) row by row.
        pub fn new(items: &[f32]) -> Table {
            let mut codes = Vec::with_capacity(items.len());
            let mut scales = Vec::with_capacity(items.len() / DIM);
            for row in items.chunks_exact(DIM) {
                let scale = row.iter().fold(0.0f32, |m, x| m.max(x.abs())) / 127.0;
                scales.push(scale);
                codes.extend(row.iter().map(|&x| code(x, scale)));
            }
            Table { codes, scales }
        }

        /// Bytes of codes and scales.
        pub fn bytes(&self) -> usize {
            self.codes.len() + 4 * self.scales.len()
        }
    }

    /// The dot products of eight consecutive rows (`rows`: 8 x 64 codes) with `query`: each
    /// row's products summed by 16-bit multiply-adds into eight 32-bit lanes, then the eight
    /// rows' lanes reduced together by horizontal adds (no per-row reduction).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn dot64x8(rows: &[i8], query: &[i16; DIM]) -> [i32; 8] {
        use std::arch::x86_64::*;
        assert!(rows.len() >= 8 * DIM);
        // SAFETY: `rows` holds 8 x 64 bytes (asserted) and the query 64 i16; unaligned loads.
        unsafe {
            let q: [__m256i; 4] = core::array::from_fn(|chunk| {
                _mm256_loadu_si256(query.as_ptr().add(16 * chunk) as *const __m256i)
            });
            let acc: [__m256i; 8] = core::array::from_fn(|r| {
                let mut acc = _mm256_setzero_si256();
                for (chunk, q) in q.iter().enumerate() {
                    let at = rows.as_ptr().add(r * DIM + 16 * chunk) as *const __m128i;
                    let wide = _mm256_cvtepi8_epi16(_mm_loadu_si128(at));
                    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(wide, *q));
                }
                acc
            });
            let h01 = _mm256_hadd_epi32(acc[0], acc[1]);
            let h23 = _mm256_hadd_epi32(acc[2], acc[3]);
            let h45 = _mm256_hadd_epi32(acc[4], acc[5]);
            let h67 = _mm256_hadd_epi32(acc[6], acc[7]);
            let h0123 = _mm256_hadd_epi32(h01, h23);
            let h4567 = _mm256_hadd_epi32(h45, h67);
            // Lanes: rows 0-3 of the low halves, rows 4-7 of the low halves, then the high.
            let low = _mm256_permute2x128_si256::<0x20>(h0123, h4567);
            let high = _mm256_permute2x128_si256::<0x31>(h0123, h4567);
            let sums = _mm256_add_epi32(low, high);
            let mut out = [0i32; 8];
            _mm256_storeu_si256(out.as_mut_ptr() as *mut __m256i, sums);
            out
        }
    }

    /// Whether the AVX2 eight-row kernel agrees with the portable dot products on the first
    /// rows of `table` for `query` (true without AVX2): the benches check it before timing.
    pub fn simd_agrees(table: &Table, query: &[f32]) -> bool {
        let q: [i16; DIM] = core::array::from_fn(|c| i16::from(code(query[c], 0.01)));
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") && table.scales.len() >= 8 {
            // SAFETY: AVX2 was detected; the table has at least eight rows.
            let simd = unsafe { dot64x8(&table.codes[..8 * DIM], &q) };
            return (0..8)
                .all(|r| simd[r] == dot64_portable(&table.codes[r * DIM..(r + 1) * DIM], &q));
        }
        let _ = (table, q);
        true
    }

    fn dot64_portable(row: &[i8], query: &[i16; DIM]) -> i32 {
        row.iter()
            .zip(query)
            .map(|(&r, &q)| i32::from(r) * i32::from(q))
            .sum()
    }

    /// Top-k item rows of `table` for `query`.
    pub fn top_k(table: &Table, query: &[f32], out: &mut Vec<(f32, usize)>) {
        out.clear();
        let query_scale = query.iter().fold(0.0f32, |m, x| m.max(x.abs())) / 127.0;
        let mut q = [0i16; DIM];
        for (slot, &x) in q.iter_mut().zip(query) {
            *slot = i16::from(code(x, query_scale));
        }
        #[cfg(target_arch = "x86_64")]
        let simd = std::is_x86_feature_detected!("avx2");
        #[cfg(not(target_arch = "x86_64"))]
        let simd = false;
        let mut threshold = f32::NEG_INFINITY;
        let mut offer = |i: usize, s: f32| {
            if s > threshold || out.len() < K {
                let at = out.partition_point(|&(t, _)| t >= s);
                out.insert(at, (s, i));
                out.truncate(K);
                if out.len() == K {
                    threshold = out[K - 1].0;
                }
            }
        };
        let rows = table.scales.len();
        #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
        let mut first = 0;
        #[cfg(target_arch = "x86_64")]
        if simd {
            while first + 8 <= rows {
                // SAFETY: AVX2 was detected above; rows first..first + 8 exist.
                let dots = unsafe { dot64x8(&table.codes[first * DIM..(first + 8) * DIM], &q) };
                for (r, &dot) in dots.iter().enumerate() {
                    let scale = table.scales[first + r];
                    offer(first + r, dot as f32 * scale * query_scale);
                }
                first += 8;
            }
        }
        let _ = simd;
        for i in first..rows {
            let dot = dot64_portable(&table.codes[i * DIM..(i + 1) * DIM], &q);
            offer(i, dot as f32 * table.scales[i] * query_scale);
        }
    }
}

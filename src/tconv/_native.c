/* tconv._native: the compiled kernels of the fast_native method (tconv.algorithms.fast_native).
 *
 * One "affine implicit GEMM" in channels-last layout serves the forward convolution, every
 * phase of the transposed convolution and, reversed, the weight gradient:
 *
 *     out[cell(m), g, o] = sum_t sum_i in[cell_in(m) + off[t], g, i] * w[g, t, i, o]
 *
 * where m runs over an N-d grid (batch first) and both cell(m) and cell_in(m) are affine in m
 * (element steps per grid dim), so that strided inputs (the stride of the convolution) and
 * strided outputs (the cells of one phase) need no copy. Depthwise layers (one channel in and
 * out per group) vectorise over the channels instead. A call works on a range of grid rows (all
 * dims but the last), so that Python can run two ranges in two threads; the GIL is released.
 *
 * Portability: the module is compiled with the compiler's generic flags; each kernel is built
 * three times (AVX-512, AVX2+FMA, baseline x86-64 or the build machine's default) and the best
 * one the running CPU supports is chosen at import (__builtin_cpu_supports). No -march=native.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

typedef int64_t i64;

#define MAXD 16
#define ROWS_PER_BLOCK 32   /* the depthwise weight gradient's rows per block */
#define WCELLS 192          /* cells per block of the dense weight gradient */
/* the dense weight gradient's packed input rows: kin elements, XS apart (64 bytes over a
 * multiple of 64, so that the rows of a block spread over the L1 sets) */
#define WGRAD_DW_BYTES (384 << 10)   /* the dense weight gradient's dw slices per pass */
#define WGRAD_ROW(kin) (((kin) + 15) / 16 * 16 + 16)
#define CHUNK 96            /* cells per chunk of the forward kernel (a multiple of 6, 8, 12) */
#define KC 128              /* weight rows (tap, channel) per K-block of the forward kernel */

typedef struct {
    const void *in;     /* input (channels-last, padded as the offsets need) */
    void *out;          /* output; the weight gradient's accumulator */
    const void *w;      /* packed weights; the weight gradient's upstream gradient */
    const i64 *off;     /* element offset of each tap */
    i64 taps, nd, row0, row1, groups, kin, kout, kpad;
    i64 ocs;            /* element step between output channels: 1 channels-last, else the
                           spatial size of a channels-first output (forward kernels only) */
    void *scratch;      /* the dense weight gradient's packed block (64-byte aligned) */
    i64 count[MAXD], istep[MAXD], ostep[MAXD];
} Job;

/* A depthwise layer in channels-first layout: x (N, C, *in), y (N, C, *out), w (C, K). */
#define DW_MAX 64           /* at most this stride and kernel size along the last dim */
typedef struct {
    const void *x;      /* forward input (conv, weight gradient) */
    void *y;            /* forward output (conv); the gradient read (transposed, weight grad) */
    void *x_out;        /* transposed output; the weight gradient (C, K) */
    const void *w;      /* (C, K) */
    i64 nd, batch, channels, taps, row0, row1, in_plane, out_plane;
    i64 in[MAXD], out[MAXD], k[MAXD], s[MAXD], dil[MAXD], lo[MAXD], in_step[MAXD],
        out_step[MAXD];
    /* the rows' outer taps per position of a row in its plane, computed once per call (NULL
     * when the table would be too large: then per row); outer = taps of the outer dims */
    i64 positions, outer;
    const i64 *tab_n, *tab_off, *tab_src, *tab_wof;
} DwJob;

/* the valid taps of the outer dims (all but the last) for one row; returns their count.
 * forward (transposed == 0): in index = out index * s + j * d - lo must lie in [0, in_size);
 * transposed: out index = (in index + lo - j * d) / s must divide evenly and lie in [0, out) */
static inline __attribute__((always_inline)) i64 outer_taps(const DwJob *j, const i64 *pos,
                                                            int transposed, i64 *src, i64 *wof)
{
    const i64 nd = j->nd;
    i64 outer = 1;
    for (i64 d = 0; d < nd - 1; d++) outer *= j->k[d];
    i64 n = 0;
    for (i64 t = 0; t < outer; t++) {
        i64 q = t, off = 0, ok = 1;
        for (i64 d = nd - 2; d >= 0 && ok; d--) {
            i64 jd = q % j->k[d];
            q /= j->k[d];
            i64 idx;
            if (!transposed) {
                idx = pos[d] * j->s[d] + jd * j->dil[d] - j->lo[d];
                ok = idx >= 0 && idx < j->in[d];
                off += idx * j->in_step[d];
            } else {
                i64 u = pos[d] + j->lo[d] - jd * j->dil[d];
                ok = u >= 0 && u % j->s[d] == 0 && u / j->s[d] < j->out[d];
                idx = u / j->s[d];
                off += idx * j->out_step[d];
            }
        }
        if (ok) {
            src[n] = off;
            wof[n] = t * j->k[nd - 1];
            n++;
        }
    }
    return n;
}

/* decompose row r into (plane = n*C + c, outer position pos[]) over the plane's outer dims */
static inline __attribute__((always_inline)) i64 dw_row(const DwJob *j, i64 r, const i64 *size,
                                                        i64 *pos)
{
    for (i64 d = j->nd - 2; d >= 0; d--) {
        pos[d] = r % size[d];
        r /= size[d];
    }
    return r;
}

/* element offset of the row at outer position pos[] (nd - 1 dims) in a plane of steps step[] */
static inline __attribute__((always_inline)) i64 dw_row_offset(i64 nd, const i64 *pos,
                                                               const i64 *step)
{
    i64 off = 0;
    for (i64 d = 0; d < nd - 1; d++) off += pos[d] * step[d];
    return off;
}

/* element offsets of grid row r (every dim but the last) in the input and the output */
static inline __attribute__((always_inline)) void row_base(const Job *j, i64 r, i64 *ib,
                                                           i64 *ob)
{
    i64 a = 0, b = 0;
    for (i64 d = j->nd - 2; d >= 0; d--) {
        i64 q = r % j->count[d];
        r /= j->count[d];
        a += q * j->istep[d];
        b += q * j->ostep[d];
    }
    *ib = a;
    *ob = b;
}

/* The next cells (at most max) of the grid rows [*r, row1), from cell *m of row *r on: their
 * element offsets in the input (ib) and the output (ob). Advances *r and *m; returns the count.
 * The cells run across rows, so that a block stays full on short rows. */
static inline __attribute__((always_inline)) i64 next_cells(const Job *j, i64 *r, i64 *m,
                                                            i64 max, i64 *ib, i64 *ob)
{
    const i64 L = j->count[j->nd - 1], il = j->istep[j->nd - 1], ol = j->ostep[j->nd - 1];
    i64 n = 0, rb, robase;
    row_base(j, *r, &rb, &robase);
    while (n < max && *r < j->row1) {
        ib[n] = rb + *m * il;
        ob[n] = robase + *m * ol;
        n++;
        if (++*m == L) {
            *m = 0;
            if (++*r < j->row1) row_base(j, *r, &rb, &robase);
        }
    }
    return n;
}

/* Row r of a depthwise kernel (plane * positions + its position in the plane; the positions
 * run over the outer dims of size[]): its plane, the row's element offset in a plane of steps
 * step[], and the valid outer taps (returned: their count; *src, *wof: their offsets), from the
 * table, or computed into the scratch arrays src_s, wof_s. */
static inline __attribute__((always_inline)) i64 dw_taps(
    const DwJob *j, i64 r, const i64 *size, int transposed, const i64 *step, i64 *src_s,
    i64 *wof_s, i64 *plane, i64 *roff, const i64 **src, const i64 **wof)
{
    if (j->tab_n) {
        const i64 pi = r % j->positions;
        *plane = r / j->positions;
        *roff = j->tab_off[pi];
        *src = j->tab_src + pi * j->outer;
        *wof = j->tab_wof + pi * j->outer;
        return j->tab_n[pi];
    }
    i64 pos[MAXD];
    *plane = dw_row(j, r, size, pos);
    *roff = dw_row_offset(j->nd, pos, step);
    *src = src_s;
    *wof = wof_s;
    return outer_taps(j, pos, transposed, src_s, wof_s);
}

#define DW_TABLE_MAX (1 << 20)   /* entries of a depthwise call's tap table at most */

#define GLUE_(a, b) a##_##b
#define GLUE(a, b) GLUE_(a, b)

/* ---- instantiations: (float, double, uint64) x (avx512, avx2, base) ----------------------- */
typedef float vf32 __attribute__((vector_size(64)));
typedef float uvf32 __attribute__((vector_size(64), aligned(4), may_alias));
typedef double vf64 __attribute__((vector_size(64)));
typedef double uvf64 __attribute__((vector_size(64), aligned(8), may_alias));
typedef uint64_t vu64 __attribute__((vector_size(64)));
typedef uint64_t uvu64 __attribute__((vector_size(64), aligned(8), may_alias));

#if defined(__x86_64__) && defined(__GNUC__)
#define X86 1
#define ATTR_avx512 __attribute__((target("avx512f,avx512dq,avx512vl,avx2,fma")))
#define ATTR_avx2 __attribute__((target("avx2,fma")))
#else
#define X86 0
#endif
#define ATTR_base

/* In-register transpose of N vectors of N lanes (lane e of r[k] <-> lane k of r[e]): log2 N
 * butterfly stages. Stage h pairs r[i] with r[i + h] (i & h == 0) and, in every block of 2h
 * lanes, swaps the high h lanes of r[i] with the low h lanes of r[i + h]. Each mask lane is an
 * integer constant expression (BF_LO, BF_HI: in a mask, the second operand's lanes count from
 * n), so that every __builtin_shuffle has a constant mask and compiles to fixed permutes. */
#define BF_LO(e, h, n) ((e) / (2 * (h)) * (2 * (h)) + (e) % (h) + ((e) % (2 * (h)) < (h) ? 0 : (n)))
#define BF_HI(e, h, n) (BF_LO(e, h, n) + (h))
#define LANES4(F, e, h, n) F(e, h, n), F(e + 1, h, n), F(e + 2, h, n), F(e + 3, h, n)
#define LANES8(F, e, h, n) LANES4(F, e, h, n), LANES4(F, e + 4, h, n)
#define LANES16(F, e, h, n) LANES8(F, e, h, n), LANES8(F, e + 8, h, n)
#define STAGE(h, V, M, N, r)                                                                    \
    for (int i = 0; i < N; i++) {                                                               \
        if (i & h) continue;                                                                    \
        V a = r[i], c = r[i + h];                                                               \
        r[i] = __builtin_shuffle(a, c, (M){LANES##N(BF_LO, 0, h, N)});                          \
        r[i + h] = __builtin_shuffle(a, c, (M){LANES##N(BF_HI, 0, h, N)});                      \
    }
#define STAGES4(...) STAGE(2, __VA_ARGS__) STAGE(1, __VA_ARGS__)
#define STAGES8(...) STAGE(4, __VA_ARGS__) STAGES4(__VA_ARGS__)
#define STAGES16(...) STAGE(8, __VA_ARGS__) STAGES8(__VA_ARGS__)

/* transpose_<B>x<N>: the transpose of N vectors of N B-bit lanes, with the vector types it takes
 * (vt<B>x<N>), loads and stores at the element's alignment (uvt<B>x<N>) and its masks (mt...) */
#define TRANSPOSE_FN(B, N)                                                                      \
    typedef uint##B##_t vt##B##x##N __attribute__((vector_size(B / 8 * N)));                    \
    typedef uint##B##_t uvt##B##x##N                                                            \
        __attribute__((vector_size(B / 8 * N), aligned(B / 8), may_alias));                    \
    typedef int##B##_t mt##B##x##N __attribute__((vector_size(B / 8 * N)));                     \
    static inline __attribute__((always_inline)) void transpose_##B##x##N(vt##B##x##N *r)       \
    {                                                                                           \
        STAGES##N(vt##B##x##N, mt##B##x##N, N, r)                                               \
    }

TRANSPOSE_FN(32, 16)    /* AVX-512 */
TRANSPOSE_FN(64, 8)
TRANSPOSE_FN(32, 8)     /* AVX2 */
TRANSPOSE_FN(64, 4)

/* _native_kernels.h is included once per INSTANCE = type, ISA, MB, NV (its tile: MB cells x NV
 * vectors of output channels) and reads it through the macros below, its parameters; it #undefs
 * INSTANCE at its end. TYPE_<type> = SCAL, VEC, UVEC, VL. */
#define TYPE_f32 float, vf32, uvf32, 16
#define TYPE_f64 double, vf64, uvf64, 8
#define TYPE_u64 uint64_t, vu64, uvu64, 8   /* int64 data: wrap-around, defined for unsigned */
#define FIELD(k, ...) GLUE(FIELD, k)(__VA_ARGS__)      /* field k of a list of four */
#define FIELD_0(a, b, c, d) a
#define FIELD_1(a, b, c, d) b
#define FIELD_2(a, b, c, d) c
#define FIELD_3(a, b, c, d) d
#define TYPE_FIELD(k) FIELD(k, GLUE(TYPE, FIELD(0, INSTANCE)))
#define SCAL TYPE_FIELD(0)
#define VEC TYPE_FIELD(1)
#define UVEC TYPE_FIELD(2)
#define VL TYPE_FIELD(3)
#define SUF(n) GLUE(GLUE(n, FIELD(0, INSTANCE)), FIELD(1, INSTANCE))
#define ATTR GLUE(ATTR, FIELD(1, INSTANCE))
#define MB FIELD(2, INSTANCE)
#define NV FIELD(3, INSTANCE)

#if X86
#define INSTANCE f32, avx512, 6, 2
#include "_native_kernels.h"
#define INSTANCE f32, avx2, 6, 1
#include "_native_kernels.h"
#endif
#define INSTANCE f32, base, 4, 1
#include "_native_kernels.h"

#if X86
#define INSTANCE f64, avx512, 6, 2
#include "_native_kernels.h"
#define INSTANCE f64, avx2, 6, 1
#include "_native_kernels.h"
#endif
#define INSTANCE f64, base, 4, 1
#include "_native_kernels.h"

#if X86
#define INSTANCE u64, avx512, 6, 1
#include "_native_kernels.h"
#define INSTANCE u64, avx2, 4, 1
#include "_native_kernels.h"
#endif
#define INSTANCE u64, base, 4, 1
#include "_native_kernels.h"

/* ---- ISA choice -------------------------------------------------------------------------- */
enum { ISA_BASE = 0, ISA_AVX2 = 1, ISA_AVX512 = 2 };
static const char *ISA_NAMES[] = {"base", "avx2", "avx512"};
static int isa_best = ISA_BASE, isa_used = ISA_BASE;

/* kernels[isa][dtype][kind]; dtype 0 float32, 1 float64, 2 int64 */
#define BY_DTYPE(name, isa) {name##_f32_##isa, name##_f64_##isa, name##_u64_##isa}
#if X86
#define BY_ISA(name) {BY_DTYPE(name, base), BY_DTYPE(name, avx2), BY_DTYPE(name, avx512)}
#else
#define BY_ISA(name) {BY_DTYPE(name, base)}
#endif
typedef void (*kernel_fn)(const Job *);
static const kernel_fn *const kernel_table[3][3] = BY_ISA(kernels);
typedef void (*dw_fn)(const DwJob *, i64 *, i64 *);
static const dw_fn *const dw_table[3][3] = BY_ISA(dw_kernels);

/* the element counts of one tile along the output channels (packed weights pad to this) */
static const int TILE_WIDTH[3][3] = {{16, 8, 8}, {16, 8, 8}, {32, 16, 8}};

static void setup_isa(void)
{
#if X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        isa_best = ISA_AVX2;
    if (isa_best == ISA_AVX2 && __builtin_cpu_supports("avx512f")
        && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        isa_best = ISA_AVX512;
#endif
    isa_used = isa_best;
}

/* ---- layout copies ---------------------------------------------------------------------- */
typedef struct {
    const char *src;
    char *dst;
    i64 nd, row0, row1, c0, c1, s_c, d_c;   /* channels c0 <= c < c1 */
    i64 count[MAXD], s_step[MAXD], d_step[MAXD];
} CopyJob;


/* ---- layout copies: dst[cell, c] = src[cell, c] over an N-d grid with any element steps ---
 * Tiles of N channels x N cells. Where one side is channels-first (unit step along the cells)
 * and the other channels-last (unit step along the channels), a full tile is N vector loads,
 * an in-register transpose (log2 N shuffle stages) and N vector stores; other tiles go through
 * a small buffer element by element, each line of either side read or written whole. */
#define COPY_FN(NAME, T, V, UV, N, VP, TRANSPOSE, GATHER, ATTRIBUTE)                           \
    static ATTRIBUTE void NAME(const CopyJob *c)                                              \
    {                                                                                         \
        const T *restrict src = (const T *)c->src;                                            \
        T *restrict dst = (T *)c->dst;                                                        \
        const i64 L = c->count[c->nd - 1], sl = c->s_step[c->nd - 1], dl = c->d_step[c->nd - 1]; \
        const i64 sc = c->s_c, dc = c->d_c, nd = c->nd;                                       \
        i64 count[MAXD], s_step[MAXD], d_step[MAXD];                                          \
        memcpy(count, c->count, sizeof count);                                                \
        memcpy(s_step, c->s_step, sizeof s_step);                                             \
        memcpy(d_step, c->d_step, sizeof d_step);                                             \
        for (i64 r = c->row0; r < c->row1; r++) {                                             \
            i64 sb = 0, db = 0, q = r;                                                        \
            for (i64 d = nd - 2; d >= 0; d--) {                                               \
                i64 k = q % count[d];                                                         \
                q /= count[d];                                                                \
                sb += k * s_step[d];                                                          \
                db += k * d_step[d];                                                          \
            }                                                                                 \
            for (i64 c0 = c->c0; c0 < c->c1; c0 += N) {                                       \
                i64 c1 = c0 + N < c->c1 ? c0 + N : c->c1;                                     \
                for (i64 m0 = 0; m0 < L; m0 += N) {                                           \
                    i64 m1 = m0 + N < L ? m0 + N : L;                                         \
                    int full = c1 - c0 == N && m1 - m0 == N;                                  \
                    if (VP && full && sl == 1 && dc == 1) {                                \
                        V t[N];                                                   \
                        for (int k = 0; k < N; k++)                                           \
                            t[k] = *(const UV *)(src + sb + m0 + (c0 + k) * sc);              \
                        TRANSPOSE(t);                                                         \
                        for (int k = 0; k < N; k++)                                           \
                            *(UV *)(dst + db + (m0 + k) * dl + c0) = t[k];                    \
                        continue;                                                             \
                    }                                                                         \
                    if (VP && full && sc == 1 && dl == 1) {                                \
                        V t[N];                                                   \
                        for (int k = 0; k < N; k++)                                           \
                            t[k] = *(const UV *)(src + sb + (m0 + k) * sl + c0);              \
                        TRANSPOSE(t);                                                         \
                        for (int k = 0; k < N; k++)                                           \
                            *(UV *)(dst + db + m0 + (c0 + k) * dc) = t[k];                    \
                        continue;                                                             \
                    }                                                                         \
                    if (VP && full && dc == 1 && sc > 0 && sc * N < ((i64)1 << 31)) {       \
                        for (i64 m = m0; m < m1; m++)  /* N channels sc apart: one gather */  \
                            *(UV *)(dst + db + m * dl + c0) =                                 \
                                GATHER(src + sb + m * sl + c0 * sc, sc);                      \
                        continue;                                                             \
                    }                                                                         \
                    T tile[16][16];                                                           \
                    for (i64 ca = c0; ca < c1; ca += 16) {                                    \
                        i64 cb = ca + 16 < c1 ? ca + 16 : c1;                                 \
                        for (i64 ma = m0; ma < m1; ma += 16) {                                \
                            i64 mb = ma + 16 < m1 ? ma + 16 : m1;                             \
                            if (sc == 1)                                                      \
                                for (i64 m = ma; m < mb; m++)                                 \
                                    for (i64 ch = ca; ch < cb; ch++)                          \
                                        tile[ch - ca][m - ma] = src[sb + m * sl + ch];        \
                            else                                                              \
                                for (i64 ch = ca; ch < cb; ch++)                              \
                                    for (i64 m = ma; m < mb; m++)                             \
                                        tile[ch - ca][m - ma] = src[sb + m * sl + ch * sc];   \
                            if (dc == 1)                                                      \
                                for (i64 m = ma; m < mb; m++)                                 \
                                    for (i64 ch = ca; ch < cb; ch++)                          \
                                        dst[db + m * dl + ch] = tile[ch - ca][m - ma];        \
                            else                                                              \
                                for (i64 ch = ca; ch < cb; ch++)                              \
                                    for (i64 m = ma; m < mb; m++)                             \
                                        dst[db + m * dl + ch * dc] = tile[ch - ca][m - ma];   \
                        }                                                                     \
                    }                                                                         \
                }                                                                             \
            }                                                                                 \
        }                                                                                     \
    }

static inline __attribute__((always_inline)) void no_transpose(void *r) { (void)r; }

/* N elements p[0], p[step], ..., p[(N-1) * step] as one vector (hardware gathers) */
#if X86
static inline __attribute__((always_inline)) ATTR_avx512 vt32x16 gather4_avx512(
    const uint32_t *p, i64 step)
{
    const __m512i lanes = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    return (vt32x16)_mm512_i32gather_epi32(_mm512_mullo_epi32(lanes, _mm512_set1_epi32((int)step)),
                                           (const void *)p, 4);
}
static inline __attribute__((always_inline)) ATTR_avx512 vt64x8 gather8_avx512(
    const uint64_t *p, i64 step)
{
    const __m256i lanes = _mm256_set_epi32(7, 6, 5, 4, 3, 2, 1, 0);
    return (vt64x8)_mm512_i32gather_epi64(_mm256_mullo_epi32(lanes, _mm256_set1_epi32((int)step)),
                                          (const void *)p, 8);
}
static inline __attribute__((always_inline)) ATTR_avx2 vt32x8 gather4_avx2(const uint32_t *p,
                                                                           i64 step)
{
    const __m256i lanes = _mm256_set_epi32(7, 6, 5, 4, 3, 2, 1, 0);
    const __m256i index = _mm256_mullo_epi32(lanes, _mm256_set1_epi32((int)step));
    return (vt32x8)_mm256_i32gather_epi32((const int *)p, index, 4);
}
static inline __attribute__((always_inline)) ATTR_avx2 vt64x4 gather8_avx2(const uint64_t *p,
                                                                           i64 step)
{
    const __m128i lanes = _mm_set_epi32(3, 2, 1, 0);
    return (vt64x4)_mm256_i32gather_epi64((const long long *)p,
                                          _mm_mullo_epi32(lanes, _mm_set1_epi32((int)step)), 8);
}
#endif
#define no_gather(p, step) (*(p))   /* (never taken: the base copies have no vector paths) */

#if X86
COPY_FN(copy4_avx512, uint32_t, vt32x16, uvt32x16, 16, 1, transpose_32x16, gather4_avx512,
        ATTR_avx512)
COPY_FN(copy4_avx2, uint32_t, vt32x8, uvt32x8, 8, 1, transpose_32x8, gather4_avx2, ATTR_avx2)
COPY_FN(copy8_avx512, uint64_t, vt64x8, uvt64x8, 8, 1, transpose_64x8, gather8_avx512,
        ATTR_avx512)
COPY_FN(copy8_avx2, uint64_t, vt64x4, uvt64x4, 4, 1, transpose_64x4, gather8_avx2, ATTR_avx2)
#endif
COPY_FN(copy4_base, uint32_t, uint32_t, uint32_t, 16, 0, no_transpose, no_gather, )
COPY_FN(copy8_base, uint64_t, uint64_t, uint64_t, 16, 0, no_transpose, no_gather, )

/* ---- Python glue ------------------------------------------------------------------------- */
/* an address Python passed as an integer */
#define ADDR(a) ((void *)(uintptr_t)(a))

/* dst[k][d] = p[k * nd + d] for k < n, d < nd: the per-dim arrays of a call's params */
static void read_dims(const i64 *p, i64 nd, int n, i64 *const *dst)
{
    for (int k = 0; k < n; k++)
        for (i64 d = 0; d < nd; d++) dst[k][d] = p[k * nd + d];
}

static int read_grid(const i64 *p, i64 nd, i64 *count, i64 *a, i64 *b)
{
    if (nd < 1 || nd > MAXD) return -1;
    read_dims(p, nd, 3, (i64 *const[]){count, a, b});
    return 0;
}

/* The dense weight gradient's scratch block per call (a multiple of 64 bytes): a block of
 * cells' gradient panels (kpad channels) and one tap's input rows (WGRAD_ROW(kin) apart). */
static size_t scratch_bytes(size_t itemsize, i64 kin, i64 kpad)
{
    size_t bytes = itemsize * (size_t)((kpad + WGRAD_ROW(kin)) * WCELLS);
    return (bytes + 63) / 64 * 64;
}

/* wgrad_scratch(itemsize, kin, kpad): the bytes run() allocates per call for the dense weight
 * gradient (tconv's memory estimate counts them) */
static PyObject *wgrad_scratch(PyObject *self, PyObject *args)
{
    int itemsize;
    long long kin, kpad;
    if (!PyArg_ParseTuple(args, "iLL", &itemsize, &kin, &kpad)) return NULL;
    if (itemsize <= 0 || kin < 0 || kpad < 0) {
        PyErr_SetString(PyExc_ValueError, "tconv._native.wgrad_scratch: bad sizes");
        return NULL;
    }
    return PyLong_FromSize_t(scratch_bytes((size_t)itemsize, kin, kpad));
}

/* run(kind, dtype, in, out, w, params):
 *   params (int64): taps, nd, row0, row1, groups, kin, kout, kpad, ocs, count[nd], istep[nd],
 *                   ostep[nd], off[taps]
 *   kind: 0 dense, 1 depthwise, 2 dense weight gradient, 3 depthwise weight gradient */
static PyObject *run(PyObject *self, PyObject *args)
{
    int kind, dtype;
    unsigned long long in, out, w, params;
    if (!PyArg_ParseTuple(args, "iiKKKK", &kind, &dtype, &in, &out, &w, &params)) return NULL;
    if (kind < 0 || kind > 3 || dtype < 0 || dtype > 2) {
        PyErr_SetString(PyExc_ValueError, "tconv._native.run: bad kind or dtype");
        return NULL;
    }
    const i64 *p = ADDR(params);
    Job j = {.in = ADDR(in), .out = ADDR(out), .w = ADDR(w), .taps = p[0], .nd = p[1],
             .row0 = p[2], .row1 = p[3], .groups = p[4], .kin = p[5], .kout = p[6],
             .kpad = p[7], .ocs = p[8]};
    if (read_grid(p + 9, j.nd, j.count, j.istep, j.ostep) < 0) {
        PyErr_SetString(PyExc_ValueError, "tconv._native.run: bad number of grid dims");
        return NULL;
    }
    j.off = p + 9 + 3 * j.nd;
    kernel_fn fn = kernel_table[isa_used][dtype][kind];
    if (kind == 2) {
        j.scratch = aligned_alloc(64, scratch_bytes(dtype == 0 ? 4 : 8, j.kin, j.kpad));
        if (!j.scratch) return PyErr_NoMemory();
    }
    Py_BEGIN_ALLOW_THREADS
    if (j.row1 > j.row0 && j.count[j.nd - 1] > 0) fn(&j);
    Py_END_ALLOW_THREADS
    free(j.scratch);
    Py_RETURN_NONE;
}

/* copy(itemsize, src, dst, params): params (int64): nd, row0, row1, c0, c1, s_c, d_c,
 *                                    count[nd], s_step[nd], d_step[nd] */
static PyObject *copy(PyObject *self, PyObject *args)
{
    int itemsize;
    unsigned long long src, dst, params;
    if (!PyArg_ParseTuple(args, "iKKK", &itemsize, &src, &dst, &params)) return NULL;
    const i64 *p = ADDR(params);
    CopyJob c = {.src = ADDR(src), .dst = ADDR(dst), .nd = p[0], .row0 = p[1], .row1 = p[2],
                 .c0 = p[3], .c1 = p[4], .s_c = p[5], .d_c = p[6]};
    if ((itemsize != 4 && itemsize != 8)
        || read_grid(p + 7, c.nd, c.count, c.s_step, c.d_step) < 0) {
        PyErr_SetString(PyExc_ValueError, "tconv._native.copy: bad itemsize or grid");
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    if (c.row1 > c.row0 && c.count[c.nd - 1] > 0) {
        void (*fn)(const CopyJob *) = itemsize == 4 ? copy4_base : copy8_base;
#if X86
        if (isa_used == ISA_AVX512) fn = itemsize == 4 ? copy4_avx512 : copy8_avx512;
        if (isa_used == ISA_AVX2) fn = itemsize == 4 ? copy4_avx2 : copy8_avx2;
#endif
        fn(&c);
    }
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

/* depthwise(kind, dtype, x, y, x_out, w, params): kind 0 conv, 1 transposed, 2 weight grad;
 * params (int64): nd, batch, channels, row0, row1, in[nd], out[nd], k[nd], s[nd], dil[nd],
 * lo[nd]  (rows: conv over (n, c, out rows), transposed over (n, c, in rows), weight grad over
 * channels) */
static PyObject *depthwise(PyObject *self, PyObject *args)
{
    int kind, dtype;
    unsigned long long x, y, x_out, w, params;
    if (!PyArg_ParseTuple(args, "iiKKKKK", &kind, &dtype, &x, &y, &x_out, &w, &params))
        return NULL;
    const i64 *p = ADDR(params);
    DwJob j = {.x = ADDR(x), .y = ADDR(y), .x_out = ADDR(x_out), .w = ADDR(w), .nd = p[0],
               .batch = p[1], .channels = p[2], .row0 = p[3], .row1 = p[4]};
    if (kind < 0 || kind > 2 || dtype < 0 || dtype > 2 || j.nd < 1 || j.nd > MAXD) {
        PyErr_SetString(PyExc_ValueError, "tconv._native.depthwise: bad kind, dtype or dims");
        return NULL;
    }
    read_dims(p + 5, j.nd, 6, (i64 *const[]){j.in, j.out, j.k, j.s, j.dil, j.lo});
    i64 outer = 1;
    j.taps = 1;
    for (i64 d = 0; d < j.nd; d++) {
        j.taps *= j.k[d];
        if (d < j.nd - 1) outer *= j.k[d];
    }
    if (j.s[j.nd - 1] > DW_MAX || j.k[j.nd - 1] > DW_MAX) {
        PyErr_SetString(PyExc_ValueError, "tconv._native.depthwise: last stride or kernel > 64");
        return NULL;
    }
    j.in_plane = j.out_plane = 1;
    for (i64 d = j.nd - 1; d >= 0; d--) {
        j.in_step[d] = j.in_plane;
        j.out_step[d] = j.out_plane;
        j.in_plane *= j.in[d];
        j.out_plane *= j.out[d];
    }
    i64 *scratch = PyMem_RawMalloc(2 * (size_t)outer * sizeof(i64));
    if (!scratch) return PyErr_NoMemory();
    /* the tap table: one entry per position of a row in its plane (the outer dims of the
     * output; of the input for the transposed kernel) */
    const int transposed = kind == 1;
    const i64 *size = transposed ? j.in : j.out, *step = transposed ? j.in_step : j.out_step;
    i64 positions = 1;
    for (i64 d = 0; d < j.nd - 1; d++) positions *= size[d];
    i64 *table = NULL;
    if (positions * (2 * outer + 2) <= DW_TABLE_MAX)
        table = PyMem_RawMalloc((size_t)(positions * (2 * outer + 2)) * sizeof(i64));
    if (table) {
        i64 *n = table, *off = n + positions, *src = off + positions;
        i64 *wof = src + positions * outer;
        for (i64 pi = 0; pi < positions; pi++) {
            i64 plane;
            const i64 *a, *b;
            n[pi] = dw_taps(&j, pi, size, transposed, step, src + pi * outer,
                            wof + pi * outer, &plane, &off[pi], &a, &b);
        }
        j.positions = positions;
        j.outer = outer;
        j.tab_n = n, j.tab_off = off, j.tab_src = src, j.tab_wof = wof;
    }
    dw_fn fn = dw_table[isa_used][dtype][kind];
    Py_BEGIN_ALLOW_THREADS
    if (j.row1 > j.row0) fn(&j, scratch, scratch + outer);
    Py_END_ALLOW_THREADS
    PyMem_RawFree(table);
    PyMem_RawFree(scratch);
    Py_RETURN_NONE;
}

/* ---- finite(itemsize, data, count): whether count floats hold no NaN or infinity --------
 * One pass over the bits (an exponent of all ones is NaN or an infinity), four vectors of 64
 * bytes per step, then the tail one by one; the GIL is released. */
typedef uint32_t vu32 __attribute__((vector_size(64)));
typedef uint32_t uvu32 __attribute__((vector_size(64), aligned(4), may_alias));
#define FINITE_FN(NAME, T, V, UV, EXP, ATTRIBUTE)                                              \
    static ATTRIBUTE int NAME(const T *p, i64 n)                                              \
    {                                                                                         \
        const i64 lanes = (i64)(sizeof(V) / sizeof(T));                                       \
        V bad = (V){0};                                                                       \
        i64 i = 0;                                                                            \
        for (; i + 4 * lanes <= n; i += 4 * lanes) {                                          \
            V a = *(const UV *)(p + i) & EXP, b = *(const UV *)(p + i + lanes) & EXP;         \
            V c = *(const UV *)(p + i + 2 * lanes) & EXP;                                     \
            V d = *(const UV *)(p + i + 3 * lanes) & EXP;                                     \
            bad |= (V)(a == EXP) | (V)(b == EXP) | (V)(c == EXP) | (V)(d == EXP);             \
        }                                                                                     \
        for (int e = 0; e < lanes; e++)                                                       \
            if (bad[e]) return 0;                                                             \
        for (; i < n; i++)                                                                    \
            if ((p[i] & EXP) == EXP) return 0;                                                \
        return 1;                                                                             \
    }
#define EXP32 0x7f800000u
#define EXP64 0x7ff0000000000000ull
FINITE_FN(finite4_base, uint32_t, vu32, uvu32, EXP32, )
FINITE_FN(finite8_base, uint64_t, vu64, uvu64, EXP64, )
#if X86
FINITE_FN(finite4_avx512, uint32_t, vu32, uvu32, EXP32, __attribute__((target("avx512f"))))
FINITE_FN(finite8_avx512, uint64_t, vu64, uvu64, EXP64, __attribute__((target("avx512f"))))
FINITE_FN(finite4_avx2, uint32_t, vu32, uvu32, EXP32, __attribute__((target("avx2"))))
FINITE_FN(finite8_avx2, uint64_t, vu64, uvu64, EXP64, __attribute__((target("avx2"))))
#endif

static PyObject *all_finite(PyObject *self, PyObject *args)
{
    int itemsize;
    unsigned long long data;
    long long count;
    if (!PyArg_ParseTuple(args, "iKL", &itemsize, &data, &count)) return NULL;
    if ((itemsize != 4 && itemsize != 8) || count < 0) {
        PyErr_SetString(PyExc_ValueError, "tconv._native.finite: bad itemsize or count");
        return NULL;
    }
    int (*f4)(const uint32_t *, i64) = finite4_base;
    int (*f8)(const uint64_t *, i64) = finite8_base;
#if X86
    if (isa_used == ISA_AVX512) f4 = finite4_avx512, f8 = finite8_avx512;
    if (isa_used == ISA_AVX2) f4 = finite4_avx2, f8 = finite8_avx2;
#endif
    int ok;
    Py_BEGIN_ALLOW_THREADS
    ok = itemsize == 4 ? f4(ADDR(data), count) : f8(ADDR(data), count);
    Py_END_ALLOW_THREADS
    return PyBool_FromLong(ok);
}

static PyObject *isa(PyObject *self, PyObject *args)
{
    const char *name = NULL;
    if (!PyArg_ParseTuple(args, "|s", &name)) return NULL;
    if (name) {
        int k;
        for (k = 0; k < 3; k++)
            if (!strcmp(name, ISA_NAMES[k])) break;
        if (k == 3 || k > isa_best) {
            PyErr_Format(PyExc_ValueError, "instruction set %s is not available here (best: %s)",
                         name, ISA_NAMES[isa_best]);
            return NULL;
        }
        isa_used = k;
    }
    return Py_BuildValue("(ss)", ISA_NAMES[isa_used], ISA_NAMES[isa_best]);
}

static PyObject *tile_width(PyObject *self, PyObject *args)
{
    int dtype;
    if (!PyArg_ParseTuple(args, "i", &dtype)) return NULL;
    if (dtype < 0 || dtype > 2) {
        PyErr_SetString(PyExc_ValueError, "tconv._native.tile_width: bad dtype");
        return NULL;
    }
    return PyLong_FromLong(TILE_WIDTH[isa_used][dtype]);
}

static PyMethodDef methods[] = {
    {"run", run, METH_VARARGS, "Run one kernel over a range of grid rows (GIL released)."},
    {"copy", copy, METH_VARARGS, "Copy a channel block over a range of grid rows."},
    {"depthwise", depthwise, METH_VARARGS,
     "Run one channels-first depthwise kernel over a range of rows (GIL released)."},
    {"isa", isa, METH_VARARGS,
     "isa([name]) -> (used, best): the instruction set the kernels run; name selects a lower one."},
    {"finite", all_finite, METH_VARARGS,
     "finite(itemsize, address, count): no NaN or infinity among count floats (GIL released)."},
    {"wgrad_scratch", wgrad_scratch, METH_VARARGS,
     "wgrad_scratch(itemsize, kin, kpad): the scratch bytes of one dense weight-gradient call."},
    {"tile_width", tile_width, METH_VARARGS,
     "Output channels per tile for a dtype code (packed weights pad to a multiple of it)."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_native",
                                    "Compiled kernels of tconv's fast_native method.", -1,
                                    methods};

PyMODINIT_FUNC PyInit__native(void)
{
    setup_isa();
    return PyModule_Create(&module);
}

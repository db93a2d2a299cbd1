/* The kernels of tconv._native for one scalar type and one instruction set.
 *
 * Included by _native.c once per (type, ISA), with INSTANCE defined (#undef-ined at the end) and
 * these macros reading it:
 *   SCAL  the element type (float, double, uint64_t: integers wrap modulo 2**64, as int64 does)
 *   VEC   a 64-byte GCC vector of SCAL, UVEC the same with the alignment of SCAL (loads, stores)
 *   VL    elements per VEC;  NV  VECs per tile along the output channels;  MB  cells per tile
 *   SUF(name)  the name with this instantiation's suffix;  ATTR  its target attribute
 *
 * Every output element is a plain running sum, in tap-major, channel-minor order, of exactly
 * its useful products (the weight gradient: partial sums per block of rows, then added), so the
 * usual rounding bound of an n-term sum holds; FMA contraction only removes roundings.
 */

/* ---- forward tile: mb cells (any positions: ib[]) x NV*VL output channels, over one K-block
 * of the rows (t, i) of the weight panel wp (taps t0 <= t < t1, channels i0 <= i < i1; row
 * (t, i) at wp + (t * kin + i) * NV*VL). The running sums start at zero (first) or from sums[],
 * where they are stored back: keeping them in memory between K-blocks stores and reloads the
 * same values, so every sum still adds its products one by one in the order (t, i). */
static inline __attribute__((always_inline)) ATTR void SUF(tile)(
    const SCAL *in, const i64 *ib, const i64 *off, i64 t0, i64 t1, i64 i0, i64 i1, i64 kin,
    const SCAL *wp, SCAL *sums, int first, const int mb)
{
    VEC acc[MB][NV];
    const SCAL *ip[MB];
    for (int a = 0; a < mb; a++) {
        ip[a] = in + ib[a];
        for (int v = 0; v < NV; v++)
            acc[a][v] = first ? (VEC){0} : *(const VEC *)(sums + (a * NV + v) * VL);
    }
    for (i64 t = t0; t < t1; t++) {
        const i64 o = off[t];
        const SCAL *wt = wp + t * kin * (NV * VL);
        for (i64 i = i0; i < i1; i++) {
            VEC wv[NV];
            for (int v = 0; v < NV; v++) wv[v] = *(const VEC *)(wt + (i * NV + v) * VL);
            for (int a = 0; a < mb; a++) {
                SCAL x = ip[a][o + i];
                for (int v = 0; v < NV; v++) acc[a][v] += x * wv[v];
            }
        }
    }
    for (int a = 0; a < mb; a++)
        for (int v = 0; v < NV; v++) *(VEC *)(sums + (a * NV + v) * VL) = acc[a][v];
}

#if VL == 16
#define TV vt32x16
#define TUV uvt32x16
#define TRANSPOSE transpose_32x16
#else
#define TV vt64x8
#define TUV uvt64x8
#define TRANSPOSE transpose_64x8
#endif

/* A chunk's sums (n cells x NV*VL channels, sums[a * W + o]) into a channels-first output:
 * channel o of cell a at op[o * ocs + ob[a]]. VL cells that lie ol apart in one grid row and
 * VL channels go as VL vector loads, an in-register transpose and VL vector stores (ol == 1)
 * or VL stores of VL elements each; the other cells one element at a time. */
static inline __attribute__((always_inline)) ATTR void SUF(write_planes)(
    const SCAL *sums, int n, const i64 *ob, i64 ol, SCAL *op, i64 ocs, i64 valid)
{
    const i64 W = NV * VL;
    int a = 0;
    while (a < n) {
        int run = 1;
        while (run < VL && a + run < n && ob[a + run] == ob[a] + run * ol) run++;
        if (run < VL || valid < W) {
            for (i64 o = 0; o < valid; o++) op[o * ocs + ob[a]] = sums[a * W + o];
            a++;
            continue;
        }
        for (i64 o0 = 0; o0 < W; o0 += VL) {
            TV t[VL];
            for (int k = 0; k < VL; k++) t[k] = *(const TV *)(sums + (a + k) * W + o0);
            TRANSPOSE(t);          /* t[c]: the VL cells' values of channel o0 + c */
            for (int c = 0; c < VL; c++) {
                SCAL *dst = op + (o0 + c) * ocs + ob[a];
                if (ol == 1) {
                    *(TUV *)dst = t[c];
                } else {
                    SCAL v[VL];
                    *(TUV *)v = t[c];
                    for (int e = 0; e < VL; e++) dst[e * ol] = v[e];
                }
            }
        }
        a += VL;
    }
}

/* out[cell, g, o] = sum_t sum_i in[cell_in + off[t], g, i] * w[g, t, i, o]
 * The weights come in panels of NV*VL output channels, (groups, kpad / (NV*VL), taps, kin,
 * NV*VL), 64-byte aligned. The cells are taken CHUNK at a time, across grid rows; for each panel
 * the rows (t, i) are taken a K-block of about KC rows at a time (whole taps, or a slice of one
 * tap's channels), and every tile of the chunk passes over the block while it is in the L1
 * cache; the chunk's running sums wait in sums[] between blocks. */
static ATTR void SUF(dense)(const Job *j)
{
    const SCAL *in = j->in, *w = j->w;
    SCAL *out = j->out;
    const i64 ol = j->ostep[j->nd - 1];
    const i64 W = NV * VL, panels = j->kpad / W, kin = j->kin, taps = j->taps;
    const i64 tstep = kin >= KC ? 1 : KC / (kin ? kin : 1), istep = kin >= KC ? KC : kin;
    SCAL sums[CHUNK * NV * VL] __attribute__((aligned(64)));
    i64 ib[CHUNK], ob[CHUNK];
    i64 r = j->row0, m = 0;
    while (r < j->row1) {
        const int n = (int)next_cells(j, &r, &m, CHUNK, ib, ob);
        for (i64 g = 0; g < j->groups; g++) {
            const SCAL *ing = in + g * kin;
            SCAL *outg = out + g * j->kout * j->ocs;
            for (i64 b = 0; b < panels; b++) {
                const SCAL *wp = w + (g * panels + b) * taps * kin * W;
                int first = 1;
                for (i64 t0 = 0; t0 < taps && kin; t0 += tstep) {
                    const i64 t1 = t0 + tstep < taps ? t0 + tstep : taps;
                    for (i64 i0 = 0; i0 < kin; i0 += istep) {
                        const i64 i1 = i0 + istep < kin ? i0 + istep : kin;
                        int a = 0;
                        for (; a + MB <= n; a += MB)
                            SUF(tile)(ing, ib + a, j->off, t0, t1, i0, i1, kin, wp,
                                      sums + a * W, first, MB);
                        for (; a + 2 <= n; a += 2)
                            SUF(tile)(ing, ib + a, j->off, t0, t1, i0, i1, kin, wp,
                                      sums + a * W, first, 2);
                        for (; a < n; a++)
                            SUF(tile)(ing, ib + a, j->off, t0, t1, i0, i1, kin, wp,
                                      sums + a * W, first, 1);
                        first = 0;
                    }
                }
                if (first) memset(sums, 0, sizeof(SCAL) * (size_t)(n * W));  /* no rows */
                const i64 o0 = b * W, valid = j->kout - o0 < W ? j->kout - o0 : W;
                SCAL *op = outg + o0 * j->ocs;
                if (j->ocs == 1) {
                    for (int a = 0; a < n; a++)
                        memcpy(op + ob[a], sums + a * W, sizeof(SCAL) * (size_t)valid);
                } else {
                    SUF(write_planes)(sums, n, ob, ol, op, j->ocs, valid);
                }
            }
        }
    }
}

/* depthwise: out[cell, c] = sum_t in[cell_in + off[t], c] * w[t, c]  (one channel per group) */
static inline __attribute__((always_inline)) ATTR void SUF(dtile)(
    const SCAL *ip, i64 il, const i64 *off, i64 taps, const SCAL *wp, i64 kpad,
    SCAL *op, i64 ol, i64 ocs, i64 valid, const int mb)
{
    VEC acc[MB][NV];
    for (int a = 0; a < mb; a++)
        for (int v = 0; v < NV; v++) acc[a][v] = (VEC){0};
    for (i64 t = 0; t < taps; t++) {
        const SCAL *it = ip + off[t];
        VEC wv[NV];
        for (int v = 0; v < NV; v++) wv[v] = *(const UVEC *)(wp + t * kpad + v * VL);
        for (int a = 0; a < mb; a++)
            for (int v = 0; v < NV; v++)
                acc[a][v] += *(const UVEC *)(it + a * il + v * VL) * wv[v];
    }
    if (ocs == 1 && valid >= NV * VL) {
        for (int a = 0; a < mb; a++)
            for (int v = 0; v < NV; v++) *(UVEC *)(op + a * ol + v * VL) = acc[a][v];
    } else {
        i64 n = valid < NV * VL ? valid : NV * VL;
        for (int a = 0; a < mb; a++) {
            SCAL tmp[NV * VL];
            for (int v = 0; v < NV; v++) *(UVEC *)(tmp + v * VL) = acc[a][v];
            for (i64 o = 0; o < n; o++) op[a * ol + o * ocs] = tmp[o];
        }
    }
}

static ATTR void SUF(depthwise)(const Job *j)
{
    const SCAL *in = j->in, *w = j->w;
    SCAL *out = j->out;
    const i64 L = j->count[j->nd - 1], il = j->istep[j->nd - 1], ol = j->ostep[j->nd - 1];
    const i64 c = j->groups;
    for (i64 r = j->row0; r < j->row1; r++) {
        i64 ib, ob;
        row_base(j, r, &ib, &ob);
        for (i64 c0 = 0; c0 < c; c0 += NV * VL) {
            i64 m = 0;
            for (; m + MB <= L; m += MB)
                SUF(dtile)(in + ib + m * il + c0, il, j->off, j->taps, (const SCAL *)j->w + c0,
                           j->kpad, out + ob + m * ol + c0 * j->ocs, ol, j->ocs, c - c0, MB);
            for (; m < L; m++)
                SUF(dtile)(in + ib + m * il + c0, il, j->off, j->taps, (const SCAL *)j->w + c0,
                           j->kpad, out + ob + m * ol + c0 * j->ocs, ol, j->ocs, c - c0, 1);
        }
    }
    (void)w;
}

/* the weight gradient's tile rows: 8 where two vectors of channels leave the registers */
#define WMB (NV == 2 ? 8 : MB)

/* ---- weight gradient: dw[g, t, i, o] += sum_cells in[cell_in + off[t], g, i] * grad[cell, g, o]
 * A GEMM over the cells, a group of taps at a time: as many as keep their slices of dw
 * (kin x kpad each) within WGRAD_DW_BYTES, in L2 while every cell passes (every tap of a
 * narrow layer, whose cells are then read once; one tap of a wide one, or a group of its
 * panels of output channels when even one tap's slice is larger). The cells are taken
 * WCELLS at a time (across grid rows): the block's gradient is copied into the scratch buffer,
 * panel by panel of NV*VL channels, cell after cell; per tap, the block's input rows (XS
 * elements apart: not a power of two, so that they spread over the L1 sets). A tile of MB
 * input channels x NV*VL output channels then adds the products of every cell of the block to
 * its running sums, kept in dw between blocks: each sum adds its products one by one in the
 * order of the cells. */
static inline __attribute__((always_inline)) ATTR void SUF(wtile)(
    const SCAL *xp, i64 xs, const SCAL *gp, i64 n, SCAL *dw, i64 kpad, const int mb)
{
    VEC acc[WMB][NV];
    for (int a = 0; a < mb; a++)
        for (int v = 0; v < NV; v++) acc[a][v] = *(const UVEC *)(dw + a * kpad + v * VL);
    for (i64 m = 0; m < n; m++) {
        VEC gv[NV];
        for (int v = 0; v < NV; v++) gv[v] = *(const VEC *)(gp + (m * NV + v) * VL);
        for (int a = 0; a < mb; a++) {
            SCAL x = xp[m * xs + a];
            for (int v = 0; v < NV; v++) acc[a][v] += x * gv[v];
        }
    }
    for (int a = 0; a < mb; a++)
        for (int v = 0; v < NV; v++) *(UVEC *)(dw + a * kpad + v * VL) = acc[a][v];
}

static ATTR void SUF(dense_wgrad)(const Job *j)
{
    const SCAL *in = j->in, *grad = j->w;
    SCAL *dw = j->out;          /* (groups, taps, kin, kpad), accumulated into */
    const i64 W = NV * VL, panels = j->kpad / W, kin = j->kin, kout = j->kout;
    const i64 xs = WGRAD_ROW(kin), per_tap = kin * j->kpad * (i64)sizeof(SCAL);
    const i64 tg = per_tap >= WGRAD_DW_BYTES ? 1 : WGRAD_DW_BYTES / per_tap;
    /* one tap's slice larger than that: its panels in groups of about equal size */
    const i64 per_panel = kin * W * (i64)sizeof(SCAL);
    const i64 most = per_panel >= WGRAD_DW_BYTES ? 1 : WGRAD_DW_BYTES / per_panel;
    const i64 ngroups = tg > 1 ? 1 : (panels + most - 1) / most;
    const i64 pg = (panels + ngroups - 1) / ngroups;
    SCAL *gpack = j->scratch, *xpack = gpack + WCELLS * j->kpad;   /* both 64-byte aligned */
    i64 ib[WCELLS], ob[WCELLS];
    for (i64 g = 0; g < j->groups; g++)
        for (i64 t0 = 0; t0 < j->taps; t0 += tg)
        for (i64 b0 = 0; b0 < panels; b0 += pg) {
            const i64 t1 = t0 + tg < j->taps ? t0 + tg : j->taps;
            const i64 b1 = b0 + pg < panels ? b0 + pg : panels;
            i64 r = j->row0, m = 0;
            while (r < j->row1) {
                const i64 n = next_cells(j, &r, &m, WCELLS, ib, ob);
                /* the block's gradient, panel by panel (reads past a row's last channel stay
                 * inside the buffers' tails; those lanes are zeroed) */
                for (i64 b = b0; b < b1; b++) {
                    const i64 valid = kout - b * W < W ? kout - b * W : W;
                    for (i64 c = 0; c < n; c++) {
                        SCAL *d = gpack + ((b - b0) * WCELLS + c) * W;
                        const SCAL *src = grad + ob[c] + g * kout + b * W;
                        for (int v = 0; v < NV; v++)
                            *(VEC *)(d + v * VL) = *(const UVEC *)(src + v * VL);
                        for (i64 o = valid; o < W; o++) d[o] = 0;
                    }
                }
                for (i64 t = t0; t < t1; t++) {
                    for (i64 c = 0; c < n; c++) {
                        const SCAL *src = in + ib[c] + j->off[t] + g * kin;
                        for (i64 e = 0; e < kin; e += VL)
                            *(VEC *)(xpack + c * xs + e) = *(const UVEC *)(src + e);
                    }
                    SCAL *dwt = dw + (g * j->taps + t) * kin * j->kpad;
                    for (i64 b = b0; b < b1; b++) {
                        const SCAL *gp = gpack + (b - b0) * WCELLS * W;
                        SCAL *d = dwt + b * W;
                        i64 i = 0;
                        for (; i + WMB <= kin; i += WMB)
                            SUF(wtile)(xpack + i, xs, gp, n, d + i * j->kpad, j->kpad, WMB);
                        for (; i + 2 <= kin; i += 2)
                            SUF(wtile)(xpack + i, xs, gp, n, d + i * j->kpad, j->kpad, 2);
                        for (; i < kin; i++)
                            SUF(wtile)(xpack + i, xs, gp, n, d + i * j->kpad, j->kpad, 1);
                    }
                }
            }
        }
}

/* depthwise weight gradient: dw[t, c] += sum_cells in[cell_in + off[t], c] * grad[cell, c];
 * four running sums per lane (cells m = 0, 1, 2, 3 mod 4), added at the end of a block */
static ATTR void SUF(depthwise_wgrad)(const Job *j)
{
    const SCAL *in = j->in, *grad = j->w;
    SCAL *dw = j->out;          /* (taps, kpad) */
    const i64 L = j->count[j->nd - 1], il = j->istep[j->nd - 1], ol = j->ostep[j->nd - 1];
    const i64 c = j->groups;
    i64 ibs[ROWS_PER_BLOCK], obs[ROWS_PER_BLOCK];
    for (i64 r0 = j->row0; r0 < j->row1; r0 += ROWS_PER_BLOCK) {
        i64 nrows = j->row1 - r0 < ROWS_PER_BLOCK ? j->row1 - r0 : ROWS_PER_BLOCK;
        for (i64 rr = 0; rr < nrows; rr++) row_base(j, r0 + rr, &ibs[rr], &obs[rr]);
        for (i64 t = 0; t < j->taps; t++)
            for (i64 c0 = 0; c0 < c; c0 += NV * VL) {
                VEC acc[4][NV];
                for (int a = 0; a < 4; a++)
                    for (int v = 0; v < NV; v++) acc[a][v] = (VEC){0};
                for (i64 rr = 0; rr < nrows; rr++) {
                    const SCAL *xp = in + ibs[rr] + j->off[t] + c0;
                    const SCAL *gp = grad + obs[rr] + c0;
                    i64 m = 0;
                    for (; m + 4 <= L; m += 4)
                        for (int a = 0; a < 4; a++)
                            for (int v = 0; v < NV; v++)
                                acc[a][v] += *(const UVEC *)(xp + (m + a) * il + v * VL)
                                             * *(const UVEC *)(gp + (m + a) * ol + v * VL);
                    for (; m < L; m++)
                        for (int v = 0; v < NV; v++)
                            acc[0][v] += *(const UVEC *)(xp + m * il + v * VL)
                                         * *(const UVEC *)(gp + m * ol + v * VL);
                }
                SCAL *d = dw + t * j->kpad + c0;
                for (int v = 0; v < NV; v++)
                    *(UVEC *)(d + v * VL) += (acc[0][v] + acc[1][v]) + (acc[2][v] + acc[3][v]);
            }
    }
}

/* ---- depthwise layers in the caller's channels-first layout (no copies) ------------------
 * One grid row = one line along the last spatial dim of one (sample, channel) plane. The taps
 * of the other dims are checked per row (out of range: the zero padding, skipped); along the
 * last dim the cells whose taps are all in range run VL at a time, the others one by one. */
#if VL == 16
typedef int32_t SUF(ivec) __attribute__((vector_size(64)));
#define EVEN ((SUF(ivec)){0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30})
#define ZIP_LO ((SUF(ivec)){0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23})
#define ZIP_HI ((SUF(ivec)){8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31})
#else
typedef int64_t SUF(ivec) __attribute__((vector_size(64)));
#define EVEN ((SUF(ivec)){0, 2, 4, 6, 8, 10, 12, 14})
#define ZIP_LO ((SUF(ivec)){0, 8, 1, 9, 2, 10, 3, 11})
#define ZIP_HI ((SUF(ivec)){4, 12, 5, 13, 6, 14, 7, 15})
#endif

/* VL elements p[0], p[s], p[2s], ... (reads p[0 .. s*VL - 1]) */
static inline __attribute__((always_inline)) ATTR VEC SUF(load_every)(const SCAL *p, i64 s)
{
    if (s == 1) return *(const UVEC *)p;
    if (s == 2) return __builtin_shuffle(*(const UVEC *)p, *(const UVEC *)(p + VL), EVEN);
    VEC v;
    for (int e = 0; e < VL; e++) v[e] = p[e * s];
    return v;
}

static ATTR void SUF(dw_conv)(const DwJob *j, i64 *src_s, i64 *wof_s)
{
    const SCAL *x = j->x, *w = j->w;
    SCAL *y = j->y;
    const i64 nd = j->nd, S = j->s[nd - 1], D = j->dil[nd - 1], LO = j->lo[nd - 1];
    const i64 KL = j->k[nd - 1], IN = j->in[nd - 1], OUT = j->out[nd - 1];
    /* cells p whose every tap reads inside the row, VL at a time (and the load's s*VL span) */
    i64 p_lo = (LO + S - 1) / S, p_hi = OUT;    /* p_hi: exclusive bound for a block's start */
    i64 last = IN - S * VL - (KL - 1) * D + LO;  /* p*S + (KL-1)*D - LO + S*VL - 1 <= IN - 1 */
    p_hi = last < 0 ? 0 : last / S + 1;
    if (p_hi > OUT - VL + 1) p_hi = OUT - VL + 1;
    const i64 vend = p_hi > p_lo ? p_hi - 1 + VL : p_lo;   /* cells [p_lo, vend) by vectors */
    for (i64 r = j->row0; r < j->row1; r++) {
        i64 plane, roff;
        const i64 *src, *wof;
        const i64 nt = dw_taps(j, r, j->out, 0, j->out_step, src_s, wof_s, &plane, &roff, &src,
                               &wof);
        const SCAL *xp = x + plane * j->in_plane, *wc = w + plane % j->channels * j->taps;
        SCAL *yp = y + plane * j->out_plane + roff;
        for (i64 p = 0; p < OUT; p++) {
            if (p >= p_lo && p < vend) {        /* a vector block; the last one starts at
                                                   p_hi - 1 and may recompute a few cells */
                const i64 st = p < p_hi ? p : p_hi - 1;
                VEC acc = (VEC){0};
                for (i64 t = 0; t < nt; t++)
                    for (i64 jl = 0; jl < KL; jl++)
                        acc += wc[wof[t] + jl]
                               * SUF(load_every)(xp + src[t] + st * S + jl * D - LO, S);
                *(UVEC *)(yp + st) = acc;
                p = st + VL - 1;
                continue;
            }
            SCAL acc = 0;
            for (i64 t = 0; t < nt; t++)
                for (i64 jl = 0; jl < KL; jl++) {
                    i64 i = p * S + jl * D - LO;
                    if (i >= 0 && i < IN) acc += wc[wof[t] + jl] * xp[src[t] + i];
                }
            yp[p] = acc;
        }
    }
}

static ATTR void SUF(dw_transpose)(const DwJob *j, i64 *src_s, i64 *wof_s)
{
    const SCAL *yv = j->y, *w = j->w;
    SCAL *x = j->x_out;
    const i64 nd = j->nd, S = j->s[nd - 1], D = j->dil[nd - 1], LO = j->lo[nd - 1];
    const i64 KL = j->k[nd - 1], IN = j->in[nd - 1], OUT = j->out[nd - 1];
    /* phase r = q mod S: taps jl with (r + LO - jl*D) divisible by S, shift (r + LO - jl*D)/S */
    i64 ntap[DW_MAX], tap[DW_MAX][DW_MAX], shift[DW_MAX][DW_MAX];
    i64 m_lo = 0, c_max = -(1LL << 60);
    for (i64 r = 0; r < S; r++) {
        ntap[r] = 0;
        for (i64 jl = 0; jl < KL; jl++) {
            i64 u = r + LO - jl * D;
            i64 rem = ((u % S) + S) % S;
            if (rem) continue;
            i64 c = (u - rem) / S;
            tap[r][ntap[r]] = jl;
            shift[r][ntap[r]] = c;
            ntap[r]++;
            if (-c > m_lo) m_lo = -c;
            if (c > c_max) c_max = c;
        }
    }
    /* block of m .. m+VL-1 (cells q = m*S .. (m+VL)*S - 1): all taps in range */
    i64 m_hi = OUT - VL - (c_max > -(1LL << 59) ? c_max : 0) + 1;   /* exclusive start bound */
    if (m_hi > IN / S - VL + 1) m_hi = IN / S - VL + 1;
    const i64 mend = m_hi > m_lo ? m_hi - 1 + VL : m_lo;   /* blocks cover m in [m_lo, mend) */
    for (i64 r = j->row0; r < j->row1; r++) {
        i64 plane, roff;
        const i64 *src, *wof;
        const i64 nt = dw_taps(j, r, j->in, 1, j->in_step, src_s, wof_s, &plane, &roff, &src,
                               &wof);
        const SCAL *yp = yv + plane * j->out_plane, *wc = w + plane % j->channels * j->taps;
        SCAL *xp = x + plane * j->in_plane + roff;
        i64 q = 0;
        while (q < IN) {
            i64 m = q / S;
            if (S <= 8 && q % S == 0 && m >= m_lo && m < mend) {
                m = m < m_hi ? m : m_hi - 1;    /* the last block may recompute a few cells */
                q = m * S;
                VEC acc[8];
                for (i64 ph = 0; ph < S; ph++) {
                    VEC a = (VEC){0};
                    for (i64 t = 0; t < nt; t++)
                        for (i64 e = 0; e < ntap[ph]; e++)
                            a += wc[wof[t] + tap[ph][e]]
                                 * *(const UVEC *)(yp + src[t] + m + shift[ph][e]);
                    acc[ph] = a;
                }
                if (S == 1) *(UVEC *)(xp + q) = acc[0];
                else if (S == 2) {
                    *(UVEC *)(xp + q) = __builtin_shuffle(acc[0], acc[1], ZIP_LO);
                    *(UVEC *)(xp + q + VL) = __builtin_shuffle(acc[0], acc[1], ZIP_HI);
                } else {
                    SCAL tmp[8 * VL];
                    for (i64 ph = 0; ph < S; ph++)
                        for (int e = 0; e < VL; e++) tmp[e * S + ph] = acc[ph][e];
                    memcpy(xp + q, tmp, (size_t)(S * VL) * sizeof(SCAL));
                }
                q += S * VL;
                continue;
            }
            SCAL a = 0;             /* one cell: every tap with its checks */
            i64 ph = q % S, mm = q / S;
            for (i64 t = 0; t < nt; t++)
                for (i64 e = 0; e < ntap[ph]; e++) {
                    i64 pidx = mm + shift[ph][e];
                    if (pidx >= 0 && pidx < OUT) a += wc[wof[t] + tap[ph][e]] * yp[src[t] + pidx];
                }
            xp[q] = a;
            q++;
        }
    }
}

/* dw[c, j] = sum over samples and cells of x[n, c, p*s + j*d - lo] * g[n, c, p], channels
 * row0 <= c < row1; one vector of partial sums per tap, added across lanes at the end */
static ATTR void SUF(dw_wgrad)(const DwJob *j, i64 *src_s, i64 *wof_s)
{
    const SCAL *x = j->x, *g = j->y;
    SCAL *dw = j->x_out;
    const i64 nd = j->nd, S = j->s[nd - 1], D = j->dil[nd - 1], LO = j->lo[nd - 1];
    const i64 KL = j->k[nd - 1], IN = j->in[nd - 1], OUT = j->out[nd - 1];
    i64 p_lo = (LO + S - 1) / S;
    i64 last = IN - S * VL - (KL - 1) * D + LO;
    i64 p_hi = last < 0 ? 0 : last / S + 1;
    if (p_hi > OUT - VL + 1) p_hi = OUT - VL + 1;
    i64 rows = 1;
    for (i64 d = 0; d < nd - 1; d++) rows *= j->out[d];
    for (i64 c = j->row0; c < j->row1; c++) {
        for (i64 t0 = 0; t0 < j->taps; t0 += KL) {   /* one outer tap at a time: KL sums */
            VEC acc[DW_MAX];
            SCAL tail[DW_MAX];
            for (i64 jl = 0; jl < KL; jl++) {
                acc[jl] = (VEC){0};
                tail[jl] = 0;
            }
            for (i64 n = 0; n < j->batch; n++) {
                i64 plane = n * j->channels + c;
                const SCAL *xp = x + plane * j->in_plane;
                for (i64 rr = 0; rr < rows; rr++) {
                    i64 unused, roff;
                    const i64 *src, *wof;
                    const i64 nt = dw_taps(j, rr, j->out, 0, j->out_step, src_s, wof_s, &unused,
                                           &roff, &src, &wof);
                    i64 t = 0;
                    while (t < nt && wof[t] != t0) t++;
                    if (t == nt) continue;           /* this outer tap reads only padding */
                    const SCAL *gp = g + plane * j->out_plane + roff;
                    const SCAL *xr = xp + src[t];
                    for (i64 p = 0; p < OUT; p++) {
                        if (p >= p_lo && p < p_hi) {
                            VEC gv = *(const UVEC *)(gp + p);
                            for (i64 jl = 0; jl < KL; jl++)
                                acc[jl] += gv * SUF(load_every)(xr + p * S + jl * D - LO, S);
                            p += VL - 1;
                            continue;
                        }
                        for (i64 jl = 0; jl < KL; jl++) {
                            i64 i = p * S + jl * D - LO;
                            if (i >= 0 && i < IN) tail[jl] += gp[p] * xr[i];
                        }
                    }
                }
            }
            for (i64 jl = 0; jl < KL; jl++) {
                SCAL sum = tail[jl];
                for (int e = 0; e < VL; e++) sum += acc[jl][e];
                dw[c * j->taps + t0 + jl] = sum;
            }
        }
    }
}

static void (*const SUF(kernels)[4])(const Job *) = {
    SUF(dense), SUF(depthwise), SUF(dense_wgrad), SUF(depthwise_wgrad)};
static void (*const SUF(dw_kernels)[3])(const DwJob *, i64 *, i64 *) = {
    SUF(dw_conv), SUF(dw_transpose), SUF(dw_wgrad)};

#undef WMB
#undef TV
#undef TUV
#undef TRANSPOSE
#undef EVEN
#undef ZIP_LO
#undef ZIP_HI
#undef INSTANCE

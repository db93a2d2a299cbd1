/* The kernels of tconv._native for one scalar type and one instruction set.
 *
 * Included by _native.c once per (type, ISA) with these macros defined:
 *   SCAL  the element type (float, double, uint64_t: integers wrap modulo 2**64, as int64 does)
 *   VEC   a 64-byte GCC vector of SCAL, UVEC the same with the alignment of SCAL (loads, stores)
 *   VL    elements per VEC;  NV  VECs per tile along the output channels;  MB  cells per tile
 *   SUF(name)  the name with this instantiation's suffix;  ATTR  its target attribute
 *
 * Every output element is a plain running sum, in tap-major, channel-minor order, of exactly
 * its useful products (the weight gradient: partial sums per block of rows, then added), so the
 * usual rounding bound of an n-term sum holds; FMA contraction only removes roundings.
 */

/* ---- forward tile: MB cells (any positions: ib[], ob[]), NV*VL output channels -------------- */
static inline __attribute__((always_inline)) ATTR void SUF(tile)(
    const SCAL *in, const i64 *ib, const i64 *off, i64 taps, i64 kin, const SCAL *wp, i64 kpad,
    SCAL *out, const i64 *ob, i64 valid, const int mb)
{
    VEC acc[MB][NV];
    const SCAL *ip[MB];
    for (int a = 0; a < mb; a++) {
        ip[a] = in + ib[a];
        for (int v = 0; v < NV; v++) acc[a][v] = (VEC){0};
    }
    for (i64 t = 0; t < taps; t++) {
        const i64 o = off[t];
        const SCAL *wt = wp + t * kin * kpad;
        for (i64 i = 0; i < kin; i++) {
            VEC wv[NV];
            for (int v = 0; v < NV; v++) wv[v] = *(const UVEC *)(wt + i * kpad + v * VL);
            for (int a = 0; a < mb; a++) {
                SCAL x = ip[a][o + i];
                for (int v = 0; v < NV; v++) acc[a][v] += x * wv[v];
            }
        }
    }
    if (valid >= NV * VL) {
        for (int a = 0; a < mb; a++)
            for (int v = 0; v < NV; v++) *(UVEC *)(out + ob[a] + v * VL) = acc[a][v];
    } else {
        for (int a = 0; a < mb; a++) {
            SCAL tmp[NV * VL];
            for (int v = 0; v < NV; v++) *(UVEC *)(tmp + v * VL) = acc[a][v];
            memcpy(out + ob[a], tmp, (size_t)valid * sizeof(SCAL));
        }
    }
}

/* out[cell, g, o] = sum_t sum_i in[cell_in + off[t], g, i] * w[g, t, i, o]
 * The cells are taken CHUNK at a time, across grid rows, so that one block of output channels'
 * weights (taps * kin * NV*VL elements) serves a whole chunk while it is in cache. */
static ATTR void SUF(dense)(const Job *j)
{
    const SCAL *in = j->in, *w = j->w;
    SCAL *out = j->out;
    const i64 L = j->count[j->nd - 1], il = j->istep[j->nd - 1], ol = j->ostep[j->nd - 1];
    i64 ib[CHUNK], ob[CHUNK];
    i64 r = j->row0, m = 0;
    while (r < j->row1) {
        int n = 0;             /* gather the next chunk's cell offsets */
        i64 rb, robase;
        row_base(j, r, &rb, &robase);
        while (n < CHUNK && r < j->row1) {
            ib[n] = rb + m * il;
            ob[n] = robase + m * ol;
            n++;
            if (++m == L) {
                m = 0;
                if (++r < j->row1) row_base(j, r, &rb, &robase);
            }
        }
        for (i64 g = 0; g < j->groups; g++) {
            const SCAL *ing = in + g * j->kin;
            SCAL *outg = out + g * j->kout;
            const SCAL *wg = w + g * j->taps * j->kin * j->kpad;
            for (i64 o0 = 0; o0 < j->kout; o0 += NV * VL) {
                int a = 0;
                for (; a + MB <= n; a += MB)
                    SUF(tile)(ing, ib + a, j->off, j->taps, j->kin, wg + o0, j->kpad,
                              outg + o0, ob + a, j->kout - o0, MB);
                for (; a < n; a++)
                    SUF(tile)(ing, ib + a, j->off, j->taps, j->kin, wg + o0, j->kpad,
                              outg + o0, ob + a, j->kout - o0, 1);
            }
        }
    }
}

/* depthwise: out[cell, c] = sum_t in[cell_in + off[t], c] * w[t, c]  (one channel per group) */
static inline __attribute__((always_inline)) ATTR void SUF(dtile)(
    const SCAL *ip, i64 il, const i64 *off, i64 taps, const SCAL *wp, i64 kpad,
    SCAL *op, i64 ol, i64 valid, const int mb)
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
    if (valid >= NV * VL) {
        for (int a = 0; a < mb; a++)
            for (int v = 0; v < NV; v++) *(UVEC *)(op + a * ol + v * VL) = acc[a][v];
    } else {
        for (int a = 0; a < mb; a++) {
            SCAL tmp[NV * VL];
            for (int v = 0; v < NV; v++) *(UVEC *)(tmp + v * VL) = acc[a][v];
            memcpy(op + a * ol, tmp, (size_t)valid * sizeof(SCAL));
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
                SUF(dtile)(in + ib + m * il + c0, il, j->off, j->taps, j->w + c0, j->kpad,
                           out + ob + m * ol + c0, ol, c - c0, MB);
            for (; m < L; m++)
                SUF(dtile)(in + ib + m * il + c0, il, j->off, j->taps, j->w + c0, j->kpad,
                           out + ob + m * ol + c0, ol, c - c0, 1);
        }
    }
    (void)w;
}

/* ---- weight gradient: dw[g, t, i, o] += sum_cells in[cell_in + off[t], g, i] * grad[cell, g, o]
 * The rows are taken a block at a time (ROWS_PER_BLOCK) so that the block's input and gradient
 * stay in cache while every (tap, channel) tile passes over them. */
static inline __attribute__((always_inline)) ATTR void SUF(wtile)(
    const SCAL *in, const SCAL *grad, const i64 *ibs, const i64 *obs, i64 nrows, i64 L,
    i64 il, i64 ol, SCAL *dw, i64 kpad, const int mb)
{
    VEC acc[MB][NV];
    for (int a = 0; a < mb; a++)
        for (int v = 0; v < NV; v++) acc[a][v] = *(const UVEC *)(dw + a * kpad + v * VL);
    for (i64 rr = 0; rr < nrows; rr++) {
        const SCAL *xp = in + ibs[rr];
        const SCAL *gp = grad + obs[rr];
        for (i64 m = 0; m < L; m++) {
            VEC gv[NV];
            for (int v = 0; v < NV; v++) gv[v] = *(const UVEC *)(gp + m * ol + v * VL);
            for (int a = 0; a < mb; a++) {
                SCAL x = xp[m * il + a];
                for (int v = 0; v < NV; v++) acc[a][v] += x * gv[v];
            }
        }
    }
    for (int a = 0; a < mb; a++)
        for (int v = 0; v < NV; v++) *(UVEC *)(dw + a * kpad + v * VL) = acc[a][v];
}

static ATTR void SUF(dense_wgrad)(const Job *j)
{
    const SCAL *in = j->in, *grad = j->w;
    SCAL *dw = j->out;          /* (groups, taps, kin, kpad), accumulated into */
    const i64 L = j->count[j->nd - 1], il = j->istep[j->nd - 1], ol = j->ostep[j->nd - 1];
    i64 ibs[ROWS_PER_BLOCK], obs[ROWS_PER_BLOCK];
    for (i64 r0 = j->row0; r0 < j->row1; r0 += ROWS_PER_BLOCK) {
        i64 nrows = j->row1 - r0 < ROWS_PER_BLOCK ? j->row1 - r0 : ROWS_PER_BLOCK;
        for (i64 rr = 0; rr < nrows; rr++) row_base(j, r0 + rr, &ibs[rr], &obs[rr]);
        for (i64 g = 0; g < j->groups; g++)
            for (i64 t = 0; t < j->taps; t++) {
                const SCAL *xin = in + j->off[t] + g * j->kin;
                SCAL *dwt = dw + (g * j->taps + t) * j->kin * j->kpad;
                for (i64 o0 = 0; o0 < j->kout; o0 += NV * VL) {
                    const SCAL *gg = grad + g * j->kout + o0;
                    i64 i = 0;
                    for (; i + MB <= j->kin; i += MB)
                        SUF(wtile)(xin + i, gg, ibs, obs, nrows, L, il, ol,
                                   dwt + i * j->kpad + o0, j->kpad, MB);
                    for (; i < j->kin; i++)
                        SUF(wtile)(xin + i, gg, ibs, obs, nrows, L, il, ol,
                                   dwt + i * j->kpad + o0, j->kpad, 1);
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

static void (*const SUF(kernels)[4])(const Job *) = {
    SUF(dense), SUF(depthwise), SUF(dense_wgrad), SUF(depthwise_wgrad)};

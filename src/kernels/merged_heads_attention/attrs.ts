/** The attributes of the strided per-head product kernel (`MllmHeadsMatMul`). */

/** Where value [b, h, row, col] of a per-head matrix lies in its flat buffer: b·batch + h·head + row·row + col·col. */
export interface HeadsLayout {
  readonly batch: number;
  readonly head: number;
  readonly row: number;
  readonly col: number;
}

/**
 * out[b, h, m, n] = Σ_k left[b, h, m, k] · right[b, h, k, n], for b < batch, h < heads, m < rows,
 * n < cols, k < inner, each operand read (and the output written) through its layout. The output's
 * layout must place the batch·heads·rows·cols values of `outShape` once each.
 */
export interface HeadsMatMulAttrs {
  readonly batch: number;
  readonly heads: number;
  readonly rows: number;
  readonly cols: number;
  readonly inner: number;
  readonly left: HeadsLayout;
  readonly right: HeadsLayout;
  readonly out: HeadsLayout;
  readonly outShape: readonly number[];
}

/** x [B, T, H·Dh] seen as [B, H, T, Dh] (the heads' split without a transpose). */
export function mergedLayout(T: number, heads: number, headDim: number): HeadsLayout {
  return { batch: T * heads * headDim, head: headDim, row: heads * headDim, col: 1 };
}

/** x [B, T, H·Dh] seen as [B, H, Dh, T] (a key's transpose). */
export function mergedTransposedLayout(T: number, heads: number, headDim: number): HeadsLayout {
  const { batch, head, row, col } = mergedLayout(T, heads, headDim);
  return { batch, head, row: col, col: row };
}

/** x [B, H, R, C], contiguous. */
export function contiguousLayout(heads: number, R: number, C: number): HeadsLayout {
  return { batch: heads * R * C, head: R * C, row: C, col: 1 };
}

/** x [B, H, R, C] seen as [B, H, C, R] (its transpose). */
export function transposedLayout(heads: number, R: number, C: number): HeadsLayout {
  return { batch: heads * R * C, head: R * C, row: 1, col: C };
}

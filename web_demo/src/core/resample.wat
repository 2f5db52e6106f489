;; Pillow's 8-bit BILINEAR resample (libImaging/Resample.c) as WebAssembly SIMD: the two passes of
;; the photo rule, `center-crop-bilinear` v1 and v2, and v2's step 1b on full blocks (Pillow's
;; Image.reduce; at the end). photo.ts says the rule; this file is only its speed.
;; A pixel is 4 bytes, RGBA (the 4th lane is carried and ignored); each output pixel weighs `taps`
;; consecutive inputs from its start (the kernels are zero-padded to one width), in int32 fixed
;; point with 22 fractional bits, rounded down and clamped to 0..255 as Pillow's clip8.
;; Built into resample_wasm.ts by tools/build_wasm.mjs (npm run wasm).
(module
  (memory (export "memory") 1)

  ;; The horizontal pass: `rows` rows of pixels from `src` (`srcStride` bytes apart) to rows of
  ;; `outWidth` pixels at `dst` (`dstStride` bytes apart). The taps go in pairs, with
  ;; i32x4.dot_i16x8_s (two 16-bit products summed per lane, one instruction): a pair's two
  ;; pixels become [r0 r1 g0 g1 b0 b1 a0 a1] as i16, and each 22-bit weight w is split as
  ;; w = hi*2048 + lo (both below 2^11, so 16-bit), the sum being (sum of p*hi)*2048 + (sum of
  ;; p*lo), the same integer. `spans`: per output pixel, its first input pixel and its number of
  ;; pairs; `weights`: per output pixel, `stride` pairs of two v128 weight vectors, [hi0 hi1] x 4
  ;; then [lo0 lo1] x 4 as i16 (an odd count's last pair weighs one more pixel by 0).
  ;; It returns the AND of every pixel word it read: its top byte is 255 exactly when all of
  ;; them are opaque (then compositing over white first would have changed nothing).
  (func (export "horizontal")
    (param $src i32) (param $srcStride i32) (param $rows i32)
    (param $spans i32) (param $weights i32) (param $stride i32) (param $outWidth i32)
    (param $dst i32) (param $dstStride i32) (result i32)
    (local $all v128) (local $x i32)
    (local $in i32) (local $w i32) (local $t i32) (local $out i32)
    (local $hi v128) (local $lo v128) (local $a v128) (local $b v128) (local $c v128) (local $d v128)
    (local $highA v128) (local $lowA v128) (local $highB v128) (local $lowB v128)
    (local $highC v128) (local $lowC v128) (local $highD v128) (local $lowD v128)
    ;; Four rows at a time (they share every weight); a count not a multiple of 4 takes up to 3
    ;; rows after the last, which the caller provides (read, and their outputs written, but unused).
    (local.set $all (v128.const i32x4 -1 -1 -1 -1))
    (block $rowsDone
      (loop $row
        (br_if $rowsDone (i32.le_s (local.get $rows) (i32.const 0)))
        (local.set $x (i32.const 0))
        (local.set $out (local.get $dst))
        (loop $pixel
          (local.set $in (i32.add (local.get $src)
            (i32.shl (i32.load (i32.add (local.get $spans) (i32.shl (local.get $x) (i32.const 3)))) (i32.const 2))))
          (local.set $t (i32.load offset=4 (i32.add (local.get $spans) (i32.shl (local.get $x) (i32.const 3)))))
          (local.set $w (i32.add (local.get $weights) (i32.shl (i32.mul (local.get $x) (local.get $stride)) (i32.const 5))))
          (local.set $highA (v128.const i32x4 0 0 0 0))
          (local.set $highB (local.get $highA))
          (local.set $highC (local.get $highA))
          (local.set $highD (local.get $highA))
          (local.set $lowA (v128.const i32x4 0x200000 0x200000 0x200000 0x200000))
          (local.set $lowB (local.get $lowA))
          (local.set $lowC (local.get $lowA))
          (local.set $lowD (local.get $lowA))
          (loop $pair
            (local.set $hi (v128.load (local.get $w)))
            (local.set $lo (v128.load offset=16 (local.get $w)))
            ;; Two pixels of each row in the low 8 bytes (the high 8 are 0, left out of the AND at the end).
            (local.set $a (v128.load64_zero (local.get $in)))
            (local.set $b (v128.load64_zero (i32.add (local.get $in) (local.get $srcStride))))
            (local.set $c (v128.load64_zero (i32.add (local.get $in) (i32.shl (local.get $srcStride) (i32.const 1)))))
            (local.set $d (v128.load64_zero (i32.add (i32.add (local.get $in) (local.get $srcStride)) (i32.shl (local.get $srcStride) (i32.const 1)))))
            (local.set $all (v128.and (v128.and (local.get $all) (v128.and (local.get $a) (local.get $b)))
              (v128.and (local.get $c) (local.get $d))))
            (local.set $a (i8x16.shuffle 0 8 4 8 1 8 5 8 2 8 6 8 3 8 7 8 (local.get $a) (local.get $a)))
            (local.set $b (i8x16.shuffle 0 8 4 8 1 8 5 8 2 8 6 8 3 8 7 8 (local.get $b) (local.get $b)))
            (local.set $c (i8x16.shuffle 0 8 4 8 1 8 5 8 2 8 6 8 3 8 7 8 (local.get $c) (local.get $c)))
            (local.set $d (i8x16.shuffle 0 8 4 8 1 8 5 8 2 8 6 8 3 8 7 8 (local.get $d) (local.get $d)))
            (local.set $highA (i32x4.add (local.get $highA) (i32x4.dot_i16x8_s (local.get $a) (local.get $hi))))
            (local.set $lowA (i32x4.add (local.get $lowA) (i32x4.dot_i16x8_s (local.get $a) (local.get $lo))))
            (local.set $highB (i32x4.add (local.get $highB) (i32x4.dot_i16x8_s (local.get $b) (local.get $hi))))
            (local.set $lowB (i32x4.add (local.get $lowB) (i32x4.dot_i16x8_s (local.get $b) (local.get $lo))))
            (local.set $highC (i32x4.add (local.get $highC) (i32x4.dot_i16x8_s (local.get $c) (local.get $hi))))
            (local.set $lowC (i32x4.add (local.get $lowC) (i32x4.dot_i16x8_s (local.get $c) (local.get $lo))))
            (local.set $highD (i32x4.add (local.get $highD) (i32x4.dot_i16x8_s (local.get $d) (local.get $hi))))
            (local.set $lowD (i32x4.add (local.get $lowD) (i32x4.dot_i16x8_s (local.get $d) (local.get $lo))))
            (local.set $in (i32.add (local.get $in) (i32.const 8)))
            (local.set $w (i32.add (local.get $w) (i32.const 32)))
            (br_if $pair (local.tee $t (i32.sub (local.get $t) (i32.const 1)))))
          (local.set $a
            (i8x16.narrow_i16x8_u
              (i16x8.narrow_i32x4_s
                (i32x4.shr_s (i32x4.add (i32x4.shl (local.get $highA) (i32.const 11)) (local.get $lowA)) (i32.const 22))
                (i32x4.shr_s (i32x4.add (i32x4.shl (local.get $highB) (i32.const 11)) (local.get $lowB)) (i32.const 22)))
              (i16x8.narrow_i32x4_s
                (i32x4.shr_s (i32x4.add (i32x4.shl (local.get $highC) (i32.const 11)) (local.get $lowC)) (i32.const 22))
                (i32x4.shr_s (i32x4.add (i32x4.shl (local.get $highD) (i32.const 11)) (local.get $lowD)) (i32.const 22)))))
          (v128.store32_lane 0 (local.get $out) (local.get $a))
          (v128.store32_lane 1 (i32.add (local.get $out) (local.get $dstStride)) (local.get $a))
          (v128.store32_lane 2 (i32.add (local.get $out) (i32.shl (local.get $dstStride) (i32.const 1))) (local.get $a))
          (v128.store32_lane 3 (i32.add (i32.add (local.get $out) (local.get $dstStride)) (i32.shl (local.get $dstStride) (i32.const 1))) (local.get $a))
          (local.set $out (i32.add (local.get $out) (i32.const 4)))
          (br_if $pixel (i32.lt_u (local.tee $x (i32.add (local.get $x) (i32.const 1))) (local.get $outWidth))))
        (local.set $src (i32.add (local.get $src) (i32.shl (local.get $srcStride) (i32.const 2))))
        (local.set $dst (i32.add (local.get $dst) (i32.shl (local.get $dstStride) (i32.const 2))))
        (local.set $rows (i32.sub (local.get $rows) (i32.const 4)))
        (br $row)))
    (i32.and (i32x4.extract_lane 0 (local.get $all)) (i32x4.extract_lane 1 (local.get $all))))

  ;; The vertical pass, to packed RGB: `outHeight` rows of `dstRowBytes` bytes at `dst`, each
  ;; from rows of `src` (`stride` bytes apart, a multiple of 16), 16 bytes at a time. Rows go in
  ;; pairs as the horizontal pass's taps do, with the same `spans` (first row, number of pairs)
  ;; and `weights` (per output row, `pairStride` pairs [hi0 hi1] x 4, [lo0 lo1] x 4): a pair's two
  ;; rows of 16 bytes are interleaved [a0 b0 a1 b1 ...] and widened to i16, four groups of four
  ;; bytes. Each 16 bytes (4 pixels) store 16 bytes of which the last 4 are overwritten by the
  ;; next: a row's padding pixels spill into the next row's start, the last row's into 16 spare
  ;; bytes after the output.
  (func (export "vertical")
    (param $src i32) (param $stride i32) (param $spans i32) (param $weights i32) (param $pairStride i32)
    (param $outHeight i32) (param $dst i32) (param $dstRowBytes i32)
    (local $y i32) (local $out i32) (local $i i32) (local $in i32) (local $w i32) (local $t i32)
    (local $top i32) (local $firstWeights i32) (local $pairs i32)
    (local $hi v128) (local $lo v128) (local $a v128) (local $b v128) (local $mixed v128) (local $wide v128)
    (local $h0 v128) (local $h1 v128) (local $h2 v128) (local $h3 v128)
    (local $l0 v128) (local $l1 v128) (local $l2 v128) (local $l3 v128)
    (block $rowsDone
      (loop $row
        (br_if $rowsDone (i32.ge_u (local.get $y) (local.get $outHeight)))
        (local.set $top (i32.add (local.get $src)
          (i32.mul (i32.load (i32.add (local.get $spans) (i32.shl (local.get $y) (i32.const 3)))) (local.get $stride))))
        (local.set $pairs (i32.load offset=4 (i32.add (local.get $spans) (i32.shl (local.get $y) (i32.const 3)))))
        (local.set $firstWeights (i32.add (local.get $weights) (i32.shl (i32.mul (local.get $y) (local.get $pairStride)) (i32.const 5))))
        (local.set $i (i32.const 0))
        (local.set $out (local.get $dst))
        (loop $column
          (local.set $h0 (v128.const i32x4 0 0 0 0))
          (local.set $h1 (local.get $h0))
          (local.set $h2 (local.get $h0))
          (local.set $h3 (local.get $h0))
          (local.set $l0 (v128.const i32x4 0x200000 0x200000 0x200000 0x200000))
          (local.set $l1 (local.get $l0))
          (local.set $l2 (local.get $l0))
          (local.set $l3 (local.get $l0))
          (local.set $in (i32.add (local.get $top) (local.get $i)))
          (local.set $w (local.get $firstWeights))
          (local.set $t (local.get $pairs))
          (loop $pair
            (local.set $hi (v128.load (local.get $w)))
            (local.set $lo (v128.load offset=16 (local.get $w)))
            (local.set $a (v128.load (local.get $in)))
            (local.set $b (v128.load (i32.add (local.get $in) (local.get $stride))))
            (local.set $mixed (i8x16.shuffle 0 16 1 17 2 18 3 19 4 20 5 21 6 22 7 23 (local.get $a) (local.get $b)))
            (local.set $wide (i16x8.extend_low_i8x16_u (local.get $mixed)))
            (local.set $h0 (i32x4.add (local.get $h0) (i32x4.dot_i16x8_s (local.get $wide) (local.get $hi))))
            (local.set $l0 (i32x4.add (local.get $l0) (i32x4.dot_i16x8_s (local.get $wide) (local.get $lo))))
            (local.set $wide (i16x8.extend_high_i8x16_u (local.get $mixed)))
            (local.set $h1 (i32x4.add (local.get $h1) (i32x4.dot_i16x8_s (local.get $wide) (local.get $hi))))
            (local.set $l1 (i32x4.add (local.get $l1) (i32x4.dot_i16x8_s (local.get $wide) (local.get $lo))))
            (local.set $mixed (i8x16.shuffle 8 24 9 25 10 26 11 27 12 28 13 29 14 30 15 31 (local.get $a) (local.get $b)))
            (local.set $wide (i16x8.extend_low_i8x16_u (local.get $mixed)))
            (local.set $h2 (i32x4.add (local.get $h2) (i32x4.dot_i16x8_s (local.get $wide) (local.get $hi))))
            (local.set $l2 (i32x4.add (local.get $l2) (i32x4.dot_i16x8_s (local.get $wide) (local.get $lo))))
            (local.set $wide (i16x8.extend_high_i8x16_u (local.get $mixed)))
            (local.set $h3 (i32x4.add (local.get $h3) (i32x4.dot_i16x8_s (local.get $wide) (local.get $hi))))
            (local.set $l3 (i32x4.add (local.get $l3) (i32x4.dot_i16x8_s (local.get $wide) (local.get $lo))))
            (local.set $in (i32.add (local.get $in) (i32.shl (local.get $stride) (i32.const 1))))
            (local.set $w (i32.add (local.get $w) (i32.const 32)))
            (br_if $pair (local.tee $t (i32.sub (local.get $t) (i32.const 1)))))
          (local.set $a
            (i8x16.narrow_i16x8_u
              (i16x8.narrow_i32x4_s
                (i32x4.shr_s (i32x4.add (i32x4.shl (local.get $h0) (i32.const 11)) (local.get $l0)) (i32.const 22))
                (i32x4.shr_s (i32x4.add (i32x4.shl (local.get $h1) (i32.const 11)) (local.get $l1)) (i32.const 22)))
              (i16x8.narrow_i32x4_s
                (i32x4.shr_s (i32x4.add (i32x4.shl (local.get $h2) (i32.const 11)) (local.get $l2)) (i32.const 22))
                (i32x4.shr_s (i32x4.add (i32x4.shl (local.get $h3) (i32.const 11)) (local.get $l3)) (i32.const 22)))))
          (v128.store (local.get $out)
            (i8x16.shuffle 0 1 2 4 5 6 8 9 10 12 13 14 0 0 0 0 (local.get $a) (local.get $a)))
          (local.set $out (i32.add (local.get $out) (i32.const 12)))
          (br_if $column (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 16))) (local.get $stride))))
        (local.set $dst (i32.add (local.get $dst) (local.get $dstRowBytes)))
        (local.set $y (i32.add (local.get $y) (i32.const 1)))
        (br $row))))

  ;; Step 1b of `center-crop-bilinear` v2 (photo.ts says the rule): the mean of each full s x s
  ;; block of pixels, for s = 2, 4 and 8, as (sum + n/2) >> log2(n) with n = s*s (what the rule's
  ;; ((sum + n//2) * m(n)) >> 24 is for a power of two). `rows` rows of `cols` output pixels
  ;; at `dst` (`dstStride` bytes apart), output row y from the s source rows from `src` +
  ;; y*s*`srcStride`. Four outputs at a time, from 4*s pixels of each of the s rows, i.e. s
  ;; chunks of 16 bytes: a chunk's pixels p0..p3 are shuffled to [r0 r1 g0 g1 b0 b1 a0 a1 r2 r3
  ;; ...] and i16x8.extadd_pairwise_i8x16_u adds each pair, giving [p0+p1, p2+p3] per channel as
  ;; i16; these add over the s rows and, for s = 4 and 8, the pairs' halves add into the block
  ;; sums (at most 64 * 255 + 32 < 2^15). The 4th lane (alpha) is averaged alike and unused.
  ;; A count not a multiple of 4 reads up to 3*s pixels past each row's last block and writes
  ;; up to 3 pixels past each output row. Returns the AND of every pixel word read, as
  ;; `horizontal` does.
  (func (export "reduce2")
    (param $src i32) (param $srcStride i32) (param $rows i32) (param $cols i32)
    (param $dst i32) (param $dstStride i32) (result i32)
    (local $all v128) (local $in i32) (local $out i32) (local $left i32) (local $at i32) (local $t i32)
    (local $a v128) (local $b v128)
    (local $c0 v128) (local $c1 v128)
    (local $v0 v128) (local $v1 v128)
    (local.set $all (v128.const i32x4 -1 -1 -1 -1))
    (block $rowsDone
      (loop $row
        (br_if $rowsDone (i32.le_s (local.get $rows) (i32.const 0)))
        (local.set $in (local.get $src))
        (local.set $out (local.get $dst))
        (local.set $left (local.get $cols))
        (block $groupsDone
          (loop $group
            (br_if $groupsDone (i32.le_s (local.get $left) (i32.const 0)))
            (local.set $v0 (v128.const i32x4 0 0 0 0))
            (local.set $v1 (v128.const i32x4 0 0 0 0))
            (local.set $at (local.get $in))
            (local.set $t (i32.const 2))
            (loop $blockRow
              (local.set $c0 (v128.load (local.get $at)))
              (local.set $c1 (v128.load offset=16 (local.get $at)))
              (local.set $all (v128.and (local.get $all) (v128.and (local.get $c0) (local.get $c1))))
              (local.set $v0 (i16x8.add (local.get $v0) (i16x8.extadd_pairwise_i8x16_u (i8x16.shuffle 0 4 1 5 2 6 3 7 8 12 9 13 10 14 11 15 (local.get $c0) (local.get $c0)))))
              (local.set $v1 (i16x8.add (local.get $v1) (i16x8.extadd_pairwise_i8x16_u (i8x16.shuffle 0 4 1 5 2 6 3 7 8 12 9 13 10 14 11 15 (local.get $c1) (local.get $c1)))))
              (local.set $at (i32.add (local.get $at) (local.get $srcStride)))
              (br_if $blockRow (local.tee $t (i32.sub (local.get $t) (i32.const 1)))))
            ;; v0 = [o0 o1], v1 = [o2 o3]
            ;; (sum + n/2) >> log2(n), n = 4
            (v128.store (local.get $out)
              (i8x16.narrow_i16x8_u
                (i16x8.shr_u (i16x8.add (local.get $v0) (v128.const i16x8 2 2 2 2 2 2 2 2)) (i32.const 2))
                (i16x8.shr_u (i16x8.add (local.get $v1) (v128.const i16x8 2 2 2 2 2 2 2 2)) (i32.const 2))))
            (local.set $in (i32.add (local.get $in) (i32.const 32)))
            (local.set $out (i32.add (local.get $out) (i32.const 16)))
            (local.set $left (i32.sub (local.get $left) (i32.const 4)))
            (br $group)))
        (local.set $src (i32.add (local.get $src) (i32.mul (local.get $srcStride) (i32.const 2))))
        (local.set $dst (i32.add (local.get $dst) (local.get $dstStride)))
        (local.set $rows (i32.sub (local.get $rows) (i32.const 1)))
        (br $row)))
    (i32.and (i32.and (i32x4.extract_lane 0 (local.get $all)) (i32x4.extract_lane 1 (local.get $all)))
      (i32.and (i32x4.extract_lane 2 (local.get $all)) (i32x4.extract_lane 3 (local.get $all)))))

  (func (export "reduce4")
    (param $src i32) (param $srcStride i32) (param $rows i32) (param $cols i32)
    (param $dst i32) (param $dstStride i32) (result i32)
    (local $all v128) (local $in i32) (local $out i32) (local $left i32) (local $at i32) (local $t i32)
    (local $a v128) (local $b v128)
    (local $c0 v128) (local $c1 v128) (local $c2 v128) (local $c3 v128)
    (local $v0 v128) (local $v1 v128) (local $v2 v128) (local $v3 v128)
    (local.set $all (v128.const i32x4 -1 -1 -1 -1))
    (block $rowsDone
      (loop $row
        (br_if $rowsDone (i32.le_s (local.get $rows) (i32.const 0)))
        (local.set $in (local.get $src))
        (local.set $out (local.get $dst))
        (local.set $left (local.get $cols))
        (block $groupsDone
          (loop $group
            (br_if $groupsDone (i32.le_s (local.get $left) (i32.const 0)))
            (local.set $v0 (v128.const i32x4 0 0 0 0))
            (local.set $v1 (v128.const i32x4 0 0 0 0))
            (local.set $v2 (v128.const i32x4 0 0 0 0))
            (local.set $v3 (v128.const i32x4 0 0 0 0))
            (local.set $at (local.get $in))
            (local.set $t (i32.const 4))
            (loop $blockRow
              (local.set $c0 (v128.load (local.get $at)))
              (local.set $c1 (v128.load offset=16 (local.get $at)))
              (local.set $c2 (v128.load offset=32 (local.get $at)))
              (local.set $c3 (v128.load offset=48 (local.get $at)))
              (local.set $all (v128.and (local.get $all) (v128.and (v128.and (v128.and (local.get $c0) (local.get $c1)) (local.get $c2)) (local.get $c3))))
              (local.set $v0 (i16x8.add (local.get $v0) (i16x8.extadd_pairwise_i8x16_u (i8x16.shuffle 0 4 1 5 2 6 3 7 8 12 9 13 10 14 11 15 (local.get $c0) (local.get $c0)))))
              (local.set $v1 (i16x8.add (local.get $v1) (i16x8.extadd_pairwise_i8x16_u (i8x16.shuffle 0 4 1 5 2 6 3 7 8 12 9 13 10 14 11 15 (local.get $c1) (local.get $c1)))))
              (local.set $v2 (i16x8.add (local.get $v2) (i16x8.extadd_pairwise_i8x16_u (i8x16.shuffle 0 4 1 5 2 6 3 7 8 12 9 13 10 14 11 15 (local.get $c2) (local.get $c2)))))
              (local.set $v3 (i16x8.add (local.get $v3) (i16x8.extadd_pairwise_i8x16_u (i8x16.shuffle 0 4 1 5 2 6 3 7 8 12 9 13 10 14 11 15 (local.get $c3) (local.get $c3)))))
              (local.set $at (i32.add (local.get $at) (local.get $srcStride)))
              (br_if $blockRow (local.tee $t (i32.sub (local.get $t) (i32.const 1)))))
            ;; output k is the two halves of vk added: [o0 o1] and [o2 o3] from the halves of v0, v1 and v2, v3
            (local.set $a (i16x8.add
              (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $v0) (local.get $v1))
              (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $v0) (local.get $v1))))
            (local.set $b (i16x8.add
              (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $v2) (local.get $v3))
              (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $v2) (local.get $v3))))
            ;; (sum + n/2) >> log2(n), n = 16
            (v128.store (local.get $out)
              (i8x16.narrow_i16x8_u
                (i16x8.shr_u (i16x8.add (local.get $a) (v128.const i16x8 8 8 8 8 8 8 8 8)) (i32.const 4))
                (i16x8.shr_u (i16x8.add (local.get $b) (v128.const i16x8 8 8 8 8 8 8 8 8)) (i32.const 4))))
            (local.set $in (i32.add (local.get $in) (i32.const 64)))
            (local.set $out (i32.add (local.get $out) (i32.const 16)))
            (local.set $left (i32.sub (local.get $left) (i32.const 4)))
            (br $group)))
        (local.set $src (i32.add (local.get $src) (i32.mul (local.get $srcStride) (i32.const 4))))
        (local.set $dst (i32.add (local.get $dst) (local.get $dstStride)))
        (local.set $rows (i32.sub (local.get $rows) (i32.const 1)))
        (br $row)))
    (i32.and (i32.and (i32x4.extract_lane 0 (local.get $all)) (i32x4.extract_lane 1 (local.get $all)))
      (i32.and (i32x4.extract_lane 2 (local.get $all)) (i32x4.extract_lane 3 (local.get $all)))))

  (func (export "reduce8")
    (param $src i32) (param $srcStride i32) (param $rows i32) (param $cols i32)
    (param $dst i32) (param $dstStride i32) (result i32)
    (local $all v128) (local $in i32) (local $out i32) (local $left i32) (local $at i32) (local $t i32)
    (local $a v128) (local $b v128)
    (local $c0 v128) (local $c1 v128) (local $c2 v128) (local $c3 v128) (local $c4 v128) (local $c5 v128) (local $c6 v128) (local $c7 v128)
    (local $v0 v128) (local $v1 v128) (local $v2 v128) (local $v3 v128) (local $v4 v128) (local $v5 v128) (local $v6 v128) (local $v7 v128)
    (local.set $all (v128.const i32x4 -1 -1 -1 -1))
    (block $rowsDone
      (loop $row
        (br_if $rowsDone (i32.le_s (local.get $rows) (i32.const 0)))
        (local.set $in (local.get $src))
        (local.set $out (local.get $dst))
        (local.set $left (local.get $cols))
        (block $groupsDone
          (loop $group
            (br_if $groupsDone (i32.le_s (local.get $left) (i32.const 0)))
            (local.set $v0 (v128.const i32x4 0 0 0 0))
            (local.set $v1 (v128.const i32x4 0 0 0 0))
            (local.set $v2 (v128.const i32x4 0 0 0 0))
            (local.set $v3 (v128.const i32x4 0 0 0 0))
            (local.set $v4 (v128.const i32x4 0 0 0 0))
            (local.set $v5 (v128.const i32x4 0 0 0 0))
            (local.set $v6 (v128.const i32x4 0 0 0 0))
            (local.set $v7 (v128.const i32x4 0 0 0 0))
            (local.set $at (local.get $in))
            (local.set $t (i32.const 8))
            (loop $blockRow
              (local.set $c0 (v128.load (local.get $at)))
              (local.set $c1 (v128.load offset=16 (local.get $at)))
              (local.set $c2 (v128.load offset=32 (local.get $at)))
              (local.set $c3 (v128.load offset=48 (local.get $at)))
              (local.set $c4 (v128.load offset=64 (local.get $at)))
              (local.set $c5 (v128.load offset=80 (local.get $at)))
              (local.set $c6 (v128.load offset=96 (local.get $at)))
              (local.set $c7 (v128.load offset=112 (local.get $at)))
              (local.set $all (v128.and (local.get $all) (v128.and (v128.and (v128.and (v128.and (v128.and (v128.and (v128.and (local.get $c0) (local.get $c1)) (local.get $c2)) (local.get $c3)) (local.get $c4)) (local.get $c5)) (local.get $c6)) (local.get $c7))))
              (local.set $v0 (i16x8.add (local.get $v0) (i16x8.extadd_pairwise_i8x16_u (i8x16.shuffle 0 4 1 5 2 6 3 7 8 12 9 13 10 14 11 15 (local.get $c0) (local.get $c0)))))
              (local.set $v1 (i16x8.add (local.get $v1) (i16x8.extadd_pairwise_i8x16_u (i8x16.shuffle 0 4 1 5 2 6 3 7 8 12 9 13 10 14 11 15 (local.get $c1) (local.get $c1)))))
              (local.set $v2 (i16x8.add (local.get $v2) (i16x8.extadd_pairwise_i8x16_u (i8x16.shuffle 0 4 1 5 2 6 3 7 8 12 9 13 10 14 11 15 (local.get $c2) (local.get $c2)))))
              (local.set $v3 (i16x8.add (local.get $v3) (i16x8.extadd_pairwise_i8x16_u (i8x16.shuffle 0 4 1 5 2 6 3 7 8 12 9 13 10 14 11 15 (local.get $c3) (local.get $c3)))))
              (local.set $v4 (i16x8.add (local.get $v4) (i16x8.extadd_pairwise_i8x16_u (i8x16.shuffle 0 4 1 5 2 6 3 7 8 12 9 13 10 14 11 15 (local.get $c4) (local.get $c4)))))
              (local.set $v5 (i16x8.add (local.get $v5) (i16x8.extadd_pairwise_i8x16_u (i8x16.shuffle 0 4 1 5 2 6 3 7 8 12 9 13 10 14 11 15 (local.get $c5) (local.get $c5)))))
              (local.set $v6 (i16x8.add (local.get $v6) (i16x8.extadd_pairwise_i8x16_u (i8x16.shuffle 0 4 1 5 2 6 3 7 8 12 9 13 10 14 11 15 (local.get $c6) (local.get $c6)))))
              (local.set $v7 (i16x8.add (local.get $v7) (i16x8.extadd_pairwise_i8x16_u (i8x16.shuffle 0 4 1 5 2 6 3 7 8 12 9 13 10 14 11 15 (local.get $c7) (local.get $c7)))))
              (local.set $at (i32.add (local.get $at) (local.get $srcStride)))
              (br_if $blockRow (local.tee $t (i32.sub (local.get $t) (i32.const 1)))))
            ;; output k is the halves of v(2k) + v(2k+1) added
            (local.set $v0 (i16x8.add (local.get $v0) (local.get $v1)))
            (local.set $v1 (i16x8.add (local.get $v2) (local.get $v3)))
            (local.set $v2 (i16x8.add (local.get $v4) (local.get $v5)))
            (local.set $v3 (i16x8.add (local.get $v6) (local.get $v7)))
            (local.set $a (i16x8.add
              (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $v0) (local.get $v1))
              (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $v0) (local.get $v1))))
            (local.set $b (i16x8.add
              (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $v2) (local.get $v3))
              (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $v2) (local.get $v3))))
            ;; (sum + n/2) >> log2(n), n = 64
            (v128.store (local.get $out)
              (i8x16.narrow_i16x8_u
                (i16x8.shr_u (i16x8.add (local.get $a) (v128.const i16x8 32 32 32 32 32 32 32 32)) (i32.const 6))
                (i16x8.shr_u (i16x8.add (local.get $b) (v128.const i16x8 32 32 32 32 32 32 32 32)) (i32.const 6))))
            (local.set $in (i32.add (local.get $in) (i32.const 128)))
            (local.set $out (i32.add (local.get $out) (i32.const 16)))
            (local.set $left (i32.sub (local.get $left) (i32.const 4)))
            (br $group)))
        (local.set $src (i32.add (local.get $src) (i32.mul (local.get $srcStride) (i32.const 8))))
        (local.set $dst (i32.add (local.get $dst) (local.get $dstStride)))
        (local.set $rows (i32.sub (local.get $rows) (i32.const 1)))
        (br $row)))
    (i32.and (i32.and (i32x4.extract_lane 0 (local.get $all)) (i32x4.extract_lane 1 (local.get $all)))
      (i32.and (i32x4.extract_lane 2 (local.get $all)) (i32x4.extract_lane 3 (local.get $all))))))

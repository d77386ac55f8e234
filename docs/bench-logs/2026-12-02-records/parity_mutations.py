#!/usr/bin/env python3
"""docs/correctness.md, "Does it catch bugs?": each single-line mutation, made one at a time in a scratch copy
of the tree (with its build/), must make build/tests/test_parity fail; prints the first failing comparison.

    /usr/bin/python3 docs/bench-logs/2026-12-02-records/parity_mutations.py SCRATCH_COPY

SCRATCH_COPY: a copy of the repository (never the checkout itself: the sources are edited). Each mutation is
an exact text replacement that must match once; the file is restored (with a new mtime, so that make
rebuilds it) before the next one.
"""
import os
import re
import subprocess
import sys

M = [
    ("pooling: average backward without 1/count", "src/layers/pooling.c",
     "dxs[(p * W + q) * C + ch] += g[ch] * inv;", "dxs[(p * W + q) * C + ch] += g[ch] * (inv > 0.0f ? 1.0f : inv);"),
    ("pooling: max backward sending the gradient one pixel left", "src/layers/pooling.c",
     "dxs[as[e]] += dys[e];", "dxs[as[e] >= l->in.c ? as[e] - l->in.c : as[e]] += dys[e];"),
    ("pooling: global average backward without 1/(h*w)", "src/layers/pooling.c",
     "= dy[(size_t)s * C + ch] * inv;", "= dy[(size_t)s * C + ch] * (inv > 0.0f ? 1.0f : inv);"),
    ("pooling: TF \"same\" with the odd pixel before", "src/layers/pooling.c",
     "*pad_before = total > 0 ? total / 2 : 0;", "*pad_before = total > 0 ? (total + 1) / 2 : 0;"),
    ("batch_norm: backward without the xhat * mean(dy * xhat) term", "src/layers/batch_norm.c",
     "- mdy[ch] - xhat * mdyx[ch]);", "- mdy[ch] - 0.0f * xhat * mdyx[ch]);"),
    ("batch_norm: biased moving variance for images", "src/layers/batch_norm.c",
     "bessel = rows > 1 ? (float)rows / (float)(rows - 1) : 1.0f;", "bessel = rows > 1 ? 1.0f : 1.0f;"),
    ("batch_norm: unbiased moving variance for vectors", "src/layers/batch_norm.c",
     "mv[ch] -= (mv[ch] - (float)w->tot2[ch]) * f;",
     "mv[ch] -= (mv[ch] - (float)w->tot2[ch] * (float)(rows / (rows - 1))) * f;"),
    ("resizing: bilinear backward with the column weights swapped", "src/layers/resizing.c",
     "tl[ch] += dt * (1.0f - px.t);\n                tr[ch] += dt * px.t;\n"
     "                bl[ch] += db * (1.0f - px.t);\n                br[ch] += db * px.t;",
     "tl[ch] += dt * px.t;\n                tr[ch] += dt * (1.0f - px.t);\n"
     "                bl[ch] += db * px.t;\n                br[ch] += db * (1.0f - px.t);"),
    ("resizing: nearest rounding instead of flooring", "src/layers/resizing.c",
     "int i = (int)floorf(((float)o + 0.5f) * scale);", "int i = (int)roundf(((float)o + 0.5f) * scale);"),
    ("zero_padding2d: backward cropping one column off", "src/layers/zero_padding2d.c",
     "memcpy(dx + (size_t)r * row_in, dy + src, sizeof(float) * row_in);",
     "memcpy(dx + (size_t)r * row_in, dy + src + l->in.c, sizeof(float) * row_in);"),
    ("activations: elu backward slope 1", "src/layers/activation.c",
     "dy[i] *= y[i] > 0.0f ? 1.0f : y[i] + 1.0f;", "dy[i] *= y[i] > 0.0f ? 1.0f : 1.0f;"),
    ("activations: gelu backward without x*pdf", "src/layers/activation.c",
     "return cdf + x * pdf;", "return cdf + 0.0f * pdf;"),
    ("activations: softmax backward without the dot term", "src/layers/activation.c",
     "dr[j] = yr[j] * (dr[j] - dot);", "dr[j] = yr[j] * (dr[j] - 0.0f * dot);"),
    ("activations: ELU layer ignoring alpha in backward", "src/layers/activation_layers.c",
     "(y[i] + a) * dy[i];", "(y[i] + 1.0f + 0.0f * a) * dy[i];"),
    ("activations: ReLU layer passing the gradient above max_value", "src/layers/activation_layers.c",
     "(v < top ? dy[i] : 0.0f)", "(v < top ? dy[i] : dy[i])"),
    ("activations: fused leaky_relu slope 0.3", "src/layers/activation.c",
     "LEAKY_ALPHA = 0.2f;", "LEAKY_ALPHA = 0.3f;"),
    ("convolutions: depthwise kernel gradient missing the last image", "src/layers/depthwise_conv2d.c",
     "cnn_layer_grad(l, 0), ctx->work, n);", "cnn_layer_grad(l, 0), ctx->work, n - 1);"),
    ("convolutions: depthwise dx ignoring the left padding", "src/layers/conv_common.c",
     "const int ix = ox * g->sw - g->pl + kx * g->dw;\n                if (ix < 0 || ix >= g->iw) continue;\n"
     "                const float *restrict kp",
     "const int ix = ox * g->sw - 0 * g->pl + kx * g->dw;\n                if (ix < 0 || ix >= g->iw) continue;\n"
     "                const float *restrict kp"),
    ("convolutions: TF \"same\" with the odd pixel before", "src/layers/conv_common.c",
     "pad = total > 0 ? total / 2 : 0;", "pad = total > 0 ? (total + 1) / 2 : 0;"),
    ("convolutions: Conv2D bias gradient missing a row per chunk", "src/layers/conv2d.c",
     "for (int r = 0; r < rows; r++) {\n        const float *restrict d = dy + (size_t)r * F;",
     "for (int r = 0; r < rows - 1; r++) {\n        const float *restrict d = dy + (size_t)r * F;"),
    ("convolutions: thin-kernel Conv2D path without bias gradient", "src/layers/conv2d.c",
     "io->need_dx, w->pw, w->pb);", "io->need_dx, w->pw, NULL);"),
    ("convolutions: SeparableConv2D bias gradient one row short", "src/layers/separable_conv2d.c",
     "cnn_column_sums(dy, cnn_layer_grad(l, P_BIAS), (size_t)rows, F);",
     "cnn_column_sums(dy, cnn_layer_grad(l, P_BIAS), (size_t)rows - 1, F);"),
    ("Dense on a 4-D input: bias gradient summed over n rows instead of n*h*w", "src/layers/dense.c",
     "cnn_column_sums(dy, cnn_layer_grad(l, 1), (size_t)rows, units);",
     "cnn_column_sums(dy, cnn_layer_grad(l, 1), (size_t)n, units);"),
    ("model: L1 gradient left out", "src/model/step.c",
     "g[e] += l1 * (float)", "g[e] += 0.0f * l1 * (float)"),
    ("optimizer: PyTorch's eps placement in Adam", "src/optim/adam.c",
     "(sqrtf(v[i]) + eps);", "(sqrtf(v[i]) + eps * sqrtf(1.0f - b2t));"),
]


def run_test(root):
    b = subprocess.run(["nice", "-n", "10", "make", "-s", "-j2", "build/tests/test_parity"], cwd=root,
                       capture_output=True, text=True)
    if b.returncode:
        return "BUILD FAILED: " + (b.stdout + b.stderr).strip().splitlines()[-1]
    t = subprocess.run(["nice", "-n", "10", "build/tests/test_parity"], cwd=root, capture_output=True, text=True,
                       env=dict(os.environ, OMP_NUM_THREADS="1"))
    out = t.stdout + t.stderr
    fails = [l.strip() for l in out.splitlines() if re.search(r"case \w+: ", l)]
    summary = [l.strip() for l in out.splitlines() if "PASSED" in l or "FAILED  ]" in l][:1]
    return "; ".join(fails[:1] + summary) + " (exit %d)" % t.returncode


def main(root):
    print("unmutated:", run_test(root), flush=True)
    for label, path, old, new in M:
        f = os.path.join(root, path)
        src = open(f).read()
        if src.count(old) != 1:
            print("%s: the text to mutate occurs %d times in %s, skipped" % (label, src.count(old), path))
            continue
        open(f, "w").write(src.replace(old, new))
        try:
            print("%s (%s): %s" % (label, path, run_test(root)), flush=True)
        finally:
            open(f, "w").write(src)
    print("restored:", run_test(root), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])

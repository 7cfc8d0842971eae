#!/usr/bin/env python3
"""The summary of a tools/gpu/run.sh run: python3 tools/gpu/summary.py OUT_DIR

Reads OUT_DIR/adapter.json, train.jsonl (mixprec bench train --json lines), torch.jsonl
(bench/torch_lenet.py lines), gemm.jsonl (mixprec bench gemm --json lines) and tests.log (node --test
TAP), and prints: the adapter and the PyTorch device, a table of training images/s per model, batch
and precision for mixprec on webgpu and PyTorch, with the issue's ratios (webgpu fp16 / webgpu fp32,
bar >= 1.5; webgpu fp16 / PyTorch AMP fp16; webgpu fp32 / PyTorch fp32), the GEMM GFLOP/s, the test
pass counts, and last one JSON line with every ratio ("ratios": ...). Missing or failed runs show
as "-" or "fail(rc)", runs with webgpu device errors as "invalid" (no figure). Standard library only (runs wherever python3 does).
"""
import json
import os
import re
import sys

FP16_BAR = 1.5


def read_jsonl(path):
    rows = []
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line.startswith("{"):
                    try:
                        rows.append(json.loads(line))
                    except ValueError:
                        pass
    except OSError:
        pass
    return rows


def read_json(path):
    rows = read_jsonl(path)
    return rows[-1] if rows else None


def fmt(x, digits=0):
    if x is None:
        return "-"
    if isinstance(x, str):
        return x
    return f"{x:,.{digits}f}"


def ratio(a, b):
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b > 0:
        return round(a / b, 3)
    return None


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "."
    adapter = read_json(os.path.join(out, "adapter.json"))
    train = read_jsonl(os.path.join(out, "train.jsonl"))
    torch_rows = read_jsonl(os.path.join(out, "torch.jsonl"))
    gemm = read_jsonl(os.path.join(out, "gemm.jsonl"))
    lines = []
    say = lines.append

    say("mixprec webgpu vs PyTorch, tools/gpu/run.sh")
    if adapter:
        if "error" in adapter:
            say(f"webgpu adapter: ERROR {adapter['error']}")
        else:
            sm = json.dumps(adapter["subgroup_matrix"]) if "subgroup_matrix" in adapter else "(not reported)"
            say(f"webgpu adapter: {adapter.get('adapter')} | native f16: {json.dumps(adapter.get('native_f16'))} | subgroup_matrix: {sm} | node {adapter.get('node')}")
    else:
        say("webgpu adapter: - (no adapter.json)")
    tinfo = next((r for r in torch_rows if not r.get("failed")), None)
    if tinfo:
        dev = tinfo.get("device_name") or tinfo.get("device")
        extra = ""
        if tinfo.get("device") == "cuda":
            extra = f", CUDA {tinfo.get('cuda_version')}, cuDNN {tinfo.get('cudnn_version')}, cudnn.benchmark {tinfo.get('cudnn_benchmark')}, float32 matmul precision {tinfo.get('float32_matmul_precision')}"
        say(f"PyTorch {tinfo.get('torch_version')} on {tinfo.get('device')} ({dev}{extra})")
    else:
        say("PyTorch: - (no successful run)")
    say("")

    # mixprec: (model, batch) -> precision -> img/s or "fail(rc)"
    mix = {}
    widths = {}
    for r in train:
        key = (r.get("model"), r.get("batch_size"))
        if r.get("width"):
            widths[key] = r["width"]
        value = f"fail({r.get('rc')})" if r.get("failed") else "invalid" if r.get("invalid") else r.get("img_per_s")
        mix.setdefault(key, {})[r.get("precision")] = value
    tor = {}
    for r in torch_rows:
        key = (r.get("model"), r.get("batch_size"))
        if r.get("width"):
            widths.setdefault(key, r["width"])
        if r.get("failed"):
            tor.setdefault(key, {})["_failed"] = f"fail({r.get('rc')})"
            continue
        for res in r.get("results", []):
            tor.setdefault(key, {})[res.get("precision")] = res.get("img_per_s")
    keys = sorted(set(mix) | set(tor), key=lambda k: (k[1] or 0, str(k[0])))

    say("Training images/s (random CIFAR-shaped batches, SGD momentum; each step reads its loss)")
    head = ("model", "width", "batch", "webgpu fp32", "webgpu fp16", "webgpu bf16", "fp16/fp32", f">={FP16_BAR}",
            "torch fp32", "torch AMP fp16", "torch bf16", "webgpu fp16/torch AMP", "webgpu fp32/torch fp32")
    rows = [head]
    ratios = {}
    for key in keys:
        m = mix.get(key, {})
        t = tor.get(key, {})
        tf = t.get("_failed")
        r16 = ratio(m.get("fp16"), m.get("fp32"))
        rt16 = ratio(m.get("fp16"), t.get("fp16"))
        rt32 = ratio(m.get("fp32"), t.get("fp32"))
        bar = "-" if r16 is None else ("PASS" if r16 >= FP16_BAR else "FAIL")
        rows.append((
            str(key[0]), str(widths.get(key, "-")), str(key[1]),
            fmt(m.get("fp32")), fmt(m.get("fp16")), fmt(m.get("bf16")), fmt(r16, 3), bar,
            fmt(t.get("fp32", tf)), fmt(t.get("fp16", tf)), fmt(t.get("bf16", tf)), fmt(rt16, 3), fmt(rt32, 3),
        ))
        ratios[f"{key[0]}_b{key[1]}"] = {
            "webgpu_img_per_s": {p: m.get(p) for p in ("fp32", "fp16", "bf16")},
            "torch_img_per_s": {p: t.get(p) for p in ("fp32", "fp16", "bf16")},
            "webgpu_fp16_over_fp32": r16,
            "webgpu_bf16_over_fp32": ratio(m.get("bf16"), m.get("fp32")),
            "webgpu_fp16_over_torch_amp_fp16": rt16,
            "webgpu_fp32_over_torch_fp32": rt32,
            "webgpu_bf16_over_torch_bf16": ratio(m.get("bf16"), t.get("bf16")),
            "torch_amp_fp16_over_fp32": ratio(t.get("fp16"), t.get("fp32")),
        }
    widths_col = [max(len(r[i]) for r in rows) for i in range(len(head))]
    for r in rows:
        say("  ".join(c.rjust(w) if i > 2 else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths_col))))
    say("")

    say("GEMM GFLOP/s, mixprec bench gemm --backend webgpu (mean / best rep; a rep reads C back)")
    for r in gemm:
        if r.get("failed"):
            say(f"  {r.get('size')} {r.get('dtype')}: fail({r.get('rc')})")
        elif r.get("invalid"):
            say(f"  {r.get('size')} {r.get('dtype')}: invalid ({r['invalid']})")
        else:
            say(f"  {r.get('size')} {r.get('dtype'):8} {fmt(r.get('gflops'), 1):>10} / {fmt(r.get('gflops_best'), 1):>10}   reps {r.get('reps')}  check_abs_err {r.get('check_abs_err')}  subgroup_matrix {json.dumps(r['subgroup_matrix']) if 'subgroup_matrix' in r else '-'}")
    if not gemm:
        say("  -")
    say("")

    counts = {}
    try:
        with open(os.path.join(out, "tests.log")) as f:
            for line in f:
                mm = re.match(r"^# (tests|pass|fail|cancelled|skipped|todo|duration_ms) (\S+)", line)
                if mm:
                    counts[mm.group(1)] = float(mm.group(2)) if mm.group(1) == "duration_ms" else int(mm.group(2))
    except OSError:
        pass
    if counts:
        say("webgpu test pass: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    else:
        say("webgpu test pass: - (no tests.log, or it did not finish)")
    say("")
    say(json.dumps({"ratios": ratios, "tests": counts, "adapter": adapter.get("adapter") if adapter else None,
                    "subgroup_matrix": adapter.get("subgroup_matrix") if adapter else None,
                    "torch_device": (tinfo.get("device_name") or tinfo.get("device")) if tinfo else None,
                    "torch_version": tinfo.get("torch_version") if tinfo else None}))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

# read_back.py - reads an exported safetensors file with nothing but Debian's python3 and python3-torch (the header
# parsed by hand: no safetensors package) and checks it against a timm fixture: every key of model.json with its
# shape and dtype F32, no other key, and, with a third argument, every tensor equal to the one in timm's own file.
# Usage: python3 read_back.py EXPORTED.safetensors MODEL.json [TIMM_WEIGHTS.safetensors]
# Prints "python-ok N" (N tensors) and exits 0, or fails with an assertion naming the tensor.
import json
import struct
import sys

import torch


def read(path):
    """{name: tensor} of a safetensors file: u64 little-endian header length, JSON header, raw data."""
    b = open(path, 'rb').read()
    (n,) = struct.unpack('<Q', b[:8])
    header = json.loads(b[8:8 + n])
    dtypes = {'F32': torch.float32, 'F64': torch.float64, 'F16': torch.float16, 'BF16': torch.bfloat16}
    out = {}
    for name, e in header.items():
        if name == '__metadata__':
            continue
        s, t = e['data_offsets']
        assert 8 + n + t <= len(b), (path, name, 'data runs past the end of the file')
        raw = bytearray(b[8 + n + s:8 + n + t])
        out[name] = (e['dtype'], e['shape'], torch.frombuffer(raw, dtype=dtypes[e['dtype']]).reshape(e['shape']))
    return out


exported = read(sys.argv[1])
keys = json.load(open(sys.argv[2]))['keys']
assert set(exported) == set(keys), ('names differ from timm', sorted(set(exported) ^ set(keys)))
for name, shape in keys.items():
    dtype, got_shape, x = exported[name]
    assert dtype == 'F32' and got_shape == shape, (name, dtype, got_shape, shape)
    assert torch.isfinite(x).all(), name
if len(sys.argv) > 3:
    timm = read(sys.argv[3])
    for name, (_, _, x) in exported.items():
        assert torch.equal(x, timm[name][2]), (name, 'differs from timm file')
print('python-ok', len(keys))
